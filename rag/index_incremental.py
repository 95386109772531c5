"""What lets `rag index` cost what changed, not what is stored (docs/scale.md, "Adding papers").

After a complete run, ``manifest.json`` names every paper with its content hash, its chunk count and a
digest of its chunk metadata, and ``late/`` keeps each paper's word-piece ids. A later run that adds,
changes or removes some papers therefore:

* asks Chroma only for the chunks of the papers whose hash or metadata differ and of the removed ones
  (:func:`trusted_states`), instead of every chunk's state — when the collection still holds the chunk
  count the manifest recorded; otherwise it reconciles every chunk as before;
* passes ``late/`` the unchanged papers' chunks as ids and hashes only (:func:`late_chunks`): their rows,
  and the word pieces their IDF counts, are copied from the stored store; only new and changed papers are
  chunked and tokenised;
* adds the new papers to BM25 as a segment and marks removed ones dead (rag.lexical), instead of
  re-tokenising the corpus.

Anything it cannot trust (no complete manifest, a store of another layout or model, a damaged folder)
takes the full path, which re-makes every chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.chunk import chunk_metadata, chunk_with_settings
from rag.index_reconcile import group_by_paper, is_complete
from rag.late import LATE_DIR, read_meta
from rag.settings import Settings
from rag.store import Store
from rag.types import Chunk, Paper

log = logging.getLogger(__name__)


CONTENT_HASH_VERSION = 2
"""1: every field of the paper but its line number (source file names included); 2: :func:`content_hash`."""


def content_hash(paper: Paper) -> str:
    """Hash of what shapes a paper's chunk texts, hence its vectors: title, abstract and the author fields
    (a title-only paper's chunk is its title and authors). Not where the paper was read from (``source``,
    ``sources``, ``line``, merged entries), nor metadata that only goes into Chroma's metadata: that is
    kept current in place, without re-embedding. The embedding model and the chunking settings name the
    collection, so they need not be hashed here."""
    data = {
        "v": CONTENT_HASH_VERSION,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": paper.authors,
        "authors_truncated": paper.authors_truncated,
        "n_authors": paper.n_authors,
    }
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def metadata_digests(papers: Sequence[Paper]) -> dict[str, str]:
    """Per paper, a short hash of its chunks' metadata (rag.chunk.chunk_metadata; not their texts): a paper
    whose digest changed has Chroma asked about its chunks, which are brought to what they should hold."""
    return {
        p.id: hashlib.sha256(
            json.dumps(chunk_metadata(p), ensure_ascii=False, sort_keys=True).encode("utf-8")
        ).hexdigest()[:16]
        for p in papers
    }


@dataclass
class Reconciled:
    """What Chroma holds that this run must look at: the stored chunks (id → metadata) of the papers asked
    about, by paper; the papers to (re-)embed; the papers to remove."""

    by_paper: dict[str, dict[str, dict[str, Any]]]
    todo: list[Paper]
    removed: list[str]


def trusted_states(
    store: Store,
    manifest: dict[str, Any],
    papers: list[Paper],
    hashes: dict[str, str],
    digests: dict[str, str],
    count: int,
) -> Reconciled | None:
    """Reconcile against the last complete run's manifest, asking Chroma only about papers whose hash or
    metadata changed and papers removed; None when the manifest cannot be trusted (no complete run, a
    manifest without metadata digests, or a collection whose chunk count is not what that run left)."""
    known = manifest.get("paper_hashes")
    if manifest.get("complete") is not True or manifest.get("chunks") != count or not isinstance(known, dict):
        return None
    if not all(isinstance(v, dict) and "meta" in v and "hash" in v for v in known.values()):
        return None
    wanted = {p.id for p in papers}
    asked = [
        p.id
        for p in papers
        if p.id in known and (known[p.id]["hash"] != hashes[p.id] or known[p.id]["meta"] != digests[p.id])
    ]
    removed = [pid for pid in known if pid not in wanted]
    stored = group_by_paper(store.chunk_states(asked + removed))
    ask = set(asked)
    todo = [
        p
        for p in papers
        if p.id not in known or (p.id in ask and not is_complete(stored.get(p.id, {}), p.id, hashes[p.id]))
    ]
    return Reconciled(stored, todo, removed)


class ChunkRef:
    """An unchanged paper's chunk as ``late/`` needs it when the store has the paper's rows and word
    pieces: id, paper id and content hash; no text (reading it is a bug, so it raises)."""

    __slots__ = ("id", "metadata", "paper_id")

    def __init__(self, cid: str, pid: str, content_hash: str) -> None:
        self.id, self.paper_id, self.metadata = cid, pid, {"content_hash": content_hash}

    @property
    def text(self) -> str:
        raise RuntimeError(f"chunk {self.id}: its text was not re-made (rag.index_incremental.late_chunks)")


def late_chunks(
    folder: Path,
    papers: list[Paper],
    hashes: dict[str, str],
    made: dict[str, list[Chunk]],
    settings: Settings,
) -> tuple[list[Any], dict[str, Any]] | None:
    """Every paper's chunks for ``late/``, in paper order: this run's chunks as they are, the other papers'
    as :class:`ChunkRef` from the stored ``late/chunks.json`` — or None when that store cannot give them
    (another layout or model, or written before word pieces were kept): then every chunk is re-made. A
    paper the store lists under another hash is re-chunked. Returned with the ``chunks.json`` read, which
    :func:`rag.late.consolidate` then need not read again."""
    try:
        meta = read_meta(folder / LATE_DIR)
    except (OSError, ValueError):
        return None
    if not (
        settings.index.late_merge
        and meta.get("layout") == "paper"
        and meta.get("pieces") is True
        and meta.get("model") == settings.index.embed_model
    ):
        return None
    stored: dict[str, list[Any]] = {}
    for row in meta.get("chunks", ()):
        stored.setdefault(row[1], []).append(row)
    redo = [
        p
        for p in papers
        if p.id not in made and not (stored.get(p.id) and all(r[2] == hashes[p.id] for r in stored[p.id]))
    ]
    if redo:
        log.info("re-chunking %d paper(s) the word-piece store lists under another hash", len(redo))
        groups = chunk_with_settings(redo, settings, [hashes[p.id] for p in redo])
        made.update((paper.id, group) for paper, group in zip(redo, groups, strict=True))
    out: list[Any] = []
    for p in papers:
        if p.id in made:
            out.extend(made[p.id])
        else:
            out.extend(ChunkRef(r[0], r[1], r[2]) for r in stored[p.id])
    return out, meta


def extend_bm25(
    bm25: Path,
    tmp: Path,
    added: list[Chunk],
    removed: list[str],
    chunks_for: Any,
) -> bool:
    """Write into ``tmp`` the BM25 index in ``bm25`` with ``removed`` papers dead and ``added`` chunks'
    papers as a new segment (rag.lexical); False when the stored index cannot be extended (missing,
    unreadable, an old format): the caller rebuilds it from every chunk."""
    from rag.errors import IndexMissingError
    from rag.lexical import extend_lexical_index

    if not bm25.is_dir():
        return False
    try:
        extend_lexical_index(bm25, tmp, added, removed, chunks_for)
    except IndexMissingError as exc:
        log.info("rebuilding the BM25 index: %s", exc)
        return False
    return True
