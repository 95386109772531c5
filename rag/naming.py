"""Naming papers in answer text, and spotting sentences that lost their subject.

A citation key used as a noun ("introduced in [1]", "The study by [1] found …") leaves a broken sentence
when the key is moved or removed ("It was introduced in.", "The study by found …"). The pipeline writes the
paper's name where the key stood, and the first mention of each cited paper names it (short title, or first
author + year) so that the text reads on its own.
"""

from __future__ import annotations

import re

from rag.types import Paper

_DANGLING_END = re.compile(
    r"\b(in|by|from|of|see|to|and|with|than|like|as|the|a|an|study|paper|work|article|e\.g\.|cf\.)"
    r"\s*[.!?:;,]*\s*$",
    re.IGNORECASE,
)
_DANGLING_MID = re.compile(
    r"\b(?:in|by|from|of|see|and|the|a|an)\s+(?:found|finds|showed|shows|proposed|proposes|introduced|"
    r"introduces|presented|presents|reported|reports|argued|argues|demonstrated|demonstrates|studied|"
    r"studies|observed|observes|suggested|suggests)\b"
    r"|\b(?:in|by|from|of|see)\s*[,;]"
    r"|^\s*(?:in|by|from|see)\s*[,;]?\s*(?:found|shows?|showed|propos|introduc|present)",
    re.IGNORECASE,
)


def is_dangling(sentence: str) -> bool:
    """True when a sentence lost the thing it was about ("It was introduced in.", "The study by found …").

    Meant for sentences whose citation keys have been removed; a sentence that still carries its keys is
    read without them.
    """
    from rag.cite import strip_keys

    text = strip_keys(sentence).strip()
    if not text:
        return False
    return bool(_DANGLING_END.search(text) or _DANGLING_MID.search(text))


def short_title(paper: Paper, max_words: int = 6) -> str | None:
    """The name a title goes by ("TempSamp-R1", "Neural Tangent Kernel"), when it has one: the part before
    a colon, if short. None otherwise."""
    head, sep, _ = paper.title.partition(":")
    head = head.strip()
    if sep and head and len(head.split()) <= max_words:
        return head
    return None


def family_name(author: str) -> str:
    """The family name of a full name as printed ("Maksym Andriushchenko" → "Andriushchenko")."""
    parts = author.replace(",", " ").split()
    return parts[-1] if parts else author


def author_year(paper: Paper) -> str:
    """ "Andriushchenko et al., 2024" / "Jacot and Hongler, 2019" / "Jacot, 2019"; the title's name when the
    paper has no authors."""
    names = [family_name(a) for a in paper.authors]
    if not names:
        who = short_title(paper) or _clip(paper.title)
    elif len(names) == 1 and not paper.authors_truncated:
        who = names[0]
    elif len(names) == 2 and not paper.authors_truncated:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {paper.year}" if paper.year else who


def reference_name(paper: Paper) -> str:
    """How the text names a paper where a key stood as a noun: "TempSamp-R1 (Chen et al., 2025)", or
    "Chen et al. (2025)" for a title without a short name."""
    short = short_title(paper)
    names = [family_name(a) for a in paper.authors]
    if short and not names:
        return short + (f" ({paper.year})" if paper.year else "")
    if short:
        return f"{short} ({author_year(paper)})"
    if names:
        who = author_year(paper).rsplit(", ", 1)[0] if paper.year else author_year(paper)
        return f"{who} ({paper.year})" if paper.year else who
    return f"“{_clip(paper.title)}”" + (f" ({paper.year})" if paper.year else "")


def parenthetical(paper: Paper) -> str:
    """How the text names a paper after a claim: "(TempSamp-R1; Chen et al., 2025)" or "(Chen et al.,
    2025)"."""
    short = short_title(paper)
    if short and paper.authors:
        return f"({short}; {author_year(paper)})"
    return f"({author_year(paper)})"


def mentions(sentence: str, paper: Paper) -> bool:
    """Whether a sentence already names the paper: its short title, or its first author's family name."""
    from rag.types import fold

    text = fold(sentence)
    short = short_title(paper)
    if short and fold(short) in text:
        return True
    if paper.authors and re.search(rf"\b{re.escape(fold(family_name(paper.authors[0])))}\b", text):
        return True
    return False


def _clip(title: str, max_words: int = 8) -> str:
    words = title.split()
    return title if len(words) <= max_words else " ".join(words[:max_words]) + " …"
