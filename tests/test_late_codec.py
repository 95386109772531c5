"""The late-interaction codecs (rag.late_codec) and the stores written with them (rag.late): round-trip
error, scores equal to decode-then-cosine, format-1 stores read and re-coded without re-encoding."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rag.errors import IndexMissingError
from rag.late import LateIndex, consolidate, is_current
from rag.late_codec import ProductQuantiser, check_name, quantise
from rag.settings import Settings


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit rows near 40 centres (word pieces of one word in different contexts are alike)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    return _unit(centres[rng.integers(0, 40, n)] + 0.3 * rng.standard_normal((n, dim)))


def _error(pq: ProductQuantiser, rows: np.ndarray) -> float:
    """Mean squared reconstruction error relative to the rows' variance about their mean."""
    back = pq.decode(pq.encode(rows))
    return float(((back - rows) ** 2).sum(1).mean() / ((rows - rows.mean(0)) ** 2).sum(1).mean())


def test_codec_names() -> None:
    assert check_name("int8") == "int8" and check_name("pq24") == "pq24"
    for bad in ("pq0", "pq", "float16", "PQ24", "pq24 "):
        with pytest.raises(ValueError, match="int8 or pqN"):
            check_name(bad)
    assert Settings(index={"late_codec": "pq32"}).index.late_codec == "pq32"
    with pytest.raises(ValueError):
        Settings(index={"late_codec": "pq0"})


def test_product_quantiser_round_trip_error_falls_with_more_bytes(tmp_path: Path) -> None:
    train, held_out = _clustered(4000, 64, seed=0), _clustered(1000, 64, seed=0)[::-1].copy()
    errors = {}
    for slices in (4, 8, 16, 64):
        pq = ProductQuantiser.fit(train, slices)
        codes = pq.encode(held_out)
        assert codes.shape == (1000, slices) and codes.dtype == np.uint8
        errors[slices] = _error(pq, held_out)
    assert errors[64] < errors[16] < errors[8] < errors[4] < 0.5, errors
    assert errors[64] < 0.05, errors  # one centroid per 1-dimensional slice: close to exact
    pq.save(tmp_path / "codec.npz")
    again = ProductQuantiser.load(tmp_path / "codec.npz")
    assert again.name == "pq64" and np.array_equal(again.decode(codes), pq.decode(codes))


def test_product_quantiser_pads_a_dimension_that_does_not_divide() -> None:
    rows = _clustered(600, 10, seed=1)
    pq = ProductQuantiser.fit(rows, 3)  # slices of 4, the last one padded
    back = pq.decode(pq.encode(rows))
    assert back.shape == rows.shape and _error(pq, rows) < 0.5
    few = ProductQuantiser.fit(rows[:5], 2)  # fewer rows than centroids: each row its own centroid
    assert np.allclose(few.decode(few.encode(rows[:5])), rows[:5], atol=1e-5)


def test_int8_keeps_cosines() -> None:
    v = np.random.default_rng(0).standard_normal((50, 384)).astype(np.float32)
    q, scale = quantise(v)
    back = q.astype(np.float32) * scale[:, None]
    assert np.abs((back * _unit(v)).sum(1) - 1).max() < 1e-3


# ------------------------------------------------------------------------------------ stores and scores
class _Encoder:
    """Word pieces = whitespace words; each word a fixed random vector plus a little per-position noise
    (so a word's rows differ, as contextual vectors do)."""

    def __init__(self, words: list[str], dim: int = 16) -> None:
        self.vocab = ["[CLS]", "[SEP]", *words]
        self.table = np.random.default_rng(1).standard_normal((len(self.vocab), dim)).astype(np.float32)
        self.encoded: list[str] = []

    def token_table(self) -> tuple[list[str], list[int]]:
        return self.vocab, [0, 1]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [[0, *(self.vocab.index(w) for w in t.split()), 1] for t in texts]

    def encode_with_tokens(self, texts: list[str], *, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        self.encoded += texts
        out = []
        for ids in self.token_ids(texts):
            arr = np.array(ids)
            noise = 0.2 * np.random.default_rng(len(ids)).standard_normal((len(arr), self.table.shape[1]))
            out.append((arr, self.table[arr] + noise.astype(np.float32)))
        return np.zeros((len(texts), self.table.shape[1]), np.float32), out

    def query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(self.token_ids([text])[0])
        return ids, self.table[ids]


WORDS = [f"w{i}" for i in range(60)]


def _chunks(n_papers: int) -> list[SimpleNamespace]:
    rng = np.random.default_rng(2)
    out = []
    for p in range(n_papers):
        for n in range(2):
            text = " ".join(rng.choice(WORDS, 12))
            out.append(SimpleNamespace(id=f"p{p}#{n}", paper_id=f"p{p}", n=n, text=text,
                                       metadata={"content_hash": f"h{p}"}))
    return out


def _maxsim(rows: np.ndarray, spans: dict[str, tuple[int, int]], late: LateIndex, q_ids, q_vecs):  # type: ignore[no-untyped-def]
    """The documented score, written out: IDF-weighted mean over question pieces of the best cosine."""
    keep = ~late.query_skip[q_ids]
    q = _unit(np.asarray(q_vecs, np.float32)[keep])
    w = late.idf[q_ids[keep]]
    return {pid: float(w @ (q @ rows[s:e].T).max(1) / w.sum()) for pid, (s, e) in spans.items()}


def test_pq_store_scores_are_decode_then_cosine(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(40)
    consolidate(tmp_path, chunks, enc, "toy")
    exact = LateIndex(tmp_path / "late")
    assert consolidate(tmp_path, chunks, enc, "toy", "pq4") == 0  # re-coded from the int8 rows
    meta = json.loads((tmp_path / "late" / "chunks.json").read_text())
    assert (meta["format"], meta["codec"]) == (2, "pq4") and is_current(tmp_path, len(chunks), "toy", "pq4")
    late = LateIndex(tmp_path / "late")
    assert late.codec is not None and late.scales is None and np.asarray(late.vectors).shape[1] == 4
    decoded = _unit(late.codec.decode(np.asarray(late.vectors)))  # scores are cosines of decoded rows
    q_ids, q_vecs = enc.query("w1 w7 w30 w59")
    papers = sorted(late.spans)
    got = late.scores(q_ids, q_vecs, papers)
    want = _maxsim(decoded, late.spans, late, q_ids, q_vecs)
    assert got.keys() == want.keys() and all(got[p] == pytest.approx(want[p], abs=1e-5) for p in papers)
    # and the estimate stays near the int8 store's scores, and ranks the best papers alike
    ref = exact.scores(q_ids, q_vecs, papers)
    assert max(abs(got[p] - ref[p]) for p in papers) < 0.15
    best = sorted(papers, key=lambda p: -ref[p])[:3]
    assert sorted(papers, key=lambda p: -got[p])[0] in best


def _format_1(folder: Path) -> None:
    """Rewrite a format-2 int8 ``late/`` as the format-1 writer left it (no codec field, no summary or span
    files)."""
    path = folder / "late" / "chunks.json"
    meta = json.loads(path.read_text())
    del meta["codec"]
    meta["format"] = 1
    path.write_text(json.dumps(meta))
    for name in ("info.json", "spans.npy", "span_ids.npy", "span_order.npy"):
        (folder / "late" / name).unlink()


def test_format_1_store_is_read_and_re_coded_without_re_encoding(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(30)
    consolidate(tmp_path, chunks, enc, "toy")
    q_ids, q_vecs = enc.query("w3 w4 w50")
    before = LateIndex(tmp_path / "late").scores(q_ids, q_vecs, [f"p{i}" for i in range(30)])
    _format_1(tmp_path)
    old = LateIndex(tmp_path / "late")  # search keeps working on an old store
    assert old.codec is None and old.scores(q_ids, q_vecs, list(before)) == before
    assert is_current(tmp_path, len(chunks), "toy", "int8")  # int8 wanted: nothing to do
    assert not is_current(tmp_path, len(chunks), "toy", "pq8")  # pq wanted: `rag index` re-codes it
    enc.encoded.clear()
    assert consolidate(tmp_path, chunks, enc, "toy", "pq8") == 0 and enc.encoded == []
    new = LateIndex(tmp_path / "late")
    assert new.codec is not None and new.spans == old.spans
    after = new.scores(q_ids, q_vecs, list(before))
    assert max(abs(after[p] - before[p]) for p in before) < 0.15


def test_pq_codes_are_kept_when_the_corpus_grows(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(30)
    consolidate(tmp_path, chunks[:40], enc, "toy", "pq4")
    first = LateIndex(tmp_path / "late")
    codes = np.asarray(first.vectors).copy()
    assert consolidate(tmp_path, chunks, enc, "toy", "pq4") == 20  # the 10 new papers' chunks
    grown = LateIndex(tmp_path / "late")
    assert first.codec is not None and grown.codec is not None
    assert np.array_equal(grown.codec.books, first.codec.books)  # same codec: old codes still valid
    assert np.array_equal(np.asarray(grown.vectors)[: len(codes)], codes)


def test_unknown_format_says_run_rag_index(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    consolidate(tmp_path, _chunks(3), enc, "toy")
    for name in ("chunks.json", "info.json"):  # as a writer of that format leaves them
        path = tmp_path / "late" / name
        meta = json.loads(path.read_text())
        meta["format"] = 3
        path.write_text(json.dumps(meta))
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(tmp_path / "late")
    assert not is_current(tmp_path, 6, "toy", "int8")


def test_pq_store_without_its_codec_says_run_rag_index(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    consolidate(tmp_path, _chunks(5), enc, "toy", "pq4")
    (tmp_path / "late" / "codec.npz").unlink()
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(tmp_path / "late")


def test_rag_index_re_codes_when_the_codec_setting_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_index import FakeEmbedder, papers

    import rag.embed
    import rag.index
    from rag.index import build_index
    from rag.store import Store

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings=None: fake)
    settings = Settings()
    build_index(papers(6, long={1}), settings)
    folder = Store.open(settings).folder / "late"
    before = (fake.texts, fake.token_texts)
    compact = Settings(index={"late_codec": "pq4"})
    stats = build_index(papers(6, long={1}), compact)
    assert stats.embedded == 0 and (fake.texts, fake.token_texts) == before  # re-coded, nothing encoded
    assert json.loads((folder / "chunks.json").read_text())["codec"] == "pq4"
    assert (folder / "codec.npz").is_file() and not (folder / "scales.npy").exists()
    late = LateIndex(folder)
    assert late.codec is not None and len(late) == 6
    codes = (folder / "vectors.npy").read_bytes()
    build_index(papers(6, long={1}), compact)  # nothing changed: the codes stay as they are
    assert (folder / "vectors.npy").read_bytes() == codes
