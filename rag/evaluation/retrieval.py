"""Retrieval eval on the question set: each question through ``search`` in each retrieval mode, scored
per kind with ranx, plus the abstention figure and the same figures per half.

ranx needs at least one relevant document per query, so questions of kind ``absent`` (expected ``[]``)
are left out of the IR metrics and reported instead as an abstention figure: the share of them for
which ``search`` says ``good_match`` is False.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from rag.errors import ConfigError
from rag.evaluation import defaults
from rag.evaluation.defaults import IndexFn, SearchFn, share
from rag.evaluation.questions import half_of, load_questions, select
from rag.evaluation.records import (
    HALF_METRICS,
    HALVES,
    KINDS,
    MODES,
    SEED_DEPTH,
    SEED_METRICS,
    EvalReport,
    ModeResult,
    Question,
    QuestionResult,
)
from rag.settings import Settings


def ranked_ids(hits: Iterable[Any]) -> list[str]:
    """Paper ids of hits, best first, each once."""
    out: list[str] = []
    for h in hits:
        pid = h.paper.id
        if pid not in out:
            out.append(pid)
    return out


def ir_metrics(
    qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]], metrics: Sequence[str]
) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (ranx). Scores are derived from ranks."""
    from ranx import Qrels, Run, evaluate

    if not qrels:
        return {}
    run = {qid: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for qid, docs in ranked.items()}
    run = {qid: run.get(qid, {}) for qid in qrels}
    if not any(run.values()):  # nothing retrieved for any query: every metric is 0 (ranx cannot say so)
        return dict.fromkeys(metrics, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate(Qrels.from_dict(qrels), Run.from_dict(run), list(metrics), make_comparable=True)
    if not isinstance(scores, dict):
        scores = {metrics[0]: scores}
    return {m: round(float(v), 4) for m, v in scores.items()}


def check_modes(modes: Sequence[str]) -> None:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(
            f"Unknown retrieval mode(s) {', '.join(bad) or '(none)'}; choose from {', '.join(MODES)}."
        )


def _failed(q: Question, retrieved: list[str], good_match: bool) -> bool:
    if q.kind == "absent":
        return good_match
    if q.kind == "single":
        return not set(q.expected) & set(retrieved[:5])
    return not set(q.expected) <= set(retrieved[:10])


def _score(q: Question, hits: Any) -> QuestionResult:
    retrieved = ranked_ids(hits)
    good = bool(getattr(hits, "good_match", True))
    first = next((i + 1 for i, pid in enumerate(retrieved) if pid in q.expected), None)
    return QuestionResult(
        id=q.id,
        kind=q.kind,
        question=q.question,
        expected=q.expected,
        retrieved=retrieved,
        good_match=good,
        first_rank=first,
        failed=_failed(q, retrieved, good),
    )


def _group_metrics(group: Sequence[QuestionResult], metrics: Sequence[str]) -> dict[str, float]:
    return ir_metrics(
        {r.id: dict.fromkeys(r.expected, 1) for r in group}, {r.id: r.retrieved for r in group}, metrics
    )


def _abstention(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    return {
        "absent_flagged": share([not r.good_match for r in results if r.kind == "absent"]),
        "answerable_flagged": share([not r.good_match for r in results if r.kind != "absent"]),
    }


def _halves(results: Sequence[QuestionResult]) -> dict[str, dict[str, float | None]]:
    """Per half (tune, held-out): n, the IR metrics over its answerable questions, abstention shares."""
    out: dict[str, dict[str, float | None]] = {}
    for which in HALVES[1:]:
        group = [r for r in results if half_of(r.id) == which]
        if not group:
            continue
        answerable = [r for r in group if r.kind != "absent"]
        figures: dict[str, float | None] = {"n": float(len(group)), "answerable": float(len(answerable))}
        figures.update(_group_metrics(answerable, HALF_METRICS) if answerable else {})
        figures.update(_abstention(group))
        out[which] = figures
    return out


def evaluate_mode(
    questions: Sequence[Question],
    mode: str,
    *,
    settings: Settings,
    search_fn: SearchFn,
    depth: int = SEED_DEPTH,
) -> ModeResult:
    """Run every question through ``search_fn`` in one retrieval mode and score it per kind and half."""
    s = defaults.with_retrieve(settings, mode=mode)
    started = time.perf_counter()
    results = [_score(q, search_fn(q.question, k=depth, settings=s)) for q in questions]
    seconds = time.perf_counter() - started
    metrics: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    answerable = [r for r in results if r.kind != "absent"]
    groups = [(k, [r for r in answerable if r.kind == k]) for k in KINDS if k != "absent"]
    for kind, group in [*groups, ("all", answerable)]:
        if group:
            counts[kind] = len(group)
            metrics[kind] = _group_metrics(group, SEED_METRICS)
    n_absent = len(results) - len(answerable)
    if n_absent:
        counts["absent"] = n_absent
    return ModeResult(
        mode=mode,
        metrics=metrics,
        counts=counts,
        abstention=_abstention(results),
        halves=_halves(results),
        seconds=round(seconds, 3),
        questions=results,
    )


def run_retrieval_eval(
    questions: Sequence[Question] | None = None,
    *,
    modes: Sequence[str] = MODES,
    settings: Settings | None = None,
    search_fn: SearchFn | None = None,
    index_fn: IndexFn | None = None,
    name: str | None = None,
    dataset: str = "seeds",
    half: str = "all",
) -> EvalReport:
    """Retrieval eval on the question set: ensure the index is current, then score each mode.

    ``half`` keeps only the tune (odd ids) or held-out (even ids) questions."""
    settings = settings or Settings()
    questions = select(list(questions) if questions is not None else load_questions(), half=half)
    check_modes(modes)
    (index_fn or defaults.default_index())(settings=settings)
    search = search_fn or defaults.default_search()
    stamp, created = defaults.stamp()
    return EvalReport(
        name=name or f"retrieval-{stamp}",
        created=created,
        task="retrieval",
        dataset=dataset,
        settings=defaults.settings_summary(settings),
        modes=[evaluate_mode(questions, m, settings=settings, search_fn=search) for m in modes],
        half=half,
    )
