"""Fast tests of the chat UI: rendering helpers (escaping, filters, abstention) and the chat handler,
driven with a scripted answer stream (no models, no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ui_fakes import CAP_LINE, LEAD, PAPERS, FakeStream, list_item

from rag.settings import Settings
from rag.types import Answer, Citation, Filters, Hit, Hits
from ui import render
from ui.app import EXAMPLES, RagUI, build_filters, create_app, example_questions, source_choices
from ui.controls import EXAMPLES as CONTROL_EXAMPLES

EVIL = PAPERS[2]


def run_chat(ui: RagUI, question: str, *, model: str = "", k: int = 5, year_min: int | None = None,
             chat: list | None = None, history: list | None = None) -> list[tuple]:
    return list(ui.respond(question, chat or [], history or [], year_min, None, "", [], model, k))


# --- rendering helpers --------------------------------------------------------------------------------

def test_cards_escape_untrusted_paper_text() -> None:
    cit = Citation(number=3, paper=EVIL, evidence=EVIL.abstract)
    html = render.citation_card(cit) + render.hit_card(Hit(paper=EVIL, score=1.0, text=EVIL.abstract))
    for raw in ("<img", "<script>", "<iframe", "<b>kiddie"):
        assert raw not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;script&gt;" in html and "&amp; friends" in html


def test_citation_card_shows_number_title_authors_year_page_and_evidence() -> None:
    paper = PAPERS[1]
    cit = Citation(number=2, paper=paper, evidence="SAM reduces the feature rank.", flagged=True)
    html = render.citation_card(cit)
    assert '<span class="rag-num">[2]</span>' in html and 'id="rag-cite-2"' in html
    assert paper.title in html
    assert "Maksym Andriushchenko, Dara Bahri" in html
    assert "2023" in html
    assert "001_dddadfe95e7b2692.txt, 003_018b3c99b71c7c41.txt" in html  # every page listing it
    assert "SAM reduces the feature rank." in html
    assert "weak support" in html


def test_snippet_cuts_long_text_at_a_word() -> None:
    text = "word " * 200
    out = render.snippet(text, 50)
    assert len(out) <= 52 and out.endswith("…") and "wor …" not in out


def test_describe_filters() -> None:
    assert render.describe_filters(Filters()) == "none (whole corpus)"
    desc = render.describe_filters(Filters(authors=["Flammarion"], year_min=2022, year_max=2023))
    assert "Flammarion" in desc and "2022" in desc and "2023" in desc


def test_build_filters_from_controls() -> None:
    f = build_filters(2021.0, None, "Flammarion; Croce, ", ["001_dddadfe95e7b2692.txt"])
    assert f == Filters(authors=["Flammarion", "Croce"], year_min=2021, sources=["001_dddadfe95e7b2692.txt"])
    assert build_filters(None, None, "", []).is_empty()


def test_abstention_is_rendered_with_nearest_papers() -> None:
    hits = [Hit(paper=p, score=0.1, text=p.abstract) for p in PAPERS[:2]]
    ans = Answer(question="q", text="The corpus does not answer this.", abstained=True, hits=hits)
    html = render.render_answer(ans)
    assert "does not answer" in html
    assert all(p.title in html for p in PAPERS[:2])
    assert "rag-num" not in html  # nearest papers are not citations
    assert render.chat_text(ans).startswith("**No answer in the corpus.**")


def test_hits_panel_numbers_papers_by_rank_while_streaming() -> None:
    hits = [Hit(paper=p, score=1.0) for p in PAPERS[:2]]
    html = render.render_hits(hits, Filters(authors=["Chao"]), note="author read from the question")
    assert html.index("[1]") < html.index(PAPERS[0].title) < html.index("[2]") < html.index(PAPERS[1].title)
    assert "Filter applied: author: Chao" in html and "author read from the question" in html
    assert "No paper matches" in render.render_hits([], None)
    assert "Retrieved 2 papers" in html
    listing = Hits(hits, total=27)  # a filter listing capped at the hits shown
    assert "Retrieved 2 of 27 papers" in render.render_hits(listing, None)


def test_answer_panel_lists_citations_in_order_and_uncited_hits() -> None:
    hits = [Hit(paper=p, score=1.0) for p in PAPERS]
    cits = [Citation(number=2, paper=PAPERS[1]), Citation(number=1, paper=PAPERS[0])]
    html = render.render_answer(Answer(question="q", text="a [1] b [2]", citations=cits, hits=hits,
                                       filters=Filters(year_min=2023), model="m"))
    assert html.index("[1]") < html.index("[2]")
    assert "Also retrieved, not cited (1)" in html
    assert "Filter applied: years: 2023" in html and "model: m" in html


def test_chat_text_for_model_error_escapes_markdown() -> None:
    ans = Answer(question="q", error="bad <b>key</b> [x](http://e)", hits=[Hit(paper=PAPERS[0], score=1)])
    text = render.chat_text(ans)
    assert "The model call failed" in text and "<b>" not in text and "\\[x\\]" in text
    assert "Sources" in text


def test_empty_checked_text_is_explained() -> None:
    ans = Answer(question="q", text="", raw_text="Unsupported claim.", hits=[Hit(paper=PAPERS[0], score=1)])
    assert render.chat_text(ans).startswith("**No supported answer.**")
    assert "No citations" in render.render_answer(ans) and PAPERS[0].title in render.render_answer(ans)


def test_example_questions_keep_only_answerable_eval_questions(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "Which paper introduces JailbreakBench?", "expected": ["jailbreakbench"]},
        {"id": "b", "question": "What is the capital of France?", "expected": []},
        {"id": "c", "question": "Does SAM lead to low-rank features?", "expected": ["sam-low-rank"]},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    wanted = [rows[2]["question"], rows[1]["question"], "Not in the set?", rows[0]["question"]]
    assert example_questions(f, wanted) == [rows[2]["question"], rows[0]["question"]]
    assert example_questions(tmp_path / "missing.jsonl", wanted) == wanted  # installed without eval/


def test_shipped_examples_are_answerable_eval_questions() -> None:
    assert example_questions() == list(EXAMPLES)


def test_source_choices_count_every_page() -> None:
    choices = dict((v, label) for label, v in source_choices(PAPERS))
    assert choices["001_dddadfe95e7b2692.txt"] == "001_dddadfe95e7b2692.txt (2 papers)"
    assert choices["003_018b3c99b71c7c41.txt"].endswith("(1 papers)")


def test_examples_include_list_questions() -> None:
    assert EXAMPLES is CONTROL_EXAMPLES  # ui.app re-exports the controls
    assert any(q.startswith("Which papers study jailbreaking") for q in EXAMPLES)  # a topic list
    assert any("Andriushchenko" in q for q in EXAMPLES)  # a list defined by its filter
    assert any(q.startswith("How many papers") for q in EXAMPLES)  # a count


# --- answer shapes in the chat: lists linked to the cards, quotations -----------------------------------

def list_answer(question: str = "Which papers study jailbreaking?", *, lead: str = LEAD, capped: bool = False,
                papers: list | None = None) -> Answer:
    items = [list_item(n, p) for n, p in enumerate(papers or PAPERS, 1)]
    lines = ([lead] if lead else []) + [i.line for i in items] + ([CAP_LINE] if capped else [])
    return Answer(
        question=question, kind="list", text="\n".join(lines), lead=lead, items=items,
        total=14 if capped else len(items),
        citations=[Citation(number=i.number, paper=i.paper, evidence=i.evidence) for i in items],
        hits=[Hit(paper=p, score=1.0) for p in PAPERS], model="m",
    )


def test_citations_link_to_their_cards() -> None:
    assert render.cite_link(2) == "[\\[2\\]](#rag-cite-2)"
    text = render.link_citations("A [1] and B [2], not [7].", {1, 2})
    assert text == "A [\\[1\\]](#rag-cite-1) and B [\\[2\\]](#rag-cite-2), not [7]."
    assert render.link_citations("escaped \\[1\\]", {1}) == "escaped [\\[1\\]](#rag-cite-1)"
    fact = Answer(question="q", text="JailbreakBench is open [1].", model="m",
                  citations=[Citation(number=1, paper=PAPERS[0])])
    assert render.chat_text(fact).startswith("JailbreakBench is open [\\[1\\]](#rag-cite-1).")


def test_list_answer_renders_as_a_list_whose_items_link_to_their_cards() -> None:
    ans = list_answer()
    md = render.chat_text(ans)
    lines = md.splitlines()
    assert lines[0] == "JailbreakBench is one of them [\\[1\\]](#rag-cite-1)."  # the lead, above the list
    items = [line for line in lines if line.startswith("- ")]
    assert len(items) == 3
    for n, line in enumerate(items, 1):
        assert line.startswith(f"- [\\[{n}\\]](#rag-cite-{n}) ")
    assert "**JailbreakBench: An Open Robustness Benchmark" in items[0]
    assert "*Jailbreak attacks cause large language models to generate harmful content.*" in items[0]
    assert "\\(Chao et al., 2024\\)" in items[0]
    # untrusted titles stay text: Markdown and HTML are escaped
    assert not re.search(r"(?<!\\)<", items[2]) and "\\<img" in items[2] and "\\<b\\>kiddie" in items[2]
    # every linked number has its card in the sources panel
    panel = render.render_answer(ans)
    for n in (1, 2, 3):
        assert f'id="rag-cite-{n}"' in panel
    assert "Papers in the list (3)" in panel
    assert "Also retrieved" not in panel  # every hit is in the list
    longer = ans.model_copy(update={"hits": [*ans.hits, Hit(paper=PAPERS[0].model_copy(update={"id": "x"}),
                                                          score=0.1)]})
    assert "Also retrieved, not in the list (1)" in render.render_answer(longer)
    assert "3 listed / 3 retrieved" in md


def test_urls_in_paper_text_stay_verbatim() -> None:
    text = "Code: https://github.com/tml-epfl/sharpness-vs-generalization. See (www.x_y.org)."
    assert render.md_escape(text) == (
        "Code: `https://github.com/tml-epfl/sharpness-vs-generalization`. See \\(`www.x_y.org`\\)."
    )
    assert render.md_escape("a_b <i>") == "a\\_b \\<i\\>"


def test_capped_list_shows_how_many_more() -> None:
    ans = list_answer(lead="", capped=True, papers=PAPERS[:2])
    md = render.chat_text(ans)
    body = md.split("<sub>")[0].strip()
    assert body.splitlines()[0].startswith("- [\\[1\\]](#rag-cite-1)")  # no lead: the list comes first
    assert body.endswith("*… and 12 more — narrow the filter \\(e.g. a year or an author\\).*")
    assert "2 listed of 14 / 3 retrieved" in md
    assert "Papers in the list (2 of 14)" in render.render_answer(ans)


def test_how_many_gets_the_count_line() -> None:
    ans = list_answer("How many papers did Andriushchenko publish?", lead="", papers=PAPERS[:2])
    assert render.chat_text(ans).startswith("**2 papers.**\n\n- [\\[1\\]]")
    capped = list_answer("how many papers are there?", lead="", capped=True, papers=PAPERS[:2])
    assert render.chat_text(capped).startswith("**14 papers.**")
    said = list_answer("How many papers study SAM?", lead="Two papers study it [1][2].", papers=PAPERS[:2])
    assert "**2 papers.**" not in render.chat_text(said)  # the lead already gives the count


def test_list_items_come_from_items_when_the_text_lacks_them() -> None:
    ans = list_answer(lead="")
    ans = ans.model_copy(update={"text": "Papers:"})
    md = render.chat_text(ans)
    assert md.startswith("Papers:\n\n- [\\[1\\]](#rag-cite-1)") and md.count("\n- [") == 3


def test_extractive_answer_is_a_quotation_with_an_honest_note() -> None:
    quote = "We introduce JailbreakBench, an open-sourced benchmark with an evolving repository of attacks."
    ans = Answer(question="What does JailbreakBench provide?", text=f"“{quote}” [1]", extractive=True,
                 citations=[Citation(number=1, paper=PAPERS[0], evidence=quote)], model="m",
                 hits=[Hit(paper=PAPERS[0], score=1.0)])
    md = render.chat_text(ans)
    note, quoted = md.split("\n\n")[:2]
    assert "Quoted from the abstracts" in note and "could not be verified" in note
    assert quoted.startswith("> “We introduce JailbreakBench") and quoted.endswith("” [\\[1\\]](#rag-cite-1)")
    assert "quoted" in md.split("<sub>")[-1]
    assert "Quoted paper (1)" in render.render_answer(ans)


def test_streamed_list_lines_show_as_list_items_before_the_lead() -> None:
    streamed = f"{list_item(1, PAPERS[0]).line}\n{list_item(2, PAPERS[1]).line}\nThe lead"
    md = render.chat_partial(streamed)
    lines = md.splitlines()
    assert lines[0].startswith("- \\[1\\] JailbreakBench") and lines[1].startswith("- \\[2\\] Sharpness")
    assert lines[2:] == ["", "The lead"]  # a paragraph after the list, not part of its last item
    assert render.chat_partial("Plain model text [1] so far") == "Plain model text [1] so far"


# --- the chat handler with a scripted stream -----------------------------------------------------------

@pytest.fixture
def fake() -> FakeStream:
    return FakeStream()


@pytest.fixture
def ui(fake: FakeStream) -> RagUI:
    return RagUI(Settings(), fake)


def test_respond_streams_then_shows_final_text_and_cards(ui: RagUI, fake: FakeStream) -> None:
    steps = run_chat(ui, "Which paper introduces JailbreakBench?", model="fake/x", k=2, year_min=2023)
    box, chat, panel, history = steps[-1]
    assert box == ""
    assert chat[0] == {"role": "user", "content": "Which paper introduces JailbreakBench?"}
    assert chat[1]["role"] == "assistant"
    link = "[\\[1\\]](#rag-cite-1)"  # each [n] links to the card with the same number
    assert chat[1]["content"].startswith(f"JailbreakBench is the answer {link}. It is open {link}.")
    assert "filter: years: 2023" in chat[1]["content"]
    assert "[1]" in panel and PAPERS[0].title in panel
    # streaming: some intermediate step showed partial raw text, and the hits panel came before the end
    partial = [s[1][1]["content"] for s in steps[1:-1]]
    assert any(p.startswith("JailbreakBench is") and "[1]" not in p for p in partial)
    assert any("writing the answer" in s[2] for s in steps[1:-1])
    # the controls reach the API call unchanged
    call = fake.calls[0]
    assert call["model"] == "fake/x" and call["k"] == 2 and call["filters"] == Filters(year_min=2023)
    assert history == [(call["question"], "JailbreakBench is the answer [1]. It is open [1].")]


def test_history_is_passed_to_the_next_question(ui: RagUI, fake: FakeStream) -> None:
    _, chat, _, history = run_chat(ui, "first question")[-1]
    run_chat(ui, "and then?", chat=chat, history=history)
    assert fake.calls[0]["history"] is None
    assert fake.calls[1]["history"][0][0] == "first question"


def test_empty_model_means_default(ui: RagUI, fake: FakeStream) -> None:
    run_chat(ui, "q", model="  ")
    assert fake.calls[0]["model"] is None


def test_abstention_in_chat_and_panel(ui: RagUI) -> None:
    _, chat, panel, _ = run_chat(ui, "capital of France?", model="fake/abstain")[-1]
    assert "No answer in the corpus" in chat[-1]["content"]
    assert "nearest papers" in panel and PAPERS[0].title in panel


@pytest.mark.parametrize(
    ("model", "expected_chat", "cards"),
    [
        ("fake/model-error", "The model call failed", True),
        ("fake/raise", "year_min is after year_max", True),
        ("fake/crash", "RuntimeError: boom in the fake", False),
    ],
)
def test_errors_show_in_chat_and_page_stays_usable(
    ui: RagUI, model: str, expected_chat: str, cards: bool
) -> None:
    _, chat, panel, history = run_chat(ui, "q", model=model)[-1]
    assert expected_chat in chat[-1]["content"].replace("\\", "")  # as rendered (Markdown escapes gone)
    assert "Traceback" not in chat[-1]["content"]
    assert ("rag-card" in panel) is cards  # the sources still show when retrieval worked
    assert history == []  # failed turns are not sent back to the model
    # the next question works
    _, chat2, _, _ = run_chat(ui, "Which paper introduces JailbreakBench?", chat=chat)[-1]
    assert chat2[-1]["content"].startswith("JailbreakBench is the answer")


def test_first_answer_waits_for_the_warm_up(ui: RagUI, fake: FakeStream) -> None:
    ui.ready.clear()  # as while rag ui loads the models in the background
    steps = ui.respond("q", [], [], None, None, "", [], "", 5)
    first = next(steps)
    assert "Loading the models" in first[1][-1]["content"] and fake.calls == []
    ui.ready.set()
    assert list(steps)[-1][1][-1]["content"].startswith("JailbreakBench is the answer") and fake.calls


def test_blank_question_does_nothing(ui: RagUI, fake: FakeStream) -> None:
    steps = run_chat(ui, "   ")
    assert steps[-1][1] == [] and fake.calls == []


def test_api_answer_returns_answer_json(ui: RagUI) -> None:
    q = "Which paper introduces JailbreakBench?"
    out = ui.api_answer(q, year_min=2022, source="001_x.txt, 003_y.txt")
    ans = Answer.model_validate(out)
    assert ans.citations[0].paper.title == PAPERS[0].title
    assert ans.filters == Filters(year_min=2022, sources=["001_x.txt", "003_y.txt"])
    json.dumps(out)


def test_create_app_builds_with_injected_stream(fake: FakeStream) -> None:
    demo = create_app(Settings(), fake, papers=PAPERS)
    cfg = demo.get_config_file()
    names = [d.get("api_name") for d in cfg["dependencies"]]
    assert "answer" in names
    assert demo.title.startswith("rag")


def test_rag_ui_command_passes_flags_to_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.app
    from rag.cli import main

    seen: dict = {}
    monkeypatch.setattr(ui.app, "launch", lambda settings, **kw: seen.update(kw, model=settings.llm.model))
    assert main(["ui", "--host", "127.0.0.1", "--port", "7999", "--model", "openai/x", "--no-preload"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 7999 and seen["model"] == "openai/x"
    assert seen["preload"] is False and seen["concurrency"] is None
    assert main(["ui", "--concurrency", "0"]) == 2  # a clean one-line error, not a traceback


def test_respond_streams_a_list_then_links_its_items_to_the_cards(ui: RagUI) -> None:
    steps = run_chat(ui, "Which papers study jailbreaking?", model="fake/list")
    _, chat, panel, history = steps[-1]
    partial = [s[1][1]["content"] for s in steps[1:-1]]
    assert any(p.startswith("- \\[1\\] JailbreakBench") and "JailbreakBench is one" not in p for p in partial)
    final = chat[1]["content"]
    lead, first_item = final.split("\n\n")[:2]
    assert lead == "JailbreakBench is one of them [\\[1\\]](#rag-cite-1)."
    assert first_item.startswith("- [\\[1\\]](#rag-cite-1) ")
    for n in re.findall(r"\(#rag-cite-(\d+)\)", final):
        assert f'id="rag-cite-{n}"' in panel
    assert history[0][1].startswith(LEAD)


def test_respond_shows_an_extractive_answer_as_a_quotation(ui: RagUI) -> None:
    _, chat, panel, _ = run_chat(ui, "What does JailbreakBench provide?", model="fake/extractive")[-1]
    assert "Quoted from the abstracts" in chat[1]["content"] and "\n> “" in chat[1]["content"]
    assert 'id="rag-cite-1"' in panel and "Quoted paper (1)" in panel
