"""Bad input: unknown, empty, binary, non-UTF-8 files and malformed entries are reported, never dropped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.corpus import load_corpus, load_corpus_report
from rag.errors import (
    CorpusError,
    EmptySourceError,
    EncodingError,
    EntryParseError,
    RagError,
    SourceError,
    UnknownFormatError,
)
from rag.sources import parse_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.mark.parametrize(
    ("name", "error", "line", "words"),
    [
        ("unknown.txt", UnknownFormatError, 1, "expected one of"),
        ("notes.json", UnknownFormatError, 1, "expected one of"),
        ("empty.txt", EmptySourceError, None, "empty"),
        ("blank.txt", EmptySourceError, None, "empty"),
        ("binary.bin", EncodingError, 3, "binary"),
        ("latin1_profile.txt", EncodingError, 10, "UTF-8"),
    ],
)
def test_unreadable_file_raises_named_error(
    name: str, error: type[SourceError], line: int | None, words: str
) -> None:
    with pytest.raises(error) as info:
        parse_file(FIXTURES / name)
    exc = info.value
    assert isinstance(exc, RagError)
    assert exc.path.endswith(name) and exc.line == line
    assert words in str(exc) and name in str(exc)


def test_several_files_good_ones_load_and_every_problem_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    paths = [
        FIXTURES / "unknown.txt",
        SEEDS / "000_cdad20cdf183ce13.txt",
        FIXTURES / "empty.txt",
        FIXTURES / "binary.bin",
        FIXTURES / "latin1_profile.txt",
        FIXTURES / "profile_bad_entry.txt",
    ]
    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        report = load_corpus_report(paths)
    assert len(report.papers) == 13 + 2
    kinds = [(type(p).__name__, Path(p.path).name, p.line) for p in report.problems]
    assert kinds == [
        ("UnknownFormatError", "unknown.txt", 1),
        ("EmptySourceError", "empty.txt", None),
        ("EncodingError", "binary.bin", 3),
        ("EncodingError", "latin1_profile.txt", 10),
        ("EntryParseError", "profile_bad_entry.txt", 19),
    ]
    warned = [
        r.getMessage() for r in caplog.records if r.name == "rag.corpus" and r.levelno == logging.WARNING
    ]
    assert len(warned) == 5 and "profile_bad_entry.txt:19" in warned[-1]
    per_file = {f.name: (f.format, f.entries, f.problems) for f in report.files}
    assert per_file["profile_bad_entry.txt"] == ("profile", 3, 1)  # 3 entries: 2 papers + 1 problem
    assert per_file["empty.txt"] == (None, 0, 1)


def test_every_fixture_entry_is_a_paper_or_a_problem() -> None:
    for name, entries in [
        ("profile_bad_entry.txt", 3),
        ("listing_bad_entry.txt", 3),
        ("daily_bad_footer.txt", 3),
        ("workshop_bad_entry.txt", 3),
        ("papers.jsonl", 7),
    ]:
        r = parse_file(FIXTURES / name)
        assert len(r.papers) + len(r.problems) == entries, name


def test_strict_mode_fails_on_any_problem() -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus([SEEDS / "000_cdad20cdf183ce13.txt", FIXTURES / "listing_bad_entry.txt"], strict=True)
    assert len(info.value.problems) == 1
    assert "listing_bad_entry.txt:5" in str(info.value)
    assert "strict" in str(info.value)


def test_strict_from_settings() -> None:
    from rag.settings import Settings

    settings = Settings()
    settings.corpus.strict = True
    with pytest.raises(CorpusError):
        load_corpus([FIXTURES / "daily_bad_footer.txt"], settings=settings)
    assert len(load_corpus([SEEDS / "000_cdad20cdf183ce13.txt"], settings=settings)) == 13
    with pytest.raises(CorpusError) as info:  # the seeds carry one malformed entry (002, line 277)
        load_corpus([SEEDS], settings=settings)
    assert [p.line for p in info.value.problems] == [277]


def test_nothing_loads_raises_corpus_error() -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus([FIXTURES / "empty.txt", FIXTURES / "unknown.txt"])
    assert len(info.value.problems) == 2
    assert "no papers could be loaded" in str(info.value)


def test_missing_path() -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus([FIXTURES / "does-not-exist.txt"])
    assert "no such file" in str(info.value)


def test_entry_errors_name_file_and_line() -> None:
    r = parse_file(FIXTURES / "listing_bad_entry.txt")
    [problem] = r.problems
    assert isinstance(problem, EntryParseError)
    assert str(problem).startswith(f"{FIXTURES / 'listing_bad_entry.txt'}:5: expected")
