"""BibTeX (``.bib``) from JabRef, Zotero, Mendeley or by hand, read with bibtexparser v2.

Any entry type becomes a paper. ``@string`` macros are resolved and ``crossref`` fills the fields an
entry lacks from the entry it names (the proceedings' ``booktitle``, ``year``, …). LaTeX in titles,
names, venues and abstracts is decoded with pylatexenc ({\\"u} → ü, \\& → &, --- → —, braces dropped),
math (``$\\ell_\\infty$``) is kept as written; ``doi``, ``url`` and ``eprint`` are taken verbatim. Names
are split by bibtexparser ("van der Berg, Anna" → "Anna van der Berg"; ``{The Consortium}`` stays one
name). A file that is not UTF-8 is read as Latin-1 (older tools write that) with a warning. An entry
bibtexparser cannot parse (an unclosed brace) or without a title is reported with its line and key;
every other entry loads. BibTeX has no streaming parser: the file is read whole (reference-manager
exports are megabytes at most).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import EmptySourceError, EntryParseError
from rag.sources.base import MONTHS, ParseResult
from rag.sources.records import Record, collect, iso_date, norm_arxiv, norm_doi, paper, year_of

NAME = "bibtex"
log = logging.getLogger("rag.corpus")
_ENTRY = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_VENUE_KEYS = ("journal", "booktitle", "school", "institution", "publisher")
_MONTH_NAMES = {m.lower(): i for m, i in MONTHS.items()}


def sniff(head: str) -> bool:
    return bool(_ENTRY.search(head)) and not head.lstrip().startswith(("{", "[", "<"))


def _read(path: Path) -> tuple[str, str | None]:
    data = path.read_bytes()
    if not data.strip():
        raise EmptySourceError(path, "the file is empty; expected BibTeX entries (@article{key, …}).")
    try:
        return data.decode("utf-8").lstrip("\ufeff"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return data.decode("latin-1"), (
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); read as Latin-1 — "
            "check accented names, or re-export the file as UTF-8."
        )


def _decoder() -> Any:
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    db = get_default_latex_context_db()  # \textasciicircum is a plain caret in titles (rag.export writes it)
    db.add_context_category("rag", prepend=True, macros=[MacroTextSpec("textasciicircum", simplify_repl="^")])
    return LatexNodes2Text(latex_context=db, math_mode="verbatim", strict_latex_spaces=True)


def _month(raw: str) -> int | None:
    raw = raw.strip().lower()[:3]
    if raw.isdigit():
        return int(raw)
    return _MONTH_NAMES.get(raw)


def _names(value: Any, decode: Any) -> tuple[list[str], bool]:
    """Full names in order from an ``author`` field, and whether it ended in "and others"."""
    from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names

    out, truncated = [], False
    for raw in split_multiple_persons_names(value) if isinstance(value, str) else []:
        if raw.strip().lower() == "others":
            truncated = True
            continue
        try:
            part = parse_single_name_into_parts(raw, strict=False)
            words = [*part.first, *part.von, *part.last, *part.jr]
        except ValueError:
            words = [raw]
        name = " ".join(" ".join(decode(w) for w in words if w).split())
        if name:
            out.append(name)
    return out, truncated


def _fields(entry: Any, entries: dict[str, Any]) -> dict[str, Any]:
    fields = {f.key.lower(): f.value for f in entry.fields}
    parent = entries.get(str(fields.get("crossref", "")).strip())
    if parent is not None:
        for f in parent.fields:
            fields.setdefault(f.key.lower(), f.value)
    return fields


def _entry_paper(path: Path, entry: Any, fields: dict[str, Any], decode: Any) -> Record:
    line = (entry.start_line or 0) + 1

    def text(key: str) -> str:
        value = fields.get(key)
        return decode(value) if isinstance(value, str) else ""

    title = " ".join(text("title").split())
    if not title:
        return EntryParseError(path, f"entry {entry.key!r} has no title; expected title = {{…}}.", line)
    year = year_of(fields.get("year")) or year_of(fields.get("date"))
    date = fields.get("date") if isinstance(fields.get("date"), str) else None
    if not date:
        date = iso_date(year, _month(str(fields.get("month", ""))), fields.get("day"))
    authors, truncated = _names(fields.get("author") or fields.get("editor"), decode)
    eprint = fields.get("eprint") if str(fields.get("archiveprefix", "arxiv")).lower() == "arxiv" else None
    keywords = [k.strip() for k in re.split(r"[;,]", text("keywords")) if k.strip()]
    return paper(
        path,
        line,
        title=title,
        authors=authors,
        authors_truncated=truncated,
        abstract=" ".join(text("abstract").split()),
        year=year,
        date=date,
        venue=next((text(k) for k in _VENUE_KEYS if text(k)), None),
        kind=entry.entry_type.lower(),
        doi=norm_doi(fields.get("doi")),
        arxiv_id=norm_arxiv(eprint) or norm_arxiv(fields.get("url")),
        pmid=str(fields["pmid"]).strip() if fields.get("pmid") else None,
        keywords=keywords,
        url=str(fields.get("url") or "").strip() or None,
        extra={"bibtex_key": entry.key},
    )


def _failed(path: Path, block: Any) -> EntryParseError:
    line = (block.start_line or 0) + 1
    raw = (block.raw or "").lstrip()
    m = re.match(r"@\s*\w+\s*[{(]\s*([^,\s]*)", raw)
    key = f" {m.group(1)!r}" if m and m.group(1) else ""
    reason = str(block.error).strip()
    if "Duplicate" in type(block).__name__:
        reason = "a second entry with this key; give every entry its own key"
    elif not reason:
        reason = "the entry is not closed: expected a matching '}' (or ')') before the next '@'"
    return EntryParseError(path, f"BibTeX entry{key} cannot be parsed ({reason}).", line)


def records(path: Path) -> Iterator[Record]:
    import bibtexparser

    text, warning = _read(path)
    if warning:
        log.warning("%s", warning)
    bib_log = logging.getLogger("bibtexparser")
    level = bib_log.level
    bib_log.setLevel(logging.CRITICAL)  # its own messages repeat what _failed reports
    try:
        library = bibtexparser.parse_string(text)
    finally:
        bib_log.setLevel(level)
    latex = _decoder()

    def decode(value: str) -> str:
        if "\\" not in value and "{" not in value and "~" not in value and "-" not in value:
            return value
        return str(latex.latex_to_text(value))

    entries = library.entries_dict
    parents = {str(f.value).strip() for e in library.entries for f in e.fields if f.key.lower() == "crossref"}
    for block in sorted([*library.entries, *library.failed_blocks], key=lambda b: b.start_line or 0):
        if hasattr(block, "error"):
            yield _failed(path, block)
        elif (
            getattr(block, "key", None) not in parents
        ):  # a crossref target (the proceedings) is not a paper itself
            yield _entry_paper(path, block, _fields(block, entries), decode)


def parse(path: Path) -> ParseResult:
    return collect(path, NAME, records(path))
