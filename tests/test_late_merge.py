"""Merged late rows (rag.late_merge): one row per distinct word piece per paper, its length kept; scores
equal to MaxSim over the merged rows written out; stores of the other layout rewritten by `rag index`
without embedding; unchanged papers' rows copied as they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_late_codec import WORDS, _chunks, _Encoder, _unit

from rag.index_incremental import ChunkRef
from rag.late import LateIndex, consolidate, is_current
from rag.late_merge import merge
from rag.settings import Settings


def test_merge_keeps_one_mean_row_per_word_piece() -> None:
    rows = _unit(np.random.default_rng(0).standard_normal((5, 8)))
    dirs, length = merge(np.array([7, 3, 7, 7, 3]), rows)
    assert dirs.shape == (2, 8) and length.shape == (2,)
    for row, which in ((0, [1, 4]), (1, [0, 2, 3])):  # ids ascending: 3, then 7
        mean = rows[which].mean(0)
        assert np.allclose(dirs[row] * length[row], mean, atol=1e-6)
        assert length[row] == pytest.approx(np.linalg.norm(mean), abs=1e-6) and length[row] < 1
    one, one_length = merge(np.array([5]), rows[:1])
    assert np.allclose(one, rows[:1]) and one_length[0] == pytest.approx(1.0)


def _merged_maxsim(enc: _Encoder, chunks, late: LateIndex, q_ids, q_vecs) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The documented score over merged rows, written out from the encoder's own vectors."""
    by_paper: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for c in chunks:
        (ids, vecs), = enc.encode_with_tokens([c.text])[1]
        keep = ids >= 2  # the toy vocabulary's specials are 0 and 1
        got = by_paper.setdefault(c.paper_id, ([], []))
        got[0].append(ids[keep])
        got[1].append(_unit(vecs[keep]))
    keep = ~late.query_skip[q_ids]
    q = _unit(np.asarray(q_vecs, np.float32)[keep])
    w = late.idf[q_ids[keep]]
    out = {}
    for pid, (ids, rows) in by_paper.items():
        dirs, length = merge(np.concatenate(ids), np.concatenate(rows))
        out[pid] = float(w @ ((q @ dirs.T) * length).max(1) / w.sum())
    return out


@pytest.mark.parametrize("codec", ["int8", "pq8"])
def test_merged_store_scores_are_maxsim_over_merged_rows(tmp_path: Path, codec: str) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(40)
    assert consolidate(tmp_path, chunks, enc, "toy", codec, merge=True) == len(chunks)  # nothing stored yet
    meta = json.loads((tmp_path / "late" / "chunks.json").read_text())
    assert (meta["format"], meta["layout"], meta["codec"]) == (3, "paper", codec)
    assert is_current(tmp_path, len(chunks), "toy", codec, merge=True)
    assert not is_current(tmp_path, len(chunks), "toy", codec, merge=False)
    words = [{w for c in chunks if c.paper_id == f"p{p}" for w in c.text.split()} for p in range(40)]
    assert meta["rows"] == sum(map(len, words)) < sum(len(c.text.split()) for c in chunks)
    for p in range(40):  # the paper's rows on its first chunk, empty ranges on the others
        first, second = (row for row in meta["chunks"] if row[1] == f"p{p}")
        assert first[4] > first[3] and second[3] == second[4] == first[4]
    late = LateIndex(tmp_path / "late")
    q_ids, q_vecs = enc.query("w1 w7 w30 w59")
    papers = sorted(late.spans)
    got = late.scores(q_ids, q_vecs, papers)
    want = _merged_maxsim(enc, chunks, late, q_ids, q_vecs)
    tolerance = 0.01 if codec == "int8" else 0.15
    assert max(abs(got[p] - want[p]) for p in papers) < tolerance
    assert sorted(papers, key=lambda p: -got[p])[0] in sorted(papers, key=lambda p: -want[p])[:3]


def test_per_piece_store_is_merged_without_re_encoding_and_kept_rows_are_copied(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(30)
    consolidate(tmp_path, chunks, enc, "toy", "pq8")
    enc.encoded.clear()
    assert consolidate(tmp_path, chunks, enc, "toy", "pq8", merge=True) == 0 and enc.encoded == []
    folder = tmp_path / "late"
    codes, lengths = np.load(folder / "vectors.npy"), np.load(folder / "lengths.npy")
    # one paper changes: only its chunks are encoded, every other paper's codes and lengths are copied
    changed = [c for c in _chunks(30)]
    for c in changed:
        if c.paper_id == "p4":
            c.text, c.metadata = "w1 w2 w3 w2", {"content_hash": "new"}
    assert consolidate(tmp_path, changed, enc, "toy", "pq8", merge=True) == 2
    assert sorted(enc.encoded) == sorted(c.text for c in changed if c.paper_id == "p4")
    meta = json.loads((folder / "chunks.json").read_text())
    spans = {row[1]: (row[3], row[4]) for row in meta["chunks"] if row[4] > row[3]}
    assert spans["p4"][1] - spans["p4"][0] == 3  # w1 w2 w3
    new_codes, new_lengths = np.load(folder / "vectors.npy"), np.load(folder / "lengths.npy")
    at = 0
    for p in range(30):
        s, e = spans[f"p{p}"]
        if p != 4:
            assert np.array_equal(new_codes[s:e], codes[at : at + e - s])
            assert np.array_equal(new_lengths[s:e], lengths[at : at + e - s])
            at += e - s
        else:
            at += len({w for c in _chunks(30) if c.paper_id == "p4" for w in c.text.split()})


def test_merged_store_back_to_per_piece_rows_re_encodes(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(10)
    consolidate(tmp_path, chunks, enc, "toy", merge=True)
    enc.encoded.clear()
    assert consolidate(tmp_path, chunks, enc, "toy") == len(chunks)  # merged rows cannot be split again
    meta = json.loads((tmp_path / "late" / "chunks.json").read_text())
    assert (meta["format"], "layout" in meta) == (2, False) and is_current(tmp_path, len(chunks), "toy")


def test_merged_store_without_its_lengths_says_run_rag_index(tmp_path: Path) -> None:
    from rag.errors import IndexMissingError

    consolidate(tmp_path, _chunks(5), _Encoder(WORDS), "toy", merge=True)
    (tmp_path / "late" / "lengths.npy").unlink()
    with pytest.raises(IndexMissingError, match="run `rag index`"):
        LateIndex(tmp_path / "late")


def test_rag_index_merges_when_the_setting_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_index import FakeEmbedder, assert_late_matches, papers

    import rag.embed
    import rag.index
    from rag.index import build_index
    from rag.store import Store

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings=None: fake)
    settings = Settings(index={"late_merge": False, "late_codec": "int8"})  # the first version's store
    corpus = papers(6, long={1})
    build_index(corpus, settings)
    assert_late_matches(settings, fake)
    assert "layout" not in json.loads((Store.open(settings).folder / "late" / "chunks.json").read_text())
    before = (fake.texts, fake.token_texts)
    merged = Settings(index={"late_merge": True, "late_codec": "pq4"})
    stats = build_index(corpus, merged)
    assert stats.embedded == 0 and (fake.texts, fake.token_texts) == before  # merged, nothing encoded
    folder = Store.open(merged).folder / "late"
    meta = json.loads((folder / "chunks.json").read_text())
    assert (meta["layout"], meta["codec"]) == ("paper", "pq4") and len(LateIndex(folder)) == 6
    long_rows = [row for row in meta["chunks"] if row[1] == "p1"]
    assert len(long_rows) > 1 and meta["rows"] < sum(1 for _ in meta["chunks"]) * 40
    again = build_index(corpus, merged)  # nothing changed: the fast path, the rows as they are
    assert again.embedded == 0 and json.loads((folder / "chunks.json").read_text()) == meta
    late = LateIndex(folder)
    ids, vecs = fake.token_vectors("Title 3 finding described")
    assert late.lengths is not None and len(late.scores(ids, vecs, [p.id for p in corpus])) == 6


def test_a_paper_without_rows_is_not_re_encoded_on_every_run(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(3)
    chunks[0].text = chunks[1].text = ""  # p0: no word piece kept
    assert consolidate(tmp_path, chunks, enc, "toy", merge=True) == len(chunks)
    enc.encoded.clear()
    assert consolidate(tmp_path, chunks, enc, "toy", merge=True) == 0 and enc.encoded == []
    assert sorted(LateIndex(tmp_path / "late").spans) == ["p1", "p2"]


def test_idf_from_stored_pieces_matches_a_full_count_and_unchanged_papers_need_no_text(
    tmp_path: Path,
) -> None:
    from rag.late import _idf

    enc = _Encoder(WORDS)
    chunks = _chunks(30)
    consolidate(tmp_path, chunks, enc, "toy", "pq8", merge=True)
    folder = tmp_path / "late"
    meta = json.loads((folder / "chunks.json").read_text())
    assert meta["pieces"] is True
    assert np.allclose(np.load(folder / "idf.npy"), _idf(enc, chunks, len(WORDS) + 2))
    # Paper p3 changes, p4 is removed, p30 is new; the other papers come without their texts.
    changed = _chunks(31)
    grown = [c for c in changed if c.paper_id in ("p3", "p30")]
    for c in grown:
        c.text, c.metadata = c.text + " w5 w6", {"content_hash": c.metadata["content_hash"] + "x"}
    by_paper = {c.paper_id: c for c in grown}
    now = [
        c if c.paper_id in by_paper else ChunkRef(c.id, c.paper_id, c.metadata["content_hash"])  # no text
        for c in changed
        if c.paper_id != "p4"
    ]
    full = [c for c in changed if c.paper_id != "p4"]
    enc.encoded.clear()
    assert consolidate(tmp_path, now, enc, "toy", "pq8", merge=True) == 4  # p3's and p30's chunks
    assert np.allclose(np.load(folder / "idf.npy"), _idf(enc, full, len(WORDS) + 2))
    late = LateIndex(folder)
    assert "p4" not in late.spans and {"p3", "p30"} <= set(late.spans)
    q_ids, q_vecs = enc.query("w5 w6 w11")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    consolidate(fresh, full, enc, "toy", "pq8", merge=True)
    assert np.allclose(np.load(fresh / "late" / "idf.npy"), np.load(folder / "idf.npy"))
    assert set(late.scores(q_ids, q_vecs, late.spans)) == set(LateIndex(fresh / "late").spans)


def test_a_store_without_pieces_is_counted_from_the_texts(tmp_path: Path) -> None:
    """A merged store written before word pieces were kept: its IDF is counted from the chunk texts."""
    from rag.late import _idf

    enc = _Encoder(WORDS)
    chunks = _chunks(20)
    consolidate(tmp_path, chunks, enc, "toy", "pq8", merge=True)
    folder = tmp_path / "late"
    meta = json.loads((folder / "chunks.json").read_text())
    del meta["pieces"]
    (folder / "chunks.json").write_text(json.dumps(meta))
    (folder / "pieces.npy").unlink()
    enc.encoded.clear()
    assert consolidate(tmp_path, chunks[:-2], enc, "toy", "pq8", merge=True) == 0 and enc.encoded == []
    assert np.allclose(np.load(folder / "idf.npy"), _idf(enc, chunks[:-2], len(WORDS) + 2))
    assert json.loads((folder / "chunks.json").read_text())["pieces"] is True


def test_is_current_reads_the_summary_while_chunks_json_is_as_written(tmp_path: Path) -> None:
    """`late/info.json` answers is_current without parsing every chunk row, unless chunks.json changed."""
    import os

    enc = _Encoder(WORDS)
    chunks = _chunks(5)
    consolidate(tmp_path, chunks, enc, "toy", "pq8", merge=True)
    info_path = tmp_path / "late" / "info.json"
    info = json.loads(info_path.read_text())
    assert info["n_chunks"] == len(chunks) and "chunks" not in info
    assert is_current(tmp_path, len(chunks), "toy", "pq8", merge=True)
    info_path.write_text(json.dumps({**info, "n_chunks": 99}))  # the summary is what is read
    assert is_current(tmp_path, 99, "toy", "pq8", merge=True)
    rows = tmp_path / "late" / "chunks.json"
    st = rows.stat()
    os.utime(rows, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # rewritten since: the rows are counted
    assert is_current(tmp_path, len(chunks), "toy", "pq8", merge=True)
    assert not is_current(tmp_path, 99, "toy", "pq8", merge=True)
