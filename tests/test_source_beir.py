"""BEIR corpora: a folder with corpus.jsonl, or the file itself (SciFact: 5183 documents)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.corpus import CorpusReport, load_corpus, load_corpus_report
from rag.errors import EntryParseError
from rag.sources import detect_format, parse_file, read_text

SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "scifact"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
needs_scifact = pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason="SciFact not available")


@pytest.fixture(scope="module")
def scifact() -> CorpusReport:
    return load_corpus_report([SCIFACT])


@needs_scifact
def test_scifact_folder(scifact: CorpusReport) -> None:
    assert len(scifact.papers) == 5183
    assert scifact.problems == []
    assert [(f.name, f.format, f.entries) for f in scifact.files] == [("corpus.jsonl", "beir", 5183)]
    first = scifact.papers[0]
    assert first.id == "4983"
    assert first.title.startswith("Microstructural development of human newborn cerebral white matter")
    assert first.abstract.startswith("Alterations of the architecture of cerebral white matter")
    assert (first.source, first.sources, first.line) == ("scifact/corpus.jsonl", ["scifact/corpus.jsonl"], 1)
    assert len({p.id for p in scifact.papers}) == 5183


@needs_scifact
def test_scifact_file_path_gives_the_same_ids(scifact: CorpusReport) -> None:
    papers = load_corpus(SCIFACT / "corpus.jsonl")
    assert [p.id for p in papers[:50]] == [p.id for p in scifact.papers[:50]]
    assert len(papers) == 5183


def test_detected_by_content_not_name(tmp_path: Path) -> None:
    src = FIXTURES / "beir_bad" / "corpus.jsonl"
    assert detect_format(read_text(src)) == "beir"
    other = tmp_path / "docs.txt"
    shutil.copy(src, other)
    assert parse_file(other).format == "beir"


def test_bad_lines_reported_with_line_numbers() -> None:
    r = parse_file(FIXTURES / "beir_bad" / "corpus.jsonl")
    assert [(p.id, p.title, p.line) for p in r.papers] == [("10", "Doc Ten", 1), ("11", "", 2)]
    assert r.papers[1].extra == {"metadata": {"pmid": 1}}
    assert all(isinstance(p, EntryParseError) for p in r.problems)
    assert [p.line for p in r.problems] == [3, 4, 5]
    assert "duplicate _id '10'" in str(r.problems[1])


def test_beir_with_seeds_keeps_both(tmp_path: Path) -> None:
    report = load_corpus_report([FIXTURES / "beir_bad", Path(__file__).resolve().parent.parent / "seeds"])
    ids = [p.id for p in report.papers]
    assert ids[:2] == ["10", "11"] and len(ids) == len(set(ids)) == 210
    assert len(report.problems) == 4  # 3 in the broken BEIR folder + the seeds' 002:277
