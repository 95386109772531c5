"""The optional rerank stage: a :class:`Reranker` protocol and a sentence-transformers cross-encoder.

Off by default (``settings.retrieve.rerank_model`` is None: no cross-encoder ships offline). With a
cross-encoder id or local folder (``RAG_RETRIEVE__RERANK_MODEL=cross-encoder/ms-marco-MiniLM-L-6-v2``, already
in the local Hugging Face cache) the top ``rerank_depth`` fused papers are re-scored on
(question, best chunk).

The cross-encoder itself is loaded by :func:`rag.embed.load_cross_encoder`, so that only ``rag/embed.py``
imports sentence-transformers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from rag.errors import EmbeddingModelError
from rag.settings import Settings

log = logging.getLogger(__name__)


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant. Scores only need to be comparable per call."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` (any cross-encoder id or local folder), loaded lazily."""

    def __init__(self, model_id: str, *, batch_size: int = 32) -> None:
        self.model_id = model_id
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            self._model = _load_cross_encoder(self.model_id)
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        model = self._load()
        scores = model.predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]


def _load_cross_encoder(model_id: str) -> Any:
    from rag.embed import load_cross_encoder  # the one door to sentence-transformers

    return load_cross_encoder(model_id)


@functools.lru_cache(maxsize=2)
def _cached(model_id: str) -> CrossEncoderReranker:
    return CrossEncoderReranker(model_id)


def get_reranker(settings: Settings | None = None) -> Reranker | None:
    """The reranker the settings name (one per model id per process), or None when reranking is off."""
    settings = settings or Settings()
    model_id = settings.retrieve.rerank_model
    if not model_id:
        return None
    return _cached(model_id)


def rerank_order(reranker: Reranker, query: str, passages: Sequence[str]) -> list[tuple[int, float]]:
    """(position, score) of ``passages``, best first by the reranker's score (stable on ties)."""
    scores = reranker.score(query, passages)
    if len(scores) != len(passages):
        raise EmbeddingModelError(
            f"The reranker returned {len(scores)} scores for {len(passages)} passages; check the model."
        )
    return sorted(enumerate(scores), key=lambda item: -item[1])
