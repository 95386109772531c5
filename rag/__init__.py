"""rag: answers about a corpus of research-paper abstracts, every claim cited to a real paper.

Public API (imported lazily so that ``import rag`` and the CLI start fast)::

    from rag import answer
    a = answer("Which paper introduces JailbreakBench?")
    print(a.text); [c.paper.title for c in a.citations]
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# torch and llama.cpp load one shared OpenMP runtime, which reads this once, when it is first loaded (torch
# usually comes first). Spinning waiting threads starve everything on a machine with few, shared cores:
# local-model decoding measured 7x slower with the default policy under load. Set before any heavy import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's OpenBLAS: rag's own matrix work is small (one question's forward pass in rag.query_encoder, MaxSim
# over a few papers), where a thread pool only costs: on the shared 2-core machine the first question's
# forward pass took ~1 s with OpenBLAS's threads against ~20 ms on one. Takes effect only if numpy is not
# loaded yet (the CLI, `import rag` first); torch's and llama.cpp's threads are not affected.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rag.errors import RagError
from rag.settings import Settings
from rag.types import (
    Answer,
    Chunk,
    Citation,
    ClaimCheck,
    Filters,
    Hit,
    Hits,
    IndexStats,
    ListItem,
    Paper,
    Verdict,
)

if TYPE_CHECKING:
    from rag.claims import check_claim
    from rag.corpus import load_corpus
    from rag.index import build_index
    from rag.pipeline import answer, answer_stream
    from rag.retrieve import search

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ClaimCheck",
    "Filters",
    "Hit",
    "Hits",
    "IndexStats",
    "ListItem",
    "Paper",
    "RagError",
    "Settings",
    "Verdict",
    "answer",
    "answer_stream",
    "build_index",
    "check_claim",
    "load_corpus",
    "search",
]

_LAZY = {
    "load_corpus": "rag.corpus",
    "build_index": "rag.index",
    "search": "rag.retrieve",
    "answer": "rag.pipeline",
    "answer_stream": "rag.pipeline",
    "check_claim": "rag.claims",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
