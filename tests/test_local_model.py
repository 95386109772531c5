"""The real offline model (Qwen2.5-Coder-1.5B GGUF) through rag.llm → litellm → llama.cpp.

Slow: loads a 1.1 GB model once per session (needs `make setup` / `python -m rag.models install`).
"""

from __future__ import annotations

import threading

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


# ------------------------------------------------------------------ determinism (issue 14 item 3)

SYSTEM = "You answer questions about research papers in one or two sentences."


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
