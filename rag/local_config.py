"""What identifies a local GGUF model and how it runs: path, context, threads, batch, the prefix cache.

Split from ``rag.local_model`` (which loads and runs the model with llama.cpp); nothing here imports
llama_cpp, so ``rag.llm`` and the settings code can name a model without loading it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import LLMProviderError
from rag.settings import Settings

N_BATCH = 512
"""Prompt tokens evaluated per batch (llama.cpp's default; our prompts are ~1k tokens)."""

DEFAULT_SEED = 0
"""Sampling seed when the caller gives none (only matters at temperature > 0)."""


@dataclass(frozen=True)
class LocalConfig:
    """What identifies a loaded model: one instance per distinct config per process."""

    path: Path
    n_ctx: int = 4096
    n_threads: int = 2
    n_batch: int = N_BATCH
    flash_attn: bool = False
    prefix_cache: Path | None = None
    """Folder of the on-disk system-prompt states (rag.prefix_cache); None: evaluate in every process."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None, path: Path | None = None) -> LocalConfig:
        """The config of ``path`` (default: the installed default model) under ``settings``."""
        from rag.models import model_path

        settings = settings or Settings()
        return cls(
            path=path or model_path(settings),
            n_ctx=settings.llm.n_ctx,
            n_threads=settings.llm.n_threads or default_threads(),
            prefix_cache=settings.model_cache / "prefix-cache" if settings.llm.prefix_cache else None,
        )


def config_for(name: str, settings: Settings | None = None) -> LocalConfig:
    """Config for ``local/<name>``: the default model, or ``<name>`` as a path to a chat GGUF file."""
    from rag.settings import DEFAULT_LOCAL_MODEL

    settings = settings or Settings()
    if name.endswith(".gguf"):
        return LocalConfig.from_settings(settings, Path(name).expanduser())
    if "local/" + name != DEFAULT_LOCAL_MODEL:
        raise LLMProviderError(
            f"Unknown local model local/{name}: use {DEFAULT_LOCAL_MODEL} or local/<path to a .gguf file>."
        )
    return LocalConfig.from_settings(settings)


@dataclass
class Usage:
    """Filled in while a generation runs; final once the stream is exhausted. ``phase`` says what the call
    is doing (for timeout messages): loading, waiting, reading the prompt, generating."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    phase: str = ""


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
