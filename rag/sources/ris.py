"""RIS (``.ris``, from Zotero, Mendeley, EndNote, publishers' "export citation"), read with rispy.

Records are cut at ``TY  -`` / ``ER  -`` here (streamed line by line, so each record keeps its line and
a record without ``TY`` or ``ER`` is reported rather than silently dropped, which rispy alone would do);
rispy parses each record. Fields: TI/T1 title, AU/A1 authors ("Last, First" → "First Last"), PY/Y1/DA
year and date, AB/N2 abstract, DO DOI, JO/JF/T2 venue, KW keywords, UR URL (an arXiv or PubMed URL also
gives that id), TY the kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import EntryParseError
from rag.sources.base import ParseResult
from rag.sources.records import (
    Record,
    collect,
    iso_date,
    norm_arxiv,
    norm_doi,
    paper,
    person,
    text_lines,
    year_of,
)

NAME = "ris"
_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
_PUBMED_URL = re.compile(r"pubmed\.ncbi\.nlm\.nih\.gov/(\d+)|ncbi\.nlm\.nih\.gov/pubmed/(\d+)")


def sniff(head: str) -> bool:
    return any(line.startswith("TY  -") for line in head.split("\n")[:50])


def _first(rec: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = rec.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _date(raw: str) -> str | None:
    """RIS dates: ``2021/03/05/``, ``2021/03//``, ``2021-03-05``, ``2021``."""
    parts = [p for p in re.split(r"[/\-]", raw.strip())]
    return iso_date(parts[0] if parts else None, *(parts[1:3] + [None, None])[:2])


def _paper(path: Path, line: int, rec: dict[str, Any]) -> Record:
    title = _first(rec, "title", "primary_title", "translated_title")
    if not title:
        return EntryParseError(path, "RIS record has no title; expected a TI or T1 line.", line)
    authors = [person(a) for key in ("authors", "first_authors") for a in rec.get(key) or []]
    urls = [u for u in rec.get("urls") or [] if isinstance(u, str)]
    pmid = next((m.group(1) or m.group(2) for u in urls if (m := _PUBMED_URL.search(u))), None)
    raw_date = _first(rec, "date", "year", "publication_year")
    date = _date(raw_date) if raw_date else None
    return paper(
        path,
        line,
        title=title,
        authors=list(dict.fromkeys(authors)),
        abstract=_first(rec, "abstract", "notes_abstract"),
        year=year_of(_first(rec, "year", "publication_year")) or year_of(raw_date),
        date=date,
        venue=_first(rec, "journal_name", "alternate_title3", "secondary_title", "alternate_title1") or None,
        kind=_first(rec, "type_of_reference").lower() or None,
        doi=norm_doi(_first(rec, "doi")),
        arxiv_id=next((a for u in urls if (a := norm_arxiv(u))), None),
        pmid=pmid,
        keywords=[k for k in rec.get("keywords") or [] if isinstance(k, str) and k.strip()],
        url=urls[0] if urls else None,
    )


def _parse_record(path: Path, line: int, lines: list[str]) -> Record:
    import rispy

    recs = rispy.loads("\n".join(lines) + "\n")
    if not recs:
        return EntryParseError(path, "RIS record cannot be read; expected TY  - … ER  - lines.", line)
    return _paper(path, line, recs[0])


def records(path: Path) -> Iterator[Record]:
    current: list[str] = []
    start = 0
    stray = 0
    for lineno, raw in enumerate(text_lines(path), start=1):
        line = raw.rstrip("\r\n")
        m = _TAG.match(line)
        tag = m.group(1) if m else None
        if tag == "TY":
            if current:
                yield EntryParseError(
                    path, "RIS record is not closed: expected an 'ER  -' line before the next 'TY  -'.", start
                )
            current, start = [line], lineno
        elif not current:
            if tag and not stray:
                stray = lineno
                yield EntryParseError(
                    path, f"'{tag}  -' outside a record: expected 'TY  -' to start each record.", lineno
                )
        elif tag == "ER":
            yield _parse_record(path, start, [*current, line])
            current, stray = [], 0
        else:
            current.append(line)
    if current:
        yield EntryParseError(path, "RIS record is not closed: expected an 'ER  -' line at its end.", start)


def parse(path: Path) -> ParseResult:
    return collect(path, NAME, records(path))
