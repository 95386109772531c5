"""Relevance: does the corpus answer the question? A calibrated 0..1 score per hit, and the name rule.

``relevance`` turns a hit's dense cosine, BM25 score and IDF-weighted term coverage into 0..1 (calibrated on
the eval set's unanswerable questions; docs/retrieval.md). ``names_a_title`` spots a short keyword question
that names a paper ("What does RobustBench measure?"): a rare question term that is in the top hit's title.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

RELEVANCE_BM25_WEIGHT = 0.01
"""Evidence of a hit = its dense cosine + this × its BM25 score + ``RELEVANCE_COVERAGE_WEIGHT`` × the
IDF-weighted share of the question's content terms found in the paper (MiniLM-L6 + our BM25)."""
RELEVANCE_COVERAGE_WEIGHT = 0.5
"""Weight of term coverage: rare exact terms ("Frost Training", "jailbreaks") count even when the cosine of a
short query is low, and question terms the corpus never uses ("LoRA", "speculative") count against."""
RELEVANCE_CENTER = 0.855
"""Evidence at which relevance is 0.5: calibrated on the eval set's unanswerable ("absent") questions against
the answerable ones on the seed corpus, plus short keyword probes (see docs/retrieval.md, Relevance)."""
RELEVANCE_SCALE = 0.04
"""Evidence difference over which relevance goes from 0.27 to 0.73."""


NAME_MAX_DF = 2
"""A question term found in at most this many papers, and in the top hit's title, names that paper."""


def relevance(
    similarity: float | None,
    bm25: float = 0.0,
    coverage: float = 0.0,
    *,
    center: float = RELEVANCE_CENTER,
    scale: float = RELEVANCE_SCALE,
) -> float:
    """Calibrated relevance in 0..1 (logistic) from a hit's dense cosine similarity, BM25 score and term
    coverage (:func:`term_coverage`, 0..1)."""
    if similarity is None or math.isnan(similarity):
        return 0.0
    evidence = (
        similarity
        + RELEVANCE_BM25_WEIGHT * max(0.0, bm25)
        + RELEVANCE_COVERAGE_WEIGHT * min(1.0, max(0.0, coverage))
    )
    return 1.0 / (1.0 + math.exp(-(evidence - center) / scale))


def content_terms(text: str) -> list[str]:
    """The question's content terms as BM25 tokens: generic question words ("which", "papers") dropped."""
    from rag.lexical import tokenize
    from rag.query_filters import GENERIC_WORDS
    from rag.types import fold

    words = [w for w in text.split() if fold(w).strip("?.,;:!()[]'\"") not in GENERIC_WORDS]
    return list(dict.fromkeys(tokenize(" ".join(words)) or tokenize(text)))


def term_coverage(lexical: Any, text: str, paper_ids: list[str]) -> dict[str, float]:
    """Per paper, the IDF-weighted share of the question's content terms that the paper contains.

    ``lexical`` is a :class:`rag.lexical.LexicalIndex`. IDF is BM25's, ``log(1 + (N − df + 0.5)/(df + 0.5))``
    over the indexed papers; a term the corpus never uses has df 0 (the highest weight), so a question
    about something absent ("speculative decoding") cannot be fully covered.
    """
    terms = content_terms(text)
    n = len(lexical.ids)
    if not terms or not n:
        return dict.fromkeys(paper_ids, 0.0)
    present: list[np.ndarray] = []
    weights: list[float] = []
    for term in terms:
        found = lexical.contains(term)
        has = np.zeros(n, dtype=bool) if found is None else found
        df = int(has.sum())
        present.append(has)
        weights.append(math.log(1.0 + (n - df + 0.5) / (df + 0.5)))
    total = sum(weights)
    out: dict[str, float] = {}
    for pid in paper_ids:
        i = lexical.ids.row(pid)
        got = 0.0 if i is None else sum(w for w, has in zip(weights, present, strict=True) if has[i])
        out[pid] = got / total if total > 0 else 0.0
    return out


_NAME_LIKE = re.compile(r"\b[A-Za-z]*(?:[a-z][A-Z]|[A-Z]{2}|\d)[\w-]*|\b\w+-\w+\b")
"""Words written like a name: inner capitals or digits (MoNNA, EvoNorms, TempSamp-R1), or hyphenated."""


def names_a_title(lexical: Any, text: str, title: str, paper_id: str | None = None) -> bool:
    """Whether the question names the paper: a rare content term of the question (in at most
    :data:`NAME_MAX_DF` papers) that is in ``title``, or a rare name-like word (``_NAME_LIKE``) that is
    anywhere in the paper ``paper_id``.

    Short keyword questions ("What does RobustBench measure?", "What are EvoNorms?") score a low relevance
    because their other words ("measure") are not in the paper; the paper's own name in the question is
    evidence enough that the corpus has it.
    """
    from rag.lexical import tokenize

    in_title = set(tokenize(title))
    names = set(tokenize(" ".join(_NAME_LIKE.findall(text))))
    position = lexical.ids.row(paper_id) if paper_id is not None else None
    for term in content_terms(text):
        if term not in in_title and (term not in names or position is None):
            continue
        if not 0 < lexical.doc_freq(term) <= NAME_MAX_DF:
            continue
        if term in in_title or bool(lexical.contains(term)[position]):
            return True
    return False
