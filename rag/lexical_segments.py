"""Segments of the BM25 index (format 3): the on-disk layout, loading, and the merge policy.

``bm25/`` holds the params file ``rag_lexical.json`` (``"format": 3``, the tokenizer/k1/b/title_weight it
was built with, and a list of segments) and one folder per segment, ``seg-<uuid8>/``: a bm25s index (written
by ``BM25.save``), its paper ids in bm25s document order (``rag_ids.json``; and as
:meth:`rag.idmap.IdMap.arrays`, ``rag_ids.npy`` with ``rag_order.npy``, what loading reads: memory-mapped,
no Python string per paper — a segment written before them is read from the JSON) and, once some of its
papers are dead, ``df_live-<uuid8>.npy``: per vocabulary column, how many of its live papers contain the
term. A segment entry in the params file names its folder, its paper count, its dead positions (papers
removed or superseded since the segment was written) and its ``df_live`` file. Segment files are never
changed after they are written: a new index is made by hard-linking them into a new folder (readers in other
processes may have the old ones open), with new dead lists and ``df_live`` files beside them.

A format-2 folder (one bm25s index at the root of ``bm25/``, its ids in the params file) loads as one segment
named ``""`` with no dead papers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMissingError
from rag.idmap import IdMap

PARAMS_FILE = "rag_lexical.json"
IDS_FILE = "rag_ids.json"
ID_ARRAYS = ("rag_ids.npy", "rag_order.npy")
"""The segment's ids as :meth:`rag.idmap.IdMap.arrays`: sorted UTF-8 ids, and each one's document number."""
SEGMENT_PREFIX = "seg-"
DF_PREFIX = "df_live-"
BM25S_FILES = (
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "vocab.index.json",
    "params.index.json",
    "nonoccurrence_array.index.npy",
)
"""The files ``bm25s.BM25.save`` writes (the last only for the bm25l/bm25+ methods; no corpus is saved)."""

MERGE_FACTOR = 2.0
"""Geometric merging: while the smallest segment has at most this many times the papers of the batch being
written, its live papers are folded into the batch. Every segment then has over twice the papers of the next
one, so there are at most ~log2(N) + 1 of them; each paper is re-made O(log N) times over the index's life."""
DEAD_SHARE = 0.3
"""A segment whose dead papers are over this share of it is rebuilt (its live papers join the batch)."""


def lucene_idf(df: int, n: int) -> float:
    """BM25's IDF as bm25s computes it for method "lucene": ``log(1 + (N − df + 0.5)/(df + 0.5))``."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


@dataclass(eq=False)
class Segment:
    """One bm25s index over some papers. ``ids`` are all the papers it was built over (bm25s document order;
    an :class:`rag.idmap.IdMap`, not a Python string per paper), ``dead`` the sorted positions of those no
    longer in the index. ``retriever`` and ``df_live`` are set by :meth:`open`."""

    name: str
    path: Path
    ids: IdMap
    dead: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    df_file: str | None = None
    retriever: Any = None
    df_live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dead_changed: bool = False

    @property
    def n_live(self) -> int:
        return len(self.ids) - len(self.dead)

    @property
    def live(self) -> np.ndarray:
        """Positions of the live papers, in order."""
        return np.setdiff1d(np.arange(len(self.ids)), self.dead, assume_unique=True)

    def live_ids(self) -> list[str]:
        return self.ids.ids_of(self.live)

    def kill(self, gone: set[str]) -> None:
        """Mark the papers in ``gone`` dead (``dead_changed`` says whether any was live)."""
        dead = np.union1d(self.dead, self.ids.rows(gone))
        self.dead_changed = self.dead_changed or len(dead) != len(self.dead)
        self.dead = dead

    def open(self, bm25s: Any) -> Segment:
        """Load the bm25s index and the live document frequencies (raises what loading raises)."""
        # memory-mapped: a search reads only its terms' postings, so serving memory does not hold them all
        self.retriever = bm25s.BM25.load(str(self.path), load_corpus=False, mmap=True)
        n_docs = self.retriever.scores.get("num_docs")
        if n_docs is not None and int(n_docs) != len(self.ids):
            raise ValueError(f"{self.path} has {n_docs} documents for {len(self.ids)} paper ids")
        if len(self.dead) and (self.dead[0] < 0 or self.dead[-1] >= len(self.ids)):
            raise ValueError(f"{self.path}: a dead position is out of range")
        built = np.diff(self.retriever.scores["indptr"])
        if self.df_file is None:
            self.df_live = built
        else:
            self.df_live = np.load(self.path / self.df_file)
            if self.df_live.shape != built.shape:
                raise ValueError(f"{self.path / self.df_file} does not match the segment's vocabulary")
        return self

    def column(self, term: str) -> int | None:
        """The term's column in this segment's score matrix, or None when no paper of it has the term."""
        col = self.retriever.vocab_dict.get(term)
        return col if col is not None and col < len(self.df_live) else None

    def postings(self, col: int) -> np.ndarray:
        """Positions of the papers (dead ones included) that contain the column's term."""
        scores = self.retriever.scores
        return np.asarray(scores["indices"][scores["indptr"][col] : scores["indptr"][col + 1]])

    def idf_built(self, col: int) -> float:
        """The IDF bm25s baked into this segment's scores for the column (as stored: float32)."""
        df = int(self.retriever.scores["indptr"][col + 1] - self.retriever.scores["indptr"][col])
        return float(np.float32(lucene_idf(df, len(self.ids))))


def compute_df_live(path: Path, dead: np.ndarray, n_docs: int) -> np.ndarray:
    """Per column of the segment in ``path`` (``n_docs`` papers), how many of its live papers have the
    term."""
    indptr = np.load(path / "indptr.csc.index.npy")
    indices = np.load(path / "indices.csc.index.npy", mmap_mode="r")
    mask = np.zeros(n_docs, dtype=bool)
    mask[dead] = True
    entries = np.flatnonzero(mask[indices])  # the dead papers' entries, in column order
    cols = np.searchsorted(indptr, entries, side="right") - 1
    return np.diff(indptr) - np.bincount(cols, minlength=len(indptr) - 1)


def write_segment(
    bm25s: Any, docs: list[list[str]], ids: list[str], folder: Path, k1: float, b: float
) -> dict[str, Any]:
    """Index ``docs`` (token lists, one per paper of ``ids``) with bm25s into a new segment folder under
    ``folder``; its params entry."""
    name = f"{SEGMENT_PREFIX}{uuid.uuid4().hex[:8]}"
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(docs, show_progress=False)
    retriever.save(str(folder / name))
    _write_ids(folder / name, ids)
    return {"dir": name, "docs": len(ids), "dead": [], "df_live": None}


def _write_ids(dest: Path, ids: list[str] | IdMap, with_json: bool = True) -> None:
    """A segment's id arrays (:data:`ID_ARRAYS`) and, ``with_json``, its ids file (new files: never one
    hard-linked from another segment)."""
    if with_json:
        (dest / IDS_FILE).write_text(json.dumps(list(ids)), encoding="utf-8")
    for file, arr in zip(ID_ARRAYS, (ids if isinstance(ids, IdMap) else IdMap(ids)).arrays(), strict=True):
        np.save(dest / file, arr)


def _read_ids(path: Path, docs: int) -> IdMap:
    """A segment's ids: its id arrays, memory-mapped, or the ids file of a segment written before them.
    Raises ValueError or OSError when they are damaged or are not ``docs`` ids."""
    if all((path / file).is_file() for file in ID_ARRAYS):
        sorted_ids, order = (np.load(path / file, mmap_mode="r") for file in ID_ARRAYS)
        if len(order) != docs:
            raise ValueError(f"{path / ID_ARRAYS[0]} lists {len(order)} papers, not {docs}")
        try:
            return IdMap.from_arrays(sorted_ids, order)
        except ValueError as exc:
            raise ValueError(f"{path / ID_ARRAYS[0]} and {ID_ARRAYS[1]} do not agree ({exc})") from exc
    ids = json.loads((path / IDS_FILE).read_text(encoding="utf-8"))
    if len(ids) != docs:
        raise ValueError(f"{path / IDS_FILE} lists {len(ids)} papers, not {docs}")
    return IdMap([str(p) for p in ids])


def link_segment(seg: Segment, folder: Path) -> dict[str, Any]:
    """Hard-link (or copy) ``seg``'s files into ``folder`` (a format-2 root segment gets a folder of its own),
    write its ids and live document frequencies there when needed; its params entry."""
    name = seg.name or f"{SEGMENT_PREFIX}{uuid.uuid4().hex[:8]}"
    dest = folder / name
    dest.mkdir(parents=True)
    names = [f for f in BM25S_FILES if (seg.path / f).is_file()]
    arrays = bool(seg.name) and all((seg.path / file).is_file() for file in ID_ARRAYS)
    names += [IDS_FILE] if seg.name else []
    names += list(ID_ARRAYS) if arrays else []
    df_file = seg.df_file
    if df_file is not None and not seg.dead_changed:
        names.append(df_file)
    for file in names:
        try:
            os.link(seg.path / file, dest / file)
        except OSError:
            shutil.copy2(seg.path / file, dest / file)
    if not arrays:  # a format-2 root segment, or one written before the id arrays
        _write_ids(dest, seg.ids, with_json=not seg.name)  # a named segment's ids file was linked
    if len(seg.dead) == 0:
        df_file = None
    elif seg.dead_changed or df_file is None:
        df_file = f"{DF_PREFIX}{uuid.uuid4().hex[:8]}.npy"
        np.save(dest / df_file, compute_df_live(seg.path, seg.dead, len(seg.ids)))
    return {"dir": name, "docs": len(seg.ids), "dead": seg.dead.tolist(), "df_live": df_file}


def read_params(folder: Path) -> dict[str, Any]:
    """The params file of the index in ``folder``; IndexMissingError naming the folder when it is missing,
    unreadable or of an unknown format."""
    try:
        params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
        fmt = params.get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise IndexMissingError(
            f"The BM25 index in {folder} is missing or unreadable ({exc}): run `rag index` to rebuild it."
        ) from exc
    if fmt not in (2, 3):
        raise IndexMissingError(
            f"The BM25 index in {folder} has an old format: run `rag index` to rebuild it."
        )
    return dict(params)


def segments_of(folder: Path, params: dict[str, Any]) -> list[Segment]:
    """The segments the params file lists (not opened); raises KeyError/TypeError/ValueError/OSError when the
    list or an ids file is damaged."""
    if params["format"] == 2:
        return [Segment("", folder, IdMap([str(pid) for pid in params["ids"]]))]
    out = []
    for entry in params["segments"]:
        name = str(entry["dir"])
        if not name.startswith(SEGMENT_PREFIX) or "/" in name:
            raise ValueError(f"bad segment folder name {name!r}")
        ids = _read_ids(folder / name, int(entry["docs"]))
        dead = np.unique(np.asarray(entry["dead"], dtype=np.int64))
        df_file = entry.get("df_live")
        df_name = str(df_file) if df_file else None
        out.append(Segment(name, folder / name, ids, dead, df_name))
    return out


def plan_merge(segments: list[Segment], batch: int) -> tuple[list[Segment], list[Segment]]:
    """Which segments to keep as they are and which to fold into the new segment of ``batch`` papers: those
    over :data:`DEAD_SHARE` dead, then, smallest first, while the smallest kept one has at most
    :data:`MERGE_FACTOR` times the papers of the growing batch. Kept ones come largest first."""
    kept: list[Segment] = []
    folded: list[Segment] = []
    for seg in segments:
        heavy = seg.n_live == 0 or len(seg.dead) > DEAD_SHARE * len(seg.ids)
        (folded if heavy else kept).append(seg)
    size = batch + sum(seg.n_live for seg in folded)
    kept.sort(key=lambda seg: -seg.n_live)
    while kept and size > 0 and kept[-1].n_live <= MERGE_FACTOR * size:
        seg = kept.pop()
        folded.append(seg)
        size += seg.n_live
    return kept, folded
