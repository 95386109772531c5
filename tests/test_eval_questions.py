"""The eval question set: well-formed, big enough, balanced, and every expected paper exists in the corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from rag.evaluation import KINDS, Question, load_questions
from rag.settings import PROJECT_ROOT

QUESTIONS_FILE = PROJECT_ROOT / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return load_questions(QUESTIONS_FILE)  # validates kinds, unique ids, absent ⇔ expected []


def test_size_and_mix(questions: list[Question]) -> None:
    assert len(questions) >= 80
    counts = Counter(q.kind for q in questions)
    assert set(counts) == set(KINDS)
    assert (
        counts["single"] >= 40 and counts["multi"] >= 12 and counts["meta"] >= 12 and counts["absent"] >= 12
    )


def test_ids_are_unique_and_sequential(questions: list[Question]) -> None:
    ids = [q.id for q in questions]
    assert len(set(ids)) == len(ids)
    assert ids == [f"q{n:03d}" for n in range(1, len(ids) + 1)]


def test_shapes_per_kind(questions: list[Question]) -> None:
    for q in questions:
        assert q.question.strip().endswith("?"), q.id
        assert len(set(q.expected)) == len(q.expected), q.id
        if q.kind == "absent":
            assert q.expected == [], q.id
        elif q.kind == "single":
            assert len(q.expected) == 1, q.id
        elif q.kind == "multi":
            assert len(q.expected) >= 2, q.id
        # Recall@10 can reach 1 only if at most 10 papers are expected.
        assert len(q.expected) <= 10, q.id
    assert len({q.question.casefold() for q in questions}) == len(questions)


def test_every_expected_paper_is_in_the_corpus(questions: list[Question]) -> None:
    from rag.corpus import load_corpus

    papers = {p.id: p for p in load_corpus()}
    missing = sorted({(q.id, pid) for q in questions for pid in q.expected if pid not in papers})
    assert not missing, f"expected ids not in load_corpus(): {missing}"
    # Single questions cover every seed page.
    pages = {papers[q.expected[0]].source[:3] for q in questions if q.kind == "single"}
    assert pages == {"000", "001", "002", "003"}
