"""The system prompt's KV cache on disk, so that a fresh process does not read it again.

Every answer's prompt starts with the same chat-templated system part (the shape's instructions, ~120
tokens for a fact answer). ``rag.local_model`` keeps it in llama.cpp's KV cache between calls of one
process; a new process (`rag ask`, the first question of `rag ui`) had to evaluate it again, at the prompt
reading speed of a few cores (30–90 tokens/s measured on the 2-core machine). Here, after it is evaluated
once, llama.cpp's state of sequence 0 (the KV cells of exactly those tokens: ``llama_state_seq_get_data``)
is written to a file, and later processes load it instead (a few MB, milliseconds).

The file's name is a hash of everything that decides those bytes: the model file (path, size, mtime),
the context settings that shape the cache (n_ctx, n_batch, flash attention), llama-cpp-python's version
and the prefix tokens themselves. The bytes are the ones an evaluation leaves, so an answer is the same with
or without the file (tested). A file that fails to load is deleted and the prefix is evaluated as before;
writes are atomic (temporary file, then rename), so two processes never see half a file. At most
``MAX_FILES`` files are kept (the least recently used go).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_FILES = 16
"""Prefix files kept per folder (one per distinct system prompt and model; a few MB each)."""

_SEQ = 0
"""The one sequence our contexts use."""


class PrefixCache:
    """Prefix states of one loaded model, in ``folder`` (no-op when ``folder`` is None).

    ``lib`` is the ``llama_cpp`` module, passed in by ``rag.local_model`` (its one door; never imported
    here); ``shape`` holds what else decides the state's bytes (context settings, the library version).
    """

    def __init__(
        self, folder: Path | None, llama: Any, lib: Any, model_path: Path, shape: tuple[Any, ...]
    ) -> None:
        self.folder = folder
        self.llama = llama
        self.lib = lib
        self._key = _model_key(model_path, shape)

    def path(self, tokens: list[int]) -> Path | None:
        if self.folder is None:
            return None
        digest = hashlib.sha256(self._key.encode())
        digest.update(",".join(map(str, tokens)).encode())
        return self.folder / f"prefix-{digest.hexdigest()[:32]}.kv"

    def restore(self, tokens: list[int]) -> bool:
        """Load the state for ``tokens`` into sequence 0 of a reset context; True when it did (the caller
        then marks those tokens as evaluated), False when there is no usable file."""
        path = self.path(tokens)
        if path is None or not path.is_file():
            return False
        try:
            data = path.read_bytes()
            buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            self._clear()
            read = self.lib.llama_state_seq_set_data(self.llama._ctx.ctx, buffer, len(data), _SEQ)
        except (OSError, AttributeError, ValueError) as exc:
            log.debug("prefix cache %s not loaded: %s", path, exc)
            return False
        if read != len(data):  # llama.cpp refused it (another layout): evaluate, and replace the file
            log.info("prefix cache %s did not fit this model; it is rebuilt", path.name)
            self._clear()
            path.unlink(missing_ok=True)
            return False
        os.utime(path)  # recently used: kept by the clean-up
        return True

    def save(self, tokens: list[int]) -> None:
        """Write sequence 0's state (which holds exactly ``tokens``) for later processes; best effort."""
        path = self.path(tokens)
        if path is None or path.is_file():
            return
        try:
            ctx = self.llama._ctx.ctx
            size = int(self.lib.llama_state_seq_get_size(ctx, _SEQ))
            buffer = (ctypes.c_uint8 * size)()
            written = int(self.lib.llama_state_seq_get_data(ctx, buffer, size, _SEQ))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".prefix-", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(bytes(buffer)[:written])
            os.replace(tmp, path)
            _trim(path.parent)
        except (OSError, AttributeError) as exc:  # a read-only cache folder: evaluate each time
            log.debug("prefix cache not written to %s: %s", path, exc)


    def _clear(self) -> None:
        """Drop every KV cell (a refused load may have left some)."""
        with contextlib.suppress(AttributeError):  # an older llama-cpp-python: set_data replaces the sequence
            self.lib.llama_memory_clear(self.lib.llama_get_memory(self.llama._ctx.ctx), True)


def _model_key(model_path: Path, shape: tuple[Any, ...]) -> str:
    try:
        stat = model_path.stat()
        ident = f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        ident = str(model_path)
    return f"{ident}|{shape}"


def _trim(folder: Path) -> None:
    """Keep the ``MAX_FILES`` most recently used files (another process may be trimming too)."""
    stamped = []
    for file in folder.glob("prefix-*.kv"):
        with contextlib.suppress(OSError):
            stamped.append((file.stat().st_mtime, file))
    for _, old in sorted(stamped, reverse=True)[MAX_FILES:]:
        old.unlink(missing_ok=True)
