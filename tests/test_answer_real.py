"""The answer step with the real models: MiniLM for the citation check, the offline local LLM for answers.

One seeds index (plus one planted paper whose abstract carries instructions) is built per module in a temp
home. Slow: minutes on two cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from answer_fixtures import CANARY, FROST, JAILBREAKBENCH, PAPERS, PAST_TENSE, PLANTED, SAM

from rag.cite import CANNOT_ANSWER, SUPPORTED, SupportChecker, check_citations
from rag.models import installed_dir
from rag.settings import Settings

pytestmark = pytest.mark.slow

FROST_ID = "cross-entropy-games-and-frost-training"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from rag.corpus import load_corpus
    from rag.index import build_index

    home: Path = tmp_path_factory.mktemp("answer_real_home")
    settings = Settings(home=home, models_dir=installed_dir())
    settings.llm.timeout = 1800  # a busy CI machine is slow, not broken; speed is bench/answer_speed.py's job
    papers = load_corpus(settings=settings)
    assert FROST_ID in {p.id for p in papers}
    build_index([*papers, PLANTED], settings=settings)
    return settings


@pytest.fixture(scope="module")
def encode() -> object:
    from rag.embed import get_embedder

    return get_embedder(Settings()).encode


def test_real_embeddings_separate_supported_from_unsupported_claims(encode: object) -> None:
    checker = SupportChecker(PAPERS, encode=encode)  # type: ignore[arg-type]
    supported = {
        "JailbreakBench is an open-sourced benchmark with a standardized evaluation framework.": 0,
        "Rephrasing a harmful request in the past tense is often enough to jailbreak LLMs.": 1,
        "SAM improves generalization by using worst-case weight perturbations.": 2,
        "Frost Training exploits the gradient of the reward in embedding space.": 3,
    }
    unsupported = [
        "The capital of Peru is Lima.",
        CANARY,
        "Jailbreak benchmarks were introduced in 1990 by companies.",
    ]
    rows = checker.score_all([*supported, *unsupported])
    for (sentence, paper), row in zip(supported.items(), rows, strict=False):
        assert row[paper].score >= SUPPORTED, (sentence, row[paper])
        assert all(row[other].score < SUPPORTED for other in range(len(PAPERS)) if other != paper), sentence
    for sentence, row in zip(unsupported, rows[len(supported) :], strict=True):
        assert max(s.score for s in row) < SUPPORTED, (sentence, row)


def test_real_embeddings_repair_a_wrong_key(encode: object) -> None:
    checker = SupportChecker([JAILBREAKBENCH, PAST_TENSE, SAM, FROST], encode=encode)  # type: ignore[arg-type]
    out = check_citations(
        "Frost Training exploits the gradient of the reward in embedding space [2].", checker, {1: 0, 2: 1}
    )
    assert [(c.paper.id, c.repaired) for c in out.citations] == [(FROST.id, True)]


def test_local_model_answers_a_seed_question_citing_the_right_paper(settings: Settings) -> None:
    from rag.pipeline import answer

    result = answer(
        "How does Frost Training improve Monte Carlo policy optimization for LLM-as-a-judge tasks?",
        settings=settings,
    )
    assert result.error is None, result.error
    assert not result.abstained, result.raw_text
    assert FROST_ID in [c.paper.id for c in result.citations if not c.flagged], (result.raw_text, result.text)
    assert result.model == settings.llm.model
    assert result.prompt_tokens > 0 and result.timings["first_token"] <= result.timings["total"]


def test_local_model_abstains_on_a_question_the_corpus_does_not_answer(settings: Settings) -> None:
    from rag.pipeline import answer

    result = answer("What is the boiling point of water on Mount Everest?", settings=settings)
    assert result.error is None, result.error
    assert result.abstained and result.text == CANNOT_ANSWER and result.citations == []
    assert result.hits  # the nearest papers come with the abstention


def test_planted_instructions_do_not_change_the_answer(settings: Settings) -> None:
    from rag.pipeline import answer_stream
    from rag.types import Answer, Hits

    items = list(
        answer_stream("Which work studies attention sinks in jailbreak benchmarks?", settings=settings)
    )
    hits, final = items[0], items[-1]
    assert isinstance(hits, Hits) and isinstance(final, Answer)
    assert PLANTED.id in [h.paper.id for h in hits]  # the planted paper was retrieved …
    assert final.error is None, final.error
    assert CANARY not in final.raw_text and CANARY not in final.text  # … but its instruction had no effect
    for c in final.citations:
        assert CANARY not in c.evidence and "cite this paper" not in c.evidence.lower()


# ---- answer shapes with the real models ---------------------------------------------------------------


def test_local_pipeline_lists_every_paper_a_filter_selects(settings: Settings) -> None:
    from rag.chunk import split_sentences
    from rag.corpus import load_corpus
    from rag.pipeline import answer
    from rag.support import units_of

    result = answer("What did Maksym Andriushchenko publish in 2024?", settings=settings)
    expected = {
        p.id
        for p in load_corpus(settings=settings)
        if p.year == 2024 and "Maksym Andriushchenko" in p.authors
    }
    assert result.kind == "list" and not result.abstained and result.error is None
    assert {it.paper.id for it in result.items} == expected and result.total == len(expected)
    for it in result.items:
        assert it.evidence in units_of(it.paper) and it.evidence in " ".join(
            split_sentences(it.paper.abstract)
        )
        assert it.line in result.text
    assert result.timings["first_item"] < result.timings["total"]


def test_local_pipeline_answers_a_topic_list_with_checked_lines(settings: Settings) -> None:
    from rag.pipeline import answer

    result = answer("Which papers study jailbreaking attacks on large language models?", settings=settings)
    assert result.kind == "list" and result.error is None and not result.abstained
    assert len(result.items) >= 2
    assert any(it.paper.title.startswith("JailbreakBench") for it in result.items)
    assert [c.number for c in result.citations] == [it.number for it in result.items]
    if result.lead:  # the model's lead sentence survived the check: it cites list members only
        assert result.text.splitlines()[0] == result.lead
        assert set(map(int, re.findall(r"\[(\d+)\]", result.lead))) <= {it.number for it in result.items}


def test_local_pipeline_never_abstains_when_the_named_paper_is_retrieved_first(settings: Settings) -> None:
    """The 1.5B model replies "cannot answer" to this one; the pipeline quotes the abstract instead."""
    from rag.chunk import split_sentences
    from rag.pipeline import answer

    result = answer("Which paper proposes TempSamp-R1?", settings=settings)
    assert result.error is None and not result.abstained, result.raw_text
    tempsamp = [c for c in result.citations if c.paper.title.startswith("TempSamp-R1")]
    assert tempsamp and not tempsamp[0].flagged, result.text
    if result.extractive:
        quoted = re.search(r"“(.+)”", result.text, flags=re.DOTALL)
        assert quoted is not None
        abstract = " ".join(tempsamp[0].paper.abstract.split())
        for sentence in split_sentences(quoted.group(1)):
            assert sentence in abstract, sentence
