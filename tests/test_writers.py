"""Concurrent writers on one home, with real processes (tests/index_worker.py runs `build_index` with the
fake embedder, slowed down): a second writer waits or refuses clearly, a killed writer's lock is released by
the operating system, and searches keep answering from the last complete index while a writer works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_index import FakeEmbedder

import rag.embed
import rag.index
import rag.query_encoder
from rag.index import build_index
from rag.settings import Settings
from rag.store import Store

WORKER = Path(__file__).with_name("index_worker.py")
ROOT = Path(__file__).resolve().parent.parent


def spawn(home: Path, n: int, *extra: str) -> subprocess.Popen[str]:
    """A writer process; its stderr goes to ``<home>.<pid>.err`` so a test can read it while it runs."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    err = home.parent / f"{home.name}.{time.monotonic_ns()}.err"
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(home), str(n), *extra],
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
        env=env,
    )
    proc.err_path = err  # type: ignore[attr-defined]
    return proc


def stderr(proc: subprocess.Popen[str]) -> str:
    return Path(proc.err_path).read_text()  # type: ignore[attr-defined]


def wait_for_text(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in stderr(proc):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{text!r} never appeared: {stderr(proc)[-2000:]}")
        time.sleep(0.05)


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the writer exited early: {stderr(proc)[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the writer did not start writing")
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    out, _ = proc.communicate(timeout=timeout)
    stats = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return proc.returncode, stats, stderr(proc)


def consistent(home: Path, n: int) -> int:
    """The index in ``home`` is complete for ``papers(n)``: each chunk once; a no-op run embeds nothing."""
    settings = Settings(home=home)
    ids = sorted(Store.open(settings).chunk_states())
    assert len(ids) == len(set(ids))
    from index_worker import corpus

    rag.index.get_embedder = lambda settings=None: pytest.fail("embedder loaded")  # type: ignore[assignment]
    again = build_index(corpus(n, ""), settings)
    assert (again.embedded, again.papers, again.chunks) == (0, n, len(ids))
    return len(ids)


@pytest.fixture(autouse=True)
def _restore_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.index, "get_embedder", rag.index.get_embedder)


def test_second_writer_waits_with_a_message_then_has_nothing_to_do(tmp_path: Path) -> None:
    home, marker, hold = tmp_path / "home", tmp_path / "started", tmp_path / "go"
    first = spawn(home, 12, "--marker", str(marker), "--hold", str(hold))
    wait_for(marker, first)
    second = spawn(home, 12)
    wait_for_text(second, "waiting for it to finish")
    hold.touch()
    code_a, stats_a, _ = finish(first)
    code_b, stats_b, err_b = finish(second)
    assert code_a == 0 and code_b == 0, err_b
    assert "waiting for it to finish" in err_b and f"pid {first.pid}" in err_b
    assert stats_a["embedded"] == stats_a["chunks"] > 12
    assert stats_b["embedded"] == 0 and stats_b["chunks"] == stats_a["chunks"]  # it ran after, not during
    assert consistent(home, 12) == stats_a["chunks"]


def test_no_wait_refuses_clearly_and_the_first_writer_completes(tmp_path: Path) -> None:
    home, marker, hold = tmp_path / "home", tmp_path / "started", tmp_path / "go"
    first = spawn(home, 12, "--marker", str(marker), "--hold", str(hold))
    wait_for(marker, first)
    code_b, _, err_b = finish(spawn(home, 12, "--no-wait"))
    hold.touch()
    assert code_b == 2 and "Another `rag index`" in err_b and "Traceback" not in err_b
    assert str(home / "index") in err_b and "--no-wait" in err_b
    code_a, stats_a, _ = finish(first)
    assert code_a == 0 and consistent(home, 12) == stats_a["chunks"]


def test_a_writer_killed_with_sigkill_releases_the_lock_and_the_next_run_completes(tmp_path: Path) -> None:
    home, marker = tmp_path / "home", tmp_path / "started"
    first = spawn(home, 16, "--marker", str(marker), "--hold", str(tmp_path / "never"))
    wait_for(marker, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    started = time.monotonic()
    code, stats, err = finish(spawn(home, 16))
    assert code == 0, err
    assert "waiting" not in err and time.monotonic() - started < 60
    assert 0 < stats["embedded"] < stats["chunks"]  # what the killed run wrote was kept
    assert consistent(home, 16) == stats["chunks"]


def test_search_keeps_answering_from_the_last_complete_index_during_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index_worker import corpus

    from rag.retrieve import search

    home, marker, hold = tmp_path / "home", tmp_path / "started", tmp_path / "go"
    settings = Settings(home=home)
    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings=None: embedder)
    monkeypatch.setattr(rag.query_encoder, "get_query_encoder", lambda settings=None: embedder)
    monkeypatch.setattr(FakeEmbedder, "encode_query_with_tokens", _query_with_tokens, raising=False)
    build_index(corpus(10, ""), settings)  # p0..p9
    # The writer re-embeds every paper (new abstracts) and adds p10..p13, replacing bm25/ and late/.
    writer = spawn(
        home, 14, "--delay", "0.2", "--marker", str(marker), "--variant", "revised", "--hold", str(hold)
    )
    wait_for(marker, writer)
    answered, failures = 0, []
    while writer.poll() is None:
        if answered + len(failures) == 3:  # three tries mid-run (the new run's first chunks in Chroma)
            hold.touch()
        try:
            hits = search("Paper 3 finding 1", k=5, settings=settings)
            assert hits and all(h.paper.id in {f"p{i}" for i in range(14)} for h in hits)
            assert {"dense", "bm25"} <= set(hits[0].retrievers), hits[0].retrievers
            answered += 1
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.1)
    code, stats, err = finish(writer)
    assert code == 0, err
    if failures:
        tried = len(failures) + answered
        pytest.fail(f"{len(failures)} of {tried} searches failed: " + " / ".join(failures[:2]))
    assert answered >= 3
    after = search("Paper 12 finding", k=20, settings=settings)  # now the new index: p12, new abstracts
    assert "p12" in {h.paper.id for h in after} and all("revised" in h.paper.abstract for h in after)


def _query_with_tokens(self: FakeEmbedder, text: str) -> tuple:  # type: ignore[type-arg]
    ids, vecs = self.token_vectors(text)
    return self.encode_query(text), ids, vecs
