"""`rag ask --server`: answers streamed from a running `rag ui` (ui/api.py's /answer_stream, rag/remote.py).

The UI is served in-process with the scripted answer stream (tests/ui_fakes.py); what is tested is the
transport: the items `rag ask` gets from the server are the ones the server's answer stream yielded, filters
and k arrive, errors come back as our messages, and a missing or dead server means answering in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port
from ui_fakes import PAPERS, FakeStream

from rag.errors import RagError
from rag.remote import SERVER_FILE, ServerUnavailable, find_server, remote_stream
from rag.settings import Settings
from rag.types import Answer, Filters, Hits
from ui.app import create_app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeStream]]:
    fake = FakeStream()
    demo = create_app(Settings(home="/nonexistent/rag-remote-test"), fake, papers=PAPERS)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url, fake
    finally:
        demo.close()


def _local(question: str, **options: Any) -> list[Any]:
    return list(FakeStream()(question, **options))


def test_the_items_are_those_the_server_streamed(served: tuple[str, FakeStream]) -> None:
    url, fake = served
    question = "Which paper introduces JailbreakBench?"
    got = list(remote_stream(url, question, model="fake/any", k=2, filters={"year": "2020-2025"}))
    want = _local(question, model="fake/any", k=2, filters=Filters(year_min=2020, year_max=2025))
    assert isinstance(got[0], Hits) and isinstance(got[-1], Answer)
    assert [h.paper.id for h in got[0]] == [h.paper.id for h in want[0]]
    assert got[0].filters == want[0].filters
    assert "".join(i for i in got if isinstance(i, str)) == "".join(i for i in want if isinstance(i, str))
    assert got[-1].model_dump() == want[-1].model_dump()
    call = fake.calls[-1]
    assert call["k"] == 2 and call["model"] == "fake/any"
    assert call["filters"] == Filters(year_min=2020, year_max=2025)


@pytest.mark.parametrize("model", ["fake/list", "fake/claim", "fake/abstain", "fake/model-error"])
def test_every_answer_shape_arrives_whole(served: tuple[str, FakeStream], model: str) -> None:
    url, _ = served
    got = list(remote_stream(url, "Which papers study robustness?", model=model))
    want = _local("Which papers study robustness?", model=model)
    assert got[-1].model_dump() == want[-1].model_dump()


def test_a_refused_question_raises_the_servers_message(served: tuple[str, FakeStream]) -> None:
    url, _ = served
    with pytest.raises(RagError, match="year_min is after year_max"):
        list(remote_stream(url, "anything", model="fake/raise"))
    with pytest.raises(RagError, match="Unknown filter name"):
        list(remote_stream(url, "anything", filters={"colour": "blue"}))


def test_no_server_is_server_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailable, match="no `rag ui` answers"):
        next(remote_stream(f"http://127.0.0.1:{free_port()}/", "anything"))
    with pytest.raises(ServerUnavailable, match="no ui-server.json"):
        find_server(tmp_path)
    script = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    (tmp_path / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:1/", "pid": int(dead.stdout)}))
    with pytest.raises(ServerUnavailable, match="has exited"):
        find_server(tmp_path)
    (tmp_path / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9/", "pid": os.getpid()}))
    assert find_server(tmp_path) == "http://127.0.0.1:9/"


def test_launch_announces_the_server_of_its_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.app

    built: list[Any] = []
    monkeypatch.setattr(ui.app, "create_app", lambda *a, **k: built.append(create_app(*a, **k)) or built[-1])
    port = free_port()
    ui.app.launch(
        Settings(home=tmp_path), port=port, answer_fn=FakeStream(), preload=False,
        prevent_thread_lock=True, quiet=True,
    )
    demo = built[0]
    try:
        url = find_server(tmp_path)
        assert url == f"http://127.0.0.1:{port}/"
        assert isinstance(list(remote_stream(url, "Which paper introduces JailbreakBench?"))[-1], Answer)
    finally:
        demo.close()


def test_rag_ask_server_url_prints_the_servers_answer(
    served: tuple[str, FakeStream], capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    url, fake = served
    flags = ["--server-url", url, "--model", "fake/any", "--year", "2024"]
    code = main(["ask", *flags, "What is JailbreakBench?"])
    out = capsys.readouterr().out
    assert code == 0
    assert "JailbreakBench is the answer [1]" in out and PAPERS[0].title in out
    assert fake.calls[-1]["filters"] == Filters(year_min=2024, year_max=2024)
    code = main(["ask", "--server-url", url, "--model", "fake/any", "--json", "What is JailbreakBench?"])
    assert code == 0 and json.loads(capsys.readouterr().out)["model"] == "fake/any"


def test_rag_ask_server_without_a_server_says_so_and_answers_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No UI for this home: a note, then the in-process pipeline (here with no index: its own error)."""
    from rag.cli import main

    monkeypatch.setenv("RAG_HOME", str(tmp_path))
    code = main(["ask", "--server", "What is JailbreakBench?"])
    err = capsys.readouterr().err
    assert "no `rag ui` is running" in err and "answering in this process" in err
    assert code != 0 and "rag index" in err


def test_rag_ask_server_loads_no_model_and_no_index(served: tuple[str, FakeStream]) -> None:
    """What makes it fast: a `rag ask --server-url` process imports neither the models nor the stores."""
    url, _ = served
    script = (
        "import sys\n"
        "from rag.cli import main\n"
        f"code = main(['ask', '--server-url', {url!r}, '--model', 'fake/any', 'What is JailbreakBench?'])\n"
        "heavy = ['llama_cpp', 'litellm', 'torch', 'sentence_transformers', 'chromadb', 'onnxruntime',"
        " 'gradio']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "JailbreakBench is the answer [1]" in done.stdout
    assert "LOADED []" in done.stdout
