"""What `rag index` trusts on a re-index instead of redoing it: the source stamp, the files' fingerprints.

**The source stamp.** Reading the sources is most of a no-op re-index and grows with the corpus: every
paper is parsed, validated, merged, hashed twice and compared with the manifest (docs/scale.md). A run that
completes records in ``manifest.json`` a stamp of what it read (:func:`source_files`): every source file's
resolved path, size, modification and status-change times (ns) and inode, the corpus and index settings,
and the size and modification time of rag's own modules (an upgrade that parses or chunks differently
reads everything again). When the next run's stamp is the same, the sources are the same bytes parsed by
the same code, so its papers are the manifest's: :func:`quick_noop` then checks only what can change
without touching the sources — the collection's chunk count against the manifest's, ``bm25/`` and
``late/`` present and current, and the fingerprints of the files beside the collection — and returns
without reading a paper. Anything else (another stamp, a count that differs, a damaged file, no manifest,
papers given as objects, a Chroma server, whose collection other homes may change) takes the full path in
:mod:`rag.index`, which reconciles as before. Status-change times cannot be set back by tools that copy or
restore modification times, so a rewritten file of the same size is seen too — except on a file system whose
timestamps are coarse (FAT: 2 s) when the edit keeps the size and falls in the same tick as the last read;
``touch`` a source file to make the next run read everything.

**Chroma's files** (:func:`chroma_unchanged`): asking the embedded collection for its count loads its whole
vector index (~3.4 s at 83k chunks, linear: ~100 s at 1M papers). Each run, and each no-op that counted,
records a stamp of the Chroma folder's files (path, size, modification time) beside the manifest; while
the files are as recorded, the manifest's chunk count stands and Chroma is not opened.

**The files beside the collection** (:func:`check_files`): ``bm25/``, ``late/`` and ``papers.jsonl`` against
the fingerprints the last run recorded (:mod:`rag.integrity`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.corpus_identity import BM25_DIR, MANIFEST_FILE, PAPERS_FILE, collection_name, read_current
from rag.dense_projection import FILE as DENSE_FILE
from rag.integrity import damaged, read_json_object
from rag.late import LATE_DIR, is_current
from rag.late_segments import is_segment
from rag.settings import Settings
from rag.store import Store
from rag.types import IndexStats

log = logging.getLogger(__name__)

STAMP_VERSION = 2
STAMP_KEY = "source_stamp"
"""The manifest key holding the stamp of the sources the run read (absent or null: none was taken)."""


def _source_paths(sources: Any, settings: Settings) -> list[Path] | None:
    """The paths ``sources`` names (as :func:`rag.corpus.load_corpus` takes them), or None when they are
    not paths (a list of papers)."""
    if sources is None:
        return list(settings.corpus.paths)
    if isinstance(sources, (str, Path)):
        return [Path(sources)]
    if isinstance(sources, Sequence) and all(isinstance(s, (str, Path)) for s in sources):
        return [Path(s) for s in sources]
    return None


def _stat_row(path: Path, *, full: bool) -> list[Any]:
    st = path.stat()
    if full:
        return [str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return [path.name, st.st_size, st.st_mtime_ns]


@dataclass(frozen=True)
class SourceFiles:
    """What a run is about to read: each source file's row (resolved path, size, modification and
    status-change times in ns, inode), in reading order, and a digest of everything else that shapes the
    papers read from them (rag's own modules by size and time, the corpus and index settings)."""

    rows: list[list[Any]]
    config: str
    paths: list[Path]
    """The files as the loader names them (``Paper.source``), in the same order as ``rows``."""

    @property
    def stamp(self) -> str:
        """One digest of the rows and the configuration (the manifest's ``source_stamp``)."""
        data = {"v": STAMP_VERSION, "files": self.rows, "config": self.config}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def source_files(sources: Any, settings: Settings) -> SourceFiles | None:
    """The source files' identities (see the module doc), or None when there are none to take: papers
    given as objects, a Chroma server, or paths that cannot be listed (the full path reports why)."""
    from rag.sources import expand_paths

    paths = _source_paths(sources, settings)
    if paths is None or settings.chroma_url:
        return None
    try:
        files = expand_paths(paths)
        rows = [_stat_row(f, full=True) for f in files]
    except Exception:  # noqa: BLE001 - the full path reads the sources and says what is wrong
        return None
    package = Path(__file__).resolve().parent
    code = [_stat_row(f, full=False) for f in sorted(package.rglob("*.py"))]
    data = {
        "code": code,
        "corpus": settings.corpus.model_dump(mode="json"),
        "index": settings.index.model_dump(mode="json"),
    }
    config = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:20]
    return SourceFiles(rows, config, files)


def quick_noop(stamp: str | None, settings: Settings, started: float) -> IndexStats | None:
    """The stats of a no-op re-index when the last complete run read sources with this ``stamp`` and the
    index still matches what it left (see the module doc); None when the full path must run. Call it under
    the home's writer lock."""
    if stamp is None or settings.chroma_url:
        return None
    name = collection_name(settings)
    folder = settings.index_dir / name
    manifest = read_json_object(folder / MANIFEST_FILE)
    current = read_current(settings) or {}
    if (
        manifest.get("complete") is not True
        or manifest.get(STAMP_KEY) != stamp
        or manifest.get("collection") != name
        or current.get("collection") != name  # a move to a renamed collection is the full path's job
        or current.get("chroma_url") is not None
        or not isinstance(manifest.get("papers"), int)
    ):
        return None
    chroma_same = chroma_unchanged(settings, folder, manifest)
    store = None if chroma_same else Store.open(settings, create=True)
    if store is not None and store.collection_name != name:
        return None
    # Opening a collection loads its whole vector index (seconds per million chunks, docs/scale.md):
    # when Chroma's files are as the last run left them, the manifest's count stands.
    chunks = int(manifest.get("chunks", -1)) if store is None else store.count()
    late = settings.index.late_interaction
    if (
        chunks != manifest.get("chunks")
        or not (folder / BM25_DIR).is_dir()
        or (late and not is_current(folder, chunks, settings.index.embed_model, *_late_layout(settings)))
        or (not late and (folder / LATE_DIR).exists())
        or not files_intact(folder, manifest, late)
    ):
        return None
    if store is not None:
        store.mark_current({"papers": manifest["papers"], "chunks": chunks})
        record_chroma(settings, folder, chunks)
    return IndexStats(
        papers=manifest["papers"],
        chunks=chunks,
        embedded=0,
        unchanged=manifest["papers"],
        removed=0,
        seconds=round(time.perf_counter() - started, 3),
        collection=name,
    )


CHROMA_STAMP_FILE = "chroma_stamp.json"
"""Beside the manifest: the embedded Chroma folder's file stamp when a run (or a no-op that counted the
collection) left it, with the chunk count it then held."""


def _chroma_files(settings: Settings) -> str | None:
    """A hash of every file's path, size and modification time (ns) under the embedded Chroma folder;
    None with a Chroma server (whose collection other homes may change)."""
    if settings.chroma_url:
        return None
    root = settings.index_dir / "chroma"
    rows = []
    for f in sorted(root.rglob("*")):
        try:
            st = f.stat()
        except OSError:
            return None
        if f.is_file():
            rows.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()[:32] if rows else None


def record_chroma(settings: Settings, folder: Path, chunks: int) -> None:
    """Record Chroma's file stamp as it is now, holding ``chunks`` chunks (call after the last write)."""
    stamp = _chroma_files(settings)
    if stamp is not None:
        from rag.corpus_identity import write_atomic

        write_atomic(folder / CHROMA_STAMP_FILE, json.dumps({"files": stamp, "chunks": chunks}) + "\n")


def chroma_unchanged(settings: Settings, folder: Path, manifest: dict[str, Any]) -> bool:
    """Whether the embedded Chroma folder is byte for byte (by size and time) as a run recorded it, with
    the manifest's chunk count."""
    recorded = read_json_object(folder / CHROMA_STAMP_FILE)
    return (
        recorded.get("chunks") == manifest.get("chunks")
        and recorded.get("files") is not None
        and recorded.get("files") == _chroma_files(settings)
    )


def _recorded(manifest: dict[str, Any], late: bool) -> list[tuple[str, Any]]:
    """The fingerprints the manifest recorded for the files beside the collection, by part."""
    files = manifest.get("files")
    recorded: dict[str, Any] = files if isinstance(files, dict) else {}
    parts: tuple[str, ...] = (BM25_DIR, LATE_DIR, PAPERS_FILE) if late else (BM25_DIR, PAPERS_FILE)
    if DENSE_FILE in recorded:  # index.dense_dims: the projection every vector went through
        parts += (DENSE_FILE,)
    return [(part, recorded.get(part)) for part in parts]


def files_intact(folder: Path, manifest: dict[str, Any], late: bool) -> bool:
    """Whether ``bm25/``, ``late/`` and ``papers.jsonl`` match the fingerprints the manifest recorded (no side
    effects: :func:`check_files` is the repairing run's)."""
    return all(damaged(folder / part, recorded) is None for part, recorded in _recorded(manifest, late))


def check_files(folder: Path, manifest: dict[str, Any], late: bool) -> set[str]:
    """The parts (``bm25``, ``late``, ``papers.jsonl``) that no longer match the fingerprints the last run
    recorded, each named in a warning; damaged word-piece vectors are removed so they are re-encoded."""
    bad: set[str] = set()
    for part, recorded in _recorded(manifest, late):
        why = damaged(folder / part, recorded)
        if why is None:
            continue
        bad.add(part)
        log.warning("%s: rebuilding it", why)
        if part == LATE_DIR and not _late_vectors_intact(folder, recorded):
            shutil.rmtree(folder / LATE_DIR, ignore_errors=True)
    return bad


def _late_vectors_intact(folder: Path, recorded: Any) -> bool:
    """Whether ``late/``'s vectors and scales (or codec) still match their fingerprints (then only the small
    files derived from the chunks need rewriting, and nothing is re-encoded)."""
    rows = ("scales.npy", "codec.npz", "lengths.npy")
    wanted = {k: v for k, v in (recorded or {}).items() if k in rows or is_segment(k)}
    return bool(wanted) and all(
        damaged(folder / LATE_DIR / name, {name: value}) is None for name, value in wanted.items()
    )


def _late_layout(settings: Settings) -> tuple[str, bool]:
    return settings.index.late_codec, settings.index.late_merge
