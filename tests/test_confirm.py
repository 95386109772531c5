"""rag.confirm: the model judges the top papers of a question retrieval scored low (scripted fake model).

The real model's figures (questions rescued, absent questions wrongly confirmed) are in docs/answers.md,
measured with `rag eval --answers`.
"""

from __future__ import annotations

from typing import Any

import pytest
from answer_fixtures import CANARY, FROST, JAILBREAKBENCH, PAST_TENSE, PLANTED, SAM, fake_encode, make_hits
from test_pipeline import FakeModel, FakeSearch

from rag import llm, pipeline
from rag.cite import CANNOT_ANSWER
from rag.confirm import confirm, says_yes
from rag.errors import LLMTimeoutError
from rag.settings import Settings
from rag.types import Answer, Hits, Paper

LOW = 0.1
"""Relevance of the top hit in the band: below the good-match threshold, above llm.confirm_floor."""


@pytest.fixture(autouse=True)
def no_embedding_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_encoder", lambda settings: fake_encode)


def judge(yes_to: set[str], answer: str = CANNOT_ANSWER) -> Any:
    """Scripted model: YES/NO to confirmation prompts (YES for the titles in ``yes_to``), else ``answer``."""

    def reply(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if "Does this abstract answer the question?" not in user:
            return answer
        return "YES" if any(f"Paper: {title}\n" in user for title in yes_to) else "NO"

    return reply


def run(monkeypatch: pytest.MonkeyPatch, hits: Hits, model: FakeModel, question: str) -> list[object]:
    monkeypatch.setattr(pipeline, "_search", FakeSearch(hits))
    monkeypatch.setattr(llm, "stream", model)
    return list(pipeline.answer_stream(question))


def confirm_calls(model: FakeModel) -> list[str]:
    """The titles of the papers the model was asked about, in order."""
    out = []
    for call in model.calls:
        user = call["messages"][-1]["content"]
        if "Does this abstract answer the question?" in user:
            out.append(user.split("Paper: ", 1)[1].split("\n", 1)[0])
    return out


def low(papers: list[Paper], top: float = LOW) -> Hits:
    return make_hits(papers, good_match=False, top_relevance=top)


@pytest.mark.parametrize(
    ("reply", "yes"),
    [("YES", True), ("Yes.", True), (" yes, it does", True), ("TRUE", True), ("NO", False), ("", False),
     ("No, it does not", False), ("The answer is yes", False), ("Yesterday", False)],
)
def test_only_a_reply_that_starts_with_yes_confirms(reply: str, yes: bool) -> None:
    assert says_yes(reply) is yes


def test_nothing_confirmed_abstains_after_asking_about_the_top_papers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel(judge(set()))
    question = "Why does gradient noise help escape minima?"
    items = run(monkeypatch, low([SAM, FROST, PAST_TENSE]), model, question)
    final = items[-1]
    assert isinstance(final, Answer) and final.abstained and final.text == CANNOT_ANSWER
    assert confirm_calls(model) == [SAM.title, FROST.title]  # llm.confirm_depth (2), and no answer call
    assert len(model.calls) == 2


def test_far_questions_abstain_without_a_model_call(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel(judge({SAM.title}))
    final = run(monkeypatch, low([SAM, FROST], top=0.004), model, "How does LoRA fine-tune LLMs?")[-1]
    assert isinstance(final, Answer) and final.abstained and model.calls == []


def test_a_confirmed_paper_is_answered_from_and_quoted_when_the_model_declines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel(judge({FROST.title}, answer=CANNOT_ANSWER))
    question = "Which method uses the reward gradient in embedding space for policy optimization?"
    final = run(monkeypatch, low([SAM, FROST, PAST_TENSE]), model, question)[-1]
    assert isinstance(final, Answer) and not final.abstained
    assert confirm_calls(model) == [SAM.title, FROST.title]  # a fact question stops at the first YES
    assert final.hits[0].paper.id == FROST.id and final.hits[0].confirmed
    assert final.extractive and [c.paper.id for c in final.citations] == [FROST.id]
    assert final.citations[0].evidence in FROST.abstract


def test_a_confirmed_list_holds_exactly_the_confirmed_papers(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel(judge({JAILBREAKBENCH.title, PAST_TENSE.title}, answer="NONE"))
    hits = low([JAILBREAKBENCH, SAM, PAST_TENSE, FROST])
    monkeypatch.setenv("RAG_LLM__CONFIRM_DEPTH", "3")
    question = "Which papers study getting around the refusals of chat models?"
    final = run(monkeypatch, hits, model, question)[-1]
    assert isinstance(final, Answer) and final.kind == "list" and not final.abstained
    assert confirm_calls(model) == [JAILBREAKBENCH.title, SAM.title, PAST_TENSE.title]  # a list asks all
    assert [c.paper.id for c in final.citations] == [JAILBREAKBENCH.id, PAST_TENSE.id]


def test_a_planted_paper_is_never_sent_nor_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel(judge({PLANTED.title, SAM.title}))
    question = "What do attention sinks do in jailbreak benchmarks?"
    final = run(monkeypatch, low([PLANTED, SAM]), model, question)[-1]
    assert isinstance(final, Answer)
    assert PLANTED.title not in confirm_calls(model)
    assert all(CANARY not in c["messages"][-1]["content"] for c in model.calls)
    assert all(c.paper.id != PLANTED.id for c in final.citations)
    assert not any(h.confirmed for h in final.hits if h.paper.id == PLANTED.id)


def test_a_failed_confirmation_call_abstains(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel("YES", fail=LLMTimeoutError("the model did not answer within 3 s"))
    final = run(monkeypatch, low([SAM, FROST]), model, "Why does SAM generalize better?")[-1]
    assert isinstance(final, Answer) and final.abstained and final.error is None
    assert len(model.calls) == 1  # no second paper after a failure


def test_depth_zero_turns_it_off() -> None:
    def never(*args: Any) -> str:
        raise AssertionError("no model call expected")

    settings = Settings(llm={"confirm_depth": 0})  # type: ignore[arg-type]
    hits = low([SAM, FROST])
    assert confirm("Why does SAM generalize?", hits, settings, complete=never) is hits


def test_yes_no_question_confirmed_gets_a_verdict_on_the_confirmed_paper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reply(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if "Does this abstract answer the question?" in user:
            return "YES" if f"Paper: {SAM.title}\n" in user else "NO"
        return "TRUE"

    model = FakeModel(reply)
    question = "Does SAM pick solutions that generalize better than GD?"
    final = run(monkeypatch, low([FROST, SAM]), model, question)[-1]
    assert isinstance(final, Answer) and final.kind == "claim" and not final.abstained
    assert [c.paper.id for c in final.citations] == [SAM.id]
