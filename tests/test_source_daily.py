"""Daily Papers page (seeds/002_…): title, abstract, author count, date and upvotes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import EntryParseError
from rag.sources import ParseResult, detect_format, parse_file, read_text
from rag.types import Paper

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
PAGE = SEEDS / "002_a67de8bfbd891bd2.txt"


@pytest.fixture(scope="module")
def result() -> ParseResult:
    return parse_file(PAGE)


def get(result: ParseResult, title: str) -> Paper:
    [p] = [p for p in result.papers if p.title == title]
    return p


def test_detected_by_content() -> None:
    assert detect_format(read_text(PAGE)) == "daily"


def test_counts(result: ParseResult) -> None:
    # 77 entries: 76 with the "• N authors · date" footer, plus one whose footer is missing on the page,
    # which is reported as a problem (the page's layout promises an author count and a date).
    assert len(result.papers) == 76
    assert [p.line for p in result.problems] == [277]
    assert sum(p.n_authors is not None for p in result.papers) == 76
    assert all(p.has_abstract and p.kind == "paper" and not p.authors for p in result.papers)
    assert result.meta["page_date"] == "Oct 29"
    assert [s.what for s in result.skipped] == ["page header"]
    # the footer count on the page agrees
    assert PAGE.read_text(encoding="utf-8").count(" authors\n·\n") == 76


def test_first_entry(result: ParseResult) -> None:
    p = result.papers[0]
    assert p.title == "TempSamp-R1: Effective Temporal Sampling with Reinforcement Fine-Tuning for Video LLMs"
    assert (p.n_authors, p.date, p.year, p.upvotes, p.line) == (7, "Sep 22", None, 3, 13)
    assert p.abstract.startswith("This paper introduces TempSamp-R1")
    assert p.abstract.endswith("Code: https://github.com/HVision-NKU/TempSamp-R1")


@pytest.mark.parametrize(
    ("title", "n_authors", "date", "year", "upvotes"),
    [
        ("The Two-Pass Softmax Algorithm", 2, "2020-01-13", 2020, None),
        ("Cut Your Losses in Large-Vocabulary Language Models", 5, "2024-11-13", 2024, 4),
        (
            "Stop Regressing: Training Value Functions via Classification for Scalable Deep RL",
            12,
            "2024-03-06",
            2024,
            1,
        ),
        ("Offline Reinforcement Learning for LLM Multi-Step Reasoning", 7, "2024-12-20", 2024, 6),
        (
            "Studying Large Language Model Generalization with Influence Functions",
            17,
            "2023-08-07",
            2023,
            None,
        ),
        (
            "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks",
            3,
            "2013-12-20",
            2013,
            None,
        ),
        (
            "Beyond Backpropagation: Exploring Innovative Algorithms "
            "for Energy-Efficient Deep Neural Network "
            "Training",
            1,
            "Sep 23",
            None,
            None,
        ),
        (
            "Optimistic Online Mirror Descent for Bridging Stochastic "
            "and Adversarial Online Convex Optimization",
            4,
            "2023-02-09",
            2023,
            None,
        ),
    ],
)
def test_footers(
    result: ParseResult, title: str, n_authors: int, date: str, year: int | None, upvotes: int | None
) -> None:
    p = get(result, title)
    assert (p.n_authors, p.date, p.year, p.upvotes) == (n_authors, date, year, upvotes)


def test_entry_without_footer_is_reported_not_dropped(result: ParseResult) -> None:
    assert all(p.title != "Truncated Proximal Policy Optimization" for p in result.papers)
    [problem] = result.problems
    assert isinstance(problem, EntryParseError) and problem.line == 277
    assert "Truncated Proximal Policy Optimization" in str(problem) and "• N authors" in str(problem)
    assert str(problem).startswith("002_a67de8bfbd891bd2.txt:277: ") or ":277: " in str(problem)
    nxt = get(result, "Power-Softmax: Towards Secure LLM Inference over Encrypted Data")
    assert (nxt.n_authors, nxt.date, nxt.line) == (10, "2024-10-12", 281)
    assert nxt.abstract.startswith("Modern cryptographic methods")


def test_malformed_footer_is_reported_and_rest_loads() -> None:
    r = parse_file(FIXTURES / "daily_bad_footer.txt")
    assert [p.title for p in r.papers] == ["A Good Daily Paper", "A Third Daily Paper"]
    assert (r.papers[1].n_authors, r.papers[1].date) == (1, "2020-01-13")
    [problem] = r.problems
    assert isinstance(problem, EntryParseError) and problem.line == 19
    assert "A Paper With A Broken Footer" in str(problem) and "• N authors" in str(problem)
