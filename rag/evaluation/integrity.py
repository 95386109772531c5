"""Citation integrity of one answer: is each citation's evidence the cited paper's own words, and does
every prose sentence still say what it is about?

Evidence passes when, after whitespace normalisation, it is a sentence of the cited paper's abstract
(``rag.chunk.split_sentences``), a clause of one (cut at semicolons, as ``rag.cite`` cuts long
sentences), any other contiguous piece of the abstract, or the paper's title. In a list answer, a line
that quotes no sentence (a metadata list) may cite with empty evidence. Anything else, including empty
evidence in a prose answer, fails.

Prose sentences are the ones the model wrote and the citation check may have edited: the lead sentence
of a list answer and the text of a (non-extractive) fact answer. List lines and extractive quotes are
the abstracts' own words, covered by the evidence check. A sentence fails when
``rag.naming.is_dangling`` says it lost its subject ("It was introduced in.").
"""

from __future__ import annotations

import re

from rag.chunk import split_sentences
from rag.evaluation.records import CitationCheck
from rag.naming import is_dangling
from rag.types import Answer, Citation

FAILED_OUTCOMES = ("empty", "not in abstract")


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces, ends stripped."""
    return re.sub(r"\s+", " ", text).strip()


def _clauses(sentence: str) -> list[str]:
    return [p.strip() for p in re.split(r";\s+(?:and\s+)?", sentence) if p.strip()]


def evidence_outcome(evidence: str, title: str, abstract: str, *, metadata_line: bool = False) -> str:
    """How ``evidence`` relates to a paper: sentence, clause, excerpt, title, metadata, or a failure
    (``empty``, ``not in abstract``)."""
    ev, abstract = normalise(evidence), normalise(abstract)
    if not ev:
        return "metadata" if metadata_line else "empty"
    if ev == normalise(title):
        return "title"
    sentences = split_sentences(abstract)
    if ev in sentences:
        return "sentence"
    if any(ev in _clauses(s) for s in sentences):
        return "clause"
    return "excerpt" if ev in abstract else "not in abstract"


def check_citation(citation: Citation, answer: Answer) -> CitationCheck:
    """The evidence check of one citation of ``answer``."""
    item = next((i for i in answer.items if i.number == citation.number), None)
    metadata_line = answer.kind == "list" and item is not None and not normalise(item.evidence)
    outcome = evidence_outcome(
        citation.evidence, citation.paper.title, citation.paper.abstract, metadata_line=metadata_line
    )
    return CitationCheck(
        number=citation.number,
        paper=citation.paper.id,
        outcome=outcome,
        ok=outcome not in FAILED_OUTCOMES,
        evidence=citation.evidence[:200],
    )


def prose_sentences(answer: Answer) -> list[str]:
    """The sentences of ``answer`` checked for a lost subject: a list's lead, a fact answer's text."""
    if answer.abstained or answer.extractive:
        return []
    if answer.kind == "list":
        return split_sentences(answer.lead)
    if answer.kind == "fact":
        return split_sentences(answer.text)
    return []


def dangling_sentences(answer: Answer) -> list[str]:
    """The prose sentences of ``answer`` that lost their subject."""
    return [s for s in prose_sentences(answer) if is_dangling(s)]
