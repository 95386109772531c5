"""The vector store: one Chroma collection per index. The only module that imports chromadb.

Embedded by default (``PersistentClient`` under ``<home>/index/chroma``); with ``settings.chroma_url``
(``RAG_CHROMA_URL=http://host:port``) the same code talks to a ``chroma run`` server via ``HttpClient``.

Layout of ``settings.index_dir`` (``<home>/index``)::

    chroma/                 the embedded Chroma database (absent in server mode)
    current.json            which collection is the current index (and where it lives)
    <collection name>/      files beside the collection: papers.jsonl, manifest.json, bm25/

The collection name is ``<prefix>-<hash>`` of what shapes the vectors (embedding model id, chunking
parameters, schema version), so a changed model or chunking never reuses stale vectors. Vectors are
cosine-space and always passed in explicitly; the collection also gets our own embedding function
(:class:`RagEmbeddingFunction`) so that Chroma never falls back to its downloading default.

Chunk metadata (what ``where`` filters can use): ``paper_id``, ``title``, ``authors`` ("; "-joined),
``authors_folded`` (same, lower-case and accent-free), ``year`` (int; the key is absent when the year is
unknown), ``source``, ``sources`` ("; "-joined), ``category``, ``kind``, ``venue``, ``date`` (absent when
unknown), ``has_abstract`` (bool), ``n``, ``n_chunks``, ``content_hash``; and two string lists added at
write time for exact, in-store author filters with ``$contains``: ``author_names`` (each full name
folded) and ``author_families`` (each folded family name, the last word), absent when there are no
authors. ``where={"author_families": {"$contains": "muller"}}`` matches "Zoë Müller".
Chroma's ``$ne``/``$nin`` also match chunks that lack the key (e.g. unknown year); ``$gt``/``$gte``/``$lt``/
``$lte``/``$eq``/``$in`` do not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from rag.errors import (
    ConfigError,
    IndexError_,
    IndexMissingError,
    RagError,
    StoreCorruptError,
    StoreUnavailableError,
)
from rag.settings import Settings
from rag.types import Chunk, Paper, fold

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Bump when chunk texts or metadata change shape: every index is then rebuilt under a new name."""

CURRENT_FILE = "current.json"
PAPERS_FILE = "papers.jsonl"
MANIFEST_FILE = "manifest.json"
BM25_DIR = "bm25"


def collection_name(settings: Settings) -> str:
    """``<prefix>-<12 hex>``: a hash of the embedding model, the chunking parameters and the schema."""
    shape = {
        "model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "chunk_overlap_sentences": settings.index.chunk_overlap_sentences,
        "schema": SCHEMA_VERSION,
    }
    if settings.index.chunk_max_sentences is not None:  # only when set: existing indexes keep their names
        shape["chunk_max_sentences"] = settings.index.chunk_max_sentences
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    return f"{settings.index.collection_prefix}-{digest}"


@dataclass(frozen=True)
class StoreHit:
    """One chunk returned by a vector query."""

    chunk_id: str
    paper_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    distance: float = 0.0
    """Cosine distance (1 - cosine similarity): 0 is identical."""


@register_embedding_function
class RagEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by :mod:`rag.embed`. Loads the model only when called."""

    def __init__(self, model: str, backend: str = "torch") -> None:
        self.model = model
        self.backend = backend

    def __call__(self, input: Documents) -> Embeddings:
        from rag.embed import load_embedder

        vectors = load_embedder(self.model, self.backend).encode(list(input))
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return "rag-sentence-transformers"

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> Any:
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> RagEmbeddingFunction:
        return RagEmbeddingFunction(config["model"], config.get("backend", "torch"))

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "backend": self.backend}

    def is_legacy(self) -> bool:
        return False

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        return None


def _parse_url(url: str) -> tuple[str, int, bool]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"RAG_CHROMA_URL={url!r} is not an http://host:port URL.")
    ssl = parsed.scheme == "https"
    try:
        port = parsed.port or (443 if ssl else 8000)
    except ValueError as exc:
        raise ConfigError(f"RAG_CHROMA_URL={url!r} has an invalid port.") from exc
    return parsed.hostname, port, ssl


def read_current(settings: Settings) -> dict[str, Any] | None:
    """The contents of ``<index_dir>/current.json``, or None when nothing was indexed."""
    path = settings.index_dir / CURRENT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreCorruptError(f"{path} is unreadable ({exc}); delete it, then run `rag index`.") from exc
    return data if isinstance(data, dict) else None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Store:
    """One index: a Chroma collection plus the files beside it."""

    def __init__(self, client: Any, collection: Any, settings: Settings, name: str) -> None:
        self.client = client
        self.collection = collection
        self.settings = settings
        self.collection_name = name
        self.folder: Path = settings.index_dir / name
        self.url: str | None = settings.chroma_url
        self._papers: dict[str, Paper] | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Store:
        """Open the index the settings describe.

        Reading (``create=False``) raises :class:`IndexMissingError` when nothing was indexed, or the index
        was built with other settings. ``create=True`` (used by ``build_index``) creates the collection.
        Raises :class:`StoreUnavailableError` when the server cannot be reached and
        :class:`StoreCorruptError` when the embedded directory is not a usable Chroma database.
        """
        name = collection_name(settings)
        if not create:
            current = read_current(settings)
            if current is None or not (settings.index_dir / current.get("collection", "")).is_dir():
                raise IndexMissingError(f"Nothing is indexed in {settings.index_dir}: run `rag index` first.")
            if current.get("collection") != name or current.get("chroma_url") != settings.chroma_url:
                where = current.get("chroma_url") or "embedded Chroma"
                raise IndexMissingError(
                    f"The index in {settings.index_dir} was built with other settings (collection "
                    f"{current.get('collection')} in {where}; these settings need {name} in "
                    f"{settings.chroma_url or 'embedded Chroma'}): run `rag index` to rebuild it."
                )
        client = cls._client(settings, create=create)
        ef = RagEmbeddingFunction(settings.index.embed_model, settings.index.embed_backend)
        store_where = settings.chroma_url or str(settings.index_dir / "chroma")
        try:
            if create:
                collection = client.get_or_create_collection(
                    name,
                    embedding_function=ef,
                    metadata={
                        "hnsw:space": "cosine",
                        "rag_schema": SCHEMA_VERSION,
                        "embed_model": settings.index.embed_model,
                    },
                )
            else:
                collection = client.get_collection(name, embedding_function=ef)
            collection.count()
        except RagError:
            raise
        except Exception as exc:
            if not create and type(exc).__name__ in ("NotFoundError", "InvalidCollectionException"):
                raise IndexMissingError(
                    f"The collection {name} is missing from {store_where}: run `rag index` first."
                ) from exc
            raise cls._fault(settings, exc) from exc
        return cls(client, collection, settings, name)

    @staticmethod
    def _fault(settings: Settings, exc: Exception) -> IndexError_:
        if settings.chroma_url:
            text = str(exc).lower()
            if isinstance(exc, (ConnectionError, OSError)) or "connect" in text or "timed out" in text:
                return StoreUnavailableError(
                    f"Cannot reach the Chroma server at {settings.chroma_url} ({exc}). Start it "
                    "(`chroma run --path DIR --port N`) or unset RAG_CHROMA_URL to use embedded Chroma."
                )
            return IndexError_(f"The Chroma server at {settings.chroma_url} failed: {exc}")
        path = settings.index_dir / "chroma"
        return StoreCorruptError(
            f"{path} is not a usable Chroma database ({type(exc).__name__}: {exc}). "
            f"Move it away or delete {path}, then run `rag index`."
        )

    @classmethod
    def _client(cls, settings: Settings, *, create: bool) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma_url:
            host, port, ssl = _parse_url(settings.chroma_url)
            try:
                client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
                client.heartbeat()
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Cannot reach the Chroma server at {settings.chroma_url} ({exc}). Start it "
                    "(`chroma run --path DIR --port N`) or unset RAG_CHROMA_URL to use embedded Chroma."
                ) from exc
            return client
        path = settings.index_dir / "chroma"
        if path.exists() and not path.is_dir():
            raise cls._fault(settings, NotADirectoryError(f"{path} is a file"))
        if not create and not path.is_dir():
            raise IndexMissingError(f"Nothing is indexed in {settings.index_dir}: run `rag index` first.")
        sqlite = path / "chroma.sqlite3"
        if sqlite.is_file() and sqlite.stat().st_size and not _is_sqlite(sqlite):
            raise cls._fault(settings, ValueError(f"{sqlite} is not an SQLite database"))
        try:
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except Exception as exc:
            raise cls._fault(settings, exc) from exc

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except RagError:
            raise
        except Exception as exc:
            raise self._fault(self.settings, exc) from exc

    # ----------------------------------------------------------------- reading
    def count(self) -> int:
        """Chunks in the collection."""
        with self._guard():
            return int(self.collection.count())

    def query(
        self, embedding: np.ndarray, n: int, where: dict[str, Any] | None = None, *, contents: bool = True
    ) -> list[StoreHit]:
        """The ``n`` nearest chunks to ``embedding`` (cosine distance, smallest first), filtered by
        ``where`` (a Chroma metadata filter).

        ``contents=False`` returns ids and distances only (text and metadata empty, the paper id read from the
        chunk id ``<paper id>#<n>``): reading documents and metadata back is most of a query's cost, so search
        asks for the few texts it shows afterwards with :meth:`texts`.
        """
        total = self.count()
        if total == 0 or n <= 0:
            return []
        include: list[Any] = ["documents", "metadatas", "distances"] if contents else ["distances"]
        with self._guard():
            result = self.collection.query(
                query_embeddings=[np.asarray(embedding, dtype=np.float32).reshape(-1)],
                n_results=min(n, total),
                where=where or None,
                include=include,
            )
        ids = result["ids"][0]
        docs = (result.get("documents") or [[]])[0] or [""] * len(ids)
        metas = (result.get("metadatas") or [[]])[0] or [{}] * len(ids)
        dists = (result.get("distances") or [[]])[0] or [0.0] * len(ids)
        return [
            StoreHit(
                chunk_id=cid,
                paper_id=str((meta or {}).get("paper_id", cid.rsplit("#", 1)[0])),
                text=doc or "",
                metadata=dict(meta or {}),
                distance=float(dist),
            )
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True)
        ]

    def texts(self, chunk_ids: list[str]) -> dict[str, str]:
        """Chunk id → chunk text, for the ids that exist."""
        if not chunk_ids:
            return {}
        with self._guard():
            got = self.collection.get(ids=list(dict.fromkeys(chunk_ids)), include=["documents"])
        docs = got.get("documents") or [""] * len(got["ids"])
        return {cid: doc or "" for cid, doc in zip(got["ids"], docs, strict=True)}

    def papers(self) -> dict[str, Paper]:
        """The indexed papers (from ``papers.jsonl`` beside the collection), by id."""
        if self._papers is None:
            path = self.folder / PAPERS_FILE
            if not path.is_file():
                raise IndexMissingError(f"{path} is missing: run `rag index` to complete the index.")
            papers: dict[str, Paper] = {}
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        paper = Paper.model_validate_json(line)
                        papers[paper.id] = paper
            self._papers = papers
        return self._papers

    def max_batch_size(self) -> int:
        with self._guard():
            return int(self.client.get_max_batch_size())

    def chunk_states(self) -> dict[str, dict[str, Any]]:
        """Every chunk id in the collection with its metadata (no documents, no vectors)."""
        out: dict[str, dict[str, Any]] = {}
        page = max(1000, min(self.max_batch_size(), 20000))
        offset = 0
        with self._guard():
            while True:
                got = self.collection.get(include=["metadatas"], limit=page, offset=offset)
                ids = got["ids"]
                for cid, meta in zip(ids, got.get("metadatas") or [{}] * len(ids), strict=True):
                    out[cid] = dict(meta or {})
                if len(ids) < page:
                    return out
                offset += page

    def all_chunks(self) -> list[Chunk]:
        """Every chunk with its text and metadata, read back from the collection."""
        chunks: list[Chunk] = []
        page = max(1000, min(self.max_batch_size(), 20000))
        offset = 0
        with self._guard():
            while True:
                got = self.collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
                ids = got["ids"]
                for cid, doc, meta in zip(ids, got["documents"] or [], got["metadatas"] or [], strict=True):
                    meta = {k: v for k, v in (meta or {}).items() if not isinstance(v, list)}
                    chunks.append(
                        Chunk(
                            id=cid,
                            paper_id=str(meta.get("paper_id", cid.rsplit("#", 1)[0])),
                            n=int(meta.get("n", cid.rsplit("#", 1)[-1])),
                            text=doc or "",
                            metadata=meta,
                        )
                    )
                if len(ids) < page:
                    return chunks
                offset += page

    # ----------------------------------------------------------------- writing
    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Write chunks with their vectors (by chunk id: re-writing replaces, never duplicates)."""
        if not chunks:
            return
        step = self.max_batch_size()
        with self._guard():
            for start in range(0, len(chunks), step):
                part = chunks[start : start + step]
                self.collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.asarray(embeddings[start : start + step], dtype=np.float32),
                    documents=[c.text for c in part],
                    metadatas=[chroma_metadata(c.metadata) for c in part],
                )

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        step = self.max_batch_size()
        with self._guard():
            for start in range(0, len(ids), step):
                self.collection.delete(ids=list(ids[start : start + step]))

    def drop_other_collections(self) -> list[str]:
        """Delete the collection (and folder) the previous ``current.json`` named, if it is not this one."""
        current = read_current(self.settings)
        if not current:
            return []
        old = current.get("collection")
        if not old or old == self.collection_name or current.get("chroma_url") != self.url:
            return []
        try:
            with self._guard():
                self.client.delete_collection(old)
        except Exception as exc:  # it may already be gone
            log.info("could not delete old collection %s: %s", old, exc)
        shutil.rmtree(self.settings.index_dir / old, ignore_errors=True)
        return [old]

    def mark_current(self, extra: dict[str, Any] | None = None) -> None:
        """Record this collection as the current index in ``<index_dir>/current.json``."""
        data = {
            "collection": self.collection_name,
            "chroma_url": self.url,
            "embed_model": self.settings.index.embed_model,
            "folder": str(self.folder),
            **(extra or {}),
        }
        write_atomic(self.settings.index_dir / CURRENT_FILE, json.dumps(data, indent=2) + "\n")

    @property
    def where(self) -> str:
        """Where the vectors live: the server URL or the embedded directory."""
        return self.url or str(self.settings.index_dir / "chroma")


def chroma_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """A chunk's metadata as written to Chroma: the scalars plus the author lists (see module doc)."""
    out = dict(meta)
    names = [n.strip() for n in str(meta.get("authors", "")).split(";") if n.strip()]
    if names:
        out["author_names"] = [fold(n) for n in names]
        out["author_families"] = [fold(n).replace(",", " ").split()[-1] for n in names]
    return out


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
