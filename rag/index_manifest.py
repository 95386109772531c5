"""``manifest.json``: what a complete `rag index` run left, written last (shared by the full and add runs).

It names the collection and corpus, the embedding and chunking settings, the paper and chunk counts, the
signature the no-op fast path compares, the stamp of the sources read (rag.index_fastpath), the source
files with the digest of their merge keys (rag.index_add, rag.source_keys), the fingerprints of the files
beside the collection (rag.integrity), and per paper its content hash, metadata digest and chunk count.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from rag.corpus_identity import BM25_DIR, PAPERS_FILE, SCHEMA_VERSION, write_atomic
from rag.dense_projection import FILE as DENSE_FILE
from rag.index_fastpath import STAMP_KEY
from rag.integrity import fingerprint
from rag.late import LATE_DIR
from rag.settings import Settings
from rag.store import Store

SOURCES_KEY = "source_files"
"""The manifest key of the source files the run read, one row each, and the digest of their merge keys."""


def signature_of(entries: Iterable[tuple[str, str, str]]) -> str:
    """One hash of (paper id, content hash, metadata digest) over every paper, in id order: the no-op fast
    path is taken only when all three are what the last complete run left."""
    text = "\n".join(f"{pid}\t{h}\t{d}" for pid, h, d in sorted(entries))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def manifest_for(
    store: Store,
    settings: Settings,
    *,
    papers: int,
    chunks: int,
    signature: str,
    stamp: str | None,
    sources: dict[str, Any] | None,
    paper_hashes: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a run that completed (``built_at`` is added by :func:`save`)."""
    folder = store.folder
    late = settings.index.late_interaction
    return {
        "complete": True,
        "collection": store.collection_name,
        "corpus": None if store.legacy else store.corpus,
        "schema": SCHEMA_VERSION,
        "embed_model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "chunk_max_sentences": settings.index.chunk_max_sentences,
        "chunk_overlap_sentences": settings.index.chunk_overlap_sentences,
        "late_interaction": late,
        "papers": papers,
        "chunks": chunks,
        "signature": signature,
        STAMP_KEY: stamp,  # the sources this run read (rag.index_fastpath: the next no-op skips reading them)
        SOURCES_KEY: sources,  # the same, file by file (rag.index_add: an add reads only the new files)
        "files": {  # what the next run's fast path checks (rag.integrity)
            BM25_DIR: fingerprint(folder / BM25_DIR),
            LATE_DIR: fingerprint(folder / LATE_DIR) if late else {},
            PAPERS_FILE: fingerprint(folder / PAPERS_FILE),
            **({DENSE_FILE: fingerprint(folder / DENSE_FILE)} if settings.index.dense_dims else {}),
        },
        "paper_hashes": paper_hashes,
    }


def save(path: Path, manifest: dict[str, Any], old: dict[str, Any]) -> None:
    """Write ``manifest`` (stamped with the time) unless it is what ``old`` already says."""
    if manifest != {k: v for k, v in old.items() if k != "built_at"}:
        manifest["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_atomic(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2).decode() + "\n")
