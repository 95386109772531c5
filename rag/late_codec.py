"""How ``late/`` stores word-piece vectors (rag.late): int8 rows, or product-quantised codes.

``int8`` — each unit row as int8 × its dimension plus a float32 scale (``vector ≈ int8 row × scale``):
388 bytes per word piece for MiniLM's 384 dimensions, the format-1 store.

``pqN`` (product quantisation, Jégou et al. 2011, as in FAISS's ``IndexPQ``) — the unit row minus the
corpus's mean word piece is cut into ``N`` equal slices; each slice is replaced by the id (one byte) of
the nearest of 256 centroids that k-means (scikit-learn) fitted on that slice over a sample of the
corpus's rows. ``N`` bytes per word piece (``pq24``: 24 bytes, 16× smaller than int8). Search decodes the
candidates' rows — the mean plus the centroids of their codes — and takes their cosine with the
question's word-piece vectors: an estimate of the stored rows' cosine, with nothing of it dropped (not
the question's product with the mean, as a score on centred codes would). A decoded row is shorter than
the unit row it stands for (k-means centroids average), by more for unusual rows, so the decoded row is
normalised first (docs/retrieval.md measured both).

The codec (mean and centroids, ``codec.npz``) is fitted when ``late/`` is first written in this
encoding and reused while the corpus grows, so stored codes stay valid.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INT8 = "int8"
CODEC_FILE = "codec.npz"
CENTROIDS = 256  # one byte per code
SAMPLE_ROWS = 65_536
"""Rows the codec is fitted on (a uniform sample of the corpus's word pieces, fixed seed)."""
SEED_ROWS = 8_192
"""Rows of the sample, drawn uniformly, that k-means++ picks each slice's first centroids from."""
_STEP = 2_048
"""Rows encoded per block: the product block (rows × 256 floats, 2 MB) stays in the cache; on 200,000 pq64
rows 1,024–4,096 were equally fast (5.4–5.6 µs per row), 16,384 2.9x slower, 131,072 slower still; two
threads over blocks were slower than one (6.2–6.4 µs)."""


def check_name(name: str) -> str:
    """``int8`` or ``pqN`` with N a positive number of bytes; anything else raises ValueError."""
    if name == INT8 or re.fullmatch(r"pq[1-9][0-9]{0,3}", name):
        return name
    raise ValueError(f"late codec {name!r}: use int8 or pqN (N bytes per word piece, e.g. pq24)")


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows → (int8 rows, float32 scale per row) with ``int8 row × scale`` ≈ the row made unit-length.

    Each row is scaled so its largest component is ±127; the scale folds in the row's norm, so nothing
    is normalised first (one pass for the maximum, one for the norm, one to round).
    """
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=1) if v.size else np.zeros(len(v), np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", v, v))
    ok = (peak > 0) & (norm > 0)
    factor = np.where(ok, 127.0 / np.where(ok, peak, 1.0), 0.0).astype(np.float32)
    scaled = v * factor[:, None]
    np.rint(scaled, out=scaled)
    scale = np.where(ok, peak / (127.0 * np.where(ok, norm, 1.0)), 1.0).astype(np.float32)
    return scaled.astype(np.int8), scale


def dequantise(rows: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 rows and their scales → float32 unit rows."""
    return np.asarray(rows, dtype=np.float32) * np.asarray(scales, dtype=np.float32)[:, None]


@dataclass(frozen=True)
class ProductQuantiser:
    """``mean`` (dim,) and ``books`` (slices, 256, slice width) float32; the last slice is zero-padded
    when the dimension is not a multiple of the slices."""

    mean: np.ndarray
    books: np.ndarray

    @property
    def name(self) -> str:
        return f"pq{self.books.shape[0]}"

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, rows: np.ndarray, slices: int, *, seed: int = 0) -> ProductQuantiser:
        """Fit on unit rows (float32, at least one): their mean, then k-means per slice of the
        remainder (at most :data:`SAMPLE_ROWS` rows are used, fewer than 256 distinct rows give fewer
        distinct centroids)."""
        from sklearn.cluster import KMeans, kmeans_plusplus
        from sklearn.exceptions import ConvergenceWarning

        x = np.asarray(rows, dtype=np.float32)
        if len(x) > SAMPLE_ROWS:
            x = x[np.sort(np.random.default_rng(seed).choice(len(x), SAMPLE_ROWS, replace=False))]
        mean = x.mean(axis=0)
        parts = _slices(x - mean, slices)
        width = parts.shape[2]
        books = np.zeros((slices, CENTROIDS, width), dtype=np.float32)
        k = min(CENTROIDS, len(x))
        draw = max(k, min(SEED_ROWS, len(x)))
        seeding = np.sort(np.random.default_rng(seed).choice(len(x), draw, replace=False))
        for i in range(slices):
            with warnings.catch_warnings():  # few distinct rows (a tiny corpus): some centroids repeat
                warnings.simplefilter("ignore", ConvergenceWarning)
                # k-means++ seeds from a subsample: seeding the whole sample was 3/4 of the fit's time (43 of
                # 55 s for pq64; 256 rounds of distances to every row), Lloyd's iterations then use every row
                start, _ = kmeans_plusplus(parts[seeding, i], k, random_state=seed)
                km = KMeans(n_clusters=k, init=start, n_init=1, max_iter=25, random_state=seed)
                km.fit(parts[:, i])
            books[i, :k] = km.cluster_centers_
            books[i, k:] = km.cluster_centers_[0]  # unused ids decode to a real centroid
        return cls(mean.astype(np.float32), books)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Unit rows (n, dim) → codes (n, slices) uint8: each slice's nearest centroid.

        argmin |p − c|² = argmax p·c − |c|²/2, as one product per slice: the slice's parts with a 1
        appended against its centroids with −|c|²/2 appended. Blocks of :data:`_STEP` rows keep each
        (rows × 256) product in the cache: 200,000 pq64 rows took 5.5 µs per row, against 14 µs for a
        product then a subtraction over blocks of 16,384 (docs/scale.md)."""
        x = np.asarray(rows, dtype=np.float32)
        slices, _, width = self.books.shape
        codes = np.empty((len(x), slices), dtype=np.uint8)
        half = 0.5 * np.einsum("skw,skw->sk", self.books, self.books)
        books = np.concatenate([self.books, -half[:, :, None]], axis=2).transpose(0, 2, 1).copy()
        for start in range(0, len(x), _STEP):
            parts = _slices(x[start : start + _STEP] - self.mean, slices)  # rows × slices × width
            lifted = np.ones((slices, len(parts), width + 1), dtype=np.float32)
            lifted[:, :, :width] = parts.transpose(1, 0, 2)
            for i in range(slices):
                codes[start : start + _STEP, i] = np.argmax(lifted[i] @ books[i], axis=1)
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (n, slices) → float32 rows (n, dim): the mean plus each slice's centroid."""
        slices, k, width = self.books.shape
        ids = np.asarray(codes, dtype=np.intp) + np.arange(0, slices * k, k, dtype=np.intp)  # into flat books
        flat = self.books.reshape(slices * k, width)
        out = np.take(flat, ids.ravel(), axis=0).reshape(len(ids), slices * width)[:, : self.dim]
        out += self.mean  # np.take is ~3x faster than indexing books[slice, code] (6,000 rows: 1.7 vs 5 ms)
        return out

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(fh, mean=self.mean, books=self.books)

    @classmethod
    def load(cls, path: Path) -> ProductQuantiser:
        with np.load(path) as data:
            mean, books = np.asarray(data["mean"], np.float32), np.asarray(data["books"], np.float32)
        if mean.ndim != 1 or books.ndim != 3 or books.shape[1] != CENTROIDS or books.shape[0] < 1:
            raise ValueError(f"{path.name}: not a product quantiser (mean {mean.shape}, books {books.shape})")
        if books.shape[0] * books.shape[2] < mean.shape[0]:
            raise ValueError(f"{path.name}: centroids cover fewer dimensions than the mean")
        return cls(mean, books)


@dataclass
class StoredRows:
    """One chunk's stored rows: int8 rows with their scales, or codes of ``codec``."""

    data: Any
    scales: np.ndarray | None
    start: int
    end: int
    codec: ProductQuantiser | None = None

    def floats(self, at: np.ndarray | None = None) -> np.ndarray:
        """The chunk's rows as float32 rows; with ``at``, only the rows at those positions of ``data``."""
        where: Any = slice(self.start, self.end) if at is None else at
        rows = self.data[where]
        if self.scales is not None:
            return dequantise(rows, self.scales[where])
        assert self.codec is not None
        return self.codec.decode(rows)


def sample_rows(sources: Sequence[StoredRows], size: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """A uniform sample of ``size`` rows (all when there are fewer) over all sources, as float rows.

    Rows, not chunks, are drawn: a sample of whole chunks covers few papers (docs/retrieval.md)."""
    lengths = np.array([s.end - s.start for s in sources], dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros((1, 1), np.float32)
    picks = np.sort(np.random.default_rng(seed).choice(total, min(size, total), replace=False))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    owner = np.searchsorted(offsets, picks, side="right") - 1
    owners, firsts = np.unique(owner, return_index=True)  # picks are sorted, so each owner's are a run
    out: list[np.ndarray] = []
    for i, run in zip(owners.tolist(), np.split(picks, firsts[1:]), strict=True):
        out.append(sources[i].floats(run - offsets[i] + sources[i].start))
    return np.concatenate(out)


class RowWriter:
    """``vectors.npy`` of ``total`` rows written in order (int8 rows with ``scales.npy``, or ``pq``'s codes
    with ``codec.npz``): rows already in that form are copied, the others coded in blocks."""

    BLOCK = 65_536  # rows coded at once

    def __init__(self, tmp: Path, total: int, dim: int, pq: ProductQuantiser | None) -> None:
        self.tmp, self.pq = tmp, pq
        width = pq.books.shape[0] if pq is not None else dim
        dtype = np.int8 if pq is None else np.uint8
        self.out = np.lib.format.open_memmap(
            tmp / "vectors.npy", mode="w+", dtype=dtype, shape=(total, width)
        )
        self.scales = np.zeros(total, dtype=np.float32)
        self.pending: list[np.ndarray] = []
        self.pending_at = 0  # where the pending rows go (they are contiguous: a copy flushes them first)
        self.pending_rows = 0

    def keeps(self, scales: np.ndarray | None, codec: ProductQuantiser | None) -> bool:
        """Whether stored rows (with these scales, or codes of this codec) can be copied as they are."""
        return scales is not None if self.pq is None else codec is self.pq

    def copy(self, at: int, data: Any, scales: np.ndarray | None) -> None:
        """Stored rows (:meth:`keeps` them) into rows ``at…``."""
        self.flush()
        self.out[at : at + len(data)] = data
        if scales is not None:
            self.scales[at : at + len(data)] = scales

    def code(self, at: int, rows: np.ndarray) -> None:
        """Float rows into rows ``at…`` (right after the previous ones given here or copied)."""
        if not self.pending:
            self.pending_at = at
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        block = np.concatenate(self.pending)
        span = slice(self.pending_at, self.pending_at + len(block))
        if self.pq is None:
            self.out[span], self.scales[span] = quantise(block)
        else:
            self.out[span] = self.pq.encode(block)
        self.pending.clear()
        self.pending_rows = 0

    def close(self) -> None:
        """Code what is pending and write ``scales.npy`` or ``codec.npz`` beside the rows."""
        self.flush()
        self.out.flush()
        if self.pq is None:
            np.save(self.tmp / "scales.npy", self.scales)
        else:
            self.pq.save(self.tmp / CODEC_FILE)


def write_rows(tmp: Path, sources: Sequence[StoredRows], pq: ProductQuantiser | None) -> int:
    """``vectors.npy`` (int8 rows, with ``scales.npy``; or ``pq``'s codes, with ``codec.npz``) for the
    sources in order; returns the vector dimension. Rows already in the wanted form are copied; the rest
    are re-coded in blocks."""
    total = sum(s.end - s.start for s in sources)
    first = next((s for s in sources if s.end > s.start), None)
    dim = pq.dim if pq is not None else (first.floats().shape[1] if first is not None else 1)
    writer = RowWriter(tmp, total, dim, pq)
    at = 0
    for s in sources:
        n = s.end - s.start
        if n and writer.keeps(s.scales, s.codec):
            writer.copy(at, s.data[s.start : s.end], None if s.scales is None else s.scales[s.start : s.end])
        elif n:
            writer.code(at, s.floats())
        at += n
    writer.close()
    return dim


def _slices(x: np.ndarray, slices: int) -> np.ndarray:
    """(n, dim) → (n, slices, width), zero-padding the dimension up to slices × width."""
    width = -(-x.shape[1] // slices)
    if width * slices != x.shape[1]:
        x = np.pad(x, ((0, 0), (0, width * slices - x.shape[1])))
    return x.reshape(len(x), slices, width)


def slices_of(name: str) -> int:
    """The bytes per word piece of a ``pqN`` codec name."""
    return int(check_name(name)[2:])
