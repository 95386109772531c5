"""Answer shapes with the scripted fake model and fake retrieval: lists, counts, the cap, quotes, names."""

from __future__ import annotations

import re

import pytest
from answer_fixtures import FROST, JAILBREAKBENCH, PAPERS, PAST_TENSE, PLANTED, SAM, fake_encode, make_hits
from test_pipeline import FakeModel, FakeSearch

from rag import errors, llm, pipeline, shapes
from rag.chunk import split_sentences
from rag.cite import CANNOT_ANSWER, SupportChecker, check_citations
from rag.naming import is_dangling
from rag.settings import Settings
from rag.types import Answer, Filters, Hit, Hits, Paper

JB_CLAIM = (
    "JailbreakBench is an open-sourced benchmark with a standardized evaluation framework for jailbreaks"
)


@pytest.fixture(autouse=True)
def no_embedding_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_encoder", lambda settings: fake_encode)


def listing(papers: list[Paper], total: int | None = None, filters: Filters | None = None) -> Hits:
    """What retrieve returns when a filter alone defines the set (see retrieve._listing)."""
    hits = [Hit(paper=p, score=1.0, text="", retrievers=["filter"], relevance=1.0) for p in papers]
    flt = filters or Filters(authors=["Maksym Andriushchenko"], year_min=2024, year_max=2024)
    return Hits(hits, query="q", filters=flt, filters_from_query=True, total=total or len(papers))


def ranked(rows: list[tuple[Paper, float, float]]) -> Hits:
    """Relevance-ranked hits: (paper, fused score, calibrated relevance)."""
    hits = [Hit(paper=p, score=s, text="", retrievers=["dense", "bm25"], relevance=r) for p, s, r in rows]
    return Hits(hits, query="q", filters=Filters(), good_match=True)


def run(monkeypatch: pytest.MonkeyPatch, hits: Hits, model: FakeModel, question: str) -> list[object]:
    search = FakeSearch(hits)
    monkeypatch.setattr(pipeline, "_search", search)
    monkeypatch.setattr(llm, "stream", model)
    return list(pipeline.answer_stream(question))


def abstract_units(paper: Paper) -> list[str]:
    return [paper.title, *split_sentences(paper.abstract)]


# ---- deciding the shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "Which papers study jailbreaking attacks on LLMs?",
        "Which adversarial attacks are built on random search?",
        "What did Maksym Andriushchenko publish in 2024?",
        "What has been written about the Lion optimizer?",
        "Papers on grokking?",
        "Are there any papers about catastrophic forgetting?",
        "List the work on sharpness-aware minimization.",
        "How many papers are about jailbreaking?",
        "Show me papers by Flammarion",
        # a polite or first-person opening is skipped before the wording is read
        "Can you list work on mirror descent?",
        "Tell me which papers deal with catastrophic forgetting",
        "I am looking for papers on neural collapse",
        "Do you have any papers about grokking?",
        "Would you show me all posters?",
    ],
)
def test_list_wording(question: str) -> None:
    assert shapes.wants_list(question)


@pytest.mark.parametrize(
    "question",
    [
        "Which paper introduced the neural tangent kernel?",
        "What does RobustBench measure?",
        "Which method exploits the gradient of the reward in embedding space?",
        "How does momentum affect the implicit bias of SGD?",
        "What is Frost Training?",
        "Could you tell me which paper introduced the NTK?",
        "Tell me about sharpness-aware minimization",
        "I want to know what the neural tangent kernel is",
    ],
)
def test_fact_wording(question: str) -> None:
    assert not shapes.wants_list(question)


def test_a_filter_listing_is_a_list_whatever_the_wording() -> None:
    assert shapes.decide("Andriushchenko 2024?", listing([PAST_TENSE, JAILBREAKBENCH])) == "list"
    assert shapes.decide("Andriushchenko 2024?", make_hits(PAPERS)) == "fact"


# ---- list answers ------------------------------------------------------------------------------------------


def test_list_from_a_filter_names_every_selected_paper_with_a_verbatim_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel("unused")
    items = run(
        monkeypatch,
        listing([PAST_TENSE, JAILBREAKBENCH]),
        model,
        "What did Maksym Andriushchenko publish in 2024?",
    )
    final = items[-1]
    assert isinstance(final, Answer) and final.kind == "list" and not final.abstained
    assert [it.paper.id for it in final.items] == [PAST_TENSE.id, JAILBREAKBENCH.id]
    assert final.total == 2
    for it in final.items:
        assert it.evidence in abstract_units(it.paper)  # verbatim
        assert it.line == f"[{it.number}] {it.paper.title} ({shapes.author_year(it.paper)}) — {it.evidence}"
    assert [(c.number, c.paper.id) for c in final.citations] == [(1, PAST_TENSE.id), (2, JAILBREAKBENCH.id)]
    assert "Andriushchenko and Flammarion, 2024" in final.items[0].line
    assert "Chao et al., 2024" in final.items[1].line  # authors_truncated: et al.
    # a filter listing needs no model: no lead sentence is asked for
    assert model.calls == [] and final.lead == ""
    assert final.text == "\n".join(it.line for it in final.items)


TOPIC = "Which papers study jailbreak attacks on LLMs?"


def topic_hits() -> Hits:
    return ranked([(PAST_TENSE, 1.0, 0.95), (JAILBREAKBENCH, 0.95, 0.9), (SAM, 0.3, 0.1)])


def test_a_topic_list_gets_a_checked_lead_sentence_on_top(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel(
        "Both study jailbreak attacks that make LLMs generate harmful outputs [1][2]. More text."
    )
    final = run(monkeypatch, topic_hits(), model, TOPIC)[-1]
    assert isinstance(final, Answer) and [it.paper.id for it in final.items] == [
        PAST_TENSE.id,
        JAILBREAKBENCH.id,
    ]
    # its first sentence only, its keys still the items' numbers (the check re-pointed [1] to the paper that
    # supports the sentence, item 2)
    assert final.lead == "Both study jailbreak attacks that make LLMs generate harmful outputs [2]."
    assert final.text.splitlines() == [final.lead, *(it.line for it in final.items)]
    user = model.calls[0]["messages"][1]["content"]
    assert TOPIC in user and SAM.title not in user  # the model sees the members only


def test_stream_order_hits_then_list_lines_then_model_text_then_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel("Both study jailbreak attacks that make LLMs generate harmful outputs [1][2].")
    items = run(monkeypatch, topic_hits(), model, TOPIC)
    assert isinstance(items[0], Hits) and isinstance(items[-1], Answer)
    deltas = items[1:-1]
    assert all(isinstance(d, str) for d in deltas)
    assert deltas[0] == items[-1].items[0].line + "\n" and deltas[1] == items[-1].items[1].line + "\n"
    assert "".join(str(d) for d in deltas[2:]) == model.reply  # the model's text comes after the list
    final = items[-1]
    assert final.timings["first_item"] <= final.timings["first_token"] <= final.timings["total"]


def test_list_lines_come_before_and_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lines are streamed before the model is called; with a failing model the list stands alone."""
    model = FakeModel("x", fail=errors.LLMTimeoutError("local/qwen did not answer within 3 s."))
    items = run(monkeypatch, topic_hits(), model, TOPIC)
    final = items[-1]
    assert isinstance(final, Answer) and final.error is None and final.lead == "" and len(model.calls) == 1
    assert final.text == "\n".join(it.line for it in final.items)
    assert len(final.citations) == 2


@pytest.mark.parametrize(
    "reply",
    [CANNOT_ANSWER, "The capital of Peru is Lima [1].", "These papers were written [7].", "[1][2].", ""],
    ids=["declines", "unsupported", "unknown-key", "keys-only", "empty"],
)
def test_an_unusable_lead_sentence_is_left_out(monkeypatch: pytest.MonkeyPatch, reply: str) -> None:
    final = run(monkeypatch, topic_hits(), FakeModel(reply), TOPIC)[-1]
    assert isinstance(final, Answer) and final.lead == "" and not final.abstained
    assert final.text == "\n".join(it.line for it in final.items)


def test_list_from_relevance_keeps_the_members_and_leaves_out_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hits = ranked([(JAILBREAKBENCH, 1.0, 1.0), (PAST_TENSE, 0.9, 0.95), (SAM, 0.5, 0.2), (FROST, 0.45, 0.1)])
    assert shapes.members(hits) == [0, 1]
    settings = Settings()
    settings.llm.list_lead = False
    monkeypatch.setattr(pipeline, "_search", FakeSearch(hits))
    model = FakeModel("unused")
    monkeypatch.setattr(llm, "stream", model)
    final = pipeline.answer("Which papers study jailbreak attacks on LLMs?", settings=settings)
    assert final.kind == "list" and model.calls == []  # no lead sentence asked for
    assert [it.paper.id for it in final.items] == [JAILBREAKBENCH.id, PAST_TENSE.id]
    assert final.total == 2 and "match" not in final.text  # no count line unless asked
    # the quoted sentence is the one most relevant to the question, not the first one
    assert "jailbreak" in final.items[1].evidence.lower()


def test_membership_rule() -> None:
    hits = ranked([(JAILBREAKBENCH, 1.0, 0.2), (PAST_TENSE, 0.8, 0.1), (SAM, 0.5, 0.9), (FROST, 0.3, 0.1)])
    # PAST_TENSE: close to the top score; SAM: far below it but clearly relevant; FROST: neither
    assert shapes.members(hits) == [0, 1, 2]
    assert shapes.members(hits, shapes.Membership(min_ratio=0.0)) == [0, 1, 2, 3]
    assert shapes.members(hits, shapes.Membership(min_ratio=0.9, sure_relevance=1.1)) == [0]
    assert shapes.members(ranked([(SAM, 0.2, 0.1)])) == [0]  # the top hit of a good match always is


def test_a_small_filter_read_from_the_question_defines_the_set() -> None:
    hits = ranked([(JAILBREAKBENCH, 1.0, 0.0), (PAST_TENSE, 0.3, 0.0), (SAM, 0.2, 0.0)])
    assert shapes.members(hits) == [0]
    hits.filters_from_query, hits.total = True, 3  # e.g. "Which orals were given at the workshop?"
    assert shapes.members(hits) == [0, 1, 2]
    hits.total = shapes.LIST_CAP + 1  # a filter that selects many papers does not
    assert shapes.members(hits) == [0]


@pytest.mark.parametrize(
    ("question", "whole"),
    [
        ("List every poster presented at the workshop on learning dynamics", True),
        ("Which are all the orals about optimisation?", True),
        ("Show me each talk on sharpness", True),
        ("Which posters study sharpness?", False),
        ("Do all networks trained with SGD generalise?", False),
    ],
)
def test_all_or_every_asks_for_the_whole_set_a_filter_selects(question: str, whole: bool) -> None:
    hits = ranked([(JAILBREAKBENCH, 1.0, 0.9), (PAST_TENSE, 0.3, 0.0), (SAM, 0.2, 0.0)])
    hits.filters_from_query, hits.total = True, 40  # e.g. kind: poster, which selects 40 papers
    assert shapes.filter_defines_set(question, hits) is whole
    assert shapes.members(hits, whole=shapes.filter_defines_set(question, hits)) == (
        [0, 1, 2] if whole else [0]
    )
    hits.filters_from_query = False  # a filter the user gave does not: the question's words decide
    assert not shapes.filter_defines_set(question, hits)


def test_every_poster_lists_the_filtered_set_with_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    papers = make_papers(30)
    hits = ranked([(p, 1.0 - i / 100, 0.1) for i, p in enumerate(papers)])
    hits.filters_from_query, hits.total, hits.filters = True, 40, Filters(kinds=["poster"])
    run(monkeypatch, hits, FakeModel(""), "x")
    final = pipeline.answer("List every poster at the workshop on sparse attacks", settings=_no_lead())
    assert final.kind == "list" and final.total == 40 and len(final.items) == shapes.LIST_CAP
    lines = final.text.splitlines()
    assert lines[0] == "40 papers match the filter (kind: poster)."
    assert lines[-1].startswith(f"… and {40 - shapes.LIST_CAP} more")


def test_a_long_sentence_is_clipped_on_its_list_line_and_kept_whole_as_evidence() -> None:
    glued = (
        "We derive precise high-dimensional training dynamics for deep and wide neural networks (DNNs).By "
        "assuming a Gaussian mixture model for the input features, an exact expression of the training error "
        "is derived as a function of the dimension, the sample size and the statistics of the features, "
        "the number of layers, as well as the nonlinear activation function in each layer of the network."
    )
    assert shapes.clip("A short sentence.") == "A short sentence."
    clipped = shapes.clip(glued)
    assert (
        clipped
        == "We derive precise high-dimensional training dynamics for deep and wide neural networks (DNNs). …"
    )
    no_breaks = " ".join(["word"] * 60)
    assert shapes.clip(no_breaks) == " ".join(["word"] * shapes.LINE_WORDS) + " …"
    paper = Paper(id="x", title="Dynamics", authors=["Ann Author"], year=2023, source="s.txt", abstract=glued)
    assert shapes.item_line(1, paper, glued).endswith("(DNNs). …")


def make_papers(n: int) -> list[Paper]:
    return [
        Paper(
            id=f"p{i:03d}",
            title=f"Paper number {i} on sparse attacks",
            authors=["Ann Author", "Bo Second", "Cy Third"],
            year=2000 + i % 20,
            source="s.txt",
            abstract=f"We study sparse attack number {i}. It works well.",
        )
        for i in range(n)
    ]


def test_a_huge_set_is_capped_with_a_count_of_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    papers = make_papers(40)
    hits = listing(papers[: shapes.LIST_CAP], total=40, filters=Filters(year_min=2000))
    run(monkeypatch, hits, FakeModel(""), "x")
    final = pipeline.answer("List all papers since 2000?", settings=_no_lead())
    assert len(final.items) == shapes.LIST_CAP and final.total == 40
    lines = final.text.splitlines()
    assert lines[0] == "40 papers match the filter (years: 2000–…)."
    assert lines[-1].startswith(f"… and {40 - shapes.LIST_CAP} more — narrow the filter")
    assert len(lines) == shapes.LIST_CAP + 2


def _no_lead() -> Settings:
    settings = Settings()
    settings.llm.list_lead = False
    return settings


def test_how_many_gets_the_count_and_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    hits = listing([PAST_TENSE, JAILBREAKBENCH, SAM], filters=Filters(authors=["Maksym Andriushchenko"]))
    run(monkeypatch, hits, FakeModel(""), "x")
    final = pipeline.answer("How many papers did Maksym Andriushchenko write?", settings=_no_lead())
    assert final.kind == "list" and final.total == 3
    assert final.text.splitlines()[0] == "3 papers match the filter (author: Maksym Andriushchenko)."
    assert len(final.items) == 3

    relevance_hits = ranked([(JAILBREAKBENCH, 1.0, 1.0), (PAST_TENSE, 0.9, 0.9), (SAM, 0.2, 0.1)])
    assert shapes.members(relevance_hits) == [0, 1]
    monkeypatch.setattr(pipeline, "_search", FakeSearch(relevance_hits))
    final = pipeline.answer("How many papers are about jailbreaking?", settings=_no_lead())
    assert final.text.splitlines()[0] == "2 retrieved papers address this question." and final.total == 2


def test_list_lines_never_quote_a_paper_that_carries_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    run(monkeypatch, listing([PLANTED, SAM]), FakeModel(""), "x")
    final = pipeline.answer("What did Mallory Planted publish in 2024?", settings=_no_lead())
    planted, clean = final.items
    assert planted.evidence == "" and planted.line == f"[1] {PLANTED.title} (Planted, 2024)"  # title only
    assert clean.evidence in split_sentences(SAM.abstract)


def test_no_quote_from_a_paper_that_carries_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    final = run(monkeypatch, ranked([(PLANTED, 1.0, 0.95)]), FakeModel(CANNOT_ANSWER), "Attention sinks?")[-1]
    assert isinstance(final, Answer) and final.abstained and not final.extractive and final.citations == []


def test_no_good_match_still_abstains_for_list_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    model = FakeModel("unused")
    items = run(
        monkeypatch,
        make_hits(PAPERS, good_match=False, top_relevance=0.003),  # below llm.confirm_floor
        model,
        "Which papers study protein folding?",
    )
    final = items[-1]
    assert isinstance(final, Answer) and final.abstained and final.text == CANNOT_ANSWER and model.calls == []


# ---- fact answers: extractive fallback ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply", [CANNOT_ANSWER, "The capital of Peru is Lima [1]."], ids=["declines", "unsupported"]
)
def test_extractive_fallback_quotes_the_top_abstract(monkeypatch: pytest.MonkeyPatch, reply: str) -> None:
    hits = ranked([(FROST, 1.0, 0.95), (SAM, 0.5, 0.3)])
    items = run(
        monkeypatch,
        hits,
        FakeModel(reply),
        "What is Frost Training and how does it improve policy optimization?",
    )
    final = items[-1]
    assert isinstance(final, Answer) and final.kind == "fact"
    assert final.extractive and not final.abstained
    assert [c.paper.id for c in final.citations] == [FROST.id]
    quote = re.search(r"“(.+)”", final.text)
    assert quote is not None
    # every quoted sentence is a sentence of the cited abstract, verbatim
    for sentence in split_sentences(quote.group(1)):
        assert sentence in split_sentences(FROST.abstract)
    assert final.text.startswith("Cross-Entropy Games and Frost Training") or "Renard et al." in final.text
    assert final.citations[0].evidence in split_sentences(FROST.abstract)


def test_no_quote_when_the_top_hit_is_not_clearly_relevant(monkeypatch: pytest.MonkeyPatch) -> None:
    hits = ranked([(FROST, 1.0, shapes.EXTRACT_MIN_RELEVANCE - 0.05)])
    final = run(monkeypatch, hits, FakeModel(CANNOT_ANSWER), "What is Frost Training?")[-1]
    assert (
        isinstance(final, Answer) and final.abstained and final.text == CANNOT_ANSWER and not final.extractive
    )


# ---- fact answers: named references and broken sentences --------------------------------------------------


def test_first_mention_of_each_cited_paper_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = (
        "An open-sourced benchmark offers a standardized evaluation framework for jailbreaks [1]. "
        "It includes a jailbreaking dataset comprising 100 behaviors [1]. SAM improves generalization [3]."
    )
    final = run(monkeypatch, make_hits(PAPERS), FakeModel(reply), "What is JailbreakBench?")[-1]
    assert isinstance(final, Answer)
    first, second, third = split_sentences(final.text)
    assert first.endswith("(JailbreakBench; Chao et al., 2024) [1].")
    assert second.endswith("behaviors [1].")  # named once only
    # the SAM sentence already names nothing of "Towards Understanding …": author + year added
    assert third == "SAM improves generalization (Andriushchenko and Flammarion, 2022) [2]."


def test_a_sentence_that_already_names_the_paper_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = "Andriushchenko and Flammarion show that SAM improves generalization [3]."
    final = run(monkeypatch, make_hits(PAPERS), FakeModel(reply), "How does SAM affect generalization?")[-1]
    assert isinstance(final, Answer)
    assert final.text == "Andriushchenko and Flammarion show that SAM improves generalization [1]."


def test_a_key_used_as_a_noun_becomes_the_papers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = "A standardized evaluation framework for jailbreak attacks was introduced in [1]."
    final = run(monkeypatch, make_hits(PAPERS), FakeModel(reply), "Which benchmark standardizes jailbreaks?")[
        -1
    ]
    assert isinstance(final, Answer)
    assert final.text == (
        "A standardized evaluation framework for jailbreak attacks was introduced in "
        "JailbreakBench (Chao et al., 2024) [1]."
    )
    assert not any(is_dangling(s) for s in split_sentences(final.text))


def test_a_re_pointed_noun_key_names_the_paper_it_now_points_to(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = "The study by [4] found that reformulating a harmful request in the past tense jailbreaks LLMs."
    final = run(monkeypatch, make_hits(PAPERS), FakeModel(reply), "How does past tense jailbreak LLMs?")[-1]
    assert isinstance(final, Answer)
    assert final.text.startswith("The study by Andriushchenko and Flammarion (2024) [1] found that")
    assert final.citations[0].paper.id == PAST_TENSE.id and final.citations[0].repaired


def test_a_sentence_whose_only_citation_is_removed_is_dropped_not_left_broken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reply = f"{JB_CLAIM} [1]. The neural tangent kernel was introduced in [9]."  # [9] was never shown
    final = run(monkeypatch, make_hits(PAPERS), FakeModel(reply), "What is JailbreakBench?")[-1]
    assert isinstance(final, Answer)
    assert "introduced in" not in final.text
    assert not any(is_dangling(s) for s in split_sentences(final.text))
    assert [c.paper.id for c in final.citations] == [JAILBREAKBENCH.id]


@pytest.mark.parametrize(
    ("sentence", "dangling"),
    [
        ("It was introduced in.", True),
        ("The study by found that SAM helps.", True),
        ("As shown in, SAM helps.", True),
        ("SAM improves generalization.", False),
        ("The method was introduced in 2018.", False),
        ("It was introduced in [1].", True),
    ],
)
def test_is_dangling(sentence: str, dangling: bool) -> None:
    assert is_dangling(sentence) is dangling


def test_check_citations_without_naming_keeps_the_old_text() -> None:
    checker = SupportChecker(PAPERS, encode=fake_encode)
    checked = check_citations(f"{JB_CLAIM} [1].", checker, keys={1: 0})
    assert checked.text == f"{JB_CLAIM} [1]."


def test_a_list_line_never_quotes_where_the_code_is() -> None:
    paper = SAM.model_copy(
        update={
            "abstract": SAM.abstract
            + " Code for understanding sharpness-aware minimization is available at https://github.com/x/sam."
        }
    )
    checker = SupportChecker([paper], encode=fake_encode)
    assert "github" in checker.units[0][-1]
    evidence = shapes.best_sentence(checker, 0, "understanding sharpness-aware minimization code")
    assert evidence in split_sentences(SAM.abstract)


def test_a_question_that_names_the_paper_gets_a_quote_despite_low_relevance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hits = ranked([(FROST, 1.0, 0.2)])
    final = run(monkeypatch, hits, FakeModel(CANNOT_ANSWER), "What is Frost Training?")[-1]
    assert isinstance(final, Answer) and final.abstained  # not named: the fixed phrase
    hits.named = True  # retrieve: a rare term of the top hit's title is in the question
    final = run(monkeypatch, hits, FakeModel(CANNOT_ANSWER), "What is Frost Training?")[-1]
    assert isinstance(final, Answer) and final.extractive and final.citations[0].paper.id == FROST.id


def test_names_of_a_paper_without_authors() -> None:
    from rag.naming import parenthetical, reference_name

    paper = Paper(id="t", title="TempSamp-R1: Effective Temporal Sampling", source="s.txt", year=2025)
    assert reference_name(paper) == "TempSamp-R1 (2025)"
    assert parenthetical(paper) == "(TempSamp-R1, 2025)"
    assert reference_name(paper.model_copy(update={"year": None})) == "TempSamp-R1"


def test_a_quote_never_is_the_code_link(monkeypatch: pytest.MonkeyPatch) -> None:
    paper = FROST.model_copy(
        update={"abstract": FROST.abstract + " Code for Frost Training: https://github.com/x/frost."}
    )
    final = run(monkeypatch, ranked([(paper, 1.0, 0.95)]), FakeModel(CANNOT_ANSWER), "Frost Training code?")[
        -1
    ]
    assert isinstance(final, Answer) and final.extractive and "github" not in final.text
