"""The eval runner with fake search/answer functions: metrics on a hand-checked case, abstention,
failure listing, JSON/Markdown writing, compare, BEIR loading and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rag import evaluation as ev
from rag.errors import ConfigError, LLMError
from rag.settings import Settings
from rag.types import Answer, Citation, Hit, Hits, Paper


def approx(value: float) -> Any:
    """Reports round figures to 4 decimals."""
    return pytest.approx(value, abs=1e-4)


def paper(pid: str) -> Paper:
    return Paper(id=pid, title=pid.upper(), source="fake.txt")


def hits(ids: list[str], good_match: bool = True) -> Hits:
    return Hits([Hit(paper=paper(i), score=1.0 / (n + 1)) for n, i in enumerate(ids)], good_match=good_match)


QUESTIONS = [
    ev.Question(id="q1", question="one", expected=["a"], kind="single"),
    ev.Question(id="q2", question="two", expected=["a", "b"], kind="multi"),
    ev.Question(id="q3", question="three", expected=[], kind="absent"),
    ev.Question(id="q4", question="four", expected=["c"], kind="single"),
    ev.Question(id="q5", question="five", expected=[], kind="absent"),
]
RETRIEVED = {
    "one": hits(["x", "a", "y"]),
    "two": hits(["a", "x", "y", "z", "w", "b"]),
    "three": hits(["x"], good_match=False),
    "four": hits(["x", "y"], good_match=False),
    "five": hits(["y", "z"], good_match=True),
}


class FakeSearch:
    def __init__(self, table: dict[str, Hits] | None = None) -> None:
        self.table = table or RETRIEVED
        self.calls: list[tuple[str, int, str]] = []

    def __call__(
        self, query: str, k: int = 10, filters: Any = None, settings: Settings | None = None
    ) -> Hits:
        assert settings is not None
        self.calls.append((query, k, settings.retrieve.mode))
        return self.table[query]


def no_index(*args: Any, **kwargs: Any) -> None:
    return None


@pytest.fixture
def report() -> ev.EvalReport:
    return ev.run_retrieval_eval(
        QUESTIONS, modes=["bm25", "hybrid"], search_fn=FakeSearch(), index_fn=no_index, name="fake"
    )


def ndcg(rel_ranks: list[int], n_rel: int) -> float:
    dcg = sum(1 / math.log2(r + 1) for r in rel_ranks if r <= 10)
    idcg = sum(1 / math.log2(r + 1) for r in range(1, min(n_rel, 10) + 1))
    return dcg / idcg


def test_metrics_match_hand_computed_values(report: ev.EvalReport) -> None:
    m = report.modes[-1].metrics
    # q1: relevant at rank 2; q4: nothing relevant retrieved.
    assert m["single"]["recall@1"] == approx(0.0)
    assert m["single"]["recall@5"] == approx(0.5)
    assert m["single"]["recall@10"] == approx(0.5)
    assert m["single"]["mrr"] == approx((1 / 2 + 0) / 2)
    assert m["single"]["ndcg@10"] == approx((ndcg([2], 1) + 0) / 2)
    # q2: two relevant, at ranks 1 and 6.
    assert m["multi"]["recall@1"] == approx(0.5)
    assert m["multi"]["recall@5"] == approx(0.5)
    assert m["multi"]["recall@10"] == approx(1.0)
    assert m["multi"]["mrr"] == approx(1.0)
    assert m["multi"]["ndcg@10"] == approx(ndcg([1, 6], 2))
    # "all" averages over the three answerable questions.
    assert m["all"]["recall@5"] == approx((1 + 0.5 + 0) / 3)
    assert report.modes[-1].counts == {"single": 2, "multi": 1, "all": 3, "absent": 2}


def test_absent_questions_are_scored_by_abstention_not_ir(report: ev.EvalReport) -> None:
    mode = report.modes[-1]
    assert "absent" not in mode.metrics
    assert mode.abstention["absent_flagged"] == approx(0.5)  # q3 flagged, q5 not
    assert mode.abstention["answerable_flagged"] == approx(1 / 3)  # q4


def test_each_mode_is_passed_to_search() -> None:
    fake = FakeSearch()
    ev.run_retrieval_eval(QUESTIONS, modes=["dense", "bm25"], search_fn=fake, index_fn=no_index)
    assert [mode for _, _, mode in fake.calls] == ["dense"] * 5 + ["bm25"] * 5
    assert all(k == ev.SEED_DEPTH for _, k, _ in fake.calls)


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="choose from"):
        ev.run_retrieval_eval(QUESTIONS, modes=["magic"], search_fn=FakeSearch(), index_fn=no_index)


def test_failing_questions_are_listed_with_what_was_retrieved(report: ev.EvalReport) -> None:
    failed = {r.id for r in report.modes[-1].questions if r.failed}
    assert failed == {"q4", "q5"}  # q1 is in the top 5, q2 complete in the top 10, q3 abstained
    text = ev.failures(report)
    assert "2 of 5" in text
    assert "q4 [single] four" in text and "retrieved: x, y" in text and "missing from top 10: c" in text
    assert "q5 [absent]" in text and "good_match was True" in text
    assert "q1 " not in text


def test_report_json_and_markdown_round_trip(report: ev.EvalReport, tmp_path: Path) -> None:
    json_path, md_path = ev.save_report(report, tmp_path / "results")
    assert json_path.name == "fake.json" and md_path.name == "fake.md"
    again = ev.load_report(json_path)
    assert again == report
    md = md_path.read_text()
    assert "| mode | kind | n | recall@1 | recall@5 | recall@10 | mrr | ndcg@10 |" in md
    assert "| hybrid | multi | 1 | 0.500 | 0.500 | 1.000 | 1.000 |" in md
    assert "| bm25 | 0.500 | 0.333 |" in md


def test_compare_prints_deltas(report: ev.EvalReport) -> None:
    better = report.model_copy(deep=True)
    better.name = "better"
    better.modes[-1].metrics["single"]["recall@5"] = 0.75
    table = ev.compare(report, better)
    assert "| hybrid/single/recall@5 | 0.500 | 0.750 | +0.250 |" in table
    assert "| hybrid/multi/recall@10 | 1.000 | 1.000 | +0.000 |" in table


def test_load_questions_rejects_bad_lines(tmp_path: Path) -> None:
    def write(*rows: dict[str, Any]) -> Path:
        p = tmp_path / "q.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return p

    ok = {"id": "q1", "question": "?", "expected": ["a"], "kind": "single"}
    assert ev.load_questions(write(ok))[0].expected == ["a"]
    with pytest.raises(ConfigError, match="kind"):
        ev.load_questions(write({**ok, "kind": "weird"}))
    with pytest.raises(ConfigError, match="absent"):
        ev.load_questions(write({**ok, "kind": "absent"}))
    with pytest.raises(ConfigError, match="twice"):
        ev.load_questions(write(ok, ok))
    with pytest.raises(ConfigError, match="q.jsonl:1"):
        ev.load_questions(write({"id": "q1"}))
    assert [q.id for q in ev.select(QUESTIONS, ["absent"])] == ["q3", "q5"]
    assert len(ev.select(QUESTIONS, None, 2)) == 2
    assert [q.id for q in ev.select(QUESTIONS, per_kind=1)] == ["q1", "q2", "q3"]


def make_answer(
    question: str, cited: list[tuple[str, bool]], retrieved: list[str], abstained: bool
) -> Answer:
    return Answer(
        question=question,
        text="…",
        abstained=abstained,
        hits=list(hits(retrieved)),
        citations=[
            Citation(number=n + 1, paper=paper(p), flagged=f, evidence=paper(p).title)
            for n, (p, f) in enumerate(cited)
        ],
        timings={"total": 2.0},
    )


def test_answer_metrics_with_a_fake_pipeline() -> None:
    scripted = {
        # cites the expected paper; one valid citation, one flagged
        "one": make_answer("one", [("a", False), ("x", True)], ["a", "x"], False),
        # cites a paper that was never retrieved: invalid, and not the expected one
        "two": make_answer("two", [("z", False)], ["a", "b"], False),
        # absent and abstained: correct abstention
        "three": make_answer("three", [], ["x"], True),
        # answerable but abstained: wrong abstention
        "four": make_answer("four", [], ["x"], True),
        # absent but answered with a valid citation
        "five": make_answer("five", [("y", False)], ["y"], False),
    }
    seen: list[str | None] = []

    def fake_answer(question: str, *, model: str | None = None, settings: Settings | None = None) -> Answer:
        seen.append(model)
        return scripted[question]

    report = ev.run_answer_eval(QUESTIONS, model="fake/model", answer_fn=fake_answer, index_fn=no_index)
    a = report.answers
    assert a is not None and seen == ["fake/model"] * 5
    assert a.cites_expected == approx(1 / 3)  # q1 of q1, q2, q4
    assert a.citation_validity == approx(2 / 4)  # a ok, x flagged, z not retrieved, y ok
    assert a.answers_all_valid == approx(1 / 3)  # q1 no (flagged), q2 no, q5 yes
    assert a.abstention_precision == approx(1 / 2)  # abstained on q3 (absent) and q4 (answerable)
    assert a.abstention_recall == approx(1 / 2)  # q3 yes, q5 no
    assert a.mean_seconds == approx(2.0)
    text = ev.answer_failures(report)
    assert "3 of 5" in text and "q2 [multi]" in text and "q3 " not in text and "q1 " not in text
    assert "| abstention recall | 0.500 |" in ev.to_markdown(report)


def test_answer_eval_stops_when_the_first_answers_all_fail() -> None:
    calls: list[str] = []

    def broken(question: str, *, model: str | None = None, settings: Settings | None = None) -> Answer:
        calls.append(question)
        return Answer(question=question, error="The local model is not installed; run make setup.")

    with pytest.raises(LLMError, match="first 3 answers all failed.*make setup"):
        ev.run_answer_eval(QUESTIONS, answer_fn=broken, index_fn=no_index)
    assert len(calls) == 3


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": d, "title": "", "text": f"doc {d}"} for d in ("d1", "d2", "d3")]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [{"_id": "1", "text": "alpha"}, {"_id": "2", "text": "beta"}, {"_id": "9", "text": "unused"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td3\t1\n2\td2\t0\n")
    return root


def test_beir_runner_uses_its_own_home_and_reports_reference(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "scifact")
    corpus, queries, qrels = ev.load_beir(root)
    assert queries == {"1": "alpha", "2": "beta"} and qrels == {"1": {"d1": 1}, "2": {"d3": 1}}
    indexed: list[Settings] = []

    def fake_index(sources: Any = None, settings: Settings | None = None) -> None:
        assert sources == [corpus] and settings is not None
        indexed.append(settings)

    fake = FakeSearch({"alpha": hits(["d1", "d2"]), "beta": hits(["d1", "d2", "d3"])})
    settings = Settings(home=tmp_path / "home")
    report = ev.run_beir_eval(root, modes=["bm25"], settings=settings, search_fn=fake, index_fn=fake_index)
    assert indexed[0].home == tmp_path / "home" / "beir" / "scifact"
    assert settings.home == tmp_path / "home"  # the caller's settings are untouched
    assert all(k == ev.BEIR_DEPTH for _, k, _ in fake.calls)
    m = report.modes[0].metrics["all"]
    assert m["recall@10"] == approx(1.0)
    assert m["mrr"] == approx((1 + 1 / 3) / 2)
    assert m["ndcg@10"] == approx((1 + ndcg([3], 1)) / 2)
    assert report.reference["gte-small (MTEB)"]["ndcg@10"] == approx(0.727)
    assert "| bge-base-en-v1.5 (MTEB) (published) | 0.744 |" in ev.to_markdown(report)


def test_beir_missing_files_say_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus.jsonl, queries.jsonl"):
        ev.load_beir(tmp_path)


def test_cli_eval_runs_and_compares(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(q.model_dump_json() for q in QUESTIONS) + "\n")
    monkeypatch.setattr(ev.defaults, "default_search", lambda: FakeSearch())
    monkeypatch.setattr(ev.defaults, "default_index", lambda: no_index)
    out = tmp_path / "results"
    for name in ("a", "b"):
        code = main(
            ["eval", "--questions", str(qfile), "--modes", "hybrid", "--name", name, "--out", str(out)]
        )
        assert code == 0
    printed = capsys.readouterr().out
    assert "| hybrid | single | 2 |" in printed and "Failing questions in hybrid mode: 2 of 5" in printed
    assert (out / "a.json").is_file() and (out / "b.md").is_file()
    assert main(["eval", "--compare", str(out / "a.json"), str(out / "b.json")]) == 0
    assert "| hybrid/single/recall@5 | 0.500 | 0.500 | +0.000 |" in capsys.readouterr().out
    assert main(["eval", "--compare", str(out / "a.json"), str(tmp_path / "nope.json")]) == 2
