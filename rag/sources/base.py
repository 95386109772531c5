"""What every source parser shares: the parse result, reading a file safely, dates and name shapes.

Parsers turn text into `Paper` records, one per entry on the page, and never drop an entry silently:
an entry they cannot read becomes an `EntryParseError` (file + line + what was expected), and a block
that is not a paper at all (a coffee break on a workshop schedule, the organiser list) is recorded in
`skipped` with its line and the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import EmptySourceError, EncodingError, EntryParseError, SourceError
from rag.types import Paper

MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}
MONTH_RE = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
DATE_RE = rf"{MONTH_RE} \d{{1,2}}(?:, \d{{4}})?"
_DATE_PARTS = re.compile(rf"^({MONTH_RE}) (\d{{1,2}})(?:, (\d{{4}}))?$")

# Lower-case words that may stand inside a person's name ("Vincent van Gogh", "Maria de la Cruz").
NAME_PARTICLES = frozenset(
    "van von der den de del della di da das dos du la le bin ibn al el y zu ter ten".split()
)


@dataclass
class Skipped:
    """A block of a page that is deliberately not a paper (schedule break, organiser list, …)."""

    line: int
    what: str
    reason: str


@dataclass
class ParseResult:
    """Everything a parser found in one file."""

    path: Path
    format: str
    papers: list[Paper] = field(default_factory=list)
    problems: list[SourceError] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


def read_text(path: Path) -> str:
    """Read a source file as UTF-8 text; empty, binary and non-UTF-8 files raise a `SourceError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(
            path, f"cannot be read ({exc.strerror or exc}); check the path and permissions."
        ) from exc
    if not data.strip():
        raise EmptySourceError(
            path, "the file is empty; expected a seed page, a BEIR corpus.jsonl or JSON lines of papers."
        )
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise EncodingError(path, "the file is binary (NUL bytes); expected UTF-8 text.", line=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EncodingError(
            path,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8.",
            line=line,
        ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def squash(text: str) -> str:
    """Collapse runs of whitespace to one space and strip: the only normalisation titles get."""
    return re.sub(r"\s+", " ", text).strip()


def parse_date(raw: str) -> tuple[str, int | None]:
    """``"Feb 14, 2023"`` → ``("2023-02-14", 2023)``; ``"May 26"`` → ``("May 26", None)``.

    A date without a year keeps its raw text and gets no year: none of the seed pages says which
    year it was rendered in (see docs/corpus.md, "Years").
    """
    raw = squash(raw)
    m = _DATE_PARTS.match(raw)
    if not m or not m.group(3):
        return raw, None
    year = int(m.group(3))
    return f"{year:04d}-{MONTHS[m.group(1)]:02d}-{int(m.group(2)):02d}", year


def is_name(text: str, min_tokens: int = 2) -> bool:
    """Does `text` look like one person's full name ("Francesco D'Angelo", "Naman D. Singh")?"""
    tokens = text.split(" ")
    if not (min_tokens <= len(tokens) <= 6) or any(not t for t in tokens):
        return False
    for i, tok in enumerate(tokens):
        if tok.lower() in NAME_PARTICLES and 0 < i < len(tokens) - 1:
            continue
        if not tok[0].isupper():
            return False
        if not all(c.isalpha() or c in "'’.-" for c in tok):
            return False
    return True


def split_names(text: str, sep: str) -> list[str]:
    return [squash(n) for n in text.split(sep) if squash(n)]


# "LGFeb 14, 2023", "DIS-NNJan 6, 2019", "AIMay 26", "CRApr 2, 2024Code": subject code glued to the date.
CATDATE_RE = re.compile(rf"^(?P<cat>[A-Z]{{2,}}(?:-[A-Z]{{2,}})?)?(?P<date>{DATE_RE})(?P<code>Code)?$")

# Name prefixes that legitimately put a capital inside a word: McDonald, MacKay, DeVries, LeCun, VanderPlas.
_INNER_CAP_OK = re.compile(r"^(?:Mc|Mac|De|Di|Da|Du|La|Le|Van|Von|O')\w")


def has_glue(token: str) -> bool:
    """True when a word has a lower-case letter directly followed by a capital ("GeneralizationMaksym")."""
    seams = sum(1 for a, b in zip(token, token[1:], strict=False) if a.islower() and b.isupper())
    if _INNER_CAP_OK.match(token) and seams <= 1:
        return False
    return seams > 0


def is_clean_name(text: str) -> bool:
    """A full name with no glued-on text: `is_name` and no word containing a lower→upper seam."""
    return is_name(text) and not any(has_glue(t) for t in text.split(" "))


def parse_author_list(text: str) -> tuple[list[str], bool]:
    """``"A B, C D et al."`` → (["A B", "C D"], True). Names are not validated here."""
    text = squash(text)
    truncated = False
    for tail in (" et al.", " et al", ", et al."):
        if text.endswith(tail):
            text, truncated = text[: -len(tail)], True
            break
    return split_names(text, ", "), truncated


def json_lines(text: str, path: Path, result: ParseResult, expected: str) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's parsed JSON with its line number; a line that is not JSON is reported on
    ``result`` (saying that ``expected`` was expected on it) and skipped."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(
                EntryParseError(path, f"not valid JSON ({exc.msg}); expected {expected} per line.", lineno)
            )
