"""The vector store: one Chroma collection per index. The only module that imports chromadb.

Embedded by default (``PersistentClient`` under ``<home>/index/chroma``); with ``settings.chroma_url``
(``RAG_CHROMA_URL=http://host:port``) the same code talks to a ``chroma run`` server via ``HttpClient``.

Which collection a home uses, its corpus and the files beside it (``corpus.json``, ``current.json``,
``<collection name>/``) are :mod:`rag.corpus_identity`'s job; ownership checks and moving to a renamed
collection are :mod:`rag.migrate`'s; the errors for a Chroma that cannot be used, :mod:`rag.store_faults`'s.

The collection holds vectors and metadata, not chunk texts: a chunk's text is a function of its paper (in
``papers.jsonl`` beside the collection) and the chunk settings that name the collection, so search and ``rag
index`` re-make the texts they need (:func:`rag.chunk.chunk_with_settings`). Stored texts took 62 of the 90.6
MB of SciFact's ``chroma.sqlite3``, 2.6 times its 24 MB of HNSW vectors (its SQLite keeps each text, a string
index over it and a trigram full-text index nobody queries; docs/scale.md). Collections written before keep
their texts, which :meth:`Store.texts` still reads for the reconciling step that needs them.

Vectors are cosine-space and always passed in explicitly; the collection also gets our own embedding
function (:class:`RagEmbeddingFunction`) so that Chroma never falls back to its downloading default.

Chunk metadata: ``paper_id``, ``n`` (the chunk's number in its paper), ``n_chunks`` and ``content_hash`` —
what search's ``where`` (a ``paper_id`` allow-list) and ``rag index``'s reconciling read. Everything else
about a paper (title, authors, year, kind, source, …) is in the records beside the collection
(:mod:`rag.records`), where search filters it as numpy columns. Collections written before 2026-12-01 also
held title, authors, year, source and more per chunk: that was half of Chroma's upsert time and half of its
disk (docs/scale.md, "Chroma metadata"). Such a collection keeps them (nothing reads them) until a paper's
metadata changes, when its chunks are brought to these four keys. With ``index.dense_dims`` the vectors are
reduced and each chunk also keeps its full vector under ``v`` (:mod:`rag.dense_projection`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from rag import dense_projection, migrate
from rag.corpus_identity import (
    CORPUS_KEY,
    SCHEMA_VERSION,
    check_current,
    collection_name,
    corpus_name,
    legacy_collection_name,
    record_current,
    record_identity,
)
from rag.dense_projection import FULL_KEY
from rag.errors import IndexMissingError, RagError
from rag.settings import Settings
from rag.store_faults import check_embedded, parse_url, store_fault, unreachable
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.dense_projection import Projection
    from rag.records import PaperRecords


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
        self._papers: PaperRecords | None = None
        self._projection: Projection | None = None
        self.count_at_open: int | None = None
        """Chunks in the collection when :meth:`open` opened it (one count less for a caller that needs it
        then: a count reads the whole collection's index, ~0.3 s at 100k papers)."""

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, settings: Settings, *, create: bool = False, require_current: bool = True) -> Store:
        """Open the index the settings describe.

        Reading (``create=False``) raises :class:`IndexMissingError` when nothing was indexed, or the index
        was built with other settings. ``create=True`` (used by ``build_index``) records the home's corpus
        name (``corpus.json``) and creates the corpus's collection; it raises :class:`IndexError_` when a
        collection of that name belongs to another corpus (see :meth:`assert_owned`).
        Raises :class:`StoreUnavailableError` when the server cannot be reached and
        :class:`StoreCorruptError` when the embedded directory is not a usable Chroma database.
        ``require_current=False`` skips the check of ``current.json`` (:mod:`rag.shared_index` opens a
        server's collection for a home that has not fetched its files yet).
        """
        name = collection_name(settings)
        if not create and require_current:
            check_current(settings, name)
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
            counted = int(collection.count())  # fails early on a broken database; kept as count_at_open
        except RagError:
            raise
        except Exception as exc:
            if not create and type(exc).__name__ in ("NotFoundError", "InvalidCollectionException"):
                raise IndexMissingError(
                    f"The collection {name} is missing from {store_where}: run `rag index` first."
                ) from exc
            raise store_fault(settings, exc) from exc
        store = cls(client, collection, settings, name, corpus)
        store.count_at_open = counted
        if create:
            store.assert_owned()
        return store

    @classmethod
    def _client(cls, settings: Settings, *, create: bool) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma_url:
            host, port, ssl = parse_url(settings.chroma_url)
            try:
                client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
                client.heartbeat()
            except Exception as exc:
                raise unreachable(settings, exc) from exc
            return client
        path = settings.index_dir / "chroma"
        check_embedded(settings, path, create=create)
        try:
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except Exception as exc:
            raise store_fault(settings, exc) from exc

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except RagError:
            raise
        except Exception as exc:
            raise store_fault(self.settings, exc) from exc

    # ----------------------------------------------------------------- reading
    def count(self) -> int:
        """Chunks in the collection."""
        with self._guard():
            return int(self.collection.count())

    def query(
        self,
        embedding: np.ndarray,
        n: int,
        where: dict[str, Any] | None = None,
        *,
        contents: bool = True,
        allowed: set[str] | None = None,
        rescore: int | None = None,
    ) -> list[StoreHit]:
        """The ``n`` nearest chunks to ``embedding`` (cosine distance, smallest first), filtered by
        ``where`` (a Chroma metadata filter).

        ``contents=False`` returns ids and distances only (text and metadata empty, the paper id read from the
        chunk id ``<paper id>#<n>``): reading documents and metadata back is most of a query's cost, so search
        asks for the few texts it shows afterwards with :meth:`texts`.

        With ``index.dense_dims`` (rag.dense_projection) Chroma finds the ``n`` nearest by the projected
        vectors; of those, the chunks of ``allowed`` papers (all when None), at most ``rescore`` of them, are
        returned with the cosine of their full vectors.
        """
        if n <= 0:  # no count first: Chroma caps n_results at what it holds, and its count is a scan
            return []  # (5.8 ms per search at 33k papers, growing with the collection; docs/scale.md)
        include: list[Any] = ["documents", "metadatas", "distances"] if contents else ["distances"]
        vector = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        projection = self.projection()
        with self._guard():
            result = self.collection.query(
                query_embeddings=[projection.vectors(vector)[0] if projection is not None else vector[0]],
                n_results=n,
                where=where or None,
                include=include,
            )
        ids = result["ids"][0]
        docs = (result.get("documents") or [[]])[0] or [""] * len(ids)
        metas = (result.get("metadatas") or [[]])[0] or [{}] * len(ids)
        dists = (result.get("distances") or [[]])[0] or [0.0] * len(ids)
        hits = [
            StoreHit(
                chunk_id=cid,
                paper_id=str((meta or {}).get("paper_id", cid.rsplit("#", 1)[0])),
                text=doc or "",
                metadata=_without_full(meta),
                distance=float(dist),
            )
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True)
        ]
        if projection is None:
            return hits
        with self._guard():
            return dense_projection.rescored(self.collection, vector[0], hits, allowed, rescore)

    def texts(self, chunk_ids: list[str]) -> dict[str, str]:
        """Chunk id → the chunk text Chroma holds, for the ids that exist: only collections written before
        chunk texts left Chroma hold any ("" otherwise; search and ``rag index`` re-make a chunk's text
        from its paper, rag.chunk.chunk_with_settings)."""
        if not chunk_ids:
            return {}
        with self._guard():
            got = self.collection.get(ids=list(dict.fromkeys(chunk_ids)), include=["documents"])
        docs = got.get("documents") or [""] * len(got["ids"])
        return {cid: doc or "" for cid, doc in zip(got["ids"], docs, strict=True)}

    def papers(self) -> PaperRecords:
        """The indexed papers (``papers.jsonl`` beside the collection) by id, each read when asked for
        (:class:`rag.records.PaperRecords`)."""
        if self._papers is None:
            from rag.records import PaperRecords

            self._papers = PaperRecords(self.folder)
        return self._papers

    def max_batch_size(self) -> int:
        with self._guard():
            return int(self.client.get_max_batch_size())

    def chunk_states(self, paper_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every chunk id in the collection with its metadata (no documents, no vectors, full or reduced);
        with ``paper_ids``, only the chunks of those papers."""
        out: dict[str, dict[str, Any]] = {}
        if paper_ids is not None:
            with self._guard():
                for start in range(0, len(paper_ids), 500):
                    where: Any = {"paper_id": {"$in": list(paper_ids[start : start + 500])}}
                    got = self.collection.get(where=where, include=["metadatas"])
                    ids = got["ids"]
                    for cid, meta in zip(ids, got.get("metadatas") or [{}] * len(ids), strict=True):
                        out[cid] = _without_full(meta)
            return out
        with self._guard():
            for got in self._pages(["metadatas"]):
                ids = got["ids"]
                for cid, meta in zip(ids, got.get("metadatas") or [{}] * len(ids), strict=True):
                    out[cid] = _without_full(meta)
        return out

    def _pages(self, include: list[Any]) -> Iterator[dict[str, Any]]:
        """The collection's chunks, one ``collection.get`` page at a time."""
        page = max(1000, min(self.max_batch_size(), 20000))
        offset = 0
        while True:
            got = self.collection.get(include=include, limit=page, offset=offset)
            yield got
            if len(got["ids"]) < page:
                return
            offset += page

    # ------------------------------------------------- fewer dimensions (rag.dense_projection)
    def projection(self) -> Projection | None:
        """The projection the collection's vectors go through (None when ``index.dense_dims`` is unset)."""
        if self.settings.index.dense_dims is None:
            return None
        if self._projection is None:
            self._projection = dense_projection.required(self.folder, self.settings.index.dense_dims)
        return self._projection

    # ----------------------------------------------------------------- writing
    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Write chunks with their vectors (by chunk id: re-writing replaces, never duplicates)."""
        if not chunks:
            return
        metadatas = [chroma_metadata(c.metadata) for c in chunks]
        projection = self.projection()
        if projection is not None:  # Chroma indexes the projected vectors; the full ones are kept on disk
            for meta, packed in zip(metadatas, dense_projection.pack(embeddings), strict=True):
                meta[FULL_KEY] = packed
            embeddings = projection.vectors(embeddings)
        step = self.max_batch_size()
        with self._guard():
            for start in range(0, len(chunks), step):
                self.collection.upsert(
                    ids=[c.id for c in chunks[start : start + step]],
                    embeddings=np.asarray(embeddings[start : start + step], dtype=np.float32),
                    metadatas=metadatas[start : start + step],
                )

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        step = self.max_batch_size()
        with self._guard():
            for start in range(0, len(ids), step):
                self.collection.delete(ids=list(ids[start : start + step]))

    # ------------------------------------------------------- ownership, moving (rag.migrate)
    assert_owned = migrate.assert_owned
    adopt_previous = migrate.adopt_previous
    drop_other_collections = migrate.drop_other_collections

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
        record_current(self.settings, data)

    @property
    def where(self) -> str:
        """Where the vectors live: the server URL or the embedded directory."""
        return self.url or str(self.settings.index_dir / "chroma")


STORED_KEYS = ("paper_id", "n", "n_chunks", "content_hash")
"""The chunk metadata kept in Chroma (see the module doc)."""


def _without_full(meta: dict[str, Any] | None) -> dict[str, Any]:
    """A chunk's metadata as read from Chroma, less the full vector ``index.dense_dims`` keeps there."""
    return {k: v for k, v in (meta or {}).items() if k != FULL_KEY}


def chroma_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """A chunk's metadata as written to Chroma: the keys of :data:`STORED_KEYS` it has."""
    return {k: meta[k] for k in STORED_KEYS if meta.get(k) is not None}
