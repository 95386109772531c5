"""The reconciling steps of :func:`rag.index.build_index`: whether Chroma holds a paper's chunks complete,
which stored chunks keep their vectors under a new content hash (same texts), re-keying ``late/``'s rows for
them, and rewriting chunks' metadata in place (vectors and texts untouched)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rag.chunk import chunk_metadata
from rag.corpus_identity import PAPERS_FILE, write_atomic
from rag.integrity import read_json_object
from rag.late import LATE_DIR, META_FILE
from rag.store import Store, chroma_metadata
from rag.types import Chunk, Paper

log = logging.getLogger(__name__)


def group_by_paper(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Stored chunk states (chunk id → metadata, :meth:`Store.chunk_states`) grouped by their paper id."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cid, meta in states.items():
        out.setdefault(str(meta.get("paper_id", "")), {})[cid] = meta
    return out


def is_complete(have: dict[str, dict[str, Any]], paper_id: str, content_hash: str) -> bool:
    """Chroma holds exactly the chunks ``<id>#0..n-1`` of this paper version."""
    if not have:
        return False
    metas = list(have.values())
    n = metas[0].get("n_chunks")
    if not isinstance(n, int) or n < 1:
        return False
    if any(m.get("content_hash") != content_hash or m.get("n_chunks") != n for m in metas):
        return False
    return set(have) == {f"{paper_id}#{i}" for i in range(n)}


def wanted_metadata(paper: Paper, content_hash: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The metadata that stored chunk (its ``n`` and ``n_chunks`` kept) should carry, as written to Chroma."""
    meta: dict[str, Any] = dict(chunk_metadata(paper, content_hash))
    meta["n"] = stored.get("n")
    meta["n_chunks"] = stored.get("n_chunks")
    return chroma_metadata(meta)


def same_texts(
    store: Store, papers: list[Paper], grouped: list[list[Chunk]], by_paper: dict[str, dict[str, Any]]
) -> set[str]:
    """Ids of the papers whose stored chunks are exactly their new chunks (same ids, same texts) under
    another content hash: their vectors are still right (same text, same model, same chunking)."""
    candidates: dict[str, list[Chunk]] = {}
    for paper, chunks in zip(papers, grouped, strict=True):
        have = by_paper.get(paper.id, {})
        if have and set(have) == {c.id for c in chunks}:
            candidates[paper.id] = chunks
    if not candidates:
        return set()
    ids = [c.id for chunks in candidates.values() for c in chunks]
    step = max(1, store.max_batch_size())
    stored: dict[str, str] = {}
    for start in range(0, len(ids), step):
        stored.update(store.texts(ids[start : start + step]))
    return {pid for pid, chunks in candidates.items() if all(stored.get(c.id) == c.text for c in chunks)}


def rekey_late(folder: Path, rekeyed: dict[str, tuple[str, str]]) -> None:
    """Give ``late/``'s rows their chunks' new content hashes (chunk id → (stored hash, new hash)): rag.late
    keys a chunk's word-piece vectors by chunk id and hash, and the text (so the vectors) is unchanged."""
    if not rekeyed:
        return
    path = folder / LATE_DIR / META_FILE
    meta = read_json_object(path)
    rows = meta.get("chunks")
    if not isinstance(rows, list):
        return
    changed = False
    for row in rows:
        pair = rekeyed.get(row[0]) if isinstance(row, list) and len(row) >= 3 else None
        if pair is not None and row[2] == pair[0]:
            row[2] = pair[1]
            changed = True
    if changed:
        write_atomic(path, json.dumps(meta))


def update_metadata(store: Store, updates: dict[str, dict[str, Any]]) -> None:
    """Rewrite chunks' metadata in place (vectors and texts untouched); a key set to None is removed."""
    if not updates:
        return
    store.assert_owned()
    ids = list(updates)
    step = max(1, store.max_batch_size())
    with store._guard():
        for start in range(0, len(ids), step):
            part = ids[start : start + step]
            store.collection.update(ids=part, metadatas=[updates[cid] for cid in part])


def warn_foreign(removed: list[str], old_manifest: dict[str, Any], store: Store) -> None:
    """Say so when this run removes papers this home did not index: another home of the same corpus name
    indexed them (the collection is shared; homes sharing a corpus should index the same sources)."""
    known = set(old_manifest.get("paper_hashes") or {})
    foreign = [pid for pid in removed if pid not in known]
    if foreign and (store.folder / PAPERS_FILE).is_file():  # the last complete run's papers (no manifest
        with (store.folder / PAPERS_FILE).open(encoding="utf-8") as fh:  # after a killed run)
            known = {json.loads(line).get("id") for line in fh if line.strip()}
        foreign = [pid for pid in foreign if pid not in known]
    if foreign and not store.legacy:
        log.warning(
            "removing %d paper(s) this home did not index (e.g. %s) from corpus %r's collection %s: another "
            "home with this corpus name indexed them; homes that share a corpus name share its papers",
            len(foreign),
            foreign[0],
            store.corpus,
            store.collection_name,
        )
