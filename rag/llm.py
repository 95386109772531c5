"""Every model call goes through here, and through litellm: the only module that imports litellm.

Any litellm model id works (``openai/gpt-4o-mini``, ``anthropic/…``, ``ollama/llama3``, ``openai/<name>``
with ``settings.llm.api_base`` for OpenAI-compatible servers). The default, ``local/qwen2.5-coder-1.5b``,
is served in-process by a litellm custom provider (``local``, ``rag.llm_local``) backed by
``rag.local_model``; it needs no network and no key. ``local/<path>.gguf`` runs any other chat GGUF file.

    from rag.llm import complete, stream
    complete([{"role": "user", "content": "Hi"}]).text
    for piece in stream(messages):          # str deltas, then one final Completion
        ...

Calls have a timeout (``settings.llm.timeout``) that bounds the whole call for every model: each call runs
in a worker thread and the caller waits at most until the deadline, whatever the provider or the local model
is doing (loading, reading the prompt, a stalled stream); the timeout error says what it was doing
(``rag.llm_deadline``). Calls are retried (``settings.llm.retries``) only on transient provider errors: rate
limits, 5xx, dropped connections. Failures raise ``rag.errors`` exceptions whose message says what to do
(``rag.llm_errors``); a server that answers with something other than an OpenAI-style response (an HTML page,
truncated JSON) is named as such, with its status, content type and first bytes (``rag.llm_http``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from pydantic import BaseModel

from rag.errors import LLMError, LLMProviderError, RagError
from rag.llm_deadline import END, Call, Expired
from rag.llm_errors import auth_error, map_error, missing_keys, transient
from rag.llm_http import malformed, recording_client
from rag.llm_local import LOCAL_PROVIDER, register_local_provider, warm_up
from rag.settings import Settings

log = logging.getLogger(__name__)

RETRY_BACKOFF = 0.5
"""Seconds before the first retry; doubles each time (never past the call's deadline)."""
HTTP_GRACE = 1.0
"""Extra seconds given to the HTTP client's own timeout, so that the call's deadline (which knows what was
happening) is what ends a call, and the abandoned request ends shortly after."""


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


_setup_lock = threading.Lock()
_litellm_module: Any = None


def _litellm() -> Any:
    """Import litellm once (slow: seconds), quiet it, register the local provider, give its OpenAI-style
    providers the recording HTTP client (``rag.llm_http``), and warm up its call path."""
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
                litellm.client_session = recording_client(_ssl_verify())
            warm_up(litellm)
            _litellm_module = litellm
    return _litellm_module


def _ssl_verify() -> Any:
    """litellm's TLS settings (its SSL_VERIFY / SSL_CERT_FILE handling), for our HTTP client."""
    try:
        from litellm.llms.custom_httpx.http_handler import get_ssl_configuration

        return get_ssl_configuration()
    except Exception:  # pragma: no cover - another litellm layout: httpx's defaults
        return True


def preload(settings: Settings | None = None, *, model: str | None = None) -> None:
    """Import litellm and load the local model now (seconds each) so the first question does not wait."""
    settings = settings or Settings()
    model = model or settings.llm.model
    if not is_local(model):
        _litellm()
        return
    from rag.local_config import config_for
    from rag.local_model import get_model, start_loading

    config = config_for(model[len(LOCAL_PROVIDER) + 1 :], settings)
    start_loading(config)  # llama.cpp loads without the GIL while litellm's import holds it
    _litellm()
    get_model(config)


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


def _prepare(
    messages: list[dict[str, str]], settings: Settings, model: str, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], Call]:
    """The call's parameters and its `Call`. litellm is imported first, once per process (seconds), before
    the clock starts: the timeout is about the model, not about loading a library."""
    _litellm()
    params = _params(messages, settings, model, kwargs)
    call = Call(model=model, settings=settings, deadline=time.monotonic() + settings.llm.timeout)
    if is_local(model):
        from rag.local_config import Usage

        call.usage = Usage()
        params.update(rag_deadline=call.deadline, rag_cancel=call.cancel, rag_usage=call.usage)
    return params, call


def _send(params: dict[str, Any], settings: Settings, call: Call) -> Any:
    """``litellm.completion`` with retries on transient errors, within the call's deadline. Runs in the
    call's worker thread, whose HTTP responses are recorded in ``call.seen``."""
    litellm = _litellm()
    model = params["model"]
    if not (is_local(model) or params.get("api_key") or params.get("api_base") or "mock_response" in params):
        keys = missing_keys(litellm, model)
        if keys:
            raise auth_error(model, keys)
    retries = 0 if is_local(model) else settings.llm.retries
    attempt = 0
    while True:
        remaining = max(0.001, call.deadline - time.monotonic())
        params["timeout"] = remaining + (0 if is_local(model) else HTTP_GRACE)
        try:
            return litellm.completion(**params)
        except RagError:
            raise
        except Exception as exc:
            wait = RETRY_BACKOFF * 2**attempt
            if (
                attempt >= retries
                or not transient(litellm, exc, call.seen)
                or time.monotonic() + wait >= call.deadline
            ):
                raise map_error(litellm, exc, model, settings, call.seen) from exc
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


def _completion(
    call: Call, messages: list[dict[str, str]], text: str, usage: Any, first: float | None = None
) -> Completion:
    """The finished call; token counts from the provider's usage report, else estimated."""
    litellm = _litellm()
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0
    completion = int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0
    if not prompt:
        prompt = _estimate_tokens(litellm, call.model, messages, None)
    if not completion and text:
        completion = _estimate_tokens(litellm, call.model, None, text)
    return Completion(
        text=text,
        model=call.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        seconds=time.monotonic() - call.started,
        first_token_seconds=first,
    )


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
    except Expired:
        raise call.expired() from None
    finally:
        call.cancel.set()
    try:
        text = response.choices[0].message.content or ""
    except (AttributeError, IndexError) as exc:
        raise malformed(model, call.seen, settings.llm.api_base) or LLMProviderError(
            f"{model} returned no message; try again or use another model."
        ) from exc
    return _completion(call, messages, text, getattr(response, "usage", None))


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
    usage: list[Any] = [None]
    first: float | None = None
    try:
        for delta in _deltas(call, usage):
            if first is None:
                first = time.monotonic() - call.started
            parts.append(delta)
            yield delta
    finally:
        call.cancel.set()
    text = "".join(parts)
    named = None if text else malformed(model, call.seen, settings.llm.api_base)
    if named is not None:  # e.g. an HTML page or a JSON body where a stream of events was expected
        raise named
    yield _completion(call, messages, text, usage[0], first)


def _deltas(call: Call, usage: list[Any]) -> Iterator[str]:
    """The text deltas of a streaming call's chunks; the last usage report goes into ``usage[0]``. Errors
    become ``rag.errors``: the deadline's says what the call was doing (or how long the stream stalled)."""
    try:
        while (chunk := call.next()) is not END:
            if getattr(chunk, "usage", None):
                usage[0] = chunk.usage
            choices = getattr(chunk, "choices", None) or []
            delta = choices[0].delta.content if choices and choices[0].delta is not None else None
            if delta:
                yield delta
    except Expired:
        raise call.expired() from None
    except LLMError:
        raise
    except Exception as exc:
        raise map_error(_litellm(), exc, call.model, call.settings, call.seen) from exc


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
