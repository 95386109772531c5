"""`rag ask` prints the answer's shape: a list answer as its lines (no reference list), an extractive answer
marked as quotations. The answer stream is the scripted fake of the UI tests (tests/ui_fakes.py), put in
place of ``rag.pipeline.answer_stream`` / ``answer``; no index, no model."""

from __future__ import annotations

import json

import pytest
from ui_fakes import CAP_LINE, LEAD, PAPERS, FakeStream, list_item, patch_pipeline

from rag.cli import main
from rag.types import Answer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeStream:
    return patch_pipeline(monkeypatch)


def ask(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["ask", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_list_answer_prints_the_lead_then_one_line_per_paper(
    fake: FakeStream, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = ask(capsys, "Which papers study jailbreaking?", "--model", "fake/list")
    assert code == 0
    items = [list_item(n, p).line for n, p in enumerate(PAPERS, 1)]
    assert lines[: 1 + len(items)] == [LEAD, *items]  # the lead on top, then the lines as written
    assert "References" not in lines  # each line names its paper
    assert lines[-1].startswith("fake/list") and "3 of 3 papers listed" in lines[-1]  # the footer


def test_capped_list_prints_the_cap_line(fake: FakeStream, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = ask(capsys, "Which papers are in the corpus?", "--model", "fake/list-capped")
    assert code == 0
    assert lines[:3] == [list_item(1, PAPERS[0]).line, list_item(2, PAPERS[1]).line, CAP_LINE]
    assert "2 of 14 papers listed" in lines[-1]


def test_how_many_prints_the_count_first(fake: FakeStream, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = ask(capsys, "How many papers are in the corpus?", "--model", "fake/list-capped")
    assert code == 0
    assert lines[0] == "14 papers." and lines[1] == list_item(1, PAPERS[0]).line


def test_extractive_answer_is_marked_as_quoted(fake: FakeStream, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = ask(capsys, "What does JailbreakBench provide?", "--model", "fake/extractive")
    assert code == 0
    assert lines[0] == "Quoted from the abstracts: the model's own answer could not be verified."
    quote = PAPERS[0].abstract.split(". ")[-1]
    assert lines[1] == f"> “{quote}” [1]"
    refs = lines[lines.index("References") :]
    assert refs[1] == f"[1] {PAPERS[0].title}"


def test_fact_answer_still_prints_text_and_references(
    fake: FakeStream, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = ask(capsys, "Which paper introduces JailbreakBench?", "--model", "fake/x")
    assert code == 0
    assert lines[0] == "JailbreakBench is the answer [1]. It is open [1]."
    assert "References" in lines and not any(line.startswith(">") for line in lines)


def test_json_dumps_the_answer_with_its_shape(fake: FakeStream, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--json", "--model", "fake/list-capped", "Which papers?"]) == 0
    data = json.loads(capsys.readouterr().out)
    answer = Answer.model_validate(data)
    assert answer.kind == "list" and answer.total == 14 and len(answer.items) == 2
    assert data["items"][0]["line"] == list_item(1, PAPERS[0]).line and data["extractive"] is False
