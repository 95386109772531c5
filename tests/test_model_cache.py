"""One model cache per user: a new RAG_HOME uses the model already installed, wherever it was installed."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import pytest

from rag import models
from rag.models import ModelSpec, find, install, model_path
from rag.settings import Settings


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """A small model in two byte pieces exposed as importable packages; user dirs under tmp_path."""
    blobs = [b"GGUF" + bytes(range(256)) * 8, b"tail" * 100]
    for i, blob in enumerate(blobs, start=1):
        path = tmp_path / "pieces" / f"part{i}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        module = types.ModuleType(f"cache_model_part{i}")
        module.get_part_path = lambda p=path: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"cache_model_part{i}", module)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("RAG_MODELS_DIR", raising=False)
    whole = b"".join(blobs)
    return ModelSpec(
        filename="fake.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        n_parts=2,
        package="cache-model-part{}",
        module="cache_model_part{}",
    )


def _no_assembly(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the model was assembled again")

    monkeypatch.setattr(models, "assemble", fail)


def test_the_cache_is_per_user_not_per_home(
    spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Settings(home=tmp_path / "corpus-a")
    path = install(first, spec)
    assert path == tmp_path / "cache" / "rag" / "models" / "fake.gguf"
    assert not (tmp_path / "corpus-a" / "models").exists()
    _no_assembly(monkeypatch)
    other = Settings(home=tmp_path / "corpus-b")  # a second corpus home, never installed into
    assert model_path(other, spec) == path
    assert install(other, spec) == path


def test_an_install_at_the_old_place_is_used_where_it_is(
    spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_home = tmp_path / "data" / "rag"  # the default data home, where earlier versions put the model
    old = install(Settings(home=old_home, models_dir=old_home / "models"), spec)
    before = old.stat()
    _no_assembly(monkeypatch)
    for home in (old_home, tmp_path / "new-corpus"):  # the default home, and a new RAG_HOME
        settings = Settings(home=home)
        assert find(settings, spec) == old
        assert model_path(settings, spec) == old
        assert install(settings, spec) == old
    after = old.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "not moved or rewritten"
    assert not (tmp_path / "cache" / "rag" / "models" / "fake.gguf").exists(), "not copied"


def test_models_dir_is_the_only_place_looked_at_when_set(spec: ModelSpec, tmp_path: Path) -> None:
    old_home = tmp_path / "data" / "rag"
    install(Settings(home=old_home, models_dir=old_home / "models"), spec)
    explicit = Settings(home=tmp_path / "x", models_dir=tmp_path / "elsewhere")
    assert find(explicit, spec) is None
    with pytest.raises(models.ModelNotInstalledError, match="not installed at .*elsewhere"):
        model_path(explicit, spec)


def test_install_command_names_the_old_place_and_how_to_move(
    spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_home = tmp_path / "data" / "rag"
    old = install(Settings(home=old_home, models_dir=old_home / "models"), spec)
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "new-corpus"))
    monkeypatch.setattr(models.install, "__defaults__", (None, spec))
    assert models.main(["install"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(old)
    assert "mv " in err and str(tmp_path / "cache" / "rag" / "models") in err


@pytest.mark.slow
def test_a_new_home_finds_the_installed_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real default model, installed once by `make setup`, serves a home that never installed it."""
    from rag.local_config import LocalConfig

    installed = models.find(Settings())
    if installed is None:
        pytest.skip("the local model is not installed (make setup)")
    monkeypatch.delenv("RAG_MODELS_DIR", raising=False)
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "another-corpus"))
    assert LocalConfig.from_settings(Settings()).path == installed
