"""RAG_INDEX__DEVICE: validated, `auto` resolved from what PyTorch sees, passed to sentence-transformers, and
a larger batch on a GPU. No GPU is needed: PyTorch's view of the GPUs is replaced where a test needs one."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

import rag.embed
from rag.embed import GPU_BATCH_FACTOR, get_embedder, resolve_device
from rag.errors import ConfigError
from rag.settings import Settings


def gpus(monkeypatch: pytest.MonkeyPatch, cuda: int, mps: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_unknown_device_is_rejected_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="use cpu, cuda, cuda:N, mps or auto"):
        Settings(index={"device": "tpu"})
    assert Settings(index={"device": " CUDA:1 "}).index.device == "cuda:1"
    assert Settings().index.device == "auto"


def test_unknown_device_from_the_environment_is_one_clear_cli_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX__DEVICE", "gpu0")
    assert main(["index", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "index.device" in err and "'gpu0'" in err and "Traceback" not in err


def test_auto_follows_what_pytorch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus(monkeypatch, cuda=0)
    assert resolve_device("auto") == "cpu"
    gpus(monkeypatch, cuda=0, mps=True)
    assert resolve_device("auto") == "mps"
    gpus(monkeypatch, cuda=2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"


def test_a_missing_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus(monkeypatch, cuda=0)
    with pytest.raises(ConfigError, match="no CUDA GPU.*use cpu or auto"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="MPS"):
        resolve_device("mps")
    gpus(monkeypatch, cuda=1)
    with pytest.raises(ConfigError, match="1 CUDA GPU"):
        resolve_device("cuda:3")


def test_the_device_and_a_larger_batch_reach_the_model_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[tuple[str, ...]] = []

    class Recorder:
        batch_size = 0

    def load(model: str, backend: str = "torch", device: str = "cpu") -> Any:
        loaded.append((model, backend, device))
        return Recorder()

    monkeypatch.setattr(rag.embed, "load_embedder", load)
    gpus(monkeypatch, cuda=1)
    on_gpu = get_embedder(Settings(index={"embed_batch_size": 32}))
    assert loaded[-1][2] == "cuda" and on_gpu.batch_size == 32 * GPU_BATCH_FACTOR
    on_cpu = get_embedder(Settings(index={"embed_batch_size": 32, "device": "cpu"}))
    assert loaded[-1][2] == "cpu" and on_cpu.batch_size == 32


@pytest.mark.slow
def test_auto_without_a_gpu_loads_the_real_model_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus(monkeypatch, cuda=0)
    embedder = get_embedder(Settings())
    assert embedder.device == "cpu" and embedder.model.device.type == "cpu" and embedder.batch_size == 64
    assert embedder.encode(["A protein folding study."]).shape == (1, 384)
