"""Author-profile page (seed ``000_…``): one person's papers, each as a block.

Layout::

    Clément Hongler              ← profile owner (header)
    LG / h-index2 / 13papers …   ← header stats
    13 Papers                    ← declared number of entries (checked against what is parsed)

    MLMay 31, 2022               ← subject code glued to the date (year may be missing: "AIMay 26")
    Feature Learning in …        ← title (the next non-blank line(s))

    Arthur Jacot, Eugene Golikov, Clément Hongler et al.   ← authors, in page order

    We study …                   ← abstract (one or more paragraphs, until the next code+date line)

Dates without a year keep their raw text and get ``year=None``: the page does not say in which year
it was rendered, and its entries are not in date order, so nothing on it determines the year.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import EntryParseError, SourceError
from rag.sources.base import CATDATE_RE, ParseResult, is_name, parse_author_list, parse_date, squash
from rag.types import Paper, paper_id

NAME = "profile"
_DECLARED = re.compile(r"^(\d+) Papers$")
_STAT = re.compile(r"^(h-index|papers|citations|Novelty|AI Score)", re.I)


def sniff(text: str) -> bool:
    """Code+date lines, each followed by a title line and then a blank line (the listing has none)."""
    lines = text.split("\n")
    heads = [i for i, line in enumerate(lines) if CATDATE_RE.match(line.strip())]
    if not heads:
        return False
    blank_after_title = sum(
        1 for i in heads if i + 2 < len(lines) and lines[i + 1].strip() and not lines[i + 2].strip()
    )
    return blank_after_title * 2 > len(heads)


def _paragraphs(lines: list[str], start: int) -> list[tuple[int, str]]:
    """(1-based first line, text) of each blank-separated paragraph in lines[start:]."""
    out: list[tuple[int, str]] = []
    cur: list[str] = []
    first = 0
    for offset, line in enumerate(lines[start:]):
        if line.strip():
            if not cur:
                first = start + offset + 1
            cur.append(line.strip())
        elif cur:
            out.append((first, "\n".join(cur)))
            cur = []
    if cur:
        out.append((first, "\n".join(cur)))
    return out


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    lines = text.split("\n")
    heads = [i for i, line in enumerate(lines) if CATDATE_RE.match(line.strip())]
    header = [line.strip() for line in lines[: heads[0]] if line.strip()] if heads else []
    owner = header[0] if header else ""
    declared: int | None = None
    declared_line = 0
    for i, line in enumerate(lines[: heads[0]] if heads else []):
        m = _DECLARED.match(line.strip())
        if m:
            declared, declared_line = int(m.group(1)), i + 1
    if owner:
        result.meta["profile"] = owner
    for h in header[1:]:
        if h and h != owner and not _STAT.search(h) and not _DECLARED.match(h):
            result.meta.setdefault("profile_category", h)

    bounds = heads + [len(lines)]
    for n, start in enumerate(heads):
        block = lines[start + 1 : bounds[n + 1]]
        m = CATDATE_RE.match(lines[start].strip())
        assert m is not None
        paras = _paragraphs(block, 0)
        lineno = start + 1
        if len(paras) < 2:
            result.problems.append(
                EntryParseError(
                    path,
                    "expected a title line and then an author list after the subject+date line "
                    f"{lines[start].strip()!r}; found {'nothing' if not paras else 'only one paragraph'}.",
                    line=lineno,
                )
            )
            continue
        title = squash(paras[0][1])
        authors_line, author_text = start + 1 + paras[1][0], paras[1][1]
        authors, truncated = parse_author_list(author_text)
        if not authors or not all(is_name(a, min_tokens=1) for a in authors) or "\n" in author_text:
            result.problems.append(
                EntryParseError(
                    path,
                    "expected the author list ('First Last, First Last et al.') after the title "
                    f"{title!r}; found {squash(author_text)[:60]!r}.",
                    line=authors_line,
                )
            )
            continue
        date, year = parse_date(m.group("date"))
        abstract = "\n\n".join(squash(p[1]) for p in paras[2:])
        result.papers.append(
            Paper(
                id=paper_id(title),
                title=title,
                authors=authors,
                authors_truncated=truncated,
                abstract=abstract,
                year=year,
                date=date,
                category=m.group("cat"),
                source=path.name,
                sources=[path.name],
                kind="paper",
                line=lineno,
                extra={"profile": owner} if owner else {},
            )
        )
    found = len(result.papers) + sum(1 for p in result.problems if isinstance(p, EntryParseError))
    if declared is not None and declared != found:
        result.problems.append(
            SourceError(
                path,
                f"the page says {declared} papers but {found} entries (subject+date lines) were found; "
                "an entry may have lost its 'LGMay 31, 2022' line.",
                line=declared_line,
            )
        )
    return result
