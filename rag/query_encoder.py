"""The question's vector and word-piece vectors without torch: MiniLM's forward pass in numpy.

Search needs one pooled vector and the per-word-piece vectors of one short question (:mod:`rag.late`).
Importing sentence-transformers (transformers, torch) for that costs ~9 s in a fresh process on a 2-core
machine, against ~0.1 s for this module: it reads the same ``model.safetensors`` (with ``safetensors``'s
numpy loader) and ``tokenizer.json`` (``tokenizers``, the same Rust tokenizer transformers wraps) and runs
the BERT encoder in float32 numpy: embeddings (word + position + token type 0) → LayerNorm → N × (self
attention, residual, LayerNorm, GELU feed-forward, residual, LayerNorm). One question is one sequence, so
there is no padding and the attention mask is all ones. The pooled vector is the mean of the word-piece
vectors, L2-normalised, exactly as the model's sentence-transformers modules (Transformer → mean Pooling →
Normalize) do; the word-piece ids and vectors are the Transformer module's output (special tokens included;
:mod:`rag.late` drops what it skips). Vectors agree with sentence-transformers to cosine ≥ 0.9999
(tests/test_query_encoder.py); indexing keeps using sentence-transformers (:mod:`rag.embed`).

Only models this can reproduce are served here (:func:`supported`): a local folder whose ``modules.json``
is Transformer → Pooling (mean only) [→ Normalize], a BERT ``config.json`` with absolute positions and
GELU, ``model.safetensors`` and ``tokenizer.json``. Anything else (hub ids, other architectures, the onnx
or openvino backends) goes through :func:`rag.embed.get_embedder`, as before.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.settings import Settings

log = logging.getLogger(__name__)

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _mean_pooling_only(folder: Path, modules: list[dict[str, Any]]) -> bool:
    types = [m.get("type") for m in modules]
    if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
        return False
    cfg = _read_json(folder / str(modules[1].get("path", "")) / "config.json")
    modes = {k for k, v in cfg.items() if k.startswith("pooling_mode") and v}
    return modes == {"pooling_mode_mean_tokens"}


def supported(folder: Path) -> bool:
    """Whether ``folder`` holds a model this module reproduces exactly (see the module docstring)."""
    try:
        modules = _read_json(folder / "modules.json")
        config = _read_json(folder / "config.json")
        st_config = _read_json(folder / "sentence_bert_config.json")
        return (
            (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file()
            and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and not st_config.get("do_lower_case", False)
            and bool(st_config.get("max_seq_length"))
            and _mean_pooling_only(folder, modules)
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~2e-7 absolute (Abramowitz & Stegun 7.1.26, float32): at float32's resolution of GELU's
    output, so the result matches torch's exact-erf GELU to rounding (tests/test_query_encoder.py)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = poly * t + np.float32(c)
    y = 1.0 - poly * t * np.exp(-z * z)
    return np.copysign(y, x)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))


class QueryEncoder:
    """One question in, (pooled vector, word-piece ids, word-piece vectors) out; see the module docstring."""

    def __init__(self, folder: Path, model_id: str) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.model_id = model_id  # rag.injection reads it to pick its calibrated thresholds
        config = _read_json(folder / "config.json")
        self.max_seq_length = int(_read_json(folder / "sentence_bert_config.json")["max_seq_length"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        weights = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self.w = {k[len(prefix) :]: v.astype(np.float32, copy=False) for k, v in weights.items()}
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """``x @ W.T + b`` as one 2-D matrix product (numpy's stacked matmul can miss BLAS)."""
        weight = self.w[name + ".weight"]
        out = x.reshape(-1, x.shape[-1]) @ weight.T + self.w[name + ".bias"]
        return out.reshape(*x.shape[:-1], weight.shape[0])

    def _layer(self, h: np.ndarray, bias: np.ndarray, i: int) -> np.ndarray:
        """One encoder layer over ``h`` (batch, length, dim); ``bias`` (batch, 1, 1, length) masks padding."""
        p = f"encoder.layer.{i}."
        b, n, dim = h.shape
        size = dim // self.heads
        q, k, v = (
            self._linear(h, p + f"attention.self.{name}").reshape(b, n, self.heads, size).swapaxes(1, 2)
            for name in ("query", "key", "value")
        )
        scores = q @ k.swapaxes(2, 3) / np.float32(math.sqrt(size)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).swapaxes(1, 2).reshape(b, n, dim)
        w = self.w
        attn = self._linear(context, p + "attention.output.dense") + h
        ln = p + "attention.output.LayerNorm."
        h = _layer_norm(attn, w[ln + "weight"], w[ln + "bias"], self.eps)
        out = self._linear(_gelu(self._linear(h, p + "intermediate.dense")), p + "output.dense") + h
        ln = p + "output.LayerNorm."
        return _layer_norm(out, w[ln + "weight"], w[ln + "bias"], self.eps)

    def _forward(self, ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(hidden states (batch, length, dim), mask (batch, length)) for word-piece id sequences, padded
        to the longest; padding is masked out of attention as transformers does."""
        n = max(len(x) for x in ids)
        batch = np.zeros((len(ids), n), dtype=np.int64)
        mask = np.zeros((len(ids), n), dtype=bool)
        for row, x in enumerate(ids):
            batch[row, : len(x)] = x
            mask[row, : len(x)] = True
        w = self.w
        h = (
            w["embeddings.word_embeddings.weight"][batch]
            + w["embeddings.position_embeddings.weight"][:n][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = np.where(mask, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        for i in range(self.layers):
            h = self._layer(h, bias, i)
        return h, mask

    def _ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tokenizer.encode_batch(list(texts))]

    def token_vectors(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(word-piece ids, contextual word-piece vectors) of ``text``, special tokens included."""
        ids = self._ids([text])[0]
        h, _ = self._forward([ids])
        return ids.astype(np.int32), np.ascontiguousarray(h[0], dtype=np.float32)

    def encode_query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled unit vector, word-piece ids, word-piece vectors): what :class:`rag.embed.Embedder`'s
        method of the same name returns."""
        ids, vecs = self.token_vectors(text)
        pooled = vecs.mean(axis=0, dtype=np.float32)
        pooled = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return pooled.astype(np.float32), ids, vecs

    def encode_query(self, text: str) -> np.ndarray:
        """The pooled unit vector, shape ``(dim,)``."""
        return self.encode_query_with_tokens(text)[0]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Pooled unit vectors of ``texts`` (float32, ``(len(texts), dim)``), as
        :meth:`rag.embed.Embedder.encode`; texts of similar length are batched together."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self._ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            h, mask = self._forward([ids[i] for i in rows])
            summed = (h * mask[:, :, None]).sum(axis=1)
            pooled = summed / mask.sum(axis=1, keepdims=True).astype(np.float32)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out


@functools.lru_cache(maxsize=4)
def _load(folder: str, model_id: str) -> QueryEncoder:
    log.info("loading query encoder %s from %s (numpy)", model_id, folder)
    return QueryEncoder(Path(folder), model_id)


def get_query_encoder(settings: Settings | None = None) -> Any:
    """The encoder for questions: :class:`QueryEncoder` when the settings' model is one it reproduces
    (the default MiniLM is), else the sentence-transformers :class:`rag.embed.Embedder`. Both have
    ``encode_query`` and ``encode_query_with_tokens``."""
    from rag.embed import get_embedder, resolve_model

    settings = settings or Settings()
    if settings.index.embed_backend == "torch":
        folder = Path(resolve_model(settings.index.embed_model))
        if folder.is_dir() and supported(folder):
            return _load(str(folder.resolve()), settings.index.embed_model)
    return get_embedder(settings)
