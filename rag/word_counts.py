"""How often each word occurs in the corpus's titles and abstracts, kept up to date paper by paper.

The author lexicon (:class:`rag.query_filters.AuthorLexicon`) asks whether a family name or a one-word
affiliation is also an ordinary word of the corpus (it occurs at least twice). Counting every word of every
abstract costs ~70 µs per paper, so the counts are saved with the records (:mod:`rag.records`) and updated
with the papers an index run adds, changes or removes, instead of recounted.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

import numpy as np

from rag.types import combining_marks

_LETTERS = re.compile(r"[a-z]+")


def letter_runs(text: str) -> list[str]:
    """The ``[a-z]+`` runs of the case-folded text, accents stripped (the words the lexicon counts)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(combining_marks())
    return _LETTERS.findall(text.casefold())


def count(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(letter_runs(text))  # counted in C: a dict update per word was most of the cost
    return counts


def updated(counts: Counter[str], added: Iterable[str], removed: Iterable[str]) -> Counter[str]:
    """``counts`` (changed in place) with the words of the ``added`` texts counted in, the ``removed`` out."""
    counts.update(count(added))
    counts.subtract(count(removed))
    for word in [w for w, n in counts.items() if n <= 0]:
        del counts[word]
    return counts


def to_arrays(counts: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
    """The words, newline-joined as one byte array (no per-word padding), and their counts."""
    words = sorted(counts)
    joined = np.frombuffer("\n".join(words).encode("ascii"), dtype=np.uint8)
    return joined, np.asarray([counts[w] for w in words], dtype=np.int32)


def from_arrays(joined: np.ndarray, numbers: np.ndarray) -> Counter[str]:
    words = bytes(joined).decode("ascii").split("\n") if len(numbers) else []
    return Counter(dict(zip(words, numbers.tolist(), strict=True)))
