"""Papers appended to a merged ``late/`` (rag.late_append): the files equal the full rewrite's for the same
papers, stored papers are neither re-encoded nor re-tokenised, and a store that cannot be appended to is
left alone (the caller rewrites it whole)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_late_codec import WORDS, _chunks, _Encoder

from rag.index_incremental import ChunkRef
from rag.late import LateIndex, consolidate
from rag.late_append import append


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".npy"):
            x, y = np.load(a / name), np.load(b / name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        elif name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                assert sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x), name
        else:
            x, y = json.loads((a / name).read_text()), json.loads((b / name).read_text())
            if name == "info.json":
                x.pop("of"), y.pop("of")  # chunks.json's size and mtime
            assert x == y, name


@pytest.mark.parametrize("codec", ["int8", "pq8"])
def test_appended_papers_give_the_files_of_a_full_rewrite(tmp_path: Path, codec: str) -> None:
    chunks = _chunks(30)  # two chunks per paper
    stored, new = chunks[:40], chunks[40:]
    appended, rewritten = tmp_path / "appended", tmp_path / "rewritten"
    enc = _Encoder(WORDS)
    for folder in (appended, rewritten):
        folder.mkdir()
        consolidate(folder, stored, enc, "toy", codec, merge=True)
    # the full rewrite, as `rag index` did it before: the stored papers as references, without their texts
    refs = [ChunkRef(c.id, c.paper_id, c.metadata["content_hash"]) for c in stored]
    assert consolidate(rewritten, [*refs, *new], enc, "toy", codec, merge=True) == len(new)
    enc.encoded.clear()
    assert append(appended, new, enc, "toy", codec) == len(new)
    assert sorted(enc.encoded) == sorted(c.text for c in new)  # the stored papers were not touched
    _same_files(appended / "late", rewritten / "late")
    assert not (appended / "late.add").exists() and not (appended / "late.tmp").exists()
    late = LateIndex(appended / "late")
    q_ids, q_vecs = enc.query(new[-1].text)
    scores = late.scores(q_ids, q_vecs, [f"p{i}" for i in range(30)])
    assert len(scores) == 30 and max(scores, key=scores.__getitem__) == "p29"


def test_a_store_that_cannot_be_appended_to_is_left_alone(tmp_path: Path) -> None:
    chunks = _chunks(6)
    enc = _Encoder(WORDS)
    consolidate(tmp_path, chunks[:8], enc, "toy", "pq8", merge=True)
    folder = tmp_path / "late"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert append(tmp_path, chunks[6:], enc, "toy", "pq8") is None  # p3 is stored already
    assert append(tmp_path, chunks[8:], enc, "other model", "pq8") is None
    assert append(tmp_path, chunks[8:], enc, "toy", "pq4") is None  # another codec: re-coded whole
    np.save(folder / "lengths.npy", np.zeros(3, np.float16))  # damaged: lengths disagree with the rows
    before["lengths.npy"] = (folder / "lengths.npy").read_bytes()
    assert append(tmp_path, chunks[8:], enc, "toy", "pq8") is None
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert append(tmp_path / "none", chunks[8:], enc, "toy", "pq8") is None  # no store at all


def test_rag_index_appends_added_papers_and_rewrites_on_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_index import FakeEmbedder, assert_late_matches, papers

    import rag.embed
    import rag.index
    from rag.index import build_index
    from rag.settings import Settings

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings=None: fake)
    calls: list[int | None] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(append(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(rag.index, "append_late", spy)
    settings = Settings()
    corpus = papers(8, long={1})
    build_index(corpus[:5], settings)
    assert calls == []  # a new store is written whole
    stats = build_index(corpus, settings)
    assert stats.embedded > 0 and calls == [0]  # appended; every new chunk's rows came from this run's parts
    assert_late_matches(settings, fake)
    changed = [corpus[0].model_copy(update={"abstract": "Changed finding."}), *corpus[1:]]
    build_index(changed, settings)
    assert calls == [0]  # a changed paper: the store is rewritten, not appended to
    assert_late_matches(settings, fake)
    build_index([*changed, *papers(10)[8:]], settings)
    assert len(calls) == 2 and calls[-1] == 0
    assert_late_matches(settings, fake)
