"""rag.late_meta: every writer of ``late/`` leaves each paper's span of rows as numpy files, search loads
them without parsing ``chunks.json``, and an older store gets them in place from ``rag index``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_late_codec import WORDS, _chunks, _Encoder

from rag.errors import IndexMissingError
from rag.late import LateIndex, consolidate, is_current
from rag.late_meta import SPAN_IDS_FILE, SPAN_ORDER_FILE, SPANS_FILE, paper_spans

SPAN_FILES = (SPANS_FILE, SPAN_IDS_FILE, SPAN_ORDER_FILE)
PAPERS = [f"p{i}" for i in range(12)] + ["unknown"]


def _scores(late: LateIndex, enc: _Encoder) -> list[dict[str, float]]:
    return [late.scores(*enc.query(q), PAPERS) for q in ("w3 w4 w50", "w1 w7", "w59 w0 w12 w13")]


def _make_old(late_dir: Path) -> None:
    """Make ``late_dir`` a store written before the span files: no span files, no summary."""
    for name in (*SPAN_FILES, "info.json"):
        (late_dir / name).unlink()


@pytest.mark.parametrize("merge", [False, True])
def test_search_loads_without_chunks_json_and_scores_as_before(tmp_path: Path, merge: bool) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(10)
    consolidate(tmp_path, chunks, enc, "toy", "pq4" if merge else "int8", merge=merge)
    folder = tmp_path / "late"
    assert all((folder / name).is_file() for name in SPAN_FILES)
    assert json.loads((folder / "info.json").read_text())["spans"] == {"papers": 10}
    meta = json.loads((folder / "chunks.json").read_text())
    ids, spans = paper_spans(meta["chunks"])
    (folder / "chunks.json").rename(tmp_path / "chunks.json")  # search must not need it
    late = LateIndex(folder)
    assert len(late) == 10 and list(late.spans) == ids
    assert dict(late.spans) == {pid: (int(s), int(e)) for pid, (s, e) in zip(ids, spans, strict=True)}
    got = _scores(late, enc)
    (tmp_path / "chunks.json").rename(folder / "chunks.json")
    _make_old(folder)
    old = LateIndex(folder)  # a store without the files: spans from chunks.json, as before
    assert old.spans == late.spans and _scores(old, enc) == got
    assert all(set(s) == set(PAPERS[:10]) for s in got)


def test_an_old_store_gets_its_span_files_from_is_current_in_place(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    chunks = _chunks(8)
    consolidate(tmp_path, chunks, enc, "toy", "pq4", merge=True)
    folder = tmp_path / "late"
    want = _scores(LateIndex(folder), enc)
    _make_old(folder)
    vectors = (folder / "vectors.npy").stat()
    assert not is_current(tmp_path, len(chunks), "toy", "pq8", merge=True)  # not current: left alone
    assert not (folder / SPANS_FILE).exists()
    assert is_current(tmp_path, len(chunks), "toy", "pq4", merge=True)
    assert all((folder / name).is_file() for name in SPAN_FILES)
    after = (folder / "vectors.npy").stat()  # nothing else rewritten
    assert (after.st_ino, after.st_mtime_ns) == (vectors.st_ino, vectors.st_mtime_ns)
    info = json.loads((folder / "info.json").read_text())
    assert info["n_chunks"] == len(chunks) and info["spans"] == {"papers": 8}
    os.unlink(folder / "chunks.json")  # search reads the new files only
    assert _scores(LateIndex(folder), enc) == want


def test_rekeyed_chunks_json_keeps_the_span_files_valid(tmp_path: Path) -> None:
    """``rag index`` may rewrite chunks.json in place with new content hashes (rag.index_reconcile); the
    rows, so the spans, stay, and search keeps reading the span files."""
    from rag.index_reconcile import rekey_late

    enc = _Encoder(WORDS)
    chunks = _chunks(4)
    consolidate(tmp_path, chunks, enc, "toy")
    want = _scores(LateIndex(tmp_path / "late"), enc)
    rekey_late(tmp_path, {"p1#0": ("h1", "new"), "p1#1": ("h1", "new")})
    assert _scores(LateIndex(tmp_path / "late"), enc) == want
    assert is_current(tmp_path, len(chunks), "toy")


def test_damaged_span_files_say_run_rag_index(tmp_path: Path) -> None:
    enc = _Encoder(WORDS)
    consolidate(tmp_path, _chunks(4), enc, "toy")
    folder = tmp_path / "late"
    np.save(folder / SPANS_FILE, np.zeros((3, 2), np.int64))  # 3 papers, info.json says 4
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(folder)
    np.save(folder / SPANS_FILE, np.array([[0, 10**9]] * 4, np.int64))  # past the stored rows
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(folder)
    (folder / SPAN_IDS_FILE).unlink()
    with pytest.raises(IndexMissingError, match="rag index"):
        LateIndex(folder)


def test_paper_spans_cover_each_papers_chunks_and_drop_empty_papers() -> None:
    rows = [["a#0", "a", "h", 0, 5], ["a#1", "a", "h", 5, 9], ["b#0", "b", "h", 9, 9]]
    # merged layout: a paper's later chunks have empty ranges
    rows += [["c#0", "c", "h", 9, 12], ["c#1", "c", "h", 12, 12]]
    ids, spans = paper_spans(rows)
    assert ids == ["a", "c"] and spans.tolist() == [[0, 9], [9, 12]] and spans.dtype == np.int64
    ids, spans = paper_spans([])
    assert ids == [] and spans.shape == (0, 2)
