"""Paper listing (seed ``001_…``): three lines per paper, no blank lines.

Layout::

    LGFeb 14, 2023Code                        ← subject code + date (+ "Code" when code is linked)
    A Modern Look at …GeneralizationMaksym Andriushchenko, Francesco Croce, Maximilian Müller et al.
    Sharpness of minima is …                  ← abstract (until the next code+date line)

The hard part is line 2: the title runs straight into the author list, with no separator
("…Deep Learning?Francesco D'Angelo, …", "…ModelsPatrick Chao, … et al. · eth-zurich, princeton").
`split_title_authors` finds the seam:

1. cut off the affiliation tags (" · a, b") and a trailing "et al.";
2. walk the comma-separated parts from the end while each is a clean "First Last" name
   (capitalised words, no lower→upper seam inside a word) — those are authors 2..n;
3. the first part that is not clean holds the end of the title glued to the first author; the
   candidate seams are the capitals directly preceded by a non-space character other than an
   apostrophe, hyphen or slash ("nM", "?F", "sP"); the first author is the text after the right-most
   seam that is a full name, preferring one that is a known name (seen as a non-first author
   elsewhere on the page, or passed in by the caller).

Camel-case words inside titles (JailbreakBench, RobustBench, HalluHard, FuseLIP) are never chosen
because the text after them is not a clean name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rag.errors import EntryParseError
from rag.sources.base import (
    CATDATE_RE,
    ParseResult,
    is_clean_name,
    is_name,
    parse_author_list,
    parse_date,
    split_names,
    squash,
)
from rag.types import Paper, fold, paper_id

NAME = "listing"
_NO_SEAM_BEFORE = set(" \t-'’/([{")


def sniff(text: str) -> bool:
    """Code+date lines directly followed by a non-blank title+authors line and a non-blank abstract."""
    lines = text.split("\n")
    heads = [i for i, line in enumerate(lines) if CATDATE_RE.match(line.strip())]
    tight = sum(
        1
        for i in heads
        if i + 1 < len(lines) and lines[i + 1].strip() and (i + 2 >= len(lines) or lines[i + 2].strip())
    )
    return bool(heads) and tight * 2 > len(heads)


def _seams(chunk: str) -> list[int]:
    return [
        j
        for j in range(1, len(chunk))
        if chunk[j].isupper()
        and chunk[j - 1] not in _NO_SEAM_BEFORE
        and (not chunk[j - 1].isupper() or (j + 1 < len(chunk) and chunk[j + 1].islower()))
    ]


def split_title_authors(
    line: str, known_names: Iterable[str] = ()
) -> tuple[str, list[str], bool, list[str]] | None:
    """Split a glued "TitleFirst Author, Second Author et al. · affil" line.

    Returns (title, authors, truncated, affiliations), or None when no seam gives a clean split.
    """
    text = squash(line)
    affiliations: list[str] = []
    if " · " in text:
        text, tags = text.rsplit(" · ", 1)
        affiliations = split_names(tags, ", ")
    parts, truncated = parse_author_list(text)
    if not parts:
        return None
    k = len(parts)
    while k > 1 and is_clean_name(parts[k - 1]):
        k -= 1
    chunk = parts[k - 1]
    rest = parts[k:]
    known = {fold(n) for n in known_names}
    valid = [j for j in _seams(chunk) if is_name(chunk[j:]) and chunk[:j].strip()]
    if not valid:
        return None
    preferred = [j for j in valid if fold(chunk[j:]) in known]
    j = (preferred or valid)[-1]
    title = ", ".join(parts[: k - 1] + [chunk[:j]])
    return squash(title), [chunk[j:], *rest], truncated, affiliations


def _known_names(lines: list[str], heads: list[int]) -> set[str]:
    """Names in non-first author position on this page: they are never glued to a title."""
    names: set[str] = set()
    for i in heads:
        if i + 1 >= len(lines):
            continue
        text = lines[i + 1].rsplit(" · ", 1)[0]
        parts, _ = parse_author_list(text)
        names.update(p for p in parts[1:] if is_clean_name(p))
    return names


def parse(text: str, path: Path, known_names: Iterable[str] = ()) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    lines = text.split("\n")
    heads = [i for i, line in enumerate(lines) if CATDATE_RE.match(line.strip())]
    known = _known_names(lines, heads) | set(known_names)
    for i in range(heads[0] if heads else len(lines)):
        if lines[i].strip():
            result.problems.append(
                EntryParseError(
                    path,
                    f"text before the first entry ({squash(lines[i])[:60]!r}); expected a subject+date "
                    "line such as 'LGFeb 14, 2023Code'.",
                    line=i + 1,
                )
            )
            break
    bounds = heads + [len(lines)]
    for n, start in enumerate(heads):
        m = CATDATE_RE.match(lines[start].strip())
        assert m is not None
        body = [ln for ln in lines[start + 1 : bounds[n + 1]]]
        glued = body[0].strip() if body else ""
        split = split_title_authors(glued, known) if glued else None
        if split is None:
            result.problems.append(
                EntryParseError(
                    path,
                    "expected 'Title' immediately followed by 'First Last, First Last[ et al.]' on the line "
                    f"after {lines[start].strip()!r}; could not find where the author list starts in "
                    f"{glued[:80]!r}.",
                    line=start + 2,
                )
            )
            continue
        title, authors, truncated, affiliations = split
        date, year = parse_date(m.group("date"))
        abstract = "\n\n".join(squash(b) for b in body[1:] if b.strip())
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
                affiliations=affiliations,
                code_available=bool(m.group("code")),
                line=start + 1,
            )
        )
    return result
