"""The segmented BM25 index (format 3): extending without a rebuild, dead papers, merging, the global IDF,
format-2 folders, damage. Real bm25s throughout."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexMissingError
from rag.lexical import (
    LexicalIndex,
    build_lexical_index,
    extend_lexical_index,
    load_lexical_index,
    tokenize,
)
from rag.lexical_segments import PARAMS_FILE
from rag.types import Chunk

WORDS = """protein cell gene tumor receptor kinase neuron synapse mutation therapy vaccine antibody virus
bacteria membrane enzyme pathway signal insulin glucose lipid cortex memory learning network model graph
kernel gradient training dataset benchmark attention transformer language vision robot sensor climate ocean
carbon nitrogen soil forest river galaxy star planet orbit quantum photon laser crystal polymer alloy battery
voltage circuit""".split()


def _paper(pid: str, rng: random.Random, extra: str = "") -> list[Chunk]:
    zipf = [1.0 / (i + 1) for i in range(len(WORDS))]
    title = " ".join(rng.choices(WORDS, weights=zipf, k=5))
    body = " ".join(rng.choices(WORDS, weights=zipf, k=rng.randint(30, 60))) + (" " + extra if extra else "")
    return [Chunk(id=f"{pid}#0", paper_id=pid, n=0, text=f"{title}\n\n{body}.", metadata={"title": title})]


def _corpus(n: int, seed: int = 0) -> dict[str, list[Chunk]]:
    rng = random.Random(seed)
    return {f"p{i:04d}": _paper(f"p{i:04d}", rng) for i in range(n)}


def _all(corpus: dict[str, list[Chunk]], pids: list[str] | None = None) -> list[Chunk]:
    return [c for pid in (pids if pids is not None else list(corpus)) for c in corpus[pid]]


def _queries(n: int = 30) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.sample(WORDS, 3)) for _ in range(n)]


def _extend(
    old: Path, new: Path, corpus: dict[str, list[Chunk]], added: list[str], removed: list[str]
) -> None:
    extend_lexical_index(old, new, _all(corpus, added), removed, lambda pids: _all(corpus, pids))


def _n_segments(folder: Path) -> int:
    return len(json.loads((folder / PARAMS_FILE).read_text())["segments"])


def _top(index: LexicalIndex, query: str, n: int = 10) -> list[str]:
    return [pid for pid, _ in index.search(query, n)]


def test_extend_matches_a_fresh_build(tmp_path: Path) -> None:
    corpus = _corpus(300)
    pids = list(corpus)
    build_lexical_index(_all(corpus), tmp_path / "full")
    build_lexical_index(_all(corpus, pids[:240]), tmp_path / "base")
    _extend(tmp_path / "base", tmp_path / "ext", corpus, pids[240:], [])
    assert _n_segments(tmp_path / "ext") == 2
    full, ext = load_lexical_index(tmp_path / "full"), load_lexical_index(tmp_path / "ext")
    assert sorted(ext.ids) == sorted(full.ids) == pids
    overlaps = []
    for query in _queries():
        assert _top(ext, query, 1) == _top(full, query, 1), query
        overlaps.append(len(set(_top(ext, query)) & set(_top(full, query))))
        a = full.scores(query)
        b = ext.scores(query)[[ext.ids.row(pid) for pid in full.ids]]
        assert np.allclose(b, a, rtol=0.03, atol=1e-3), query  # same length distribution: close
    assert sum(overlaps) / len(overlaps) >= 9.5
    weights = {"protein": 1.0, "kernel": 0.5}
    a = full.scores("", weights=weights)
    b = ext.scores("", weights=weights)[[ext.ids.row(pid) for pid in full.ids]]
    assert np.allclose(b, a, rtol=0.03, atol=1e-3)


def test_a_fresh_build_scores_exactly_as_bm25s(tmp_path: Path) -> None:
    from rag.lexical import _bm25s, _documents

    corpus = _corpus(50)
    build_lexical_index(_all(corpus), tmp_path / "bm25")
    index = load_lexical_index(tmp_path / "bm25")
    ids, docs = _documents(_all(corpus))
    retriever = _bm25s().BM25(k1=1.2, b=0.75)
    retriever.index(docs, show_progress=False)
    for query in _queries(5):
        tids = [retriever.vocab_dict[t] for t in tokenize(query) if t in retriever.vocab_dict]
        assert list(index.ids) == ids
        assert np.array_equal(index.scores(query), retriever.get_scores_from_ids(tids))


def test_the_global_idf_counts_live_papers_of_every_segment(tmp_path: Path) -> None:
    corpus = _corpus(60)
    pids = list(corpus)
    corpus["p0001"] = _paper("p0001", random.Random(1), "quokka")
    corpus["p0050"] = _paper("p0050", random.Random(2), "quokka")
    build_lexical_index(_all(corpus, pids[:45]), tmp_path / "a")
    _extend(tmp_path / "a", tmp_path / "b", corpus, pids[45:], ["p0002"])
    index = load_lexical_index(tmp_path / "b")
    assert _n_segments(tmp_path / "b") == 2 and len(index) == 59 and "p0002" not in index.ids
    assert index.doc_freq("quokka") == 2 and index.doc_freq("zebra") == 0
    has = index.contains("quokka")
    assert has is not None and {index.ids[i] for i in np.flatnonzero(has)} == {"p0001", "p0050"}
    assert index.contains("zebra") is None
    word = tokenize("protein")[0]
    live = [pid for pid in pids if pid != "p0002"]
    want = sum(word in tokenize(corpus[pid][0].text) for pid in live)
    assert index.doc_freq(word) == want and int(index.contains(word).sum()) == want  # type: ignore[union-attr]
    # the quokka papers score with one IDF over the 59 live papers (2 have the term), not their segment's own
    build_lexical_index(_all(corpus, pids[45:]), tmp_path / "alone")
    scores = index.scores("quokka")
    idf = math.log(1 + (59 - 2 + 0.5) / (2 + 0.5))
    for pid, folder, n in (("p0001", "a", 45), ("p0050", "alone", 15)):
        alone = load_lexical_index(tmp_path / folder)
        own = alone.scores("quokka")[alone.ids.row(pid)]  # the same segment, its own IDF: df 1 of n papers
        want = idf / math.log(1 + (n - 1 + 0.5) / (1 + 0.5))
        assert scores[index.ids.row(pid)] / own == pytest.approx(want, rel=1e-5)


def test_removed_papers_are_gone_and_a_changed_paper_has_its_new_text(tmp_path: Path) -> None:
    corpus = _corpus(80)
    corpus["p0003"] = _paper("p0003", random.Random(3), "quokka")
    corpus["p0004"] = _paper("p0004", random.Random(4), "wombat")
    build_lexical_index(_all(corpus), tmp_path / "a")
    assert _top(load_lexical_index(tmp_path / "a"), "quokka") == ["p0003"]
    corpus["p0003"] = _paper("p0003", random.Random(5), "narwhal")  # changed: removed and added
    _extend(tmp_path / "a", tmp_path / "b", corpus, ["p0003"], ["p0003", "p0004", "nowhere"])
    index = load_lexical_index(tmp_path / "b")
    assert "p0004" not in index.ids and list(index.ids).count("p0003") == 1 and len(index) == 79
    assert _top(index, "quokka") == [] and _top(index, "wombat") == [] and _top(index, "narwhal") == ["p0003"]
    assert index.contains("quokka") is None and index.doc_freq("wombat") == 0
    everything = set().union(*(set(_top(index, q, 100)) for q in _queries()))
    assert "p0004" not in everything
    assert len(index.scores("protein kernel")) == len(index.ids)


def test_the_old_folder_is_hard_linked_never_changed(tmp_path: Path) -> None:
    corpus = _corpus(60)
    pids = list(corpus)
    build_lexical_index(_all(corpus, pids[:50]), tmp_path / "a")
    before = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    _extend(tmp_path / "a", tmp_path / "b", corpus, pids[50:], pids[:3])
    assert {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()} == before
    (seg,) = [p for p in (tmp_path / "a").iterdir() if p.is_dir()]
    linked = tmp_path / "b" / seg.name / "data.csc.index.npy"
    assert linked.stat().st_ino == (seg / "data.csc.index.npy").stat().st_ino
    assert len(list((tmp_path / "b" / seg.name).glob("df_live-*.npy"))) == 1  # its dead papers' counts
    assert len(load_lexical_index(tmp_path / "a")) == 50 and len(load_lexical_index(tmp_path / "b")) == 57


def test_many_small_extends_keep_few_segments(tmp_path: Path) -> None:
    corpus = _corpus(700)
    pids = list(corpus)
    build_lexical_index(_all(corpus, pids[:10]), tmp_path / "i0")
    rng = random.Random(3)
    done, step = 10, 0
    while done < len(pids):
        batch = pids[done : done + rng.randint(1, 12)]
        removed = rng.sample(pids[:done], 1) if rng.random() < 0.2 else []
        _extend(tmp_path / f"i{step}", tmp_path / f"i{step + 1}", corpus, batch, removed)
        step, done = step + 1, done + len(batch)
        live = len(load_lexical_index(tmp_path / f"i{step}"))
        assert _n_segments(tmp_path / f"i{step}") <= math.log2(live) + 2, step
    assert step > 80
    full_dir = tmp_path / "full"
    index = load_lexical_index(tmp_path / f"i{step}")
    build_lexical_index(_all(corpus, index.ids), full_dir)
    full = load_lexical_index(full_dir)
    overlaps = [len(set(_top(index, q)) & set(_top(full, q))) for q in _queries()]
    assert sum(overlaps) / len(overlaps) >= 9


def test_a_segment_over_the_dead_share_is_rebuilt(tmp_path: Path) -> None:
    corpus = _corpus(200)
    pids = list(corpus)
    build_lexical_index(_all(corpus, pids[:150]), tmp_path / "a")
    _extend(tmp_path / "a", tmp_path / "b", corpus, pids[150:], [])
    big = json.loads((tmp_path / "b" / PARAMS_FILE).read_text())["segments"][0]["dir"]
    _extend(tmp_path / "b", tmp_path / "c", corpus, [], pids[:40])  # 27% of the big one: kept, 40 dead
    segments = json.loads((tmp_path / "c" / PARAMS_FILE).read_text())["segments"]
    assert [s["dir"] for s in segments][0] == big and len(segments[0]["dead"]) == 40
    _extend(tmp_path / "c", tmp_path / "d", corpus, [], pids[40:50])  # 33%: rebuilt from its live papers
    segments = json.loads((tmp_path / "d" / PARAMS_FILE).read_text())["segments"]
    assert big not in [s["dir"] for s in segments] and all(not s["dead"] for s in segments)
    index = load_lexical_index(tmp_path / "d")
    assert sorted(index.ids) == pids[50:]
    assert not (tmp_path / "d" / big).exists()


def test_removing_every_paper_leaves_an_empty_index(tmp_path: Path) -> None:
    corpus = _corpus(5)
    build_lexical_index(_all(corpus), tmp_path / "a")
    _extend(tmp_path / "a", tmp_path / "b", corpus, [], list(corpus))
    index = load_lexical_index(tmp_path / "b")
    assert len(index) == 0 and index.search("protein", 5) == [] and index.contains("protein") is None


def _format2(chunks: list[Chunk], folder: Path) -> None:
    """An index as the format-2 code wrote it: one bm25s index at the root, its ids in the params file."""
    from rag.lexical import _bm25s, _documents

    ids, docs = _documents(chunks)
    retriever = _bm25s().BM25(k1=1.2, b=0.75)
    retriever.index(docs, show_progress=False)
    retriever.save(str(folder))
    params = {"format": 2, "ids": ids, "title_weight": 2, "k1": 1.2, "b": 0.75}
    params["tokenizer"] = "casefold-noaccent-\\w\\w+-stop33-snowball-en"
    (folder / PARAMS_FILE).write_text(json.dumps(params), encoding="utf-8")


def test_a_format_2_folder_loads_and_extends(tmp_path: Path) -> None:
    corpus = _corpus(120)
    pids = list(corpus)
    _format2(_all(corpus, pids[:100]), tmp_path / "old")
    build_lexical_index(_all(corpus, pids[:100]), tmp_path / "new3")
    old, new3 = load_lexical_index(tmp_path / "old"), load_lexical_index(tmp_path / "new3")
    assert list(old.ids) == list(new3.ids) == pids[:100]
    assert all(np.array_equal(old.scores(q), new3.scores(q)) for q in _queries(5))
    _extend(tmp_path / "old", tmp_path / "ext", corpus, pids[100:], pids[:2])
    ext = load_lexical_index(tmp_path / "ext")
    assert sorted(ext.ids) == pids[2:] and _n_segments(tmp_path / "ext") == 2
    assert not list((tmp_path / "ext").glob("*.npy"))  # the root index moved into a segment folder
    assert json.loads((tmp_path / "old" / PARAMS_FILE).read_text())["format"] == 2


def test_a_damaged_or_missing_index_raises_index_missing(tmp_path: Path) -> None:
    corpus = _corpus(10)
    folder = tmp_path / "bm25"
    build_lexical_index(_all(corpus), folder)
    (folder / PARAMS_FILE).write_text('{"format": 3, "segm', encoding="utf-8")
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*bm25 is missing or unreadable"):
        load_lexical_index(folder)
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*bm25 "):
        _extend(folder, tmp_path / "b", corpus, [], [])
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*nothing "):
        _extend(tmp_path / "nothing", tmp_path / "c", corpus, [], [])
    build_lexical_index(_all(corpus), folder)
    (seg,) = [p for p in folder.iterdir() if p.is_dir()]
    (seg / "rag_ids.npy").write_bytes(b"not an array")
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*bm25 is damaged"):
        load_lexical_index(folder)
    with pytest.raises(IndexMissingError, match=r"BM25 index in .*bm25 is damaged"):
        _extend(folder, tmp_path / "d", corpus, [], [])


def test_segment_ids_load_from_their_arrays_and_old_segments_from_json(tmp_path: Path) -> None:
    """A segment's ids are read from ``rag_ids.npy``/``rag_order.npy`` (no Python string per paper); a
    segment written before them is read from ``rag_ids.json``, and an extension gives it the arrays in the
    new folder without touching the old one."""
    from rag.lexical_segments import ID_ARRAYS, IDS_FILE

    corpus = _corpus(40)
    pids = list(corpus)
    build_lexical_index(_all(corpus, pids[:30]), tmp_path / "a")
    (seg,) = [p for p in (tmp_path / "a").iterdir() if p.is_dir()]
    assert all((seg / name).is_file() for name in ID_ARRAYS)
    want = {q: load_lexical_index(tmp_path / "a").search(q, 10) for q in _queries(10)}
    (seg / IDS_FILE).rename(tmp_path / IDS_FILE)  # the arrays are what loading reads
    index = load_lexical_index(tmp_path / "a")
    assert list(index.ids) == pids[:30] and {q: index.search(q, 10) for q in want} == want
    (tmp_path / IDS_FILE).rename(seg / IDS_FILE)
    for name in ID_ARRAYS:  # a segment written before the arrays
        (seg / name).unlink()
    old = load_lexical_index(tmp_path / "a")
    assert list(old.ids) == pids[:30] and {q: old.search(q, 10) for q in want} == want
    before = {p.name: p.stat().st_mtime_ns for p in seg.iterdir()}
    _extend(tmp_path / "a", tmp_path / "b", corpus, pids[30:], [pids[0]])
    assert {p.name: p.stat().st_mtime_ns for p in seg.iterdir()} == before
    segs = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    assert len(segs) == 2 and all((s / name).is_file() for s in segs for name in ID_ARRAYS)
    ext = load_lexical_index(tmp_path / "b")
    assert sorted(ext.ids) == pids[1:] and ext.ids.row(pids[0]) is None
    mask = ext.mask([pids[5], "nope", pids[35]])
    assert mask is not None and sorted(ext.ids.ids_of(np.flatnonzero(mask))) == [pids[5], pids[35]]
    assert ext.mask(None) is None
