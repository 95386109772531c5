"""Which collection a home may change, and moving a home from its previous collection to the current one.

``build_index`` checks ownership (:func:`assert_owned`) before it writes to or deletes from a collection;
when the collection's name changed but its vectors did not (an index from before corpus names, a new
corpus name), :func:`adopt_previous` copies them over instead of re-embedding, and
:func:`drop_other_collections` removes the previous collection once the new one is complete, never one
that other homes may use. These work on an open :class:`rag.store.Store` (its client and collection);
no chromadb import here.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.corpus_identity import CORPUS_KEY, read_current, shape_digest
from rag.errors import IndexError_

if TYPE_CHECKING:
    from rag.store import Store

log = logging.getLogger(__name__)


def assert_owned(store: Store) -> None:
    """Raise :class:`IndexError_` unless the collection belongs to this home's corpus: its metadata
    records the corpus name, or it is an embedded collection from before corpus names (the embedded
    database belongs to the home). ``build_index`` calls it before writing and before deleting."""
    owner = (store.collection.metadata or {}).get(CORPUS_KEY)
    if owner == store.corpus or (owner is None and store.legacy and not store.url):
        return
    whose = f"corpus {owner!r}" if owner else "no corpus (it was not made by this version of rag)"
    raise IndexError_(
        f"The collection {store.collection_name} in {store.where} belongs to {whose}, not to this home's "
        f"corpus {store.corpus!r}: refusing to change it. Set RAG_INDEX__CORPUS_NAME to a corpus of your "
        "own (or to that corpus's name to share it on purpose), or use another Chroma server."
    )


def previous_collection(store: Store) -> tuple[str, dict[str, Any]] | None:
    """The collection this home's ``current.json`` names, when it is another one in the same Chroma."""
    current = read_current(store.settings)
    old = (current or {}).get("collection")
    if not current or not old or old == store.collection_name or current.get("chroma_url") != store.url:
        return None
    return str(old), current


def adopt_previous(store: Store) -> int:
    """When this home's previous collection differs from this one by name only (same Chroma, same
    embedding model and chunking: an index from before corpus names moving to its corpus's collection,
    or a new corpus name), copy its chunks and vectors here and move the files beside it, so nothing is
    re-embedded. Returns the chunks copied (0 when there is nothing to adopt). Idempotent: a run killed
    half-way copies again (upserts by chunk id) until the new collection is marked current."""
    previous = previous_collection(store)
    if previous is None or not previous[0].endswith("-" + shape_digest(store.settings)):
        return 0
    old, _ = previous
    try:
        with store._guard():
            source = store.client.get_collection(old)
    except Exception as exc:  # already gone: nothing to adopt
        log.info("no previous collection %s to adopt: %s", old, exc)
        return 0
    old_folder = store.settings.index_dir / old
    if old_folder.is_dir() and not store.folder.exists():
        old_folder.rename(store.folder)  # papers.jsonl, manifest.json, bm25/, late/ travel with it
    copied = 0
    page = max(1000, min(store.max_batch_size(), 5000))
    offset = 0
    with store._guard():
        while True:
            got = source.get(include=["embeddings", "documents", "metadatas"], limit=page, offset=offset)
            ids = got["ids"]
            if ids:
                store.collection.upsert(
                    ids=ids,
                    embeddings=np.asarray(got["embeddings"], dtype=np.float32),
                    documents=got["documents"],
                    metadatas=got["metadatas"],
                )
            copied += len(ids)
            if len(ids) < page:
                break
            offset += page
    log.info("copied %d chunks from %s to %s (no re-embedding)", copied, old, store.collection_name)
    return copied


def drop_other_collections(store: Store) -> list[str]:
    """Delete the collection (and folder) the previous ``current.json`` named, if it is not this one.

    On a server, only a collection of the corpus this home recorded for it is deleted: one from
    before corpus names may hold other homes' vectors, so it is kept (with a warning) and only this
    home's files beside it go."""
    previous = previous_collection(store)
    if previous is None:
        return []
    old, current = previous
    old_folder = store.settings.index_dir / old
    if store.url:
        try:
            with store._guard():
                owner = (store.client.get_collection(old).metadata or {}).get(CORPUS_KEY)
        except Exception as exc:  # already gone
            log.info("old collection %s is gone: %s", old, exc)
            shutil.rmtree(old_folder, ignore_errors=True)
            return []
        if owner is None or owner != current.get("corpus"):
            log.warning(
                "left the old collection %s on %s in place: it %s, so other homes may use it; delete "
                "it when none does",
                old,
                store.url,
                "predates corpus names" if owner is None else f"belongs to corpus {owner!r}",
            )
            shutil.rmtree(old_folder, ignore_errors=True)
            return []
    try:
        with store._guard():
            store.client.delete_collection(old)
    except Exception as exc:  # it may already be gone
        log.info("could not delete old collection %s: %s", old, exc)
    shutil.rmtree(old_folder, ignore_errors=True)
    return [old]
