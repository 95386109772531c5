"""Adding source files beside unchanged ones: read only the new files (docs/scale.md, "Adding papers").

A complete run records its source files one row each (as named, resolved path, size, modification and
status-change times, inode; whether the file is a seed listing and whether its author names help read
listings) and the hashes of every merge key its entries carry (:mod:`rag.source_keys`). The next run, when
its files are exactly those rows in the same order followed by new files, with the same code and settings,
reads only the new files, and goes on without the old papers in memory when:

* no new file is a seed listing, and no new file's author names could change how an old listing reads;
* none of the new entries shares a key (id, DOI, arXiv id, PMID, title + first author) with an old entry
  or paper — then the full loader would have given the old papers unchanged and the new ones after them;
* the index is as the last complete run left it: manifest complete, collection count, files beside it
  intact, ``late/`` of the current layout.

Then only the new papers are hashed, chunked, embedded and appended: to Chroma, to BM25 as a segment, to
``late/`` (rag.late_append), to ``papers.jsonl`` and ``records.npz`` (rag.records.append_records), and to
the manifest. Anything else — including a step that cannot append — returns None, and
:func:`rag.index.build_index` takes the full path, which reads every file; a run stopped after its first
write has removed the manifest, so the next run reconciles every chunk and re-embeds nothing it already
wrote.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import source_keys
from rag.chunk import chunk_with_settings, chunks_in_order
from rag.corpus_identity import BM25_DIR, MANIFEST_FILE, collection_name
from rag.dense_projection import lost as projection_lost
from rag.errors import CorpusError
from rag.index_embed import embed_chunks
from rag.index_fastpath import SourceFiles, files_intact, record_chroma
from rag.index_incremental import content_hash, extend_bm25, metadata_digests
from rag.index_manifest import SOURCES_KEY, manifest_for, signature_of
from rag.index_manifest import save as save_manifest
from rag.integrity import read_json_object
from rag.late import is_current
from rag.late_append import append as append_late
from rag.migrate import previous_collection
from rag.records import PaperRecords, append_records
from rag.settings import Settings
from rag.store import Store
from rag.types import Chunk, IndexStats, Paper
from rag.writer_lock import swap_dir, writer_lock

if TYPE_CHECKING:
    from rag.corpus import CorpusReport, FileReport

log = logging.getLogger(__name__)


@dataclass
class SourcesRead:
    """The files a full run read and what the loader made of them, for the manifest's :data:`SOURCES_KEY`."""

    files: SourceFiles
    report: CorpusReport

    def record(self, folder: Path) -> dict[str, Any] | None:
        """Save the keys file beside the manifest and return the record (None when the files the loader
        reports are not the ones stamped: a folder changed meanwhile)."""
        reports = self.report.files
        if [r.path for r in reports] != [str(p) for p in self.files.paths]:
            return None
        keys = source_keys.key_hashes(self.report.entries, self.report.papers)
        rows = file_rows(self.files, reports)
        return {"config": self.files.config, "files": rows, "keys": source_keys.save(folder, keys)}


def file_rows(files: SourceFiles, reports: list[FileReport]) -> list[list[Any]]:
    """The manifest's row per source file (see the module doc)."""
    return [
        [str(p), *row, r.format == "listing", r.gives_names]
        for p, row, r in zip(files.paths, files.rows, reports, strict=True)
    ]


@dataclass
class _Plan:
    recorded: dict[str, Any]
    new: SourceFiles  # the files after the recorded ones


def _plan(files: SourceFiles, manifest: dict[str, Any]) -> _Plan | None:
    recorded = manifest.get(SOURCES_KEY)
    if manifest.get("complete") is not True or not isinstance(recorded, dict):
        return None
    old = recorded.get("files")
    if recorded.get("config") != files.config or not isinstance(old, list) or not old:
        return None
    if not all(isinstance(row, list) and len(row) == 8 for row in old):
        return None  # written by another version: the full path writes them again
    n = len(old)
    if len(files.rows) <= n:
        return None
    now = [[str(p), *row] for p, row in zip(files.paths[:n], files.rows[:n], strict=True)]
    if now != [row[:6] for row in old]:
        return None
    return _Plan(recorded, SourceFiles(files.rows[n:], files.config, files.paths[n:]))


def _read_new(plan: _Plan, folder: Path, settings: Settings) -> tuple[CorpusReport, np.ndarray] | None:
    """The new files' papers and their keys, when they cannot touch an old paper (see the module doc)."""
    from rag.corpus import load_corpus_report

    try:
        report = load_corpus_report(plan.new.paths, settings=settings)
    except CorpusError:
        return None  # the full path reads everything and says what is wrong
    old_rows = plan.recorded["files"]
    if [f.path for f in report.files] != [str(p) for p in plan.new.paths]:
        return None
    if any(f.format == "listing" for f in report.files):
        return None
    if any(row[6] for row in old_rows) and any(f.gives_names for f in report.files):
        return None
    new_keys = source_keys.key_hashes(report.entries, report.papers)
    old_keys = source_keys.load(folder, plan.recorded.get("keys"))
    if old_keys is None:
        return None
    shared = source_keys.shared(old_keys, new_keys)
    if shared:
        log.info("%d ids, DOIs or titles of the new files are already indexed: reading every source", shared)
        return None
    return report, np.union1d(old_keys, new_keys)


def add_sources(
    files: SourceFiles,
    settings: Settings,
    encoder: Callable[[Settings], Any],
    *,
    progress: bool,
    started: float,
    wait: bool,
) -> IndexStats | None:
    """Index the files added after the last complete run's, reading only them, with the embedder
    ``encoder(settings)`` gives; None when the full path must run (see the module doc)."""
    folder = settings.index_dir / collection_name(settings)
    plan = _plan(files, read_json_object(folder / MANIFEST_FILE))
    if plan is None:
        return None
    got = _read_new(plan, folder, settings)
    if got is None:
        return None
    report, keys = got
    with writer_lock(settings, wait=wait):
        return _add(plan, report, keys, files, settings, encoder, progress=progress, started=started)


def _trusted(store: Store, manifest: dict[str, Any], plan: _Plan, settings: Settings) -> int | None:
    """The collection's chunk count when the index is as the manifest says (None: take the full path)."""
    if previous_collection(store) is not None or manifest.get(SOURCES_KEY) != plan.recorded:
        return None  # a move to a renamed collection, or another run since the plan was made
    count = store.count_at_open if store.count_at_open is not None else store.count()
    late = settings.index.late_interaction
    layout = (settings.index.embed_model, settings.index.late_codec, settings.index.late_merge)
    if (
        manifest.get("complete") is not True
        or manifest.get("chunks") != count
        or not isinstance(manifest.get("paper_hashes"), dict)
        or not (store.folder / BM25_DIR).is_dir()
        or not files_intact(store.folder, manifest, late)
        or projection_lost(store, manifest) is not None
        or (late and not (settings.index.late_merge and is_current(store.folder, count, *layout)))
    ):
        return None
    return count


def _old_chunks(
    folder: Path, known: dict[str, Any], settings: Settings
) -> Callable[[list[str]], list[Chunk]]:
    """``chunks_for`` for the BM25 segments an add folds (rag.lexical): old papers' chunks re-made from
    their records in ``papers.jsonl`` (still the last run's) and their hashes in the manifest."""

    def chunks_for(ids: list[str]) -> list[Chunk]:
        records = PaperRecords(folder)
        papers = [records[pid] for pid in ids if pid in records and pid in known]
        return chunks_in_order(papers, {p.id: known[p.id]["hash"] for p in papers}, {}, settings)

    return chunks_for


def _append_files(
    folder: Path,
    chunks: list[Chunk],
    papers: list[Paper],
    known: dict[str, Any],
    embedder: Any,
    settings: Settings,
) -> bool:
    """Append the new papers to the files beside the collection: BM25 (a segment), ``late/``, the records;
    False when BM25 or ``late/`` cannot be appended to (the caller then takes the full path)."""
    tmp = folder / (BM25_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if not extend_bm25(folder / BM25_DIR, tmp, chunks, [], _old_chunks(folder, known, settings)):
        return False
    swap_dir(tmp, folder / BM25_DIR)
    if settings.index.late_interaction:
        model, codec = settings.index.embed_model, settings.index.late_codec
        if append_late(folder, chunks, embedder, model, codec) is None:
            return False
    append_records(folder, papers)
    return True


def _add(
    plan: _Plan,
    report: CorpusReport,
    keys: np.ndarray,
    files: SourceFiles,
    settings: Settings,
    encoder: Callable[[Settings], Any],
    *,
    progress: bool,
    started: float,
) -> IndexStats | None:
    store = Store.open(settings, create=True)
    folder = store.folder
    manifest_path = folder / MANIFEST_FILE
    old = read_json_object(manifest_path)
    count = _trusted(store, old, plan, settings)
    known: dict[str, Any] = old.get("paper_hashes") or {}
    papers: list[Paper] = report.papers
    if count is None or any(p.id in known for p in papers):
        return None
    hashes = {p.id: content_hash(p) for p in papers}
    digests = metadata_digests(papers)
    groups = chunk_with_settings(papers, settings, [hashes[p.id] for p in papers])
    chunks = [c for g in groups for c in g]
    manifest_path.unlink()  # the index is being changed: no fast path until this run completes
    late = settings.index.late_interaction
    embedder = encoder(settings)
    embed_chunks(store, folder, chunks, {}, embedder, late=late, progress=progress)
    total = store.count()
    if not _append_files(folder, chunks, papers, known, embedder, settings):
        return None
    n_chunks = {p.id: len(g) for p, g in zip(papers, groups, strict=True)}
    paper_hashes = dict(known)
    paper_hashes.update(
        (p.id, {"hash": hashes[p.id], "meta": digests[p.id], "chunks": n_chunks[p.id]}) for p in papers
    )
    rows = plan.recorded["files"] + file_rows(plan.new, report.files)
    record = {"config": files.config, "files": rows, "keys": source_keys.save(folder, keys)}
    manifest = manifest_for(
        store,
        settings,
        papers=len(paper_hashes),
        chunks=total,
        signature=signature_of((pid, v["hash"], v["meta"]) for pid, v in paper_hashes.items()),
        stamp=files.stamp,
        sources=record,
        paper_hashes=paper_hashes,
    )
    save_manifest(manifest_path, manifest, old)
    store.mark_current({"papers": len(paper_hashes), "chunks": total})
    record_chroma(settings, folder, total)
    log.info("added %d papers from %d new file(s), reading no other source", len(papers), len(plan.new.rows))
    return IndexStats(
        papers=len(paper_hashes),
        chunks=total,
        embedded=len(chunks),
        unchanged=len(known),
        removed=0,
        seconds=round(time.perf_counter() - started, 3),
        collection=store.collection_name,
    )
