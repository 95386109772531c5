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
from rag.late_segments import SEGMENTS_KEY, is_segment, load_rows


def _same_files(a: Path, b: Path) -> None:
    """The two stores hold the same rows (in one file or several: rag.late_segments) and the same other
    files, byte for byte once loaded."""
    metas = [json.loads((x / "chunks.json").read_text()) for x in (a, b)]
    assert np.array_equal(load_rows(a, metas[0])[:], load_rows(b, metas[1])[:])
    names = sorted(p.name for p in a.iterdir() if not is_segment(p.name))
    assert names == sorted(p.name for p in b.iterdir() if not is_segment(p.name))
    for name in names:
        if name.endswith(".npy"):
            x, y = np.load(a / name), np.load(b / name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        elif name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                assert sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x), name
        else:
            x, y = json.loads((a / name).read_text()), json.loads((b / name).read_text())
            for meta in (x, y):
                meta.pop("of", None)  # chunks.json's size and mtime
                meta.pop(SEGMENTS_KEY, None)
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
    stored_rows = (appended / "late" / "vectors.npy").stat().st_ino
    assert append(appended, new, enc, "toy", codec) == len(new)
    assert sorted(enc.encoded) == sorted(c.text for c in new)  # the stored papers were not touched
    _same_files(appended / "late", rewritten / "late")
    assert (appended / "late" / "vectors.npy").stat().st_ino == stored_rows  # linked, not copied
    assert json.loads((appended / "late" / "info.json").read_text())[SEGMENTS_KEY] == [
        len(np.load(appended / "late" / f)) for f in ("vectors.npy", "vectors.1.npy")
    ]
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
    from rag.errors import IndexMissingError
    from rag.index import build_index
    from rag.settings import Settings
    from rag.store import Store

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
    grown = [*changed, *papers(10)[8:]]
    build_index(grown, settings)
    assert len(calls) == 2 and calls[-1] == 0
    assert_late_matches(settings, fake)
    late = Store.open(settings).folder / "late"
    assert sorted(p.name for p in late.iterdir() if is_segment(p.name)) == ["vectors.1.npy", "vectors.npy"]
    with (late / "vectors.1.npy").open("r+b") as fh:  # a damaged row file is found and rebuilt
        fh.truncate(200)
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(late)
    build_index(grown, settings)
    assert_late_matches(settings, fake)


def test_appends_past_the_file_limit_are_copied_into_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.late_append

    monkeypatch.setattr(rag.late_append, "MAX_SEGMENTS", 3)
    chunks = _chunks(12)
    enc = _Encoder(WORDS)
    appended, rewritten = tmp_path / "appended", tmp_path / "rewritten"
    for folder in (appended, rewritten):
        folder.mkdir()
        consolidate(folder, chunks[:8], enc, "toy", "pq8", merge=True)
    files = []
    for n in (12, 16, 20, 24):  # two papers at a time
        assert append(appended, chunks[n - 4 : n], enc, "toy", "pq8") == 4
        files.append(sorted(p.name for p in (appended / "late").iterdir() if is_segment(p.name)))
        refs = [ChunkRef(c.id, c.paper_id, c.metadata["content_hash"]) for c in chunks[: n - 4]]
        consolidate(rewritten, [*refs, *chunks[n - 4 : n]], enc, "toy", "pq8", merge=True)
        _same_files(appended / "late", rewritten / "late")
        late = LateIndex(appended / "late")
        q_ids, q_vecs = enc.query(chunks[n - 1].text)
        assert late.scores(q_ids, q_vecs, late.spans) == LateIndex(rewritten / "late").scores(
            q_ids, q_vecs, late.spans
        )
    assert [len(f) for f in files] == [2, 3, 1, 2]  # the third append copies every row into one file
