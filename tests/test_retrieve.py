"""Retrieval: fusion, aggregation and query checks (fast), then `rag.search` on a real seeds index (slow)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.errors import ConfigError, IndexMissingError, QueryError
from rag.retrieve import MAX_QUERY_CHARS, aggregate_chunks, check_query, fuse, relevance


# ------------------------------------------------------------------------------------------- fast parts
@dataclass
class _FakeHit:
    chunk_id: str
    paper_id: str
    distance: float
    text: str = ""


def test_aggregate_keeps_best_chunk_per_paper() -> None:
    hits = [_FakeHit("a#0", "a", 0.5), _FakeHit("a#1", "a", 0.2), _FakeHit("b#0", "b", 0.4)]
    best = aggregate_chunks(hits)
    assert set(best) == {"a", "b"}
    assert best["a"][0] == pytest.approx(0.8) and best["a"][1].chunk_id == "a#1"
    assert best["b"][0] == pytest.approx(0.6)


def test_convex_fusion_rewards_agreement() -> None:
    dense = {"a": 0.9, "b": 0.8, "c": 0.1}
    bm25 = {"b": 12.0, "c": 3.0, "d": 11.0}
    fused = fuse(dense, bm25, method="convex", dense_weight=0.5, normalisation="minmax")
    assert max(fused, key=fused.__getitem__) == "b"
    assert set(fused) == {"a", "b", "c", "d"}
    only_dense = fuse(dense, bm25, method="convex", dense_weight=1.0, normalisation="minmax")
    assert sorted(only_dense, key=lambda p: -only_dense[p])[:2] == ["a", "b"]


@pytest.mark.parametrize("how", ["minmax", "zscore", "max"])
def test_convex_fusion_normalisations_keep_single_list_order(how: str) -> None:
    dense = {"a": 0.9, "b": 0.5, "c": 0.7}
    fused = fuse(dense, {}, method="convex", dense_weight=0.6, normalisation=how)
    assert sorted(fused, key=lambda p: -fused[p]) == ["a", "c", "b"]


def test_rrf_fusion() -> None:
    fused = fuse({"a": 3.0, "b": 2.0}, {"b": 5.0, "c": 1.0}, method="rrf", dense_weight=0.5, rrf_k=60)
    assert fused["b"] == pytest.approx(0.5 / 62 + 0.5 / 61)
    assert fused["a"] == pytest.approx(0.5 / 61)
    assert max(fused, key=fused.__getitem__) == "b"


def test_fusion_rejects_unknown_method() -> None:
    with pytest.raises(ConfigError):
        fuse({}, {}, method="borda")
    with pytest.raises(ConfigError):
        fuse({"a": 1.0}, {}, normalisation="softmax")


def test_relevance_is_monotone_in_0_1() -> None:
    values = [relevance(s) for s in (0.0, 0.2, 0.4, 0.6, 0.9)]
    assert values == sorted(values) and 0.0 <= values[0] and values[-1] <= 1.0
    assert relevance(None) == 0.0


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x07", None, 42])
def test_check_query_rejects_empty_or_non_text(bad: object) -> None:
    with pytest.raises(QueryError):
        check_query(bad)


def test_check_query_limits_and_cleans() -> None:
    with pytest.raises(QueryError, match="limit"):
        check_query("x" * 100_000)
    assert check_query("neural\x00 tangent\x1b kernel\n") == "neural tangent kernel"
    assert len(check_query("y" * MAX_QUERY_CHARS)) == MAX_QUERY_CHARS


def test_search_without_index_says_run_rag_index(rag_home: Path) -> None:
    from rag.retrieve import search

    with pytest.raises(IndexMissingError, match="rag index"):
        search("neural tangent kernel")


def test_search_bad_input_fails_before_opening_the_index(rag_home: Path) -> None:
    from rag.retrieve import search

    with pytest.raises(QueryError):
        search("   ")
    with pytest.raises(QueryError, match="venue_x"):
        search("kernels", filters={"venue_x": "NeurIPS"})
    with pytest.raises(QueryError, match="Impossible"):
        search("kernels", filters={"year_min": 2023, "year_max": 2019})
    with pytest.raises(QueryError):
        search("kernels", k=0)
    with pytest.raises(QueryError, match="mode"):
        search("kernels", mode="sparse")


# ------------------------------------------------------------------------------------- real seeds index
@pytest.fixture(scope="module")
def seeds_settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from rag.index import build_index
    from rag.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("seeds_home"))
    build_index(None, settings)
    return settings


@pytest.mark.slow
def test_search_ranks_the_same_with_either_query_encoder(  # type: ignore[no-untyped-def]
    seeds_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed index searched with the numpy query encoder (rag.query_encoder) and with
    sentence-transformers: the same papers in the same order, the same scores."""
    import json

    import numpy as np

    import rag.query_encoder
    from rag.embed import get_embedder
    from rag.retrieve import search
    from rag.settings import PROJECT_ROOT

    settings = seeds_settings
    questions = [
        json.loads(line)["question"]
        for line in (PROJECT_ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:25]
    ]
    light = [[(h.paper.id, h.score) for h in search(q, k=10, settings=settings)] for q in questions]
    monkeypatch.setattr(rag.query_encoder, "get_query_encoder", lambda s=None: get_embedder(s))
    heavy = [[(h.paper.id, h.score) for h in search(q, k=10, settings=settings)] for q in questions]
    for q, a, b in zip(questions, light, heavy, strict=True):
        assert [pid for pid, _ in a] == [pid for pid, _ in b], q
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-4), q


def _ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.paper.id for h in hits]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Which method exploits the gradient of the reward in embedding space, the signal behind the GCG "
            "jailbreak, to speed up GRPO training on LLM-as-a-judge tasks?",
            "cross-entropy-games-and-frost-training",
        ),
        (
            "Is a language model better at predicting the next token than the previous one?",
            "arrows-of-time-for-large-language-models",
        ),
        (
            "JailbreakBench open robustness benchmark",
            "jailbreakbench-an-open-robustness-benchmark-for-jailbreaking",
        ),
    ],
)
def test_known_questions_top1(seeds_settings, question: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search(question, k=5, settings=seeds_settings)
    assert _ids(hits)[0] == expected
    assert hits.good_match and hits[0].relevance is not None and hits[0].relevance > 0.5
    assert len(set(_ids(hits))) == len(hits) == 5
    assert hits[0].text and hits[0].retrievers
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.slow
def test_author_and_year_from_the_question(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search("What did Arthur Jacot publish in 2019?", k=10, settings=seeds_settings)
    assert hits.filters_from_query and hits.filters.authors == ["Arthur Jacot"]
    assert (hits.filters.year_min, hits.filters.year_max) == (2019, 2019)
    assert set(_ids(hits)) == {
        "the-asymptotic-spectrum-of-the-hessian-of-dnn-throughout",
        "order-and-chaos-ntk-views-on-dnn-normalization-checkerboard-and",
        "scaling-description-of-generalization-with-number-of-parameters",
    }


@pytest.mark.slow
def test_names_joined_by_and_select_their_joint_papers(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search
    from rag.types import fold

    def has(hit, name: str) -> bool:  # type: ignore[no-untyped-def]
        return any(name in fold(a) for a in hit.paper.authors)

    hits = search(
        "List the papers co-authored by Francesco Croce and Nicolas Flammarion", settings=seeds_settings
    )
    assert hits.filters.authors_together and hits.total and len(hits) == hits.total
    assert all(has(h, "croce") and has(h, "flammarion") for h in hits)
    either = search("Papers by Francesco Croce or Nicolas Flammarion", k=50, settings=seeds_settings)
    assert not either.filters.authors_together and len(either) > len(hits)
    # no joint paper: the papers of either, and a note that says so
    none = search("papers by Arthur Jacot and Suvrit Sra", k=50, settings=seeds_settings)
    assert none and none.note and "No paper has all of" in none.note and not none.filters.authors_together
    assert all(has(h, "jacot") or has(h, "sra") for h in none)


@pytest.mark.slow
def test_author_from_question_with_topic(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search
    from rag.types import fold

    hits = search("papers by Flammarion on jailbreaking attacks", k=5, settings=seeds_settings)
    assert hits.filters.authors == ["Flammarion"] and hits
    assert all(any("flammarion" in fold(a) for a in h.paper.authors) for h in hits)
    assert "jailbreak" in hits[0].paper.title.lower()


@pytest.mark.slow
def test_explicit_filters(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search
    from rag.types import Filters

    hits = search(
        "training dynamics", k=20, filters={"year": "2023-", "kind": "paper"}, settings=seeds_settings
    )
    assert hits and all(h.paper.year is not None and h.paper.year >= 2023 for h in hits)
    assert not hits.filters_from_query
    posters = search("neural networks", k=100, filters=Filters(kinds=["poster"]), settings=seeds_settings)
    assert posters and {h.paper.kind for h in posters} == {"poster"}
    n_posters = sum(1 for _ in posters)
    assert n_posters == 57  # every poster is scored when the filter allows fewer papers than the depth


def test_a_large_allow_list_is_applied_after_the_dense_query(  # type: ignore[no-untyped-def]
    seeds_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.retrieve
    from rag.retrieve import search

    asked: list[object] = []
    question, years = "training dynamics of neural networks", {"year": "2023-"}
    sent = search(question, k=10, filters=years, settings=seeds_settings)
    monkeypatch.setattr(rag.retrieve, "ID_LIST_MAX", 5)  # the 2023- papers are now a "large" allow-list
    store = rag.retrieve._open(seeds_settings).store
    query = store.query

    def recorded(v, n, where=None, **kw):  # type: ignore[no-untyped-def]
        asked.append(where)
        return query(v, n, where, **kw)

    monkeypatch.setattr(store, "query", recorded)
    after = search(question, k=10, filters=years, settings=seeds_settings)
    assert asked == [None]  # nothing sent to Chroma: filtered here
    assert all(h.paper.year is not None and h.paper.year >= 2023 for h in after)
    assert [h.paper.id for h in after][:5] == [h.paper.id for h in sent][:5]


@pytest.mark.slow
def test_filter_matching_nothing_says_which(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search("kernels", filters={"author": "Geoffrey Hinton"}, settings=seeds_settings)
    assert list(hits) == [] and not hits.good_match and hits.note and "Geoffrey Hinton" in hits.note
    hits = search("papers by Jacot after 2028", settings=seeds_settings)
    assert list(hits) == [] and hits.note and "2029" in hits.note


@pytest.mark.slow
def test_absent_question_is_flagged(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search("How does word2vec learn word embeddings with negative sampling?", settings=seeds_settings)
    assert hits and not hits.good_match and hits.note and "relevance" in hits.note


@pytest.mark.slow
def test_modes_and_odd_input(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    dense = search("loss landscape of overparameterized networks", k=5, settings=seeds_settings, mode="dense")
    bm25 = search("loss landscape of overparameterized networks", k=5, settings=seeds_settings, mode="bm25")
    assert all(h.retrievers == ["dense"] for h in dense)
    assert all(h.retrievers == ["bm25"] for h in bm25)
    assert search(
        "by the way\x00\x07 what is a neural tangent kernel?", settings=seeds_settings
    ).filters.is_empty()
    nothing = search("zzzqqq xxyyzz", settings=seeds_settings, mode="bm25")
    assert list(nothing) == [] and nothing.note


@pytest.mark.slow
def test_cli_search(seeds_settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from rag.cli import main

    home = str(seeds_settings.home)
    assert main(["--home", home, "search", "papers", "by", "Flammarion", "--year", "2024", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "filter: author: Flammarion; year: 2024" in out and "1. " in out
    assert main(["--home", home, "search", "jailbreak benchmark", "--json", "--mode", "bm25"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hits"] and data["hits"][0]["retrievers"] == ["bm25"]
    assert main(["--home", home, "search", "kernels", "--year", "2022-2020"]) == 2
    assert "Impossible" in capsys.readouterr().err
    assert main(["--home", home, "search", "robustness", "--affiliation", "eth-zurich", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["filters"]["affiliations"] == ["eth-zurich"] and data["hits"]
    assert all("eth-zurich" in h["paper"]["affiliations"] for h in data["hits"])
    assert main(["--home", home, "search", "x", "--n-authors", "5-2"]) == 2
    assert "author-count" in capsys.readouterr().err


class _ReverseAlphabet:
    """A fake reranker at our own interface: prefers passages that sort last."""

    def score(self, query: str, passages: list[str]) -> list[float]:
        order = sorted(passages)
        return [float(order.index(p)) for p in passages]


def test_rerank_reorders_the_head_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.rerank
    from rag.retrieve import _rerank
    from rag.settings import Settings
    from rag.types import Hit, Paper

    hits = [
        Hit(paper=Paper(id=x, title=x, source="s"), score=1.0 - i / 10, text=x, retrievers=["dense"])
        for i, x in enumerate(["a", "c", "b", "d"])
    ]
    assert isinstance(_ReverseAlphabet(), rag.rerank.Reranker)
    monkeypatch.setattr(rag.rerank, "get_reranker", lambda settings=None: _ReverseAlphabet())
    settings = Settings(retrieve={"rerank_model": "fake", "rerank_depth": 3})  # type: ignore[arg-type]
    out = _rerank(hits, "q", settings)
    assert [h.paper.id for h in out] == ["c", "b", "a", "d"]
    assert out[0].retrievers == ["dense", "rerank"] and out[3].retrievers == ["dense"]


def test_reranking_is_off_by_default() -> None:
    from rag.rerank import get_reranker

    assert get_reranker() is None


@pytest.mark.slow
def test_explicit_filter_with_generic_question_lists_papers(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search("papers", k=50, filters={"author": "Jacot"}, settings=seeds_settings)
    assert hits and all(h.retrievers == ["filter"] for h in hits) and hits.good_match
    years = [h.paper.year or 0 for h in hits]
    assert years == sorted(years, reverse=True)


# ------------------------------------------------------------------------------ relevance: term coverage
class _FakeBM25:
    """Per-term presence over three papers, at the interface `term_coverage` uses (bm25s retriever)."""

    def __init__(self, docs: list[str]) -> None:
        from rag.lexical import tokenize

        self.docs = [set(tokenize(d)) for d in docs]
        self.vocab_dict = {t: i for i, t in enumerate(sorted(set().union(*self.docs)))}
        self.terms = {i: t for t, i in self.vocab_dict.items()}

    def get_scores_from_ids(self, ids: list[int]) -> list[float]:
        return [float(sum(self.terms[i] in d for i in ids)) for d in self.docs]


class _FakeLexical:
    def __init__(self, docs: list[str]) -> None:
        self.retriever = _FakeBM25(docs)
        from rag.idmap import IdMap

        self.ids = IdMap([f"p{i}" for i in range(len(docs))])
        self.vocab = dict(self.retriever.vocab_dict)

    def contains(self, term: str) -> Any:
        import numpy as np

        has = np.array([term in d for d in self.retriever.docs])
        return has if has.any() else None

    def doc_freq(self, term: str) -> int:
        return sum(term in d for d in self.retriever.docs)


def test_term_coverage_weights_rare_terms_and_ignores_question_words() -> None:
    from rag.relevance import content_terms, term_coverage

    lex = _FakeLexical(
        [
            "Frost training for language model tasks",
            "Training language models on many tasks",
            "Training dynamics of language models",
        ]
    )
    assert content_terms("Which papers study Frost training?") == ["frost", "train"]
    cov = term_coverage(lex, "What is Frost Training, and which tasks is it designed for?", lex.ids)
    assert cov["p0"] > cov["p1"] > cov["p2"] >= 0.0
    assert term_coverage(lex, "Frost training", ["p0"])["p0"] == pytest.approx(1.0)
    # a term the corpus never uses weighs most and keeps coverage low
    assert term_coverage(lex, "speculative training", ["p1"])["p1"] < 0.5
    assert term_coverage(lex, "which papers", ["p0"]) == {"p0": 0.0}


def test_a_rare_title_term_in_the_question_names_the_paper() -> None:
    from rag.relevance import names_a_title

    lex = _FakeLexical(
        [
            "RobustBench: a standardized adversarial robustness benchmark for training",
            "Training language models on many tasks",
            "Training dynamics of language models",
        ]
    )
    assert names_a_title(lex, "What does RobustBench measure?", "RobustBench: a standardized benchmark")
    # a common term ("training": 3 papers) names nothing; nor does a rare term absent from the title
    assert not names_a_title(lex, "What does training measure?", "Training language models on many tasks")
    assert not names_a_title(lex, "What does RobustBench measure?", "Training language models on many tasks")
    assert not names_a_title(lex, "What is LoRA?", "RobustBench: a standardized benchmark")


def test_relevance_rises_with_coverage_and_bm25() -> None:
    assert relevance(0.5, 5.0, 1.0) > relevance(0.5, 5.0, 0.3) > relevance(0.5, 0.0, 0.3)
    assert relevance(0.5, 0.0, 7.0) == relevance(0.5, 0.0, 1.0)  # coverage is clipped to 0..1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "What is Frost Training, and which tasks is it designed for?",
            "cross-entropy-games-and-frost-training",
        ),
        ("jailbreaks", None),
        ("grokking", "grokking-at-the-edge-of-numerical-stability"),
        ("RobustBench", "robustbench-a-standardized-adversarial-robustness-benchmark"),
    ],
)
def test_short_and_rare_term_queries_are_good_matches(
    seeds_settings, question: str, expected: str | None
) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search(question, k=5, settings=seeds_settings)
    assert hits.good_match, [(h.paper.id, h.relevance) for h in hits]
    if expected:
        assert hits[0].paper.id == expected
    else:
        assert "jailbreak" in hits[0].paper.title.lower()


@pytest.mark.slow
@pytest.mark.parametrize(
    "question", ["How does speculative decoding speed up inference?", "LoRA", "speech recognition"]
)
def test_terms_the_corpus_lacks_are_flagged(seeds_settings, question: str) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    hits = search(question, settings=seeds_settings)
    assert hits and not hits.good_match


@pytest.mark.slow
def test_metadata_questions_select_papers(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    from rag.retrieve import search

    eth = search("Which papers list ETH Zurich as an affiliation?", settings=seeds_settings)
    assert eth.filters.affiliations == ["eth-zurich"] and eth.good_match
    assert set(_ids(eth)) == {
        "jailbreakbench-an-open-robustness-benchmark-for-jailbreaking",
        "competition-report-finding-universal-jailbreak-backdoors-in",
    }
    up = search("Which Daily Papers entries received at least 3 upvotes?", settings=seeds_settings)
    assert up.filters.upvotes_min == 3 and len(up) == 4 and all((h.paper.upvotes or 0) >= 3 for h in up)
    oc = search("Which papers are categorized under optimization and control (OC)?", settings=seeds_settings)
    # a selective filter is itself the evidence: good_match although the text scores low
    assert oc.filters.categories == ["OC"] and oc.good_match and {h.paper.category for h in oc} == {"OC"}


@pytest.mark.slow
def test_every_hit_carries_its_best_chunk_text(seeds_settings) -> None:  # type: ignore[no-untyped-def]
    """Dense queries read ids and distances only; the k hits shown get their chunk text afterwards, re-made
    from their papers."""
    from rag.retrieve import _open, search

    hits = search("sharpness-aware minimization and flat minima", k=8, settings=seeds_settings)
    store = _open(seeds_settings).store
    with_chunk = [h for h in hits if h.chunk_id]
    assert with_chunk, "the dense retriever found none of the hits"
    assert store.texts([h.chunk_id for h in with_chunk if h.chunk_id]) == {  # Chroma keeps no texts
        h.chunk_id: "" for h in with_chunk if h.chunk_id
    }
    from rag.chunk import chunk_with_settings

    grouped = chunk_with_settings([h.paper for h in with_chunk], seeds_settings)
    stored = {c.id: c.text for group in grouped for c in group}  # re-made from the papers
    for hit in hits:
        assert hit.text.startswith(hit.paper.title.split()[0])
        if hit.chunk_id:
            assert hit.text == stored[hit.chunk_id] and hit.chunk_id.startswith(hit.paper.id + "#")
    assert store.texts([]) == {} and store.texts(["no-such-paper#0"]) == {}


def test_a_rare_name_like_word_anywhere_in_the_paper_names_it() -> None:
    from rag.relevance import names_a_title

    lex = _FakeLexical(
        [
            "Evolving normalization layers. We call the discovered layers EvoNorms and they work.",
            "Training language models on many tasks",
            "Training dynamics of language models",
        ]
    )
    title = "Evolving Normalization-Activation Layers"
    assert names_a_title(lex, "What are EvoNorms?", title, "p0")  # a name in the abstract, not the title
    assert not names_a_title(lex, "What are EvoNorms?", title, "p1")  # … of another paper
    assert not names_a_title(lex, "What are evonorms?", "Training dynamics", "p0")  # not written as a name
