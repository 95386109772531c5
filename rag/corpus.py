"""Load the corpus: parse every source, merge the same paper seen on several pages, keep ids unique.

``load_corpus()`` reads the project's ``seeds/`` (or ``settings.corpus.paths``, or the ``paths`` given:
seed pages, BEIR folders / ``corpus.jsonl`` files, JSON lines of papers) and returns ``list[Paper]``.
Every problem (unknown format, empty, binary or non-UTF-8 file, an entry that cannot be parsed) is
logged as a warning on the ``rag.corpus`` logger and the good papers still load; ``strict=True`` turns
any problem into a `CorpusError`. ``load_corpus_report()`` returns the same papers plus the problems
and per-file counts (what ``rag papers`` prints).

Years: a paper gets a year only from a 4-digit year printed with its own entry ("Feb 14, 2023",
"2023 Poster: …") or from another page's entry of the same paper when they are merged. Dates printed
without a year ("May 26", "Sep 22") keep their raw text in ``date`` and ``year=None``: none of the seed
pages says in which year it was rendered and none lists its entries in date order, so the page does
not determine the year. (docs/corpus.md, "Years", has the details.)

Merging: seed-page papers get ``id = paper_id(title)``. Entries with the same id are one paper when
their full folded titles agree and their author lists (when both have names) share a family name; the
merged paper keeps the fullest metadata (the complete author list over an "et al." one, the longest
abstract, a full ISO date over a partial one, the most specific kind: talk/oral/poster over "paper"),
``source`` = the first file, ``sources`` = all files, ``line`` = the first entry's line, and
``extra["entries"]`` = every "file:line". Two *different* papers with the same id (possible when long
titles share their first 64 characters) are kept apart: the later one gets ``<id>-2`` (then ``-3``…).
Explicit ids (BEIR ``_id``, ``id`` in JSON lines) are never rewritten; a repeated one is reported.
Across sources (BibTeX, RIS, arXiv, OpenAlex, … — rag.identity), groups are then joined by DOI, arXiv
id, PMID, or normalised title + first-author family name; the joined paper keeps the id of the group
seen first. Entries whose DOIs (arXiv ids, PMIDs) differ are never one paper, whatever their titles.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import CorpusError, SourceError
from rag.identity import different_ids, link
from rag.settings import Settings
from rag.sources import (
    ParseResult,
    Skipped,
    detect_library_format,
    expand_paths,
    parse_file,
    parse_library_file,
    read_head,
    read_text,
)
from rag.sources import detect_format as _detect
from rag.types import Paper, fold, paper_id

logger = logging.getLogger("rag.corpus")

PathsArg = str | Path | Sequence[str | Path] | None
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NAMELESS_FORMATS = ("beir", "arxiv-snapshot", "openalex", "s2", "pubmed")
"""Formats whose author names are not used to read seed listings (large, and names there are unambiguous)."""


@dataclass
class FileReport:
    """What one file contributed."""

    path: str
    name: str
    format: str | None
    entries: int = 0
    problems: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    gives_names: bool = False
    """Its papers' author names help parse the seed listings (``known_names``), so adding or changing it can
    change how a listing reads."""


@dataclass
class CorpusReport:
    """Papers plus everything that went wrong and what each file contributed."""

    papers: list[Paper]
    problems: list[SourceError]
    files: list[FileReport]
    merged: dict[str, list[str]] = field(default_factory=dict)
    entries: list[Paper] = field(default_factory=list)
    """Every entry parsed, before merging (what :mod:`rag.source_keys` records for later adds)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_source(self) -> dict[str, int]:
        """Papers per source file (a merged paper counts for every file that lists it)."""
        counts: dict[str, int] = {}
        for p in self.papers:
            for s in p.sources or [p.source]:
                counts[s] = counts.get(s, 0) + 1
        return counts


def _as_paths(paths: PathsArg, settings: Settings) -> list[Path]:
    if paths is None:
        return list(settings.corpus.paths)
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _full_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", fold(title))


def _family(name: str) -> str:
    return fold(name).split(" ")[-1] if name.strip() else ""


def same_paper(a: Paper, b: Paper) -> bool:
    """Two entries with the same id describe one paper (see the module docstring)."""
    if _full_key(a.title) != _full_key(b.title) or different_ids(a, b):
        return False
    if a.authors and b.authors:
        return bool({_family(n) for n in a.authors} & {_family(n) for n in b.authors})
    return True


def merge(entries: list[Paper]) -> Paper:
    """One paper from several entries of it, keeping the fullest metadata."""
    first = entries[0]
    if len(entries) == 1:
        return first
    named = [p for p in entries if p.authors]
    best_authors = min(named, key=lambda p: (p.authors_truncated, -len(p.authors)), default=first)
    dated = [p for p in entries if p.date]
    date_src = next((p for p in dated if _ISO.match(p.date or "")), dated[0] if dated else first)
    kinds: list[str] = []
    for p in entries:
        for k in [p.kind, *p.extra.get("kinds", [])]:
            if k and k not in kinds:
                kinds.append(k)
    # The most specific kind wins: a poster/oral/talk entry over a plain "paper" listing.
    kind = next((p.kind for p in entries if p.kind and p.kind != "paper"), None) or (
        "paper" if "paper" in kinds else None
    )

    def first_set(attr: str) -> Any:
        return next((getattr(p, attr) for p in entries if getattr(p, attr) is not None), None)

    extra: dict[str, Any] = {}
    for p in entries:
        for k, v in p.extra.items():
            extra.setdefault(k, v)
    if kinds:
        extra["kinds"] = kinds
    extra["entries"] = [f"{p.source}:{p.line}" for p in entries]
    sources: list[str] = []
    affiliations: list[str] = []
    for p in entries:
        sources += [s for s in (p.sources or [p.source]) if s not in sources]
        affiliations += [a for a in p.affiliations if a not in affiliations]
    code = [p.code_available for p in entries if p.code_available is not None]
    return first.model_copy(
        update={
            "authors": list(best_authors.authors),
            "authors_truncated": best_authors.authors_truncated,
            "n_authors": first_set("n_authors"),
            "abstract": max((p.abstract for p in entries), key=lambda a: len(a.strip())),
            "year": date_src.year if date_src.year is not None else first_set("year"),
            "date": date_src.date,
            "category": first_set("category"),
            "kind": kind,
            "venue": first_set("venue"),
            "upvotes": first_set("upvotes"),
            "doi": first_set("doi"),
            "arxiv_id": first_set("arxiv_id"),
            "pmid": first_set("pmid"),
            "url": first_set("url"),
            "keywords": list(dict.fromkeys(k for p in entries for k in p.keywords)),
            "code_available": any(code) if code else None,
            "affiliations": affiliations,
            "sources": sources,
            "extra": extra,
        }
    )


def _combine(
    results: list[ParseResult], problems: list[SourceError]
) -> tuple[list[Paper], dict[str, list[str]]]:
    """Merge entries into papers, keeping the order of first appearance and ids unique."""
    clusters: dict[str, list[list[Paper]]] = {}
    order: list[tuple[str, int]] = []
    explicit_at: dict[str, str] = {}
    for result in results:
        for p in result.papers:
            if p.id != paper_id(p.title):  # explicit id (BEIR _id, JSON "id"): never merged or renamed
                if p.id in clusters or p.id in explicit_at:
                    problems.append(
                        SourceError(
                            result.path,
                            f"duplicate id {p.id!r} (already used by "
                            f"{explicit_at.get(p.id) or 'another paper'}); "
                            "give each paper a unique id.",
                            line=p.line,
                        )
                    )
                    continue
                explicit_at[p.id] = f"{p.source}:{p.line}"
                clusters[p.id] = [[p]]
                order.append((p.id, 0))
                continue
            groups = clusters.setdefault(p.id, [])
            for group in groups:
                if same_paper(group[0], p):
                    group.append(p)
                    break
            else:
                groups.append([p])
                order.append((p.id, len(groups) - 1))
    used = set(clusters)
    groups = [clusters[pid][n] for pid, n in order]
    joined = link(groups, [pid in explicit_at for pid, _ in order])
    papers: list[Paper] = []
    merged: dict[str, list[str]] = {}
    for members in joined:
        pid, n = order[members[0]]
        group = [p for i in members for p in groups[i]]
        paper = merge(group)
        if n > 0:
            k = n + 1
            while f"{pid}-{k}" in used:
                k += 1
            used.add(f"{pid}-{k}")
            paper = paper.model_copy(update={"id": f"{pid}-{k}"})
            logger.info(
                "two different papers share the id %r; %s:%s gets %r", pid, paper.source, paper.line, paper.id
            )
        if len(group) > 1:
            merged[paper.id] = [f"{p.source}:{p.line}" for p in group]
        papers.append(paper)
    return papers, merged


def load_corpus_report(
    paths: PathsArg = None, *, strict: bool = False, settings: Settings | None = None
) -> CorpusReport:
    """Parse every source and return papers, problems and per-file counts.

    Raises `CorpusError` when nothing loads, or (``strict`` / ``settings.corpus.strict``) on any problem.
    """
    settings = settings or Settings()
    strict = strict or settings.corpus.strict
    problems: list[SourceError] = []
    try:
        files = expand_paths(_as_paths(paths, settings))
    except SourceError as exc:
        raise CorpusError("cannot load the corpus", [exc]) from exc

    # Read and detect everything first, so the listing parser can use author names from other pages.
    texts: dict[Path, str] = {}
    reports: dict[Path, FileReport] = {}
    library: dict[Path, str] = {}  # reference-library files: read record by record, never whole
    for f in files:
        reports[f] = FileReport(path=str(f), name=f.name, format=None)
        try:
            head = read_head(f)
            reports[f].format = detect_library_format(head) if head.strip() else None
            if reports[f].format:
                library[f] = head
                continue
            texts[f] = read_text(f)
            reports[f].format = _detect(texts[f])
        except SourceError as exc:
            problems.append(exc)
            reports[f].problems += 1
    order = sorted([*texts, *library], key=lambda f: reports[f].format == "listing")
    parsed: dict[Path, ParseResult] = {}
    names: set[str] = set()
    for f in order:
        try:
            if f in library:
                parsed[f] = parse_library_file(f, str(reports[f].format), library[f])
            else:
                parsed[f] = parse_file(f, known_names=names, text=texts[f])
        except SourceError as exc:
            problems.append(exc)
            reports[f].problems += 1
            continue
        if parsed[f].format not in NAMELESS_FORMATS:
            reports[f].gives_names = True
            names.update(n for p in parsed[f].papers for n in p.authors)
    results = [parsed[f] for f in files if f in parsed]
    for r in results:
        rep = reports[r.path]
        rep.entries, rep.skipped = len(r.papers) + len(r.problems), list(r.skipped)
        rep.problems += len(r.problems)
        problems.extend(r.problems)
    n_before = len(problems)
    papers, merged = _combine(results, problems)
    for extra_problem in problems[n_before:]:
        for rep in reports.values():
            if rep.path == extra_problem.path:
                rep.problems += 1
    # Report problems in file order, then line order.
    index = {str(f): i for i, f in enumerate(files)}
    problems.sort(key=lambda p: (index.get(p.path, len(index)), p.line or 0))
    for p in problems:
        logger.warning("%s", p)
    entries = [p for r in results for p in r.papers]
    report = CorpusReport(
        papers=papers, problems=problems, files=[reports[f] for f in files], merged=merged, entries=entries
    )
    where = ", ".join(str(p) for p in _as_paths(paths, settings))
    if strict and problems:
        raise CorpusError(f"{len(problems)} problem(s) while loading {where} (strict mode):", problems)
    if not papers:
        raise CorpusError(
            f"no papers could be loaded from {where}; fix the problems below or pass other paths.", problems
        )
    return report


def load_corpus(
    paths: PathsArg = None, *, strict: bool = False, settings: Settings | None = None
) -> list[Paper]:
    """All papers from the sources (default: ``settings.corpus.paths``, i.e. the project's ``seeds/``)."""
    return load_corpus_report(paths, strict=strict, settings=settings).papers


def detect_format(path: str | Path) -> str | None:
    """Format name of a file, detected from its content (None when unknown)."""
    return _detect(read_text(Path(path)))
