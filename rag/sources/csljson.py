"""CSL-JSON (Zotero's "CSL JSON" export, citeproc's input): a JSON array of items.

Fields: ``title``, ``author`` (``{family, given}``, or ``{literal}`` for an organisation), ``issued``
(``date-parts`` [[2021, 3, 5]], or a ``raw``/``literal`` date), ``abstract``, ``DOI``,
``container-title``, ``URL``, ``keyword`` (comma-separated), ``PMID``, ``type``. An item that is not an
object or has no title is reported with its 1-based index in the array; the other items load.
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
    json_papers,
    norm_arxiv,
    norm_doi,
    paper,
    year_of,
)

NAME = "csljson"
_KEYS = re.compile(r'"(?:issued|container-title|citation-key|date-parts|family)"\s*:')


def sniff(head: str) -> bool:
    return head.lstrip().startswith("[") and bool(_KEYS.search(head)) and '"paperId"' not in head


def _name(person: Any) -> str:
    if not isinstance(person, dict):
        return ""
    if person.get("literal"):
        return " ".join(str(person["literal"]).split())
    words = [person.get(k) for k in ("given", "non-dropping-particle", "family", "suffix")]
    return " ".join(" ".join(str(w) for w in words if w).split())


def _issued(item: dict[str, Any]) -> str | None:
    issued = item.get("issued")
    if not isinstance(issued, dict):
        return None
    parts = issued.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        return iso_date(*(list(parts[0]) + [None, None])[:3])
    raw = issued.get("raw") or issued.get("literal")
    return iso_date(raw) if raw else None


def _item(path: Path, index: int, item: Any) -> Record:
    if not isinstance(item, dict):
        return EntryParseError(
            path, f"item {index}: expected a JSON object, found {type(item).__name__}.", index
        )
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        return EntryParseError(path, f'item {index}: expected a non-empty "title".', index)
    date = _issued(item)
    keywords = item.get("keyword")
    return paper(
        path,
        index,
        title=title,
        authors=[n for n in (_name(a) for a in item.get("author") or []) if n],
        abstract=str(item.get("abstract") or ""),
        year=year_of(date),
        date=date,
        venue=item.get("container-title") or item.get("event-title") or None,
        kind=item.get("type") or None,
        doi=norm_doi(item.get("DOI")),
        arxiv_id=norm_arxiv(item.get("URL")) or norm_arxiv(item.get("number")),
        pmid=str(item["PMID"]) if item.get("PMID") else None,
        keywords=[k.strip() for k in keywords.split(",") if k.strip()] if isinstance(keywords, str) else [],
        url=item.get("URL") or None,
        extra={"csl_id": str(item["id"])} if item.get("id") is not None else {},
    )


def records(path: Path, head: str) -> Iterator[Record]:
    yield from json_papers(path, head, "a CSL-JSON item", _item, unwrap=("items",), kind="item")


def parse(path: Path, head: str) -> ParseResult:
    return collect(path, NAME, records(path, head))
