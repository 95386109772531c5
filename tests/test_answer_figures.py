"""Answer figures of `rag eval --answers` with hand-built answers and a fake pipeline: recall and
precision per question kind and answer shape, the tune / held-out halves, citation integrity (evidence
check and sentences that lost their subject), `--half`, and old reports that still load."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from rag import evaluation as ev
from rag.errors import ConfigError
from rag.evaluation import integrity
from rag.settings import PROJECT_ROOT, Settings
from rag.types import Answer, Citation, Hit, ListItem, Paper

FIRST = "We propose Widget, a method for sorting papers."
ABSTRACT = (
    f"{FIRST} "
    "Widget is fast on every benchmark we tried; and it needs no labelled data at all. "
    "Code is available."
)


def approx(value: float | Fraction) -> Any:
    return pytest.approx(float(value), abs=1e-4)


def paper(pid: str, abstract: str = ABSTRACT) -> Paper:
    return Paper(id=pid, title=f"Title of {pid}", abstract=abstract, source="fake.txt")


def cite(n: int, pid: str, evidence: str | None = None) -> Citation:
    """A citation whose evidence is, unless given, the first sentence of the paper's abstract."""
    return Citation(number=n, paper=paper(pid), evidence=evidence if evidence is not None else FIRST)


def fact(question: str, cited: list[str], **kw: Any) -> Answer:
    citations = [cite(n, p) for n, p in enumerate(cited, start=1)]
    text = " ".join(f"Widget (Doe, 2024) sorts papers [{n}]." for n in range(1, len(cited) + 1))
    return Answer(
        question=question,
        kind="fact",
        text=text,
        citations=citations,
        hits=[Hit(paper=c.paper, score=1.0) for c in citations],
        timings={"total": kw.pop("seconds", 1.0)},
        **kw,
    )


def listing(question: str, cited: list[str], total: int | None = None, first: float = 0.5) -> Answer:
    citations = [cite(n, p) for n, p in enumerate(cited, start=1)]
    items = [
        ListItem(number=c.number, paper=c.paper, evidence=c.evidence, line=f"[{c.number}] {c.paper.title}")
        for c in citations
    ]
    return Answer(
        question=question,
        kind="list",
        text="\n".join(i.line for i in items),
        citations=citations,
        items=items,
        total=total,
        lead="These papers sort papers [1].",
        hits=[Hit(paper=c.paper, score=1.0) for c in citations],
        timings={"total": 4.0, "first_item": first},
    )


def abstain(question: str) -> Answer:
    return Answer(question=question, abstained=True, text="The corpus does not answer this question.",
                  timings={"total": 0.1})  # fmt: skip


QUESTIONS = [
    ev.Question(id="q001", question="s1", expected=["a"], kind="single"),
    ev.Question(id="q002", question="s2", expected=["b"], kind="single"),
    ev.Question(id="q003", question="m3", expected=["a", "b", "c"], kind="multi"),
    ev.Question(id="q004", question="m4", expected=["d", "e"], kind="multi"),
    ev.Question(id="q005", question="x5", expected=[], kind="absent"),
    ev.Question(id="q006", question="x6", expected=[], kind="absent"),
    ev.Question(id="q007", question="t7", expected=["f"], kind="meta"),
]
SCRIPT = {
    "s1": fact("s1", ["a"], seconds=2.0),  # recall 1, precision 1
    "s2": fact("s2", ["b", "z"], extractive=True, seconds=3.0),  # recall 1, precision 1/2
    "m3": listing("m3", ["a", "x", "c", "y"], total=6, first=0.25),  # recall 2/3, precision 2/4
    "m4": abstain("m4"),  # answerable, abstained: recall 0, no precision
    "x5": abstain("x5"),  # absent, abstained
    "x6": fact("x6", ["q"]),  # absent, answered
    "t7": listing("t7", ["f"], first=0.75),  # recall 1, precision 1
}


def fake_answer(question: str, *, model: str | None = None, settings: Settings | None = None) -> Answer:
    return SCRIPT[question]


def no_index(*args: Any, **kwargs: Any) -> None:
    return None


@pytest.fixture
def report() -> ev.EvalReport:
    return ev.run_answer_eval(QUESTIONS, answer_fn=fake_answer, index_fn=no_index, name="fake")


def figures(report: ev.EvalReport, half: str, axis: str, group: str) -> ev.GroupFigures:
    assert report.answers is not None
    found = [g for g in report.answers.groups if (g.half, g.axis, g.group) == (half, axis, group)]
    assert len(found) == 1, (half, axis, group)
    return found[0]


def recall_precision(ids: list[str]) -> tuple[Fraction | None, Fraction | None]:
    """An independent computation from QUESTIONS and SCRIPT: mean recall over answerable questions,
    mean precision over the answered ones with citations."""
    recalls, precisions = [], []
    for q in QUESTIONS:
        if q.id not in ids or q.kind == "absent":
            continue
        a = SCRIPT[q.question]
        cited = {c.paper.id for c in a.citations}
        hit = len(cited & set(q.expected))
        recalls.append(Fraction(hit, len(q.expected)))
        if not a.abstained and cited:
            precisions.append(Fraction(hit, len(cited)))

    def mean(xs: list[Fraction]) -> Fraction | None:
        return sum(xs, Fraction(0)) / len(xs) if xs else None

    return mean(recalls), mean(precisions)


def test_half_is_odd_tune_even_held_out() -> None:
    assert [ev.half(i) for i in ("q001", "q002", "q010", "q141", "7")] == [
        "tune", "held-out", "held-out", "tune", "tune",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="no number"):
        ev.half("alpha")
    assert ev.half_of("alpha") is None
    assert [q.id for q in ev.select(QUESTIONS, half="tune")] == ["q001", "q003", "q005", "q007"]
    assert [q.id for q in ev.select(QUESTIONS, ["multi"], half="held-out")] == ["q004"]
    with pytest.raises(ConfigError, match="choose from"):
        ev.select(QUESTIONS, half="odd")


def test_recall_and_precision_per_kind(report: ev.EvalReport) -> None:
    all_ids = [q.id for q in QUESTIONS]
    recall, precision = recall_precision(all_ids)
    g = figures(report, "all", "kind", "answerable")
    assert g.n == 5
    assert g.expected_cited == approx(recall)  # (1 + 1 + 2/3 + 0 + 1) / 5
    assert g.cited_expected == approx(precision)  # (1 + 1/2 + 2/4 + 1) / 4
    multi = figures(report, "all", "kind", "multi")
    assert multi.expected_cited == approx(Fraction(2, 3) / 2)  # m3 2/3, m4 abstained 0
    assert multi.cited_expected == approx(Fraction(2, 4))  # only m3 answered
    assert multi.cites_expected == approx(0.5)
    assert multi.abstained_answerable == approx(0.5) and multi.abstained_absent is None
    absent = figures(report, "all", "kind", "absent")
    assert absent.abstained_absent == approx(0.5) and absent.expected_cited is None
    assert absent.cited_expected is None


def test_every_figure_is_given_per_half(report: ev.EvalReport) -> None:
    tune_ids = [q.id for q in QUESTIONS if int(q.id[1:]) % 2]
    held_ids = [q.id for q in QUESTIONS if not int(q.id[1:]) % 2]
    for half, ids in (("tune", tune_ids), ("held-out", held_ids)):
        recall, precision = recall_precision(ids)
        g = figures(report, half, "kind", "answerable")
        assert g.n == len([i for i in ids if i not in ("q005", "q006")])
        assert g.expected_cited == approx(recall)
        assert g.cited_expected == approx(precision)
    # the held-out half has one multi question (m4, abstained) and one absent (x6, answered)
    held_multi = figures(report, "held-out", "kind", "multi")
    assert held_multi.n == 1 and held_multi.abstained_answerable == approx(1.0)
    assert figures(report, "held-out", "kind", "absent").abstained_absent == approx(0.0)
    assert figures(report, "tune", "kind", "absent").abstained_absent == approx(1.0)
    md = ev.to_markdown(report)
    assert "tune half (odd question ids" in md and "held-out half (even question ids" in md


def test_groups_by_answer_shape(report: ev.EvalReport) -> None:
    assert report.answers is not None
    by_shape = {g.group: g.n for g in report.answers.groups if g.half == "all" and g.axis == "shape"}
    expected: dict[str, int] = {}
    for a in SCRIPT.values():
        shape = "abstained" if a.abstained else "extractive" if a.extractive else a.kind
        expected[shape] = expected.get(shape, 0) + 1
    assert by_shape == expected == {"fact": 2, "extractive": 1, "list": 2, "abstained": 2}
    lists = figures(report, "all", "shape", "list")
    assert lists.median_first_item == approx((0.25 + 0.75) / 2)
    assert lists.median_seconds == approx(4.0)
    assert figures(report, "all", "shape", "fact").median_first_item is None
    m3 = next(r for r in report.answers.results if r.id == "q003")
    assert (m3.shape, m3.items, m3.total, m3.cited) == ("list", 4, 6, ["a", "x", "c", "y"])
    assert "q003" not in ev.answer_failures(report)  # cites expected papers, integrity intact
    wrong = m3.model_copy(update={"cited": ["x", "y"]})
    failing = ev.EvalReport(name="x", created="", task="answers", dataset="seeds",
                            answers=ev.answer_metrics([wrong]))  # fmt: skip
    assert "- q003 [multi] shape: list, 4 items of 6; no expected paper cited;" in ev.answer_failures(failing)


def test_evidence_outcomes() -> None:
    title = "Title of a"
    check = integrity.evidence_outcome
    assert check("We propose Widget, a method for sorting papers.", title, ABSTRACT) == "sentence"
    assert check("  We propose Widget,\n a method  for sorting papers. ", title, ABSTRACT) == "sentence"
    assert check("it needs no labelled data at all.", title, ABSTRACT) == "clause"
    assert check("Widget is fast on every benchmark", title, ABSTRACT) == "excerpt"
    assert check(title, title, ABSTRACT) == "title"
    assert check("We propose Gadget, a method for sorting papers.", title, ABSTRACT) == "not in abstract"
    assert check("", title, ABSTRACT) == "empty"
    assert check("", title, "", metadata_line=True) == "metadata"


def test_integrity_catches_fabricated_evidence_and_a_dangling_sentence() -> None:
    fabricated = "Widget is slow on every benchmark."
    a = Answer(
        question="q",
        kind="fact",
        text="Widget sorts papers [1]. It was introduced in. It is also fast [2].",
        citations=[cite(1, "a"), cite(2, "b", evidence=fabricated)],
    )
    r = ev.answer_result(QUESTIONS[0], a)
    outcomes = [(c.number, c.ok, c.outcome) for c in r.checks]
    assert outcomes == [(1, True, "sentence"), (2, False, "not in abstract")]
    assert r.prose_sentences == 3 and r.dangling == ["It was introduced in."]
    g = ev.group_figures([r], half="all", axis="kind", name="single")
    assert g.evidence_verbatim == approx(0.5) and g.dangling == 1
    assert g.integrity == approx(Fraction(1 + 3 - 1, 2 + 3))  # passing checks over citations + sentences
    reasons = ev.failure_reasons(r)
    assert "evidence [2] not in abstract" in reasons and "1 sentence(s) without subject" in reasons
    text = ev.answer_failures(ev.EvalReport(name="x", created="", task="answers", dataset="seeds",
                                            answers=ev.answer_metrics([r])))  # fmt: skip
    assert fabricated in text and "without subject: “It was introduced in.”" in text


def test_integrity_is_one_only_when_both_parts_are_perfect(monkeypatch: pytest.MonkeyPatch) -> None:
    good = ev.answer_result(QUESTIONS[0], fact("s1", ["a", "b"]))
    assert all(c.ok for c in good.checks) and good.dangling == []
    assert ev.group_figures([good], half="all", axis="kind", name="single").integrity == approx(1.0)
    # the same answer, with the subject check told that every sentence lost its subject
    monkeypatch.setattr(integrity, "is_dangling", lambda sentence: True)
    broken = ev.answer_result(QUESTIONS[0], fact("s1", ["a", "b"]))
    g = ev.group_figures([broken], half="all", axis="kind", name="single")
    assert g.evidence_verbatim == approx(1.0)
    assert g.integrity == approx(Fraction(2, 2 + 2))  # 2 good citations, 2 dangling sentences


def test_list_lines_are_not_prose_and_metadata_lines_may_cite_without_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(integrity, "is_dangling", lambda s: bool(checked.append(s)))
    a = listing("t7", ["f"])
    a.items[0].evidence = ""
    a.citations[0].evidence = ""
    r = ev.answer_result(QUESTIONS[-1], a)
    assert checked == [a.lead]  # only the lead: the list lines are the abstracts' words
    assert [(c.outcome, c.ok) for c in r.checks] == [("metadata", True)]
    a = fact("s1", ["a"])
    a.citations[0].evidence = ""
    assert [(c.outcome, c.ok) for c in ev.answer_result(QUESTIONS[0], a).checks] == [("empty", False)]


def test_answer_eval_on_one_half_asks_only_that_half() -> None:
    asked: list[str] = []

    def recording(question: str, **kw: Any) -> Answer:
        asked.append(question)
        return SCRIPT[question]

    report = ev.run_answer_eval(QUESTIONS, answer_fn=recording, index_fn=no_index, half="held-out")
    assert asked == ["s2", "m4", "x6"]
    assert report.half == "held-out" and report.answers is not None
    assert {g.half for g in report.answers.groups} == {"all", "held-out"}
    md = ev.to_markdown(report)
    assert "held-out half (even question ids: never tuned on, only reported) only" in md
    assert "### Answers per kind and shape, tune half" not in md


def test_cli_half_flag_runs_only_that_half(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(q.model_dump_json() for q in QUESTIONS) + "\n")
    searched: list[str] = []
    monkeypatch.setattr(ev.defaults, "default_search", lambda: lambda q, **kw: searched.append(q) or [])
    monkeypatch.setattr(ev.defaults, "default_index", lambda: no_index)
    args = ["eval", "--questions", str(qfile), "--modes", "bm25", "--half", "tune", "--no-save"]
    assert main(args) == 0
    assert searched == ["s1", "m3", "x5", "t7"]
    out = capsys.readouterr().out
    # nothing was retrieved, so every IR figure of the tune half is 0
    assert "| bm25 | tune | 4 | 3 | 0.000 | 0.000 | 0.000 | 0.000 |" in out
    assert "| bm25 | held-out |" not in out
    assert main(["eval", "--beir", str(tmp_path), "--half", "tune"]) == 2


def test_retrieval_figures_per_half() -> None:
    from rag.types import Hits

    table = {
        "s1": ["a"], "s2": ["x"], "m3": ["a", "b", "c"], "m4": ["d"], "x5": [], "x6": [], "t7": ["f"],
    }  # fmt: skip

    flagged = {"s2", "x5"}  # good_match False

    def search(query: str, k: int = 10, settings: Any = None) -> Hits:
        return Hits([Hit(paper=paper(p), score=1.0) for p in table[query]], good_match=query not in flagged)

    report = ev.run_retrieval_eval(QUESTIONS, modes=["bm25"], search_fn=search, index_fn=no_index)
    halves = report.modes[0].halves
    # tune: s1, m3, t7 fully found (recall@5 = 1); held-out: s2 missed (0), m4 half found (1/2)
    assert halves["tune"]["recall@5"] == approx(1.0) and halves["tune"]["n"] == 4
    assert halves["held-out"]["recall@5"] == approx(Fraction(0 + 1, 2) / 2)
    assert halves["tune"]["absent_flagged"] == approx(1.0)  # x5
    assert halves["held-out"]["absent_flagged"] == approx(0.0)  # x6
    assert halves["held-out"]["answerable_flagged"] == approx(0.5)  # s2 of s2, m4
    assert halves["tune"]["answerable_flagged"] == approx(0.0)
    assert ev.flatten(report)["bm25/held-out/recall@5"] == approx(0.25)


OLD_REPORT = {
    "name": "old",
    "created": "2026-11-24T10:13:05+00:00",
    "task": "answers",
    "dataset": "seeds",
    "settings": {},
    "modes": [],
    "reference": {},
    "answers": {
        "model": "local/x", "n": 1, "cites_expected": 1.0, "citation_validity": 1.0, "answers_all_valid": 1.0,
        "abstention_precision": None, "abstention_recall": None, "mean_seconds": 3.0, "errors": 0,
        "results": [{
            "id": "q001", "kind": "single", "question": "?", "expected": ["a"], "abstained": False,
            "cited": ["a"], "valid_citations": 1, "citations": 1, "seconds": 3.0, "error": None,
            "text": "A [1].",
        }],
    },
}  # fmt: skip


def test_old_reports_load_and_compare(tmp_path: Path, report: ev.EvalReport) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_REPORT))
    old = ev.load_report(path)
    assert old.half == "all" and old.answers is not None and old.answers.groups == []
    r = old.answers.results[0]
    assert (r.shape, r.checks, r.dangling, r.first_item_seconds) == ("fact", [], [], None)
    assert not ev.answer_failed(r)  # no checks recorded: nothing to fail on integrity
    table = ev.compare(old, report)
    assert "| answers/cites_expected | 1.000 |" in table
    assert "answers/all/kind:answerable/expected_cited" not in table  # only in the new report
    ev.to_markdown(old)
    for committed in sorted((PROJECT_ROOT / "eval" / "results").glob("*.json")):
        ev.load_report(committed)  # every report written so far still loads


def test_a_capped_list_is_scored_on_the_lines_it_can_show() -> None:
    from rag.evaluation.figures import expected_cited
    from rag.evaluation.records import AnswerResult

    expected = [f"p{i}" for i in range(40)]
    base = {"id": "q1", "kind": "meta", "question": "List all?", "expected": expected, "abstained": False}
    common = {"valid_citations": 15, "citations": 15, "seconds": 1.0, "shape": "list", "items": 15}
    shown = AnswerResult(**base, cited=expected[:15], total=40, **common)
    assert expected_cited(shown) == 1.0
    wrong = AnswerResult(**base, cited=[*expected[:10], *(f"x{i}" for i in range(5))], total=40, **common)
    assert expected_cited(wrong) == 10 / 15
    uncapped = AnswerResult(**base, cited=expected[:15], total=15, **common)  # the set is not capped
    assert expected_cited(uncapped) == 15 / 40
