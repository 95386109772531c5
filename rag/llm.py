"""Every model call goes through here, and through litellm: the only module that imports litellm.

Any litellm model id works (``openai/gpt-4o-mini``, ``anthropic/…``, ``ollama/llama3``, ``openai/<name>``
with ``settings.llm.api_base`` for OpenAI-compatible servers). The default, ``local/qwen2.5-coder-1.5b``,
is served in-process by a litellm custom provider (``local``) backed by ``rag.local_model``; it needs no
network and no key. ``local/<path>.gguf`` runs any other chat GGUF file the same way.

    from rag.llm import complete, stream
    complete([{"role": "user", "content": "Hi"}]).text
    for piece in stream(messages):          # str deltas, then one final Completion
        ...

Calls have a timeout (``settings.llm.timeout``) that bounds the whole call for every model: each call runs
in a worker thread and the caller waits at most until the deadline, whatever the provider or the local model
is doing (loading, reading the prompt, a stalled stream); the timeout error says what it was doing. Calls are
retried (``settings.llm.retries``) only on transient provider errors: rate limits, 5xx, dropped connections.
Failures raise ``rag.errors`` exceptions whose message says what to do; a server that answers with something
other than an OpenAI-style response (an HTML page, truncated JSON) is named as such, with its status,
content type and first bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from rag.errors import LLMAuthError, LLMError, LLMProviderError, LLMTimeoutError, RagError
from rag.settings import DEFAULT_LOCAL_MODEL, Settings

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"
RETRY_BACKOFF = 0.5
"""Seconds before the first retry; doubles each time (never past the call's deadline)."""
HTTP_GRACE = 1.0
"""Extra seconds given to the HTTP client's own timeout, so that the call's deadline (which knows what was
happening) is what ends a call, and the abandoned request ends shortly after."""

_KEY_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


class Completion(BaseModel):
    """A finished model call."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None


def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PROVIDER + "/")


# ---------------------------------------------------------------------------------------------- litellm setup

_setup_lock = threading.Lock()
_litellm_module: Any = None


def _litellm() -> Any:
    """Import litellm once (slow: seconds), quiet it, and register the local provider."""
    global _litellm_module
    if _litellm_module is not None:
        return _litellm_module
    with _setup_lock:
        if _litellm_module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore"):
                logging.getLogger(name).setLevel(logging.WARNING)
            register_local_provider(litellm)
            if litellm.client_session is None:
                litellm.client_session = _recording_client()
            _warm_up(litellm)
            _litellm_module = litellm
    return _litellm_module


# ------------------------------------------------------------------------------ what the server sent back


@dataclass
class _Seen:
    """The last HTTP response of a call, as the server sent it: for naming malformed responses."""

    streaming: bool = False
    status: int | None = None
    content_type: str = ""
    url: str = ""
    body: bytearray = field(default_factory=bytearray)  # its first KEEP_BYTES
    size: int = 0

    KEEP_BYTES = 65536
    SHOWN_BYTES = 160

    def describe(self) -> str:
        text = " ".join(bytes(self.body[: self.SHOWN_BYTES]).decode("utf-8", "replace").split())
        more = "…" if self.size > self.SHOWN_BYTES else ""
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


_SEEN = threading.local()
"""``_SEEN.current``: the `_Seen` of the call running in this thread (set by the call's worker)."""


def _recording_client() -> Any:
    """The HTTP client litellm's OpenAI-style providers use (``litellm.client_session``): litellm's own
    TLS settings, plus a response hook that notes status, content type and first bytes of each response
    for the call running in the thread (``_SEEN.current``), so a malformed reply can be named."""
    import httpx

    class RecordingStream(httpx.SyncByteStream):
        def __init__(self, stream: Any, seen: _Seen) -> None:
            self._stream = stream
            self._seen = seen

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._stream:
                room = _Seen.KEEP_BYTES - len(self._seen.body)
                if room > 0:
                    self._seen.body += chunk[:room]
                self._seen.size += len(chunk)
                yield chunk

        def close(self) -> None:
            self._stream.close()

    def record(response: httpx.Response) -> None:
        seen = getattr(_SEEN, "current", None)
        if seen is None or not isinstance(response.stream, httpx.SyncByteStream):
            return
        seen.status = response.status_code
        seen.content_type = response.headers.get("content-type", "")
        seen.url = str(response.request.url)
        seen.body = bytearray()
        seen.size = 0
        response.stream = RecordingStream(response.stream, seen)

    try:
        from litellm.llms.custom_httpx.http_handler import get_ssl_configuration

        verify: Any = get_ssl_configuration()
    except Exception:  # pragma: no cover - another litellm layout: httpx's defaults
        verify = True
    return httpx.Client(verify=verify, follow_redirects=True, event_hooks={"response": [record]})


def _malformed(model: str, seen: _Seen | None, settings: Settings) -> LLMProviderError | None:
    """The error for a 2xx response that is not an OpenAI-style chat completion, or None."""
    problem = seen.problem() if seen is not None else None
    if seen is None or problem is None:
        return None
    where = settings.llm.api_base or seen.url or "the provider"
    return LLMProviderError(
        f"{model}: the server at {where} sent a malformed response ({seen.describe()}): {problem}. "
        "That is not an OpenAI-compatible chat completion: check RAG_LLM__API_BASE (it usually ends in "
        "/v1) and that a model server (not a web page or a proxy's error page) answers there."
    )


_WARM_UP = "__warm-up__"


def _warm_up(litellm: Any) -> None:
    """One call through the local provider that runs no model: litellm's first call to a custom provider
    loads more of its modules (tiktoken's encoding among them; 1.4 s measured on the busy 2-core machine),
    which would otherwise count against the first question's timeout."""
    try:
        litellm.completion(model=f"{LOCAL_PROVIDER}/{_WARM_UP}", messages=[{"role": "user", "content": "hi"}])
    except Exception as exc:  # pragma: no cover - only a speed-up
        log.debug("litellm warm-up call failed: %s", exc)


def register_local_provider(litellm: Any, handler: Any = None) -> None:
    """Route ``local/...`` model ids to ``handler`` (default: the in-process llama.cpp handler)."""
    handler = handler or _make_local_handler(litellm)
    others = [item for item in litellm.custom_provider_map if item["provider"] != LOCAL_PROVIDER]
    litellm.custom_provider_map = [*others, {"provider": LOCAL_PROVIDER, "custom_handler": handler}]


def _make_local_handler(litellm: Any) -> Any:
    class LocalHandler(litellm.CustomLLM):
        """litellm custom provider for ``local/<name>``: runs the GGUF model in this process."""

        def _run(self, model: str, messages: list[Any], optional_params: dict[str, Any], timeout: Any) -> Any:
            from rag.local_model import Usage, config_for, get_model

            if model == _WARM_UP:
                return iter(["ok"]), Usage(finish_reason="stop")
            settings: Settings = optional_params.get("rag_settings") or Settings()
            config = config_for(model, settings)
            seconds = timeout if isinstance(timeout, int | float) else settings.llm.timeout
            deadline = optional_params.get("rag_deadline") or time.monotonic() + float(seconds)
            usage = optional_params.get("rag_usage") or Usage()
            usage.phase = "loading the model"
            loaded = get_model(config, timeout=max(0.0, deadline - time.monotonic()))
            stop = optional_params.get("stop")
            deltas = loaded.stream(
                messages,
                max_tokens=int(optional_params.get("max_tokens") or settings.llm.max_tokens),
                temperature=float(optional_params.get("temperature", settings.llm.temperature)),
                top_p=float(optional_params.get("top_p", 0.95)),
                stop=stop,
                seed=optional_params.get("seed"),
                timeout=settings.llm.timeout,
                deadline=deadline,
                cancel=optional_params.get("rag_cancel"),
                usage=usage,
            )
            return deltas, usage

        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            deltas, usage = self._run(model, messages, kwargs["optional_params"], kwargs.get("timeout"))
            text = "".join(deltas)
            response = kwargs["model_response"]
            response.choices[0].message.content = text
            response.choices[0].finish_reason = usage.finish_reason or "stop"
            response.model = LOCAL_PROVIDER + "/" + model
            response.usage = litellm.Usage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.prompt_tokens + usage.completion_tokens,
            )
            return response

        def streaming(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
            deltas, usage = self._run(model, messages, kwargs["optional_params"], kwargs.get("timeout"))
            try:
                for delta in deltas:
                    yield _chunk(delta)
            finally:
                close = getattr(deltas, "close", None)
                if close is not None:
                    close()  # releases the model lock when the consumer stops early
            yield _chunk("", finished=True, reason=usage.finish_reason or "stop", usage=usage)

        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

        async def astreaming(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            chunks = self.streaming(model, messages, *args, **kwargs)
            done = object()
            while (chunk := await asyncio.to_thread(next, chunks, done)) is not done:
                yield chunk

    return LocalHandler()


def _chunk(text: str, *, finished: bool = False, reason: str = "", usage: Any = None) -> dict[str, Any]:
    block = None
    if usage is not None:
        block = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        }
    return {
        "text": text,
        "is_finished": finished,
        "finish_reason": reason,
        "usage": block,
        "index": 0,
        "tool_use": None,
    }


def preload(settings: Settings | None = None, *, model: str | None = None) -> None:
    """Import litellm and load the local model now (seconds each) so the first question does not wait."""
    settings = settings or Settings()
    model = model or settings.llm.model
    _litellm()
    if not is_local(model):
        return
    from rag.local_model import config_for, get_model

    get_model(config_for(model[len(LOCAL_PROVIDER) + 1 :], settings))


# ------------------------------------------------------------------------------------------------ the calls


def _params(
    messages: list[dict[str, str]], settings: Settings, model: str, kwargs: dict[str, Any]
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": settings.llm.temperature,
        "max_tokens": settings.llm.max_tokens,
        "timeout": settings.llm.timeout,
        "drop_params": True,
    }
    if is_local(model):
        params["rag_settings"] = settings
    else:
        params["num_retries"] = 0  # we retry, on transient errors only
        params["max_retries"] = 0
        if settings.llm.api_base:
            params["api_base"] = settings.llm.api_base
            if model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                # self-hosted OpenAI-compatible servers usually need no key, but the client insists on one;
                # a server that does want one answers 401, which becomes LLMAuthError
                params["api_key"] = "no-key"
    params.update(kwargs)
    return params


def _missing_keys(litellm: Any, model: str, params: dict[str, Any]) -> list[str]:
    """Environment variables holding secrets that ``model`` needs but that are unset."""
    if is_local(model) or params.get("api_key") or params.get("api_base") or "mock_response" in params:
        return []
    try:
        env = litellm.validate_environment(model=model)
    except Exception:  # unknown provider: let the call itself report it
        return []
    return [key for key in env.get("missing_keys", []) if any(word in key for word in _KEY_WORDS)]


def _auth_error(model: str, keys: list[str], detail: str = "") -> LLMAuthError:
    if keys:
        what = " and ".join(keys)
        text = f"{model} needs an API key: set {what} in the environment (export {keys[0]}=...)"
    else:
        text = f"{model} rejected the API key; check the provider's key variable in the environment"
    if detail:
        text += f" [{detail}]"
    return LLMAuthError(
        text + f", or use the offline default model with RAG_LLM__MODEL={DEFAULT_LOCAL_MODEL}."
    )


def _rag_error_in(exc: BaseException) -> RagError | None:
    """A RagError that litellm wrapped (raised by the local provider), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RagError):
            return current
        seen.add(id(current))
        original = getattr(current, "original_exception", None)
        if isinstance(original, BaseException) and id(original) not in seen:
            current = original
        else:
            current = current.__cause__ or current.__context__
    return None


def _connection_failed(litellm: Any, exc: BaseException) -> bool:
    """The server could not be reached (litellm reports some of these as InternalServerError)."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if isinstance(current, litellm.APIConnectionError | ConnectionError) or type(current).__name__ in (
            "APIConnectionError",
            "ConnectError",
        ):
            return True
        if "connection error" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _timed_out(litellm: Any, exc: BaseException) -> bool:
    """A timeout, possibly wrapped (litellm reports a stream that stalled as MidStreamFallbackError around
    an APIConnectionError around httpx's ReadTimeout)."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if isinstance(current, litellm.Timeout | TimeoutError) or type(current).__name__ in (
            "ReadTimeout",
            "ConnectTimeout",
            "WriteTimeout",
            "PoolTimeout",
            "APITimeoutError",
        ):
            return True
        original = getattr(current, "original_exception", None)
        nxt = original if isinstance(original, BaseException) else None
        current = nxt or current.__cause__ or current.__context__
    return "timed out" in str(exc).lower()


def _map_error(
    litellm: Any, exc: BaseException, model: str, settings: Settings, seen: _Seen | None = None
) -> RagError:
    inner = _rag_error_in(exc)
    if inner is not None:
        return inner
    timeout = settings.llm.timeout
    if _timed_out(litellm, exc):
        return LLMTimeoutError(
            f"{model} did not answer within {timeout:g} s; raise RAG_LLM__TIMEOUT or check the provider."
        )
    malformed = _malformed(model, seen, settings)
    if malformed is not None:
        return malformed
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError) or (
        "missing credentials" in str(exc).lower()
    ):
        keys: list[str] = []
        try:
            keys = list(litellm.validate_environment(model=model).get("missing_keys", []))
        except Exception:
            pass
        return _auth_error(model, [k for k in keys if any(w in k for w in _KEY_WORDS)], _short(exc))
    if isinstance(exc, litellm.NotFoundError):
        return LLMProviderError(
            f"{model}: model not found at the provider ({_short(exc)}); check RAG_LLM__MODEL."
        )
    if isinstance(exc, litellm.ContextWindowExceededError):
        return LLMProviderError(
            f"{model}: the prompt is too long for the model ({_short(exc)}); lower RAG_LLM__CONTEXT_PAPERS."
        )
    if isinstance(exc, litellm.BadRequestError):
        return LLMProviderError(f"{model} rejected the request: {_short(exc)}; check RAG_LLM__MODEL.")
    if isinstance(exc, litellm.RateLimitError):
        return LLMProviderError(f"{model} is rate-limited ({_short(exc)}); wait and retry.")
    if _connection_failed(litellm, exc):
        where = settings.llm.api_base or "the provider"
        return LLMProviderError(
            f"Could not reach {where} for {model} ({_short(exc)}); is the server running?"
        )
    if "repeating the same chunk" in str(exc):  # litellm's guard against a model stuck in a loop
        return LLMProviderError(
            f"{model} got stuck repeating itself and was stopped; ask again or rephrase the question."
        )
    return LLMProviderError(f"{model} failed: {_short(exc)}")


def _transient(litellm: Any, exc: BaseException, seen: _Seen | None = None) -> bool:
    if _rag_error_in(exc) is not None or isinstance(exc, litellm.Timeout):
        return False
    if seen is not None and seen.problem() is not None:
        return False  # the server answered, in a form that is not an API's: asking again will not help
    return isinstance(
        exc,
        litellm.RateLimitError
        | litellm.ServiceUnavailableError
        | litellm.BadGatewayError
        | litellm.InternalServerError
        | litellm.APIConnectionError,
    )


def _call(litellm: Any, params: dict[str, Any], settings: Settings, deadline: float, seen: _Seen) -> Any:
    """``litellm.completion`` with retries on transient errors, within the deadline. Runs in the call's
    worker thread, whose HTTP responses are recorded in ``seen``."""
    model = params["model"]
    keys = _missing_keys(litellm, model, params)
    if keys:
        raise _auth_error(model, keys)
    retries = 0 if is_local(model) else settings.llm.retries
    attempt = 0
    while True:
        params["timeout"] = max(0.001, deadline - time.monotonic()) + (0 if is_local(model) else HTTP_GRACE)
        try:
            return litellm.completion(**params)
        except RagError:
            raise
        except Exception as exc:
            wait = RETRY_BACKOFF * 2**attempt
            if (
                attempt >= retries
                or not _transient(litellm, exc, seen)
                or time.monotonic() + wait >= deadline
            ):
                raise _map_error(litellm, exc, model, settings, seen) from exc
            log.info(
                "retrying %s after %s (attempt %d of %d)", model, type(exc).__name__, attempt + 1, retries
            )
            time.sleep(wait)
            attempt += 1


def _estimate_tokens(
    litellm: Any, model: str, messages: list[dict[str, str]] | None, text: str | None
) -> int:
    try:
        if messages is not None:
            return int(litellm.token_counter(model=model, messages=messages))
        return int(litellm.token_counter(model=model, text=text or ""))
    except Exception:
        chars = (
            sum(len(m.get("content") or "") for m in messages) if messages is not None else len(text or "")
        )
        return max(1, chars // 4)


def _usage(
    litellm: Any, usage: Any, model: str, messages: list[dict[str, str]], text: str
) -> tuple[int, int]:
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0
    completion = int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0
    if not prompt:
        prompt = _estimate_tokens(litellm, model, messages, None)
    if not completion and text:
        completion = _estimate_tokens(litellm, model, None, text)
    return prompt, completion


# ------------------------------------------------------------------------------- one call, one deadline

_END = object()


class _Expired(Exception):
    """The call's deadline passed while the caller waited for its worker."""


@dataclass
class _Call:
    """One model call run in a daemon thread (``work(cancel)`` yields its items), handed over through a
    queue so that the caller waits at most until ``deadline``, whatever the provider or the local model
    does. When the caller stops listening (deadline, error, early close) ``cancel`` is set: the worker
    stops at its next item, the local model at its next token or graph node, an HTTP request at its own
    timeout (``HTTP_GRACE`` after the deadline)."""

    model: str
    settings: Settings
    deadline: float
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    seen: _Seen = field(default_factory=_Seen)
    usage: Any = None  # rag.local_model.Usage for the local model: what it was doing
    received: int = 0
    last: float | None = None
    _items: queue.SimpleQueue[tuple[bool, Any]] = field(default_factory=queue.SimpleQueue)

    def start(self, work: Callable[[threading.Event], Generator[Any, None, None]]) -> None:
        def run() -> None:
            _SEEN.current = self.seen
            try:
                with contextlib.closing(work(self.cancel)) as items:
                    for item in items:
                        self._items.put((True, item))
                        if self.cancel.is_set():
                            return
                self._items.put((True, _END))
            except BaseException as exc:  # handed to the caller
                self._items.put((False, exc))
            finally:
                _SEEN.current = None

        threading.Thread(target=run, daemon=True, name=f"rag-llm {self.model}").start()

    def next(self) -> Any:
        """The worker's next item (or ``_END``); its exception; `_Expired` at the deadline."""
        try:
            ok, item = self._items.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            raise _Expired from None
        if not ok:
            raise item
        if item is not _END:
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


def _prepare(
    messages: list[dict[str, str]], settings: Settings, model: str, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], _Call]:
    """The call's parameters and its `_Call`. litellm is imported first, once per process (seconds), before
    the clock starts: the timeout is about the model, not about loading a library."""
    _litellm()
    params = _params(messages, settings, model, kwargs)
    call = _Call(model=model, settings=settings, deadline=time.monotonic() + settings.llm.timeout)
    if is_local(model):
        from rag.local_model import Usage

        call.usage = Usage()
        params.update(rag_deadline=call.deadline, rag_cancel=call.cancel, rag_usage=call.usage)
    return params, call


def _send(params: dict[str, Any], settings: Settings, call: _Call) -> Any:
    """The request, in the call's worker thread."""
    return _call(_litellm(), params, settings, call.deadline, call.seen)


def complete(
    messages: list[dict[str, str]],
    settings: Settings | None = None,
    *,
    model: str | None = None,
    **kwargs: Any,
) -> Completion:
    """One model call; returns the whole reply. ``kwargs`` go to ``litellm.completion``."""
    settings = settings or Settings()
    model = model or settings.llm.model
    params, call = _prepare(messages, settings, model, kwargs)

    def work(cancel: threading.Event) -> Generator[Any, None, None]:
        yield _send(params, settings, call)

    call.start(work)
    try:
        response = call.next()
    except _Expired:
        raise call.expired() from None
    finally:
        call.cancel.set()
    litellm = _litellm()
    try:
        text = response.choices[0].message.content or ""
    except (AttributeError, IndexError) as exc:
        raise _malformed(model, call.seen, settings) or LLMProviderError(
            f"{model} returned no message; try again or use another model."
        ) from exc
    prompt_tokens, completion_tokens = _usage(
        litellm, getattr(response, "usage", None), model, messages, text
    )
    return Completion(
        text=text,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.monotonic() - call.started,
    )


def stream(
    messages: list[dict[str, str]],
    settings: Settings | None = None,
    *,
    model: str | None = None,
    **kwargs: Any,
) -> Iterator[str | Completion]:
    """Yield the reply's text deltas as they arrive, then exactly one final ``Completion``.

    Stopping early (closing the generator) stops the generation and frees the local model.
    """
    settings = settings or Settings()
    model = model or settings.llm.model
    params, call = _prepare(messages, settings, model, kwargs)
    params["stream"] = True
    params.setdefault("stream_options", {"include_usage": True})
    call.seen.streaming = True

    def work(cancel: threading.Event) -> Generator[Any, None, None]:
        response = _send(params, settings, call)
        try:
            for chunk in response:
                yield chunk
                if cancel.is_set():
                    return
        finally:
            _close(response)

    call.start(work)
    parts: list[str] = []
    usage: Any = None
    first: float | None = None
    try:
        while (chunk := call.next()) is not _END:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            choices = getattr(chunk, "choices", None) or []
            delta = choices[0].delta.content if choices and choices[0].delta is not None else None
            if delta:
                if first is None:
                    first = time.monotonic() - call.started
                parts.append(delta)
                yield delta
    except _Expired:
        raise call.expired() from None
    except LLMError:
        raise
    except Exception as exc:
        raise _map_error(_litellm(), exc, model, settings, call.seen) from exc
    finally:
        call.cancel.set()
    litellm = _litellm()
    text = "".join(parts)
    malformed = None if text else _malformed(model, call.seen, settings)
    if malformed is not None:  # e.g. an HTML page or a JSON body where a stream of events was expected
        raise malformed
    prompt_tokens, completion_tokens = _usage(litellm, usage, model, messages, text)
    yield Completion(
        text=text,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.monotonic() - call.started,
        first_token_seconds=first,
    )


def _close(response: Any) -> None:
    """Stop the underlying stream (local generator or HTTP response) if it is still open."""
    for target in (getattr(response, "completion_stream", None), response):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing is best effort
                pass
            return
