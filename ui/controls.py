"""The page's inputs: example questions, the filter controls' choices, and the API's Filters built from them.

No Gradio import: pure functions, unit-tested fast.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rag.errors import ConfigError, RagError
from rag.settings import PROJECT_ROOT, Settings
from rag.types import Filters, Paper

log = logging.getLogger(__name__)

EXAMPLES = (
    "Which papers study jailbreaking attacks on safety-aligned large language models?",
    "Which papers by Maksym Andriushchenko appeared in 2020?",
    "How many papers did Nicolas Flammarion co-author in 2023?",
    "How many assessment questions from EPFL STEM courses can GPT-4 answer correctly?",
    "What has been written about the Lion optimizer?",
    "Can rephrasing a harmful request as a question about how people did it in the past get around an "
    "LLM's refusal?",
)
"""Example questions: questions of the eval set (eval/questions.jsonl) whose answering papers it lists.
The first three get list answers: a topic, a list defined by an author and year filter, and a count."""


def example_questions(path: Path | None = None, wanted: Sequence[str] = EXAMPLES) -> list[str]:
    """The ``wanted`` questions that the eval set lists with their answering papers, in order.

    Falls back to ``wanted`` as is when the eval set is missing (an installed package without eval/).
    """
    path = path or PROJECT_ROOT / "eval" / "questions.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return list(wanted)
    answerable: set[str] = set()
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("expected") and isinstance(row.get("question"), str):
            answerable.add(row["question"].strip())
    return [q for q in wanted if q in answerable]


def load_papers(settings: Settings) -> list[Paper]:
    """The corpus, for the filter choices; empty (with a warning) when it cannot be read. On a Chroma server
    (``RAG_CHROMA_URL``) the indexed papers, which another home may have indexed (rag.shared_index): this
    home need not have the sources."""
    if settings.chroma_url:
        try:
            from rag.opened_index import indexed_papers

            return indexed_papers(settings)
        except RagError as exc:
            log.warning("Could not read the indexed papers from %s: %s", settings.chroma_url, exc)
    try:
        from rag.corpus import load_corpus

        return list(load_corpus(settings=settings))
    except (ImportError, RagError, OSError) as exc:
        log.warning("Could not load the corpus for the filter choices: %s", exc)
        return []


def source_choices(papers: Sequence[Paper]) -> list[tuple[str, str]]:
    """(label, value) pairs for the source-page filter: each page with its paper count."""
    counts: Counter[str] = Counter()
    for p in papers:
        for s in p.sources or [p.source]:
            counts[s] += 1
    return [(f"{s} ({n} papers)", s) for s, n in sorted(counts.items())]


def _year(value: str | float | None, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return int(float(value))
    except ValueError:
        raise ConfigError(f"{name} must be a year such as 2023, not {value!r}.") from None


def build_filters(
    year_min: str | float | None,
    year_max: str | float | None,
    author: str | None,
    sources: Sequence[str] | str | None,
) -> Filters:
    """The API's Filters from the UI controls; empty controls do not filter."""
    authors = [a.strip() for a in re.split(r"[;,]", author or "") if a.strip()]
    if isinstance(sources, str):
        sources = [sources] if sources.strip() else []
    return Filters(
        authors=authors,
        year_min=_year(year_min, "Year from"),
        year_max=_year(year_max, "Year to"),
        sources=[s for s in sources or [] if s],
    )
