"""Daily Papers page (seed ``002_…``): blank-line separated blocks, authors only as a count.

Layout::

    new / Get trending papers … / Daily Papers / byAK and the research community
    Oct 29                                   ← the page's own date (no year): kept in extra["page_date"]

    TempSamp-R1: Effective Temporal Sampling …   ← title (one short line)

    This paper introduces …                  ← abstract

      • 7 authors                            ← footer: author count,
    ·
    Sep 22 3                                 ← date (year only when printed) and upvotes (optional)

An entry with no footer (the next title follows the abstract directly) is malformed: it lacks the
author count and date that every entry of this layout carries, so it is reported as a problem with its
line (not loaded; strict mode fails), as the page's own count of 76 papers implies.
A block after an abstract starts a new entry when it looks like a
title (one line, at most 300 characters, not ending in a full stop); otherwise it continues the abstract.
Dates without a year ("Sep 22") keep their raw text and ``year=None``: the page's own date has no
year either, and the list is not in date order, so the page does not determine it.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import EntryParseError
from rag.sources.base import DATE_RE, ParseResult, Skipped, parse_date, squash
from rag.types import Paper, paper_id

NAME = "daily"
_COUNT = re.compile(r"^\s*•\s*(\d+)\s+authors?\s*$")
_COUNT_LOOSE = re.compile(r"^\s*•")
_DATE_UP = re.compile(rf"^(?P<date>{DATE_RE})(?:\s+(?P<up>\d+))?$")
_PAGE_DATE = re.compile(rf"^{DATE_RE}$")


def sniff(text: str) -> bool:
    lines = text.split("\n")
    counts = sum(1 for line in lines if _COUNT.match(line))
    return counts >= 1 and (counts >= 3 or any(line.strip() == "Daily Papers" for line in lines))


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    first = 0
    for i, line in enumerate(lines):
        if line.strip():
            if not cur:
                first = i + 1
            cur.append(line)
        elif cur:
            out.append((first, cur))
            cur = []
    if cur:
        out.append((first, cur))
    return out


def _is_footer(block: list[str]) -> bool:
    return bool(_COUNT_LOOSE.match(block[0]))


def _looks_like_title(block: list[str]) -> bool:
    text = block[0].strip()
    return len(block) == 1 and len(text) <= 300 and not text.endswith(".")


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    lines = text.split("\n")
    blocks = _blocks(lines)

    # Header: everything up to the page date that follows "Daily Papers" (or up to the first title).
    start = 0
    for n, (_, block) in enumerate(blocks[:8]):
        if block[0].strip() == "Daily Papers":
            start = n + 1
            for m in range(n + 1, min(n + 4, len(blocks))):
                if _PAGE_DATE.match(blocks[m][1][0].strip()):
                    result.meta["page_date"] = blocks[m][1][0].strip()
                    start = m + 1
                    break
                start = m + 1
            break
    if start:
        result.skipped.append(Skipped(1, "page header", "site banner and page title, not a paper"))

    entries: list[dict] = []
    cur: dict | None = None
    for lineno, block in blocks[start:]:
        if _is_footer(block):
            if cur is None or cur.get("footer") is not None:
                result.problems.append(
                    EntryParseError(
                        path, "an author-count footer ('• N authors') with no title before it.", lineno
                    )
                )
                continue
            cur["footer"] = (lineno, block)
            cur = None
            continue
        if cur is None or (cur["abstract"] and _looks_like_title(block)):
            cur = {"line": lineno, "title": block, "abstract": [], "footer": None}
            entries.append(cur)
        else:
            cur["abstract"].append(block)

    page_date = result.meta.get("page_date")
    for e in entries:
        lineno = e["line"]
        if len(e["title"]) > 1 and not _looks_like_title(e["title"][:1]):
            result.problems.append(
                EntryParseError(path, "expected a one-line title at the start of an entry.", lineno)
            )
            continue
        title = squash(" ".join(e["title"]))
        abstract = "\n\n".join(squash(" ".join(b)) for b in e["abstract"])
        if e["footer"] is None:
            result.problems.append(
                EntryParseError(
                    path,
                    f"entry {title!r} has no footer: expected '• N authors', '·' and a date after its "
                    "abstract (the page lost them). Fix the page or pass the paper as JSON lines.",
                    lineno,
                )
            )
            continue
        fline, fblock = e["footer"]
        body = [ln.strip() for ln in fblock if ln.strip() != "·"]
        cm = _COUNT.match(fblock[0])
        dm = _DATE_UP.match(body[1]) if len(body) == 2 else None
        if not cm or dm is None:
            result.problems.append(
                EntryParseError(
                    path,
                    f"footer of {title!r} not understood: expected '• N authors', '·' and a date "
                    f"with optional upvotes ('Sep 22 3'); found {' | '.join(body)!r}.",
                    fline,
                )
            )
            continue
        n_authors = int(cm.group(1))
        date, year = parse_date(dm.group("date"))
        upvotes = int(dm.group("up")) if dm.group("up") else None
        extra: dict[str, object] = {}
        if page_date:
            extra["page_date"] = page_date
        result.papers.append(
            Paper(
                id=paper_id(title),
                title=title,
                n_authors=n_authors,
                abstract=abstract,
                year=year,
                date=date,
                source=path.name,
                sources=[path.name],
                kind="paper",
                upvotes=upvotes,
                line=lineno,
                extra=extra,
            )
        )
    return result
