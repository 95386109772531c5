"""One collection per corpus: collection-name rules, the recorded corpus name, ownership checks, the upgrade
of an index built before corpus names, and the embedded-Chroma error messages (fake embedder, embedded
Chroma; the shared-server cases are in test_store_server.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_index import FakeEmbedder, papers

import rag.index
from rag.corpus_identity import (
    CORPUS_KEY,
    collection_name,
    corpus_collection_name,
    corpus_name,
    generated_corpus_name,
    legacy_collection_name,
    read_identity,
    shape_digest,
    valid_collection_name,
)
from rag.errors import ConfigError, IndexError_, StoreCorruptError
from rag.index import build_index
from rag.settings import IndexSettings, Settings
from rag.store import RagEmbeddingFunction, Store


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    return embedder


def named(corpus: str | None, home: Path | None = None, **kw: Any) -> Settings:
    extra = {"home": home} if home else {}
    return Settings(index=IndexSettings(corpus_name=corpus), **extra, **kw)


def make_legacy(settings: Settings) -> str:
    """Turn an indexed home into what an index built before corpus names looked like: the collection named
    ``<prefix>-<hash>`` without corpus metadata, no corpus.json, current.json and manifest without one."""
    store = Store.open(settings)
    legacy = legacy_collection_name(settings)
    got = store.collection.get(include=["embeddings", "documents", "metadatas"])
    ef = RagEmbeddingFunction(settings.index.embed_model)
    old = store.client.create_collection(
        legacy,
        embedding_function=ef,
        metadata={"hnsw:space": "cosine", "rag_schema": 2, "embed_model": settings.index.embed_model},
    )
    old.upsert(ids=got["ids"], embeddings=got["embeddings"], documents=got["documents"],
               metadatas=got["metadatas"])
    store.client.delete_collection(store.collection_name)
    store.folder.rename(settings.index_dir / legacy)
    manifest_path = settings.index_dir / legacy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["collection"] = legacy
    del manifest["corpus"]
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    current_path = settings.index_dir / "current.json"
    current = json.loads(current_path.read_text())
    del current["corpus"]
    current.update(collection=legacy, folder=str(settings.index_dir / legacy))
    current_path.write_text(json.dumps(current, indent=2) + "\n")
    (settings.index_dir / "corpus.json").unlink()
    return legacy


# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "folder", ["rag", "My Data!!", ".rag", "a..b", "x" * 80, "日本語", "-", "2024.papers", "a b.c_d-e"]
)
def test_generated_names_are_valid_chroma_names(tmp_path: Path, folder: str) -> None:
    home = tmp_path / folder
    corpus = generated_corpus_name(home)
    assert IndexSettings(corpus_name=corpus).corpus_name == corpus  # also a valid setting
    name = corpus_collection_name("papers", corpus, "0123456789ab")
    assert valid_collection_name(name) and len(name) <= 63
    assert generated_corpus_name(home) == corpus  # stable for one home
    assert generated_corpus_name(tmp_path / "other" / folder) != corpus  # another path, another corpus


def test_collection_name_rules() -> None:
    for good in ["abc", "papers-lab-0123456789ab", "a.b_c-d", "x" * 63]:
        assert valid_collection_name(good), good
    for bad in ["ab", "x" * 64, "-abc", "abc-", "a..b", "has space", "ünï", "abc_"]:
        assert not valid_collection_name(bad), bad
    for bad in ["-lab", "lab.", "a..b", "two words", "x" * 41, "lab/1"]:
        with pytest.raises(ValueError, match="corpus name"):
            IndexSettings(corpus_name=bad)
    assert IndexSettings(corpus_name="  ").corpus_name is None  # RAG_INDEX__CORPUS_NAME= means unset
    assert IndexSettings(corpus_name="x" * 40).corpus_name == "x" * 40
    with pytest.raises(ConfigError, match="corpus name"):
        corpus_collection_name("p" * 20, "x" * 40, "0123456789ab")  # 74 characters


def test_name_is_prefix_corpus_and_shape_hash() -> None:
    lab = named("lab")
    assert collection_name(lab) == f"papers-lab-{shape_digest(lab)}"
    assert collection_name(named("lab")) == collection_name(lab)  # same corpus name, same collection
    assert collection_name(named("other")) != collection_name(lab)
    other_model = named("lab")
    other_model.index.chunk_max_tokens = 64
    assert collection_name(other_model) != collection_name(lab)  # the shape still names it
    generated = generated_corpus_name(Settings().home)
    assert collection_name(Settings()) == f"papers-{generated}-{shape_digest(lab)}"


def test_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEX__CORPUS_NAME", "lab-2024")
    assert corpus_name(Settings()) == "lab-2024"
    monkeypatch.setenv("RAG_INDEX__CORPUS_NAME", "no spaces allowed")
    with pytest.raises(ValueError, match="corpus name"):
        Settings()


# ------------------------------------------------------------------------- recorded corpus, ownership


def test_first_index_records_the_corpus_name(fake: FakeEmbedder, tmp_path: Path) -> None:
    settings = Settings()
    stats = build_index(papers(3), settings)
    identity = read_identity(settings)
    assert identity == {"corpus": generated_corpus_name(settings.home)}
    expected = f"papers-{identity['corpus']}-{shape_digest(settings)}"
    assert stats.collection == collection_name(settings) == expected
    store = Store.open(settings)
    assert store.collection.metadata[CORPUS_KEY] == identity["corpus"] == store.corpus
    current = json.loads((settings.index_dir / "current.json").read_text())
    assert current["corpus"] == identity["corpus"]
    # The recorded name holds even if the home moves (its generated name would differ there).
    moved = tmp_path / "moved_home"
    settings.home.rename(moved)
    assert corpus_name(Settings(home=moved)) == identity["corpus"]


def test_refuses_a_collection_of_another_corpus(fake: FakeEmbedder) -> None:
    settings = named("lab")
    build_index(papers(3), settings)
    store = Store.open(settings)
    store.collection.modify(metadata={CORPUS_KEY: "someone-else"})
    with pytest.raises(IndexError_, match="belongs to corpus 'someone-else'") as info:
        build_index(papers(2), settings)  # would remove p2
    assert "RAG_INDEX__CORPUS_NAME" in str(info.value)
    assert Store.open(settings).count() == 3  # nothing deleted


# ------------------------------------------------------------------------------------ upgrade path


def test_embedded_index_from_before_corpus_names_keeps_its_collection(fake: FakeEmbedder) -> None:
    settings = Settings()
    first = build_index(papers(4, long={1}), settings)
    legacy = make_legacy(settings)
    assert collection_name(settings) == legacy
    assert Store.open(settings).count() == first.chunks  # readable before re-indexing
    fake.texts = fake.token_texts = 0
    again = build_index(papers(4, long={1}), settings)
    assert (again.embedded, again.unchanged, again.collection) == (0, 4, legacy)
    assert fake.texts == fake.token_texts == 0  # neither vectors nor word pieces were recomputed
    identity = read_identity(settings)
    assert identity == {"corpus": generated_corpus_name(settings.home), "legacy_collection": legacy}
    assert collection_name(settings) == legacy
    # Changes still work on the legacy collection (it is the home's own: embedded).
    changed = build_index(papers(3), settings)
    assert (changed.removed, changed.collection) == (1, legacy)


def test_upgraded_home_moves_without_re_embedding_when_given_a_corpus_name(fake: FakeEmbedder) -> None:
    settings = Settings()
    first = build_index(papers(4, long={1}), settings)
    legacy = make_legacy(settings)
    build_index(papers(4, long={1}), settings)  # records legacy_collection
    fake.texts = fake.token_texts = 0
    lab = named("lab", home=settings.home)
    stats = build_index(papers(4, long={1}), lab)
    assert stats.collection == collection_name(lab) == f"papers-lab-{shape_digest(lab)}"
    assert (stats.embedded, stats.unchanged, stats.chunks) == (0, 4, first.chunks)
    assert fake.texts == fake.token_texts == 0  # vectors copied, late/ and bm25/ moved
    store = Store.open(lab)
    assert store.count() == first.chunks and store.collection.metadata[CORPUS_KEY] == "lab"
    assert legacy not in [c.name for c in store.client.list_collections()]  # embedded: the old one dropped
    assert not (settings.index_dir / legacy).exists()
    assert "legacy_collection" not in read_identity(settings)
    assert (store.folder / "late" / "vectors.npy").is_file()


def test_upgraded_home_with_a_new_model_gets_its_corpus_collection(fake: FakeEmbedder) -> None:
    settings = Settings()
    build_index(papers(3), settings)
    legacy = make_legacy(settings)
    other = Settings()
    other.index.chunk_max_tokens = 64
    stats = build_index(papers(3), other)
    assert stats.embedded == stats.chunks  # another shape: re-embedding is needed
    assert stats.collection == f"papers-{corpus_name(other)}-{shape_digest(other)}" != legacy
    assert "legacy_collection" not in read_identity(other)


# ------------------------------------------------------------------------------ error messages


def test_foreign_sqlite_is_named_and_not_deleted(fake: FakeEmbedder) -> None:
    import sqlite3

    settings = Settings()
    chroma = settings.index_dir / "chroma"
    chroma.mkdir(parents=True)
    with sqlite3.connect(chroma / "chroma.sqlite3") as db:
        db.execute("create table notes (x text)")
    with pytest.raises(StoreCorruptError, match="without Chroma's tables") as info:
        build_index(papers(2), settings)
    assert "Move it away" in str(info.value) and "delete" not in str(info.value)


def test_other_chroma_failures_do_not_advise_deleting(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chromadb

    settings = Settings()
    build_index(papers(2), settings)

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(chromadb, "PersistentClient", busy)
    with pytest.raises(IndexError_) as info:
        build_index(papers(2), settings)
    message = str(info.value)
    assert not isinstance(info.value, StoreCorruptError)
    assert "database is locked" in message and "delete" not in message.lower()
    assert "Move it away" not in message
