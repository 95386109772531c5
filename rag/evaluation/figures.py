"""Answer figures: the overall ones (kept from the first reports) and, per half (all, tune, held-out),
the same set of figures per question kind and per answer shape (:class:`GroupFigures`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from rag.evaluation.defaults import share
from rag.evaluation.questions import half_of
from rag.evaluation.records import HALVES, KINDS, SHAPES, AnswerMetrics, AnswerResult, GroupFigures


def shape_of(r: AnswerResult) -> str:
    """The answer-shape group of a result: abstained, extractive, else its kind (fact, list, claim)."""
    if r.abstained:
        return "abstained"
    return "extractive" if r.extractive else r.shape


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def expected_cited(r: AnswerResult) -> float:
    """Recall of one answerable question: |cited ∩ expected| / |expected|.

    A capped list (``total`` over its ``items``) can only show ``items`` papers: the denominator is then at
    most the number of lines shown (it still counts every miss among them).
    """
    want = len(set(r.expected))
    if r.shape == "list" and r.total is not None and r.items and r.total > r.items:
        want = min(want, r.items)
    return min(1.0, len(set(r.cited) & set(r.expected)) / want)


def cited_expected(r: AnswerResult) -> float:
    """Precision of one answer with citations: |cited ∩ expected| / |cited|."""
    return len(set(r.cited) & set(r.expected)) / len(set(r.cited))


def _integrity(group: Sequence[AnswerResult]) -> tuple[list[bool], int, int, float | None]:
    """(evidence check outcomes, prose sentences, dangling ones, integrity share)."""
    checks = [c.ok for r in group for c in r.checks]
    prose = sum(r.prose_sentences for r in group)
    dangling = sum(len(r.dangling) for r in group)
    units = len(checks) + prose
    integrity = round((sum(checks) + prose - dangling) / units, 4) if units else None
    return checks, prose, dangling, integrity


def group_figures(group: Sequence[AnswerResult], *, half: str, axis: str, name: str) -> GroupFigures:
    """Every answer figure over ``group`` (see :class:`GroupFigures`)."""
    answerable = [r for r in group if r.kind != "absent" and r.expected]
    answered = [r for r in answerable if not r.abstained and r.cited]
    firsts = [r.first_item_seconds for r in group if r.shape == "list" and r.first_item_seconds is not None]
    checks, prose, dangling, integrity = _integrity(group)
    return GroupFigures(
        half=half,
        axis=axis,
        group=name,
        n=len(group),
        expected_cited=_mean([expected_cited(r) for r in answerable]),
        cites_expected=share([bool(set(r.cited) & set(r.expected)) for r in answerable]),
        cited_expected=_mean([cited_expected(r) for r in answered]),
        abstained_answerable=share([r.abstained for r in answerable]),
        abstained_absent=share([r.abstained for r in group if r.kind == "absent"]),
        citations=len(checks),
        evidence_verbatim=share(checks),
        prose_sentences=prose,
        dangling=dangling,
        integrity=integrity,
        median_seconds=_median([r.seconds for r in group]),
        median_first_item=_median(firsts),
        errors=sum(1 for r in group if r.error),
    )


AXES: dict[str, tuple[Sequence[str], Callable[[AnswerResult], set[str]]]] = {
    "kind": (
        (*KINDS, "answerable"),
        lambda r: {r.kind} | ({"answerable"} if r.kind != "absent" else set()),
    ),
    "shape": (SHAPES, lambda r: {shape_of(r)}),
}
"""axis → (its groups in print order, the groups a result belongs to)."""


def grouped(results: Sequence[AnswerResult]) -> list[GroupFigures]:
    """Figures per half (all, tune, held-out) × axis (kind, shape) × group, leaving out empty groups."""
    out: list[GroupFigures] = []
    for which in HALVES:
        in_half = [r for r in results if which == "all" or half_of(r.id) == which]
        for axis, (names, groups_of) in AXES.items():
            for name in names:
                group = [r for r in in_half if name in groups_of(r)]
                if group:
                    out.append(group_figures(group, half=which, axis=axis, name=name))
    return out


def answer_metrics(results: Sequence[AnswerResult], model: str = "") -> AnswerMetrics:
    """Aggregate answer-level figures (see AnswerMetrics and GroupFigures field descriptions)."""
    answerable = [r for r in results if r.kind != "absent"]
    absent = [r for r in results if r.kind == "absent"]
    abstained = [r for r in results if r.abstained]
    n_cit = sum(r.citations for r in results)
    with_cit = [r for r in results if r.citations]
    return AnswerMetrics(
        model=model,
        n=len(results),
        cites_expected=share([bool(set(r.cited) & set(r.expected)) for r in answerable]),
        citation_validity=round(sum(r.valid_citations for r in results) / n_cit, 4) if n_cit else None,
        answers_all_valid=share([r.valid_citations == r.citations for r in with_cit]),
        abstention_precision=share([r.kind == "absent" for r in abstained]),
        abstention_recall=share([r.abstained for r in absent]),
        mean_seconds=round(sum(r.seconds for r in results) / len(results), 3) if results else None,
        errors=sum(1 for r in results if r.error),
        groups=grouped(results),
        results=list(results),
    )
