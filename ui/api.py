"""The streaming API endpoint ``/answer_stream`` of `rag ui`, which `rag ask --server` reads
(:mod:`rag.remote`), and the file that tells a `rag ask` of the same data home where the UI listens.

``/answer_stream`` takes the question, the filters as a JSON object (the mapping ``rag.answer`` takes, e.g.
``{"authors": ["Flammarion"], "year": "2022-"}``), a model id and k, and yields events as the answer
streams: ``{"hits": <Hits JSON>, "text": <answer text so far>, "answer": null}``, and last
``{"hits": …, "text": …, "answer": <Answer JSON>}``. Each event carries the whole state so far, so an event
the transport coalesces loses nothing. It shares the chat's concurrency limit (one local model).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.errors import RagError
from rag.filters import coerce_filters
from rag.remote import SERVER_FILE
from rag.types import Answer, Hits

if TYPE_CHECKING:
    from ui.app import RagUI

def answer_events(
    ui: RagUI, question: str, filters: str = "", model: str = "", k: int | None = None
) -> Iterator[dict[str, Any]]:
    """The events of one answer (see the module docstring); bad input raises gr.Error with our message."""
    try:
        mapping = json.loads(filters) if (filters or "").strip() else None
    except json.JSONDecodeError as exc:
        raise gr.Error(f"filters must be a JSON object, e.g. {{\"year\": \"2022-\"}} ({exc}).") from exc
    if mapping is not None and not isinstance(mapping, dict):
        raise gr.Error('filters must be a JSON object, e.g. {"year": "2022-"}.')
    hits: dict[str, Any] | None = None
    text = ""
    try:
        for item in ui.stream(question, model=model, filters=coerce_filters(mapping), k=k):
            if isinstance(item, Hits):
                hits = item.to_json()
                yield {"hits": hits, "text": text, "answer": None}
            elif isinstance(item, str):
                text += item
                yield {"hits": hits, "text": text, "answer": None}
            elif isinstance(item, Answer):
                yield {"hits": hits, "text": text, "answer": item.model_dump(mode="json")}
                return
    except RagError as exc:
        raise gr.Error(str(exc)) from exc
    raise gr.Error("The answer stream ended without an answer.")


def register(ui: RagUI) -> None:
    """Add ``/answer_stream`` to the Blocks being built (call inside ``with gr.Blocks()``)."""

    def answer_stream(
        question: str, filters: str = "", model: str = "", k: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream an answer: events {"hits", "text" so far, "answer" (last event only)} as JSON."""
        yield from answer_events(ui, question, filters, model, k)

    gr.api(answer_stream, api_name="answer_stream", concurrency_id="answer")


def announce(home: Path, url: str) -> Path | None:
    """Write ``home/ui-server.json`` (url, pid) for `rag ask --server`; removed when this process exits."""
    import atexit

    path = home / SERVER_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time()}) + "\n")
    except OSError:
        return None

    def remove() -> None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    atexit.register(remove)
    return path
