"""Fast tests of two widgets of the Sources panel: the verdict badge on the cards of a claim answer, and
'Copy BibTeX' for the cited papers. Driven by the scripted answer stream (tests/ui_fakes.py), no models."""

from __future__ import annotations

import html
import re

import pytest
from ui_fakes import PAPERS, FakeStream

from rag.settings import Settings
from rag.types import Answer, Citation, Hit, Verdict
from ui import render
from ui.app import RagUI
from ui.bibtex import bibtex_block, bibtex_text
from ui.verdicts import verdict_badge


def final(model: str, question: str = "Does JailbreakBench provide an open benchmark?") -> tuple[Answer, str]:
    """The fake's final Answer for ``model`` and the Sources panel the chat handler shows for it."""
    *_, answer = FakeStream()(question, model=model)
    assert isinstance(answer, Answer)
    steps = list(RagUI(Settings(), FakeStream()).respond(question, [], [], None, None, "", [], model, 5))
    return answer, steps[-1][2]


def cards(panel: str) -> list[str]:
    """The HTML of each card (each up to the next one)."""
    return ['<div class="rag-card"' + part for part in panel.split('<div class="rag-card"')[1:]]


# --- verdict badges -------------------------------------------------------------------------------------

def test_each_card_of_a_claim_answer_shows_its_papers_verdict() -> None:
    answer, panel = final("fake/claim")
    assert answer.kind == "claim" and [v.label for v in answer.verdicts] == [
        "SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"
    ]
    shown = cards(panel)
    assert len(shown) == 3 and "Verdict per paper (3)" in panel
    by_number = {c.number: c.paper for c in answer.citations}
    expected = {"SUPPORT": ("support", "Supports"), "CONTRADICT": ("contradict", "Contradicts"),
                "NOT_ENOUGH_INFO": ("nei", "Not enough info")}
    for card in shown:
        number = int(re.search(r'id="rag-cite-(\d+)"', card).group(1))  # type: ignore[union-attr]
        verdict = next(v for v in answer.verdicts if v.paper.id == by_number[number].id)
        css, text = expected[verdict.label]
        assert f'class="rag-verdict rag-verdict-{css}"' in card and f"</span>{text}</span>" in card
        assert card.count('class="rag-verdict ') == 1
        for sentence in verdict.rationale:  # the deciding sentences, quoted on the card
            assert f'<blockquote class="rag-evidence">{html.escape(sentence)}</blockquote>' in card
        if not verdict.rationale:  # no verdict: no sentence presented as evidence
            assert "rag-evidence" not in card
    assert "<img" not in panel and "<script" not in panel  # the untrusted paper stays escaped


def test_badge_says_it_in_words_for_screen_readers_and_not_by_colour_alone() -> None:
    verdict = Verdict(paper=PAPERS[0], label="CONTRADICT", confidence=0.734, rationale=["No."])
    badge = verdict_badge(verdict)
    assert badge.startswith('<span class="rag-verdict rag-verdict-contradict" title="')
    assert 'title="This abstract contradicts the claim (confidence 0.73)"' in badge
    assert '<span aria-hidden="true">✗</span>' in badge  # the symbol is decoration
    assert re.sub(r"<[^>]+>", "", badge) == "✗ Verdict: Contradicts"
    nei = verdict_badge(Verdict(paper=PAPERS[0], label="NOT_ENOUGH_INFO", confidence=0.2))
    assert "confidence" not in nei and "Not enough info" in nei


@pytest.mark.parametrize("model", ["fake/x", "fake/list", "fake/extractive", "fake/abstain"])
def test_other_answer_kinds_keep_their_cards(model: str) -> None:
    answer, panel = final(model)
    assert answer.kind != "claim"
    assert "rag-verdict" not in panel
    # the cards are exactly as before this feature: what the card renderer gives without a verdict
    for c in answer.citations:
        assert render.citation_card(c) in panel


def test_verdicts_show_only_on_claim_answers() -> None:
    """A verdict list on an answer of another kind (not something the pipeline makes) draws no badge."""
    answer, _ = final("fake/claim")
    as_fact = answer.model_copy(update={"kind": "fact"})
    assert "rag-verdict" not in render.render_answer(as_fact)
    # an abstaining claim answer shows its nearest papers; a paper with a verdict still gets its badge
    abstained = answer.model_copy(update={"abstained": True, "citations": []})
    panel = render.render_answer(abstained)
    assert "nearest papers" in panel and panel.count('class="rag-verdict ') == len(answer.verdicts)


# --- Copy BibTeX ----------------------------------------------------------------------------------------

def textarea(panel: str) -> str:
    found = re.findall(r'<textarea class="rag-bibtex-text"[^>]*>(.*?)</textarea>', panel, flags=re.S)
    assert len(found) == 1, panel
    return html.unescape(found[0])


def test_copy_bibtex_holds_the_cited_papers_entries_as_text() -> None:
    answer, panel = final("fake/x")
    assert answer.citations
    assert 'class="rag-copy-bibtex">Copy BibTeX (1 entry)</button>' in panel
    text = textarea(panel)
    assert text == answer.bibtex() and text.startswith("@misc{chao2024jailbreakbench,")
    assert panel.index("rag-copy-bibtex") < panel.index('class="rag-card"')  # above the cards


def test_copy_bibtex_of_a_list_has_one_entry_per_member_and_escapes_untrusted_text() -> None:
    answer, panel = final("fake/list")
    n = len(answer.items)
    assert n == 3 and f"Copy BibTeX ({n} entries)" in panel
    text = textarea(panel)
    assert text == answer.bibtex() and text.count("\n@") + 1 == n
    assert "<img" not in panel.split("rag-bibtex-text")[1].split("</textarea>")[0]  # escaped in the HTML
    assert "<img src=x" in text  # and the text is the paper's own (HTML-unescaped by the browser)


def test_no_copy_bibtex_when_nothing_is_cited() -> None:
    abstained, panel = final("fake/abstain")
    assert bibtex_text(abstained) == "" and bibtex_block(abstained) == "" and "rag-bibtex" not in panel
    _, error_panel = final("fake/model-error")
    assert "rag-bibtex" not in error_panel
    # an abstention keeps no citations' BibTeX even if it carried some
    cited = Answer(question="q", abstained=True, citations=[Citation(number=1, paper=PAPERS[0])],
                   hits=[Hit(paper=PAPERS[0], score=1.0)])
    assert bibtex_block(cited) == ""

