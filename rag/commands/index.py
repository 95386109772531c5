"""`rag index`: build or update the index of the seeds (or of the given sources) and print what it did."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "index",
        help="Index the seeds (or given files, folders, globs): embed new/changed papers, drop removed ones.",
        description="Sync the index under RAG_HOME to exactly the given sources (default: the seed pages). "
        "Unchanged papers are not re-embedded; a run that was interrupted is completed.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="Files, folders or globs to index, in any mix of formats: seed pages, BEIR folders, JSON lines, "
        "BibTeX, RIS, CSL-JSON, arXiv (Atom or snapshot, .gz too), OpenAlex, Semantic Scholar, PubMed XML.",
    )
    parser.add_argument(
        "--source",
        action="append",
        metavar="PATH",
        help="A source file or folder (seed page, BEIR folder, JSON-lines file); repeatable. "
        "Default: the corpus paths in the settings (the seeds).",
    )
    parser.add_argument("--model", help="Embedding model id or local path (env RAG_INDEX__EMBED_MODEL).")
    parser.add_argument(
        "--backend", choices=["torch", "onnx", "openvino"], help="sentence-transformers backend."
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="When another `rag index` is writing this home, fail at once instead of waiting for it.",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.index import build_index

    if getattr(args, "model", None):
        settings.index.embed_model = args.model
    if getattr(args, "backend", None):
        settings.index.embed_backend = args.backend
    quiet = bool(getattr(args, "quiet", False))
    progress = not (quiet or getattr(args, "no_progress", False))
    sources = [*(getattr(args, "paths", None) or []), *(args.source or [])]
    wait = not getattr(args, "no_wait", False)
    stats = build_index(sources or None, settings, progress=progress, wait=wait)
    where = settings.chroma_url or str(settings.index_dir / "chroma")
    if not quiet:
        rows = [
            ("papers", stats.papers),
            ("chunks", stats.chunks),
            ("embedded", stats.embedded),
            ("unchanged", stats.unchanged),
            ("removed", stats.removed),
            ("seconds", f"{stats.seconds:.2f}"),
            ("collection", stats.collection),
            ("where", where),
        ]
        for key, value in rows:
            sys.stdout.write(f"{key:<11}{value}\n")
    return 0
