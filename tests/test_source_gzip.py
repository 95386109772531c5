"""gzip sources: any reader reads a .gz export as the plain file, and a gzip file cut short (an interrupted
download) or corrupt part-way keeps the records before the damage, reported with file and position."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.corpus import load_corpus_report
from rag.errors import SourceError
from rag.sources import parse_file

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"


def _snapshot_lines(n: int) -> bytes:
    rows = [
        {"id": f"2301.{i:05d}", "title": f"Paper number {i} on sharpness", "abstract": f"Abstract {i}.",
         "authors": "Ann Lee", "authors_parsed": [["Lee", "Ann", ""]], "categories": "cs.LG",
         "update_date": "2023-01-02",
         "versions": [{"version": "v1", "created": "Mon, 2 Jan 2023 10:00:00 GMT"}]}
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("name", ["library.ris", "openalex_works.jsonl", "pubmed.xml", "arxiv_query.atom"])
def test_gzip_file_reads_as_the_plain_file(tmp_path: Path, name: str) -> None:
    plain = FORMATS / name
    packed = tmp_path / (name + ".gz")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    want, got = parse_file(plain), parse_file(packed)
    assert got.format == want.format
    assert [p.model_dump(exclude={"source", "sources"}) for p in got.papers] == [
        p.model_dump(exclude={"source", "sources"}) for p in want.papers
    ]
    assert len(got.problems) == len(want.problems)


def test_snapshot_cut_short_keeps_the_records_before_and_says_so(tmp_path: Path) -> None:
    data = gzip.compress(_snapshot_lines(3000))
    cut = tmp_path / "arxiv-metadata-oai-snapshot.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = parse_file(cut)
    assert result.format == "arxiv-snapshot"
    assert 100 < len(result.papers) < 3000
    assert [p.arxiv_id for p in result.papers] == [f"2301.{i:05d}" for i in range(len(result.papers))]
    (problem,) = result.problems
    assert problem.path == str(cut) and "cut short or damaged" in str(problem)
    assert f"after record {len(result.papers)}" in str(problem) and "download" in str(problem)


def test_corrupt_gzip_part_way_is_one_problem_and_other_files_still_load(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_snapshot_lines(3000), compresslevel=1))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroed block inside the deflate stream
    bad = tmp_path / "snapshot.json.gz"
    bad.write_bytes(bytes(data))
    report = load_corpus_report([bad, FORMATS / "library.ris"])
    from_bad = [p for p in report.papers if p.source == bad.name]
    assert 0 < len(from_bad) < 3000
    assert any(p.source == "library.ris" for p in report.papers)
    from_bad_problems = [p for p in report.problems if p.path == str(bad)]
    # the zeroed bytes may inflate to garbage lines first (each reported on its line); then the stream fails
    damaged = [p for p in from_bad_problems if "cut short or damaged" in str(p)]
    assert len(damaged) == 1
    assert all(p.line is not None for p in from_bad_problems if p is not damaged[0])


def test_gzip_damaged_at_the_start_is_a_clear_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_snapshot_lines(50)))
    data[12:40] = bytes(28)
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(SourceError) as info:
        parse_file(bad)
    assert "gzip" in str(info.value) and "again" in str(info.value) and str(bad) in str(info.value)
