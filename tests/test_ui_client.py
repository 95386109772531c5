"""The /answer API endpoint, called with gradio_client against the app served in-process.

The answer stream is a scripted fake at our own interface (tests/ui_fakes.py); what is tested is the UI's
wiring: arguments reach ``answer_stream`` as the API's Filters, the reply is ``rag.Answer`` as JSON, and
errors come back as gradio errors, not stack traces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from netutil import free_port
from ui_fakes import PAPERS, FakeStream

from rag.settings import Settings
from rag.types import Answer, Filters
from ui.app import create_app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Any, FakeStream]]:
    from gradio_client import Client

    fake = FakeStream()
    demo = create_app(Settings(home="/nonexistent/rag-ui-client-test"), fake, papers=PAPERS)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, download_files=False)
        yield client, fake
    finally:
        demo.close()


def test_answer_endpoint_returns_the_answer_as_json(served: tuple[Any, FakeStream]) -> None:
    client, fake = served
    out = client.predict(
        question="Which paper introduces JailbreakBench?",
        year_min=2020,
        year_max=2025,
        author="Chao",
        source="001_dddadfe95e7b2692.txt",
        model="fake/any",
        k=3,
        api_name="/answer",
    )
    answer = Answer.model_validate(out)
    assert answer.text.startswith("JailbreakBench is the answer [1]")
    assert [c.number for c in answer.citations] == [1]
    assert answer.citations[0].paper.title == PAPERS[0].title
    assert answer.citations[0].paper.year == 2024
    assert answer.model == "fake/any" and not answer.abstained and answer.error is None
    call = fake.calls[-1]
    assert call["k"] == 3 and call["model"] == "fake/any"
    assert call["filters"] == Filters(
        authors=["Chao"], year_min=2020, year_max=2025, sources=["001_dddadfe95e7b2692.txt"]
    )


def test_answer_endpoint_defaults_and_abstention(served: tuple[Any, FakeStream]) -> None:
    client, fake = served
    out = client.predict("What is the capital of France?", model="fake/abstain", api_name="/answer")
    assert out["abstained"] is True and out["citations"] == []
    assert [h["paper"]["title"] for h in out["hits"]][:2] == [p.title for p in PAPERS[:2]]
    call = fake.calls[-1]
    assert call["filters"] == Filters() and call["k"] is None


def test_answer_endpoint_reports_model_errors_in_the_answer(served: tuple[Any, FakeStream]) -> None:
    client, _ = served
    out = client.predict("q", model="fake/model-error", api_name="/answer")
    assert "no API key" in out["error"] and out["hits"]


def test_answer_endpoint_turns_rag_errors_into_gradio_errors(served: tuple[Any, FakeStream]) -> None:
    from gradio_client.exceptions import AppError

    client, _ = served
    with pytest.raises(AppError, match="year_min is after year_max"):
        client.predict("q", model="fake/raise", api_name="/answer")
    with pytest.raises(AppError, match="must be a year"):
        client.predict("q", year_min="soon", model="fake/x", api_name="/answer")


def test_only_the_answer_endpoints_are_public(served: tuple[Any, FakeStream]) -> None:
    """/answer (the whole Answer) and /answer_stream (what `rag ask --server` reads, tests/test_remote.py)."""
    client, _ = served
    info = client.view_api(print_info=False, return_format="dict")
    assert sorted(info["named_endpoints"]) == ["/answer", "/answer_stream"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/answer"]["parameters"]]
    assert params == ["question", "year_min", "year_max", "author", "source", "model", "k"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/answer_stream"]["parameters"]]
    assert params == ["question", "filters", "model", "k"]


def test_queue_limits_concurrent_answers() -> None:
    """With concurrency 1 (the local model), simultaneous requests from several users all get answers,
    one at a time: the answer function never runs twice at once."""
    import threading
    import time

    from gradio_client import Client

    fake = FakeStream()
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            for item in fake(*args, **kwargs):
                time.sleep(0.02)
                yield item
        finally:
            with lock:
                state["now"] -= 1

    demo = create_app(Settings(home="/nonexistent/rag-ui-client-test"), slow, papers=PAPERS, concurrency=1)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        clients = [Client(demo.local_url, verbose=False, download_files=False) for _ in range(3)]
        jobs = [c.submit(f"question {i}", model="fake/x", api_name="/answer") for i, c in enumerate(clients)]
        results = [job.result(timeout=120) for job in jobs]
    finally:
        demo.close()
    assert sorted(r["question"] for r in results) == ["question 0", "question 1", "question 2"]
    assert state["max"] == 1
