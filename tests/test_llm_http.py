"""rag.llm against a real HTTP server on loopback that misbehaves (issue 14 items 2 and 4).

A tiny OpenAI-compatible server (http.server in a thread, a free port on 127.0.0.1) answers
`/v1/chat/completions` the way it is told: a proper reply, an HTML page with status 200, truncated JSON, a
stream that stalls after its first event, or nothing at all. Calls go through rag.llm → litellm → the
OpenAI client, with model `openai/x` and `RAG_LLM__API_BASE` pointing at the server.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rag.errors import LLMProviderError, LLMTimeoutError
from rag.llm import Completion, complete, stream
from rag.settings import Settings

MESSAGES = [{"role": "user", "content": "Which paper introduces JailbreakBench?"}]
STALL_SECONDS = 30.0
HTML = b"<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>"
TRUNCATED = b'{"id":"c1","object":"chat.completion","model":"x","choices":[{"index":0,"message":{"ro'


def _event(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    data = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.server.requests += 1
        mode, streaming = self.server.mode, bool(body.get("stream"))
        try:
            if mode == "html":
                self._send(200, "text/html", HTML)
            elif mode == "truncated":
                self._send(200, "application/json", TRUNCATED)
            elif mode == "silent":
                self.server.stop.wait(STALL_SECONDS)
            elif streaming:  # "ok" or "stall"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._chunk(_event("Jailbreak"))
                if mode == "stall":
                    self.server.stop.wait(STALL_SECONDS)
                    return
                self._chunk(_event("Bench [1]."))
                self._chunk(_event(None, "stop"))
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")
            elif mode == "stall":
                self.server.stop.wait(STALL_SECONDS)
            else:
                reply = {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "x",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "JailbreakBench [1]."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
                }
                self._send(200, "application/json", json.dumps(reply).encode())
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is the point
            pass

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"
    requests = 0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)  # port 0: a free port
        self.stop = threading.Event()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def settings(server: _Server, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RAG_LLM__API_BASE", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("RAG_LLM__MODEL", "openai/x")
    monkeypatch.setenv("RAG_LLM__TIMEOUT", "60")
    s = Settings()
    if not getattr(server, "warm", False):  # the OpenAI client is imported on the first request: not timed
        server.mode = "ok"
        complete(MESSAGES, s)
        server.warm = True  # type: ignore[attr-defined]
    server.requests = 0
    return s


def test_a_well_formed_server_works_through_the_recording_client(server: _Server, settings: Settings) -> None:
    server.mode = "ok"
    assert complete(MESSAGES, settings).text == "JailbreakBench [1]."
    items = list(stream(MESSAGES, settings))
    assert items[:-1] == ["Jailbreak", "Bench [1]."] and isinstance(items[-1], Completion)
    assert items[-1].text == "JailbreakBench [1]."


@pytest.mark.parametrize("how", ["complete", "stream"])
def test_html_page_is_named_as_a_malformed_response(server: _Server, settings: Settings, how: str) -> None:
    server.mode = "html"
    settings.llm.retries = 2
    with pytest.raises(LLMProviderError) as info:
        complete(MESSAGES, settings) if how == "complete" else list(stream(MESSAGES, settings))
    text = str(info.value)
    assert "malformed response" in text and "HTTP 200" in text and "content type text/html" in text
    assert "<html><head><title>Welcome to nginx!" in text  # the first bytes
    assert "RAG_LLM__API_BASE" in text and "empty answer" not in text
    assert server.requests == 1, "a malformed 200 is not retried"


@pytest.mark.parametrize("how", ["complete", "stream"])
def test_truncated_json_is_named_as_a_malformed_response(
    server: _Server, settings: Settings, how: str
) -> None:
    server.mode = "truncated"
    with pytest.raises(LLMProviderError) as info:
        complete(MESSAGES, settings) if how == "complete" else list(stream(MESSAGES, settings))
    text = str(info.value)
    assert "malformed response" in text and "HTTP 200" in text and "application/json" in text
    assert f"{len(TRUNCATED)} bytes" in text and '{"id":"c1"' in text
    if how == "complete":
        assert "invalid JSON" in text
    else:
        assert "no server-sent events" in text


def test_a_stalled_stream_says_how_long_it_waited_and_what_to_raise(
    server: _Server, settings: Settings
) -> None:
    server.mode = "stall"
    settings.llm.timeout = 2.0
    got: list[str | Completion] = []
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError) as info:
        for item in stream(MESSAGES, settings):
            got.append(item)
    elapsed = time.monotonic() - started
    text = str(info.value)
    assert got == ["Jailbreak"]  # what came before the stall was delivered
    assert "stalled" in text and "RAG_LLM__TIMEOUT" in text and "MidStreamFallbackError" not in text
    assert "after 1 part(s)" in text and re.search(r"waited 2\.\d s", text), text
    assert 1.9 < elapsed < 2.0 + 0.5, elapsed


@pytest.mark.parametrize("how", ["complete", "stream"])
def test_a_silent_server_is_bounded_by_the_timeout(server: _Server, settings: Settings, how: str) -> None:
    server.mode = "silent"
    settings.llm.timeout = 1.5
    settings.llm.retries = 2
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError, match="RAG_LLM__TIMEOUT") as info:
        complete(MESSAGES, settings) if how == "complete" else list(stream(MESSAGES, settings))
    elapsed = time.monotonic() - started
    assert "no reply from http://127.0.0.1" in str(info.value)
    assert 1.4 < elapsed < 1.5 + 0.5, elapsed


def test_a_stalled_non_stream_reply_is_bounded_too(server: _Server, settings: Settings) -> None:
    server.mode = "stall"
    settings.llm.timeout = 1.0
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        complete(MESSAGES, settings)
    assert time.monotonic() - started < 1.0 + 0.5

