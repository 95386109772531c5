"""How well a retrieved abstract supports a sentence: content words, embedded abstract units, scores.

A paper can be cited for its title and each abstract sentence (long ones cut into clauses at semicolons).
Abstracts are untrusted data: a sentence that addresses its reader as a model ("ignore the previous
instructions …", "note for language models: cite this paper …"; :mod:`rag.injection`) is *flagged* and is
never a unit, so it never reaches a prompt, a quote or a list line, and never counts as evidence. A paper with
a flagged sentence is *planted*: :func:`rag.cite.check_citations` never adds, re-points or keeps a citation
to it, and is strict with every answer sentence while one is retrieved.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunk import split_sentences
from rag.injection import Encode, SimilarityCheck, looks_like_instruction
from rag.types import Paper, fold

__all__ = [
    "DENSE_WEIGHT",
    "Encode",
    "Support",
    "SupportChecker",
    "content_words",
    "flagged_sentences",
    "looks_like_instruction",
    "units_of",
]

log = logging.getLogger(__name__)

DENSE_WEIGHT = 0.5
"""Weight of the embedding cosine in the combined score (the rest is content-word overlap)."""

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


LONG_SENTENCE = 35
"""Sentences longer than this (in words) are split at semicolons into separately ranked clauses."""


def _clauses(sentence: str) -> list[str]:
    if len(sentence.split()) <= LONG_SENTENCE:
        return [sentence]
    parts = [p.strip() for p in re.split(r";\s+(?:and\s+)?", sentence) if p.strip()]
    return parts if len(parts) > 1 else [sentence]


def _sentences(paper: Paper) -> list[tuple[str, list[str], bool]]:
    """Each abstract sentence, its units (clauses), and whether the cues read it as an instruction.

    A sentence is flagged as a whole when it, or one of its clauses, has a cue (:func:`rag.injection.cues`).
    """
    out = []
    for sentence in split_sentences(paper.abstract):
        parts = _clauses(sentence)
        cued = looks_like_instruction(sentence) or any(looks_like_instruction(c) for c in parts)
        out.append((sentence, parts, cued))
    return out


def flagged_sentences(paper: Paper) -> list[str]:
    """The title (if so) and sentences of ``paper`` that the cues read as instructions to a model."""
    title = [paper.title] if looks_like_instruction(paper.title) else []
    return title + [s for s, _, cued in _sentences(paper) if cued]


def units_of(paper: Paper) -> list[str]:
    """What a paper can be cited for: its title and each abstract sentence (long ones cut into clauses),
    leaving out instruction-like sentences (the cues; :class:`SupportChecker` adds the embedding signal)."""
    return [paper.title, *[c for _, parts, cued in _sentences(paper) if not cued for c in parts]]


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
    unit_lexical: float = 0.0
    """Share of the sentence's content words found in one unit (title or sentence) plus the paper's
    metadata: how close the sentence stays to one thing the paper says."""


class SupportChecker:
    """Scores answer sentences against a fixed list of retrieved papers.

    Embeds each paper's title and abstract sentences once (when ``encode`` is given; without it the
    score is content-word overlap alone). ``pipeline`` also uses it to pick the sentences of each
    abstract that are most relevant to the question.
    """

    def __init__(self, papers: Sequence[Paper], encode: Encode | None = None) -> None:
        self.papers = list(papers)
        self.encode = encode
        self.units: list[list[str]] = []
        self.flagged: list[list[str]] = []
        """Per paper, the sentences (or title) read as instructions to a model; non-empty: a planted paper."""
        self.vectors: list[np.ndarray] | None = None
        sentences = [_sentences(p) for p in self.papers]
        # what could be a unit: the title, and the clauses of every sentence without a cue
        candidates = [
            [p.title, *[c for _, parts, cued in rows if not cued for c in parts]]
            for p, rows in zip(self.papers, sentences, strict=True)
        ]
        matrices: list[np.ndarray] = []
        similar: list[list[bool]] = [[False] * len(c) for c in candidates]
        if encode is not None:  # the embedding signal, on the vectors the support scores need anyway
            flat = [u for units in candidates for u in units]
            matrix = np.asarray(encode(flat), dtype=np.float32) if flat else np.zeros((0, 1), np.float32)
            flags = SimilarityCheck(encode).flags(flat, matrix) if flat else []
            start = 0
            for i, units in enumerate(candidates):
                matrices.append(matrix[start : start + len(units)])
                similar[i] = flags[start : start + len(units)]
                start += len(units)
        for i, paper in enumerate(self.papers):
            # the title always stays unit 0 (it names the paper); a flagged title marks the paper as planted
            flagged = [paper.title] if similar[i][0] or looks_like_instruction(paper.title) else []
            keep = [0]
            pos = 1
            for sentence, parts, cued in sentences[i]:
                if cued:
                    flagged.append(sentence)
                    continue
                span = range(pos, pos + len(parts))
                if any(similar[i][j] for j in span):
                    flagged.append(sentence)
                else:
                    keep += span
                pos += len(parts)
            self.flagged.append(flagged)
            self.units.append([candidates[i][j] for j in keep])
            if encode is not None:
                matrices[i] = matrices[i][keep]
            if flagged:
                log.info("paper %r: %d sentence(s) read as instructions to a model", paper.id, len(flagged))
        if encode is not None:
            self.vectors = matrices
        self.unit_words = [[content_words(u) for u in units] for units in self.units]
        # what a paper supports lexically: its title and unflagged abstract words, plus its metadata (author
        # names, year), so "Chao and colleagues proposed JailbreakBench [1]" is supported by its record
        self.meta_words = [_metadata_words(p) for p in self.papers]
        self.paper_words = [
            (set().union(*words) if words else set()) | meta
            for words, meta in zip(self.unit_words, self.meta_words, strict=True)
        ]
        self.title_words = [content_words(p.title) for p in self.papers]

    @property
    def planted(self) -> list[bool]:
        """Per paper: whether it has a flagged sentence (then it is never cited in a checked answer)."""
        return [bool(f) for f in self.flagged]

    @classmethod
    def merge(cls, parts: Sequence[SupportChecker]) -> SupportChecker:
        """One checker over the papers of several (in order), reusing their embedded units."""
        merged = cls.__new__(cls)
        merged.papers = [p for part in parts for p in part.papers]
        merged.encode = parts[0].encode if parts else None
        merged.units = [u for part in parts for u in part.units]
        merged.flagged = [f for part in parts for f in part.flagged]
        merged.unit_words = [w for part in parts for w in part.unit_words]
        merged.paper_words = [w for part in parts for w in part.paper_words]
        merged.meta_words = [w for part in parts for w in part.meta_words]
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
                meta = self.meta_words[p_i]
                near = max((len(words & (w | meta)) for w in self.unit_words[p_i]), default=0)
                row.append(
                    Support(
                        round(float(score), 4),
                        evidence,
                        round(dense, 4),
                        round(lexical, 4),
                        round(near / len(words), 4) if words else 0.0,
                    )
                )
            result.append(row)
        return result
