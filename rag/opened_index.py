"""The opened index a search reads: store, paper records, filter and author lexicon, loaded once per process.

The records are read on demand (:class:`rag.records.PaperRecords`); the filter and the lexicon come with them,
derived once per ``papers.jsonl``.

Cached per home, collection and the stamps of the files that change on a re-index (``current.json``, the
manifest, ``papers.jsonl``), so a search after `rag index` in the same process sees the new index. On a
Chroma server the home first fetches the files another home published (:mod:`rag.shared_index`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import IndexMissingError
from rag.filter_index import PaperFilter
from rag.query_filters import AuthorLexicon
from rag.records import PaperRecords
from rag.settings import Settings
from rag.types import Paper


@dataclass
class OpenIndex:
    """What search needs from one index, loaded once per process (see :func:`open_index`)."""

    store: Any
    papers: PaperRecords
    filter: PaperFilter
    lexicon: AuthorLexicon
    chunks_per_paper: float
    folder: Path
    warned_no_late: bool = False
    checked: float = 0.0
    """When the server was last asked for a newer shared index (``time.monotonic``; server mode)."""


_INDEXES: dict[tuple[Any, ...], OpenIndex] = {}


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _key(settings: Settings) -> tuple[Any, ...]:
    from rag.corpus_identity import CURRENT_FILE, MANIFEST_FILE, PAPERS_FILE, collection_name

    name = collection_name(settings)
    folder = settings.index_dir / name
    return (
        str(settings.index_dir),
        settings.chroma_url,
        name,
        _stamp(settings.index_dir / CURRENT_FILE),
        _stamp(folder / MANIFEST_FILE),
        _stamp(folder / PAPERS_FILE),
    )


def open_index(settings: Settings) -> OpenIndex:
    """The index, loaded once per process. On a Chroma server the home first fetches the files another home
    published for this corpus (:mod:`rag.shared_index`), then checks for newer ones at most every
    ``CHECK_SECONDS``."""
    from rag.store import Store

    key = _key(settings)
    cached = _INDEXES.get(key)
    if settings.chroma_url:
        from rag.shared_index import CHECK_SECONDS, sync

        now = time.monotonic()
        if cached is None or now - cached.checked >= CHECK_SECONDS:
            if sync(settings, cached.store if cached is not None else None) is not None:
                key, cached = _key(settings), None
            if cached is not None:
                cached.checked = now
    if cached is not None:
        return cached
    store = Store.open(settings)
    papers = store.papers()
    if not papers:
        raise IndexMissingError(f"The index in {settings.index_dir} holds no papers: run `rag index`.")
    count = store.count()
    index = OpenIndex(
        store=store,
        papers=papers,
        filter=PaperFilter(papers.columns, papers.ids),
        lexicon=papers.lexicon,
        chunks_per_paper=max(1.0, count / max(1, len(papers))),
        folder=store.folder,
    )
    index.checked = time.monotonic()
    for old in [k for k in _INDEXES if k[:3] == key[:3]]:
        del _INDEXES[old]
    _INDEXES[key] = index
    return index


def indexed_papers(settings: Settings) -> list[Paper]:
    """The indexed papers, in index order (on a Chroma server, fetched first like a search would)."""
    return list(open_index(settings).papers.values())
