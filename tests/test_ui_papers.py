"""The Papers tab: rows, search and filters (pure functions), and in a real browser (headless Chromium via
Playwright, the app served in-process with the fixture library as its corpus): the table, the search box
and the abstract of a clicked row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_fakes import served_app

from rag.corpus import load_corpus
from ui.papers import abstract_markdown, paper_rows

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def library() -> list[Any]:
    return load_corpus(
        [FORMATS / n for n in ("library.bib", "library.ris", "pubmed.xml", "arxiv_query.atom")]
    )


def test_rows_follow_search_and_filters(library: list[Any]) -> None:
    rows, ids, count = paper_rows(library)
    assert len(rows) == len(ids) == len(library) and count == f"{len(library)} of {len(library)} papers"
    rows, ids, _ = paper_rows(library, "sharpness")
    assert {r[0] for r in rows} == {
        "A Modern Look at the Relationship between Sharpness and Generalization",
        "Sharpness-Aware Minimization Leads to Low-Rank Features",
    }
    rows, _, _ = paper_rows(library, "muller", year_min="2021", year_max=2021)  # accent-free search
    assert [r[0] for r in rows] == ["BERT & the Müller–Ng Effect on $\\ell_\\infty$ Robustness"]
    rows, _, count = paper_rows(library, author="Goodfellow", sources=["library.ris"])
    assert [r[0] for r in rows] == ["Deep Learning"] and count.startswith("1 of ")
    assert rows[0][1:] == ["Ian Goodfellow, Yoshua Bengio, Aaron Courville", 2016, "", "library.ris"]


def test_abstract_markdown_links_ids(library: list[Any]) -> None:
    blood = next(p for p in library if p.pmid == "31234567")
    text = abstract_markdown(blood)
    assert text.startswith("### Blood Pressure and Gradient Norms: A Cohort Study")
    assert "[10.1000/jim.2019.7](https://doi.org/10.1000/jim.2019.7)" in text
    assert "BACKGROUND: Gradient norms" in text and "library.ris, pubmed.xml" in text
    assert "Click a row" in abstract_markdown(None)


@pytest.fixture(scope="module")
def served(library: list[Any]) -> Iterator[str]:
    with served_app(library, "rag-ui-papers-test") as url:
        yield url


@pytest.mark.slow
@pytest.mark.browser
def test_papers_tab_in_a_browser(served: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is missing: run `make setup-test` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(served)
            page.get_by_role("tab", name="Papers").click()
            table = page.locator("#rag-papers-table")
            expect(table).to_contain_text("Deep Learning", timeout=30_000)
            page.locator("#rag-papers-search textarea, #rag-papers-search input").first.fill("cohort")
            expect(page.locator("#rag-papers-count")).to_have_text(
                re.compile(r"(^|\s)1 of \d+ papers"), timeout=60_000
            )
            expect(table).not_to_contain_text("Deep Learning")
            title = "Blood Pressure and Gradient Norms: A Cohort Study"
            table.get_by_role("gridcell", name=title).first.click(timeout=30_000)
            expect(page.locator("#rag-papers-abstract")).to_contain_text(
                "BACKGROUND: Gradient norms", timeout=30_000
            )
        finally:
            browser.close()
