"""Shared fixtures. Every test gets a temporary RAG_HOME, so nothing touches the user's index.

The assembled local model is shared (RAG_MODELS_DIR points at the folder it is installed in: the user
cache, or where an earlier version put it) because re-assembling 1.1 GB per test would be wasteful; it is
read-only for tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS = PROJECT_ROOT / "seeds"
SCIFACT = PROJECT_ROOT.parent / "shared" / "bench" / "scifact"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


@pytest.fixture(autouse=True)
def rag_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from rag.models import installed_dir

    real_models = installed_dir()
    home = tmp_path / "rag_home"
    monkeypatch.setenv("RAG_HOME", str(home))
    monkeypatch.setenv("RAG_MODELS_DIR", str(real_models))
    monkeypatch.delenv("RAG_CHROMA_URL", raising=False)
    return home


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A test_index.FakeEmbedder behind every ``get_embedder`` the index reaches (rag.index's and
    rag.embed's). Modules with an embedder fixture of their own keep theirs."""
    from test_index import FakeEmbedder

    import rag.embed
    import rag.index

    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings=None: embedder)
    return embedder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The sources each build_index read (rag.corpus.load_corpus_report's calls: the full path reads
    every source, an add only the new files, rag.index_add)."""
    import rag.corpus

    calls: list[Any] = []
    load = rag.corpus.load_corpus_report

    def counted(paths: Any = None, **kwargs: Any) -> Any:
        calls.append(paths)
        return load(paths, **kwargs)

    monkeypatch.setattr(rag.corpus, "load_corpus_report", counted)
    return calls
