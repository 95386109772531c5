"""build_index and Store: the seeds with the real model and embedded Chroma, plus incremental behaviour
(no-op, changed, removed, kill-and-resume) with a fake embedder, and the fault paths."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from netutil import free_port

import rag.index
import rag.index_embed
import rag.index_reconcile
from rag.chunk import chunk_with_settings
from rag.corpus_identity import collection_name
from rag.errors import IndexMissingError, StoreCorruptError, StoreUnavailableError
from rag.index import build_index, indexed_chunks
from rag.settings import Settings
from rag.store import STORED_KEYS, Store
from rag.types import Paper


class FakeEmbedder:
    """Deterministic vectors from a text hash; counts calls; can fail after some batches."""

    model_id = "fake"
    dim = 16

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.token_texts = 0
        self.fail_after = fail_after

    def encode(
        self, texts: list[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.texts += len(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    # word pieces: [CLS]=0, [SEP]=1, "."=2, "the"=3 (a stop word), any other word → 4..63
    VOCAB = ["[CLS]", "[SEP]", ".", "the", *(f"w{i}" for i in range(4, 64))]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        out = []
        for text in texts:
            ids = [0]
            for word in re.findall(r"\w+|[^\w\s]", text.lower()):
                digest = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                ids.append({".": 2, "the": 3}.get(word, 4 + digest % 60))
            out.append([*ids, 1])
        return out

    def token_vectors(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(self.token_ids([text])[0], dtype=np.int32)
        seed = int.from_bytes(hashlib.sha256(("tok" + text).encode()).digest()[:4], "little")
        return ids, np.random.default_rng(seed).standard_normal((len(ids), self.dim)).astype(np.float32)

    def encode_with_tokens(
        self, texts: list[str], *, batch_size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        self.token_texts += len(texts)
        return self.encode(texts), [self.token_vectors(t) for t in texts]

    def token_table(self) -> tuple[list[str], list[int]]:
        return list(self.VOCAB), [0, 1]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    return embedder


def papers(n: int, *, long: set[int] | None = None) -> list[Paper]:
    out = []
    for i in range(n):
        sentences = 60 if long and i in long else 2
        abstract = " ".join(f"Paper {i} finding {j} is described here." for j in range(sentences))
        out.append(
            Paper(id=f"p{i}", title=f"Title {i}", abstract=abstract, source="t.jsonl",
                  authors=[f"Author {i}"], year=2000 + i)
        )
    return out


def vectors_by_id(settings: Settings, ids: list[str]) -> dict[str, np.ndarray]:
    got = Store.open(settings).collection.get(ids=ids, include=["embeddings"])
    return dict(zip(got["ids"], got["embeddings"], strict=True))


def stored_ids(settings: Settings) -> list[str]:
    store = Store.open(settings)
    return sorted(store.chunk_states())


# ------------------------------------------------------------------ incremental, fake embedder


def test_reindex_unchanged_is_a_no_op(fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    first = build_index(papers(5, long={2}), settings)
    assert first.papers == 5 and first.embedded == first.chunks > 5 and first.unchanged == 0
    bm25 = Store.open(settings).folder / "bm25"
    stamp = (bm25 / "rag_lexical.json").stat().st_mtime_ns
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: pytest.fail("embedder loaded"))
    again = build_index(papers(5, long={2}), settings)
    assert (again.embedded, again.unchanged, again.removed) == (0, 5, 0)
    assert again.chunks == first.chunks
    assert (bm25 / "rag_lexical.json").stat().st_mtime_ns == stamp  # BM25 not rebuilt


def test_changed_and_removed_papers(fake: FakeEmbedder) -> None:
    settings = Settings()
    corpus = papers(4, long={1})
    build_index(corpus, settings)
    long_chunks = [i for i in stored_ids(settings) if i.startswith("p1#")]
    assert len(long_chunks) > 1
    changed = corpus[1].model_copy(update={"abstract": "Now a single short sentence."})
    new = papers(6)[5]
    stats = build_index([corpus[0], changed, corpus[2], new], settings)
    assert (stats.papers, stats.unchanged, stats.removed, stats.embedded) == (4, 2, 1, 2)
    ids = stored_ids(settings)
    assert ids == ["p0#0", "p1#0", "p2#0", "p5#0"]  # p3 gone, p1's extra chunks gone
    store = Store.open(settings)
    assert store.count() == 4
    got = store.collection.get(ids=["p1#0"], include=["documents", "embeddings"])
    assert got["documents"] == [None]  # Chroma keeps vectors and metadata; texts are re-made from papers
    (chunk,) = chunk_with_settings([changed], settings)[0]
    assert "single short sentence" in chunk.text
    assert np.allclose(got["embeddings"][0], fake.encode([chunk.text])[0], atol=1e-6)
    assert set(store.papers()) == {"p0", "p1", "p2", "p5"}
    assert store.papers()["p1"].abstract == "Now a single short sentence."
    manifest = json.loads((store.folder / "manifest.json").read_text())
    assert set(manifest["paper_hashes"]) == {"p0", "p1", "p2", "p5"}


def test_kill_and_resume_leaves_no_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    monkeypatch.setattr(rag.index_embed, "WRITE_BATCH", 4)
    dying = FakeEmbedder(fail_after=2)
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: dying)
    corpus = papers(12, long={3})
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, settings)
    partial = Store.open(settings, create=True).count()
    assert partial == 8  # two batches were written before the "kill"
    healthy = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: healthy)
    stats = build_index(corpus, settings)
    assert healthy.token_texts == stats.embedded  # the killed run's word pieces were kept and used
    expected = build_index(corpus, Settings(home=settings.home.parent / "clean")).chunks
    assert stats.chunks == expected == Store.open(settings).count()
    assert 0 < stats.embedded < expected  # only what was missing (or partly written) was embedded
    ids = stored_ids(settings)
    assert len(ids) == len(set(ids)) == expected
    assert_late_matches(settings, healthy)
    assert build_index(corpus, settings).embedded == 0


def test_killed_change_then_reverted_corpus_is_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed while writing a change must not let the old corpus take the no-op fast path."""
    settings = Settings()
    healthy = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: healthy)
    corpus = papers(3)
    build_index(corpus, settings)
    ids = ["p1#0", "p2#0"]
    original = vectors_by_id(settings, ids)
    changed = [corpus[0]] + [p.model_copy(update={"abstract": f"New words for {p.id}."}) for p in corpus[1:]]
    monkeypatch.setattr(rag.index_embed, "WRITE_BATCH", 1)
    dying = FakeEmbedder(fail_after=1)  # writes one changed paper, then dies
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: dying)
    with pytest.raises(KeyboardInterrupt):
        build_index(changed, settings)
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: healthy)
    stats = build_index(corpus, settings)  # back to the original papers
    assert (stats.embedded, stats.unchanged) == (1, 2)
    now = vectors_by_id(settings, ids)  # (Chroma returns ids in its own order)
    assert all(np.allclose(now[i], original[i], atol=1e-6) for i in ids)


def assert_late_matches(settings: Settings, embedder: FakeEmbedder) -> None:
    """``late/`` holds, for exactly the chunks in Chroma, the word-piece vectors of their current text
    (stop words, punctuation and special pieces dropped), each paper's rows contiguous; no parts left. With
    merged rows (rag.late_merge), each paper's distinct pieces' mean rows, on its first chunk."""
    from rag.late import LATE_DIR, PARTS_DIR, LateIndex
    from rag.late_codec import StoredRows
    from rag.late_merge import merge

    store = Store.open(settings)
    chunks = {c.id: c for c in indexed_chunks(settings)}
    assert sorted(chunks) == stored_ids(settings)
    folder = store.folder / LATE_DIR
    meta = json.loads((folder / "chunks.json").read_text())
    assert sorted(row[0] for row in meta["chunks"]) == sorted(chunks)
    late = LateIndex(folder)
    assert len(late.vectors) == meta["rows"]
    merged = meta.get("layout") == "paper"
    by_paper: dict[str, list[list]] = {}  # type: ignore[type-arg]
    seen: list[str] = []
    for cid, pid, content_hash, start, end in meta["chunks"]:
        chunk = chunks[cid]
        assert (pid, content_hash) == (chunk.paper_id, chunk.metadata["content_hash"])
        if not seen or seen[-1] != pid:
            assert pid not in seen  # contiguous per paper
            seen.append(pid)
        ids, vecs = embedder.token_vectors(chunk.text)
        keep = ids >= 4  # [CLS], [SEP], "." and the stop word "the" are not stored
        want = vecs[keep] / np.linalg.norm(vecs[keep], axis=1, keepdims=True)
        got = StoredRows(late.vectors, late.scales, start, end, late.codec).floats()
        if merged:
            by_paper.setdefault(pid, []).append([ids[keep], want, start, end])
            continue
        assert got.shape == want.shape and np.allclose(got, want, atol=0.01)
    for rows in by_paper.values():  # merged: the paper's rows on its first chunk, in piece-id order
        (_, _, start, end), rest = rows[0], rows[1:]
        assert all(s == e == end for _, _, s, e in rest)
        dirs, length = merge(np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]))
        got = StoredRows(late.vectors, late.scales, start, end, late.codec).floats()
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        assert got.shape == dirs.shape  # pq codes are near, int8 rows nearer
        assert (got * dirs).sum(1).min() > (0.999 if late.codec is None else 0.8)  # (toy codebooks)
        assert late.lengths is not None and np.allclose(late.lengths[start:end], length, atol=0.01)
    assert not (store.folder / PARTS_DIR).exists()


def test_late_vectors_follow_changes_without_re_encoding(fake: FakeEmbedder) -> None:
    settings = Settings()
    corpus = papers(4, long={1})
    first = build_index(corpus, settings)
    assert fake.token_texts == first.embedded  # one forward pass per chunk, pooled + word pieces
    assert_late_matches(settings, fake)
    fake.token_texts = 0
    changed = corpus[1].model_copy(update={"abstract": "Now a single short sentence about the topic."})
    stats = build_index([corpus[0], changed, corpus[2], papers(6)[5]], settings)
    assert stats.embedded == 2 and fake.token_texts == 2  # the unchanged papers' rows were reused
    assert_late_matches(settings, fake)


def test_late_vectors_rebuilt_when_missing_without_touching_chroma(fake: FakeEmbedder) -> None:
    import shutil

    settings = Settings()
    first = build_index(papers(5, long={2}), settings)
    shutil.rmtree(Store.open(settings).folder / "late")
    fake.token_texts = 0
    again = build_index(papers(5, long={2}), settings)
    assert again.embedded == 0 and fake.token_texts == first.chunks
    assert_late_matches(settings, fake)


def test_late_interaction_off_then_on(fake: FakeEmbedder) -> None:
    settings = Settings()
    settings.index.late_interaction = False
    build_index(papers(3), settings)
    folder = Store.open(settings).folder
    assert not (folder / "late").exists() and fake.token_texts == 0
    settings.index.late_interaction = True
    stats = build_index(papers(3), settings)
    assert stats.embedded == 0 and fake.token_texts == stats.chunks
    assert_late_matches(settings, fake)


def test_changed_chunking_uses_a_new_collection_and_readers_notice(fake: FakeEmbedder) -> None:
    settings = Settings()
    build_index(papers(3, long={0}), settings)
    other = Settings()
    other.index.chunk_max_tokens = 64
    assert collection_name(other) != collection_name(settings)
    with pytest.raises(IndexMissingError, match="other settings"):
        Store.open(other)
    stats = build_index(papers(3, long={0}), other)
    assert stats.embedded == stats.chunks and stats.collection == collection_name(other)
    assert Store.open(other).count() == stats.chunks
    assert not (settings.index_dir / collection_name(settings)).exists()  # the old one was dropped


def test_jsonl_sources_through_load_corpus(fake: FakeEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    rows = [{"id": f"j{i}", "title": f"Paper about topic {i}", "abstract": f"Topic {i} is studied."}
            for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = build_index([path], Settings())
    assert stats.papers == 3 and stats.chunks == 3


# ------------------------------------------------------------------ faults


def test_reading_before_indexing_says_run_rag_index() -> None:
    with pytest.raises(IndexMissingError, match="rag index"):
        Store.open(Settings())


def test_unreachable_server_names_the_url_and_writes_nothing(fake: FakeEmbedder) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(chroma_url=url)
    with pytest.raises(StoreUnavailableError, match=url.replace(".", r"\.")):
        build_index(papers(2), settings)
    assert not settings.index_dir.exists()


def test_unreachable_server_cli_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    url = f"http://127.0.0.1:{free_port()}"
    code = main(["--chroma-url", url, "index", "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0 and url in err and "Traceback" not in err


def test_corrupt_chroma_directory(fake: FakeEmbedder) -> None:
    settings = Settings()
    chroma = settings.index_dir / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError, match="Move it away") as info:
        build_index(papers(2), settings)
    assert str(chroma) in str(info.value)


def test_chroma_path_is_a_file(fake: FakeEmbedder) -> None:
    settings = Settings()
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / "chroma").write_text("foreign")
    with pytest.raises(StoreCorruptError, match="rag index"):
        build_index(papers(2), settings)


def test_foreign_sqlite_database(fake: FakeEmbedder) -> None:
    import sqlite3

    settings = Settings()
    chroma = settings.index_dir / "chroma"
    chroma.mkdir(parents=True)
    with sqlite3.connect(chroma / "chroma.sqlite3") as db:
        db.execute("create table collections (x text)")
        db.execute("insert into collections values ('not chroma')")
    with pytest.raises(StoreCorruptError, match="Move it away"):
        build_index(papers(2), settings)


# ------------------------------------------------------------------ the seeds, real model, embedded Chroma


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, object]:
    settings = Settings(home=tmp_path_factory.mktemp("seed_home"))
    return settings, build_index(None, settings)


@pytest.mark.slow
def test_seed_index(seeded) -> None:  # type: ignore[no-untyped-def]
    from rag.corpus import load_corpus
    from rag.embed import get_tokenizer

    settings, stats = seeded
    corpus = load_corpus()
    assert stats.papers == len(corpus) > 100
    assert stats.embedded == stats.chunks >= stats.papers and stats.unchanged == 0
    store = Store.open(settings)
    assert store.count() == stats.chunks and stats.collection == store.collection_name
    assert set(store.papers()) == {p.id for p in corpus}
    got = store.collection.get(include=["documents", "metadatas"])
    assert set(got["documents"]) == {None}  # no chunk texts in Chroma: re-made from the papers
    texts = {c.id: c.text for group in chunk_with_settings(corpus, settings) for c in group}
    assert set(texts) == set(got["ids"])
    by_paper: dict[str, list[str]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        pid, n = cid.rsplit("#", 1)
        by_paper.setdefault(pid, []).append(n)
        assert meta["paper_id"] == pid and meta["n"] == int(n)
        assert set(meta) == set(STORED_KEYS)  # the paper's other fields are in the records
    assert set(by_paper) == {p.id for p in corpus}
    counts = get_tokenizer(settings).count(list(texts.values()))
    assert max(counts) <= settings.index.chunk_max_tokens
    title_only = [p for p in corpus if not p.has_abstract]
    for paper in title_only:
        assert by_paper[paper.id] == ["0"]
    current = json.loads((settings.index_dir / "current.json").read_text())
    assert current["collection"] == store.collection_name
    assert (store.folder / "bm25").is_dir()


@pytest.mark.slow
def test_seed_query_finds_a_paper_by_its_abstract(seeded) -> None:  # type: ignore[no-untyped-def]
    from rag.embed import get_embedder

    settings, _ = seeded
    store = Store.open(settings)
    paper = next(p for p in store.papers().values() if p.has_abstract and p.year)
    query = get_embedder(settings).encode_query(paper.abstract.split(". ")[0])
    hits = store.query(query, 5)
    assert hits[0].paper_id == paper.id and 0 <= hits[0].distance < 0.5
    others = [p.id for p in store.papers().values() if p.id != paper.id]
    filtered = store.query(query, 50, where={"paper_id": {"$in": others}})  # search's allow-list
    assert filtered and all(h.paper_id != paper.id for h in filtered)


@pytest.mark.slow
def test_seed_reindex_embeds_nothing(seeded) -> None:  # type: ignore[no-untyped-def]
    settings, stats = seeded
    again = build_index(None, settings)
    assert (again.embedded, again.unchanged, again.removed) == (0, stats.papers, 0)
    assert again.chunks == stats.chunks


@pytest.mark.slow
def test_cli_prints_stats(seeded, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from rag.cli import main

    settings, stats = seeded
    assert main(["--home", str(settings.home), "index", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"papers     {stats.papers}" in out and "embedded   0" in out
    assert stats.collection in out and str(settings.index_dir / "chroma") in out


def test_sentence_level_chunks_from_the_environment(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's sentence-level setting: one sentence per chunk, in its own collection."""
    default_name = collection_name(Settings())
    monkeypatch.setenv("RAG_INDEX__CHUNK_MAX_SENTENCES", "1")
    monkeypatch.setenv("RAG_INDEX__CHUNK_OVERLAP_SENTENCES", "0")
    settings = Settings()
    assert collection_name(settings) != default_name
    stats = build_index(papers(3), settings)
    assert stats.chunks == 6  # two sentences per paper
    assert Store.open(settings).count() == 6
    texts = [c.text for c in chunk_with_settings(papers(3), settings)[1]]
    assert texts == [f"Title 1\n\nPaper 1 finding {j} is described here." for j in (0, 1)]


# ------------------------------------------------------------------ content hashes: location-free


def write_corpus(folder: Path, n: int = 4) -> list[Path]:
    """A BEIR folder (``corpus.jsonl``) and, beside it, a JSON-lines file of other papers."""
    folder.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"Document {i}", "text": f"Finding {i} is shown. It holds."}
            for i in range(n)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    rows = [{"id": f"j{i}", "title": f"Paper {i}", "abstract": f"Topic {i} is studied.", "year": 2020}
            for i in range(2)]
    (folder.parent / "extra.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [folder, folder.parent / "extra.jsonl"]


def sources_in_records(settings: Settings) -> set[str]:
    return {p.source for p in Store.open(settings).papers().values()}


def chroma_keys(settings: Settings) -> set[str]:
    """Every metadata key the collection's chunks carry."""
    got = Store.open(settings).collection.get(include=["metadatas"])
    return {k for m in got["metadatas"] for k in m}


def no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: pytest.fail("embedder loaded"))


def test_moving_the_corpus_folder_re_embeds_nothing(
    fake: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    settings = Settings()
    first = build_index(write_corpus(tmp_path / "sf300"), settings)
    assert first.embedded == first.chunks
    assert sources_in_records(settings) == {"sf300/corpus.jsonl", "extra.jsonl"}
    shutil.move(tmp_path / "sf300", tmp_path / "sf400")
    (tmp_path / "extra.jsonl").rename(tmp_path / "renamed.jsonl")
    no_embedder(monkeypatch)
    moved = build_index([tmp_path / "sf400", tmp_path / "renamed.jsonl"], settings)
    assert (moved.embedded, moved.unchanged, moved.removed, moved.chunks) == (0, 6, 0, first.chunks)
    # The paper records follow the move (source filters run over them); Chroma holds no source to update.
    assert sources_in_records(settings) == {"sf400/corpus.jsonl", "renamed.jsonl"}
    assert chroma_keys(settings) == set(STORED_KEYS)
    assert_late_matches(settings, FakeEmbedder())
    monkeypatch.setattr(Store, "chunk_states", lambda self: pytest.fail("reconciled again"))
    again = build_index([tmp_path / "sf400", tmp_path / "renamed.jsonl"], settings)  # the no-op fast path
    assert again.embedded == 0


def test_metadata_only_changes_update_the_records_and_leave_chroma_alone(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    corpus = papers(3)
    build_index(corpus, settings)
    fake.calls = 0
    before = Store.open(settings).collection.get(include=["metadatas"])
    changed = [
        corpus[0].model_copy(update={"year": 1999, "kind": "poster"}),
        corpus[1].model_copy(update={"year": None}),
        corpus[2],
    ]
    updates: list[dict[str, Any]] = []
    monkeypatch.setattr(rag.index, "update_metadata", lambda store, u: updates.append(u))
    stats = build_index(changed, settings)
    assert (stats.embedded, stats.unchanged) == (0, 3) and fake.calls == 0
    assert all(not u for u in updates)  # Chroma holds no year or kind: nothing to rewrite there
    records = Store.open(settings).papers()
    assert (records["p0"].year, records["p0"].kind, records["p1"].year) == (1999, "poster", None)
    assert Store.open(settings).collection.get(include=["metadatas"]) == before
    assert build_index(changed, settings).embedded == 0


def test_a_re_embedded_chunk_loses_metadata_its_paper_no_longer_has(fake: FakeEmbedder) -> None:
    settings = Settings()
    corpus = papers(2)
    build_index(corpus, settings)
    changed = corpus[1].model_copy(update={"abstract": "A new text.", "year": None, "authors": []})
    stats = build_index([corpus[0], changed], settings)
    assert stats.embedded == 1
    meta = Store.open(settings).collection.get(ids=["p1#0"], include=["metadatas"])["metadatas"][0]
    assert set(meta) == set(STORED_KEYS)


def test_chunks_written_with_every_paper_field_keep_them_until_their_paper_changes(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Collections from before 2026-12-01 held title, authors, year, … per chunk. Nothing reads those keys, so
    an upgrade does not rewrite every chunk (minutes at 100k papers): the next run takes the fast path, and
    a paper whose metadata changes has its chunks brought to the four stored keys."""
    import rag.store

    settings = Settings()
    corpus = papers(4, long={1})
    with monkeypatch.context() as m:
        m.setattr(rag.index_reconcile, "chroma_metadata", dict)
        m.setattr(rag.store, "chroma_metadata", dict)
        build_index(corpus, settings)
    assert {"title", "authors"} <= chroma_keys(settings)
    with monkeypatch.context() as m:
        m.setattr(Store, "chunk_states", lambda self, ids=None: pytest.fail("reconciled"))
        assert build_index(corpus, settings).embedded == 0
    changed = [corpus[0], corpus[1].model_copy(update={"year": 1999}), *corpus[2:]]
    fake.calls = 0
    stats = build_index(changed, settings)
    assert (stats.embedded, fake.calls) == (0, 0)
    got = Store.open(settings).collection.get(include=["metadatas"])
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        assert (set(meta) == set(STORED_KEYS)) == cid.startswith("p1#"), cid


def legacy_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index as the code before location-free hashes did: every field but the line number, and a
    signature over ids and hashes only."""
    from rag.chunk import paper_hash

    def signature(entries: Any) -> str:  # that code's signature left out the metadata digests
        text = "\n".join(f"{pid}\t{h}" for pid, h, _ in sorted(entries))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]

    def upsert_with_texts(self: Store, chunks: list, embeddings: np.ndarray) -> None:  # type: ignore[type-arg]
        from rag.store import chroma_metadata

        self.collection.upsert(  # that code also kept each chunk's text in Chroma
            ids=[c.id for c in chunks],
            embeddings=np.asarray(embeddings, dtype=np.float32),
            documents=[c.text for c in chunks],
            metadatas=[chroma_metadata(c.metadata) for c in chunks],
        )

    monkeypatch.setattr(rag.index, "content_hash", paper_hash)
    monkeypatch.setattr(rag.index, "signature_of", signature)
    monkeypatch.setattr(Store, "upsert", upsert_with_texts)


def test_an_index_built_with_the_old_hash_formula_re_embeds_nothing(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    corpus = papers(5, long={2})
    with monkeypatch.context() as m:
        legacy_formula(m)
        first = build_index(corpus, settings)
    old = {cid: meta["content_hash"] for cid, meta in Store.open(settings).chunk_states().items()}
    no_embedder(monkeypatch)
    stats = build_index(corpus, settings)
    assert (stats.embedded, stats.unchanged, stats.chunks) == (0, 5, first.chunks)
    chunks = indexed_chunks(settings)
    by_id = {p.id: p for p in corpus}
    assert all(c.metadata["content_hash"] == rag.index.content_hash(by_id[c.paper_id]) for c in chunks)
    assert all(c.metadata["content_hash"] != old[c.id] for c in chunks)
    assert_late_matches(settings, FakeEmbedder())  # late/ rows re-keyed, not re-encoded
    assert build_index(corpus, settings).embedded == 0


def test_an_old_formula_index_whose_folder_moved_re_embeds_nothing(
    fake: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old hash covered the source name, so only the stored chunk texts can show the vectors are right."""
    settings = Settings()
    sources = write_corpus(tmp_path / "sf300")
    with monkeypatch.context() as m:
        legacy_formula(m)
        first = build_index(sources, settings)
    (tmp_path / "sf300").rename(tmp_path / "sf400")
    no_embedder(monkeypatch)
    stats = build_index([tmp_path / "sf400", sources[1]], settings)
    assert (stats.embedded, stats.unchanged, stats.chunks) == (0, 6, first.chunks)
    assert sources_in_records(settings) == {"sf400/corpus.jsonl", "extra.jsonl"}
    assert_late_matches(settings, FakeEmbedder())


def test_a_changed_abstract_still_re_embeds_under_any_formula(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    corpus = papers(3)
    with monkeypatch.context() as m:
        legacy_formula(m)
        build_index(corpus, settings)
    changed = [corpus[0], corpus[1].model_copy(update={"abstract": "Entirely new words."}), corpus[2]]
    stats = build_index(changed, settings)
    assert (stats.embedded, stats.unchanged) == (1, 2)
    assert_late_matches(settings, fake)
