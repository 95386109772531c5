"""JSON lines of papers: objects with at least a title; bad lines reported with their line."""

from __future__ import annotations

from pathlib import Path

from rag.corpus import load_corpus_report
from rag.errors import EntryParseError
from rag.sources import parse_file
from rag.types import paper_id

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_good_and_bad_lines() -> None:
    r = parse_file(FIXTURES / "papers.jsonl")
    assert r.format == "jsonl"
    assert [p.title for p in r.papers] == [
        "A JSON Paper",
        "Neural Tangent Kernel: Convergence and Generalization in Neural Networks",
        "A Paper With Its Own Id",
    ]
    first = r.papers[0]
    assert (first.id, first.year, first.venue, first.authors) == (
        paper_id("A JSON Paper"),
        2024,
        "NeurIPS",
        ["Ada Example"],
    )
    assert first.doi == "10.1/x"  # a Paper field since the reference-library formats
    assert first.extra == {"isbn": "978-0"}  # unknown keys are kept, not dropped
    assert (first.source, first.line) == ("papers.jsonl", 1)
    assert (r.papers[2].id, r.papers[2].kind, r.papers[2].line) == ("custom-1", "preprint", 7)
    assert [p.line for p in r.problems] == [3, 4, 5, 6]
    assert all(isinstance(p, EntryParseError) for p in r.problems)
    assert "year" in str(r.problems[2])


def test_jsonl_paper_merges_with_the_same_seed_paper() -> None:
    report = load_corpus_report([SEEDS, FIXTURES / "papers.jsonl"])
    ntk = next(p for p in report.papers if p.title.startswith("Neural Tangent Kernel: Convergence"))
    assert ntk.sources == ["000_cdad20cdf183ce13.txt", "002_a67de8bfbd891bd2.txt", "papers.jsonl"]
    assert ntk.venue == "NeurIPS 2018"  # filled in from the JSON line
    assert len(ntk.abstract) > 1000  # the fuller abstract wins over "short"
    assert len(report.problems) == 5  # 4 bad lines in papers.jsonl + the seeds' 002:277
