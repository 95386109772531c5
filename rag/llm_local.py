"""The ``local`` provider in litellm: ``local/<name>`` model ids are served in-process by ``rag.local_model``.

litellm's custom-provider hooks (``litellm.custom_provider_map``, a ``litellm.CustomLLM`` subclass) call
`make_local_handler`'s handler for plain and streamed calls, sync and async; the handler hands the call's
deadline, cancel event and `Usage` (passed by ``rag.llm`` as ``rag_*`` parameters) to the model. The litellm
module is passed in by ``rag.llm`` (its one door), never imported here, and llama_cpp only through
``rag.local_model``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from rag.settings import Settings

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"

WARM_UP = "__warm-up__"


def warm_up(litellm: Any) -> None:
    """One call through the local provider that runs no model: litellm's first call to a custom provider
    loads more of its modules (tiktoken's encoding among them; 1.4 s measured on the busy 2-core machine),
    which would otherwise count against the first question's timeout."""
    try:
        litellm.completion(model=f"{LOCAL_PROVIDER}/{WARM_UP}", messages=[{"role": "user", "content": "hi"}])
    except Exception as exc:  # pragma: no cover - only a speed-up
        log.debug("litellm warm-up call failed: %s", exc)


def register_local_provider(litellm: Any, handler: Any = None) -> None:
    """Route ``local/...`` model ids to ``handler`` (default: the in-process llama.cpp handler)."""
    handler = handler or make_local_handler(litellm)
    others = [item for item in litellm.custom_provider_map if item["provider"] != LOCAL_PROVIDER]
    litellm.custom_provider_map = [*others, {"provider": LOCAL_PROVIDER, "custom_handler": handler}]


def make_local_handler(litellm: Any) -> Any:
    class LocalHandler(litellm.CustomLLM):
        """litellm custom provider for ``local/<name>``: runs the GGUF model in this process."""

        def _run(self, model: str, messages: list[Any], optional_params: dict[str, Any], timeout: Any) -> Any:
            from rag.local_config import Usage, config_for
            from rag.local_model import get_model

            if model == WARM_UP:
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
