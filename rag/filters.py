"""Metadata filters: coercing what callers pass, reading filters written in the question, matching papers.

Three jobs, all pure Python over :class:`rag.types.Paper` records (no model, no store):

* :func:`coerce_filters` turns a :class:`Filters`, a dict (``{"author": "Jacot", "year": "2019-2021"}``) or
  ``None`` into a validated :class:`Filters`; unknown names and impossible ranges raise :class:`QueryError`.
* :func:`parse_query` recognises author, year, kind and category filters written in the question ("papers by
  Flammarion since 2022", "what did Jacot publish in 2019", "which posters …", "… in the CR category").
  Author names are recognised only when they name an author of the indexed corpus, so "by the way" never
  becomes an author; the recognised phrases are stripped from the text used for retrieval.
* :class:`PaperFilter` matches papers against a :class:`Filters` (authors by full or family name, accent- and
  case-insensitive; a profile page's owner counts as an author of every paper on it), and says which part
  of a filter matched nothing.
"""

from __future__ import annotations

import re
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
)
YEAR_LO, YEAR_HI = 1000, 2999
_PARTICLES = {
    "van",
    "von",
    "de",
    "der",
    "den",
    "di",
    "da",
    "du",
    "del",
    "della",
    "le",
    "la",
    "dos",
    "das",
    "ter",
}
# Words that never carry the topic of a question about papers: what is left after removing them (and
# the recognised filter phrases) decides whether the question is a pure listing ("what did Jacot
# publish in 2019").
_GENERIC = set(
    """a an and are as at be been but by can could did do does done for from had has have he her his how i
    if in into is it its me my no not of on or our she should such that the their them then there
    these they this those to was we were what when where which who whom whose why will with would
    you your all any each every some many much more most other others also only just than so very
    list lists listed show give tell find me please paper papers work works article articles
    publication publications publish published publishing wrote write writes written author authors
    authored co coauthor coauthored co-author co-authored coauthors co-authors appear appeared
    appears present presented presents release released entry entries corpus index indexed
    collection year years recent recently latest new newest old older oldest since after before
    until till between during about title titles abstract abstracts research researcher researchers
    study studies contribution contributions output got get workshop workshops conference
    conferences venue session sessions page pages profile given give affiliation affiliations affiliated
    institution institutions involve involves involving receive received receives get gets""".split()
)
GENERIC_WORDS = frozenset(_GENERIC)
"""Words that never carry a question's topic (used by retrieval's term coverage too)."""
_TRIGGERS = {
    "by",
    "from",
    "of",
    "did",
    "does",
    "has",
    "have",
    "had",
    "author",
    "authors",
    "authored",
    "coauthored",
    "co-authored",
    "with",
    "and",
    "or",
    "&",
}
_Y = r"((?:1[89]|20|21)\d\d)"
_YEAR_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?:between|from)\s+{_Y}\s*(?:and|to|until|till|through|-|–|—)\s*{_Y}\b", re.I), "range"),
    (re.compile(rf"\b(?:in|during|from)\s+{_Y}\s*(?:or|and|,)\s*{_Y}\b", re.I), "range"),
    (re.compile(rf"\b(?:in\s+)?{_Y}\s*(?:-|–|—|to)\s*{_Y}\b", re.I), "range"),
    (re.compile(rf"\b(?:since|starting(?:\s+in|\s+from)?)\s+{_Y}\b", re.I), "since"),
    (
        re.compile(
            rf"\b(?:from\s+|in\s+)?{_Y}\s+(?:(?:or|and)\s+(?:later|after|newer)|on(?:wards?)?)\b", re.I
        ),
        "since",
    ),
    (re.compile(rf"\b{_Y}\s+(?:or|and)\s+(?:earlier|before|older)\b", re.I), "upto"),
    (re.compile(rf"\b(?:after|newer\s+than|later\s+than|more\s+recent\s+than)\s+{_Y}\b", re.I), "after"),
    (re.compile(rf"\b(?:before|older\s+than|earlier\s+than|prior\s+to)\s+{_Y}\b", re.I), "before"),
    (re.compile(rf"\b(?:until|till|up\s+to|through|no\s+later\s+than)\s+{_Y}\b", re.I), "upto"),
    (re.compile(rf"\b(?:in|from|during|of|year)\s+{_Y}\b", re.I), "exact"),
]
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)


# ----------------------------------------------------------------------------------------------- coercion
def parse_year(value: Any) -> tuple[int | None, int | None]:
    """``2019``, ``"2019"``, ``"2019-2021"``, ``"2019-"`` or ``"-2021"`` → ``(year_min, year_max)``."""
    if isinstance(value, bool):
        raise QueryError(f"Year filter {value!r} is not a year: use YYYY, YYYY-YYYY, YYYY- or -YYYY.")
    if isinstance(value, int):
        return _check_years(value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo = _year_or_none(value[0])
        hi = _year_or_none(value[1])
        return _check_years(lo, hi)
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})?\s*(?:(-|–|\.\.)\s*(\d{4})?)?", text)
    if not text or not m or (m.group(1) is None and m.group(3) is None):
        raise QueryError(f"Year filter {value!r} is not understood: use YYYY, YYYY-YYYY, YYYY- or -YYYY.")
    lo = int(m.group(1)) if m.group(1) else None
    if m.group(2):
        hi = int(m.group(3)) if m.group(3) else None
    else:
        hi = lo
    return _check_years(lo, hi)


def _year_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"Year {value!r} is not a year: give a four-digit year.") from exc


def _check_years(lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
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
        _check_years(value.year_min, value.year_max)
        return value
    if not isinstance(value, Mapping):
        raise QueryError(f"Filters must be a rag.Filters or a dict, not {type(value).__name__}.")
    unknown = sorted(str(k) for k in value if k not in FILTER_NAMES)
    if unknown:
        raise QueryError(
            f"Unknown filter name(s): {', '.join(unknown)}. Known: author, year, year_min, year_max, "
            "source, category, kind, affiliation (plural forms too), upvotes_min, n_authors, "
            "n_authors_min, n_authors_max."
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
    lo, hi = _check_years(lo, hi)

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
    upvotes = value.get("upvotes_min")
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
        year_min=explicit.year_min if years_given else parsed.year_min,
        year_max=explicit.year_max if years_given else parsed.year_max,
        sources=explicit.sources or parsed.sources,
        categories=explicit.categories or parsed.categories,
        kinds=explicit.kinds or parsed.kinds,
        affiliations=explicit.affiliations or parsed.affiliations,
        upvotes_min=explicit.upvotes_min if explicit.upvotes_min is not None else parsed.upvotes_min,
        n_authors_min=explicit.n_authors_min if counts_given else parsed.n_authors_min,
        n_authors_max=explicit.n_authors_max if counts_given else parsed.n_authors_max,
    )


def clean_text(text: str) -> str:
    """Control characters (other than whitespace) removed, whitespace collapsed."""
    text = "".join(c if c.isprintable() or c.isspace() else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()


# ------------------------------------------------------------------------------------------- matching
def _name_tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[\s.\-,]+", fold(name)) if t)


def _authors_of(paper: Paper) -> list[str]:
    names = list(paper.authors)
    profile = paper.extra.get("profile") if paper.extra else None
    if isinstance(profile, str) and profile.strip():
        names.append(profile)
    return names


def _affiliation_key(name: str) -> str:
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
        authors = {pid: [_name_tokens(a) for a in _authors_of(p)] for pid, p in papers.items()}
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
        if filters.authors:
            wanted = [_name_tokens(a) for a in filters.authors]
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
            affs = {_affiliation_key(a) for a in filters.affiliations}
            out.append(
                (
                    "affiliation " + " or ".join(filters.affiliations),
                    lambda p: any(_affiliation_key(a) in affs for a in p.affiliations),
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


# ---------------------------------------------------------------------------------- query recognition
@dataclass
class ParsedQuery:
    """What :func:`parse_query` read from a question."""

    text: str
    """The text to retrieve with: the question minus the recognised filter phrases."""
    filters: Filters = field(default_factory=Filters)
    phrases: list[str] = field(default_factory=list)
    listing: bool = False
    """Nothing but filters and generic words is left ("what did Jacot publish in 2019")."""


@dataclass
class AuthorLexicon:
    """Author names of a corpus, for recognising them in questions."""

    full: dict[tuple[str, ...], str]
    family: dict[tuple[str, ...], str]
    common: set[str]
    kinds: dict[str, str]
    categories: dict[str, str]
    has_years: bool = True
    """Some paper has a year: only then are years in a question read as a filter."""
    affiliations: dict[str, str] = field(default_factory=dict)
    """Affiliation key ('eth zurich') → the corpus's spelling ('eth-zurich')."""
    has_upvotes: bool = False
    has_author_counts: bool = False

    @classmethod
    def from_papers(cls, papers: Iterable[Paper]) -> AuthorLexicon:
        full: dict[tuple[str, ...], str] = {}
        family: dict[tuple[str, ...], str] = {}
        vocab: dict[str, int] = {}
        kinds: dict[str, str] = {}
        cats: dict[str, str] = {}
        affs: dict[str, str] = {}
        has_years = has_upvotes = has_counts = False
        for p in papers:
            has_years = has_years or p.year is not None
            has_upvotes = has_upvotes or p.upvotes is not None
            has_counts = has_counts or author_count(p) is not None
            for a in p.affiliations:
                key = _affiliation_key(a)
                if len(key) >= 3:
                    affs.setdefault(key, a)
            for name in _authors_of(p):
                toks = _name_tokens(name)
                if len(toks) >= 2:
                    full.setdefault(toks, name.strip())
                    fam = toks[-1:]
                    if len(toks) >= 3 and toks[-2] in _PARTICLES:
                        fam = toks[-2:]
                    if len(fam[-1]) >= 3:
                        family.setdefault(fam, fam_display(name, len(fam)))
            for w in re.findall(r"[a-z]+", fold(p.title + " " + p.abstract)):
                vocab[w] = vocab.get(w, 0) + 1
            if p.kind and fold(p.kind) != "paper":
                kinds[fold(p.kind)] = p.kind
            if p.category:
                cats[fold(p.category)] = p.category
        common = {w for w, n in vocab.items() if n >= 2}
        return cls(full, family, common, kinds, cats, has_years, affs, has_upvotes, has_counts)


def fam_display(name: str, n: int) -> str:
    return " ".join(name.split()[-n:])


@dataclass
class _Tok:
    text: str
    folded: str
    start: int
    end: int


def _tokens(text: str) -> list[_Tok]:
    out = []
    for m in _WORD.finditer(text):
        raw = m.group(0)
        end = m.end()
        folded = fold(raw)
        for suffix in ("'s", "’s"):
            if folded.endswith(suffix):
                folded = folded[: -len(suffix)]
        out.append(_Tok(raw, folded, m.start(), end))
    return out


def _find_authors(text: str, lex: AuthorLexicon) -> list[tuple[int, int, str]]:
    """(start, end, name) of author names in ``text``: full names always, family names in context."""
    toks = _tokens(text)
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(toks):
        hit: tuple[int, str] | None = None
        for n in (4, 3, 2):
            seq = tuple(t.folded for t in toks[i : i + n])
            if len(seq) == n and seq in lex.full:
                hit = (n, lex.full[seq])
                break
        if hit is None:
            for n in (2, 1):
                seq = tuple(t.folded for t in toks[i : i + n])
                if len(seq) != n or seq not in lex.family:
                    continue
                tok = toks[i]
                prev = toks[i - 1].folded if i else ""
                nxt = text[toks[i + n - 1].end : toks[i + n - 1].end + 8].lower()
                possessive = toks[i + n - 1].text.lower().endswith(("'s", "’s"))
                context = prev in _TRIGGERS or possessive or nxt.lstrip().startswith("et al")
                capitalised = tok.text[:1].isupper()
                plain_word = seq[-1] in lex.common or seq[-1] in _GENERIC
                titlecase = capitalised and not tok.text.isupper()
                if (context and (capitalised or not plain_word)) or (titlecase and not plain_word and i > 0):
                    hit = (n, lex.family[seq])
                    break
        if hit is None:
            i += 1
            continue
        n, name = hit
        found.append((toks[i].start, toks[i + n - 1].end, name))
        i += n
    return found


def _find_years(text: str) -> tuple[int | None, int | None, list[tuple[int, int]]]:
    lo: int | None = None
    hi: int | None = None
    spans: list[tuple[int, int]] = []
    taken = [False] * (len(text) + 1)
    for pattern, how in _YEAR_PATTERNS:
        for m in pattern.finditer(text):
            if any(taken[m.start() : m.end()]):
                continue
            years = [int(g) for g in m.groups() if g]
            if not years:
                continue
            a = years[0]
            if how == "range":
                rng: tuple[int | None, int | None] = (min(years), max(years))
            elif how in ("since", "from"):
                rng = (a, None)
            elif how == "after":
                rng = (a + 1, None)
            elif how == "before":
                rng = (None, a - 1)
            elif how == "upto":
                rng = (None, a)
            else:
                rng = (a, a)
            if rng[0] is not None:
                lo = rng[0] if lo is None else max(lo, rng[0])
            if rng[1] is not None:
                hi = rng[1] if hi is None else min(hi, rng[1])
            spans.append((m.start(), m.end()))
            for j in range(m.start(), m.end()):
                taken[j] = True
    return lo, hi, spans


def _find_kinds(text: str, lex: AuthorLexicon) -> list[str]:
    words = {t.folded for t in _tokens(text)}
    found = []
    for key, kind in lex.kinds.items():
        if key + "s" in words or (key in ("oral", "poster") and key in words and "contributed" in words):
            found.append(kind)
    return found


def _find_categories(text: str, lex: AuthorLexicon) -> list[str]:
    if not re.search(r"\b(categor\w*|subject|arxiv class\w*)\b", text, re.I):
        return []
    found = []
    for m in re.finditer(r"\b[A-Z][A-Z.\-]{1,7}\b", text):
        key = fold(m.group(0))
        if key in lex.categories and lex.categories[key] not in found:
            found.append(lex.categories[key])
    return found


_NUMBER_WORDS = {
    w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())
}
_N = r"(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
_UPVOTE = r"up-?votes?"
_AUTHOR = r"(?:co-?)?authors?"
_COUNT_PATTERNS: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(rf"\b(?:at\s+least|no\s+fewer\s+than|a\s+minimum\s+of|>=|≥)\s*{_N}\s+{_UPVOTE}\b", re.I),
        "up",
        "min",
    ),
    (re.compile(rf"\b(?:more\s+than|over|above|>)\s*{_N}\s+{_UPVOTE}\b", re.I), "up", "gt"),
    (re.compile(rf"\b{_N}\s*(?:\+|or\s+more)\s+{_UPVOTE}\b", re.I), "up", "min"),
    (re.compile(rf"\b{_N}\s+{_UPVOTE}\s+or\s+more\b", re.I), "up", "min"),
    (
        re.compile(rf"\b(?:(?:a|one|only\s+one)\s+)?(?:single|sole|solo|lone)[\s-]+{_AUTHOR}(?:ed)?\b", re.I),
        "n",
        "one",
    ),
    (re.compile(r"\bsingle-authored\b|\bsolo\s+papers?\b", re.I), "n", "one"),
    (re.compile(rf"\b(?:at\s+least|no\s+fewer\s+than)\s+{_N}\s+{_AUTHOR}\b", re.I), "n", "min"),
    (re.compile(rf"\b(?:more\s+than|over)\s+{_N}\s+{_AUTHOR}\b", re.I), "n", "gt"),
    (re.compile(rf"\b(?:at\s+most|no\s+more\s+than|up\s+to)\s+{_N}\s+{_AUTHOR}\b", re.I), "n", "max"),
    (re.compile(rf"\b(?:fewer|less)\s+than\s+{_N}\s+{_AUTHOR}\b", re.I), "n", "lt"),
    (re.compile(rf"\b{_N}\s*(?:\+|or\s+more)\s+{_AUTHOR}\b", re.I), "n", "min"),
    (re.compile(r"\b(?:only\s+|just\s+|exactly\s+)?one\s+author\b", re.I), "n", "one"),
    (
        re.compile(
            rf"\b(?:with|have|has|had|having|by)\s+(?:only\s+|just\s+|exactly\s+)?{_N}\s+{_AUTHOR}\b", re.I
        ),
        "n",
        "eq",
    ),
]


def _number(text: str) -> int:
    t = text.lower()
    return _NUMBER_WORDS[t] if t in _NUMBER_WORDS else int(t)


def _find_counts(
    text: str, lex: AuthorLexicon
) -> tuple[int | None, int | None, int | None, list[tuple[int, int]]]:
    """(upvotes_min, n_authors_min, n_authors_max, spans) from phrases like "at least 3 upvotes",
    "a single author", "more than 5 authors" — each only when some paper of the corpus has that field."""
    up: int | None = None
    lo: int | None = None
    hi: int | None = None
    spans: list[tuple[int, int]] = []
    for pattern, what, how in _COUNT_PATTERNS:
        if (what == "up" and not lex.has_upvotes) or (what == "n" and not lex.has_author_counts):
            continue
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in spans):
                continue
            n = 1 if how == "one" else _number(m.group(1))
            if what == "up":
                up = n + 1 if how == "gt" else n
            elif how in ("one", "eq"):
                lo = hi = n
            elif how in ("min", "gt"):
                lo = n + 1 if how == "gt" else n
            else:
                hi = n - 1 if how == "lt" else n
            spans.append((m.start(), m.end()))
    return up, lo, hi, spans


def _find_affiliations(text: str, lex: AuthorLexicon) -> tuple[list[str], list[tuple[int, int]]]:
    """Affiliations of the corpus named in ``text`` ("ETH Zurich" for 'eth-zurich'), with their spans.

    A one-word affiliation that is also an ordinary word of the corpus needs a cue before it
    ("from", "at", "affiliated with")."""
    if not lex.affiliations:
        return [], []
    flat = "".join((fold(c) or c)[0] for c in text)  # same length as text
    found: list[str] = []
    spans: list[tuple[int, int]] = []
    for key in sorted(lex.affiliations, key=len, reverse=True):
        pattern = r"\b" + r"[\s\-_]+".join(map(re.escape, key.split())) + r"\b"
        for m in re.finditer(pattern, flat):
            if any(a < m.end() and m.start() < b for a, b in spans):
                continue
            cue = re.search(r"\b(?:from|at|with|of)\s+(?:the\s+)?$", flat[: m.start()])
            if " " not in key and (key in lex.common or key in _GENERIC) and not cue:
                continue
            s = m.start()
            before = re.search(
                r"\b(?:(?:authors?|researchers?)\s+)?(?:from|at|affiliated\s+with)\s+(?:the\s+)?$", flat[:s]
            )
            if before:
                s = before.start()
            e = m.end()
            after = re.match(r"\s+as\s+(?:an?\s+|their\s+)?affiliations?\b", flat[e:])
            if after:
                e += after.end()
            spans.append((s, e))
            if lex.affiliations[key] not in found:
                found.append(lex.affiliations[key])
    return found, spans


def _strip(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without ``spans`` (and a trigger word right before an author span)."""
    keep = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        keep.append(text[pos:start])
        pos = end
    keep.append(text[pos:])
    out = "".join(keep)
    out = re.sub(
        r"\b(?:co-?authored by|authored by|written by|by|from)\s*(?=[?.!,;]|$)", " ", out, flags=re.I
    )
    return clean_text(re.sub(r"\s+([?.!,;])", r"\1", out))


def is_listing(text: str) -> bool:
    """True when ``text`` holds only generic words (so a filter alone says what is wanted)."""
    words = [fold(w) for w in _WORD.findall(text)]
    return all(w in _GENERIC or w.replace("-", "") in _GENERIC for w in words)


def parse_query(query: str, lexicon: AuthorLexicon) -> ParsedQuery:
    """Filters written in ``query`` (authors of the corpus, years, kinds, categories) and the rest of it."""
    spans: list[tuple[int, int]] = []
    phrases: list[str] = []
    authors: list[str] = []
    for start, end, name in _find_authors(query, lexicon):
        # take a trigger word right before the name with it ("by Jacot", "authored by Jacot")
        before = query[:start]
        m = re.search(r"(?:\b(?:co-?authored|authored|written)\s+)?\b(?:by|from|of)\s+$", before, re.I)
        s = m.start() if m else start
        tail = re.match(r"\s*(?:et\s+al\.?|and\s+(?:co-?authors|colleagues))", query[end:], re.I)
        end = end + tail.end() if tail else end
        spans.append((s, end))
        phrases.append(query[s:end])
        if name not in authors:
            authors.append(name)
    lo, hi, year_spans = _find_years(query) if lexicon.has_years else (None, None, [])
    for s, e in year_spans:
        if not any(a <= s < b for a, b in spans):
            spans.append((s, e))
            phrases.append(query[s:e])
    affiliations, aff_spans = _find_affiliations(query, lexicon)
    upvotes, n_lo, n_hi, count_spans = _find_counts(query, lexicon)
    for s, e in [*aff_spans, *count_spans]:
        if not any(a < e and s < b for a, b in spans):
            spans.append((s, e))
            phrases.append(query[s:e])
    kinds = _find_kinds(query, lexicon)
    categories = _find_categories(query, lexicon)
    try:
        lo, hi = _check_years(lo, hi)
    except QueryError:
        raise QueryError(
            f"The question asks for an impossible year range ({lo}–{hi}): nothing can match it."
        ) from None
    filters = Filters(
        authors=authors,
        year_min=lo,
        year_max=hi,
        kinds=kinds,
        categories=categories,
        affiliations=affiliations,
        upvotes_min=upvotes,
        n_authors_min=n_lo,
        n_authors_max=n_hi,
    )
    rest = _strip(query, spans) if spans else clean_text(query)
    if kinds or categories:
        for word in [*(k + "s" for k in map(fold, kinds)), *map(fold, kinds), *categories]:
            rest = re.sub(rf"\b{re.escape(word)}\b", " ", rest, flags=re.I)
        rest = re.sub(r"\(\s*\)", " ", rest)
        rest = re.sub(r"\b(in|under)\s+the\s+.{0,40}?\bcategor(y|ies)\b", " ", rest, flags=re.I)
        rest = re.sub(r"\bcategor(y|ies|ised|ized)\b", " ", rest, flags=re.I)
        rest = clean_text(rest)
    listing = not filters.is_empty() and is_listing(rest)
    return ParsedQuery(text=rest or clean_text(query), filters=filters, phrases=phrases, listing=listing)
