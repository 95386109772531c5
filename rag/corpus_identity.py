"""Which collection and corpus a home's index is, and the files that record it. No chromadb here.

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
vectors (:meth:`rag.store.Store.adopt_previous`), never re-embedding them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, IndexMissingError, StoreCorruptError
from rag.settings import Settings

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
    """12 hex of a hash of the embedding model, the chunking parameters, the vectors' length (when reduced,
    rag.dense_projection) and the schema."""
    shape = {
        "model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "chunk_overlap_sentences": settings.index.chunk_overlap_sentences,
        "schema": SCHEMA_VERSION,
    }
    if settings.index.chunk_max_sentences is not None:  # only when set: existing indexes keep their names
        shape["chunk_max_sentences"] = settings.index.chunk_max_sentences
    if settings.index.dense_dims is not None:  # vectors of another length: another collection
        shape["dense_dims"] = settings.index.dense_dims
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


def check_current(settings: Settings, name: str) -> None:
    """Raise :class:`IndexMissingError` unless ``current.json`` names collection ``name`` (in this Chroma)
    and its folder exists: nothing indexed, or an index built with other settings."""
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


def record_current(settings: Settings, data: dict[str, Any]) -> None:
    """Write ``data`` (naming ``collection``) as ``current.json`` and, once a home has left its collection
    from before corpus names, forget that name in ``corpus.json``."""
    write_atomic(settings.index_dir / CURRENT_FILE, json.dumps(data, indent=2) + "\n")
    identity = read_identity(settings)
    if identity.get("legacy_collection") and identity["legacy_collection"] != data["collection"]:
        del identity["legacy_collection"]
        write_atomic(settings.index_dir / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
