"""HTML and Markdown for the chat UI: source cards, the applied filter, error and abstention notes.

Pure functions of rag's records (no Gradio import), so they are unit-tested fast. Every piece of paper
text (titles, authors, abstracts) comes from scraped pages and is untrusted: it is HTML-escaped here,
and nothing else in the UI inserts it into HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from rag.types import Answer, Citation, Filters, Hit, Paper

SNIPPET_CHARS = 280

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """First sentence(s) of `text`, cut at a word boundary near `limit` characters (plain text)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + " …"


def first_sentence(text: str) -> str:
    parts = _SENTENCE_END.split(re.sub(r"\s+", " ", text or "").strip(), maxsplit=1)
    return parts[0] if parts else ""


def describe_filters(filters: Filters | None) -> str:
    """One line naming the filter that was applied (plain text)."""
    if filters is None or filters.is_empty():
        return "none (whole corpus)"
    return filters.describe()


def _meta_line(paper: Paper) -> str:
    bits: list[str] = []
    authors = paper.author_line()
    if authors:
        bits.append(f'<span class="rag-authors">{escape(authors)}</span>')
    if paper.year is not None:
        bits.append(f'<span class="rag-year">{paper.year}</span>')
    pages = paper.sources or [paper.source]
    bits.append('<span class="rag-page">source: ' + escape(", ".join(pages)) + "</span>")
    return " · ".join(bits)


def _card(paper: Paper, quote: str, *, number: int | None = None, notes: Sequence[str] = ()) -> str:
    num = f'<span class="rag-num">[{number}]</span> ' if number is not None else ""
    anchor = f' id="rag-cite-{number}"' if number is not None else ""
    quote_html = f'<blockquote class="rag-evidence">{escape(snippet(quote))}</blockquote>' if quote else ""
    notes_html = "".join(f'<span class="rag-note">{escape(n)}</span>' for n in notes)
    return (
        f'<div class="rag-card"{anchor}>'
        f'<div class="rag-title">{num}{escape(paper.title)}</div>'
        f'<div class="rag-meta">{_meta_line(paper)}</div>'
        f"{quote_html}{notes_html}</div>"
    )


def citation_card(citation: Citation) -> str:
    """Card for one cited paper: its number as in the answer text, and the supporting abstract sentence."""
    quote = citation.evidence or first_sentence(citation.paper.abstract)
    notes: list[str] = []
    if citation.flagged:
        notes.append("weak support: no sentence of this abstract clearly backs the claim")
    if citation.repaired:
        notes.append("re-pointed: the model cited another paper for this claim")
    if getattr(citation, "added", False):
        notes.append("added: the model left the claim uncited; this abstract supports it")
    return _card(citation.paper, quote, number=citation.number, notes=notes)


def hit_card(hit: Hit, number: int | None = None) -> str:
    """Card for a retrieved paper: the best-matching passage, or the abstract's start."""
    text = hit.text or hit.paper.abstract
    if text.startswith(hit.paper.title):  # chunks carry the title as context
        text = text[len(hit.paper.title) :].lstrip(" .:\n")
    return _card(hit.paper, text, number=number)


def _header(text: str, cls: str = "rag-header") -> str:
    return f'<div class="{cls}">{escape(text)}</div>'


def _applied(filters: Filters | None, note: str | None = None, model: str | None = None) -> str:
    line = "Filter applied: " + describe_filters(filters)
    if model:
        line += f" · model: {model}"
    html = f'<div class="rag-applied">{escape(line)}</div>'
    if note:
        html += f'<div class="rag-applied rag-hint">{escape(note)}</div>'
    return html


def render_empty() -> str:
    return (
        '<div class="rag-sources">'
        + _header("Sources")
        + '<div class="rag-placeholder">Cited papers appear here, numbered as in the answer.</div></div>'
    )


def render_hits(hits: Sequence[Hit], filters: Filters | None, note: str | None = None) -> str:
    """Sources panel while the answer is being written: what retrieval found."""
    if not hits:
        body = '<div class="rag-placeholder">No paper matches this question and filter.</div>'
    else:
        # numbered by rank: the streamed text cites [n] = the n-th retrieved paper (renumbered at the end)
        body = "".join(hit_card(h, i) for i, h in enumerate(hits, 1))
    return (
        '<div class="rag-sources">'
        + _header(f"Retrieved {len(hits)} paper{'s' if len(hits) != 1 else ''} — writing the answer…")
        + _applied(filters, note)
        + body
        + "</div>"
    )


def render_answer(answer: Answer, note: str | None = None) -> str:
    """Sources panel for a finished answer: cited papers as numbered cards, or the nearest papers."""
    parts = ['<div class="rag-sources">']
    if answer.citations and not answer.abstained:
        n = len(answer.citations)
        parts.append(_header(f"Cited paper{'s' if n != 1 else ''} ({n})"))
        parts.append(_applied(answer.filters, note, answer.model))
        parts.extend(citation_card(c) for c in sorted(answer.citations, key=lambda c: c.number))
        cited = {c.paper.id for c in answer.citations}
        others = [h for h in answer.hits if h.paper.id not in cited]
        if others:
            items = "".join(f"<li>{escape(h.paper.title)}</li>" for h in others)
            parts.append(
                f'<details class="rag-others"><summary>Also retrieved, not cited ({len(others)})</summary>'
                f"<ul>{items}</ul></details>"
            )
    else:
        if answer.abstained:
            title = "The corpus does not answer this — nearest papers"
        elif answer.error:
            title = "No answer (model call failed) — retrieved papers"
        else:
            title = "No citations — retrieved papers"
        parts.append(_header(title, "rag-header rag-abstain" if answer.abstained else "rag-header"))
        parts.append(_applied(answer.filters, note, answer.model))
        if answer.hits:
            parts.extend(hit_card(h) for h in answer.hits)
        else:
            parts.append('<div class="rag-placeholder">No paper matches this question and filter.</div>')
    parts.append("</div>")
    return "".join(parts)


def render_error_panel(message: str) -> str:
    return (
        '<div class="rag-sources">'
        + _header("Sources")
        + f'<div class="rag-placeholder rag-error">{escape(message)}</div></div>'
    )


# --- Markdown shown in the chat -------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~])")


def md_escape(text: str) -> str:
    """Escape Markdown (and HTML angle brackets) in plain text shown inside a chat message."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def chat_footer(answer: Answer) -> str:
    """Small line under each answer in the chat: filter applied, model, number of sources."""
    bits = [f"filter: {describe_filters(answer.filters)}"]
    if answer.model:
        bits.append(f"model: {answer.model}")
    bits.append(f"{len(answer.citations)} cited / {len(answer.hits)} retrieved")
    return "\n\n<sub>" + md_escape(" · ".join(bits)) + "</sub>"


def chat_text(answer: Answer) -> str:
    """The assistant message for a finished answer (Markdown): text, error or abstention, and footer."""
    if answer.error:
        body = "⚠️ **The model call failed.** " + md_escape(answer.error)
        if answer.hits:
            body += "\n\nThe retrieved papers are listed under Sources."
        if answer.text.strip():
            body = answer.text.strip() + "\n\n" + body
    elif answer.abstained:
        said = answer.text.strip() or "The indexed abstracts do not answer this."
        body = "**No answer in the corpus.** " + said
        if answer.hits:
            body += "\n\nThe nearest papers are listed under Sources."
    elif not answer.text.strip():
        body = (
            "**No supported answer.** None of the model's sentences is backed by a retrieved abstract."
        )
        if answer.hits:
            body += "\n\nThe retrieved papers are listed under Sources."
    else:
        body = answer.text.strip()
    return body + chat_footer(answer)


def chat_error(message: str) -> str:
    """The assistant message when the request failed before an answer existed."""
    return "⚠️ **Could not answer.** " + md_escape(message)
