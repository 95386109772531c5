"""Embed chunks and write them to the collection batch by batch (shared by the full run and the add run).

Shortest first, as sentence-transformers does inside one call: batches pad less. With late interaction
each batch's word-piece vectors come from the same forward pass and go to ``late.parts/``
(:class:`rag.late_parts.PartWriter`). A run killed half-way loses at most one batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rag.dense_projection import fit_for
from rag.late_parts import PartWriter
from rag.store import Store
from rag.types import Chunk

WRITE_BATCH = 512
"""Chunks embedded and written per step: the most work a killed run can lose."""


def _progress_bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", disable=None if progress else True)


def embed_chunks(
    store: Store,
    folder: Path,
    chunks: list[Chunk],
    stored: dict[str, dict[str, dict[str, Any]]],
    embedder: Any,
    *,
    late: bool,
    progress: bool = False,
) -> list[Chunk]:
    """Embed ``chunks`` with ``embedder`` (rag.embed) and upsert them; returns them in the order written
    (shortest first). ``stored``: the chunks the collection holds of these papers (paper id → chunk id →
    metadata); ``late``: keep the word-piece vectors too."""
    fit_for(store, chunks, embedder)  # the first run with index.dense_dims, before any vector
    order = np.argsort([len(c.text) for c in chunks], kind="stable")
    chunks = [chunks[i] for i in order]
    parts = PartWriter(folder, embedder) if late else None
    bar = _progress_bar(len(chunks), progress)
    try:
        for start in range(0, len(chunks), WRITE_BATCH):
            part = chunks[start : start + WRITE_BATCH]
            texts = [c.text for c in part]
            if parts is not None:  # word-piece vectors from the same forward pass (the embedder's batch
                vectors, tokens = embedder.encode_with_tokens(texts)  # size: larger on a GPU, rag.embed)
                part_hashes = [str(c.metadata.get("content_hash", "")) for c in part]
                parts.add([c.id for c in part], part_hashes, tokens)
            else:
                vectors = embedder.encode(texts)
            # Chroma keeps a stored text through an upsert without one: a re-embedded chunk of a
            # collection from before chunk texts left Chroma is deleted first, so no old text sits
            # beside a new vector (same_texts trusts the texts Chroma holds).
            store.delete([c.id for c in part if c.id in stored.get(c.paper_id, {})])
            store.upsert(part, vectors)
            bar.update(len(part))
    finally:
        bar.close()
    return chunks
