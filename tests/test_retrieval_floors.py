"""Retrieval quality floors on the seed question set (hybrid mode, real embedding model).

The floors start at the figures measured when retrieval landed, rounded down to 2 decimals, and are
never lowered; raise them when retrieval improves (see docs/eval.md for the measured tables).
The retrieval targets are Recall@5 ≥ 0.95 for single questions and Recall@10 ≥ 0.85 for multi and meta.
The abstention figures use ``good_match``, whose threshold was calibrated on these same absent questions
(in-sample), so they guard against regressions rather than measure generalisation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.evaluation import EvalReport, ModeResult, failures, load_questions, run_retrieval_eval
from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

# Measured 2026-11-24 (eval/results/seeds-retrieval.md): hybrid single R@5 1.000, multi R@10 0.964,
# meta R@10 1.000 (0.800 before affiliation/upvote/author-count filters were added), absent flagged 0.833,
# answerable flagged 0.073.
FLOORS: dict[tuple[str, str], float] = {
    ("single", "recall@5"): 1.00,
    ("multi", "recall@10"): 0.96,
    ("meta", "recall@10"): 1.00,
}
# Abstention re-measured after the term-coverage relevance (docs/retrieval.md, Relevance): absent flagged
# 0.944, answerable flagged 0.024.
FLOOR_SET_LAST = "q142"
ABSENT_FLAGGED_FLOOR = 0.94  # share of absent questions with good_match False
ANSWERABLE_FLAGGED_CEILING = 0.03  # share of answerable questions wrongly flagged


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalReport, ModeResult]:
    home: Path = tmp_path_factory.mktemp("floors_home")
    settings = Settings(home=home)
    # the floors were measured on the first 142 questions; q143+ were written later, apart from the system,
    # and are reported (docs/eval.md), not used as floors
    questions = load_questions(PROJECT_ROOT / "eval" / "questions.jsonl")
    questions = [q for q in questions if q.id <= FLOOR_SET_LAST]
    report = run_retrieval_eval(questions, modes=["hybrid"], settings=settings, name="floors")
    return report, report.modes[0]


@pytest.mark.parametrize(("kind", "metric"), sorted(FLOORS))
def test_hybrid_retrieval_meets_floor(hybrid: tuple[EvalReport, ModeResult], kind: str, metric: str) -> None:
    report, mode = hybrid
    value = mode.metrics[kind][metric]
    assert value >= FLOORS[kind, metric], f"{kind} {metric} = {value:.3f}\n{failures(report)}"


def test_hybrid_abstention_meets_floor(hybrid: tuple[EvalReport, ModeResult]) -> None:
    report, mode = hybrid
    absent, answerable = mode.abstention["absent_flagged"], mode.abstention["answerable_flagged"]
    assert absent is not None and absent >= ABSENT_FLAGGED_FLOOR, failures(report)
    assert answerable is not None and answerable <= ANSWERABLE_FLAGGED_CEILING
