"""Papers added to a merged ``late/`` without going over the stored ones (``rag index`` adding papers).

When a run only adds papers — no stored paper changed or went away — the stored rows, lengths and word
pieces stay as they are and the new papers' rows follow them. The new papers' chunks are merged and coded by
:class:`rag.late_merge.Merger` exactly as the full rewrite (:func:`rag.late_merge.consolidate_merged`) codes
them, with the stored product quantiser, into a scratch folder; the new ``late/`` is the stored files with
those appended, swapped in whole like any rewrite. Nothing is done per stored paper in Python: at 100k papers
the full rewrite spent ~7 s building objects for the 280k stored chunks and re-reading their word pieces
(docs/scale.md). For the same papers in the same order the files equal the full rewrite's
(tests/test_late_append.py compares them).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.late import LATE_DIR, _codec_of, part_rows
from rag.late_codec import CODEC_FILE, INT8, ProductQuantiser
from rag.late_merge import (
    LENGTHS_FILE,
    PIECES_AT_FILE,
    PIECES_FILE,
    chunk_rows,
    finish,
    merged_for,
    stored_pieces,
)
from rag.late_meta import read_meta
from rag.late_segments import MAX_SEGMENTS, SEGMENTS_KEY, load_rows, segment_name, segment_rows

log = logging.getLogger(__name__)

SCRATCH_DIR = "late.add"
BLOCK_ROWS = 1 << 22  # stored rows copied at once


def append(folder: Path, added: Sequence[Any], encoder: Any, model_id: str, codec: str) -> int | None:
    """Append the papers whose chunks are ``added`` (each paper's chunks together, in order; none of these
    papers in the store) to the merged ``late/`` in ``folder``. Returns how many chunks had to be encoded
    (they were not in this run's ``late.parts/``), or None when the store cannot be appended to — missing,
    damaged, another model, codec or layout, written before word pieces were kept, or already holding one of
    the papers: the caller then rewrites it whole (:func:`rag.late.consolidate`)."""
    old = folder / LATE_DIR
    try:
        meta = read_meta(old)
        if not (
            meta.get("layout") == "paper"
            and meta.get("pieces") is True
            and meta.get("model") == model_id
            and _codec_of(meta) == codec
        ):
            return None
        stored = _Stored(old, meta, codec)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("rewriting the word-piece store whole: %s", exc)
        return None
    if any(c.paper_id in stored.papers for c in added):
        return None
    found: dict[tuple[str, str], Any] = {}
    known = part_rows(folder, found)
    merger, missing, query_skip, vocab_size = merged_for(added, found, {}, encoder, known)
    scratch, tmp = folder / SCRATCH_DIR, folder / (LATE_DIR + ".tmp")
    try:
        for path in (scratch, tmp):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        _, spans = merger.write(scratch, codec, stored.pq)
        merger.write_pieces(scratch, vocab_size)
        every, segments = stored.write_with(scratch, tmp)
    except (OSError, ValueError) as exc:  # the parts are still there: the full rewrite uses them
        log.warning("rewriting the word-piece store whole: appending failed (%s)", exc)
        for path in (scratch, tmp):
            shutil.rmtree(path, ignore_errors=True)
        return None
    shutil.rmtree(scratch, ignore_errors=True)
    df = np.bincount(every, minlength=vocab_size)[:vocab_size]
    at = stored.rows
    total = at + max((e for _, e in spans), default=0)
    done = {"codec": codec, "model": model_id, "dim": meta.get("dim"), "rows": total}
    done["chunks"] = meta["chunks"] + chunk_rows(added, spans, at)
    if len(segments) > 1:
        done[SEGMENTS_KEY] = segments
    finish(folder, tmp, df, stored.groups + len(merger.groups), query_skip, done)
    log.info("appended %d paper(s) to the word-piece store", len(merger.groups))
    return missing


class _Stored:
    """The files of a merged ``late/`` that an append extends, checked to agree with its ``chunks.json``."""

    def __init__(self, old: Path, meta: dict[str, Any], codec: str) -> None:
        self.old = old
        self.pq = None if codec == INT8 else ProductQuantiser.load(old / CODEC_FILE)
        self.vectors = load_rows(old, meta)
        self.segments = segment_rows(meta) or [len(self.vectors)]
        self.lengths = np.load(old / LENGTHS_FILE, mmap_mode="r")
        self.rows = int(meta["rows"])
        if len(self.vectors) != self.rows or len(self.lengths) != self.rows:
            raise ValueError(f"{old} holds {len(self.vectors)} rows, its chunks.json {self.rows}")
        pieces, bounds = stored_pieces(old, meta)
        if pieces is None:
            raise ValueError(f"{old / PIECES_FILE} does not match the stored papers")
        self.pieces, self.bounds = pieces, bounds
        self.groups = len(bounds) - 1
        self.papers = {row[1] for row in meta["chunks"]}

    def write_with(self, scratch: Path, tmp: Path) -> tuple[np.ndarray, list[int]]:
        """Write into ``tmp`` the stored rows, lengths and word pieces followed by those in ``scratch``;
        returns every paper's word pieces (what the IDF counts) and the row count of each row file. The
        stored row files are linked, not copied (rag.late_segments), up to :data:`MAX_SEGMENTS` files."""
        new = np.load(scratch / "vectors.npy", mmap_mode="r")
        if new.shape[1:] != self.vectors.shape[1:] or new.dtype != self.vectors.dtype:
            raise ValueError(f"new rows {new.dtype}{new.shape[1:]} do not fit {self.old / 'vectors.npy'}")
        segments = self._rows_into(tmp, scratch / "vectors.npy", len(new))
        if self.pq is None:
            scales = [np.load(folder / "scales.npy") for folder in (self.old, scratch)]
            np.save(tmp / "scales.npy", np.concatenate(scales))
        else:
            shutil.copyfile(scratch / CODEC_FILE, tmp / CODEC_FILE)
        np.save(tmp / LENGTHS_FILE, np.concatenate([self.lengths, np.load(scratch / LENGTHS_FILE)]))
        pieces = np.concatenate([self.pieces, np.load(scratch / PIECES_FILE)])
        added_at = np.load(scratch / PIECES_AT_FILE)
        np.save(tmp / PIECES_FILE, pieces)
        np.save(tmp / PIECES_AT_FILE, np.concatenate([self.bounds, self.bounds[-1] + added_at[1:]]))
        return np.asarray(pieces, dtype=np.int64), segments

    def _rows_into(self, tmp: Path, new_file: Path, n_new: int) -> list[int]:
        """The stored row files linked into ``tmp`` and ``new_file`` after them; or, past
        :data:`MAX_SEGMENTS` files, every row copied into one file."""
        if n_new and len(self.segments) >= MAX_SEGMENTS:
            new = np.load(new_file, mmap_mode="r")
            shape = (self.rows + n_new, *new.shape[1:])
            out = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=new.dtype, shape=shape)
            for start in range(0, self.rows, BLOCK_ROWS):
                end = min(start + BLOCK_ROWS, self.rows)
                out[start:end] = self.vectors[start:end]
            out[self.rows :] = new
            out.flush()
            del out
            return [self.rows + n_new]
        for k in range(len(self.segments)):
            _link(self.old / segment_name(k), tmp / segment_name(k))
        if not n_new:
            return list(self.segments)
        os.replace(new_file, tmp / segment_name(len(self.segments)))
        return [*self.segments, n_new]


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a second name of ``src`` (no copy; row files are never written in place), or a copy
    where the file system has no hard links."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
