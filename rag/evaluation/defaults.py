"""What the runners use unless a caller injects its own: the search, answer and index functions, plus
the small settings helpers every runner shares.

The runners call ``defaults.default_search()`` (and the others) through this module, so a test can
replace them with ``monkeypatch.setattr(rag.evaluation.defaults, "default_search", ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rag.errors import RagError
from rag.settings import Settings
from rag.types import Answer, Hits

SearchFn = Callable[..., Hits]
AnswerFn = Callable[..., Answer]
IndexFn = Callable[..., Any]


def default_search() -> SearchFn:
    try:
        from rag.retrieve import search
    except ImportError as exc:  # pragma: no cover - only before retrieval exists
        raise RagError(f"Retrieval is not available ({exc}); `rag eval` needs rag.retrieve.search.") from exc
    return search


def default_answer() -> AnswerFn:
    try:
        from rag.pipeline import answer
    except ImportError as exc:  # pragma: no cover - only before the pipeline exists
        raise RagError(
            f"The answer pipeline is not available ({exc}); `rag eval --answers` needs it."
        ) from exc
    return answer


def default_index() -> IndexFn:
    from rag.index import build_index

    return build_index


def with_retrieve(settings: Settings, **retrieve: Any) -> Settings:
    """A deep copy of ``settings`` with some ``retrieve`` fields replaced."""
    s = settings.model_copy(deep=True)
    for key, value in retrieve.items():
        setattr(s.retrieve, key, value)
    return s


def settings_summary(settings: Settings) -> dict[str, Any]:
    return {
        "embed_model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "late_interaction": settings.index.late_interaction,
        "retrieve": settings.retrieve.model_dump(mode="json"),
    }


def stamp() -> tuple[str, str]:
    """(``YYYYmmdd-HHMMSS`` for file names, ISO time for the report), in UTC."""
    now = datetime.now(UTC)
    return now.strftime("%Y%m%d-%H%M%S"), now.isoformat(timespec="seconds")


def share(flags: list[bool]) -> float | None:
    """The share of True, rounded to 4 decimals; None for no flags."""
    return round(sum(flags) / len(flags), 4) if flags else None
