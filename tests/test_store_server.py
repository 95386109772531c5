"""The same index against a real `chroma run` server on a free loopback port (RAG_CHROMA_URL)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netutil import free_port, stop, wait_for_http

from rag.corpus_identity import CORPUS_KEY
from rag.index import build_index
from rag.settings import IndexSettings, Settings
from rag.store import Store
from rag.types import IndexStats, Paper

pytestmark = [pytest.mark.server, pytest.mark.slow]


def chroma_cli() -> str:
    local = Path(sys.executable).parent / "chroma"
    found = str(local) if local.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` CLI (installed with chromadb) is missing")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data = tmp_path_factory.mktemp("chroma_server")
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [chroma_cli(), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if wait_for_http(f"{url}/api/v2/heartbeat", proc, 60, interval=0.3) is None:
            pytest.fail(f"chroma server did not start: {(data / 'server.log').read_text()[-2000:]}")
        yield url
    finally:
        stop(proc, 15)
        log.close()


@pytest.fixture(scope="module")
def indexed(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, IndexStats]:
    settings = Settings(home=tmp_path_factory.mktemp("server_home"), chroma_url=server)
    return settings, build_index(None, settings)


def test_seed_index_on_server(indexed: tuple[Settings, IndexStats]) -> None:
    from rag.corpus import load_corpus

    settings, stats = indexed
    corpus = load_corpus()
    assert stats.papers == len(corpus) and stats.embedded == stats.chunks >= stats.papers
    store = Store.open(settings)
    assert store.count() == stats.chunks
    assert store.collection_name in [c.name for c in store.client.list_collections()]
    assert not (settings.index_dir / "chroma").exists()  # vectors live on the server only
    assert set(store.papers()) == {p.id for p in corpus}
    assert (store.folder / "bm25").is_dir()
    current = json.loads((settings.index_dir / "current.json").read_text())
    assert current["chroma_url"] == settings.chroma_url


def test_server_query_and_filters(indexed: tuple[Settings, IndexStats]) -> None:
    from rag.embed import get_embedder

    settings, _ = indexed
    store = Store.open(settings)
    paper = next(p for p in store.papers().values() if p.has_abstract and p.year)
    hits = store.query(get_embedder(settings).encode_query(paper.title), 5)
    assert hits[0].paper_id == paper.id
    only = store.query(get_embedder(settings).encode_query(paper.title), 5, where={"paper_id": paper.id})
    assert {h.paper_id for h in only} == {paper.id}


def test_server_reindex_is_a_no_op(indexed: tuple[Settings, IndexStats]) -> None:
    settings, stats = indexed
    again = build_index(None, settings)
    assert (again.embedded, again.unchanged, again.removed) == (0, stats.papers, 0)
    assert again.chunks == stats.chunks


def test_embedded_reader_does_not_open_the_server_index(indexed: tuple[Settings, IndexStats]) -> None:
    from rag.errors import IndexMissingError

    settings, _ = indexed
    with pytest.raises(IndexMissingError, match="rag index"):
        Store.open(Settings(home=settings.home))


# ------------------------------------------------------------------ several homes on one server


def small_corpora() -> tuple[list[Paper], list[Paper]]:
    from rag.corpus import load_corpus

    papers = [p for p in load_corpus() if p.has_abstract]
    return papers[:6], papers[6:12]


def assert_searches_own_papers(settings: Settings, own: list[Paper]) -> None:
    """Each paper's title finds it first, with a dense hit and relevance above 0, and only ``own`` papers."""
    from rag.retrieve import search

    ids = {p.id for p in own}
    for paper in own[:3]:
        hits = search(paper.title, k=5, settings=settings)
        assert hits[0].paper.id == paper.id
        assert "dense" in hits[0].retrievers and (hits[0].relevance or 0) > 0
        assert {h.paper.id for h in hits} <= ids


def test_two_corpora_on_one_server_do_not_touch_each_other(server: str, tmp_path: Path) -> None:
    """Issue 13: indexing home B used to delete home A's vectors (`removed 208`), leaving A with BM25-only
    hits at relevance 0.00."""
    ours, theirs = small_corpora()
    a = Settings(home=tmp_path / "a", chroma_url=server)
    b = Settings(home=tmp_path / "b", chroma_url=server)
    sa = build_index(ours, a)
    sb = build_index(theirs, b)
    assert sb.removed == 0 and sb.embedded == sb.chunks and sb.collection != sa.collection
    assert Store.open(a).count() == sa.chunks  # A's vectors are all there
    assert_searches_own_papers(a, ours)
    assert_searches_own_papers(b, theirs)
    again = build_index(ours, a)
    assert (again.embedded, again.unchanged, again.removed) == (0, len(ours), 0)


def test_homes_with_one_corpus_name_share_its_collection(server: str, tmp_path: Path) -> None:
    ours, _ = small_corpora()
    lab = IndexSettings(corpus_name="shared-lab")
    a = Settings(home=tmp_path / "a", chroma_url=server, index=lab)
    b = Settings(home=tmp_path / "b", chroma_url=server, index=lab)
    sa = build_index(ours, a)
    sb = build_index(ours, b)
    assert sb.collection == sa.collection and sb.collection.startswith("papers-shared-lab-")
    assert (sb.embedded, sb.unchanged) == (0, len(ours))  # the vectors A wrote serve B
    assert_searches_own_papers(b, ours)
    assert Store.open(a).collection.metadata[CORPUS_KEY] == "shared-lab"


def test_server_index_from_before_corpus_names_moves_without_re_embedding(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_corpus_name import make_legacy

    import rag.index

    ours, theirs = small_corpora()
    a = Settings(home=tmp_path / "a", chroma_url=server)
    first = build_index(ours, a)
    legacy = make_legacy(a)  # as indexed before corpus names: papers-<hash>, shared by every such home
    assert_searches_own_papers(a, ours)  # still readable before re-indexing
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: pytest.fail("embedder loaded"))
    moved = build_index(ours, a)
    assert (moved.embedded, moved.unchanged, moved.chunks) == (0, len(ours), first.chunks)
    assert moved.collection != legacy and CORPUS_KEY in Store.open(a).collection.metadata
    monkeypatch.undo()
    names = [c.name for c in Store.open(a).client.list_collections()]
    assert legacy in names  # left on the server: other pre-corpus homes may still read it
    assert_searches_own_papers(a, ours)
    b = Settings(home=tmp_path / "b", chroma_url=server)
    build_index(theirs, b)
    assert_searches_own_papers(a, ours)


# ------------------------------------------------------------------ one index shared through the server


def test_fresh_home_searches_the_servers_index_without_embedding(
    indexed: tuple[Settings, IndexStats], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 4: home A indexed the seeds; a fresh home B with the same URL and corpus name answers
    `rag search` with A's hits, having fetched A's files (records, BM25, word pieces) and embedded nothing."""
    import os
    import urllib.request

    import rag.embed
    import rag.late
    from rag.corpus_identity import read_identity
    from rag.retrieve import search

    a, stats = indexed
    corpus = read_identity(a)["corpus"]
    env = {**os.environ, "RAG_CHROMA_URL": str(a.chroma_url), "RAG_INDEX__CORPUS_NAME": corpus}
    questions = ["neural tangent kernel", "reinforcement learning policy optimization"]
    want = [[h.paper.id for h in search(q, k=5, settings=a)] for q in questions]

    monkeypatch.setattr(rag.embed, "get_embedder", lambda *a, **k: pytest.fail("embedder loaded"))
    monkeypatch.setattr(rag.late, "consolidate", lambda *a, **k: pytest.fail("word pieces re-encoded"))
    b = Settings(home=tmp_path / "b", chroma_url=a.chroma_url, index=IndexSettings(corpus_name=corpus))
    assert [[h.paper.id for h in search(q, k=5, settings=b)] for q in questions] == want

    # the CLI in a fresh process: the sentence-transformers runtime (which embeds) is never imported
    code = (
        "import sys; from rag.cli import main; rc = main(['search', sys.argv[1], '-k', '3']); "
        "assert 'sentence_transformers' not in sys.modules, 'embedding runtime imported'; sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, questions[0]],
        env={**env, "RAG_HOME": str(tmp_path / "c")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fetched the index files" in done.stderr and "nothing embedded" in done.stderr
    top = next(iter(Store.open(a).papers()[want[0][0]].title.split()))
    assert top in done.stdout

    # `rag ui` on another fresh home serves the page over the fetched index
    port = free_port()
    log = (tmp_path / "ui.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "ui", "--no-preload", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "RAG_HOME": str(tmp_path / "d")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        page = wait_for_http(f"http://127.0.0.1:{port}/", proc, 180)
        log.seek(0)
        assert page is not None, log.read()[-3000:]
        assert "fetched the index files" in log.read()
        assert (tmp_path / "d" / "index" / stats.collection / "late" / "vectors.npy").is_file()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as resp:
            assert resp.status == 200
    finally:
        stop(proc, 15)
        log.close()


def test_a_re_index_reaches_the_other_home(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.shared_index
    from rag.retrieve import search

    ours, theirs = small_corpora()
    lab = IndexSettings(corpus_name="shared-sync")
    a = Settings(home=tmp_path / "a", chroma_url=server, index=lab)
    b = Settings(home=tmp_path / "b", chroma_url=server, index=lab)
    build_index(ours, a)
    assert search(ours[0].title, k=3, settings=b)[0].paper.id == ours[0].id
    changed = build_index([*ours[1:], theirs[0]], a)  # one paper removed, one added
    assert changed.published > 0
    monkeypatch.setattr(rag.shared_index, "CHECK_SECONDS", 0.0)
    hits = search(theirs[0].title, k=3, settings=b)
    assert hits[0].paper.id == theirs[0].id
    assert ours[0].id not in {h.paper.id for h in search(ours[0].title, k=10, settings=b)}
    again = build_index([*ours[1:], theirs[0]], b)  # B's own run: takes A's files, embeds nothing
    assert (again.embedded, again.fetched) == (0, 0)


def test_a_reduced_index_is_shared_with_its_projection(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """index.dense_dims on a server: the projection (dense.npz) is published with the other files, so a
    fresh home searches the reduced vectors with A's hits and relevance, and embeds nothing."""
    import rag.embed
    from rag.dense_projection import FILE
    from rag.retrieve import search

    def top(settings: Settings) -> list[list[tuple[str, float]]]:
        return [
            [(h.paper.id, round(h.relevance or 0, 3)) for h in search(p.title, k=3, settings=settings)]
            for p in ours[:3]
        ]

    ours, _ = small_corpora()
    lab = IndexSettings(corpus_name="reduced-lab", dense_dims=32)
    a = Settings(home=tmp_path / "a", chroma_url=server, index=lab)
    build_index(ours, a)
    assert len(Store.open(a).collection.get(limit=1, include=["embeddings"])["embeddings"][0]) == 32
    want = top(a)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda *x, **k: pytest.fail("embedder loaded"))
    b = Settings(home=tmp_path / "b", chroma_url=server, index=lab)
    assert top(b) == want
    fitted = (Store.open(a).folder / FILE).read_bytes()
    assert (Store.open(b).folder / FILE).read_bytes() == fitted
    assert_searches_own_papers(b, ours)
    # B's copy damaged: `rag index` takes the server's again, and neither empties the shared collection
    # nor embeds anything
    (Store.open(b).folder / FILE).write_bytes(b"damaged")
    again = build_index(ours, b)
    assert (again.embedded, again.unchanged) == (0, len(ours))
    assert (Store.open(b).folder / FILE).read_bytes() == fitted
    assert top(a) == top(b) == want
