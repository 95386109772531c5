"""Fusion: per-retriever paper scores (dense, BM25, late interaction) → one score per paper.

Pure functions, no index: :func:`aggregate_chunks` turns chunk hits into paper scores (best chunk),
:func:`fuse` combines the rankings (convex combination of normalised scores, or reciprocal-rank fusion).
The weights were tuned on the SciFact train split (docs/retrieval.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rag.errors import ConfigError

FUSIONS = ("convex", "rrf")


def aggregate_chunks(hits: list[Any]) -> dict[str, tuple[float, Any]]:
    """Chunk hits (``StoreHit``-like: ``paper_id``, ``distance``) → paper id → (best similarity, best hit)."""
    best: dict[str, tuple[float, Any]] = {}
    for hit in hits:
        sim = 1.0 - float(hit.distance)
        cur = best.get(hit.paper_id)
        if cur is None or sim > cur[0]:
            best[hit.paper_id] = (sim, hit)
    return best


def _normalise(values: np.ndarray, how: str) -> np.ndarray:
    if values.size == 0:
        return values
    if how == "minmax":
        lo, hi = float(values.min()), float(values.max())
        return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)
    if how == "zscore":
        sd = float(values.std())
        return (values - float(values.mean())) / sd if sd > 0 else np.zeros_like(values)
    if how == "max":
        hi = float(np.abs(values).max())
        return values / hi if hi > 0 else values
    raise ConfigError(f"Unknown score normalisation {how!r}: use minmax, zscore or max.")


def fuse(
    dense: Mapping[str, float],
    bm25: Mapping[str, float],
    *,
    method: str = "convex",
    dense_weight: float = 0.5,
    normalisation: str = "minmax",
    rrf_k: float = 60.0,
    late: Mapping[str, float] | None = None,
    late_weight: float = 0.0,
) -> dict[str, float]:
    """Fused score per paper id from {id: score} rankings (higher is better in each).

    ``convex``: ``(1 − l)·(w·norm(dense) + (1 − w)·norm(bm25)) + l·norm(late)``, scores normalised over each
    list; a paper missing from a list gets that list's lowest normalised score. ``rrf``: the same weights
    over ``1/(k + rank)``. ``w`` = ``dense_weight``; ``l`` = ``late_weight``, or 0 without ``late`` scores
    (then it is the two-way fusion with the same ``w``).
    """
    if method not in FUSIONS:
        raise ConfigError(f"Unknown fusion {method!r}: use one of {', '.join(FUSIONS)}.")
    w_late = float(late_weight) if late else 0.0
    w_dense = float(dense_weight)
    lists: list[tuple[float, Mapping[str, float]]] = [
        ((1.0 - w_late) * w_dense, dense),
        ((1.0 - w_late) * (1.0 - w_dense), bm25),
    ]
    if late:
        lists.append((w_late, late))
    out: dict[str, float] = {}
    if method == "rrf":
        for weight, scores in lists:
            for rank, pid in enumerate(sorted(scores, key=lambda p: -scores[p]), start=1):
                out[pid] = out.get(pid, 0.0) + weight / (rrf_k + rank)
        return out
    normed: list[tuple[float, dict[str, float], float]] = []
    for weight, scores in lists:
        ids = list(scores)
        values = _normalise(np.array([scores[i] for i in ids], dtype=np.float64), normalisation)
        floor = float(values.min()) if values.size else 0.0
        normed.append((weight, dict(zip(ids, values.tolist(), strict=True)), floor))
    for pid in set(dense) | set(bm25):
        out[pid] = sum(weight * values.get(pid, floor) for weight, values, floor in normed)
    return out
