"""`rag papers`: counts, listing with filters, JSON, problems with file:line, strict exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["papers"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("208 papers: 192 with abstracts, 16 title-only; merged: 2 listed on several pages")
    assert "  000_cdad20cdf183ce13.txt     13" in out
    assert "  002_a67de8bfbd891bd2.txt     76" in out
    assert "  2024        31" in out and "  unknown     81" in out
    assert "  poster       57" in out and "  talk          5" in out
    assert "003_018b3c99b71c7c41.txt: workshop, 83 entries, 0 problem(s), 9 non-paper block(s) skipped" in out
    assert "problems (1):" in out
    assert "002_a67de8bfbd891bd2.txt:277: entry 'Truncated Proximal Policy Optimization' has no footer" in out


def test_list_with_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["papers", "--list", "--source", "001", "--year", "2024"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 10
    assert all("\t2024\tpaper\t" in line for line in lines)
    assert any("JailbreakBench: An Open Robustness Benchmark" in line for line in lines)


def test_list_title_only_and_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["papers", "--list", "--title-only"]) == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 16
    assert main(["papers", "--list", "--kind", "talk"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().split("\n")) == 5 and "Murat Erdogdu" in out


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["papers", "--list", "--json", "--source", "000"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().split("\n")]
    assert len(rows) == 13
    ntk = next(r for r in rows if r["title"].startswith("Neural Tangent Kernel"))
    assert ntk["sources"] == ["000_cdad20cdf183ce13.txt", "002_a67de8bfbd891bd2.txt"]
    assert ntk["year"] == 2018


def test_problems_printed_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "papers",
            "--path",
            str(SEEDS / "000_cdad20cdf183ce13.txt"),
            "--path",
            str(FIXTURES / "listing_bad_entry.txt"),
            "--path",
            str(FIXTURES / "empty.txt"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("15 papers")
    assert "problems (2):" in out
    assert f"{FIXTURES / 'listing_bad_entry.txt'}:5: expected" in out
    assert f"{FIXTURES / 'empty.txt'}: the file is empty" in out


def test_strict_fails_with_one_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["papers", "--strict", "--path", str(FIXTURES / "daily_bad_footer.txt")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 problem(s) while loading")
    assert "daily_bad_footer.txt:19" in err


@pytest.mark.parametrize(
    ("name", "value", "field"),
    # the second: a sentence cap of 1 with the default overlap of 1 sentence
    [("RAG_RETRIEVE__K", "abc", "retrieve.k"), ("RAG_INDEX__CHUNK_MAX_SENTENCES", "1", "chunk_overlap")],
)
def test_invalid_setting_is_a_clear_error_not_a_traceback(
    name: str, value: str, field: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["papers"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings (") and field in err and "RAG_" in err
