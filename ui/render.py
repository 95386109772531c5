"""HTML and Markdown for the chat UI: source cards, the applied filter, error and abstention notes, and
the answer's shape in the chat (prose, a list of papers, or quotations), its [n] linked to the cards.

Pure functions of rag's records (no Gradio import), so they are unit-tested fast. Every piece of paper
text (titles, authors, abstracts) comes from scraped pages and is untrusted: it is HTML-escaped here,
and nothing else in the UI inserts it into HTML.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from html import escape

from rag.types import Answer, Citation, Filters, Hit, ListItem, Paper, Verdict
from ui.bibtex import bibtex_block
from ui.verdicts import verdict_badge, verdict_quote, verdicts_by_paper

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


def _card(
    paper: Paper, quote: str, *, number: int | None = None, notes: Sequence[str] = (), badge: str = ""
) -> str:
    num = f'<span class="rag-num">[{number}]</span> ' if number is not None else ""
    anchor = f' id="rag-cite-{number}"' if number is not None else ""
    quote_html = f'<blockquote class="rag-evidence">{escape(snippet(quote))}</blockquote>' if quote else ""
    notes_html = "".join(f'<span class="rag-note">{escape(n)}</span>' for n in notes)
    badge_html = f'<div class="rag-verdict-row">{badge}</div>' if badge else ""
    return (
        f'<div class="rag-card"{anchor}>'
        f'<div class="rag-title">{num}{escape(paper.title)}</div>'
        f'<div class="rag-meta">{_meta_line(paper)}</div>'
        f"{badge_html}{quote_html}{notes_html}</div>"
    )


def citation_card(citation: Citation, verdict: Verdict | None = None) -> str:
    """Card for one cited paper: its number as in the answer text, and the supporting abstract sentence;
    for a claim answer, the paper's ``verdict`` as a badge above the sentences that decide it."""
    if verdict is not None:
        return _card(
            citation.paper, verdict_quote(verdict), number=citation.number, badge=verdict_badge(verdict)
        )
    quote = citation.evidence or first_sentence(citation.paper.abstract)
    notes: list[str] = []
    if citation.flagged:
        notes.append("weak support: no sentence of this abstract clearly backs the claim")
    if citation.repaired:
        notes.append("re-pointed: the model cited another paper for this claim")
    if getattr(citation, "added", False):
        notes.append("added: the model left the claim uncited; this abstract supports it")
    return _card(citation.paper, quote, number=citation.number, notes=notes)


def hit_card(hit: Hit, number: int | None = None, verdict: Verdict | None = None) -> str:
    """Card for a retrieved paper: the best-matching passage, or the abstract's start (and its verdict)."""
    text = hit.text or hit.paper.abstract
    if text.startswith(hit.paper.title):  # chunks carry the title as context
        text = text[len(hit.paper.title) :].lstrip(" .:\n")
    return _card(hit.paper, text, number=number, badge=verdict_badge(verdict) if verdict else "")


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


def _count(hits: Sequence[Hit]) -> str:
    total = getattr(hits, "total", None)  # Hits of a filter listing: how many papers the filter selects
    n = len(hits)
    if isinstance(total, int) and total > n:
        return f"{n} of {total} papers"
    return f"{n} paper{'s' if n != 1 else ''}"


def render_hits(hits: Sequence[Hit], filters: Filters | None, note: str | None = None) -> str:
    """Sources panel while the answer is being written: what retrieval found."""
    if not hits:
        body = '<div class="rag-placeholder">No paper matches this question and filter.</div>'
    else:
        # numbered by rank: the streamed text cites [n] = the n-th retrieved paper (renumbered at the end)
        body = "".join(hit_card(h, i) for i, h in enumerate(hits, 1))
    return (
        '<div class="rag-sources">'
        + _header(f"Retrieved {_count(hits)} — writing the answer…")
        + _applied(filters, note)
        + body
        + "</div>"
    )


def _cited_header(answer: Answer) -> str:
    n = len(answer.citations)
    if answer.kind == "list" and answer.items:
        shown = len(answer.items)
        total = answer.total if answer.total is not None and answer.total > shown else None
        return f"Papers in the list ({shown} of {total})" if total else f"Papers in the list ({shown})"
    if answer.kind == "claim":
        return f"Verdict per paper ({n})"
    if answer.extractive:
        return f"Quoted paper{'s' if n != 1 else ''} ({n})"
    return f"Cited paper{'s' if n != 1 else ''} ({n})"


def render_answer(answer: Answer, note: str | None = None) -> str:
    """Sources panel for a finished answer: cited papers as numbered cards (a claim answer's with their
    verdicts) under the 'Copy BibTeX' control, or the nearest papers."""
    parts = ['<div class="rag-sources">']
    verdicts = verdicts_by_paper(answer)  # claim answers: each card shows its paper's verdict
    if answer.citations and not answer.abstained:
        parts.append(_header(_cited_header(answer)))
        parts.append(_applied(answer.filters, note, answer.model))
        parts.append(bibtex_block(answer))
        for c in sorted(answer.citations, key=lambda c: c.number):
            parts.append(citation_card(c, verdicts.get(c.paper.id)))
        cited = {c.paper.id for c in answer.citations}
        others = [h for h in answer.hits if h.paper.id not in cited]
        if others:
            items = "".join(f"<li>{escape(h.paper.title)}</li>" for h in others)
            not_cited = "not in the list" if answer.kind == "list" and answer.items else "not cited"
            parts.append(
                f'<details class="rag-others"><summary>Also retrieved, {not_cited} ({len(others)})</summary>'
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
            parts.extend(hit_card(h, verdict=verdicts.get(h.paper.id)) for h in answer.hits)
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


_URL = re.compile(r"(?:https?://|www\.)[^\s<>`\"'“”]+")


def md_escape(text: str) -> str:
    """Escape Markdown (and HTML angle brackets) in plain text shown inside a chat message.

    URLs (abstracts cite their code) become code spans, verbatim: the chat would otherwise turn them into
    links whose text shows the escapes, and an abstract's URL is text to read here, not a link to follow.
    """
    parts: list[str] = []
    at = 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?)]}")
        parts.append(_MD_SPECIAL.sub(r"\\\1", text[at : m.start()]))
        parts.append(f"`{url}`")
        at = m.start() + len(url)
    parts.append(_MD_SPECIAL.sub(r"\\\1", text[at:]))
    return "".join(parts)


_CITE = re.compile(r"\\?\[(\d+)\\?\]")
r"""A citation key [n] in answer text, also in its Markdown-escaped form \[n\]."""

_LIST_LINE = re.compile(r"\[(\d+)\]\s")
"""A list answer's item line starts with its citation key: ``[n] Title (First author et al., year) — …``."""

_HOW_MANY = re.compile(r"^\W*how\s+many\b", re.IGNORECASE)

QUOTED_NOTE = (
    "Quoted from the abstracts: the model's own answer could not be verified, so these are the papers' own "
    "words."
)


def cite_link(number: int) -> str:
    """Markdown for a citation key that links to the source card with the same number."""
    return f"[\\[{number}\\]](#rag-cite-{number})"


def link_citations(text: str, numbers: Collection[int]) -> str:
    """``text`` with each [n] whose card exists (n in ``numbers``) turned into a link to that card."""

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return cite_link(n) if n in numbers else m.group(0)

    return _CITE.sub(link, text)


def _card_numbers(answer: Answer) -> set[int]:
    return {c.number for c in answer.citations}


def _item_markdown(item: ListItem, line: str) -> str:
    """One list line as a Markdown list item: [n] linked to its card, the title bold, the evidence italic."""
    rest = _LIST_LINE.sub("", line.strip(), count=1)
    head, evidence, tail = rest, "", ""
    quote = item.evidence.strip()
    at = rest.rfind(quote) if quote else -1
    if at > 0:
        head, evidence, tail = rest[:at], quote, rest[at + len(quote) :]
    title = item.paper.title
    if head.startswith(title):
        head_md = f"**{md_escape(title)}**{md_escape(head[len(title) :])}"
    else:
        head_md = md_escape(head)
    evidence_md = f"*{md_escape(evidence)}*" if evidence else ""
    return f"- {cite_link(item.number)} {head_md}{evidence_md}{md_escape(tail)}"


def _is_cap_line(line: str) -> bool:
    return line.startswith("…") or "narrow the filter" in line


def list_markdown(answer: Answer) -> str:
    """A list answer as Markdown: the lead sentence, then the items as a list linked to their cards, then
    the line that says how many more papers the filter selects (when the list is capped).

    Follows ``answer.text`` line by line (it is authoritative); lines that are neither items nor the cap
    line (the lead, a count) are shown as paragraphs with their citations linked. A "how many" question
    gets a count line first unless the text already gives the number.
    """
    numbers = _card_numbers(answer) | {i.number for i in answer.items}
    by_number = {i.number: i for i in answer.items}
    paragraphs: list[str] = []
    items: list[str] = []
    tail: list[str] = []
    for raw in answer.text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _LIST_LINE.match(line)
        item = by_number.get(int(m.group(1))) if m else None
        if item is not None:
            items.append(_item_markdown(item, line))
        elif _is_cap_line(line):
            tail.append(f"*{md_escape(line)}*")
        elif items:
            tail.append(link_citations(line, numbers))
        else:
            paragraphs.append(link_citations(line, numbers))
    if not items:  # the text does not carry the item lines: show the items themselves
        items = [_item_markdown(i, i.line) for i in answer.items]
    count = answer.total if answer.total is not None else len(answer.items)
    if _HOW_MANY.search(answer.question) and not any(
        re.search(rf"\b{count}\b", p) for p in paragraphs + tail
    ):
        paragraphs.insert(0, f"**{count} paper{'s' if count != 1 else ''}.**")
    blocks = [*paragraphs, "\n".join(items), *tail]
    return "\n\n".join(b for b in blocks if b)


def quote_markdown(answer: Answer) -> str:
    """An extractive answer: a note that says so, then the abstracts' sentences as a block quotation."""
    numbers = _card_numbers(answer)
    lines = [link_citations(md_escape(line.strip()), numbers) for line in answer.text.splitlines()]
    quoted = "\n>\n".join(f"> {line}" for line in lines if line)
    return f"<sub>{md_escape(QUOTED_NOTE)}</sub>\n\n{quoted}"


def answer_markdown(answer: Answer) -> str:
    """The body of a finished answer with text: a list, a quotation, or prose with linked citations."""
    if answer.kind == "list" and answer.items:
        return list_markdown(answer)
    if answer.extractive:
        return quote_markdown(answer)
    return link_citations(answer.text.strip(), _card_numbers(answer))


def chat_partial(streamed: str) -> str:
    """The assistant message while the answer streams: list lines as list items (not yet linked: the
    cards still show the retrieved papers), the model's text as it comes."""
    out: list[str] = []
    in_list = False
    for line in streamed.split("\n"):
        if _LIST_LINE.match(line.strip()):
            out.append("- " + md_escape(line.strip()))
            in_list = True
            continue
        if in_list and line.strip():
            out.append("")  # a paragraph after the list, not part of its last item
        in_list = False
        out.append(line)
    return "\n".join(out)


def chat_footer(answer: Answer) -> str:
    """Small line under each answer in the chat: filter applied, model, number of sources."""
    bits = [f"filter: {describe_filters(answer.filters)}"]
    if answer.model:
        bits.append(f"model: {answer.model}")
    if answer.kind == "list" and answer.items:
        listed = f"{len(answer.items)} listed"
        if answer.total is not None and answer.total > len(answer.items):
            listed += f" of {answer.total}"
        bits.append(f"{listed} / {len(answer.hits)} retrieved")
    else:
        bits.append(f"{len(answer.citations)} cited / {len(answer.hits)} retrieved")
    if answer.extractive:
        bits.append("quoted")
    return "\n\n<sub>" + md_escape(" · ".join(bits)) + "</sub>"


def chat_text(answer: Answer) -> str:
    """The assistant message for a finished answer (Markdown): text, error or abstention, and footer."""
    if answer.error:
        body = "⚠️ **The model call failed.** " + md_escape(answer.error)
        if answer.hits:
            body += "\n\nThe retrieved papers are listed under Sources."
        if answer.text.strip():
            body = answer_markdown(answer) + "\n\n" + body
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
        body = answer_markdown(answer)
    return body + chat_footer(answer)


def chat_error(message: str) -> str:
    """The assistant message when the request failed before an answer existed."""
    return "⚠️ **Could not answer.** " + md_escape(message)
