"""Author-profile page (seeds/000_…): exact titles, authors, dates and categories."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import EntryParseError
from rag.sources import ParseResult, detect_format, parse_file, read_text
from rag.types import paper_id

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
PAGE = SEEDS / "000_cdad20cdf183ce13.txt"


@pytest.fixture(scope="module")
def result() -> ParseResult:
    return parse_file(PAGE)


def by_title(result: ParseResult, title: str):  # type: ignore[no-untyped-def]
    matches = [p for p in result.papers if p.title == title]
    assert len(matches) == 1, title
    return matches[0]


def test_detected_by_content(tmp_path: Path) -> None:
    assert detect_format(read_text(PAGE)) == "profile"
    renamed = tmp_path / "whatever.dat"
    renamed.write_text(PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    assert parse_file(renamed).format == "profile"


def test_counts(result: ParseResult) -> None:
    assert len(result.papers) == 13
    assert result.problems == []
    assert all(p.has_abstract for p in result.papers)
    assert all(
        p.kind == "paper" and p.source == PAGE.name and p.sources == [PAGE.name] for p in result.papers
    )
    assert result.meta["profile"] == "Clément Hongler"


def test_first_and_last_entries(result: ParseResult) -> None:
    first = result.papers[0]
    assert first.title == "Cross-Entropy Games and Frost Training"
    assert first.authors == ["Arthur Renard", "Franck Gabriel", "Valentin Hartmann"]
    assert first.authors_truncated is True
    assert first.category == "AI"
    assert (first.date, first.year) == ("May 26", None)  # no year printed → raw date, no year
    assert first.line == 12
    assert first.abstract.startswith("We present Frost Training, a method")
    assert first.abstract.endswith("and does so at an increased speed.")
    last = result.papers[-1]
    assert last.title == "Neural Tangent Kernel: Convergence and Generalization in Neural Networks"
    assert last.authors == ["Arthur Jacot", "Franck Gabriel", "Clément Hongler"]
    assert last.authors_truncated is False
    assert (last.date, last.year, last.category) == ("2018-06-20", 2018, "LG")


def test_latex_title_kept_as_on_page(result: ParseResult) -> None:
    p = by_title(result, "Feature Learning in $L_{2}$-regularized DNNs: Attraction/Repulsion and Sparsity")
    assert p.id == paper_id(p.title)
    assert (p.category, p.date, p.year) == ("ML", "2022-05-31", 2022)
    assert p.authors == ["Arthur Jacot", "Eugene Golikov", "Clément Hongler"]


@pytest.mark.parametrize(
    ("title", "category", "date", "year"),
    [
        ("Visualizing the Structure of Lenia Parameter Space", "CG", "Jan 5", None),
        (
            "Scaling description of generalization with number of parameters in deep learning",
            "DIS-NN",
            "2019-01-06",
            2019,
        ),
        (
            "Smart Proofs via Smart Contracts: Succinct and Informative Mathematical Derivations via "
            "Decentralized Markets",
            "GT",
            "2021-02-05",
            2021,
        ),
        ("Arrows of Time for Large Language Models", "LG", "2024-01-30", 2024),
    ],
)
def test_category_and_date(
    result: ParseResult, title: str, category: str, date: str, year: int | None
) -> None:
    p = by_title(result, title)
    assert (p.category, p.date, p.year) == (category, date, year)


def test_non_ascii_names(result: ParseResult) -> None:
    p = by_title(result, "Visualizing the Structure of Lenia Parameter Space")
    assert p.authors == ["Barbora Hudcová", "František Dušek", "Marco Tuccio"]
    p = by_title(result, "Arrows of Time for Large Language Models")
    assert p.authors == ["Vassilis Papadopoulos", "Jérémie Wenger", "Clément Hongler"]
    assert not p.authors_truncated


def test_missing_author_line_is_reported_and_rest_loads() -> None:
    r = parse_file(FIXTURES / "profile_bad_entry.txt")
    assert [p.title for p in r.papers] == ["A First Good Paper", "A Third Good Paper"]
    assert len(r.problems) == 1
    problem = r.problems[0]
    assert isinstance(problem, EntryParseError)
    assert problem.line == 19 and problem.path.endswith("profile_bad_entry.txt")
    assert "author list" in str(problem)


def test_declared_count_mismatch_is_reported(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8").replace("13 Papers", "14 Papers")
    page = tmp_path / "profile.txt"
    page.write_text(text, encoding="utf-8")
    r = parse_file(page)
    assert len(r.papers) == 13
    assert len(r.problems) == 1 and "14 papers" in str(r.problems[0])
