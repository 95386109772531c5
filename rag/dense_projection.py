"""Fewer dimensions for the vectors in Chroma's memory (``index.dense_dims``), so a large index fits.

Chroma's local index keeps every chunk vector as float32 in memory: 384 numbers per chunk for MiniLM, 4.2 GB
of a 1M-paper index's 5.5 GB HNSW (docs/scale.md). With ``index.dense_dims`` set (128 is the documented
choice), the vectors Chroma indexes and the question's vector are projected onto the corpus's leading
principal directions (uncentred: the top right singular vectors of a sample of its chunk vectors) and
renormalised; Chroma finds the nearest chunks among those.

Those are only candidates. A projected cosine is off by a few hundredths (it runs high: the dropped directions
carry part of every vector's length), and search's calibrated relevance moves by a quarter for 0.01 of cosine
(rag.relevance). So each chunk's full vector also sits in its Chroma metadata (key :data:`FULL_KEY`: int8
with one scale, base64, 520 characters; on disk in SQLite, not in memory), and :meth:`rag.store.Store.query`
re-scores the candidates by their full cosine: search sees the same similarities as without the projection,
within int8's rounding.

The projection is fitted once, on the first run that embeds chunks (a sample of up to :data:`SAMPLE` chunks
of that run, embedded an extra time), and saved as :data:`FILE` beside the collection: every later vector
must go through the same one, so it never changes while the collection holds vectors. ``rag index`` embeds
everything again when it is missing or unreadable (:func:`lost`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError, IndexMissingError

if TYPE_CHECKING:
    from rag.store import Store, StoreHit

log = logging.getLogger(__name__)

FILE = "dense.npz"
SAMPLE = 2048
"""Chunks embedded to fit the projection (the first run's, chosen by a hash of their ids)."""
FULL_KEY = "v"
"""The chunk metadata key holding its full vector (:func:`pack`)."""


@dataclass(frozen=True)
class Projection:
    basis: np.ndarray
    """(model dimensions, dims) float32, orthonormal columns."""

    @property
    def dims(self) -> int:
        return int(self.basis.shape[1])

    def vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """``embeddings`` (n, model dimensions) projected and renormalised, float32."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.basis.shape[0]:
            raise ConfigError(
                f"vectors of {x.shape[-1]} dimensions do not fit this index's projection from "
                f"{self.basis.shape[0]}: the embedding model changed; run `rag index`."
            )
        y = x @ self.basis
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        return np.asarray(y / np.maximum(norms, 1e-12), dtype=np.float32)


def pack(embeddings: np.ndarray) -> list[str]:
    """Each row as int8 (scaled by its largest magnitude) + that scale as float32, base64: the text kept
    under :data:`FULL_KEY`."""
    x = np.asarray(embeddings, dtype=np.float32)
    scale = np.maximum(np.abs(x).max(axis=1), 1e-12) / 127.0
    codes = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return [
        base64.b64encode(row.tobytes() + np.float32(s).tobytes()).decode("ascii")
        for row, s in zip(codes, scale, strict=True)
    ]


def unpack(text: object, dims: int) -> np.ndarray | None:
    """The unit vector :func:`pack` wrote, or None when ``text`` is not one of ``dims`` numbers."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    if len(raw) != dims + 4:
        return None
    vec = np.frombuffer(raw[:dims], dtype=np.int8).astype(np.float32) * np.frombuffer(raw[dims:], np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 and np.isfinite(norm) else None


def rescored(
    collection: Any, query: np.ndarray, hits: list[StoreHit], allowed: set[str] | None, limit: int | None
) -> list[StoreHit]:
    """Of ``hits`` (nearest first by the projected vectors), those of ``allowed`` papers (all when None), at
    most ``limit``, with the cosine distance of their full vectors read from ``collection``, nearest first."""
    hits = [h for h in hits if allowed is None or h.paper_id in allowed][:limit]
    if not hits:  # (Chroma refuses a get of no ids)
        return []
    got = collection.get(ids=[h.chunk_id for h in hits], include=["metadatas"])
    full = dict(zip(got["ids"], got.get("metadatas") or [], strict=False))
    exact = full_distances(query, [full.get(h.chunk_id) for h in hits], [h.distance for h in hits])
    return sorted((replace(h, distance=d) for h, d in zip(hits, exact, strict=True)), key=_distance)


def _distance(hit: StoreHit) -> float:
    return hit.distance


def full_distances(query: np.ndarray, metas: Sequence[Any], projected: Sequence[float]) -> list[float]:
    """Cosine distances of the unit ``query`` to the full vectors in ``metas`` (:data:`FULL_KEY`); a chunk
    without a readable one keeps its ``projected`` distance."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    out = []
    for meta, dist in zip(metas, projected, strict=True):
        full = unpack((meta or {}).get(FULL_KEY), q.shape[0])
        out.append(1.0 - float(full @ q) if full is not None else float(dist))
    return out


def sample(ids: Sequence[str], n: int = SAMPLE) -> list[int]:
    """Positions of up to ``n`` of ``ids``, the same ones whatever their order (by a hash of each id)."""
    keyed = sorted(range(len(ids)), key=lambda i: hashlib.blake2b(ids[i].encode(), digest_size=8).digest())
    return sorted(keyed[:n])


def fit(embeddings: np.ndarray, dims: int) -> Projection:
    """The projection onto ``dims`` leading directions of ``embeddings`` (unit rows)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if dims >= x.shape[1]:
        raise ConfigError(
            f"index.dense_dims is {dims}, not fewer than the embedding model's {x.shape[1]} dimensions: "
            "unset it (RAG_INDEX__DENSE_DIMS) or choose fewer."
        )
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    basis = vt[:dims].T
    if basis.shape[1] < dims:  # fewer sample rows than dims: complete the basis, deterministically
        extra = np.random.default_rng(0).standard_normal((x.shape[1], dims - basis.shape[1]))
        basis, _ = np.linalg.qr(np.hstack([basis, extra]))
    return Projection(np.ascontiguousarray(basis, dtype=np.float32))


def save(folder: Path, projection: Projection) -> None:
    """Write :data:`FILE` (atomically: a reader sees the whole file or none)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (FILE + ".tmp.npz")
    np.savez(tmp, basis=projection.basis)
    tmp.replace(folder / FILE)


def load(folder: Path) -> tuple[Projection | None, str | None]:
    """(the folder's projection, None), or (None, why it cannot be used) — "missing" when there is none."""
    path = folder / FILE
    if not path.exists():
        return None, "missing"
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                return None, f"{path} is not a NumPy .npz file"
        with np.load(path, allow_pickle=False) as got:
            basis = np.asarray(got["basis"], dtype=np.float32)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}: {exc})"
    if basis.ndim != 2 or basis.shape[1] >= basis.shape[0]:
        return None, f"{path} has the wrong shape {basis.shape}"
    if not np.isfinite(basis).all():
        return None, f"{path} holds non-finite numbers"
    return Projection(basis), None


def required(folder: Path, dims: int) -> Projection:
    """The folder's projection, or :class:`IndexMissingError` saying what is wrong and what repairs it."""
    got, why = load(folder)
    if got is None:
        where = f"missing from {folder}" if why == "missing" else why
        raise IndexMissingError(
            f"The index's vectors were reduced to {dims} dimensions (index.dense_dims) and their projection "
            f"is {where}: run `rag index`, which embeds the corpus again with a new one."
        )
    return got


def fit_for(store: Store, chunks: Sequence[Any], embedder: Any) -> bool:
    """Fit and save ``store``'s projection from a sample of ``chunks`` when ``index.dense_dims`` is set and
    the index has none yet; True when it did (the chunks' vectors are written after this)."""
    dims = store.settings.index.dense_dims
    if dims is None or not chunks or load(store.folder)[0] is not None:
        return False
    picked = [chunks[i] for i in sample([c.id for c in chunks])]
    projection = fit(np.asarray(embedder.encode([c.text for c in picked]), dtype=np.float32), dims)
    save(store.folder, projection)
    store._projection = projection
    log.info("vectors reduced to %d dimensions, fitted on %d chunks", dims, len(picked))
    return True


def lost(store: Store, manifest: dict[str, Any]) -> str | None:
    """Why the collection's vectors cannot be used: ``index.dense_dims`` is set, the collection holds
    vectors, and their projection is missing, unreadable or changed since the run that wrote ``manifest``
    (the index's, as the caller read it: its fingerprint there); ``rag index`` then embeds them again."""
    if store.settings.index.dense_dims is None or not (store.count_at_open or 0):
        return None
    from rag.integrity import damaged

    files = manifest.get("files")
    recorded = files.get(FILE) if isinstance(files, dict) else None
    return load(store.folder)[1] or damaged(store.folder / FILE, recorded)


def clear(store: Store) -> None:
    """Remove every chunk of ``store``'s collection (which stays, with its metadata): after :func:`lost`."""
    page = max(1000, min(store.max_batch_size(), 20000))
    with store._guard():
        while ids := store.collection.get(include=[], limit=page)["ids"]:
            store.collection.delete(ids=ids)
    store.count_at_open = 0
