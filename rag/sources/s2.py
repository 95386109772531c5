"""Semantic Scholar Graph API paper objects (``/paper/batch``, ``/paper/search``, datasets): a JSON
array, a ``{"data": [...]}`` page, a single object, or JSON lines (streamed).

Fields: ``paperId``, ``title``, ``abstract``, ``authors[].name``, ``year``, ``publicationDate``,
``venue`` (or ``journal.name``), ``externalIds`` {DOI, ArXiv, PubMed}, ``url``, ``fieldsOfStudy``. A
record that is not an object or has no title is reported with its position; no library reads these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import EntryParseError
from rag.sources.base import ParseResult
from rag.sources.records import Record, collect, json_papers, norm_arxiv, norm_doi, paper

NAME = "s2"
_KEYS = re.compile(r'"paperId"\s*:')


def sniff(head: str) -> bool:
    return head.lstrip().startswith(("{", "[")) and bool(_KEYS.search(head))


def _paper(path: Path, pos: int, obj: Any) -> Record:
    if not isinstance(obj, dict):
        return EntryParseError(path, f"record {pos}: expected a Semantic Scholar paper object.", pos)
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        return EntryParseError(path, f'paper {obj.get("paperId", "?")} (record {pos}) has no "title".', pos)
    ext = obj.get("externalIds") or {}
    journal = obj.get("journal") or {}
    fields = [f for f in obj.get("fieldsOfStudy") or [] if isinstance(f, str)]
    return paper(
        path,
        pos,
        title=title,
        authors=[str(a["name"]) for a in obj.get("authors") or [] if isinstance(a, dict) and a.get("name")],
        abstract=obj.get("abstract") or "",
        year=obj.get("year"),
        date=obj.get("publicationDate"),
        venue=obj.get("venue") or journal.get("name") or None,
        doi=norm_doi(ext.get("DOI")),
        arxiv_id=norm_arxiv(ext.get("ArXiv")),
        pmid=str(ext["PubMed"]) if ext.get("PubMed") else None,
        keywords=fields,
        url=obj.get("url"),
        extra={"s2_id": obj["paperId"]} if obj.get("paperId") else {},
    )


def records(path: Path, head: str) -> Iterator[Record]:
    yield from json_papers(path, head, "a Semantic Scholar paper", _paper, unwrap=("data",))


def parse(path: Path, head: str) -> ParseResult:
    return collect(path, NAME, records(path, head))
