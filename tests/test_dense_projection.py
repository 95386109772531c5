"""Fewer dimensions in Chroma (index.dense_dims, rag.dense_projection): Chroma indexes projected vectors,
search re-scores its candidates by the full vectors kept in the chunk metadata, so it sees the same
similarities (and relevance) as an index of full vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag.opened_index
import rag.query_encoder
from rag import dense_projection
from rag.corpus_identity import collection_name
from rag.errors import ConfigError, IndexMissingError
from rag.index import build_index
from rag.retrieve import search
from rag.settings import IndexSettings, Settings
from rag.shared_index import PARTS
from rag.store import Store


def write(path: Path, ids: range) -> Path:
    rows = [
        {"id": f"d{i}", "title": f"Study {i} of topic {i % 5}", "authors": [f"Ann Author{i}"],
         "abstract": " ".join(f"Topic {i % 5} result {j} holds for case {i}." for j in range(1 + i % 9))}
        for i in ids
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def homes(tmp_path: Path, dims: int = 8) -> tuple[Settings, Settings]:
    """A home of full vectors and one reduced to ``dims`` (the fake embedder's vectors have 16); no word-piece
    vectors (the fake query encoder has none)."""
    return (
        Settings(home=tmp_path / "full", index={"late_interaction": False}),
        Settings(home=tmp_path / "reduced", index={"dense_dims": dims, "late_interaction": False}),
    )


def assert_same_hits(text: str, full: Settings, reduced: Settings) -> None:
    """The same top hits with the same scores and relevance, up to int8's rounding of the full vectors
    (which may swap two hits whose scores are within it)."""
    ha, hb = search(text, k=8, settings=full), search(text, k=8, settings=reduced)
    assert [h.paper.id for h in hb][:3] == [h.paper.id for h in ha][:3]
    by_id = {h.paper.id: h for h in ha}
    common = [(by_id[h.paper.id], h) for h in hb if h.paper.id in by_id]
    assert len(common) >= 6
    assert all(abs(x.score - y.score) < 0.01 for x, y in common)
    assert all(abs((x.relevance or 0) - (y.relevance or 0)) < 0.03 for x, y in common)


@pytest.fixture
def queries(fake: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(rag.query_encoder, "get_query_encoder", lambda settings=None: fake)
    return fake


# ------------------------------------------------------------------------------------------ the pieces
def test_a_packed_vector_keeps_its_cosine_and_bad_text_reads_as_none() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    back = np.stack([dense_projection.unpack(t, 384) for t in dense_projection.pack(x)])
    assert np.min(np.sum(back * x, axis=1)) > 0.999
    text = dense_projection.pack(x[:1])[0]
    assert len(text) == 520
    assert dense_projection.unpack(text, 128) is None  # another length
    assert dense_projection.unpack("not base64 at all!", 384) is None
    assert dense_projection.unpack(None, 384) is None
    assert dense_projection.unpack(dense_projection.pack(np.zeros((1, 384)))[0], 384) is None


def test_the_fit_keeps_the_leading_directions_and_completes_a_small_sample() -> None:
    rng = np.random.default_rng(2)
    # 200 vectors that mostly live in 4 directions of 16
    x = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 16)) + 0.05 * rng.standard_normal((200, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = dense_projection.fit(x, 4)
    assert p.basis.shape == (16, 4) and np.allclose(p.basis.T @ p.basis, np.eye(4), atol=1e-5)
    assert np.mean(np.linalg.norm(x @ p.basis, axis=1) ** 2) > 0.95  # the variance is kept
    small = dense_projection.fit(x[:3], 8)  # fewer rows than dimensions: an orthonormal basis all the same
    assert small.basis.shape == (16, 8) and np.allclose(small.basis.T @ small.basis, np.eye(8), atol=1e-5)
    with pytest.raises(ConfigError, match="RAG_INDEX__DENSE_DIMS"):
        dense_projection.fit(x, 16)


def test_the_sample_does_not_depend_on_the_order_of_the_chunks() -> None:
    ids = [f"p{i}#0" for i in range(5000)]
    first = {ids[i] for i in dense_projection.sample(ids, 300)}
    flipped = ids[::-1]
    assert first == {flipped[i] for i in dense_projection.sample(flipped, 300)} and len(first) == 300


def test_dense_dims_names_another_collection_and_its_file_is_shared() -> None:
    assert collection_name(Settings(index={"dense_dims": 128})) != collection_name(Settings())
    assert dense_projection.FILE in PARTS


# ---------------------------------------------------------------------------------------- the index
def test_a_reduced_index_gives_the_similarities_and_hits_of_full_vectors(
    tmp_path: Path, queries: Any
) -> None:
    src = write(tmp_path / "a.jsonl", range(60))
    full, reduced = homes(tmp_path)
    stats = build_index([src], full)
    assert build_index([src], reduced).chunks == stats.chunks
    store = Store.open(reduced)
    got = store.collection.get(include=["embeddings", "metadatas"])
    assert np.asarray(got["embeddings"]).shape == (stats.chunks, 8)  # what Chroma holds in memory
    full_vectors = [dense_projection.unpack(m[dense_projection.FULL_KEY], 16) for m in got["metadatas"]]
    assert all(v is not None for v in full_vectors)
    assert (store.folder / dense_projection.FILE).is_file()
    assert all(dense_projection.FULL_KEY not in m for m in store.chunk_states().values())

    q = queries.encode_query("Topic 3")
    assert Store.open(reduced).query(q, 5, contents=False, allowed={"no such paper"}) == []
    two = Store.open(reduced).query(q, stats.chunks, contents=False, allowed={"d3", "d8"})
    assert {h.paper_id for h in two} == {"d3", "d8"}
    assert len(Store.open(reduced).query(q, stats.chunks, contents=False, rescore=3)) == 3
    for home in (full, reduced):  # candidates from every chunk: what Chroma returns is then the same set
        home.retrieve.depth = 100
    for text in ("Topic 3 result 2 holds", "Study 17 of topic 2", "case 41"):
        q = queries.encode_query(text)
        a = {h.chunk_id: h.distance for h in Store.open(full).query(q, stats.chunks, contents=False)}
        b = Store.open(reduced).query(q, stats.chunks, contents=False)
        assert [h.distance for h in b] == sorted(h.distance for h in b)
        assert {h.chunk_id for h in b} == set(a)
        assert max(abs(h.distance - a[h.chunk_id]) for h in b) < 0.02  # int8's rounding, not 0.05-0.1
        assert_same_hits(text, full, reduced)


def test_a_lost_projection_is_named_and_rag_index_embeds_everything_again(
    tmp_path: Path, queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write(tmp_path / "a.jsonl", range(30))
    _, reduced = homes(tmp_path)
    first = build_index([src], reduced)
    before = [(h.paper.id, h.score) for h in search("Study 7 of topic 2", settings=reduced)]
    path = Store.open(reduced).folder / dense_projection.FILE
    path.write_bytes(b"not a numpy file")
    monkeypatch.setattr(rag.opened_index, "_INDEXES", {})  # as a new process would open it
    with pytest.raises(IndexMissingError, match=r"dense\.npz is not a NumPy \.npz file.*`rag index`") as info:
        search("Topic 3", settings=reduced)
    assert "delete" not in str(info.value).lower()
    again = build_index([src], reduced)
    assert again.embedded == again.chunks == first.chunks and again.removed == 0
    assert dense_projection.load(path.parent)[0] is not None
    after = [(h.paper.id, h.score) for h in search("Study 7 of topic 2", settings=reduced)]
    assert [p for p, _ in after][:3] == [p for p, _ in before][:3]


def test_later_runs_keep_the_projection_and_write_full_vectors(tmp_path: Path, queries: Any) -> None:
    one, two = write(tmp_path / "a.jsonl", range(40)), write(tmp_path / "b.jsonl", range(40, 55))
    full, reduced = homes(tmp_path)
    build_index([one], reduced)
    path = Store.open(reduced).folder / dense_projection.FILE
    fitted = path.read_bytes()
    added = build_index([one, two], reduced)  # the add path: only b.jsonl is read and embedded
    assert added.embedded > 0 and added.unchanged == 40
    rows = [json.loads(line) for line in one.read_text().splitlines()]
    rows[3]["abstract"] += " A changed sentence."
    one.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    changed = build_index([one, two], reduced)  # the incremental full path: one paper re-embedded
    assert changed.embedded >= 1 and changed.unchanged == 54
    assert path.read_bytes() == fitted
    got = Store.open(reduced).collection.get(include=["metadatas"])
    assert len(got["ids"]) == changed.chunks
    assert all(dense_projection.FULL_KEY in m for m in got["metadatas"])
    build_index([one, two], full)
    for home in (full, reduced):
        home.retrieve.depth = 100
    for text in ("Study 44 of topic 4", "Topic 3 result 2 holds"):
        assert_same_hits(text, full, reduced)


def test_dense_dims_must_be_fewer_than_the_models(tmp_path: Path, fake: Any) -> None:
    src = write(tmp_path / "a.jsonl", range(5))
    with pytest.raises(ConfigError, match="16 dimensions"):
        build_index([src], Settings(index=IndexSettings(dense_dims=16)))
