"""The system prompt's KV state on disk (rag/prefix_cache.py), with a real llama.cpp model.

SmolLM2-135M when installed (the same code path as the default model, much faster); each `LocalModel`
below is a new llama.cpp context, as a new process would have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_local_model import SMALL

from rag.local_config import LocalConfig
from rag.local_model import LocalModel
from rag.settings import Settings

pytestmark = pytest.mark.slow

MESSAGES = [
    {
        "role": "system",
        "content": "You answer questions about research papers in one or two sentences, citing them as [n]. "
        "Use only the papers given. Never invent a paper, an author or a number.",
    },
    {
        "role": "user",
        "content": "What does JailbreakBench provide? Papers: [1] JailbreakBench: An Open Robustness "
        "Benchmark for Jailbreaking Large Language Models.",
    },
]


def _path() -> Path:
    if SMALL.endswith(".gguf"):
        return Path(SMALL.removeprefix("local/"))
    return LocalConfig.from_settings(Settings()).path


def _answer(config: LocalConfig) -> tuple[str, list[int], int]:
    """The reply, the lengths of the batches llama.cpp evaluated, and the prompt's system-prefix length."""
    model = LocalModel(config)
    evaluated: list[int] = []
    real = model.llama.eval

    def eval_(tokens: Any) -> None:
        evaluated.append(len(tokens))
        real(tokens)

    model.llama.eval = eval_  # type: ignore[method-assign]
    try:
        text = "".join(model.stream(MESSAGES, max_tokens=12))
        keep = model.system_prefix(MESSAGES, model.prompt(MESSAGES)[0])
    finally:
        model.llama.close()
    return text, evaluated, keep


def test_a_new_context_reads_the_system_prompt_from_disk_and_answers_the_same(tmp_path: Path) -> None:
    plain, evaluated, keep = _answer(LocalConfig(path=_path(), n_ctx=1024))
    assert keep > 0 and evaluated[0] == keep  # without the cache: the system part is evaluated first

    cached = LocalConfig(path=_path(), n_ctx=1024, prefix_cache=tmp_path)
    first, evaluated, _ = _answer(cached)
    assert evaluated[0] == keep
    files = list(tmp_path.glob("prefix-*.kv"))
    assert len(files) == 1 and files[0].stat().st_size > 0

    again, evaluated, _ = _answer(cached)
    assert evaluated and evaluated[0] != keep, "the system part came from the file, not from an evaluation"
    assert plain == first == again, (plain, first, again)


def test_an_unusable_file_is_replaced_and_the_answer_does_not_change(tmp_path: Path) -> None:
    cached = LocalConfig(path=_path(), n_ctx=1024, prefix_cache=tmp_path)
    first, _, keep = _answer(cached)
    [file] = tmp_path.glob("prefix-*.kv")
    size = file.stat().st_size
    file.write_bytes(b"not a llama.cpp state" * 10)

    again, evaluated, _ = _answer(cached)
    assert again == first
    assert evaluated[0] == keep  # evaluated again
    assert file.stat().st_size == size  # and written again


def test_the_file_name_follows_the_model_the_context_shape_and_the_tokens(tmp_path: Path) -> None:
    from rag.prefix_cache import PrefixCache

    def name(model: Path, shape: tuple[Any, ...], tokens: list[int]) -> Path | None:
        return PrefixCache(tmp_path, None, None, model, shape).path(tokens)

    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    base = name(model, (1024, 512, False), [1, 2, 3])
    assert base == name(model, (1024, 512, False), [1, 2, 3])
    assert base != name(model, (1024, 256, False), [1, 2, 3])
    assert base != name(model, (1024, 512, True), [1, 2, 3])
    assert base != name(model, (1024, 512, False), [1, 2, 4])
    model.write_bytes(b"another model")
    assert base != name(model, (1024, 512, False), [1, 2, 3])
    assert PrefixCache(None, None, None, model, ()).path([1]) is None
