"""arXiv: the API's Atom feed (``export.arxiv.org/api/query`` results) and the metadata snapshot.

Atom (``arxiv``): each ``<entry>`` → title, ``<author><name>``, ``<summary>``, ``<published>`` date,
``<arxiv:primary_category>``/``<category>`` terms as keywords, ``<arxiv:doi>``, ``<arxiv:journal_ref>``
as venue, the ``<id>`` URL as arXiv id (version stripped). Parsed with defusedxml, streamed.

Snapshot (``arxiv-snapshot``): the metadata snapshot's JSON lines (``id``, ``title``, ``authors``,
``authors_parsed`` [[last, first, suffix], …], ``abstract``, ``categories``, ``doi``, ``journal-ref``,
``update_date``, ``versions`` [{version, created}]), plain or gzip. The file is gigabytes: it is read
line by line, never whole (constant memory; ``bench/parse_arxiv.py`` measures it). The date is the
first version's ``created`` date (the submission), else ``update_date``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from rag.errors import EntryParseError
from rag.sources.base import MONTHS, ParseResult
from rag.sources.records import Record, collect, guarded, norm_arxiv, norm_doi, paper, text_lines
from rag.sources.xmlstream import elements, local

NAME = "arxiv"
SNAPSHOT = "arxiv-snapshot"
_SNAPSHOT_KEYS = re.compile(r'"(?:authors_parsed|update_date|versions)"\s*:')
_CREATED = re.compile(r"^\w{3}, (\d{1,2}) (\w{3}) (\d{4}) ")
_NS = "{http://www.w3.org/2005/Atom}"
_AX = "{http://arxiv.org/schemas/atom}"


def sniff(head: str) -> bool:
    return "<feed" in head and "arxiv.org" in head


def sniff_snapshot(head: str) -> bool:
    return head.lstrip().startswith("{") and len(_SNAPSHOT_KEYS.findall(head.split("\n", 1)[0])) >= 2


# ------------------------------------------------------------------------------------------ Atom


def _t(entry: Element, tag: str) -> str:
    node = entry.find(tag)
    return " ".join("".join(node.itertext()).split()) if node is not None else ""


def _entry(path: Path, line: int, entry: Element) -> Record:
    title = _t(entry, f"{_NS}title")
    if not title:
        return EntryParseError(path, "Atom <entry> has no <title>; expected an arXiv API entry.", line)
    url = _t(entry, f"{_NS}id")
    cats = [c.get("term", "") for c in entry.findall(f"{_NS}category")]
    primary = entry.find(f"{_AX}primary_category")
    if primary is not None and primary.get("term") in cats:
        cats.remove(primary.get("term", ""))
        cats.insert(0, primary.get("term", ""))
    published = _t(entry, f"{_NS}published")
    return paper(
        path,
        line,
        title=title,
        authors=[_t(a, f"{_NS}name") for a in entry.findall(f"{_NS}author") if _t(a, f"{_NS}name")],
        abstract=_t(entry, f"{_NS}summary"),
        date=published[:10] or None,
        venue=_t(entry, f"{_AX}journal_ref") or None,
        category=cats[0] if cats else None,
        kind="preprint",
        doi=norm_doi(_t(entry, f"{_AX}doi")),
        arxiv_id=norm_arxiv(url),
        keywords=[c for c in cats if c],
        url=url or None,
    )


def atom_records(path: Path) -> Iterator[Record]:
    for line, elem in elements(path, "entry"):
        if local(elem.tag) == "entry":
            yield guarded(path, line, "Atom entry on line", partial(_entry, path, line, elem))


def parse(path: Path) -> ParseResult:
    return collect(path, NAME, atom_records(path))


# ------------------------------------------------------------------------------------------ snapshot


def _snapshot_date(obj: dict[str, Any]) -> str | None:
    """The first version's date ("Mon, 2 Apr 2007 19:18:42 GMT" → 2007-04-02), else ``update_date``."""
    versions = obj.get("versions")
    first = versions[0] if isinstance(versions, list) and versions else None
    if isinstance(first, dict) and first.get("created"):
        created = str(first["created"])
        m = _CREATED.match(created)
        if m and m.group(2) in MONTHS:
            return f"{m.group(3)}-{MONTHS[m.group(2)]:02d}-{int(m.group(1)):02d}"
        try:
            return parsedate_to_datetime(created).date().isoformat()
        except (TypeError, ValueError):
            pass
    update = obj.get("update_date")
    return update if isinstance(update, str) and update else None


def _flat(text: Any) -> str:
    """The snapshot's hard-wrapped text on one line (split/join only when a double space is left)."""
    flat = str(text or "").replace("\n", " ").strip()
    return " ".join(flat.split()) if "  " in flat or "\t" in flat or "\r" in flat else flat


def _authors(obj: dict[str, Any]) -> list[str]:
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        return [" ".join(" ".join(w for w in (p[1], p[0], *p[2:]) if w).split()) for p in parsed if p]
    raw = obj.get("authors")
    if isinstance(raw, str):
        return [n.strip() for n in re.split(r",\s*|\s+and\s+", raw) if n.strip()]
    return []


def _record(path: Path, line: int, obj: Any) -> Record:
    if not isinstance(obj, dict):
        return EntryParseError(path, "expected a JSON object (one arXiv metadata record) per line.", line)
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        return EntryParseError(path, f'arXiv record {obj.get("id", "?")!r} has no "title".', line)
    arxiv_id = norm_arxiv(str(obj.get("id") or ""))
    cats = str(obj.get("categories") or "").split()
    return paper(
        path,
        line,
        title=title,
        authors=_authors(obj),
        abstract=_flat(obj.get("abstract")),
        date=_snapshot_date(obj),
        venue=obj.get("journal-ref") or None,
        category=cats[0] if cats else None,
        kind="preprint",
        doi=norm_doi(obj.get("doi")),
        arxiv_id=arxiv_id,
        keywords=cats,
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
    )


def snapshot_records(path: Path) -> Iterator[Record]:
    """One record per line, streamed (constant memory, plain or gzip)."""
    for lineno, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield EntryParseError(path, f"not valid JSON ({exc.msg}); expected one arXiv record.", lineno)
            continue
        yield guarded(path, lineno, "arXiv record on line", partial(_record, path, lineno, obj))


def parse_snapshot(path: Path) -> ParseResult:
    return collect(path, SNAPSHOT, snapshot_records(path))
