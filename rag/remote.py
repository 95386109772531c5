"""`rag ask --server`: answer through a running `rag ui`, whose models are already loaded.

A fresh `rag ask` process spends most of its time before the first token on start-up: imports, loading
the local model, reading the system prompt (docs/speed.md). A running `rag ui` has done all of that once.
With ``--server`` (opt-in) the question goes to its ``/answer_stream`` API endpoint (``ui/api.py``) through
gradio_client, and the events come back as the same ``Hits``, ``str`` deltas and ``Answer`` that
``rag.answer_stream`` yields, so the CLI prints them the same way.

``--server`` alone finds the UI of this data home (``rag ui`` writes ``<home>/ui-server.json``); ``--server
URL`` names one (any data home: the answer is that server's). The only module that imports gradio_client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.types import Answer, Hits

SERVER_FILE = "ui-server.json"
"""Written by `rag ui` in its data home (``ui/api.py``): the URL it serves and its pid."""


class ServerUnavailable(RagError):
    """No `rag ui` answers where `--server` looked; the caller answers in-process instead."""


def find_server(home: Path) -> str:
    """The URL of the `rag ui` serving ``home``, from its ``ui-server.json`` (its process must be alive)."""
    path = home / SERVER_FILE
    try:
        record = json.loads(path.read_text())
        url, pid = str(record["url"]), int(record["pid"])
    except FileNotFoundError:
        raise ServerUnavailable(f"no `rag ui` is running for {home} (no {path.name})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ServerUnavailable(f"{path} is unreadable ({exc})") from exc
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ServerUnavailable(f"the `rag ui` recorded in {path} (pid {pid}) has exited") from None
    except PermissionError:  # alive, another user's
        pass
    return url


def remote_stream(
    url: str,
    question: str,
    *,
    filters: Mapping[str, Any] | None = None,
    k: int | None = None,
    model: str | None = None,
) -> Iterator[Hits | str | Answer]:
    """What ``rag.answer_stream`` yields, computed by the `rag ui` at ``url``. ServerUnavailable when it
    cannot be reached (before anything was yielded); RagError with the server's message when it refused
    the question."""
    client = _connect(url)
    job = client.submit(question, json.dumps(dict(filters or {})), model or "", k, api_name="/answer_stream")
    sent_hits = False
    text = ""
    try:
        for event in job:
            if not isinstance(event, dict):
                continue
            if event.get("hits") is not None and not sent_hits:
                sent_hits = True
                yield Hits.from_json(event["hits"])
            now = str(event.get("text") or "")
            if now.startswith(text) and len(now) > len(text):
                yield now[len(text) :]
            text = now
            if event.get("answer") is not None:
                yield Answer.model_validate(event["answer"])
                return
        job.result()  # raises the server's error, if it sent one
    except Exception as exc:
        raise RagError(f"The rag ui at {url} failed: {_message(exc)}") from exc
    finally:
        job.cancel()
    raise RagError(f"The rag ui at {url} ended the answer without a result.")


def _connect(url: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from gradio_client import Client
    except ImportError as exc:  # pragma: no cover - gradio_client comes with gradio
        raise ServerUnavailable(f"gradio_client is not installed ({exc})") from exc
    try:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    except Exception as exc:  # connection refused, not a Gradio app, …
        raise ServerUnavailable(f"no `rag ui` answers at {url} ({_message(exc)})") from exc
    endpoints = client.view_api(print_info=False, return_format="dict") or {}
    if "/answer_stream" not in endpoints.get("named_endpoints", {}):
        raise ServerUnavailable(f"the server at {url} has no /answer_stream endpoint (an older `rag ui`?)")
    return client


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
