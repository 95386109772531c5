"""Adding source files reads only the new ones (rag.index_add) and leaves the index a full run would write;
anything that could touch an old paper takes the full path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_index import FakeEmbedder, assert_late_matches

import rag.index
import rag.index_embed
from rag.index import build_index, indexed_chunks
from rag.lexical import load_lexical_index
from rag.records import PaperRecords
from rag.settings import Settings
from rag.source_keys import KEYS_FILE
from rag.store import Store

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

def names(reads: list[Any]) -> list[Any]:
    """The file names each run read (the ``reads`` fixture records the paths given)."""
    return [[Path(p).name for p in paths] if paths is not None else None for paths in reads]


def write(path: Path, ids: range, **fields: Any) -> Path:
    rows = [
        {"id": f"j{i}", "title": f"Paper about topic {i}", "authors": [f"Ann Author{i}"],
         "abstract": " ".join(f"Topic {i} finding {j} is studied." for j in range(30 if i % 7 == 2 else 1)),
         **{k: (v(i) if callable(v) else v) for k, v in fields.items()}}
        for i in ids
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def home(tmp_path: Path, name: str) -> Settings:
    return Settings(home=tmp_path / name)


def assert_same_index(a: Settings, b: Settings) -> None:
    """What search reads is the same in both homes: records, chunks, vectors, BM25 and late hits."""
    sa, sb = Store.open(a), Store.open(b)
    fa, fb = sa.folder, sb.folder
    assert (fa / "papers.jsonl").read_bytes() == (fb / "papers.jsonl").read_bytes()
    with np.load(fa / "records.npz") as x, np.load(fb / "records.npz") as y:
        assert sorted(x) == sorted(y)
        assert all(np.array_equal(x[k], y[k]) for k in x if k != "stamp")
    ma, mb = (json.loads((f / "manifest.json").read_text()) for f in (fa, fb))
    for key in ("paper_hashes", "signature", "papers", "chunks", "source_stamp", "source_files"):
        assert ma[key] == mb[key], key
    assert [(c.id, c.text) for c in indexed_chunks(a)] == [(c.id, c.text) for c in indexed_chunks(b)]
    ga = sa.collection.get(include=["embeddings", "metadatas"])
    gb = sb.collection.get(include=["embeddings", "metadatas"])
    for got in (ga, gb):
        got["rows"] = {
            cid: (tuple(v), json.dumps(m, sort_keys=True))
            for cid, v, m in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True)
        }
    assert ga["rows"] == gb["rows"]
    la, lb = load_lexical_index(fa / "bm25"), load_lexical_index(fb / "bm25")
    assert list(la.ids) == list(lb.ids) and len(la.segments) == len(lb.segments)
    for query in ("topic 3 finding", "topic 11 studied", "finding 0 new"):
        assert np.array_equal(la.scores(query), lb.scores(query)), query


def full_runs(monkeypatch: pytest.MonkeyPatch, settings: Settings, runs: list[list[Path]]) -> Settings:
    """``settings`` indexed through ``runs`` with the add path off: every run reads every file."""
    with monkeypatch.context() as m:
        m.setattr(rag.index, "add_sources", lambda *args, **kwargs: None)
        for sources in runs:
            build_index(sources, settings)
    return settings


def test_a_new_file_is_read_alone_and_gives_the_index_of_a_full_run(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(tmp_path / "a.jsonl", range(12), doi=lambda i: f"10.1/a{i}")
    b = write(tmp_path / "b.jsonl", range(12, 20), doi=lambda i: f"10.1/b{i}")
    added, scratch = home(tmp_path, "added"), home(tmp_path, "scratch")
    build_index([a], added)
    stats = build_index([a, b], added)
    assert names(reads) == [["a.jsonl"], ["b.jsonl"]]  # the old file was not read again
    assert (stats.papers, stats.unchanged, stats.removed) == (20, 12, 0) and stats.embedded > 0
    assert build_index([a, b], added).embedded == 0 and len(reads) == 2  # then a no-op, reading nothing
    full_runs(monkeypatch, scratch, [[a], [a, b]])
    assert_same_index(added, scratch)
    assert_late_matches(added, fake)
    records = PaperRecords(Store.open(added).folder)
    assert records["j15"].source == "b.jsonl" and len(records) == 20


def test_adds_in_a_row_fold_bm25_segments_from_the_records(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [write(tmp_path / f"f{k}.jsonl", range(10 * k, 10 * k + (10 if k == 0 else 2))) for k in range(6)]
    added, scratch = home(tmp_path, "added"), home(tmp_path, "scratch")
    for k in range(1, 7):
        build_index(files[:k], added)
    assert [r for r in names(reads) if r is not None] == [[f.name] for f in files]
    full_runs(monkeypatch, scratch, [files[:k] for k in range(1, 7)])
    assert_same_index(added, scratch)


@pytest.mark.parametrize(
    "second",
    [
        {"doi": "10.1/a3"},  # the same DOI as an old entry: one paper (rag.identity)
        {"id": "j3"},  # an id already used: reported as a duplicate by the full path
        {"title": "Paper about topic 4", "authors": ["Ann Author4"], "id": None},  # title + first author
    ],
)
def test_a_new_entry_that_may_be_an_old_paper_takes_the_full_path(
    fake: FakeEmbedder,
    reads: list[Any],
    tmp_path: Path,
    second: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = write(tmp_path / "a.jsonl", range(6), doi=lambda i: f"10.1/a{i}")
    row = {"id": "n1", "title": "A new paper", "authors": ["Bo New"], "abstract": "New finding here."}
    row.update(second)
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n", encoding="utf-8")
    added, scratch = home(tmp_path, "added"), home(tmp_path, "scratch")
    build_index([a], added)
    build_index([a, b], added)
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl"]  # both files read: the full loader decides
    full_runs(monkeypatch, scratch, [[a], [a, b]])
    assert_same_index(added, scratch)


def test_changed_reordered_or_listing_sources_take_the_full_path(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path
) -> None:
    a = write(tmp_path / "b.jsonl", range(4))
    new = write(tmp_path / "a.jsonl", range(4, 6))
    settings = home(tmp_path, "h")
    build_index([a], settings)
    build_index([new, a], settings)  # the new file comes first: the papers' order changes
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl"]
    write(a, range(4), abstract="Changed.")
    build_index([new, a, write(tmp_path / "c.jsonl", range(6, 8))], settings)  # an old file changed too
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    seeds = sorted(SEEDS.glob("001_*.txt"))  # a seed listing: new author names can change how it reads
    build_index(seeds, settings)
    build_index([*seeds, write(tmp_path / "d.jsonl", range(9, 10))], settings)
    assert len(reads[-1]) == 2


def test_a_damaged_keys_file_or_index_takes_the_full_path(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = (write(tmp_path / f"{n}.jsonl", range(k, k + 3)) for n, k in (("a", 0), ("b", 3), ("c", 6)))
    settings = home(tmp_path, "h")
    build_index([a], settings)
    folder = Store.open(settings).folder
    (folder / KEYS_FILE).write_bytes(b"not keys")
    build_index([a, b], settings)
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl"]
    with (folder / "papers.jsonl").open("ab") as fh:
        fh.write(b"{}\n")  # the records beside the collection no longer match their fingerprint
    build_index([a, b, c], settings)
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    scratch = full_runs(monkeypatch, home(tmp_path, "scratch"), [[a], [a, b], [a, b, c]])
    assert_same_index(settings, scratch)


def test_an_add_killed_half_way_is_completed_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch, reads: list[Any], tmp_path: Path
) -> None:
    a = write(tmp_path / "a.jsonl", range(6))
    b = write(tmp_path / "b.jsonl", range(6, 20))
    settings = home(tmp_path, "h")
    monkeypatch.setattr(rag.index_embed, "WRITE_BATCH", 4)
    healthy = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: healthy)
    build_index([a], settings)
    dying = FakeEmbedder(fail_after=1)
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: dying)
    with pytest.raises(KeyboardInterrupt):
        build_index([a, b], settings)
    assert names(reads)[-1] == ["b.jsonl"]  # it was the add path that died
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: healthy)
    stats = build_index([a, b], settings)
    assert names(reads)[-1] == ["a.jsonl", "b.jsonl"]  # no complete manifest: the full path reconciles
    assert 0 < stats.embedded < stats.chunks
    scratch = home(tmp_path, "scratch")
    build_index([a, b], scratch)
    assert_same_index(settings, scratch)
