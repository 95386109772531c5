"""`rag index` after a complete run costs what changed (rag.index_incremental): Chroma is asked only about
changed and removed papers, only new and changed papers are chunked, BM25 gains a segment, `late/` copies the
unchanged papers' rows and word pieces — and the index it leaves equals one built from scratch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_index import FakeEmbedder, papers

import rag.chunk
import rag.index
import rag.index_incremental
import rag.late
from rag.index import build_index
from rag.lexical import load_lexical_index
from rag.settings import Settings
from rag.store import Store
from rag.types import Paper


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    return embedder


class _Spy:
    """Records the papers chunked and the papers whose chunk states were asked of Chroma."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunked: list[str] = []
        self.asked: list[list[str] | None] = []
        self.late_meta_reads = 0  # times late/chunks.json was parsed
        real_chunk, real_states = rag.chunk.chunk_with_settings, Store.chunk_states
        real_read = rag.late.read_meta

        def chunk(papers: list[Paper], settings: Any, hashes: Any = None) -> Any:
            self.chunked += [p.id for p in papers]
            return real_chunk(papers, settings, hashes)

        def states(store: Store, paper_ids: Any = None) -> Any:
            self.asked.append(None if paper_ids is None else sorted(paper_ids))
            return real_states(store, paper_ids)

        def read_meta(late_dir: Path) -> Any:
            self.late_meta_reads += 1
            return real_read(late_dir)

        for module in (rag.chunk, rag.index, rag.index_incremental):
            if hasattr(module, "chunk_with_settings"):
                monkeypatch.setattr(module, "chunk_with_settings", chunk)
        for module in (rag.late, rag.index_incremental):
            monkeypatch.setattr(module, "read_meta", read_meta)
        monkeypatch.setattr(Store, "chunk_states", states)


def _late(home: Settings) -> tuple[dict[str, Any], np.ndarray]:
    folder = Store.open(home).folder / "late"
    meta = json.loads((folder / "chunks.json").read_text())
    return meta, np.load(folder / "idf.npy")


def _bm25_hits(home: Settings, query: str) -> tuple[str, set[str]]:
    """The best paper and every paper that matches (BM25 segments keep their own length normalisation, so
    tied scores may order differently from a fresh build's)."""
    hits = load_lexical_index(Store.open(home).folder / "bm25").search(query, n=100)
    best = hits[0][0] if len(hits) == 1 or hits[0][1] > hits[1][1] else "(tie)"
    return best, {pid for pid, _ in hits}


def test_an_add_touches_only_what_changed_and_equals_a_fresh_build(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    corpus = papers(12, long={3})
    settings = Settings()
    build_index(corpus, settings)
    changed = corpus[3].model_copy(update={"abstract": "A new abstract on sparse attention. It is short."})
    later = [*corpus[:3], changed, *corpus[4:11], *papers(15)[12:]]  # p11 removed, p12-p14 new
    spy = _Spy(monkeypatch)
    stats = build_index(later, settings)
    assert (stats.papers, stats.removed) == (len(later), 1)
    assert spy.asked == [["p11", "p3"]]  # not every chunk's state
    assert sorted(spy.chunked) == ["p12", "p13", "p14", "p3"]  # the unchanged papers were not re-chunked
    assert spy.late_meta_reads == 1  # late/chunks.json parsed once, for the chunk ids and the stored rows

    fresh = Settings(home=tmp_path / "fresh")
    build_index(later, fresh)
    meta, idf = _late(settings)
    fresh_meta, fresh_idf = _late(fresh)
    assert [r[:3] for r in meta["chunks"]] == [r[:3] for r in fresh_meta["chunks"]]
    assert np.allclose(idf, fresh_idf)
    assert Store.open(settings).count() == Store.open(fresh).count()
    for query in ("sparse attention", "Paper 13 finding", "paper 5", "finding 1 described title"):
        assert _bm25_hits(settings, query) == _bm25_hits(fresh, query)
    assert "p11" not in load_lexical_index(Store.open(settings).folder / "bm25").ids


def test_a_metadata_change_asks_chroma_about_that_paper_only(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = papers(6)
    settings = Settings()
    build_index(corpus, settings)
    moved = [*corpus[:2], corpus[2].model_copy(update={"year": 1999}), *corpus[3:]]
    spy = _Spy(monkeypatch)
    fake.calls = 0
    stats = build_index(moved, settings)
    assert stats.embedded == 0 and fake.calls == 0 and spy.chunked == []
    assert spy.asked == [["p2"]]
    assert Store.open(settings).papers()["p2"].year == 1999  # the year lives in the records, not in Chroma


def test_a_collection_changed_behind_the_manifest_is_reconciled_chunk_by_chunk(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = papers(6)
    settings = Settings()
    build_index(corpus, settings)
    Store.open(settings).collection.delete(ids=["p4#0"])  # the manifest no longer describes the collection
    spy = _Spy(monkeypatch)
    stats = build_index([*corpus, *papers(7)[6:]], settings)
    assert spy.asked == [None]  # every chunk's state
    assert stats.embedded == 2 and Store.open(settings).count() == 7  # p4 repaired, p6 added


def test_word_pieces_of_this_runs_chunks_are_not_tokenised_again(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`late/` merges a paper's rows by word piece and counts pieces for the IDF: the ids come from the
    forward pass that embedded the chunk (kept in `late.parts/`), not from a second tokenisation."""
    tokenised: list[str] = []
    real = fake.token_ids

    def counted(texts: list[str]) -> list[list[int]]:
        tokenised.extend(texts)
        return real(texts)

    monkeypatch.setattr(fake, "token_ids", counted)
    settings = Settings()
    build_index(papers(8, long={2}), settings)
    assert len(tokenised) == fake.token_texts > 8  # once per chunk: its forward pass (the fake tokenises)
    meta, idf = _late(settings)
    assert meta["pieces"] is True and len(idf) == len(FakeEmbedder.VOCAB)
    import shutil

    shutil.rmtree(Store.open(settings).folder / "late")  # no parts left: the rows are re-encoded
    tokenised.clear()
    fake.token_texts = 0
    build_index(papers(8, long={2}), settings)
    assert fake.token_texts > 8 and len(tokenised) == 2 * fake.token_texts  # tokenised, then re-encoded
    assert np.allclose(_late(settings)[1], idf)
