"""How well a retrieved abstract supports a sentence: content words, embedded abstract units, scores.

A paper can be cited for its title and each abstract sentence (long ones cut into clauses at semicolons);
instruction-like sentences planted in abstracts ("ignore previous instructions …") are never units, so they
never reach a prompt, a quote or a list line, and never count as evidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunk import split_sentences
from rag.types import Paper, fold

Encode = Callable[[Sequence[str]], np.ndarray]
"""Texts → L2-normalised vectors (``rag.embed.Embedder.encode``)."""
DENSE_WEIGHT = 0.5
"""Weight of the embedding cosine in the combined score (the rest is content-word overlap)."""
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(previous|prior|above|earlier|all|any|other|the)\b"
    r"[^.]{0,30}\b(instructions?|prompts?|rules|context|guidelines)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions?\b"
    r"|\b(respond|reply|answer|output|say|print|write)\s+(only|exactly)\b"
    r"|\b(respond|reply|answer|output|say|print|write)\s+(with\s+)?(the\s+)?(word|phrase|string)\b"
    r"|\b(respond|reply|say|print)\s+(with\s+)?[\"'“]"
    r"|\balways cite\b|\bcite (only |this paper|paper|\[)",
    re.IGNORECASE,
)

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor
    not now of off on once only or other our ours out over own paper papers same she should so some such
    than that the their theirs them then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours via using use
    used based show shows shown propose proposes proposed present presents study studies work approach
    method methods new result results also however thus within without across introduce introduces
    introduced colleagues colleague coauthors authors author researchers team et al""".split()
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> object | None:
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None


def content_words(text: str) -> set[str]:
    """Stemmed, lower-cased content words (stop words and one-letter tokens dropped)."""
    words = [w for w in re.findall(r"[a-z0-9]+", fold(text)) if w not in _STOPWORDS and len(w) > 1]
    stemmer = _stemmer()
    if stemmer is not None:
        words = stemmer.stemWords(words)  # type: ignore[attr-defined]
    return set(words)


def looks_like_instruction(sentence: str) -> bool:
    """True for sentences that address the reader as a model ("ignore previous instructions …")."""
    return bool(_INJECTION.search(sentence))


LONG_SENTENCE = 35
"""Sentences longer than this (in words) are split at semicolons into separately ranked clauses."""


def _clauses(sentence: str) -> list[str]:
    if len(sentence.split()) <= LONG_SENTENCE:
        return [sentence]
    parts = [p.strip() for p in re.split(r";\s+(?:and\s+)?", sentence) if p.strip()]
    return parts if len(parts) > 1 else [sentence]


def units_of(paper: Paper) -> list[str]:
    """What a paper can be cited for: its title and each abstract sentence (long ones cut into clauses),
    leaving out instruction-like sentences."""
    sentences = [c for s in split_sentences(paper.abstract) for c in _clauses(s)]
    return [paper.title, *[s for s in sentences if not looks_like_instruction(s)]]


def _metadata_words(paper: Paper) -> set[str]:
    words = content_words(" ".join(paper.authors))
    if paper.year is not None:
        words.add(str(paper.year))
    return words


@dataclass
class Support:
    """How well one paper supports one sentence."""

    score: float
    evidence: str
    dense: float = 0.0
    lexical: float = 0.0


class SupportChecker:
    """Scores answer sentences against a fixed list of retrieved papers.

    Embeds each paper's title and abstract sentences once (when ``encode`` is given; without it the
    score is content-word overlap alone). ``pipeline`` also uses it to pick the sentences of each
    abstract that are most relevant to the question.
    """

    def __init__(self, papers: Sequence[Paper], encode: Encode | None = None) -> None:
        self.papers = list(papers)
        self.encode = encode
        self.units = [units_of(p) for p in self.papers]
        self.unit_words = [[content_words(u) for u in units] for units in self.units]
        # what a paper supports lexically: its title and abstract words, plus its metadata (author names,
        # year), so "Chao and colleagues proposed JailbreakBench [1]" is supported by that paper's record
        self.paper_words = [
            (set().union(*words) if words else set()) | _metadata_words(p)
            for p, words in zip(self.papers, self.unit_words, strict=True)
        ]
        self.title_words = [content_words(p.title) for p in self.papers]
        self.vectors: list[np.ndarray] | None = None
        if encode is not None:
            flat = [u for units in self.units for u in units]
            matrix = np.asarray(encode(flat), dtype=np.float32) if flat else np.zeros((0, 1), np.float32)
            self.vectors, start = [], 0
            for units in self.units:
                self.vectors.append(matrix[start : start + len(units)])
                start += len(units)

    @classmethod
    def merge(cls, parts: Sequence[SupportChecker]) -> SupportChecker:
        """One checker over the papers of several (in order), reusing their embedded units."""
        merged = cls.__new__(cls)
        merged.papers = [p for part in parts for p in part.papers]
        merged.encode = parts[0].encode if parts else None
        merged.units = [u for part in parts for u in part.units]
        merged.unit_words = [w for part in parts for w in part.unit_words]
        merged.paper_words = [w for part in parts for w in part.paper_words]
        merged.title_words = [w for part in parts for w in part.title_words]
        vectors = [part.vectors for part in parts]
        merged.vectors = None if any(v is None for v in vectors) else [m for v in vectors for m in v or []]
        return merged

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.encode is None or not texts:
            return None
        return np.asarray(self.encode(list(texts)), dtype=np.float32)

    def unit_relevance(self, query: str) -> list[np.ndarray]:
        """Per paper, the relevance of each unit (title first) to ``query``, 0..1."""
        vec = self._embed([query])
        qwords = content_words(query)
        out = []
        for i, words in enumerate(self.unit_words):
            lex = np.array([len(qwords & w) / len(qwords) if qwords else 0.0 for w in words], np.float32)
            if vec is not None and self.vectors is not None:
                dense = np.clip(self.vectors[i] @ vec[0], 0.0, 1.0)
                out.append(DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lex)
            else:
                out.append(lex)
        return out

    def score_all(self, sentences: Sequence[str]) -> list[list[Support]]:
        """``result[s][p]``: how well paper ``p`` supports sentence ``s``."""
        vecs = self._embed(sentences)
        result: list[list[Support]] = []
        for s_i, sentence in enumerate(sentences):
            words = content_words(sentence)
            row = []
            for p_i, units in enumerate(self.units):
                lexical = len(words & self.paper_words[p_i]) / len(words) if words else 0.0
                unit_lex = np.array(
                    [len(words & w) / len(words) if words else 0.0 for w in self.unit_words[p_i]], np.float32
                )
                if vecs is not None and self.vectors is not None and len(units):
                    sims = np.clip(self.vectors[p_i] @ vecs[s_i], 0.0, 1.0)
                    dense = float(sims.max())
                    score = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lexical
                    best = int(np.argmax(sims + unit_lex))
                else:
                    dense, score = 0.0, lexical
                    best = int(np.argmax(unit_lex)) if len(units) else 0
                evidence = units[best] if units else ""
                row.append(Support(round(float(score), 4), evidence, round(dense, 4), round(lexical, 4)))
            result.append(row)
        return result
