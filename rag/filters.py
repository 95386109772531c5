"""Metadata filters given explicitly: coercing what callers pass, and matching papers.

Two jobs, pure Python over :class:`rag.types.Paper` records (no model, no store); filters written in the
question itself are read by :mod:`rag.query_filters`:

* :func:`coerce_filters` turns a :class:`Filters`, a dict (``{"author": "Jacot", "year": "2019-2021"}``) or
  ``None`` into a validated :class:`Filters`; unknown names and impossible ranges raise :class:`QueryError`.
  :func:`merge_filters` combines explicit and question filters (explicit ones win field by field).
* The matching rules for one paper's names and affiliations (:func:`name_matches`, :func:`authors_of`,
  :func:`affiliation_key`, :func:`author_count`), which :class:`rag.filter_index.PaperFilter` applies to
  every paper at once over the corpus's metadata columns.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
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
@functools.lru_cache(maxsize=1 << 18)
def name_tokens(name: str) -> tuple[str, ...]:
    """A name's folded tokens ('Clément Hongler' → ('clement', 'hongler')). Cached: the same authors recur
    across papers, and every index run that changes the records tokenises every author (rag.records)."""
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


def name_matches(wanted: tuple[str, ...], author: tuple[str, ...]) -> bool:
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
