"""Chunking: sentence boundaries, the token limit, title context, stable ids, title-only papers."""

from __future__ import annotations

import pytest

from rag.chunk import chunk_metadata, chunk_paper, chunk_papers, paper_hash, split_sentences
from rag.types import Paper


def words(texts: list[str]) -> list[int]:
    """A fake tokenizer: one word piece per whitespace word, plus [CLS] and [SEP]."""
    return [len(t.split()) + 2 for t in texts]


def make_paper(abstract: str = "", **kw: object) -> Paper:
    fields: dict[str, object] = {"id": "p1", "title": "A Title Here", "source": "s.txt", "abstract": abstract}
    fields.update(kw)
    return Paper(**fields)  # type: ignore[arg-type]


def test_split_sentences_keeps_abbreviations_initials_and_decimals() -> None:
    text = (
        "We follow Smith et al. in this. Results improve by 3.5 points, e.g. on Fig. 2! "
        "Do they? J. Doe agrees."
    )
    assert split_sentences(text) == [
        "We follow Smith et al. in this.",
        "Results improve by 3.5 points, e.g. on Fig. 2!",
        "Do they?",
        "J. Doe agrees.",
    ]


def test_split_sentences_collapses_whitespace_and_handles_empty() -> None:
    assert split_sentences("  \n ") == []
    assert split_sentences("One  line\nbroken. Two.") == ["One line broken.", "Two."]


def test_short_abstract_is_one_chunk_with_title_context() -> None:
    paper = make_paper("First sentence here. Second one.")
    chunks = chunk_paper(paper, words, max_tokens=50, overlap=1)
    assert [c.id for c in chunks] == ["p1#0"]
    assert chunks[0].text == "A Title Here\n\nFirst sentence here. Second one."
    assert chunks[0].metadata["n_chunks"] == 1


def test_long_abstract_splits_on_sentence_boundaries_within_the_limit() -> None:
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(20)]
    paper = make_paper(" ".join(sentences))
    chunks = chunk_paper(paper, words, max_tokens=40, overlap=1)
    assert len(chunks) > 3
    for n, chunk in enumerate(chunks):
        assert chunk.id == f"p1#{n}" and chunk.n == n and chunk.paper_id == "p1"
        assert chunk.text.startswith("A Title Here\n\n")
        assert words([chunk.text])[0] <= 40
        body = chunk.text.split("\n\n", 1)[1]
        assert body.endswith(".") and body.startswith("Sentence")  # whole sentences only
    # every sentence is covered, consecutive chunks overlap by one sentence
    bodies = [c.text.split("\n\n", 1)[1] for c in chunks]
    assert all(any(s in b for b in bodies) for s in sentences)
    for a, b in zip(bodies, bodies[1:], strict=False):
        assert split_sentences(a)[-1] == split_sentences(b)[0]


def test_no_overlap_means_disjoint_chunks() -> None:
    paper = make_paper(" ".join(f"Sentence {i} is here." for i in range(12)))
    chunks = chunk_paper(paper, words, max_tokens=20, overlap=0)
    bodies = [split_sentences(c.text.split("\n\n", 1)[1]) for c in chunks]
    flat = [s for b in bodies for s in b]
    assert flat == split_sentences(paper.abstract)


def test_overlong_sentence_is_cut_at_words_not_truncated() -> None:
    long_sentence = " ".join(f"w{i}" for i in range(100)) + "."
    chunks = chunk_paper(make_paper(long_sentence), words, max_tokens=30, overlap=1)
    assert len(chunks) >= 4
    assert all(words([c.text])[0] <= 30 for c in chunks)
    joined = " ".join(c.text.split("\n\n", 1)[1] for c in chunks)
    assert joined == long_sentence


def test_title_only_paper_is_indexed_by_title_and_authors() -> None:
    paper = make_paper("", authors=["Ada Lovelace", "Alan Turing"])
    chunks = chunk_paper(paper, words, max_tokens=50)
    assert len(chunks) == 1
    assert chunks[0].text == "A Title Here\n\nAda Lovelace, Alan Turing"
    assert chunks[0].metadata["has_abstract"] is False


def test_ids_and_texts_are_stable() -> None:
    paper = make_paper(" ".join(f"Sentence {i} is here." for i in range(30)))
    first = chunk_paper(paper, words, max_tokens=25)
    second = chunk_papers([paper, make_paper("Other.", id="p2")], words, max_tokens=25)[0]
    assert [(c.id, c.text) for c in first] == [(c.id, c.text) for c in second]
    assert paper_hash(paper) == paper_hash(paper.model_copy())
    assert paper_hash(paper) != paper_hash(paper.model_copy(update={"abstract": "Changed."}))
    assert paper_hash(paper) == paper_hash(paper.model_copy(update={"line": 99}))


def test_metadata_is_scalar_and_year_key_is_omitted_when_unknown() -> None:
    with_year = chunk_metadata(
        make_paper("x", authors=["Zoë Müller", "B. Smith"], year=2021, category="LG", sources=["a", "b"])
    )
    assert with_year["year"] == 2021 and isinstance(with_year["year"], int)
    assert with_year["authors"] == "Zoë Müller; B. Smith"
    assert with_year["authors_folded"] == "zoe muller; b. smith"
    assert with_year["sources"] == "a; b" and with_year["category"] == "LG"
    assert all(isinstance(v, str | int | float | bool) for v in with_year.values())
    without = chunk_metadata(make_paper("x"))
    assert "year" not in without and "category" not in without


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from rag.embed import get_tokenizer

    return get_tokenizer()


def test_real_tokenizer_limits_hold(tokenizer) -> None:  # type: ignore[no-untyped-def]
    abstract = " ".join(
        f"In experiment {i}, the transformer-based model (ResNet-50) reached 93.{i}% accuracy on ImageNet."
        for i in range(25)
    )
    paper = make_paper(abstract, title="Scaling Laws for Über-Large Models")
    chunks = chunk_paper(paper, tokenizer.count, max_tokens=64, overlap=1)
    assert len(chunks) > 3
    assert max(tokenizer.count([c.text for c in chunks])) <= 64
    assert tokenizer.max_seq_length == 256


def test_max_sentences_gives_one_sentence_per_chunk_each_with_the_title() -> None:
    sentences = ["Alpha beta gamma.", "Delta epsilon.", "Zeta eta theta iota.", "Kappa."]
    chunks = chunk_paper(make_paper(" ".join(sentences)), words, max_tokens=200, overlap=0, max_sentences=1)
    assert [c.text for c in chunks] == [f"A Title Here\n\n{s}" for s in sentences]
    assert [c.id for c in chunks] == ["p1#0", "p1#1", "p1#2", "p1#3"]


def test_max_sentences_windows_with_overlap_and_the_token_limit_still_applies() -> None:
    sentences = [f"Sentence {i} here." for i in range(5)]
    chunks = chunk_paper(make_paper(" ".join(sentences)), words, max_tokens=200, overlap=1, max_sentences=2)
    bodies = [c.text.split("\n\n", 1)[1] for c in chunks]
    assert bodies == [" ".join(sentences[i : i + 2]) for i in range(4)]
    long = "word " * 60 + "end."
    cut = chunk_paper(make_paper(long.strip()), words, max_tokens=30, overlap=0, max_sentences=1)
    assert len(cut) > 1 and all(words([c.text])[0] <= 30 for c in cut)


def test_overlap_must_be_smaller_than_max_sentences() -> None:
    from pydantic import ValidationError

    from rag.settings import IndexSettings

    with pytest.raises(ValueError, match="overlap"):
        chunk_paper(make_paper("One. Two."), words, overlap=1, max_sentences=1)
    with pytest.raises(ValidationError, match="chunk_overlap_sentences"):
        IndexSettings(chunk_max_sentences=2, chunk_overlap_sentences=2)
    assert IndexSettings(chunk_max_sentences=None, chunk_overlap_sentences=1).chunk_overlap_sentences == 1
