"""One deadline per model call, whatever the model is doing (issue 14 item 2).

`Call` runs a model call in a daemon thread and hands its items (a reply, or a stream's chunks) to the
caller through a queue, so the caller waits at most until the deadline: loading the local model, waiting
for it, reading the prompt, generating, a silent server or a stalled stream. Past it, `Call.expired` is the
error, saying what the call was doing and which setting to raise. When the caller stops listening (deadline,
error, early close) the call's ``cancel`` event is set: the worker stops at its next item, the local model at
its next token or graph node (`AbortFlag`), an HTTP request at its own timeout (``rag.llm.HTTP_GRACE`` after
the deadline).

`AbortFlag` is llama.cpp's abort callback made safe to call from ggml's compute threads without the GIL;
``rag.local_model`` installs it (it is the one module that imports llama_cpp).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from rag.errors import LLMTimeoutError
from rag.llm_http import SEEN, Seen
from rag.settings import Settings

log = logging.getLogger(__name__)

END = object()
"""`Call.next`'s item when the worker has nothing more."""


class Expired(Exception):
    """The call's deadline passed while the caller waited for its worker."""


@dataclass
class Call:
    """One model call run in a daemon thread (``work(cancel)`` yields its items) that the caller waits for
    at most until ``deadline`` (``time.monotonic()`` seconds)."""

    model: str
    settings: Settings
    deadline: float
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    seen: Seen = field(default_factory=Seen)
    usage: Any = None  # rag.local_config.Usage for the local model: what it is doing
    received: int = 0
    last: float | None = None
    _items: queue.SimpleQueue[tuple[bool, Any]] = field(default_factory=queue.SimpleQueue)

    def start(self, work: Callable[[threading.Event], Generator[Any, None, None]]) -> None:
        def run() -> None:
            SEEN.current = self.seen  # this thread's HTTP responses are recorded for this call
            try:
                with contextlib.closing(work(self.cancel)) as items:
                    for item in items:
                        self._items.put((True, item))
                        if self.cancel.is_set():
                            return
                self._items.put((True, END))
            except BaseException as exc:  # handed to the caller
                self._items.put((False, exc))
            finally:
                SEEN.current = None

        threading.Thread(target=run, daemon=True, name=f"rag-llm {self.model}").start()

    def next(self) -> Any:
        """The worker's next item (or `END`); its exception; `Expired` at the deadline."""
        try:
            ok, item = self._items.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            raise Expired from None
        if not ok:
            raise item
        if item is not END:
            self.received += 1
            self.last = time.monotonic()
        return item

    def expired(self) -> LLMTimeoutError:
        """The timeout error, saying what the call was doing when its time ran out."""
        timeout = self.settings.llm.timeout
        waited = time.monotonic() - self.started
        if self.usage is not None:  # the local model
            doing = self.usage.phase or "starting"
            return LLMTimeoutError(
                f"{self.model} did not answer within {timeout:g} s (RAG_LLM__TIMEOUT; waited {waited:.1f} "
                f"s): it was {doing}. Raise RAG_LLM__TIMEOUT, or lower RAG_LLM__MAX_TOKENS or "
                "RAG_LLM__CONTEXT_PAPERS."
            )
        where = self.settings.llm.api_base or "the provider"
        if self.last is not None:
            silent = time.monotonic() - self.last
            return LLMTimeoutError(
                f"{self.model}'s stream stalled: nothing more from {where} for {silent:.1f} s after "
                f"{self.received} part(s), and the call's {timeout:g} s were up (waited {waited:.1f} s). "
                f"Raise RAG_LLM__TIMEOUT (now {timeout:g}) or check the server."
            )
        return LLMTimeoutError(
            f"{self.model} did not answer within {timeout:g} s: no reply from {where} (waited "
            f"{waited:.1f} s). Raise RAG_LLM__TIMEOUT (now {timeout:g}) or check the server."
        )


class AbortFlag:
    """llama.cpp's abort callback, armed for one call at a time: it aborts once the call's deadline passes
    or its ``cancel`` is set, until disarmed.

    ggml calls the callback from its compute thread between graph nodes. A Python callback there takes the
    GIL every node (measured: a 541-token prompt and 64-token answer 3.5–9x slower), so the callback is
    libc's ``strlen`` over a two-byte buffer — 0 (go on) until the flag byte is set, then 1 (abort) — and a
    watcher thread sets the byte. Where libc cannot be found, `install` returns False and there is no abort
    callback: the deadline is still checked after every token, and a prompt being read finishes in the
    background (holding the model lock).
    """

    def __init__(self) -> None:
        self._buffer = ctypes.create_string_buffer(2)
        self._lock = threading.Lock()
        self._armed: object | None = None
        self._level: int | None = None
        self._callback: Any = None
        self.installed = False

    def install(self, set_callback: Callable[[Any, Any], None], callback_type: Any) -> bool:
        """Install the flag with ``set_callback(callback, data)`` (llama_set_abort_callback on a context),
        ``callback_type`` being the C function type it takes (ggml_abort_callback)."""
        try:
            callback = ctypes.cast(ctypes.CDLL(None).strlen, callback_type)
            set_callback(callback, ctypes.cast(self._buffer, ctypes.c_void_p))
        except (AttributeError, OSError, TypeError) as exc:  # pragma: no cover - not glibc/musl
            log.info("no llama.cpp abort callback (%s): prompts are read to the end after a timeout", exc)
            return False
        self._callback = callback  # kept alive as long as the context that calls it
        self.installed = True
        return True

    def arm(self, deadline: float, cancel: threading.Event) -> Callable[[], None]:
        """Abort when ``deadline`` passes or ``cancel`` is set, until the returned ``disarm`` is called."""
        call = object()
        with self._lock:
            self._armed = call
            self._buffer[0] = b"\x00"

        def watch() -> None:
            while not cancel.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() <= deadline:
                pass  # woken a hair early
            with self._lock:
                if self._armed is call:
                    self._set()

        if self.installed:
            threading.Thread(target=watch, daemon=True, name="rag-llm-abort").start()

        def disarm() -> None:
            with self._lock:
                self._armed = None
                self._buffer[0] = b"\x00"
                if self._level is not None:
                    logging.getLogger("llama-cpp-python").setLevel(self._level)
                    self._level = None

        return disarm

    def fire_now(self) -> None:
        """Abort whatever runs (used at interpreter exit)."""
        with self._lock:
            self._set()

    def _set(self) -> None:
        """Set the flag (lock held). llama.cpp logs an abort as an error ("decode: removing memory module
        entries …") through llama-cpp-python's logger; an abort is how a timeout ends, so that line is kept
        off the terminal until disarmed."""
        if self._level is None:
            logger = logging.getLogger("llama-cpp-python")
            self._level = logger.level
            logger.setLevel(logging.CRITICAL + 1)
        self._buffer[0] = b"\x01"
