"""Count and affiliation phrases in a question: "at least 3 upvotes", "a single author", "more than 5
authors", "papers from ETH Zurich". Read by :func:`rag.query_filters.parse_query`; each kind only when the
corpus has that field (:class:`~rag.query_filters.AuthorLexicon`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rag.types import fold

if TYPE_CHECKING:
    from rag.query_filters import AuthorLexicon

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


_SEVERAL_SOURCES = re.compile(
    rf"\b(?:appears?|appearing|listed|found|featured|shows?\s+up|are|is)\s+(?:on|in)\s+"
    rf"(?P<n>more\s+than\s+one|several|multiple|two\s+or\s+more|at\s+least\s+{_N}|both(?:\s+of\s+the)?)\s+"
    r"(?:\w+\s+)?(?:pages?|sources?|source\s+files?|files?|listings?|exports?|librar(?:y|ies))\b",
    re.I,
)
"""'Which papers appear on more than one seed page?', 'papers listed in several sources': merged papers."""


def find_several_sources(text: str) -> tuple[int | None, list[tuple[int, int]]]:
    """(sources_min, spans) from phrases like "appear on more than one page", "listed in both files"."""
    m = _SEVERAL_SOURCES.search(text)
    if not m:
        return None, []
    n = _number(m.group(2)) if m.group("n").lower().startswith("at") else 2  # more than one, several, both
    return n, [(m.start(), m.end())]


def _number(text: str) -> int:
    t = text.lower()
    return _NUMBER_WORDS[t] if t in _NUMBER_WORDS else int(t)


def find_counts(
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


def find_affiliations(text: str, lex: AuthorLexicon) -> tuple[list[str], list[tuple[int, int]]]:
    """Affiliations of the corpus named in ``text`` ("ETH Zurich" for 'eth-zurich'), with their spans.

    A one-word affiliation that is also an ordinary word of the corpus needs a cue before it
    ("from", "at", "affiliated with")."""
    from rag.query_filters import GENERIC_WORDS

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
            if " " not in key and (key in lex.common or key in GENERIC_WORDS) and not cue:
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
