"""The Papers tab: the corpus as a table (title, authors, year, venue, source) with a search box and the
chat's filters, and the abstract of the row a user clicks.

`paper_rows` and `abstract_markdown` are pure (unit-tested); `build_papers_tab` lays the components out
inside the page's current ``gr.Tab``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from rag.types import Paper, fold
from ui.controls import build_filters

COLUMNS = ["Title", "Authors", "Year", "Venue", "Source"]
MAX_ROWS = 500


def _matches(
    p: Paper,
    words: list[str],
    year_min: int | None,
    year_max: int | None,
    authors: list[str],
    sources: list[str],
) -> bool:
    if year_min is not None and (p.year is None or p.year < year_min):
        return False
    if year_max is not None and (p.year is None or p.year > year_max):
        return False
    if authors and not any(fold(a) in fold("; ".join(p.authors)) for a in authors):
        return False
    if sources and not any(s in src for s in sources for src in (p.sources or [p.source])):
        return False
    text = fold(" ".join([p.title, *p.authors, p.venue or "", p.abstract, *p.keywords]))
    return all(w in text for w in words)


def paper_rows(
    papers: Sequence[Paper],
    query: str | None = "",
    year_min: str | float | None = None,
    year_max: str | float | None = None,
    author: str | None = None,
    sources: Sequence[str] | str | None = None,
) -> tuple[list[list[Any]], list[str], str]:
    """Table rows of the matching papers (at most `MAX_ROWS`), their ids, and a one-line count."""
    filters = build_filters(year_min, year_max, author, sources)
    words = fold(query or "").split()
    hits = [
        p
        for p in papers
        if _matches(p, words, filters.year_min, filters.year_max, filters.authors, filters.sources)
    ]
    shown = hits[:MAX_ROWS]
    rows = [
        [
            p.title,
            p.author_line(3),
            p.year if p.year is not None else "",
            p.venue or "",
            ", ".join(p.sources or [p.source]),
        ]
        for p in shown
    ]
    more = f" (first {MAX_ROWS} shown)" if len(hits) > MAX_ROWS else ""
    return rows, [p.id for p in shown], f"{len(hits)} of {len(papers)} papers{more}"


def abstract_markdown(paper: Paper | None) -> str:
    """The paper as Markdown: title, authors, year and venue, ids with links, abstract."""
    if paper is None:
        return "_Click a row to read its abstract._"
    meta = " · ".join(str(x) for x in (paper.year, paper.venue) if x)
    links = []
    if paper.doi:
        links.append(f"DOI [{paper.doi}](https://doi.org/{paper.doi})")
    if paper.arxiv_id:
        links.append(f"arXiv [{paper.arxiv_id}](https://arxiv.org/abs/{paper.arxiv_id})")
    if paper.pmid:
        links.append(f"PMID [{paper.pmid}](https://pubmed.ncbi.nlm.nih.gov/{paper.pmid}/)")
    lines = [f"### {paper.title}", ", ".join(paper.authors) or "_no authors listed_"]
    if meta:
        lines.append(meta)
    if links:
        lines.append(" · ".join(links))
    lines.append(paper.abstract or "_No abstract in the source._")
    lines.append(f"_Source: {', '.join(paper.sources or [paper.source])}_")
    return "\n\n".join(lines)


def build_papers_tab(papers: Sequence[Paper], filter_inputs: Sequence[Any]) -> None:
    """The tab's components and events. ``filter_inputs`` are the sidebar's year-from, year-to, author
    and source controls: the table follows them as the chat does."""
    by_id = {p.id: p for p in papers}
    rows, ids, count = paper_rows(papers)
    search = gr.Textbox(label="Search titles, authors, venues, abstracts", elem_id="rag-papers-search")
    summary = gr.Markdown(count, elem_id="rag-papers-count")
    table = gr.Dataframe(
        value=rows, headers=COLUMNS, interactive=False, wrap=True, elem_id="rag-papers-table", max_height=520
    )
    shown = gr.State(ids)
    detail = gr.Markdown(abstract_markdown(None), elem_id="rag-papers-abstract")

    def refresh(query: str, *filters: Any) -> tuple[list[list[Any]], list[str], str]:
        try:
            return paper_rows(papers, query, *filters)
        except Exception as exc:  # a bad year in the sidebar: say so, keep the table
            return gr.skip(), gr.skip(), f"⚠ {exc}"

    def pick(ids_shown: list[str], evt: gr.SelectData) -> str:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        pid = ids_shown[row] if isinstance(row, int) and 0 <= row < len(ids_shown) else None
        return abstract_markdown(by_id.get(pid) if pid else None)

    inputs = [search, *filter_inputs]
    for trigger in (search.change, *(c.change for c in filter_inputs)):
        trigger(refresh, inputs, [table, shown, summary], api_visibility="private", queue=False)
    table.select(pick, [shown], [detail], api_visibility="private", queue=False)
