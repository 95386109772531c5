"""`build_index`: sync one RAG_HOME's index to exactly the given sources.

Steps: load the papers → open (or create) this home's corpus's collection (rag.store: one collection per
corpus; a home whose previous collection differs by name only has its vectors copied over, not
re-embedded) → reconcile against what Chroma actually holds → chunk and embed only new or changed papers
(shortest first, written batch by batch, upserted by stable chunk id; with late interaction each batch's
word-piece vectors go to ``late.parts/``) → delete chunks of removed papers and left-over chunks of
changed ones → rebuild the BM25 index and ``late/`` (rag.late) when the chunk set changed → write
``papers.jsonl`` and ``manifest.json`` → mark the collection current. A run killed half-way leaves chunks
whose content hash or chunk count does not match, so the next run re-embeds exactly those papers; nothing
is ever duplicated. Nothing is written to or deleted from a collection whose metadata names another
corpus (``Store.assert_owned``). The reconciling steps live in :mod:`rag.index_reconcile`; a re-index of
source files unchanged since the last complete run is answered by :mod:`rag.index_fastpath` without
reading them.

A paper's content hash (:func:`content_hash`) covers only what shapes its chunk texts, hence its vectors:
title, abstract and authors — not where the paper was read from. Moving or renaming a corpus folder, or
changing a paper's other metadata (year, kind, source file, …), re-embeds nothing: that metadata lives in the
paper records, and Chroma holds per chunk only what search and reconciling read (rag.store.STORED_KEYS).
Chunks stored under another hash (an older formula, or a paper whose folder moved when
that formula still covered it) keep their vectors when their stored texts equal the new chunk texts (only
collections written before chunk texts left Chroma hold any; chunk texts are re-made from the papers,
:func:`rag.chunk.chunk_with_settings`).
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.chunk import chunk_with_settings, chunks_in_order
from rag.corpus_identity import BM25_DIR, MANIFEST_FILE
from rag.dense_projection import clear as clear_vectors
from rag.dense_projection import lost as projection_lost
from rag.embed import get_embedder
from rag.errors import IndexError_
from rag.index_add import SourcesRead, add_sources
from rag.index_embed import embed_chunks
from rag.index_fastpath import check_files, quick_noop, record_chroma, source_files
from rag.index_incremental import (
    Reconciled,
    content_hash,
    extend_bm25,
    late_chunks,
    metadata_digests,
    trusted_states,
)
from rag.index_manifest import manifest_for, signature_of
from rag.index_manifest import save as save_manifest
from rag.index_reconcile import (
    group_by_paper,
    is_complete,
    rekey_late,
    same_texts,
    update_metadata,
    wanted_metadata,
    warn_foreign,
)
from rag.integrity import read_json_object
from rag.late import LATE_DIR, PARTS_DIR, consolidate, is_current
from rag.late_append import append as append_late
from rag.records import record_lines, write_records
from rag.settings import Settings
from rag.shared_index import fetch, publish
from rag.store import Store, chroma_metadata
from rag.types import Chunk, IndexStats, Paper
from rag.writer_lock import swap_dir, writer_lock

if TYPE_CHECKING:
    from rag.corpus import CorpusReport

log = logging.getLogger(__name__)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection for the block. Loading a corpus allocates objects that all survive
    (papers, their fields), and every full collection walks them all: at 30k papers the collector took
    ~40 % of the parse (4.5 vs 2.6 CPU-s) and its share grows with the corpus (docs/scale.md)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load_papers(sources: Any, settings: Settings) -> tuple[list[Paper], CorpusReport | None]:
    """The papers to index, with the loader's report when they were read from paths."""
    if (
        isinstance(sources, Sequence)
        and not isinstance(sources, str)
        and sources
        and all(isinstance(s, Paper) for s in sources)
    ):
        papers, report = list(sources), None
    else:
        try:
            from rag.corpus import load_corpus_report
        except ImportError as exc:  # pragma: no cover - the corpus step ships with the package
            raise IndexError_(f"The corpus loader is not available ({exc}).") from exc
        if sources is not None and isinstance(sources, (str, Path)):
            sources = [sources]
        with _gc_paused():
            report = load_corpus_report(sources, strict=settings.corpus.strict, settings=settings)
        papers = report.papers
    unique: dict[str, Paper] = {}
    for paper in papers:
        if paper.id in unique:
            log.warning("duplicate paper id %s (%s); keeping the first", paper.id, paper.source)
            continue
        unique[paper.id] = paper
    if not unique:
        raise IndexError_("There are no papers to index: give sources that contain at least one paper.")
    return list(unique.values()), report


def build_index(
    sources: Any = None, settings: Settings | None = None, *, progress: bool = False, wait: bool = True
) -> IndexStats:
    """Index ``sources`` (default: the seeds; same forms as ``load_corpus``, or a list of ``Paper``).

    The index under ``settings.home`` is synced to exactly these papers: new and changed papers are
    embedded, unchanged ones reused, removed ones deleted. Returns what was done. One run at a time per
    home (:mod:`rag.writer_lock`): another run waits for it, or with ``wait=False`` raises
    :class:`~rag.errors.IndexBusyError`. Sources unchanged since the last complete run (same files, same
    sizes and times, same settings and code: :mod:`rag.index_fastpath`) are not read again.
    """
    settings = settings or Settings()
    started = time.perf_counter()
    files = source_files(sources, settings)  # before reading: a file changed meanwhile is read next time
    if files is not None:
        with writer_lock(settings, wait=wait):
            unchanged = quick_noop(files.stamp, settings, started)
        if unchanged is not None:
            return unchanged
        # New files after the ones the last complete run read: read only them (rag.index_add).
        added = add_sources(files, settings, get_embedder, progress=progress, started=started, wait=wait)
        if added is not None:
            return added
    papers, report = _load_papers(sources, settings)
    read = SourcesRead(files, report) if files is not None and report is not None else None
    with writer_lock(settings, wait=wait):
        return _build(papers, settings, progress=progress, started=started, read=read)


def _build(
    papers: list[Paper],
    settings: Settings,
    *,
    progress: bool,
    started: float,
    read: SourcesRead | None = None,
) -> IndexStats:
    """:func:`build_index`'s work, under the home's writer lock."""
    store = Store.open(settings, create=True)  # fails before anything is written locally
    adopted = store.adopt_previous()  # same vectors under a new name (an upgrade, a new corpus name)
    # On a server, another home of this corpus may have indexed it since: take its files (records, BM25,
    # word-piece vectors, manifest; rag.shared_index), so nothing it did is redone here.
    fetched = fetch(store) if settings.chroma_url and not adopted else None
    folder = store.folder
    manifest_path = folder / MANIFEST_FILE
    old_manifest = read_json_object(manifest_path)
    lost = projection_lost(store, old_manifest)  # index.dense_dims: vectors unreadable without it
    if lost and settings.chroma_url and not adopted:  # the server's copy, before anything is re-embedded
        fetched = fetch(store, force=True) or fetched
        old_manifest = read_json_object(manifest_path)
        lost = projection_lost(store, old_manifest)
    if lost:
        log.warning("%s: every chunk of %s is embedded again", lost, store.collection_name)
        clear_vectors(store)
    hashes = {p.id: content_hash(p) for p in papers}
    digests = metadata_digests(papers)
    signature = signature_of((p.id, hashes[p.id], digests[p.id]) for p in papers)
    indexed_before: dict[str, Any] = old_manifest.get("paper_hashes") or {}  # paper id → hash, digest, chunks
    bm25 = folder / BM25_DIR
    count_before = store.count_at_open if store.count_at_open is not None and not adopted else store.count()

    late = settings.index.late_interaction
    trusted: Reconciled | None = None
    damage = check_files(folder, old_manifest, late)  # the files beside the collection, as last written
    late_current = late and is_current(
        folder, count_before, settings.index.embed_model, settings.index.late_codec, settings.index.late_merge
    )  # read once
    # Fast path: the last run finished (its manifest exists; any run that writes vectors removes it
    # first), these are the same papers, and the collection holds as many chunks as it then wrote.
    if (
        not adopted  # copied vectors are reconciled chunk by chunk, whatever the moved manifest says
        and old_manifest.get("complete") is True
        and old_manifest.get("signature") == signature
        and old_manifest.get("chunks") == count_before
        and bm25.is_dir()
        and (not late or late_current)
    ):
        by_paper: dict[str, dict[str, dict[str, Any]]] = {}
        todo: list[Paper] = []
        removed_papers: list[str] = []
        stale: list[str] = []
    else:  # reconcile with what the collection holds: the papers that changed, or every chunk
        if not adopted:
            trusted = trusted_states(store, old_manifest, papers, hashes, digests, count_before)
        if trusted is not None:
            by_paper, todo, removed_papers = trusted.by_paper, trusted.todo, trusted.removed
        else:
            by_paper = group_by_paper(store.chunk_states())
            todo = [p for p in papers if not is_complete(by_paper.get(p.id, {}), p.id, hashes[p.id])]
            wanted = {p.id for p in papers}
            removed_papers = [pid for pid in by_paper if pid not in wanted]
        stale = [cid for pid in removed_papers for cid in by_paper.get(pid, {})]

    # Chunk the papers whose stored chunks lack their content hash. Those whose stored chunks have the
    # same texts (a hash from an older formula, or from before their folder moved) keep their vectors.
    grouped: list[list[Chunk]] = []
    made: dict[str, list[Chunk]] = {}  # paper id → its chunks, for the papers chunked in this run
    rekeyed: dict[str, tuple[str, str]] = {}
    if todo:
        grouped = chunk_with_settings(todo, settings, [hashes[p.id] for p in todo])
        made.update((p.id, g) for p, g in zip(todo, grouped, strict=True))
        same = same_texts(store, todo, grouped, by_paper)
        for pid in same:
            for cid, meta in by_paper[pid].items():
                rekeyed[cid] = (str(meta.get("content_hash", "")), hashes[pid])
        keep = [i for i, p in enumerate(todo) if p.id not in same]
        todo, grouped = [todo[i] for i in keep], [grouped[i] for i in keep]
    # Chunks that keep their vectors get the paper's current metadata (a moved folder changes `source`);
    # keys no longer wanted are set to None, which removes them (Chroma merges metadata on update and
    # upsert, so a re-embedded chunk has its stale keys removed here first).
    updates: dict[str, dict[str, Any]] = {}
    embedding = {p.id for p in todo}
    for paper in papers:
        if paper.id in embedding:
            continue
        for cid, meta in by_paper.get(paper.id, {}).items():
            want = wanted_metadata(paper, hashes[paper.id], meta)
            if want != meta:
                updates[cid] = {**dict.fromkeys(k for k in meta if k not in want), **want}
    for chunk in (c for group in grouped for c in group):
        old = by_paper.get(chunk.paper_id, {}).get(chunk.id)
        gone = [k for k in old or {} if k not in chroma_metadata(chunk.metadata)]
        if gone:
            updates[chunk.id] = dict.fromkeys(gone)
    if (todo or stale or updates) and manifest_path.exists():
        manifest_path.unlink()  # the index is being changed: no fast path until this run completes
    rekey_late(folder, rekeyed)  # first: a run killed before the metadata update re-keys nothing twice
    update_metadata(store, updates)

    # Embed new or changed papers.
    new_chunks: list[Chunk] = []
    if todo:
        new_chunks = [c for group in grouped for c in group]
        new_ids = {c.id for c in new_chunks}
        stale += [cid for p in todo for cid in by_paper.get(p.id, {}) if cid not in new_ids]
        embedder = get_embedder(settings)
        new_chunks = embed_chunks(store, folder, new_chunks, by_paper, embedder, late=late, progress=progress)
    if stale:
        store.assert_owned()  # never delete from another corpus's collection
        warn_foreign(removed_papers, old_manifest, store)
    store.delete(stale)
    changed = bool(new_chunks or stale)
    total_chunks = store.count() if changed else count_before

    # BM25 beside the collection, rebuilt only when the chunk set changed.
    folder.mkdir(parents=True, exist_ok=True)
    all_chunks: list[Any] | None = None
    by_id = {p.id: p for p in papers}

    def chunks_in_paper_order() -> list[Chunk]:  # made once, for BM25 and for the word pieces
        return chunks_in_order(papers, hashes, made, settings)

    if changed or not bm25.is_dir() or old_manifest.get("signature") != signature or BM25_DIR in damage:
        tmp = folder / (BM25_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if trusted is None or BM25_DIR in damage or not extend_bm25(
            bm25,
            tmp,
            [c for p in todo for c in made[p.id]],
            removed_papers + [p.id for p in todo if p.id in indexed_before],
            lambda ids: chunks_in_order([by_id[i] for i in ids if i in by_id], hashes, made, settings),
        ):
            from rag.lexical import build_lexical_index

            all_chunks = chunks_in_paper_order()
            shutil.rmtree(tmp, ignore_errors=True)
            build_lexical_index(all_chunks, tmp)
        swap_dir(tmp, bm25)  # searches in other processes see the old folder or the new, never half of one

    # Word-piece vectors for late interaction, rebuilt when the chunk set changed (or they are missing or
    # damaged: damaged vectors are re-encoded, the other files are rewritten from them).
    if late and (
        changed or LATE_DIR in damage or not late_current  # unchanged: total_chunks is count_before
    ):
        embedder = get_embedder(settings)
        trusted_late = trusted is not None and late_current and LATE_DIR not in damage
        # Only papers added (none changed or removed): their rows follow the stored ones (rag.late_append).
        added_only = trusted_late and settings.index.late_merge and not stale and not rekeyed
        appended = None
        if added_only and todo and not any(p.id in indexed_before for p in todo):
            added = [c for p in todo for c in made[p.id]]
            appended = append_late(
                folder, added, embedder, settings.index.embed_model, settings.index.late_codec
            )
        if appended is None:
            stored_meta: dict[str, Any] | None = None
            if all_chunks is None and trusted_late:
                given = late_chunks(folder, papers, hashes, made, settings)  # unchanged papers: ids only
                if given is not None:
                    all_chunks, stored_meta = given
            if all_chunks is None:
                all_chunks = chunks_in_paper_order()
            consolidate(
                folder,
                all_chunks,
                embedder,
                settings.index.embed_model,
                settings.index.late_codec,
                settings.index.late_merge,
                stored_meta,
            )
    elif not late:
        shutil.rmtree(folder / LATE_DIR, ignore_errors=True)
        shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)

    # The records beside the collection (with what search derives from them: rag.records), written after the
    # vectors; the manifest last.
    write_records(folder, papers, record_lines(papers))
    old_counts = {k: v.get("chunks", 0) for k, v in indexed_before.items()}
    n_chunks: dict[str, int] = {}
    for c in new_chunks:
        n_chunks[c.paper_id] = n_chunks.get(c.paper_id, 0) + 1
    paper_hashes = {
        p.id: {
            "hash": hashes[p.id],
            "meta": digests[p.id],
            "chunks": n_chunks.get(p.id) or len(by_paper.get(p.id, {})) or old_counts.get(p.id, 0),
        }
        for p in papers
    }
    manifest = manifest_for(
        store,
        settings,
        papers=len(papers),
        chunks=total_chunks,
        signature=signature,
        stamp=read.files.stamp if read is not None else None,
        sources=read.record(folder) if read is not None else None,
        paper_hashes=paper_hashes,
    )
    save_manifest(manifest_path, manifest, old_manifest)
    store.drop_other_collections()
    store.mark_current({"papers": len(papers), "chunks": total_chunks})
    record_chroma(settings, folder, total_chunks)  # the next no-op trusts the count while the files stay
    published = publish(store) if settings.chroma_url else None  # for the other homes of this corpus
    return IndexStats(
        papers=len(papers),
        chunks=total_chunks,
        embedded=len(new_chunks),
        unchanged=len(papers) - len(todo),
        removed=len(removed_papers),
        seconds=round(time.perf_counter() - started, 3),
        collection=store.collection_name,
        fetched=fetched.bytes if fetched else 0,
        published=published.bytes if published else 0,
    )


def indexed_chunks(settings: Settings | None = None) -> list[Chunk]:
    """Every chunk of the home's index, in index order, its text re-made from the paper records beside the
    collection (what BM25 and ``late/`` were built from)."""
    settings = settings or Settings()
    papers = list(Store.open(settings).papers().values())
    return chunks_in_order(papers, {p.id: content_hash(p) for p in papers}, {}, settings)
