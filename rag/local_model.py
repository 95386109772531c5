"""The local GGUF model, run in-process with llama-cpp-python.

One ``LocalModel`` per (path, n_ctx, n_threads) per process, loaded on first use (in a thread of its own)
and shared; generation is serialised by a per-model lock because a llama.cpp context is not re-entrant.

Every call has a deadline, and nothing it waits for outlives it: loading (``get_model(config, timeout=)``
stops waiting; the load goes on in the background and the model is kept), waiting for the lock, reading
the prompt (llama.cpp's abort callback stops the evaluation between graph nodes) and generating (checked
after every token). Past it, ``LLMTimeoutError`` says which of these it was doing.

Answers do not depend on what was asked before: the KV cache keeps only the chat template's system part,
always evaluated as its own batch, so a question's prompt is read the same way whether that part was cached
or not (reusing whatever prefix matched made the same question answer differently after another one).
Sampling is greedy at temperature 0; at other temperatures the seed is fixed (``DEFAULT_SEED``) unless given.

Callers normally go through ``rag.llm`` (which routes ``local/...`` model ids here via litellm); this module
knows nothing about litellm.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, cast

from rag.errors import LLMProviderError, LLMTimeoutError, ModelNotInstalledError
from rag.llm_deadline import AbortFlag
from rag.local_config import DEFAULT_SEED, LocalConfig, Usage
from rag.prefix_cache import PrefixCache

log = logging.getLogger(__name__)

# Speed note: OMP_WAIT_POLICY=PASSIVE is set in rag/__init__.py (before torch or llama.cpp load OpenMP);
# with spinning OpenMP threads, decoding on a few shared cores was measured 7x slower.

LOAD_WAIT_AT_EXIT = 120.0
"""Seconds the process waits at exit for a model load that a timed-out call left running."""

_ABORTED = 2
"""``llama_decode``'s return code when the abort callback stopped it."""

_INSTALL_HINT = (
    "The local model needs llama-cpp-python: run `make setup` or `pip install 'llama-cpp-python>=0.3.2'`, "
    "or choose a hosted model with RAG_LLM__MODEL (e.g. openai/gpt-4o-mini)."
)


class LocalModel:
    """A loaded GGUF model with its chat template."""

    def __init__(self, config: LocalConfig) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelNotInstalledError(_INSTALL_HINT) from exc
        if not config.path.is_file():
            raise ModelNotInstalledError(
                f"No model file at {config.path}. Run `make setup` or `python -m rag.models install`."
            )
        self.config = config
        _keep_stdout_stderr()
        try:
            self.llama = llama_cpp.Llama(
                model_path=str(config.path),
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_threads_batch=config.n_threads,
                n_batch=config.n_batch,
                n_ubatch=config.n_batch,
                flash_attn=config.flash_attn,
                use_mmap=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotInstalledError(
                f"llama.cpp could not load {config.path} ({exc}). Re-assemble it with "
                "`python -m rag.models install --force`."
            ) from exc
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelNotInstalledError(f"{config.path} carries no chat template; it is not a chat model.")
        eos = self.llama.token_eos()
        bos = self.llama.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self.llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        shape = (config.n_ctx, config.n_batch, config.flash_attn, getattr(llama_cpp, "__version__", "?"))
        self._prefixes = PrefixCache(config.prefix_cache, self.llama, llama_cpp, config.path, shape)
        self.lock = threading.Lock()
        self._abort = AbortFlag()
        self._abort.install(
            lambda callback, data: llama_cpp.llama_set_abort_callback(self.llama._ctx.ctx, callback, data),
            llama_cpp.ggml_abort_callback,
        )

    def prompt(self, messages: Sequence[dict[str, Any]]) -> tuple[list[int], list[str]]:
        """The chat-templated prompt as tokens, and the template's stop strings."""
        result = self._formatter(messages=list(messages))  # type: ignore[arg-type]
        tokens = self.llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return tokens, stop

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def system_prefix(self, messages: Sequence[dict[str, Any]], tokens: list[int]) -> int:
        """How many leading prompt tokens are the template's rendering of the system message (0 when the
        first message is not one): the part the KV cache keeps between calls."""
        if len(messages) < 2 or messages[0].get("role") != "system":
            return 0
        head, _ = self.prompt(messages[:1])
        n = 0
        for a, b in zip(head, tokens, strict=False):
            if a != b:
                break
            n += 1
        return n if n < len(tokens) else 0

    def _load_prompt_prefix(self, tokens: list[int], keep: int) -> None:
        """Leave llama.cpp holding exactly ``tokens[:keep]``, evaluated as one batch from an empty cache
        (reused when it already holds them), so that the rest of the prompt is always read from the same
        state: a prompt gives the same answer whatever the previous prompt was. Lock held."""
        llama = self.llama
        cached = keep > 0 and llama.n_tokens >= keep and list(llama.input_ids[:keep]) == tokens[:keep]
        llama.reset()  # n_tokens = 0: create_completion will not reuse a prefix of its own choosing
        if cached:
            llama.n_tokens = keep  # the cells past it are dropped by the next eval
            llama._requires_eval = True  # never sample from the previous call's last logits
        elif keep and self._prefixes.restore(tokens[:keep]):  # evaluated by an earlier process
            llama.input_ids[:keep] = tokens[:keep]
            llama.n_tokens = keep
            llama._requires_eval = True
        elif keep:
            llama.eval(tokens[:keep])
            self._prefixes.save(tokens[:keep])

    def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_tokens: int = 320,
        temperature: float = 0.0,
        top_p: float = 0.95,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        timeout: float = 120.0,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Yield text deltas of the assistant's reply; ``usage`` is filled in as it goes.

        ``deadline`` (``time.monotonic()`` seconds; default now + ``timeout``) bounds the whole call:
        waiting for the model, reading the prompt and generating. Past it, LLMTimeoutError. ``cancel``, once
        set, stops the generation at the next token or graph node (the caller stopped listening). Raises
        LLMProviderError when the prompt does not fit the context window.
        """
        usage = usage if usage is not None else Usage()
        started = time.monotonic()
        stopped = _Stop(deadline if deadline is not None else started + timeout, cancel or threading.Event())
        tokens, template_stop = self.prompt(messages)
        room = self.config.n_ctx - len(tokens)
        if room < 1:
            raise LLMProviderError(
                f"The prompt is {len(tokens)} tokens but the local model's context is {self.config.n_ctx}: "
                "raise RAG_LLM__N_CTX or put fewer papers in the prompt (RAG_LLM__CONTEXT_PAPERS)."
            )
        options = {
            "max_tokens": min(max_tokens, room),
            "temperature": temperature,
            "top_p": top_p,
            "stop": ([stop] if isinstance(stop, str) else list(stop or [])) + template_stop,
            "seed": DEFAULT_SEED if seed is None else seed,
        }
        usage.phase = "waiting for another request to the local model to finish"
        if not self.lock.acquire(timeout=max(0.0, stopped.deadline - time.monotonic())):
            raise LLMTimeoutError(
                f"The local model was busy with another request for {time.monotonic() - started:.1f} s "
                f"(RAG_LLM__TIMEOUT {timeout:g} s); try again or raise RAG_LLM__TIMEOUT."
            )
        text: list[str] = []
        disarm = self._abort.arm(stopped.deadline, stopped.cancel)
        try:
            for delta in self._generate(
                tokens, self.system_prefix(messages, tokens), stopped, usage, options
            ):
                text.append(delta)
                yield delta
        except RuntimeError as exc:  # llama_decode returned 2: the abort callback stopped it
            if f"returned {_ABORTED}" not in str(exc) or not stopped():
                raise LLMProviderError(f"The local model failed: {exc}") from exc
        finally:
            disarm()
            cancelled = stopped.cancel.is_set()
            if cancel is None:
                stopped.cancel.set()  # lets the abort watcher go
            usage.completion_tokens = self.count_tokens("".join(text))
            if stopped.hit:
                self.llama.reset()  # an interrupted evaluation leaves no cache worth keeping
            self.lock.release()
        if stopped.hit and not cancelled:
            raise LLMTimeoutError(
                f"The local model did not finish within {timeout:g} s (RAG_LLM__TIMEOUT) while "
                f"{usage.phase}; raise the timeout or lower RAG_LLM__MAX_TOKENS."
            )

    def _generate(
        self, tokens: list[int], keep: int, stopped: _Stop, usage: Usage, options: dict[str, Any]
    ) -> Iterator[str]:
        """Read the prompt (its first ``keep`` tokens from the cache when it holds them) and yield the
        reply's deltas until it ends or ``stopped``. Lock held."""
        import llama_cpp

        usage.prompt_tokens = len(tokens)
        usage.phase = f"reading the {len(tokens)}-token prompt"
        self._load_prompt_prefix(tokens, keep)
        chunks = cast(
            Generator[dict[str, Any], None, None],
            self.llama.create_completion(
                prompt=tokens,
                top_k=40,
                min_p=0.05,
                repeat_penalty=1.0,
                stream=True,
                stopping_criteria=llama_cpp.StoppingCriteriaList([stopped]),
                **options,
            ),
        )
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                delta = choice.get("text") or ""
                if delta:
                    usage.phase = "generating"
                    yield delta
                if choice.get("finish_reason"):
                    usage.finish_reason = str(choice["finish_reason"])
                elif stopped():
                    break
        finally:
            chunks.close()  # while the lock is held: nothing of this call runs after it


def _keep_stdout_stderr() -> None:
    """Stop llama-cpp-python from pointing the process's file descriptors 1 and 2 at /dev/null while a model
    loads (what its ``verbose=False`` does, around ``llama_model_load_from_file``). Loading runs in a thread
    of its own and may outlive a call's deadline: measured, ``RAG_LLM__TIMEOUT=3 rag ask`` in a cold process
    timed out while loading and exited with status 2 having printed nothing (neither the error nor the
    papers). llama.cpp's own log still goes through llama-cpp-python's log callback, errors only."""
    import contextlib

    import llama_cpp._internals
    import llama_cpp.llama

    def keep(disable: bool = True) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    for module in (llama_cpp._internals, llama_cpp.llama):
        if hasattr(module, "suppress_stdout_stderr"):
            module.suppress_stdout_stderr = keep  # type: ignore[attr-defined]


@dataclass
class _Stop:
    """Whether a call must stop now: its deadline passed or it was cancelled. ``hit`` stays True once it
    was (an interrupted call, not one that ended). Also llama-cpp-python's stopping criterion."""

    deadline: float
    cancel: threading.Event
    hit: bool = False

    def __call__(self, _ids: Any = None, _logits: Any = None) -> bool:
        self.hit = self.hit or self.cancel.is_set() or time.monotonic() > self.deadline
        return self.hit


_MODELS: dict[LocalConfig, LocalModel] = {}
_LOADING: dict[LocalConfig, Future[LocalModel]] = {}
_MODELS_LOCK = threading.Lock()


def get_model(config: LocalConfig, timeout: float | None = None) -> LocalModel:
    """The loaded model for ``config``, loading it on first use (once per process, in a thread of its own).

    With ``timeout``, waiting stops after that many seconds with LLMTimeoutError; the load goes on and the
    model is kept for the next call. A failed load is retried by the next call.
    """
    future = start_loading(config)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise LLMTimeoutError(
            f"The local model was still loading after {timeout:g} s (it loads once per process, a few "
            "seconds on a quiet machine; RAG_LLM__TIMEOUT); it goes on loading in the background: ask again, "
            "or raise the timeout."
        ) from None


def start_loading(config: LocalConfig) -> Future[LocalModel]:
    """The model for ``config``, loaded or loading (the load starts now, in a thread of its own, unless it
    is already loaded or under way); does not wait."""
    with _MODELS_LOCK:
        model = _MODELS.get(config)
        if model is not None:
            done: Future[LocalModel] = Future()
            done.set_result(model)
            return done
        future = _LOADING.get(config)
        if future is None:
            future = _LOADING[config] = Future()
            threading.Thread(target=_load, args=(config, future), daemon=True, name="rag-llm-load").start()
        return future


def _load(config: LocalConfig, future: Future[LocalModel]) -> None:
    try:
        model = LocalModel(config)
    except BaseException as exc:  # handed to every waiter (never left waiting); the next get_model retries
        with _MODELS_LOCK:
            _LOADING.pop(config, None)
        future.set_exception(exc)
        return
    with _MODELS_LOCK:
        _MODELS[config] = model
        _LOADING.pop(config, None)
    future.set_result(model)


def unload_all() -> None:
    """Forget every loaded model (memory is freed when no stream still uses one)."""
    with _MODELS_LOCK:
        _MODELS.clear()


@atexit.register
def _close_at_exit() -> None:
    # Close llama.cpp models while the interpreter is still whole; left to Llama.__del__ at shutdown,
    # closing fails noisily ("'NoneType' object is not callable") once module globals are torn down.
    # A call abandoned at its deadline may still run in a daemon thread: stop it and wait for the model
    # lock before freeing the model under it (or leave the model to the process's exit).
    # A load still running would be killed at interpreter teardown, maybe holding the import lock, and a
    # finalizer that imports then waits for ever (measured: a cold `RAG_LLM__TIMEOUT=3 rag ask` printed its
    # answer and hung at exit): let it finish first, then close its model like the others.
    with _MODELS_LOCK:
        loading = list(_LOADING.values())
    for future in loading:
        with contextlib.suppress(Exception):
            future.result(timeout=LOAD_WAIT_AT_EXIT)
    with _MODELS_LOCK:
        for model in _MODELS.values():
            model._abort.fire_now()
            if not model.lock.acquire(timeout=5):
                continue
            close = getattr(model.llama, "close", None)
            if callable(close):
                close()
        _MODELS.clear()
