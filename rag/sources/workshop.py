"""Workshop page (seed ``003_…``): a schedule, posters/orals, organisers, "More from the Same Authors".

Schedule and accepted-paper items share one layout; each item is::

    Fri 12:00 p.m. - 12:45 p.m.     ← session time ("-" for posters and orals)
    |
    Feature Learning in …, Murat A. Erdogdu   ← title (plenary talks append ", Speaker")
    (
    Plenary Speaker                 ← kind: Plenary Speaker → talk, Poster → poster, Oral → oral
    )
    link »                          ← optional
    SlidesLive Video » Abstract: …  ← abstract (talk prefix stripped); an optional "|" line may precede
    Murat Erdogdu 🔗 |              ← people, "A · B · C", closed by the link mark

Items of other kinds (Remarks, Contributed talks, Break) or with no kind (Lunch, Poster Session) are
schedule entries, not papers: they are recorded as skipped, with their line. The "Author Information"
section lists the organisers (skipped). "More from the Same Authors" holds title-only items::

    2023 Poster: On the Convergence of Gradient Flow on Multi-layer Linear Models »
    Hancheng Min · Rene Vidal · Enrique Mallada -

The year there is explicit; the kind is the word before the colon (empty for "2023 : …" items, which
get ``kind=None``). The same title can appear several times (Poster and Spotlight); each line becomes
one entry and the corpus merges them by title, keeping every kind in ``extra["kinds"]``.
Poster, oral and talk entries carry no date on the page, so their year stays None unless the same
paper appears with a year elsewhere (the corpus merge fills it in).
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import EntryParseError
from rag.sources.base import ParseResult, Skipped, split_names, squash
from rag.types import Paper, paper_id

NAME = "workshop"
LINK = "🔗"
_KINDS = {"plenary speaker": "talk", "poster": "poster", "oral": "oral"}
_TIME = re.compile(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2}:\d{2} [ap]\.m\. - \d{1,2}:\d{2} [ap]\.m\.|-)$"
)
_MORE = re.compile(r"^(?P<year>\d{4}) (?P<kind>[A-Za-z][\w -]*?)?\s*: (?P<title>.+?)\s*»$")
_ABSTRACT_PREFIX = re.compile(r"^(?:SlidesLive Video »\s*)?(?:Abstract:\s*)?")


def sniff(text: str) -> bool:
    lines = [line.strip() for line in text.split("\n")]
    kinds = sum(
        1
        for i in range(1, len(lines) - 1)
        if lines[i - 1] == "(" and lines[i + 1] == ")" and lines[i].lower() in _KINDS
    )
    links = sum(1 for line in lines if line.endswith(f"{LINK} |"))
    return kinds >= 1 and links >= 1


def _item(lines: list[str], i: int) -> bool:
    """Does a schedule/paper item start at line index i (time line followed by '|')?"""
    return bool(_TIME.match(lines[i])) and i + 1 < len(lines) and lines[i + 1] == "|"


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    lines = [line.strip() for line in text.split("\n")]
    n = len(lines)
    info = next((i for i, line in enumerate(lines) if line == "Author Information"), None)
    more = next((i for i, line in enumerate(lines) if line == "More from the Same Authors"), None)
    end_items = min(x for x in (info, more, n) if x is not None)

    starts = [i for i in range(end_items) if _item(lines, i)]
    if starts and any(lines[: starts[0]]):
        result.skipped.append(Skipped(1, "workshop description", "introduction text, not a paper"))
    bounds = starts + [end_items]
    for k, s in enumerate(starts):
        _parse_item(lines, s, bounds[k + 1], path, result)

    if info is not None:
        stop = more if more is not None and more > info else n
        result.skipped.append(
            Skipped(info + 1, "Author Information", f"{stop - info - 1} organiser lines, not papers")
        )
    if more is not None:
        _parse_more(lines, more, path, result)
    return result


def _parse_item(lines: list[str], s: int, e: int, path: Path, result: ParseResult) -> None:
    lineno = s + 1
    time = lines[s]
    body = lines[s + 2 : e]
    while body and not body[-1]:
        body.pop()
    if not body:
        result.problems.append(EntryParseError(path, "expected a title after the time line.", lineno))
        return
    raw_title = body[0]
    kind_raw = ""
    rest = body[1:]
    if len(body) >= 4 and body[1] == "(" and body[3] == ")":
        kind_raw = body[2]
        rest = body[4:]
    kind = _KINDS.get(kind_raw.lower())
    if kind is None:
        label = f"{kind_raw} item" if kind_raw else "schedule item"
        result.skipped.append(Skipped(lineno, f"{raw_title} ({label})", "schedule entry, not a paper"))
        return
    if not rest or not rest[-1].endswith(f"{LINK} |"):
        result.problems.append(
            EntryParseError(
                path,
                f"{kind_raw} {raw_title!r}: expected its people as 'A · B · C {LINK} |' on the last line "
                "of the item.",
                lineno,
            )
        )
        return
    people = split_names(rest[-1][: -len(f"{LINK} |")], " · ")
    texts = [t for t in rest[:-1] if t and t != "|" and t != "link »"]
    abstract = squash(" ".join(_ABSTRACT_PREFIX.sub("", t, count=1) for t in texts))
    extra: dict[str, object] = {"section": "schedule" if kind == "talk" else "accepted papers"}
    title = squash(raw_title)
    if kind == "talk":
        # "Title, Speaker As Printed": cut the speaker off the title.
        if ", " in title:
            head, tail = title.rsplit(", ", 1)
            last_names = {p.split(" ")[-1].casefold() for p in people}
            if tail.split(" ")[-1].casefold() in last_names or not people:
                title = head
                extra["speaker"] = tail
        extra["session_time"] = time
    if not people:
        result.problems.append(
            EntryParseError(path, f"{kind_raw} {title!r}: the people line is empty.", s + 1 + len(body))
        )
        return
    if not abstract:
        result.problems.append(
            EntryParseError(
                path, f"{kind_raw} {title!r}: expected an abstract before the people line.", lineno
            )
        )
        return
    result.papers.append(
        Paper(
            id=paper_id(title),
            title=title,
            authors=people,
            abstract=abstract,
            source=path.name,
            sources=[path.name],
            kind=kind,
            line=lineno,
            extra=extra,
        )
    )


def _parse_more(lines: list[str], more: int, path: Path, result: ParseResult) -> None:
    i = more + 1
    while i < len(lines):
        line = lines[i]
        if not line or line == "-":
            i += 1
            continue
        m = _MORE.match(line)
        if not m:
            result.problems.append(
                EntryParseError(
                    path,
                    f"expected 'YEAR Kind: Title »' in 'More from the Same Authors'; found {line[:60]!r}.",
                    i + 1,
                )
            )
            i += 1
            continue
        # The people line ends with " -" (the page's last one lost it); a missing line is a problem.
        people_line = lines[i + 1] if i + 1 < len(lines) else ""
        if not people_line or people_line == "-" or _MORE.match(people_line):
            result.problems.append(
                EntryParseError(
                    path, f"expected the authors as 'A · B · C -' after {m.group('title')!r}.", i + 2
                )
            )
            i += 1
            continue
        people_line = people_line.removesuffix(" -")
        kind = (m.group("kind") or "").strip().lower() or None
        title = squash(m.group("title"))
        year = int(m.group("year"))
        result.papers.append(
            Paper(
                id=paper_id(title),
                title=title,
                authors=split_names(people_line, " · "),
                year=year,
                date=m.group("year"),
                source=path.name,
                sources=[path.name],
                kind=kind,
                line=i + 1,
                extra={"section": "More from the Same Authors", "kinds": [kind] if kind else []},
            )
        )
        i += 2
