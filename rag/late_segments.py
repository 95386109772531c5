"""``late/``'s rows in more than one file: ``vectors.npy``, then ``vectors.1.npy``, ``vectors.2.npy``, …

A run that only adds papers (rag.late_append) writes their rows as one more file and links the stored files
into the new ``late/`` unchanged, instead of copying every stored row: at a million papers the rows are
~12 GB. ``chunks.json`` (and ``info.json``) list each file's row count under ``"segments"``; a store without
the key has the one file. Rows are numbered across the files in order, so a paper's ``[start, end)`` is
unchanged by how they are split; no paper's rows straddle two files. A full rewrite writes one file again,
and so does an append once there are :data:`MAX_SEGMENTS` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SEGMENTS_KEY = "segments"
MAX_SEGMENTS = 16


def segment_name(k: int) -> str:
    return "vectors.npy" if k == 0 else f"vectors.{k}.npy"


def is_segment(name: str) -> bool:
    """Whether a file name in ``late/`` is a row file (``vectors.npy`` or ``vectors.<k>.npy``)."""
    parts = name.split(".")
    if parts[0] != "vectors" or parts[-1] != "npy":
        return False
    return len(parts) == 2 or (len(parts) == 3 and parts[1].isdigit())


def segment_rows(meta: dict[str, Any]) -> list[int] | None:
    """The row count of each file, or None for a store of one file."""
    rows = meta.get(SEGMENTS_KEY)
    return [int(n) for n in rows] if isinstance(rows, list) and rows else None


def load_rows(late_dir: Path, meta: dict[str, Any]) -> Any:
    """The store's rows, memory-mapped: the array of ``vectors.npy``, or :class:`Rows` over its files
    (ValueError when they do not hold the rows ``meta`` lists)."""
    counts = segment_rows(meta)
    if counts is None:
        return np.load(late_dir / "vectors.npy", mmap_mode="r")
    parts = [np.load(late_dir / segment_name(k), mmap_mode="r") for k in range(len(counts))]
    if [len(p) for p in parts] != counts:
        raise ValueError(f"the row files in {late_dir} hold {[len(p) for p in parts]} rows, not {counts}")
    if any(p.dtype != parts[0].dtype or p.shape[1:] != parts[0].shape[1:] for p in parts):
        raise ValueError(f"the row files in {late_dir} have different row types")
    return Rows(parts)


class Rows:
    """Rows numbered across several arrays, read like one: ``len``, ``shape``, ``dtype``, ``ndim``, a slice
    (a view when it lies in one array) or an array of row numbers."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.bounds = np.cumsum([0, *(len(p) for p in parts)])
        self.dtype = parts[0].dtype
        self.shape = (int(self.bounds[-1]), *parts[0].shape[1:])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("rows are read in steps of one")
            if stop <= start:
                return self.parts[0][0:0]
            k = int(np.searchsorted(self.bounds, start, side="right")) - 1
            if stop <= self.bounds[k + 1]:
                return self.parts[k][start - self.bounds[k] : stop - self.bounds[k]]
            return self[np.arange(start, stop)]
        rows = np.asarray(key, dtype=np.int64)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        owner = np.searchsorted(self.bounds, rows, side="right") - 1
        for k in np.unique(owner).tolist():
            mine = owner == k
            out[mine] = self.parts[k][rows[mine] - self.bounds[k]]
        return out
