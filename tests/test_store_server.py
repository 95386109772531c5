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

from rag.index import build_index
from rag.settings import Settings
from rag.store import Store
from rag.types import IndexStats

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
