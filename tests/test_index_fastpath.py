"""The no-op re-index of unchanged source files (rag.index_fastpath): it does not read the sources again,
and it still notices an edited, added or removed file and chunks missing from the collection."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_index import FakeEmbedder

from rag.index import build_index
from rag.settings import Settings
from rag.store import Store


def write_papers(path: Path, ids: range, *, word: str = "studied") -> Path:
    rows = [
        {"id": f"j{i}", "title": f"Paper about topic {i}", "authors": [f"Ann Author{i}"],
         "abstract": " ".join(f"Topic {i} finding {j} is {word} here." for j in range(30 if i == 2 else 2))}
        for i in ids
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_unchanged_sources_are_not_read_again(fake: FakeEmbedder, reads: list[Any], tmp_path: Path) -> None:
    source = write_papers(tmp_path / "papers.jsonl", range(5))
    first = build_index([source], Settings())
    assert first.embedded == first.chunks > 5 and len(reads) == 1
    bm25 = Store.open(Settings()).folder / "bm25"
    stamp = (bm25 / "rag_lexical.json").stat().st_mtime_ns
    texts = fake.texts
    again = build_index([source], Settings())
    assert len(reads) == 1  # the quick no-op: the sources were not parsed again
    assert (again.papers, again.chunks, again.embedded, again.unchanged, again.removed) == (
        5, first.chunks, 0, 5, 0)
    assert fake.texts == texts and (bm25 / "rag_lexical.json").stat().st_mtime_ns == stamp


def test_a_same_size_edit_with_its_old_mtime_is_read(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path
) -> None:
    source = write_papers(tmp_path / "papers.jsonl", range(5))
    first = build_index([source], Settings())
    before = source.stat()
    write_papers(source, range(5), word="revised")  # 7 letters, like "studied": same size
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old modification time, restored
    assert source.stat().st_size == before.st_size and source.stat().st_mtime_ns == before.st_mtime_ns
    again = build_index([source], Settings())
    assert len(reads) == 2 and again.embedded == first.chunks and again.unchanged == 0


def test_added_and_removed_files_in_a_folder_are_read(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    write_papers(folder / "a.jsonl", range(3))
    first = build_index([folder], Settings())
    write_papers(folder / "b.jsonl", range(3, 5))
    added = build_index([folder], Settings())
    assert len(reads) == 2 and added.papers == 5 and added.unchanged == 3 and added.embedded > 0
    assert reads[1] == [folder / "b.jsonl"]  # only the new file (rag.index_add)
    (folder / "a.jsonl").unlink()
    removed = build_index([folder], Settings())
    assert len(reads) == 3 and (removed.papers, removed.removed) == (2, 3)
    assert removed.chunks == added.chunks - first.chunks


def test_chunks_missing_from_the_collection_are_put_back(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path
) -> None:
    source = write_papers(tmp_path / "papers.jsonl", range(5))
    first = build_index([source], Settings())
    build_index([source], Settings())
    assert len(reads) == 1
    Store.open(Settings()).delete(["j2#0"])  # the sources did not change, the collection did
    repaired = build_index([source], Settings())
    assert len(reads) == 2  # the count differed from the manifest's: the full path reconciled
    assert repaired.chunks == first.chunks and repaired.embedded > 0 and repaired.unchanged == 4
    assert "j2#0" in Store.open(Settings()).chunk_states()


def test_a_damaged_file_beside_the_collection_is_rebuilt(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path
) -> None:
    source = write_papers(tmp_path / "papers.jsonl", range(5))
    build_index([source], Settings())
    papers_file = Store.open(Settings()).folder / "papers.jsonl"
    good = papers_file.read_bytes()
    papers_file.write_bytes(good[: len(good) // 2])
    again = build_index([source], Settings())
    assert len(reads) == 2 and again.embedded == 0 and papers_file.read_bytes() == good


def test_a_no_op_does_not_open_chroma_while_its_files_are_as_recorded(
    fake: FakeEmbedder, reads: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the collection loads its whole vector index; the no-op trusts the manifest's chunk count
    while Chroma's files keep the sizes and times the last run (or a counting no-op) recorded."""
    source = write_papers(tmp_path / "papers.jsonl", range(5))
    first = build_index([source], Settings())
    build_index([source], Settings())  # may count once: Chroma can rewrite its files after a run
    opened: list[Any] = []
    real_open = Store.open

    def spy(settings: Settings, **kwargs: Any) -> Store:
        opened.append(settings)
        return real_open(settings, **kwargs)

    monkeypatch.setattr(Store, "open", spy)
    again = build_index([source], Settings())
    assert opened == [] and len(reads) == 1 and again.chunks == first.chunks and again.embedded == 0
    monkeypatch.setattr(Store, "open", real_open)
    Store.open(Settings()).delete(["j3#0"])  # Chroma's files change: the next run counts, and repairs
    repaired = build_index([source], Settings())
    assert len(reads) == 2 and repaired.embedded > 0 and repaired.chunks == first.chunks
