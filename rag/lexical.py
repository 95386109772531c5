"""BM25 over chunks with bm25s, persisted beside the Chroma collection (owned by the retrieval work).

Contract used by `rag.index.build_index`: ``build_lexical_index(chunks, folder)`` writes the index for exactly
these chunks into ``folder`` (replacing what was there); ``load_lexical_index(folder)`` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.types import Chunk


def build_lexical_index(chunks: list[Chunk], folder: Path) -> None:
    import bm25s

    folder.mkdir(parents=True, exist_ok=True)
    tokens = bm25s.tokenize([c.text for c in chunks], stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    retriever.save(str(folder), corpus=[c.id for c in chunks])


def load_lexical_index(folder: Path) -> Any:
    import bm25s

    return bm25s.BM25.load(str(folder), load_corpus=True)
