"""Filters written in the question: "papers by Flammarion since 2022", "what did Jacot publish in 2019".

:func:`parse_query` recognises author, year, kind, category, affiliation, upvote and author-count filters in
a question. Author names (and affiliations, kinds, categories) are recognised only when the indexed corpus
has them (:class:`AuthorLexicon`), so "by the way" never becomes an author; the recognised phrases are
stripped from the text used for retrieval. Explicit filters and matching live in :mod:`rag.filters`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rag.errors import QueryError
from rag.filters import affiliation_key, author_count, authors_of, check_years, clean_text, name_tokens
from rag.query_metadata import find_affiliations, find_counts, find_several_sources
from rag.types import Filters, Paper, fold
from rag.word_counts import count

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
    institution institutions involve involves involving receive received receives get gets together
    jointly joint""".split()
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
    def from_papers(
        cls, papers: Iterable[Paper], word_counts: Callable[[], Mapping[str, int]] | None = None
    ) -> AuthorLexicon:
        """The lexicon of ``papers``. ``common`` holds only the words it is asked about: family names and
        one-word affiliations that also occur at least twice in the titles and abstracts. ``word_counts``
        gives those counts (:mod:`rag.word_counts`; asked for only when the corpus has such names); without
        it, ``papers`` is kept in a list and counted."""
        if word_counts is None:
            papers = list(papers)
            kept = papers
            word_counts = lambda: count(p.title + " " + p.abstract for p in kept)  # noqa: E731
        full: dict[tuple[str, ...], str] = {}
        family: dict[tuple[str, ...], str] = {}
        kinds: dict[str, str] = {}
        cats: dict[str, str] = {}
        affs: dict[str, str] = {}
        has_years = has_upvotes = has_counts = False
        for p in papers:
            has_years = has_years or p.year is not None
            has_upvotes = has_upvotes or p.upvotes is not None
            has_counts = has_counts or author_count(p) is not None
            for a in p.affiliations:
                key = affiliation_key(a)
                if len(key) >= 3:
                    affs.setdefault(key, a)
            for name in authors_of(p):
                toks = name_tokens(name)
                if len(toks) >= 2:
                    full.setdefault(toks, name.strip())
                    fam = toks[-1:]
                    if len(toks) >= 3 and toks[-2] in _PARTICLES:
                        fam = toks[-2:]
                    if len(fam[-1]) >= 3:
                        family.setdefault(fam, fam_display(name, len(fam)))
            if p.kind and fold(p.kind) != "paper":
                kinds[fold(p.kind)] = p.kind
            if p.category:
                cats[fold(p.category)] = p.category
        asked = {fam[-1] for fam in family} | {key for key in affs if " " not in key}
        counts = word_counts() if asked else {}
        common = {w for w in asked if counts.get(w, 0) >= 2}
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
        singular = key in words and bool(words & {"every", "each", "contributed"})  # "every poster"
        if key + "s" in words or (key in ("oral", "poster") and singular):
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


_AND_ONLY = re.compile(r"\s*(?:,\s*)?(?:and|&)\s*(?:by\s+)?$|\s*,\s*$", re.I)


def _joined_by_and(query: str, found: list[tuple[int, int, str]]) -> bool:
    """Whether the names were joined by "and" ("co-authored by Croce and Flammarion"): joint work is asked
    for. "or"/"either" anywhere between them, or any other words, keep the any-of reading."""
    gaps = [query[a[1] : b[0]] for a, b in zip(found, found[1:], strict=False)]
    return (
        bool(gaps)
        and all(_AND_ONLY.fullmatch(g) for g in gaps)
        and any(re.search(r"\band\b|&", g, re.I) for g in gaps)
    )


def is_listing(text: str) -> bool:
    """True when ``text`` holds only generic words (so a filter alone says what is wanted)."""
    words = [fold(w) for w in _WORD.findall(text)]
    return all(w in _GENERIC or w.replace("-", "") in _GENERIC for w in words)


def parse_query(query: str, lexicon: AuthorLexicon) -> ParsedQuery:
    """Filters written in ``query`` (authors of the corpus, years, kinds, categories) and the rest of it."""
    spans: list[tuple[int, int]] = []
    phrases: list[str] = []
    authors: list[str] = []
    found = _find_authors(query, lexicon)
    for start, end, name in found:
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
    affiliations, aff_spans = find_affiliations(query, lexicon)
    upvotes, n_lo, n_hi, count_spans = find_counts(query, lexicon)
    n_sources, source_spans = find_several_sources(query)
    for s, e in [*aff_spans, *count_spans, *source_spans]:
        if not any(a < e and s < b for a, b in spans):
            spans.append((s, e))
            phrases.append(query[s:e])
    kinds = _find_kinds(query, lexicon)
    categories = _find_categories(query, lexicon)
    try:
        lo, hi = check_years(lo, hi)
    except QueryError:
        raise QueryError(
            f"The question asks for an impossible year range ({lo}–{hi}): nothing can match it."
        ) from None
    filters = Filters(
        authors=authors,
        authors_together=len(authors) > 1 and _joined_by_and(query, found),
        year_min=lo,
        year_max=hi,
        kinds=kinds,
        categories=categories,
        affiliations=affiliations,
        upvotes_min=upvotes,
        n_authors_min=n_lo,
        n_authors_max=n_hi,
        sources_min=n_sources,
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
