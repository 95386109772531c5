"""The BM25 index: tokenisation, paper-level documents, build/load round trip, per-process cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.lexical import (
    build_lexical_index,
    get_lexical_index,
    load_lexical_index,
    paper_texts,
    tokenize,
    top_n,
)
from rag.types import Chunk


def _chunks(pid: str, title: str, bodies: list[str]) -> list[Chunk]:
    return [
        Chunk(id=f"{pid}#{n}", paper_id=pid, n=n, text=f"{title}\n\n{body}", metadata={"title": title})
        for n, body in enumerate(bodies)
    ]


@pytest.fixture
def chunks() -> list[Chunk]:
    return (
        _chunks(
            "ntk",
            "Neural Tangent Kernel",
            [
                "Wide networks behave like kernels. Training is convex.",
                "Training is convex. The kernel stays constant.",
            ],
        )
        + _chunks("sam", "Sharpness-aware minimization", ["SAM finds flat minima. It generalises better."])
        + _chunks("jb", "JailbreakBench", ["A benchmark for jailbreaking attacks on LLMs."])
    )


def test_tokenize_stems_folds_and_drops_stopwords() -> None:
    assert tokenize("The Networks are training") == ["network", "train"]
    assert tokenize("Réseaux") == tokenize("reseaux")
    assert tokenize("a of the") == []


def test_paper_texts_stitches_chunks_once(chunks: list[Chunk]) -> None:
    ids, titles, bodies = paper_texts(chunks)
    assert ids == sorted(ids) and set(ids) == {"ntk", "sam", "jb"}
    body = bodies[ids.index("ntk")]
    assert body.count("Training is convex.") == 1 and "kernel stays constant" in body
    assert titles[ids.index("ntk")] == "Neural Tangent Kernel"


def test_build_load_search(tmp_path: Path, chunks: list[Chunk]) -> None:
    build_lexical_index(chunks, tmp_path / "bm25")
    index = load_lexical_index(tmp_path / "bm25")
    assert len(index) == 3
    hits = index.search("flat minima generalisation", n=5)
    assert hits[0][0] == "sam" and all(score > 0 for _, score in hits)
    assert [pid for pid, _ in index.search("kernel", n=5)] == ["ntk"]
    assert index.search("kernel", n=5, allowed={"sam", "jb"}) == []
    assert index.search("zebra", n=5) == []


def test_cache_reloads_when_rebuilt(tmp_path: Path, chunks: list[Chunk]) -> None:
    folder = tmp_path / "bm25"
    build_lexical_index(chunks, folder)
    first = get_lexical_index(folder)
    assert get_lexical_index(folder) is first
    build_lexical_index(chunks[:2], folder)
    params = folder / "rag_lexical.json"
    st = params.stat()
    os.utime(params, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = get_lexical_index(folder)
    assert second is not first and len(second) == 1


def test_missing_index_says_what_to_do(tmp_path: Path) -> None:
    from rag.errors import IndexMissingError

    with pytest.raises(IndexMissingError, match="rag index"):
        get_lexical_index(tmp_path / "nothing")


def test_top_n_orders_and_masks() -> None:
    import numpy as np

    scores = np.array([0.0, 3.0, 1.0, 2.0], dtype=np.float32)
    ids = ["a", "b", "c", "d"]
    assert top_n(scores, ids, 2) == [("b", 3.0), ("d", 2.0)]
    assert top_n(scores, ids, 10) == [("b", 3.0), ("d", 2.0), ("c", 1.0)]
    assert top_n(scores, ids, 10, np.array([True, False, True, False])) == [("c", 1.0)]
