"""The eval question set: well-formed, big enough, balanced, and every expected paper exists in the corpus."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest

from rag.evaluation import KINDS, Question, load_questions
from rag.settings import PROJECT_ROOT
from rag.types import Paper

QUESTIONS_FILE = PROJECT_ROOT / "eval" / "questions.jsonl"
WORKSHOP, DAILY, LISTING, PROFILE = "003", "002", "001", "000"


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
        # Recall@10 can reach 1 only if at most 10 papers are expected ("cap" questions test longer lists).
        if not (q.note or "").startswith("cap"):
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


def _on(page: str) -> Callable[[Paper], bool]:
    return lambda p: any(s.startswith(page) for s in p.sources)


def _by(name: str, extra: Callable[[Paper], bool] = lambda p: True) -> Callable[[Paper], bool]:
    return lambda p: name in p.authors and extra(p)


def _workshop_poster(p: Paper) -> bool:
    return p.kind == "poster" and _on(WORKSHOP)(p) and p.has_abstract


# Metadata questions whose expected set follows from the parsed metadata: id → (text the question must
# contain, predicate). The expected list must be exactly the corpus papers that satisfy the predicate.
META_SPECS: dict[str, tuple[str, Callable[[Paper], bool]]] = {
    "q091": ("Arthur Jacot", _by("Arthur Jacot", lambda p: p.year == 2019)),
    "q094": ("Scott Pesme", _by("Scott Pesme", lambda p: p.year == 2023)),
    "q095": ("Etienne Boursier", _by("Etienne Boursier", lambda p: p.year == 2023)),
    "q107": ("2017", lambda p: p.year == 2017),
    "q108": ("older than 2017", lambda p: p.year is not None and p.year < 2017),
    "q162": ("Francesco D'Angelo", _by("Francesco D'Angelo")),
    "q163": ("since 2023", _by("Maksym Andriushchenko", lambda p: p.year is not None and p.year >= 2023)),
    "q164": (
        "Francesco Croce and Nicolas Flammarion",
        _by("Francesco Croce", lambda p: "Nicolas Flammarion" in p.authors),
    ),
    "q165": ("predate 2023", _by("Etienne Boursier", lambda p: p.year is not None and p.year < 2023)),
    "q166": ("Antonio Orvieto", _by("Antonio Orvieto")),
    "q167": ("Nicolas Flammarion co-author in 2023", _by("Nicolas Flammarion", lambda p: p.year == 2023)),
    "q168": ("Arthur Jacot", _by("Arthur Jacot")),
    "q169": ("2018", lambda p: p.year == 2018),
    "q170": ("2019", lambda p: p.year == 2019),
    "q171": ("2020", lambda p: p.year == 2020),
    "q172": ("2016", lambda p: p.year == 2016),
    "q173": ("more than one seed page", lambda p: len(p.sources) > 1),
    "q174": ("Hongler's profile page have no year", lambda p: _on(PROFILE)(p) and p.year is None),
    "q175": ("2017 or earlier", lambda p: _on(DAILY)(p) and p.year is not None and p.year <= 2017),
    "q176": ("affiliation tags", lambda p: _on(LISTING)(p) and bool(p.affiliations)),
    "q177": ("more than 10 authors", lambda p: (p.n_authors or 0) > 10),
    "q178": ("single author", lambda p: _workshop_poster(p) and len(p.authors) == 1),
    "q179": ("spotlights", lambda p: "spotlight" in p.extra.get("kinds", [])),
    "q180": ("plenary talks", lambda p: p.kind == "talk"),
    "q181": ("(CV)", lambda p: p.category == "CV"),
    "q182": ("since 2000", lambda p: p.year is not None and p.year >= 2000),
    "q183": ("every poster", _workshop_poster),
    "q184": ("2022", lambda p: p.year == 2022),
}


def test_how_many_notes_match_the_expected_count(questions: list[Question]) -> None:
    how_many = [q for q in questions if (q.note or "").startswith("how many")]
    assert len(how_many) >= 4
    for q in how_many:
        m = re.match(r"how many: (\d+)\b", q.note or "")
        assert m, f"{q.id}: note must start with 'how many: N'"
        assert int(m.group(1)) == len(q.expected), q.id
        assert q.question.startswith("How many"), q.id


def test_new_questions_say_what_they_test(questions: list[Question]) -> None:
    new = [q for q in questions if int(q.id[1:]) >= 143]
    assert len(new) >= 36
    assert all(q.note for q in new), [q.id for q in new if not q.note]
    notes = Counter((q.note or "").split(":")[0] for q in new)
    assert notes["list"] + notes["how many"] + notes["cap"] >= 20  # list questions of every type
    assert notes["cap"] >= 2 and notes["how many"] >= 4
    assert notes["paraphrase"] >= 10 and notes["keyword"] >= 1 and notes["absent"] >= 4


def test_meta_expected_sets_follow_from_the_metadata(questions: list[Question]) -> None:
    from rag.corpus import load_corpus

    papers = load_corpus()
    by_id = {q.id: q for q in questions}
    for qid, (text, pred) in META_SPECS.items():
        q = by_id[qid]
        assert q.kind == "meta", qid
        assert text in q.question, f"{qid} no longer asks about {text!r}: update META_SPECS"
        want = sorted(p.id for p in papers if pred(p))
        assert sorted(q.expected) == want, qid
