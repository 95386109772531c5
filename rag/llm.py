"""Every model call goes through here, and through litellm: the only module that imports litellm.

Any litellm model id works (``openai/gpt-4o-mini``, ``anthropic/…``, ``ollama/llama3``, ``openai/<name>``
with ``settings.llm.api_base`` for OpenAI-compatible servers). The default, ``local/qwen2.5-coder-1.5b``,
is served in-process by a litellm custom provider (``local``) backed by ``rag.local_model``; it needs no
network and no key. ``local/<path>.gguf`` runs any other chat GGUF file the same way.

    from rag.llm import complete, stream
    complete([{"role": "user", "content": "Hi"}]).text
    for piece in stream(messages):          # str deltas, then one final Completion
        ...

Calls have a timeout (``settings.llm.timeout``, the local model included) and are retried
(``settings.llm.retries``) only on transient provider errors: rate limits, 5xx, dropped connections.
Failures raise ``rag.errors`` exceptions whose message says what to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel

from rag.errors import LLMAuthError, LLMError, LLMProviderError, LLMTimeoutError, RagError
from rag.settings import DEFAULT_LOCAL_MODEL, Settings

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"
RETRY_BACKOFF = 0.5
"""Seconds before the first retry; doubles each time (never past the call's deadline)."""

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
            _litellm_module = litellm
    return _litellm_module


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

            settings: Settings = optional_params.get("rag_settings") or Settings()
            config = config_for(model, settings)
            seconds = timeout if isinstance(timeout, int | float) else settings.llm.timeout
            usage = Usage()
            stop = optional_params.get("stop")
            deltas = get_model(config).stream(
                messages,
                max_tokens=int(optional_params.get("max_tokens") or settings.llm.max_tokens),
                temperature=float(optional_params.get("temperature", settings.llm.temperature)),
                top_p=float(optional_params.get("top_p", 0.95)),
                stop=stop,
                seed=optional_params.get("seed"),
                timeout=float(seconds),
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
    """Load the local model now (seconds) so the first question does not wait; no-op for hosted models."""
    settings = settings or Settings()
    model = model or settings.llm.model
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


def _map_error(litellm: Any, exc: BaseException, model: str, settings: Settings) -> RagError:
    inner = _rag_error_in(exc)
    if inner is not None:
        return inner
    timeout = settings.llm.timeout
    if isinstance(exc, litellm.Timeout | TimeoutError):
        return LLMTimeoutError(
            f"{model} did not answer within {timeout:g} s; raise RAG_LLM__TIMEOUT or check the provider."
        )
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


def _transient(litellm: Any, exc: BaseException) -> bool:
    if _rag_error_in(exc) is not None or isinstance(exc, litellm.Timeout):
        return False
    return isinstance(
        exc,
        litellm.RateLimitError
        | litellm.ServiceUnavailableError
        | litellm.BadGatewayError
        | litellm.InternalServerError
        | litellm.APIConnectionError,
    )


def _call(litellm: Any, params: dict[str, Any], settings: Settings, deadline: float) -> Any:
    """``litellm.completion`` with retries on transient errors, within the deadline."""
    model = params["model"]
    keys = _missing_keys(litellm, model, params)
    if keys:
        raise _auth_error(model, keys)
    retries = 0 if is_local(model) else settings.llm.retries
    attempt = 0
    while True:
        params["timeout"] = max(0.001, min(float(params["timeout"]), deadline - time.monotonic()))
        try:
            return litellm.completion(**params)
        except RagError:
            raise
        except Exception as exc:
            wait = RETRY_BACKOFF * 2**attempt
            if attempt >= retries or not _transient(litellm, exc) or time.monotonic() + wait >= deadline:
                raise _map_error(litellm, exc, model, settings) from exc
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
    litellm = _litellm()
    params = _params(messages, settings, model, kwargs)
    start = time.monotonic()
    response = _call(litellm, params, settings, start + settings.llm.timeout)
    try:
        text = response.choices[0].message.content or ""
    except (AttributeError, IndexError) as exc:
        raise LLMProviderError(f"{model} returned no message; try again or use another model.") from exc
    prompt_tokens, completion_tokens = _usage(
        litellm, getattr(response, "usage", None), model, messages, text
    )
    return Completion(
        text=text,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.monotonic() - start,
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
    litellm = _litellm()
    params = _params(messages, settings, model, kwargs)
    params["stream"] = True
    params.setdefault("stream_options", {"include_usage": True})
    start = time.monotonic()
    deadline = start + settings.llm.timeout
    response = _call(litellm, params, settings, deadline)
    parts: list[str] = []
    usage: Any = None
    first: float | None = None
    try:
        for chunk in response:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            choices = getattr(chunk, "choices", None) or []
            delta = choices[0].delta.content if choices and choices[0].delta is not None else None
            if delta:
                if first is None:
                    first = time.monotonic() - start
                parts.append(delta)
                yield delta
            if time.monotonic() > deadline:
                raise LLMTimeoutError(
                    f"{model} did not finish within {settings.llm.timeout:g} s; raise RAG_LLM__TIMEOUT "
                    "or lower RAG_LLM__MAX_TOKENS."
                )
    except LLMError:
        raise
    except Exception as exc:
        raise _map_error(litellm, exc, model, settings) from exc
    finally:
        _close(response)
    text = "".join(parts)
    prompt_tokens, completion_tokens = _usage(litellm, usage, model, messages, text)
    yield Completion(
        text=text,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.monotonic() - start,
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
