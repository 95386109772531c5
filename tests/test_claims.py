"""Claims and yes/no questions (rag.claims, rag.verdicts): a scripted fake model at rag.llm.complete, fake
hits and a deterministic fake encoder; no index, no real model."""

from __future__ import annotations

from typing import Any

import pytest
from answer_fixtures import PAPERS, PAST_TENSE, PLANTED, SAM, fake_encode, make_hits

from rag import claims, llm, pipeline
from rag.errors import LLMTimeoutError, QueryError
from rag.llm import Completion
from rag.settings import Settings
from rag.types import Hits
from rag.verdicts import parse_label

SAM_CLAIM = "SAM improves generalization."


class FakeComplete:
    """Stand-in for ``rag.llm.complete``: the reply is ``reply(title)`` for the paper in the prompt."""

    def __init__(self, reply: Any, fail: BaseException | None = None) -> None:
        self.reply = reply
        self.fail = fail
        self.calls: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]], settings: Any = None, **kw: Any) -> Completion:
        self.calls.append(messages)
        if self.fail is not None:
            raise self.fail
        user = messages[-1]["content"]
        title = user.split("Paper: ", 1)[1].splitlines()[0]
        text = self.reply(title) if callable(self.reply) else self.reply
        return Completion(text=text, model="fake/claims")


def use(monkeypatch: pytest.MonkeyPatch, model: FakeComplete, hits: Hits) -> None:
    monkeypatch.setattr(claims, "_search", lambda text, **kw: hits)
    monkeypatch.setattr(pipeline, "_search", lambda text, **kw: hits)
    monkeypatch.setattr(pipeline, "_encoder", lambda settings: fake_encode)
    monkeypatch.setattr(llm, "complete", model)


@pytest.mark.parametrize(
    ("reply", "label"),
    [("SUPPORT", "SUPPORT"), ("Contradict.", "CONTRADICT"), ("NONE", "NOT_ENOUGH_INFO")],
)
def test_each_label_becomes_a_verdict_with_its_rationale(
    monkeypatch: pytest.MonkeyPatch, reply: str, label: str
) -> None:
    model = FakeComplete(reply)
    use(monkeypatch, model, make_hits([SAM]))
    check = claims.check_claim(SAM_CLAIM)
    assert [v.label for v in check.verdicts] == [label]
    verdict = check.verdicts[0]
    if label == "NOT_ENOUGH_INFO":
        assert verdict.rationale == [] and verdict.confidence == 0.0
    else:
        assert verdict.rationale and all(s in SAM.abstract for s in verdict.rationale)  # verbatim
        assert "improves generalization" in " ".join(verdict.rationale)
        assert 0 < verdict.confidence <= 1
    assert check.addressed and check.error is None and check.timings["total"] >= 0
    assert len(model.calls) == 1 and SAM_CLAIM in model.calls[0][-1]["content"]


@pytest.mark.parametrize(
    "reply", ["", "I think maybe", "?!", "The abstract discusses several things.", "x" * 500]
)
def test_off_format_reply_is_not_enough_info_never_a_crash(
    monkeypatch: pytest.MonkeyPatch, reply: str
) -> None:
    use(monkeypatch, FakeComplete(reply), make_hits([SAM]))
    check = claims.check_claim(SAM_CLAIM)
    assert [v.label for v in check.verdicts] == ["NOT_ENOUGH_INFO"]


@pytest.mark.parametrize(
    ("reply", "label", "clean"),
    [
        ("SUPPORT", "SUPPORT", True),
        ("**CONTRADICT**", "CONTRADICT", True),
        ("The evidence does not support the claim.", "CONTRADICT", False),
        ("Yes, it does.", "SUPPORT", False),
        ("No evidence either way", "NOT_ENOUGH_INFO", False),
        ("not_enough_info", "NOT_ENOUGH_INFO", False),
        ("refutes", "CONTRADICT", False),
        ("banana", "NOT_ENOUGH_INFO", False),
    ],
)
def test_labels_are_read_leniently(reply: str, label: str, clean: bool) -> None:
    assert parse_label(reply) == (label, clean)


def test_papers_below_the_relevance_threshold_get_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEI calibration: a claim the corpus does not address gets no verdict and no model call."""
    model = FakeComplete("SUPPORT")
    use(monkeypatch, model, make_hits([SAM], top_relevance=claims.DEFAULT.min_relevance - 0.01))
    check = claims.check_claim("Quantum gravity explains dark matter.")
    assert check.verdicts == [] and not check.addressed and model.calls == []
    assert "No retrieved paper" in check.overall
    use(monkeypatch, model, make_hits([SAM], top_relevance=claims.DEFAULT.min_relevance + 0.01))
    assert claims.check_claim(SAM_CLAIM).addressed and len(model.calls) == 1


def test_at_most_max_papers_are_examined_and_overall_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = {SAM.title: "SUPPORT", PAST_TENSE.title: "CONTRADICT"}
    model = FakeComplete(lambda title: replies.get(title, "NONE"))
    use(monkeypatch, model, make_hits([SAM, PAST_TENSE, *PAPERS], top_relevance=0.99))
    rule = claims.Verdicts(min_relevance=0.5, max_papers=2)
    check = claims.check_claim(SAM_CLAIM, rule=rule)
    assert [v.label for v in check.verdicts] == ["SUPPORT", "CONTRADICT"]
    assert check.overall == "1 paper supports, 1 paper contradicts"
    assert len(model.calls) == rule.max_papers


def test_the_default_examines_only_the_best_paper(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeComplete("CONTRADICT")
    use(monkeypatch, model, make_hits([SAM, PAST_TENSE, *PAPERS], top_relevance=0.99))
    check = claims.check_claim(SAM_CLAIM)
    assert [v.paper.title for v in check.verdicts] == [SAM.title] and len(model.calls) == 1


def test_a_paper_with_no_sentence_near_the_claim_gets_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """min_evidence: the best abstract sentence must reach it, else no verdict and no model call."""
    model = FakeComplete("CONTRADICT")
    use(monkeypatch, model, make_hits([SAM], top_relevance=0.99))
    best = claims.candidates(claims.SupportChecker([SAM], encode=fake_encode), 0, SAM_CLAIM, 3)[2]
    assert 0 < best < 1
    check = claims.check_claim(SAM_CLAIM, rule=claims.Verdicts(min_evidence=best + 0.01))
    assert check.verdicts == [] and not check.addressed and model.calls == []
    assert "No retrieved paper" in check.overall
    check = claims.check_claim(SAM_CLAIM, rule=claims.Verdicts(min_evidence=best - 0.01))
    assert [v.label for v in check.verdicts] == ["CONTRADICT"] and len(model.calls) == 1


def test_a_paper_with_planted_instructions_decides_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeComplete("SUPPORT")
    use(monkeypatch, model, make_hits([PLANTED, SAM], top_relevance=0.99))
    check = claims.check_claim(
        "Jailbreak benchmarks have attention sinks in 12 behaviors.", rule=claims.Verdicts(max_papers=2)
    )
    assert [v.label for v in check.verdicts] == ["NOT_ENOUGH_INFO", "SUPPORT"]
    assert check.verdicts[0].rationale == []
    prompt = "\n".join(m["content"] for call in model.calls for m in call)
    assert len(model.calls) == 1 and PLANTED.title not in prompt and "Ignore all previous" not in prompt


def test_a_failing_model_is_an_error_with_not_enough_info(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeComplete("SUPPORT", fail=LLMTimeoutError("local/x did not answer within 1 s; raise it."))
    use(monkeypatch, model, make_hits([SAM, PAST_TENSE], top_relevance=0.99))
    check = claims.check_claim(SAM_CLAIM, rule=claims.Verdicts(max_papers=2))
    assert check.error and "did not answer" in check.error
    assert [v.label for v in check.verdicts] == ["NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO"]
    assert len(model.calls) == 1  # it stops after the first failure


@pytest.mark.parametrize("claim", ["", "   ", None])
def test_an_empty_claim_is_a_clear_error(claim: Any) -> None:
    with pytest.raises(QueryError, match="claim is empty"):
        claims.check_claim(claim)


def test_a_100_kb_claim_is_refused_like_a_long_query() -> None:
    with pytest.raises(QueryError, match="limit"):
        claims.check_claim("SAM improves generalization. " * 3500)


@pytest.mark.parametrize(
    ("question", "claim"),
    [
        ("Does SAM improve generalization?", True),
        ("Is weight decay needed for LLMs trained for one epoch?", True),
        ("Sharpness correlates with generalization.", True),
        ("0-dimensional biomaterials show inductive properties.", True),
        ("What is JailbreakBench?", False),
        ("Which papers study jailbreaks?", False),
        ("Are there papers on jailbreaks?", False),
        ("graph neural networks oversmoothing", False),
        ("Can you list the papers by Chao?", False),
        ("Do attention models converge to the constructions, or to other solutions?", False),
        ("Is a language model better at the next token, and why would that be?", False),
    ],
)
def test_yes_no_questions_and_claims_are_recognised(question: str, claim: bool) -> None:
    assert claims.is_claim(question) is claim


def test_answer_routes_a_yes_no_question_to_verdicts_never_a_bare_yes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = {SAM.title: "SUPPORT", PAST_TENSE.title: "CONTRADICT"}
    use(monkeypatch, FakeComplete(lambda title: replies.get(title, "NONE")), make_hits([SAM, PAST_TENSE]))
    result = pipeline.answer("Does SAM improve generalization?")
    assert result.kind == "claim" and [v.label for v in result.verdicts] == ["SUPPORT"]  # the best paper only
    assert result.text.splitlines()[0] == "Verdict per retrieved paper: 1 paper supports."
    two = claims.answer_fields(
        "Does SAM improve generalization?", make_hits([SAM, PAST_TENSE]), settings=Settings(), model=None,
        encode=fake_encode, rule=claims.Verdicts(max_papers=2),
    )
    result = result.model_copy(update=two)
    assert [v.label for v in result.verdicts] == ["SUPPORT", "CONTRADICT"]
    assert not result.text.lower().startswith(("yes", "no"))
    lines = result.text.splitlines()
    assert lines[0] == "Verdict per retrieved paper: 1 paper supports, 1 paper contradicts."
    assert lines[1].startswith("[1] ") and "supports it: “" in lines[1]
    assert result.verdicts[0].rationale[0] in lines[1]
    assert [c.paper.id for c in result.citations] == [SAM.id, PAST_TENSE.id]


def test_answer_keeps_the_fact_path_for_other_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeComplete("SUPPORT")
    use(monkeypatch, model, make_hits([SAM]))
    streamed: list[Any] = []

    def stream(messages: list[dict[str, str]], *a: Any, **kw: Any) -> Any:
        streamed.append(messages)
        yield "SAM improves generalization [1]."
        yield Completion(text="SAM improves generalization [1].", model="fake")

    monkeypatch.setattr(llm, "stream", stream)
    result = pipeline.answer("What does SAM do to generalization?")
    assert result.kind == "fact" and model.calls == [] and streamed
