"""Answer eval: each question through the answer pipeline, one :class:`AnswerResult` per question with
its shape, citations and their evidence checks; the figures are in :mod:`rag.evaluation.figures`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rag.errors import LLMError
from rag.evaluation import defaults
from rag.evaluation.defaults import AnswerFn, IndexFn
from rag.evaluation.figures import answer_metrics
from rag.evaluation.integrity import check_citation, dangling_sentences, prose_sentences
from rag.evaluation.questions import load_questions, select
from rag.evaluation.records import MAX_LEADING_ERRORS, AnswerResult, EvalReport, Question
from rag.settings import Settings
from rag.types import Answer


def answer_result(q: Question, a: Answer, wall: float = 0.0) -> AnswerResult:
    """What the eval keeps of one answer: shape, cited papers, validity and integrity checks, timings."""
    retrieved = {h.paper.id for h in a.hits}
    valid = sum(1 for c in a.citations if c.paper.id in retrieved and not c.flagged)
    first_item = a.timings.get("first_item")
    return AnswerResult(
        id=q.id,
        kind=q.kind,
        question=q.question,
        expected=q.expected,
        abstained=a.abstained,
        cited=[c.paper.id for c in a.citations],
        valid_citations=valid,
        citations=len(a.citations),
        seconds=round(a.timings.get("total", wall), 3),
        error=a.error,
        text=a.text[:400],
        shape=a.kind,
        extractive=a.extractive,
        items=len(a.items),
        total=a.total,
        first_item_seconds=round(first_item, 3) if first_item is not None else None,
        checks=[check_citation(c, a) for c in a.citations],
        prose_sentences=len(prose_sentences(a)),
        dangling=dangling_sentences(a),
    )


def run_answer_eval(
    questions: Sequence[Question] | None = None,
    *,
    model: str | None = None,
    settings: Settings | None = None,
    answer_fn: AnswerFn | None = None,
    index_fn: IndexFn | None = None,
    name: str | None = None,
    progress: Callable[[int, int, AnswerResult], None] | None = None,
    half: str = "all",
) -> EvalReport:
    """Answer each question with the pipeline and score citations, integrity and abstention.

    ``half`` keeps only the tune (odd ids) or held-out (even ids) questions."""
    settings = settings or Settings()
    questions = select(list(questions) if questions is not None else load_questions(), half=half)
    (index_fn or defaults.default_index())(settings=settings)
    ask = answer_fn or defaults.default_answer()
    results: list[AnswerResult] = []
    for n, q in enumerate(questions, start=1):
        started = time.perf_counter()
        a = ask(q.question, model=model, settings=settings)
        result = answer_result(q, a, time.perf_counter() - started)
        results.append(result)
        if progress:
            progress(n, len(questions), result)
        if len(results) == MAX_LEADING_ERRORS and all(r.error for r in results):
            raise LLMError(
                f"The first {MAX_LEADING_ERRORS} answers all failed; stopping. Last error: {a.error}"
            )
    stamp, created = defaults.stamp()
    return EvalReport(
        name=name or f"answers-{stamp}",
        created=created,
        task="answers",
        dataset="seeds",
        settings={**defaults.settings_summary(settings), "model": model or settings.llm.model},
        answers=answer_metrics(results, model=model or settings.llm.model),
        half=half,
    )


def failure_reasons(r: AnswerResult) -> list[str]:
    """Why an answer fails: a model error, wrong abstention, no expected paper cited, a citation whose
    evidence is not the paper's words, or a sentence that lost its subject. Empty when it passes."""
    reasons: list[str] = []
    if r.error:
        reasons.append("model error")
    if (r.kind == "absent") != r.abstained:
        reasons.append("abstained on answerable" if r.abstained else "answered an absent question")
    elif r.kind != "absent" and not set(r.cited) & set(r.expected):
        reasons.append("no expected paper cited")
    bad = [c for c in r.checks if not c.ok]
    if bad:
        reasons.append("evidence " + ", ".join(f"[{c.number}] {c.outcome}" for c in bad))
    if r.dangling:
        reasons.append(f"{len(r.dangling)} sentence(s) without subject")
    return reasons


def answer_failed(r: AnswerResult) -> bool:
    """An answer fails when :func:`failure_reasons` finds any reason."""
    return bool(failure_reasons(r))
