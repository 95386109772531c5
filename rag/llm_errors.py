"""What a failed model call becomes: a ``rag.errors`` exception whose message says what to do.

litellm raises its own exception classes (OpenAI's hierarchy), often wrapped (a stream that stalled is a
``MidStreamFallbackError`` around an ``APIConnectionError`` around httpx's ``ReadTimeout``); `map_error`
looks through the wrapping and names the cause: a missing or rejected key, an unknown model, a prompt too
long, a rate limit, a server that cannot be reached, a timeout, or a reply that is not an API's
(``rag.llm_http``). `transient` says which failures are worth retrying.

The litellm module is passed in by ``rag.llm`` (its one door), never imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rag.errors import LLMAuthError, LLMProviderError, LLMTimeoutError, RagError
from rag.llm_http import Seen, malformed
from rag.settings import DEFAULT_LOCAL_MODEL, Settings

KEY_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
"""Parts of an environment variable's name that mark it as a secret a provider needs."""

_TIMEOUT_NAMES = ("ReadTimeout", "ConnectTimeout", "WriteTimeout", "PoolTimeout", "APITimeoutError")
_CONNECTION_NAMES = ("APIConnectionError", "ConnectError")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: litellm's ``original_exception``, else ``__cause__`` / ``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        original = getattr(current, "original_exception", None)
        if isinstance(original, BaseException) and id(original) not in seen:
            current = original
        else:
            current = current.__cause__ or current.__context__


def rag_error_in(exc: BaseException) -> RagError | None:
    """A RagError that litellm wrapped (raised by the local provider), if any."""
    return next((e for e in _chain(exc) if isinstance(e, RagError)), None)


def _timed_out(litellm: Any, exc: BaseException) -> bool:
    return any(
        isinstance(e, litellm.Timeout | TimeoutError) or type(e).__name__ in _TIMEOUT_NAMES
        for e in _chain(exc)
    )


def _connection_failed(litellm: Any, exc: BaseException) -> bool:
    """The server could not be reached (litellm reports some of these as InternalServerError)."""
    return any(
        isinstance(e, litellm.APIConnectionError | ConnectionError)
        or type(e).__name__ in _CONNECTION_NAMES
        or "connection error" in str(e).lower()
        for e in _chain(exc)
    )


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def missing_keys(litellm: Any, model: str) -> list[str]:
    """Environment variables holding secrets that ``model`` needs but that are unset."""
    try:
        env = litellm.validate_environment(model=model)
    except Exception:  # unknown provider: let the call itself report it
        return []
    return [key for key in env.get("missing_keys", []) if any(word in key for word in KEY_WORDS)]


def auth_error(model: str, keys: list[str], detail: str = "") -> LLMAuthError:
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


def map_error(
    litellm: Any, exc: BaseException, model: str, settings: Settings, seen: Seen | None = None
) -> RagError:
    """The ``rag.errors`` exception for a failed call (``seen``: what the server sent, when known)."""
    inner = rag_error_in(exc)
    if inner is not None:
        return inner
    if _timed_out(litellm, exc):
        return LLMTimeoutError(
            f"{model} did not answer within {settings.llm.timeout:g} s; raise RAG_LLM__TIMEOUT or check "
            "the provider."
        )
    named = malformed(model, seen, settings.llm.api_base)
    if named is not None:
        return named
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError) or (
        "missing credentials" in str(exc).lower()
    ):
        return auth_error(model, missing_keys(litellm, model), short(exc))
    return _provider_error(litellm, exc, model, settings)


def _provider_error(litellm: Any, exc: BaseException, model: str, settings: Settings) -> LLMProviderError:
    if isinstance(exc, litellm.NotFoundError):
        return LLMProviderError(
            f"{model}: model not found at the provider ({short(exc)}); check RAG_LLM__MODEL."
        )
    if isinstance(exc, litellm.ContextWindowExceededError):
        return LLMProviderError(
            f"{model}: the prompt is too long for the model ({short(exc)}); lower RAG_LLM__CONTEXT_PAPERS."
        )
    if isinstance(exc, litellm.BadRequestError):
        return LLMProviderError(f"{model} rejected the request: {short(exc)}; check RAG_LLM__MODEL.")
    if isinstance(exc, litellm.RateLimitError):
        return LLMProviderError(f"{model} is rate-limited ({short(exc)}); wait and retry.")
    if _connection_failed(litellm, exc):
        where = settings.llm.api_base or "the provider"
        return LLMProviderError(f"Could not reach {where} for {model} ({short(exc)}); is the server running?")
    if "repeating the same chunk" in str(exc):  # litellm's guard against a model stuck in a loop
        return LLMProviderError(
            f"{model} got stuck repeating itself and was stopped; ask again or rephrase the question."
        )
    return LLMProviderError(f"{model} failed: {short(exc)}")


def transient(litellm: Any, exc: BaseException, seen: Seen | None = None) -> bool:
    """Worth asking again: rate limits, 5xx, dropped connections — not timeouts, our own errors, or a
    server that answered in a form that is not an API's."""
    if rag_error_in(exc) is not None or isinstance(exc, litellm.Timeout):
        return False
    if seen is not None and seen.problem() is not None:
        return False
    return isinstance(
        exc,
        litellm.RateLimitError
        | litellm.ServiceUnavailableError
        | litellm.BadGatewayError
        | litellm.InternalServerError
        | litellm.APIConnectionError,
    )
