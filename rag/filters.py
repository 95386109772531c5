"""Metadata filters given explicitly: coercing what callers pass, and matching papers.

Two jobs, pure Python over :class:`rag.types.Paper` records (no model, no store); filters written in the
question itself are read by :mod:`rag.query_filters`:

* :func:`coerce_filters` turns a :class:`Filters`, a dict (``{"author": "Jacot", "year": "2019-2021"}``) or
  ``None`` into a validated :class:`Filters`; unknown names and impossible ranges raise :class:`QueryError`.
  :func:`merge_filters` combines explicit and question filters (explicit ones win field by field).
* :class:`PaperFilter` matches papers against a :class:`Filters` (authors by full or family name, accent- and
  case-insensitive; a profile page's owner counts as an author of every paper on it), and says which part
  of a filter matched nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rag.errors import QueryError
from rag.types import Filters, Paper, fold

FILTER_NAMES = (
    "author",
    "authors",
    "year",
    "year_min",
    "year_max",
    "source",
    "sources",
    "category",
    "categories",
    "kind",
    "kinds",
    "affiliation",
    "affiliations",
    "upvotes_min",
    "n_authors",
    "n_authors_min",
    "n_authors_max",
    "sources_min",
)
YEAR_LO, YEAR_HI = 1000, 2999


# ----------------------------------------------------------------------------------------------- coercion
def parse_year(value: Any) -> tuple[int | None, int | None]:
    """``2019``, ``"2019"``, ``"2019-2021"``, ``"2019-"`` or ``"-2021"`` → ``(year_min, year_max)``."""
    if isinstance(value, bool):
        raise QueryError(f"Year filter {value!r} is not a year: use YYYY, YYYY-YYYY, YYYY- or -YYYY.")
    if isinstance(value, int):
        return check_years(value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo = _year_or_none(value[0])
        hi = _year_or_none(value[1])
        return check_years(lo, hi)
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})?\s*(?:(-|–|\.\.)\s*(\d{4})?)?", text)
    if not text or not m or (m.group(1) is None and m.group(3) is None):
        raise QueryError(f"Year filter {value!r} is not understood: use YYYY, YYYY-YYYY, YYYY- or -YYYY.")
    lo = int(m.group(1)) if m.group(1) else None
    if m.group(2):
        hi = int(m.group(3)) if m.group(3) else None
    else:
        hi = lo
    return check_years(lo, hi)


def _year_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"Year {value!r} is not a year: give a four-digit year.") from exc


def check_years(lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
    for y in (lo, hi):
        if y is not None and not YEAR_LO <= y <= YEAR_HI:
            raise QueryError(f"Year {y} is out of range: give a four-digit year.")
    if lo is not None and hi is not None and lo > hi:
        raise QueryError(f"Impossible year range {lo}–{hi}: the first year must not be after the second.")
    return lo, hi


def _as_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise QueryError(f"Filter {name!r} wants a string or a list of strings, not {type(value).__name__}.")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise QueryError(f"Filter {name!r} wants strings, got {item!r}.")
        text = clean_text(item).strip()
        if text:
            out.append(text)
    return out


def coerce_filters(value: Filters | Mapping[str, Any] | None) -> Filters:
    """A validated :class:`Filters` from a ``Filters``, a dict of filter names, or ``None``.

    Dict keys: ``author``/``authors``, ``year`` (YYYY, YYYY-YYYY, YYYY-, -YYYY), ``year_min``, ``year_max``,
    ``source``/``sources``, ``category``/``categories``, ``kind``/``kinds``. Raises :class:`QueryError` for
    unknown names, values of the wrong type and impossible year ranges.
    """
    if value is None:
        return Filters()
    if isinstance(value, Filters):
        check_years(value.year_min, value.year_max)
        return value
    if not isinstance(value, Mapping):
        raise QueryError(f"Filters must be a rag.Filters or a dict, not {type(value).__name__}.")
    unknown = sorted(str(k) for k in value if k not in FILTER_NAMES)
    if unknown:
        raise QueryError(
            f"Unknown filter name(s): {', '.join(unknown)}. Known: author, year, year_min, year_max, "
            "source, category, kind, affiliation (plural forms too), upvotes_min, n_authors, "
            "n_authors_min, n_authors_max, sources_min."
        )
    lo = hi = None
    if value.get("year") not in (None, ""):
        lo, hi = parse_year(value["year"])
    if value.get("year_min") not in (None, ""):
        lo = (
            _year_or_none(value["year_min"])
            if lo is None
            else max(lo, _year_or_none(value["year_min"]) or lo)
        )
    if value.get("year_max") not in (None, ""):
        hi = (
            _year_or_none(value["year_max"])
            if hi is None
            else min(hi, _year_or_none(value["year_max"]) or hi)
        )
    lo, hi = check_years(lo, hi)

    def both(a: str, b: str) -> list[str]:
        return _as_list(value.get(a), a) + _as_list(value.get(b), b)

    n_lo = n_hi = None
    if value.get("n_authors") not in (None, ""):
        n_lo, n_hi = _count_range(value["n_authors"], "n_authors")
    if value.get("n_authors_min") not in (None, ""):
        n_lo = _count(value["n_authors_min"], "n_authors_min")
    if value.get("n_authors_max") not in (None, ""):
        n_hi = _count(value["n_authors_max"], "n_authors_max")
    if n_lo is not None and n_hi is not None and n_lo > n_hi:
        raise QueryError(f"Impossible author-count range {n_lo}–{n_hi}: the minimum is above the maximum.")
    upvotes, n_sources = value.get("upvotes_min"), value.get("sources_min")
    return Filters(
        authors=both("author", "authors"),
        year_min=lo,
        year_max=hi,
        sources=both("source", "sources"),
        categories=both("category", "categories"),
        kinds=both("kind", "kinds"),
        affiliations=both("affiliation", "affiliations"),
        upvotes_min=None if upvotes in (None, "") else _count(upvotes, "upvotes_min"),
        n_authors_min=n_lo,
        n_authors_max=n_hi,
        sources_min=None if n_sources in (None, "") else _count(n_sources, "sources_min"),
    )


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise QueryError(f"Filter {name!r} wants a whole number, not {value!r}.")
    try:
        n = int(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"Filter {name!r} wants a whole number, not {value!r}.") from exc
    if n < 0:
        raise QueryError(f"Filter {name!r} must not be negative ({n}).")
    return n


def _count_range(value: Any, name: str) -> tuple[int | None, int | None]:
    """``3`` → (3, 3); ``"2-5"``, ``"2-"``, ``"-5"`` → ranges (like years)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d*\s*-\s*\d*\s*", value) and value.strip() != "-":
        a, b = (x.strip() for x in value.split("-", 1))
        return (_count(a, name) if a else None, _count(b, name) if b else None)
    n = _count(value, name)
    return n, n


def merge_filters(explicit: Filters, parsed: Filters) -> Filters:
    """Explicit filters win field by field; the question's filters fill in the fields not given."""
    years_given = explicit.year_min is not None or explicit.year_max is not None
    counts_given = explicit.n_authors_min is not None or explicit.n_authors_max is not None
    return Filters(
        authors=explicit.authors or parsed.authors,
        authors_together=explicit.authors_together if explicit.authors else parsed.authors_together,
        year_min=explicit.year_min if years_given else parsed.year_min,
        year_max=explicit.year_max if years_given else parsed.year_max,
        sources=explicit.sources or parsed.sources,
        categories=explicit.categories or parsed.categories,
        kinds=explicit.kinds or parsed.kinds,
        affiliations=explicit.affiliations or parsed.affiliations,
        upvotes_min=explicit.upvotes_min if explicit.upvotes_min is not None else parsed.upvotes_min,
        n_authors_min=explicit.n_authors_min if counts_given else parsed.n_authors_min,
        n_authors_max=explicit.n_authors_max if counts_given else parsed.n_authors_max,
        sources_min=explicit.sources_min if explicit.sources_min is not None else parsed.sources_min,
    )


_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r\x85")
"""Control characters kept, as whitespace (Python's isspace also counts \\x1c-\\x1f: those are removed)."""


def clean_text(text: str) -> str:
    """Control and format characters (C0/C1 controls, zero-width spaces, soft hyphens; not whitespace)
    removed without splitting the word they sit in (``sharp\\x01ness`` → ``sharpness``); other
    unprintable characters become spaces; whitespace collapsed."""
    out = []
    for c in text:
        category = unicodedata.category(c)
        if c in _WHITESPACE_CONTROLS or (category != "Cc" and (c.isprintable() or c.isspace())):
            out.append(c)
        elif category not in ("Cc", "Cf"):
            out.append(" ")
    return re.sub(r"\s+", " ", "".join(out)).strip()


# ------------------------------------------------------------------------------------------- matching
def name_tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[\s.\-,]+", fold(name)) if t)


def authors_of(paper: Paper) -> list[str]:
    names = list(paper.authors)
    profile = paper.extra.get("profile") if paper.extra else None
    if isinstance(profile, str) and profile.strip():
        names.append(profile)
    return names


def affiliation_key(name: str) -> str:
    """'ETH Zurich', 'eth-zurich', 'ETH Zürich' → 'eth zurich'."""
    return " ".join(re.split(r"[\s_\-]+", fold(name))).strip()


def author_count(paper: Paper) -> int | None:
    """The paper's number of authors: the page's count, else the length of a complete author list."""
    if paper.n_authors is not None:
        return paper.n_authors
    if paper.authors and not paper.authors_truncated:
        return len(paper.authors)
    return None


def _name_matches(wanted: tuple[str, ...], author: tuple[str, ...]) -> bool:
    """Full name, family name (any trailing run of tokens) or initials + family name ("N. Flammarion")."""
    if not wanted or not author:
        return False
    n = len(wanted)
    if author[-n:] == wanted:
        return True
    if n >= 2 and author[-1] == wanted[-1] and len(author) >= 2:
        firsts = wanted[:-1]
        return all(len(f) == 1 for f in firsts) and firsts[0] == author[0][0]
    return False


@dataclass
class PaperFilter:
    """Matches papers against filters; built once per corpus (see :meth:`from_papers`)."""

    papers: Mapping[str, Paper]
    authors: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @classmethod
    def from_papers(cls, papers: Mapping[str, Paper]) -> PaperFilter:
        authors = {pid: [name_tokens(a) for a in authors_of(p)] for pid, p in papers.items()}
        kinds = {fold(p.kind): p.kind for p in papers.values() if p.kind}
        cats = {fold(p.category): p.category for p in papers.values() if p.category}
        sources = sorted({s for p in papers.values() for s in (p.sources or [p.source])})
        return cls(papers, authors, kinds, cats, sources)

    # single conditions ------------------------------------------------------------------------------
    def _author_ok(self, pid: str, wanted: list[tuple[str, ...]]) -> bool:
        return any(_name_matches(w, a) for w in wanted for a in self.authors.get(pid, []))

    @staticmethod
    def _source_ok(paper: Paper, wanted: list[str]) -> bool:
        have = [fold(s) for s in (paper.sources or [paper.source])]
        return any(h == w or h.startswith(w) or h.rsplit(".", 1)[0] == w for w in wanted for h in have)

    def conditions(self, filters: Filters) -> list[tuple[str, Any]]:
        """(description, predicate) for each non-empty part of ``filters``."""
        out: list[tuple[str, Any]] = []
        if filters.authors and filters.authors_together and len(filters.authors) > 1:
            each = [[name_tokens(a)] for a in filters.authors]
            out.append(
                (
                    "authors " + " and ".join(filters.authors),
                    lambda p: all(self._author_ok(p.id, w) for w in each),
                )
            )
        elif filters.authors:
            wanted = [name_tokens(a) for a in filters.authors]
            out.append(("author " + " or ".join(filters.authors), lambda p: self._author_ok(p.id, wanted)))
        lo, hi = filters.year_min, filters.year_max
        if lo is not None or hi is not None:
            desc = Filters(year_min=lo, year_max=hi).describe()
            out.append(
                (
                    desc,
                    lambda p: (
                        p.year is not None and (lo is None or p.year >= lo) and (hi is None or p.year <= hi)
                    ),
                )
            )
        if filters.sources:
            srcs = [fold(s) for s in filters.sources]
            out.append(("source " + " or ".join(filters.sources), lambda p: self._source_ok(p, srcs)))
        if filters.categories:
            cats = {fold(c) for c in filters.categories}
            out.append(
                (
                    "category " + " or ".join(filters.categories),
                    lambda p: p.category is not None and fold(p.category) in cats,
                )
            )
        if filters.kinds:
            kinds = {fold(k).rstrip("s") if fold(k) not in self.kinds else fold(k) for k in filters.kinds}
            kinds |= {fold(k) for k in filters.kinds}
            out.append(
                ("kind " + " or ".join(filters.kinds), lambda p: p.kind is not None and fold(p.kind) in kinds)
            )
        if filters.affiliations:
            affs = {affiliation_key(a) for a in filters.affiliations}
            out.append(
                (
                    "affiliation " + " or ".join(filters.affiliations),
                    lambda p: any(affiliation_key(a) in affs for a in p.affiliations),
                )
            )
        if filters.upvotes_min is not None:
            up = filters.upvotes_min
            out.append((f"upvotes ≥ {up}", lambda p: p.upvotes is not None and p.upvotes >= up))
        n_lo, n_hi = filters.n_authors_min, filters.n_authors_max
        if n_lo is not None or n_hi is not None:
            desc = Filters(n_authors_min=n_lo, n_authors_max=n_hi).describe()
            desc = desc.replace("authors:", "author count")

            def count_ok(p: Paper) -> bool:
                n = author_count(p)
                return n is not None and (n_lo is None or n >= n_lo) and (n_hi is None or n <= n_hi)

            out.append((desc, count_ok))
        if filters.sources_min is not None:
            n_src = filters.sources_min
            out.append((f"listed in ≥ {n_src} sources", lambda p: len(set(p.sources or [p.source])) >= n_src))
        return out

    def allowed(self, filters: Filters) -> set[str]:
        """Ids of the papers that pass every part of ``filters`` (all papers when it is empty)."""
        conds = [pred for _, pred in self.conditions(filters)]
        return {pid for pid, p in self.papers.items() if all(pred(p) for pred in conds)}

    def explain_empty(self, filters: Filters) -> str:
        """Why ``filters`` allows no paper: the parts that match nothing, or the combination."""
        conds = self.conditions(filters)
        counts = [(desc, sum(1 for p in self.papers.values() if pred(p))) for desc, pred in conds]
        empty = [desc for desc, n in counts if n == 0]
        if empty:
            return "No indexed paper matches " + "; ".join(empty) + "."
        parts = ", ".join(f"{desc} alone matches {n}" for desc, n in counts)
        return f"No indexed paper matches all of the filters together ({parts})."

    def chroma_where(self, filters: Filters) -> dict[str, Any] | None:
        """The exact-valued parts of ``filters`` (year, category, kind, source) as a Chroma ``where``."""
        parts: list[dict[str, Any]] = []
        if filters.year_min is not None:
            parts.append({"year": {"$gte": filters.year_min}})
        if filters.year_max is not None:
            parts.append({"year": {"$lte": filters.year_max}})
        if filters.categories:
            cats = [self.categories[fold(c)] for c in filters.categories if fold(c) in self.categories]
            parts.append({"category": {"$in": cats or ["\x00none"]}})
        if filters.kinds:
            kinds = [self.kinds[k] for k in (fold(x) for x in filters.kinds) if k in self.kinds]
            kinds += [
                self.kinds[k.rstrip("s")]
                for k in (fold(x) for x in filters.kinds)
                if k not in self.kinds and k.rstrip("s") in self.kinds
            ]
            parts.append({"kind": {"$in": kinds or ["\x00none"]}})
        if filters.sources and all(s in self.sources for s in filters.sources):
            parts.append({"source": {"$in": list(filters.sources)}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}
