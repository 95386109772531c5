"""What an OpenAI-style server sent back, so that a malformed reply is named as such (issue 14 item 4).

litellm's OpenAI-style providers (``openai/…``, ``azure/…``, OpenAI-compatible servers) use the HTTP client in
``litellm.client_session``; ``rag.llm`` sets it to `recording_client`: an ``httpx.Client`` with litellm's TLS
settings and a response hook (httpx's own event hooks) that notes, for the model call running in the
thread (`SEEN`), the status, content type and first bytes of each response. A 2xx reply that is not an
API's — not JSON, invalid JSON, or for a stream no server-sent events — then becomes `malformed`'s error
("HTTP 200, content type text/html, 97 bytes starting '<html>…'") instead of "the model returned an empty
answer" or litellm's generic wrapper.

No litellm here (``rag.llm`` is its one door); httpx is imported when the client is made.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.errors import LLMProviderError

KEEP_BYTES = 65536
"""Bytes of each response body kept for checking (a longer JSON body is not checked)."""
SHOWN_BYTES = 160
"""Bytes of the body quoted in the error message."""


@dataclass
class Seen:
    """The last HTTP response of a model call, as the server sent it."""

    streaming: bool = False
    status: int | None = None
    content_type: str = ""
    url: str = ""
    body: bytearray = field(default_factory=bytearray)  # its first KEEP_BYTES
    size: int = 0

    def describe(self) -> str:
        text = " ".join(bytes(self.body[:SHOWN_BYTES]).decode("utf-8", "replace").split())
        more = "…" if self.size > SHOWN_BYTES else ""
        return (
            f"HTTP {self.status}, content type {self.content_type or 'none'}, {self.size:,} bytes "
            f"starting {text!r}{more}"
        )

    def problem(self) -> str | None:
        """Why a 2xx body is not what an OpenAI-style API sends (None when it looks right): a JSON object,
        or for a stream, server-sent events."""
        if self.status is None or not 200 <= self.status < 300:
            return None
        kind = self.content_type.lower()
        body = bytes(self.body).lstrip()
        if "event-stream" in kind:
            if not body:
                return "an empty event stream" if self.streaming else None
            return None if body.startswith((b"data:", b":", b"event:", b"id:", b"retry:")) else "not events"
        if self.streaming:
            return "no server-sent events (data: …) in it"
        if "json" not in kind:
            return "not JSON"
        if self.size > len(self.body):
            return None  # too long to check here
        try:
            json.loads(body)
        except ValueError as exc:
            return f"invalid JSON: {exc}"
        return None


SEEN = threading.local()
"""``SEEN.current``: the `Seen` of the model call running in this thread (set by the call's worker)."""


def recording_client(verify: Any = True) -> Any:
    """An ``httpx.Client`` (TLS ``verify`` as litellm would use it) whose response hook records each
    response into ``SEEN.current`` (when set) as its body is read."""
    import httpx

    class RecordingStream(httpx.SyncByteStream):
        def __init__(self, stream: Any, seen: Seen) -> None:
            self._stream = stream
            self._seen = seen

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._stream:
                room = KEEP_BYTES - len(self._seen.body)
                if room > 0:
                    self._seen.body += chunk[:room]
                self._seen.size += len(chunk)
                yield chunk

        def close(self) -> None:
            self._stream.close()

    def record(response: httpx.Response) -> None:
        seen = getattr(SEEN, "current", None)
        if seen is None or not isinstance(response.stream, httpx.SyncByteStream):
            return
        seen.status = response.status_code
        seen.content_type = response.headers.get("content-type", "")
        seen.url = str(response.request.url)
        seen.body = bytearray()
        seen.size = 0
        response.stream = RecordingStream(response.stream, seen)

    return httpx.Client(verify=verify, follow_redirects=True, event_hooks={"response": [record]})


def malformed(model: str, seen: Seen | None, api_base: str | None) -> LLMProviderError | None:
    """The error for a 2xx response that is not an OpenAI-style chat completion, or None."""
    problem = seen.problem() if seen is not None else None
    if seen is None or problem is None:
        return None
    where = api_base or seen.url or "the provider"
    return LLMProviderError(
        f"{model}: the server at {where} sent a malformed response ({seen.describe()}): {problem}. "
        "That is not an OpenAI-compatible chat completion: check RAG_LLM__API_BASE (it usually ends in "
        "/v1) and that a model server (not a web page or a proxy's error page) answers there."
    )
