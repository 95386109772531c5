"""Workshop page (seeds/003_…): talks, posters, orals and the title-only "More from the Same Authors"."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rag.errors import EntryParseError
from rag.sources import ParseResult, detect_format, parse_file, read_text
from rag.types import Paper

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
PAGE = SEEDS / "003_018b3c99b71c7c41.txt"
MORE = "More from the Same Authors"


@pytest.fixture(scope="module")
def result() -> ParseResult:
    return parse_file(PAGE)


def one(result: ParseResult, title: str, **where: object) -> Paper:
    found = [
        p for p in result.papers if p.title == title and all(getattr(p, k) == v for k, v in where.items())
    ]
    assert len(found) == 1, (title, where, len(found))
    return found[0]


def test_detected_by_content() -> None:
    assert detect_format(read_text(PAGE)) == "workshop"


def test_counts(result: ParseResult) -> None:
    assert result.problems == []
    main = [p for p in result.papers if p.extra.get("section") != MORE]
    more = [p for p in result.papers if p.extra.get("section") == MORE]
    assert Counter(p.kind for p in main) == {"talk": 5, "poster": 45, "oral": 5}
    assert all(p.has_abstract and p.authors and p.year is None for p in main)
    assert len(more) == 28
    assert len({p.title for p in more}) == 19
    assert all(not p.has_abstract and p.year is not None for p in more)
    assert len({p.title for p in more} & {p.title for p in main}) == 3


def test_skipped_schedule_items(result: ParseResult) -> None:
    whats = [s.what for s in result.skipped]
    assert whats == [
        "workshop description",
        "Opening Remarks (Remarks item)",
        "Contributed talks 1 (Contributed talks item)",
        "Poster Session/Coffee Break (schedule item)",
        "Lunch (schedule item)",
        "Contributed talks 2 (Contributed talks item)",
        "Coffee Break (Break item)",
        "Closing remarks (Remarks item)",
        "Author Information",
    ]


def test_plenary_talks(result: ParseResult) -> None:
    talks = [p for p in result.papers if p.kind == "talk"]
    assert [(p.title, p.authors) for p in talks] == [
        ("Feature Learning in Two-layer Neural Networks under Structured Data", ["Murat Erdogdu"]),
        ("High-dimensional Optimization in the Age of ChatGPT", ["Sanjeev Arora"]),
        (
            "Multi-level theory of neural representations: Capacity of neural manifolds in biological and "
            "artificial neural networks",
            ["SueYeon Chung"],
        ),
        (
            "A strong implicit bias in SGD dynamics towards much "
            "simpler subnetworks through stochastic collapse "
            "to invariant sets",
            ["Surya Ganguli"],
        ),
        ("Solving overparametrized systems of random equations", ["Andrea Montanari"]),
    ]
    first = talks[0]
    assert first.extra["speaker"] == "Murat A. Erdogdu"
    assert first.extra["session_time"] == "Fri 12:00 p.m. - 12:45 p.m."
    assert first.abstract.startswith("We study the effect of gradient-based optimization")
    assert "SlidesLive" not in first.abstract and "Abstract:" not in first.abstract
    assert first.line == 16


def test_posters_and_orals(result: ParseResult) -> None:
    p = one(result, "Learning to Plan in Multi-dimensional Stochastic Differential Equations")
    assert p.kind == "poster" and p.line == 101
    assert p.authors == ["Mohamad Sadegh Shirani Faradonbeh", "Mohamad Kazem Shirani Faradonbeh"]
    p = one(result, "Flatter, Faster: Scaling Momentum for Optimal Speedup of SGD")  # comma stays in title
    assert p.authors == ["Aditya Cowsik", "Tankut Can", "Paolo Glorioso"]
    assert p.abstract.startswith("Optimization algorithms typically show")
    p = one(result, "Sharp predictions for mini-batched prox-linear iterations in rank one matrix sensing")
    assert p.kind == "oral" and p.authors == ["MENGQI LOU", "Kabir Chandrasekher", "Ashwin Pananjady"]
    p = one(
        result, "Over-Parameterization Exponentially Slows Down Gradient Descent for Learning a Single Neuron"
    )
    assert p.kind == "oral" and p.abstract.startswith("We revisit the problem")  # "link »" dropped
    p = one(result, "The Training Process of Many Deep Networks Explores the Same Low-Dimensional Manifold")
    assert len(p.authors) == 8 and p.authors[-1] == "Pratik Chaudhari"
    p = one(
        result, "Learning in the Presence of Low-dimensional Structure: A Spiked Random Matrix Perspective"
    )
    assert p.abstract.startswith(
        r"We consider the learning of a single-index target function $f_*: \mathbb{R}^d"
    )


def test_more_from_the_same_authors(result: ParseResult) -> None:
    p = one(result, "Diffusion on the Probability Simplex")
    assert (p.year, p.date, p.kind) == (2023, "2023", None)
    assert p.authors == ["Griffin Floto", "Thorsteinn Jonsson", "Mihai Nica", "Scott Sanner", "Eric Zhu"]
    title = (
        r"Reverse Engineering $\ell_p$ attacks: A block-sparse optimization approach with recovery guarantees"
    )
    assert one(result, title, kind="poster").year == 2022
    assert one(result, title, kind="spotlight").line == 541
    assert one(result, "Random Matrix Theory and ML (RMT+ML)").kind == "tutorial"
    # the last line of the page lost its trailing " -"
    last = one(result, "The Dynamics of Learning: A Random Matrix Approach", kind="oral")
    assert (last.year, last.authors, last.line) == (2018, ["Zhenyu Liao", "Romain Couillet"], 575)
    kinds = Counter(p.kind for p in result.papers if p.extra.get("section") == MORE)
    assert kinds == {"poster": 12, "spotlight": 6, None: 6, "oral": 3, "tutorial": 1}


def test_missing_people_line_is_reported_and_rest_loads() -> None:
    r = parse_file(FIXTURES / "workshop_bad_entry.txt")
    assert [(p.title, p.kind, p.authors) for p in r.papers] == [
        ("A Good Poster", "poster", ["Ada Example", "Bob Builder"]),
        ("Another Good Poster", "oral", ["Carol Coder"]),
    ]
    [problem] = r.problems
    assert isinstance(problem, EntryParseError) and problem.line == 11
    assert "A Poster Without People" in str(problem)
