"""Damaged files beside the collection (bm25/, late/, papers.jsonl): search names the file and says
`rag index` repairs it, and `rag index` does (its fast path checks the fingerprints the last run
recorded), re-encoding only what it must. Plus a Chroma server that dies mid-index: local state stays
consistent, the next run completes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_index import FakeEmbedder, papers

import rag.index_embed
from rag.errors import IndexMissingError, StoreUnavailableError
from rag.index import build_index
from rag.late import LateIndex
from rag.lexical import load_lexical_index
from rag.settings import Settings
from rag.store import Store


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def indexed(fake: FakeEmbedder) -> tuple[Settings, Path, int]:
    settings = Settings()
    stats = build_index(papers(8, long={2}), settings)
    return settings, Store.open(settings).folder, stats.chunks


def test_truncated_bm25_file_is_named_and_rebuilt_without_embedding(fake: FakeEmbedder) -> None:
    settings, folder, chunks = indexed(fake)
    victim = max((folder / "bm25").rglob("*.npy"), key=lambda p: p.stat().st_size)
    truncate(victim)
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*bm25 is damaged.*run `rag index`"):
        load_lexical_index(folder / "bm25")
    before = fake.texts
    stats = build_index(papers(8, long={2}), settings)
    assert stats.embedded == 0 and fake.texts == before  # rebuilt from the stored chunks
    assert len(load_lexical_index(folder / "bm25")) == 8


def test_truncated_late_vectors_are_named_and_re_encoded(fake: FakeEmbedder) -> None:
    settings, folder, chunks = indexed(fake)
    truncate(folder / "late" / "vectors.npy", 0.9)
    with pytest.raises(IndexMissingError, match=r"word-piece vectors in .*late .*run `rag index`"):
        LateIndex(folder / "late")
    before = fake.token_texts
    stats = build_index(papers(8, long={2}), settings)
    assert stats.embedded == 0  # Chroma's vectors were fine
    assert fake.token_texts - before == chunks  # the word pieces, and only them, were re-encoded
    late = LateIndex(folder / "late")
    rows = json.loads((folder / "late" / "chunks.json").read_text())["rows"]
    assert len(late) == 8 and np.asarray(late.vectors).shape[0] == rows


def test_damaged_lengths_of_merged_rows_are_re_encoded(fake: FakeEmbedder) -> None:
    """The lengths of merged rows are part of the rows: same size, other bytes → the rows are rebuilt."""
    settings, folder, chunks = indexed(fake)
    lengths = folder / "late" / "lengths.npy"
    good = np.load(lengths)
    np.save(lengths, np.zeros_like(good))  # same size, every length 0
    before = fake.token_texts
    assert build_index(papers(8, long={2}), settings).embedded == 0
    assert fake.token_texts - before == chunks  # the word pieces were re-encoded, not the zeros reused
    assert np.array_equal(np.load(lengths), good)


def test_damaged_idf_is_rewritten_without_re_encoding(fake: FakeEmbedder) -> None:
    settings, folder, _ = indexed(fake)
    idf = folder / "late" / "idf.npy"
    good = idf.read_bytes()
    idf.write_bytes(good[:-8] + b"\x00" * 8)  # same size, different bytes
    before = fake.token_texts
    build_index(papers(8, long={2}), settings)
    assert fake.token_texts == before and idf.read_bytes() == good


def test_truncated_records_file_is_named_and_rewritten(fake: FakeEmbedder) -> None:
    settings, folder, _ = indexed(fake)
    truncate(folder / "papers.jsonl", 0.6)
    with pytest.raises(IndexMissingError, match=r"papers\.jsonl is damaged \(line \d+.*run `rag index`"):
        Store.open(settings).papers()
    assert build_index(papers(8, long={2}), settings).embedded == 0
    assert len(Store.open(settings).papers()) == 8


def test_search_cli_names_the_damaged_file(fake: FakeEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    _, folder, _ = indexed(fake)
    truncate(folder / "papers.jsonl", 0.6)
    assert main(["search", "Paper 3 finding"]) == 2
    err = capsys.readouterr().err
    assert "papers.jsonl is damaged" in err and "rag index" in err and "Traceback" not in err


@pytest.mark.server
@pytest.mark.slow
def test_a_server_that_dies_mid_index_leaves_a_consistent_home(
    fake: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netutil import free_port, stop, wait_for_http
    from test_store_server import chroma_cli

    def start(port: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [chroma_cli(), "run", "--path", str(tmp_path / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60, interval=0.3) is not None
        return proc

    port = free_port()
    server = start(port)
    settings = Settings(chroma_url=f"http://127.0.0.1:{port}")
    monkeypatch.setattr(rag.index_embed, "WRITE_BATCH", 4)
    real = fake.encode_with_tokens

    def dying(texts, *, batch_size=None):  # type: ignore[no-untyped-def]
        if fake.calls == 2:
            stop(server, 15)  # the server goes away after two batches were written
        return real(texts, batch_size=batch_size)

    monkeypatch.setattr(fake, "encode_with_tokens", dying)
    try:
        with pytest.raises(StoreUnavailableError, match=str(port)):
            build_index(papers(12, long={3}), settings)
    except Exception:
        stop(server, 15)
        raise
    folder = next(p for p in settings.index_dir.iterdir() if p.is_dir())
    assert not (folder / "manifest.json").exists()  # no fast path: the next run reconciles
    monkeypatch.setattr(fake, "encode_with_tokens", real)
    server = start(port)
    try:
        stats = build_index(papers(12, long={3}), settings)
        assert 0 < stats.embedded < stats.chunks  # what reached the server was kept
        again = build_index(papers(12, long={3}), settings)
        assert again.embedded == 0 and again.chunks == stats.chunks == Store.open(settings).count()
    finally:
        stop(server, 15)
