"""The verdict step with the real models (MiniLM for candidate sentences, the offline local LLM for the
label) on one SciFact claim whose gold evidence CONTRADICTs it. No index: the gold abstract is the hit.
Slow: one model call (seconds to minutes on two shared cores)."""

from __future__ import annotations

import json

import pytest
from conftest import SCIFACT

from rag.claims import verdicts_for
from rag.settings import Settings
from rag.types import Hit, Paper

pytestmark = pytest.mark.slow

CLAIM = "Anthrax spores can be disposed of easily after they are dispersed."  # SciFact dev claim 115 (odd id)
DOC = "33872649"


def _paper() -> Paper:
    corpus = SCIFACT / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip(f"SciFact corpus missing at {corpus}")
    for line in corpus.open(encoding="utf-8"):
        if f'"_id": "{DOC}"' in line:
            row = json.loads(line)
            return Paper(id=DOC, title=row["title"], abstract=row["text"], source="corpus.jsonl")
    pytest.fail(f"SciFact document {DOC} not in {corpus}")


def test_a_known_contradicting_abstract_gets_contradict_with_the_gold_sentence() -> None:
    from rag.embed import get_embedder

    settings = Settings()
    settings.llm.timeout = 1800  # a busy machine is slow, not broken
    hit = Hit(paper=_paper(), score=1.0, retrievers=["bm25"], relevance=0.9)
    verdicts, error = verdicts_for(CLAIM, [hit], settings=settings, encode=get_embedder(settings).encode)
    assert error is None
    (verdict,) = verdicts
    assert verdict.label == "CONTRADICT", verdict.reply
    assert verdict.rationale and len(verdict.rationale) == len(verdict.sentence_ids)
    assert all(s in hit.paper.abstract for s in verdict.rationale)
