"""Retrieval quality floors on the seed question set (hybrid mode, real embedding model).

The floors start at the figures measured when retrieval landed, rounded down to 2 decimals, and are
never lowered; raise them when retrieval improves (see docs/eval.md for the measured tables).
The retrieval targets are Recall@5 ≥ 0.95 for single questions and Recall@10 ≥ 0.85 for multi and meta.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.evaluation import EvalReport, ModeResult, failures, load_questions, run_retrieval_eval
from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

FLOORS: dict[tuple[str, str], float] = {
    ("single", "recall@5"): 0.95,
    ("multi", "recall@10"): 0.85,
    ("meta", "recall@10"): 0.85,
}


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalReport, ModeResult]:
    home: Path = tmp_path_factory.mktemp("floors_home")
    settings = Settings(home=home)
    questions = load_questions(PROJECT_ROOT / "eval" / "questions.jsonl")
    report = run_retrieval_eval(questions, modes=["hybrid"], settings=settings, name="floors")
    return report, report.modes[0]


@pytest.mark.parametrize(("kind", "metric"), sorted(FLOORS))
def test_hybrid_retrieval_meets_floor(hybrid: tuple[EvalReport, ModeResult], kind: str, metric: str) -> None:
    report, mode = hybrid
    value = mode.metrics[kind][metric]
    assert value >= FLOORS[kind, metric], f"{kind} {metric} = {value:.3f}\n{failures(report)}"
