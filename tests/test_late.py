"""Late interaction (rag.late): masks, quantisation, MaxSim scoring on a hand-made store (fast), then the
real MiniLM word-piece vectors of the seeds index (slow)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rag.late import LateIndex, consolidate, quantise, skip_masks
from rag.retrieve import fuse
from rag.settings import Settings


def test_skip_masks_drop_specials_and_punctuation_and_paper_stop_words() -> None:
    vocab = ["[PAD]", "[CLS]", ".", "##,", "the", "##the", "kernel", "##s", "(", "2019"]
    query, paper = skip_masks(vocab, [0, 1])
    assert query.tolist() == [True, True, True, True, False, False, False, False, True, False]
    assert paper.tolist() == [True, True, True, True, True, False, False, False, True, False]


def test_quantise_keeps_cosines() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((50, 384)).astype(np.float32)
    q, scale = quantise(v)
    assert q.dtype == np.int8 and scale.shape == (50,)
    back = q.astype(np.float32) * scale[:, None]
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert np.abs((back * unit).sum(1) - 1).max() < 1e-3


class _Encoder:
    """Word pieces = whitespace words; each word has one fixed random vector (no context)."""

    def __init__(self, words: list[str]) -> None:
        self.vocab = ["[CLS]", "[SEP]", *words]
        rng = np.random.default_rng(1)
        self.table = rng.standard_normal((len(self.vocab), 8)).astype(np.float32)

    def token_table(self) -> tuple[list[str], list[int]]:
        return self.vocab, [0, 1]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [[0, *(self.vocab.index(w) for w in t.split()), 1] for t in texts]

    def encode_with_tokens(self, texts: list[str], *, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        out = []
        for ids in self.token_ids(texts):
            arr = np.array(ids)
            out.append((arr, self.table[arr]))
        return np.zeros((len(texts), 8), np.float32), out

    def query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(self.token_ids([text])[0])
        return ids, self.table[ids]


def _chunk(pid: str, n: int, text: str) -> SimpleNamespace:
    meta = {"content_hash": "h" + pid}
    return SimpleNamespace(id=f"{pid}#{n}", paper_id=pid, n=n, text=text, metadata=meta)


def _store(tmp_path: Path, encoder: _Encoder, chunks: list[SimpleNamespace]) -> LateIndex:
    assert consolidate(tmp_path, chunks, encoder, "toy") == len(chunks)  # nothing to reuse: all encoded
    return LateIndex(tmp_path / "late")


def test_maxsim_scores_papers_over_all_their_chunks(tmp_path: Path) -> None:
    enc = _Encoder(["kernel", "neural", "tangent", "graph", "protein", "the"])
    late = _store(
        tmp_path,
        enc,
        [
            _chunk("a", 0, "neural tangent"),
            _chunk("a", 1, "kernel the"),  # the query's third word sits in a's second chunk
            _chunk("b", 0, "neural graph"),
            _chunk("c", 0, "protein"),
        ],
    )
    scores = late.scores(*enc.query("neural tangent kernel"), ["a", "b", "c", "unknown"])
    assert set(scores) == {"a", "b", "c"}
    assert scores["a"] == pytest.approx(1.0, abs=1e-2)  # every query word has an exact match in a
    assert scores["a"] > scores["b"] > -1 and scores["a"] > scores["c"]
    assert late.scores(*enc.query(""), ["a"]) == {}  # only [CLS]/[SEP]: nothing to score


def test_rare_word_pieces_weigh_more(tmp_path: Path) -> None:
    enc = _Encoder(["common", "rare", "x", "y"])
    late = _store(
        tmp_path,
        enc,
        [_chunk("a", 0, "common x"), _chunk("b", 0, "common rare"), _chunk("c", 0, "common y")],
    )
    s = late.scores(*enc.query("common rare"), ["a", "b", "c"])
    assert max(s, key=s.__getitem__) == "b"
    # "common" is in every paper (low IDF), so matching it alone counts for little
    assert s["b"] - s["a"] > 0.5


def test_reused_rows_need_no_encoder(tmp_path: Path) -> None:
    enc = _Encoder(["alpha", "beta"])
    chunks = [_chunk("a", 0, "alpha"), _chunk("b", 0, "beta")]
    first = _store(tmp_path, enc, chunks)
    assert consolidate(tmp_path, chunks[:1], enc, "toy") == 0  # a's rows come from the old store
    again = LateIndex(tmp_path / "late")
    assert set(again.spans) == {"a"} and set(first.spans) == {"a", "b"}
    assert again.scores(*enc.query("alpha"), ["a"])["a"] == pytest.approx(1.0, abs=1e-2)


def test_unreadable_store_says_run_rag_index(tmp_path: Path) -> None:
    from rag.errors import IndexMissingError

    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "chunks.json").write_text("{not json")
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(tmp_path / "late")


def test_three_way_convex_fusion() -> None:
    dense = {"a": 1.0, "b": 0.5}
    bm25 = {"a": 2.0, "b": 4.0}
    late = {"a": 0.5, "b": 1.0}
    fused = fuse(
        dense, bm25, method="convex", normalisation="max", dense_weight=0.6, late=late, late_weight=0.4
    )
    assert fused["a"] == pytest.approx(0.6 * (0.6 * 1 + 0.4 * 0.5) + 0.4 * 0.5)
    assert fused["b"] == pytest.approx(0.6 * (0.6 * 0.5 + 0.4 * 1) + 0.4 * 1)
    # a paper late interaction did not score gets the late list's floor
    fused = fuse(
        dense, bm25, method="convex", normalisation="max", dense_weight=0.6, late={"b": 1.0}, late_weight=0.4
    )
    assert fused["a"] == pytest.approx(0.6 * (0.6 * 1 + 0.4 * 0.5) + 0.4 * 1.0)
    # without late scores it is the two-way fusion with the same dense share
    two = fuse(dense, bm25, method="convex", normalisation="max", dense_weight=0.6, late={}, late_weight=0.4)
    assert two == fuse(dense, bm25, method="convex", normalisation="max", dense_weight=0.6)
    assert two["a"] == pytest.approx(0.6 * 1 + 0.4 * 0.5)
    rrf = fuse(dense, bm25, method="rrf", dense_weight=0.6, rrf_k=60, late=late, late_weight=0.4)
    assert rrf["b"] == pytest.approx(0.36 / 62 + 0.24 / 61 + 0.4 / 61)


def test_late_weight_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(retrieve={"late_weight": 1.5})
    monkeypatch.setenv("RAG_RETRIEVE__LATE_WEIGHT", "0")
    assert Settings().retrieve.late_weight == 0


# ------------------------------------------------------------------------------- real model, seeds index
@pytest.fixture(scope="module")
def seeds_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from rag.index import build_index

    settings = Settings(home=tmp_path_factory.mktemp("late_home"))
    build_index(None, settings)
    return settings


@pytest.mark.slow
def test_real_word_pieces_find_a_paper_by_its_own_words(seeds_settings: Settings) -> None:
    from rag.embed import get_embedder
    from rag.late import get_late_index
    from rag.retrieve import _open

    index = _open(seeds_settings)
    late = get_late_index(index.folder)
    assert late is not None and len(late) == len(index.papers)
    ids = sorted(index.papers)
    rng = np.random.default_rng(3)
    embedder = get_embedder(seeds_settings)
    for pid in rng.choice([p for p in ids if index.papers[p].abstract], 5, replace=False):
        paper = index.papers[str(pid)]
        question = paper.abstract.split(". ")[0]
        _, q_ids, q_vecs = embedder.encode_query_with_tokens(question)
        scores = late.scores(q_ids, q_vecs, ids)
        assert max(scores, key=scores.__getitem__) == paper.id, question


@pytest.mark.slow
def test_search_with_and_without_late_interaction(seeds_settings: Settings) -> None:
    from rag.retrieve import search

    question = "Is a language model better at predicting the next token than the previous one?"
    with_late = search(question, k=5, settings=seeds_settings)
    off = seeds_settings.model_copy(deep=True)
    off.retrieve.late_weight = 0
    without = search(question, k=5, settings=off)
    assert with_late[0].paper.id == without[0].paper.id == "arrows-of-time-for-large-language-models"
    assert [h.score for h in with_late] != [h.score for h in without]  # the third signal is in the scores
