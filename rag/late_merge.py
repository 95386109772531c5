"""``late/`` with one row per distinct word piece per paper (``settings.index.late_merge``, rag.late).

A paper's chunks overlap (a sentence is repeated in the next chunk) and its words recur, so most of its
word pieces occur more than once: on SciFact, 1,527,660 kept pieces are 662,541 distinct (paper, piece)
pairs, 43 %. Each pair is stored once, as the mean of its unit rows: its direction (coded like any row:
int8 or ``pqN``, rag.late_codec) and its length in ``lengths.npy`` (float16), which search multiplies
into the cosine. The length is below 1 when the piece's contexts disagree, so a piece used in one sense
throughout counts more than one used in several. MaxSim over the merged rows scores SciFact test nDCG@10
0.7467 and train 0.7577 (int8 directions), against 0.7453 / 0.7565 for the int8 rows of every piece, and
``pq64`` of the directions keeps that (0.7459 / 0.7582 as shipped) at 8.7 KB per paper (docs/retrieval.md).

The rows belong to a paper, not a chunk: ``chunks.json`` still lists every chunk, with the paper's rows on
its first chunk and empty ranges on the others. A paper whose content hash is unchanged keeps its stored
rows (codes copied, or re-coded for another codec); a new or changed paper is merged from its chunks' rows
(this run's ``late.parts/``, the previous per-chunk store, or re-encoded), with each row's word-piece id
from the tokenizer (the rows are the kept pieces of the chunk text in order; a chunk whose count differs
is re-encoded).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.late_codec import INT8, SAMPLE_ROWS, ProductQuantiser, RowWriter, StoredRows, quantise, slices_of
from rag.late_segments import load_rows
from rag.writer_lock import swap_dir

if TYPE_CHECKING:
    from rag.late import TokenEncoder

log = logging.getLogger(__name__)

LENGTHS_FILE = "lengths.npy"
PIECES_FILE = "pieces.npy"
"""Each paper's distinct word-piece ids (every piece, stop words and special tokens included), papers in
store order: what the IDF counts, kept so a run that adds papers tokenises only those (``pieces_at.npy``
holds each paper's bounds)."""
PIECES_AT_FILE = "pieces_at.npy"
TOKEN_STEP = 2048  # chunk texts tokenised per call


def merge(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows and their word-piece ids → (unit direction of each distinct id's mean row, its length),
    ids ascending."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        return np.zeros((0, rows.shape[1] if rows.ndim == 2 else 1), np.float32), np.zeros(0, np.float32)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    sums = np.add.reduceat(np.asarray(rows, dtype=np.float32)[order], starts, axis=0)
    means = sums / np.diff(np.r_[starts, len(ids)])[:, None].astype(np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", means, means))
    return means / np.maximum(length, 1e-12)[:, None], length.astype(np.float32)


@dataclass
class PaperRows:
    """A paper's merged rows in a stored ``late/``: directions (int8 with scales, or codes of ``codec``) and
    lengths, rows ``start:end``."""

    data: Any
    scales: np.ndarray | None
    lengths: np.ndarray
    start: int
    end: int
    codec: ProductQuantiser | None = None
    pieces: np.ndarray | None = None  # the store's word-piece ids (None: a store without them) …
    pieces_span: tuple[int, int] = (0, 0)  # … of which this paper's distinct ones are these

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        dirs = StoredRows(self.data, self.scales, self.start, self.end, self.codec).floats()
        dirs /= np.maximum(np.sqrt(np.einsum("ij,ij->i", dirs, dirs)), 1e-12)[:, None]
        return dirs, np.asarray(self.lengths[self.start : self.end], dtype=np.float32)


def old_papers(
    old: Path, meta: dict[str, Any], pq: ProductQuantiser | None
) -> dict[tuple[str, str], PaperRows]:
    """A merged store's rows by (paper id, content hash)."""
    data = load_rows(old, meta)
    scales = np.load(old / "scales.npy") if pq is None else None
    lengths = np.load(old / LENGTHS_FILE, mmap_mode="r")
    pieces, bounds = stored_pieces(old, meta)
    found: dict[tuple[str, str], PaperRows] = {}
    group = -1
    last: tuple[str, str] | None = None
    for _cid, pid, h, s, e in meta["chunks"]:
        if (pid, h) != last:
            group, last = group + 1, (pid, h)
        if (pid, h) not in found:  # the paper's first chunk holds all its rows (none for stop words only)
            span = (int(bounds[group]), int(bounds[group + 1])) if pieces is not None else (0, 0)
            found[(pid, h)] = PaperRows(data, scales, lengths, int(s), int(e), pq, pieces, span)
    return found


def stored_pieces(old: Path, meta: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray]:
    """A merged store's per-paper word-piece ids and their bounds, or (None, …) for a store written before
    they were kept (or whose files do not agree with its paper count)."""
    if not meta.get("pieces"):
        return None, np.zeros(1, np.int64)
    try:
        pieces = np.load(old / PIECES_FILE, mmap_mode="r")
        bounds = np.load(old / PIECES_AT_FILE)
    except (OSError, ValueError):
        return None, np.zeros(1, np.int64)
    groups = len({(pid, h) for _c, pid, h, _s, _e in meta["chunks"]})
    if len(bounds) != groups + 1 or int(bounds[-1]) != len(pieces):
        log.warning("ignoring %s: it does not match the stored papers", old / PIECES_FILE)
        return None, np.zeros(1, np.int64)
    return pieces, bounds


Sources = tuple[
    dict[tuple[str, str], StoredRows], ProductQuantiser | None, dict[tuple[str, str], "PaperRows"]
]


class Merger:
    """Writes a merged ``late/`` (``vectors.npy``, ``scales.npy`` or ``codec.npz``, ``lengths.npy``) into a
    temporary folder; :meth:`write` returns each chunk's ``[start, end]`` in the order given."""

    def __init__(
        self,
        chunks: Sequence[Any],
        found: dict[tuple[str, str], StoredRows],
        papers: dict[tuple[str, str], PaperRows],
        token_ids: Callable[[list[str]], list[list[int]]],
        kept: Callable[[np.ndarray], np.ndarray],
        known: dict[tuple[str, str], np.ndarray] | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.found = found
        self.papers = papers
        self.groups: list[tuple[tuple[str, str], list[int]]] = []
        for i, c in enumerate(self.chunks):
            key = (c.paper_id, str(c.metadata.get("content_hash", "")))
            if self.groups and self.groups[-1][0] == key:
                self.groups[-1][1].append(i)
            else:
                self.groups.append((key, [i]))
        self.ids: dict[int, np.ndarray] = {}  # chunk position → its rows' word-piece ids (papers to merge)
        self.pieces: dict[int, np.ndarray] = {}  # group → its distinct word-piece ids, when not stored
        merging = {i for key, members in self.groups if key not in papers for i in members}
        todo = [  # the chunks of papers to merge, and of stored papers whose pieces were not kept
            (g, i)
            for g, (key, members) in enumerate(self.groups)
            if key not in papers or papers[key].pieces is None
            for i in members
        ]
        found_pieces: dict[int, list[np.ndarray]] = {}

        def take(g: int, i: int, ids: Any) -> None:
            every = np.asarray(ids, dtype=np.int64)
            found_pieces.setdefault(g, []).append(every)
            if i in merging:
                self.ids[i] = kept(every).astype(np.int32)

        known = known or {}
        given = [(g, i) for g, i in todo if self._key(i) in known]  # this run's forward pass kept them
        for g, i in given:
            take(g, i, known[self._key(i)])
        todo = [(g, i) for g, i in todo if self._key(i) not in known]
        for start in range(0, len(todo), TOKEN_STEP):
            part = todo[start : start + TOKEN_STEP]
            for (g, i), ids in zip(part, token_ids([self.chunks[i].text for _, i in part]), strict=True):
                take(g, i, ids)
        for g, lists in found_pieces.items():
            self.pieces[g] = np.unique(np.concatenate(lists))

    def missing(self) -> list[int]:
        """Positions of chunks to merge that have no stored rows, or whose rows and pieces disagree."""
        out = []
        for i, ids in self.ids.items():
            rows = self.found.get(self._key(i))
            if rows is None or rows.end - rows.start != len(ids):
                out.append(i)
        return out

    def set_rows(self, i: int, ids: np.ndarray, rows: StoredRows) -> None:
        """Rows re-encoded for chunk ``i``, with their word-piece ids."""
        self.ids[i] = np.asarray(ids, dtype=np.int32)
        self.found[self._key(i)] = rows

    def _key(self, i: int) -> tuple[str, str]:
        c = self.chunks[i]
        return (c.id, str(c.metadata.get("content_hash", "")))

    def _merged(self, key: tuple[str, str], members: list[int]) -> tuple[np.ndarray, np.ndarray]:
        stored = self.papers.get(key)
        if stored is not None:
            return stored.merged()
        have = [i for i in members if len(self.ids[i])]  # a chunk of stop words only has no rows
        if not have:
            return np.zeros((0, 1), np.float32), np.zeros(0, np.float32)
        rows = [self.found[self._key(i)].floats() for i in have]
        return merge(np.concatenate([self.ids[i] for i in have]), np.concatenate(rows))

    def counts(self) -> list[int]:
        return [
            self.papers[key].end - self.papers[key].start
            if key in self.papers
            else len(np.unique(np.concatenate([self.ids[i] for i in members])))
            for key, members in self.groups
        ]

    def fit(self, codec: str, counts: list[int], seed: int = 0) -> ProductQuantiser:
        """A product quantiser fitted on a uniform sample of the merged directions."""
        total = sum(counts)
        picks = np.sort(np.random.default_rng(seed).choice(total, min(SAMPLE_ROWS, total), replace=False))
        offsets = np.cumsum([0, *counts])
        sample: list[np.ndarray] = []
        for g, (key, members) in enumerate(self.groups):
            lo, hi = np.searchsorted(picks, [offsets[g], offsets[g + 1]])
            if hi > lo:
                sample.append(self._merged(key, members)[0][picks[lo:hi] - offsets[g]])
        rows = np.concatenate(sample) if sample else np.zeros((1, 1), np.float32)  # no rows at all
        return ProductQuantiser.fit(rows, slices_of(codec), seed=seed)

    def write(self, tmp: Path, codec: str, pq: ProductQuantiser | None) -> tuple[int, list[list[int]]]:
        """Write the rows; returns (vector dimension, each chunk's [start, end])."""
        counts = self.counts()
        if codec != INT8 and pq is None:
            pq = self.fit(codec, counts)
        total = sum(counts)
        first = next(((k, m) for (k, m), n in zip(self.groups, counts, strict=True) if n), None)
        dim = pq.dim if pq is not None else (self._merged(*first)[0].shape[1] if first is not None else 1)
        writer = RowWriter(tmp, total, dim, pq)
        lengths = np.zeros(total, dtype=np.float16)
        spans: list[list[int]] = [[0, 0] for _ in self.chunks]
        at = 0
        run: list[Any] = []  # kept papers' rows, contiguous in the old store: [rows, old start, old end, at]

        def copy_run() -> None:  # one copy per run of unchanged papers, not one per paper
            if run:
                stored, lo, hi, to = run
                rows = slice(lo, hi)
                writer.copy(to, stored.data[rows], None if stored.scales is None else stored.scales[rows])
                lengths[to : to + hi - lo] = stored.lengths[rows]
                run.clear()

        for (key, members), n in zip(self.groups, counts, strict=True):
            stored = self.papers.get(key)
            if stored is not None and writer.keeps(stored.scales, stored.codec):
                if run and run[0].data is stored.data and run[2] == stored.start:
                    run[2] = stored.end
                else:
                    copy_run()
                    run[:] = [stored, stored.start, stored.end, at]
            elif n:
                copy_run()
                dirs, lengths[at : at + n] = self._merged(key, members)
                writer.code(at, dirs)
            spans[members[0]] = [at, at + n]
            for i in members[1:]:
                spans[i] = [at + n, at + n]
            at += n
        copy_run()
        writer.close()
        np.save(tmp / LENGTHS_FILE, lengths)
        return dim, spans

    def write_pieces(self, tmp: Path, vocab_size: int) -> np.ndarray:
        """Write each paper's distinct word-piece ids (:data:`PIECES_FILE`); returns the document
        frequency of every vocabulary id over the papers (what the IDF counts). Stored papers' ids are
        taken in runs (one slice per run of consecutive unchanged papers), as their rows are."""
        parts: list[np.ndarray] = []
        sizes: list[int] = []
        run: list[Any] = []  # [stored ids, start, end]: unchanged papers' ids, contiguous in the old store

        def take_run() -> None:
            if run:
                parts.append(np.asarray(run[0][run[1] : run[2]], dtype=np.int64))
                run.clear()

        for g, (key, _members) in enumerate(self.groups):
            stored = self.papers.get(key)
            mine = self.pieces.get(g)
            if mine is None and stored is not None and stored.pieces is not None:
                lo, hi = stored.pieces_span
                sizes.append(hi - lo)
                if run and run[0] is stored.pieces and run[2] == lo:
                    run[2] = hi
                else:
                    take_run()
                    run[:] = [stored.pieces, lo, hi]
                continue
            take_run()
            mine = np.zeros(0, np.int64) if mine is None else mine[(mine >= 0) & (mine < vocab_size)]
            parts.append(mine)
            sizes.append(len(mine))
        take_run()
        bounds = np.cumsum([0, *sizes]).astype(np.int64)
        every = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        np.save(tmp / PIECES_FILE, every.astype(np.uint16 if vocab_size <= 1 << 16 else np.int32))
        np.save(tmp / PIECES_AT_FILE, bounds)
        return np.bincount(every, minlength=vocab_size)[:vocab_size]


def merged_for(
    chunks: Sequence[Any],
    found: dict[tuple[str, str], StoredRows],
    papers: dict[tuple[str, str], PaperRows],
    encoder: TokenEncoder,
    known: dict[tuple[str, str], np.ndarray] | None,
) -> tuple[Merger, int, np.ndarray, int]:
    """A :class:`Merger` of ``chunks`` with the rows no store or part had encoded into it; returns it, how
    many chunks were encoded, the query-side skip mask and the vocabulary size."""
    from rag.late import _skipped, skip_masks

    vocab, special = encoder.token_table()
    query_skip, paper_skip = skip_masks(vocab, special)
    kept = lambda ids: ids[~_skipped(ids, paper_skip)]  # noqa: E731
    merger = Merger(chunks, found, papers, encoder.token_ids, kept, known)
    missing = merger.missing()
    if missing:
        log.info("encoding word-piece vectors of %d chunk(s) not in the previous store", len(missing))
    for start in range(0, len(missing), 256):
        part = missing[start : start + 256]
        _, toks = encoder.encode_with_tokens([merger.chunks[i].text for i in part])
        for i, (ids_, vecs_) in zip(part, toks, strict=True):
            keep = ~_skipped(ids_, paper_skip)
            kept = np.asarray(vecs_, dtype=np.float32)[keep]
            q, sc = quantise(kept) if len(kept) else (np.zeros((0, 1), np.int8), np.zeros(0, np.float32))
            merger.set_rows(i, np.asarray(ids_)[keep], StoredRows(q, sc, 0, len(q)))
    return merger, len(missing), query_skip, len(vocab)


def chunk_rows(chunks: Sequence[Any], spans: Sequence[Sequence[int]], at: int = 0) -> list[list[Any]]:
    """``chunks.json``'s rows: ``[chunk id, paper id, hash, start, end]``, rows numbered from ``at``."""
    return [
        [c.id, c.paper_id, str(c.metadata.get("content_hash", "")), at + s, at + e]
        for c, (s, e) in zip(chunks, spans, strict=True)
    ]


def finish(
    folder: Path, tmp: Path, df: np.ndarray, papers: int, query_skip: np.ndarray, meta: dict[str, Any]
) -> None:
    """Complete the merged store in ``tmp`` (its rows, lengths and word pieces written) with the IDF of
    ``df`` over ``papers`` papers, the query skip mask and ``chunks.json`` (``meta``: dim, rows, chunks, …),
    then swap it in for ``late/`` and drop this run's parts."""
    from rag.late import LATE_DIR, MERGED_FORMAT, PARTS_DIR, idf_of, write_meta

    np.save(tmp / "idf.npy", idf_of(df, papers))
    np.save(tmp / "query_skip.npy", query_skip)
    write_meta(tmp, {"format": MERGED_FORMAT, "layout": "paper", **meta, "pieces": True})
    swap_dir(tmp, folder / LATE_DIR)
    shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)


def consolidate_merged(
    folder: Path,
    ordered: list[Any],
    encoder: TokenEncoder,
    model_id: str,
    codec: str,
    sources: Sources,
    known: dict[tuple[str, str], np.ndarray] | None = None,
) -> int:
    """:func:`rag.late.consolidate` with merged rows; ``sources`` as ``rag.late._old_sources`` found them,
    ``known`` the word-piece ids of this run's chunks (from ``late.parts/``: not tokenised again)."""
    from rag.late import LATE_DIR

    found, pq, papers = sources
    merger, missing, query_skip, vocab_size = merged_for(ordered, found, papers, encoder, known)
    tmp = folder / (LATE_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dim, spans = merger.write(tmp, codec, pq)
    df = merger.write_pieces(tmp, vocab_size)
    total = max((e for _, e in spans), default=0)
    meta = {"codec": codec, "model": model_id, "dim": dim, "rows": total}
    finish(folder, tmp, df, len(merger.groups), query_skip, {**meta, "chunks": chunk_rows(ordered, spans)})
    return missing
