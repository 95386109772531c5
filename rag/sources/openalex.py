"""OpenAlex works: one work object, a ``/works`` page (``{"meta": …, "results": [...]}``), a JSON array
or JSON lines (a snapshot's ``works`` part files, plain or gzip; lines are streamed).

The abstract is rebuilt from ``abstract_inverted_index`` (word → positions; no library does this): a
position held by no word, or by two, is a gap or a clash, reported with the work's id — the abstract is
then kept with the gap marked "…" rather than dropped. Authors come from ``authorships`` in order,
ids from ``doi`` and ``ids`` (``doi``, ``pmid``, ``arxiv``), the venue from
``primary_location.source.display_name``, keywords from ``keywords``/``concepts``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from rag.errors import EntryParseError
from rag.sources.base import ParseResult
from rag.sources.records import Record, collect, guarded, json_records, norm_arxiv, norm_doi, paper
from rag.types import Paper

NAME = "openalex"
_KEYS = re.compile(r'"abstract_inverted_index"\s*:|"authorships"\s*:|"id"\s*:\s*"https://openalex\.org/W\d+"')


def sniff(head: str) -> bool:
    return head.lstrip().startswith(("{", "[")) and bool(_KEYS.search(head))


def rebuild_abstract(index: dict[str, list[int]]) -> tuple[str, list[int]]:
    """Text from an inverted index, and the positions that no word (or more than one) fills."""
    slots: dict[int, str] = {}
    clashes: list[int] = []
    for word, positions in index.items():
        for pos in positions:
            if pos in slots:
                clashes.append(pos)
            slots[pos] = word
    if not slots:
        return "", []
    top = max(slots)
    gaps = [i for i in range(top + 1) if i not in slots]
    words = [slots.get(i, "…") for i in range(top + 1)]
    return " ".join(words), sorted(gaps + clashes)


def _work(path: Path, pos: int, obj: Any) -> Record:
    if not isinstance(obj, dict):
        return EntryParseError(path, f"record {pos}: expected an OpenAlex work object.", pos)
    wid = str(obj.get("id") or "?").rsplit("/", 1)[-1]
    title = obj.get("title") or obj.get("display_name")
    if not isinstance(title, str) or not title.strip():
        return EntryParseError(path, f'work {wid} (record {pos}) has no "title".', pos)
    abstract, bad = rebuild_abstract(obj.get("abstract_inverted_index") or {})
    ids = obj.get("ids") or {}
    location = obj.get("primary_location") or {}
    venue = (location.get("source") or {}).get("display_name")
    keywords = [k.get("display_name") for k in obj.get("keywords") or [] if isinstance(k, dict)]
    keywords = keywords or [c.get("display_name") for c in obj.get("concepts") or [] if isinstance(c, dict)]
    result = paper(
        path,
        pos,
        title=title,
        authors=[
            str((a.get("author") or {}).get("display_name") or a.get("raw_author_name") or "")
            for a in obj.get("authorships") or []
            if (a.get("author") or {}).get("display_name") or a.get("raw_author_name")
        ],
        abstract=abstract,
        year=obj.get("publication_year"),
        date=obj.get("publication_date"),
        venue=venue,
        kind=obj.get("type"),
        doi=norm_doi(obj.get("doi") or ids.get("doi")),
        arxiv_id=norm_arxiv(ids.get("arxiv")) or norm_arxiv(location.get("landing_page_url")),
        pmid=str(ids["pmid"]).rsplit("/", 1)[-1] if ids.get("pmid") else None,
        keywords=[k for k in keywords if k],
        url=location.get("landing_page_url") or obj.get("id"),
        extra={"openalex_id": wid},
    )
    if bad:
        shown = ", ".join(str(b) for b in bad[:5]) + (" …" if len(bad) > 5 else "")
        result.extra["problem"] = (
            f"work {wid}: abstract_inverted_index has gaps or clashes at word position(s) {shown}; "
            "expected each position exactly once (the abstract is kept with '…' there)."
        )
    return result


def records(path: Path, head: str) -> Iterator[Record]:
    for pos, obj in json_records(path, head, "an OpenAlex work", unwrap=("results", "works")):
        if isinstance(obj, EntryParseError):
            yield obj
        else:
            rec = guarded(path, pos, "record", partial(_work, path, pos, obj))
            if isinstance(rec, Paper) and "problem" in rec.extra:
                yield EntryParseError(path, rec.extra.pop("problem"), pos)
            yield rec


def parse(path: Path, head: str) -> ParseResult:
    return collect(path, NAME, records(path, head))
