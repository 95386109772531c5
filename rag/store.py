"""The vector store: one Chroma collection per index. The only module that imports chromadb.

Embedded by default (``PersistentClient`` under ``<home>/index/chroma``); with ``settings.chroma_url``
(``RAG_CHROMA_URL=http://host:port``) the same code talks to a ``chroma run`` server via ``HttpClient``.

Layout of ``settings.index_dir`` (``<home>/index``)::

    chroma/                 the embedded Chroma database (absent in server mode)
    corpus.json             the home's corpus name, recorded by its first ``rag index``
    current.json            which collection is the current index (and where it lives)
    <collection name>/      files beside the collection: papers.jsonl, manifest.json, bm25/, late/

One collection per corpus: the name is ``<prefix>-<corpus>-<hash>``, where the corpus name is
``index.corpus_name`` or, unset, the name the home recorded at its first index (its folder name and a
hash of host and path), and the hash covers what shapes the vectors (embedding model id, chunking
parameters, schema version), so a changed model or chunking never reuses stale vectors. Homes with
different corpus names never touch each other's collections on a shared ``chroma run`` server; homes
configured with the same corpus name share one on purpose. The collection's metadata records its corpus
(``rag_corpus``): ``build_index`` refuses to write to, delete from or drop a collection of another corpus.
An embedded home indexed before corpus names keeps its ``<prefix>-<hash>`` collection (recorded in
``corpus.json`` as ``legacy_collection``); a server home moves to its corpus's collection by copying the
vectors (:meth:`Store.adopt_previous`), never re-embedding them.

Vectors are cosine-space and always passed in explicitly; the collection also gets our own embedding
function (:class:`RagEmbeddingFunction`) so that Chroma never falls back to its downloading default.

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
import re
import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
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
IDENTITY_FILE = "corpus.json"
PAPERS_FILE = "papers.jsonl"
MANIFEST_FILE = "manifest.json"
BM25_DIR = "bm25"

CORPUS_KEY = "rag_corpus"
"""Collection metadata key naming the corpus a collection belongs to."""
MAX_NAME = 63
"""Chroma's collection names: 3-63 characters of [a-zA-Z0-9._-], alphanumeric at both ends, no '..'."""
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def shape_digest(settings: Settings) -> str:
    """12 hex of a hash of the embedding model, the chunking parameters and the schema."""
    shape = {
        "model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "chunk_overlap_sentences": settings.index.chunk_overlap_sentences,
        "schema": SCHEMA_VERSION,
    }
    if settings.index.chunk_max_sentences is not None:  # only when set: existing indexes keep their names
        shape["chunk_max_sentences"] = settings.index.chunk_max_sentences
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def legacy_collection_name(settings: Settings) -> str:
    """``<prefix>-<shape hash>``: every index's name before corpus names (one per model and chunking)."""
    return f"{settings.index.collection_prefix}-{shape_digest(settings)}"


def valid_collection_name(name: str) -> bool:
    """Whether Chroma accepts ``name`` as a collection name."""
    return 3 <= len(name) <= MAX_NAME and ".." not in name and _NAME.fullmatch(name) is not None


def corpus_collection_name(prefix: str, corpus: str, digest: str) -> str:
    """``<prefix>-<corpus>-<digest>``, or :class:`ConfigError` when Chroma would not accept it."""
    name = f"{prefix}-{corpus}-{digest}"
    if not valid_collection_name(name):
        raise ConfigError(
            f"The collection name {name!r} (index.collection_prefix {prefix!r}, corpus name {corpus!r}) is "
            f"not a valid Chroma name: at most {MAX_NAME} characters of letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit. Choose a shorter RAG_INDEX__CORPUS_NAME or "
            "collection prefix."
        )
    return name


def generated_corpus_name(home: Path) -> str:
    """The corpus name a home gets when none is configured: its folder name and 8 hex of a hash of the host
    name and the home's absolute path (so two machines, or two folders, never share one by accident)."""
    folder = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(home).name)
    folder = re.sub(r"\.{2,}", ".", folder).strip("._-")[:24].strip("._-") or "rag"
    where = f"{socket.gethostname()}\0{Path(home).expanduser().absolute()}"
    return f"{folder}-{hashlib.sha256(where.encode('utf-8')).hexdigest()[:8]}"


def read_identity(settings: Settings) -> dict[str, Any]:
    """``<index_dir>/corpus.json`` (the corpus name recorded at the home's first index), or ``{}``."""
    path = settings.index_dir / IDENTITY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StoreCorruptError(
            f"{path} is unreadable ({exc}). It records this home's corpus name: restore it, or set "
            "RAG_INDEX__CORPUS_NAME to the name in `rag index`'s collection (papers-<corpus>-<hash>) and "
            "delete the file; then run `rag index`."
        ) from exc
    return data if isinstance(data, dict) else {}


def corpus_name(settings: Settings) -> str:
    """This home's corpus: ``index.corpus_name`` when set, else the name its first index recorded, else the
    name its first index will record (:func:`generated_corpus_name`)."""
    if settings.index.corpus_name:
        return settings.index.corpus_name
    recorded = read_identity(settings).get("corpus")
    if isinstance(recorded, str) and recorded:
        return recorded
    return generated_corpus_name(settings.home)


def _uses_legacy_name(settings: Settings) -> bool:
    """An index built before corpus names, under these settings, that keeps its ``<prefix>-<hash>`` name:
    an embedded home recorded as such, or any home not yet re-indexed since (reading only; a server home
    moves to its corpus's collection at its next ``rag index``)."""
    if settings.index.corpus_name:
        return False
    legacy = legacy_collection_name(settings)
    identity = read_identity(settings)
    if identity:
        return not settings.chroma_url and identity.get("legacy_collection") == legacy
    current = read_current(settings) or {}
    return current.get("collection") == legacy and current.get("chroma_url") == settings.chroma_url


def collection_name(settings: Settings) -> str:
    """The collection of this home's index under these settings: ``<prefix>-<corpus>-<shape hash>`` (see the
    module doc), or the ``<prefix>-<shape hash>`` of an embedded index built before corpus names."""
    if _uses_legacy_name(settings):
        return legacy_collection_name(settings)
    return corpus_collection_name(
        settings.index.collection_prefix, corpus_name(settings), shape_digest(settings)
    )


def record_identity(settings: Settings) -> dict[str, Any]:
    """Write ``corpus.json`` unless it exists: the corpus name (``index.corpus_name`` or a generated one),
    and, for an embedded home whose current index predates corpus names, that collection's name, which the
    home keeps using. Called by ``Store.open(create=True)`` before anything is written to a collection."""
    identity = read_identity(settings)
    if isinstance(identity.get("corpus"), str) and identity["corpus"]:
        return identity
    identity = {"corpus": corpus_name(settings)}
    if not settings.index.corpus_name and not settings.chroma_url:
        current = read_current(settings) or {}
        legacy = legacy_collection_name(settings)
        if current.get("collection") == legacy and not current.get("chroma_url"):
            identity["legacy_collection"] = legacy
    write_atomic(settings.index_dir / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")
    return identity


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

    def __init__(
        self, client: Any, collection: Any, settings: Settings, name: str, corpus: str | None = None
    ) -> None:
        self.client = client
        self.collection = collection
        self.settings = settings
        self.collection_name = name
        self.corpus: str = corpus or corpus_name(settings)
        """This home's corpus name (the collection's, unless it predates corpus names)."""
        self.legacy: bool = name == legacy_collection_name(settings)
        """The collection predates corpus names (``<prefix>-<hash>``, no ``rag_corpus`` metadata)."""
        self.folder: Path = settings.index_dir / name
        self.url: str | None = settings.chroma_url
        self._papers: dict[str, Paper] | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Store:
        """Open the index the settings describe.

        Reading (``create=False``) raises :class:`IndexMissingError` when nothing was indexed, or the index
        was built with other settings. ``create=True`` (used by ``build_index``) records the home's corpus
        name (``corpus.json``) and creates the corpus's collection; it raises :class:`IndexError_` when a
        collection of that name belongs to another corpus (see :meth:`assert_owned`).
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
        if create:  # the server answered (or the embedded folder is usable): record the corpus name
            record_identity(settings)
            name = collection_name(settings)
        corpus = corpus_name(settings)
        ef = RagEmbeddingFunction(settings.index.embed_model, settings.index.embed_backend)
        store_where = settings.chroma_url or str(settings.index_dir / "chroma")
        try:
            if create:
                metadata: dict[str, Any] = {
                    "hnsw:space": "cosine",
                    "rag_schema": SCHEMA_VERSION,
                    "embed_model": settings.index.embed_model,
                }
                if name != legacy_collection_name(settings):
                    metadata[CORPUS_KEY] = corpus
                # An existing collection keeps its own metadata (Chroma ignores this argument then).
                collection = client.get_or_create_collection(name, embedding_function=ef, metadata=metadata)
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
        store = cls(client, collection, settings, name, corpus)
        if create:
            store.assert_owned()
        return store

    @staticmethod
    def _fault(settings: Settings, exc: Exception, *, broken: bool = False) -> IndexError_:
        """The error for a Chroma failure. In embedded mode only ``broken`` (what is at the path is shown
        not to be a Chroma database) gives :class:`StoreCorruptError`; any other failure (a lock, a busy
        writer, a bug) says what failed and never advises removing a database that may be healthy."""
        if settings.chroma_url:
            text = str(exc).lower()
            if isinstance(exc, (ConnectionError, OSError)) or "connect" in text or "timed out" in text:
                return StoreUnavailableError(
                    f"Cannot reach the Chroma server at {settings.chroma_url} ({exc}). Start it "
                    "(`chroma run --path DIR --port N`) or unset RAG_CHROMA_URL to use embedded Chroma."
                )
            return IndexError_(f"The Chroma server at {settings.chroma_url} failed: {exc}")
        path = settings.index_dir / "chroma"
        if broken:
            return StoreCorruptError(
                f"{path} is not a Chroma database ({exc}). Move it away (it may be something else's data), "
                "then run `rag index` to build the index anew."
            )
        return IndexError_(
            f"Embedded Chroma in {path} failed ({type(exc).__name__}: {exc}). This does not show that the "
            "database is damaged: if another process (a `rag index`, a `rag ui`) is writing to this home, "
            "let it finish and retry."
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
            raise cls._fault(settings, NotADirectoryError(f"{path} is a file"), broken=True)
        if not create and not path.is_dir():
            raise IndexMissingError(f"Nothing is indexed in {settings.index_dir}: run `rag index` first.")
        sqlite = path / "chroma.sqlite3"
        if sqlite.is_file() and sqlite.stat().st_size and not _is_sqlite(sqlite):
            raise cls._fault(settings, ValueError(f"{sqlite} is not an SQLite database"), broken=True)
        if sqlite.is_file() and sqlite.stat().st_size and _foreign_tables(sqlite):
            raise cls._fault(
                settings, ValueError(f"{sqlite} is an SQLite database without Chroma's tables"), broken=True
            )
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

    def assert_owned(self) -> None:
        """Raise :class:`IndexError_` unless the collection belongs to this home's corpus: its metadata
        records the corpus name, or it is an embedded collection from before corpus names (the embedded
        database belongs to the home). ``build_index`` calls it before writing and before deleting."""
        owner = (self.collection.metadata or {}).get(CORPUS_KEY)
        if owner == self.corpus or (owner is None and self.legacy and not self.url):
            return
        whose = f"corpus {owner!r}" if owner else "no corpus (it was not made by this version of rag)"
        raise IndexError_(
            f"The collection {self.collection_name} in {self.where} belongs to {whose}, not to this home's "
            f"corpus {self.corpus!r}: refusing to change it. Set RAG_INDEX__CORPUS_NAME to a corpus of your "
            "own (or to that corpus's name to share it on purpose), or use another Chroma server."
        )

    def _previous(self) -> tuple[str, dict[str, Any]] | None:
        """The collection this home's ``current.json`` names, when it is another one in the same Chroma."""
        current = read_current(self.settings)
        old = (current or {}).get("collection")
        if not current or not old or old == self.collection_name or current.get("chroma_url") != self.url:
            return None
        return str(old), current

    def adopt_previous(self) -> int:
        """When this home's previous collection differs from this one by name only (same Chroma, same
        embedding model and chunking: an index from before corpus names moving to its corpus's collection,
        or a new corpus name), copy its chunks and vectors here and move the files beside it, so nothing is
        re-embedded. Returns the chunks copied (0 when there is nothing to adopt). Idempotent: a run killed
        half-way copies again (upserts by chunk id) until the new collection is marked current."""
        previous = self._previous()
        if previous is None or not previous[0].endswith("-" + shape_digest(self.settings)):
            return 0
        old, _ = previous
        try:
            with self._guard():
                source = self.client.get_collection(old)
        except Exception as exc:  # already gone: nothing to adopt
            log.info("no previous collection %s to adopt: %s", old, exc)
            return 0
        old_folder = self.settings.index_dir / old
        if old_folder.is_dir() and not self.folder.exists():
            old_folder.rename(self.folder)  # papers.jsonl, manifest.json, bm25/, late/ travel with it
        copied = 0
        page = max(1000, min(self.max_batch_size(), 5000))
        offset = 0
        with self._guard():
            while True:
                got = source.get(include=["embeddings", "documents", "metadatas"], limit=page, offset=offset)
                ids = got["ids"]
                if ids:
                    self.collection.upsert(
                        ids=ids,
                        embeddings=np.asarray(got["embeddings"], dtype=np.float32),
                        documents=got["documents"],
                        metadatas=got["metadatas"],
                    )
                copied += len(ids)
                if len(ids) < page:
                    break
                offset += page
        log.info("copied %d chunks from %s to %s (no re-embedding)", copied, old, self.collection_name)
        return copied

    def drop_other_collections(self) -> list[str]:
        """Delete the collection (and folder) the previous ``current.json`` named, if it is not this one.

        On a server, only a collection of the corpus this home recorded for it is deleted: one from
        before corpus names may hold other homes' vectors, so it is kept (with a warning) and only this
        home's files beside it go."""
        previous = self._previous()
        if previous is None:
            return []
        old, current = previous
        old_folder = self.settings.index_dir / old
        if self.url:
            try:
                with self._guard():
                    owner = (self.client.get_collection(old).metadata or {}).get(CORPUS_KEY)
            except Exception as exc:  # already gone
                log.info("old collection %s is gone: %s", old, exc)
                shutil.rmtree(old_folder, ignore_errors=True)
                return []
            if owner is None or owner != current.get("corpus"):
                log.warning(
                    "left the old collection %s on %s in place: it %s, so other homes may use it; delete "
                    "it when none does",
                    old,
                    self.url,
                    "predates corpus names" if owner is None else f"belongs to corpus {owner!r}",
                )
                shutil.rmtree(old_folder, ignore_errors=True)
                return []
        try:
            with self._guard():
                self.client.delete_collection(old)
        except Exception as exc:  # it may already be gone
            log.info("could not delete old collection %s: %s", old, exc)
        shutil.rmtree(old_folder, ignore_errors=True)
        return [old]

    def mark_current(self, extra: dict[str, Any] | None = None) -> None:
        """Record this collection as the current index in ``<index_dir>/current.json`` (and, once a home has
        left its collection from before corpus names, forget that name in ``corpus.json``)."""
        data = {
            "collection": self.collection_name,
            "corpus": None if self.legacy else self.corpus,
            "chroma_url": self.url,
            "embed_model": self.settings.index.embed_model,
            "folder": str(self.folder),
            **(extra or {}),
        }
        write_atomic(self.settings.index_dir / CURRENT_FILE, json.dumps(data, indent=2) + "\n")
        identity = read_identity(self.settings)
        if identity.get("legacy_collection") and identity["legacy_collection"] != self.collection_name:
            del identity["legacy_collection"]
            write_atomic(self.settings.index_dir / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")

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


def _foreign_tables(path: Path) -> bool:
    """An SQLite file that has tables but not Chroma's (``migrations``, ``collections``)."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            names = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.Error:
        return False  # locked or unreadable: let Chroma say what is wrong
    return bool(names) and not {"migrations", "collections"} <= names


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
