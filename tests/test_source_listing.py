"""Listing page (seeds/001_…): the title runs straight into the author list; every split is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import EntryParseError
from rag.sources import ParseResult, detect_format, parse_file, read_text
from rag.sources.base import CATDATE_RE, is_clean_name
from rag.sources.listing import split_title_authors

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
PAGE = SEEDS / "001_dddadfe95e7b2692.txt"

# All 50 titles in page order, checked by eye against the page.
TITLES = [
    "A Modern Look at the Relationship between Sharpness and Generalization",
    "Towards Understanding Sharpness-Aware Minimization",
    "Why Do We Need Weight Decay in Modern Deep Learning?",
    "SGD with Large Step Sizes Learns Sparse Features",
    "Does Refusal Training in LLMs Generalize to the Past Tense?",
    "(S)GD over Diagonal Linear Networks: Implicit Regularisation, Large Stepsizes and Edge of Stability",
    "Could ChatGPT get an Engineering Degree? Evaluating Higher Education Vulnerability to AI Assistants",
    "Linearization Algorithms for Fully Composite Optimization",
    "Gradient flow dynamics of shallow ReLU networks for square loss and orthogonal inputs",
    "Saddle-to-Saddle Dynamics in Diagonal Linear Networks",
    "Label noise (stochastic) gradient descent implicitly solves the Lasso for quadratic parametrisation",
    "Jailbreaking Leading Safety-Aligned LLMs with Simple Adaptive Attacks",
    "Penalising the biases in norm regularisation enforces sparsity",
    "Transferable Adversarial Robustness for Categorical Data via Universal Robust Embeddings",
    "JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models",
    "Accelerated SGD for Non-Strongly-Convex Least Squares",
    "Long Is More for Alignment: A Simple but Tough-to-Beat Baseline for Instruction Fine-Tuning",
    "On the Out-of-Distribution Generalization of Reasoning "
    "in Multimodal LLMs for Simple Visual Planning Tasks",
    "First-order ANIL provably learns representations despite overparametrization",
    "(How) Learning Rates Regulate Catastrophic Overtraining",
    "OS-Harm: A Benchmark for Measuring Safety of Computer Use Agents",
    "Chain-of-Frames: Advancing Video Understanding in Multimodal LLMs via Frame-Aware Reasoning",
    "Towards Unified Benchmark and Models for Multi-Modal Perceptual Metrics",
    "Transformers Learn Latent Mixture Models In-Context via Mirror Descent",
    "Exact Learning of Arithmetic with Differentiable Agents",
    "Sharpness-Aware Minimization Leads to Low-Rank Features",
    "On the effectiveness of adversarial training against common corruptions",
    "RobustBench: a standardized adversarial robustness benchmark",
    "Understanding and Improving Fast Adversarial Training",
    "Sparse-RS: a versatile framework for query-efficient sparse black-box adversarial attacks",
    "Square Attack: a query-efficient black-box adversarial attack via random search",
    "Competition Report: Finding Universal Jailbreak Backdoors in Aligned LLMs",
    "Incremental Learning of Sparse Attention Patterns in Transformers",
    "Leveraging Continuous Time to Understand Momentum When Training Diagonal Linear Networks",
    "Selective Induction Heads: How Transformers Select Causal Structures In Context",
    "Learning In-context n-grams with Transformers: Sub-n-grams Are Near-stationary Points",
    "Learning Algorithms in the Limit",
    "On the Adversarial Robustness of Discrete Image Tokenizers",
    "HalluHard: A Hard Multi-Turn Hallucination Benchmark",
    "Gradient Flow Polarizes Softmax Outputs towards Low-Entropy Solutions",
    "FuseLIP: Multimodal Embeddings via Early Fusion of Discrete Tokens",
    "Learning Parametric Distributions from Samples and Preferences",
    "Implicit Bias of Mirror Flow on Separable Data",
    "Early alignment in two-layer networks training is a two-edged sword",
    "ARIA: Adversarially Robust Image Attribution for Content Provenance",
    "Trace norm regularization for multi-task learning with scarce data",
    "Linear Speedup in Personalized Collaborative Learning",
    "Implicit Bias of SGD for Diagonal Linear Networks: a Provable Benefit of Stochasticity",
    "A Continuized View on Nesterov Acceleration for Stochastic Gradient Descent and Randomized Gossip",
    "Last iterate convergence of SGD for Least-Squares in the Interpolation regime",
]


@pytest.fixture(scope="module")
def result() -> ParseResult:
    return parse_file(PAGE)


@pytest.fixture(scope="module")
def corpus_names() -> set[str]:
    """Every author name on the other seed pages, and in non-first position on this one."""
    names: set[str] = set()
    for page in sorted(SEEDS.iterdir()):
        for p in parse_file(page).papers:
            names.update(p.authors[1:] if page == PAGE else p.authors)
    return names


def test_detected_by_content() -> None:
    assert detect_format(read_text(PAGE)) == "listing"


def test_all_50_titles_exact(result: ParseResult) -> None:
    assert result.problems == []
    assert [p.title for p in result.papers] == TITLES


def test_every_line_is_title_plus_author_list(result: ParseResult) -> None:
    """For all 50: title + authors (+ et al. + · tags) rebuilds the page line, and the author part is
    a list of clean 'First Last' names — so the title ends exactly where the author list starts."""
    lines = PAGE.read_text(encoding="utf-8").split("\n")
    assert len(result.papers) == 50
    for p in result.papers:
        assert p.line is not None and CATDATE_RE.match(lines[p.line - 1])
        rebuilt = p.title + ", ".join(p.authors) + (" et al." if p.authors_truncated else "")
        if p.affiliations:
            rebuilt += " · " + ", ".join(p.affiliations)
        assert rebuilt == lines[p.line], p.title
        assert all(is_clean_name(a) for a in p.authors), p.authors
        assert not p.title.endswith(" "), p.title


def test_first_authors_cross_checked(result: ParseResult, corpus_names: set[str]) -> None:
    """A first author is a name seen elsewhere in the corpus, or one verified by eye."""
    verified_by_eye = {
        "Hristo Papazov",
        "Sara Ghazanfari",
        "Oğuz Kaan Yüksel",
        "Mathieu Even",
        "Klim Kireev",
        "Yannic Neuhaus",
        "Thomas Kuntz",
        "Rishika Bhagwatkar",
        "Patrick Chao",
        "Maria-Luiza Vladarean",
        "Marc Jourdan",
        "Javier Rando",
        "El Mahdi Chayti",
        "Dongyang Fan",
        "Christian Schlarmann",
        "Beatriz Borges",
    }
    for p in result.papers:
        assert p.authors[0] in corpus_names or p.authors[0] in verified_by_eye, (p.title, p.authors[0])


@pytest.mark.parametrize(
    ("title", "authors", "truncated"),
    [
        (
            "A Modern Look at the Relationship between Sharpness and Generalization",
            ["Maksym Andriushchenko", "Francesco Croce", "Maximilian Müller"],
            True,
        ),
        (
            "Why Do We Need Weight Decay in Modern Deep Learning?",
            ["Francesco D'Angelo", "Maksym Andriushchenko", "Aditya Varre"],
            True,
        ),
        (
            "JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models",
            ["Patrick Chao", "Edoardo Debenedetti", "Alexander Robey"],
            True,
        ),
        (
            "RobustBench: a standardized adversarial robustness benchmark",
            ["Francesco Croce", "Maksym Andriushchenko", "Vikash Sehwag"],
            True,
        ),
        (
            "HalluHard: A Hard Multi-Turn Hallucination Benchmark",
            ["Dongyang Fan", "Sebastien Delsad", "Nicolas Flammarion"],
            True,
        ),
        (
            "FuseLIP: Multimodal Embeddings via Early Fusion of Discrete Tokens",
            ["Christian Schlarmann", "Francesco Croce", "Nicolas Flammarion"],
            True,
        ),
        (
            "(S)GD over Diagonal Linear Networks: Implicit Regularisation, "
            "Large Stepsizes and Edge of Stability",
            ["Mathieu Even", "Scott Pesme", "Suriya Gunasekar"],
            True,
        ),
        (
            "Could ChatGPT get an Engineering Degree? Evaluating "
            "Higher Education Vulnerability to AI Assistants",
            ["Beatriz Borges", "Negar Foroutan", "Deniz Bayazit"],
            True,
        ),
        (
            "Linearization Algorithms for Fully Composite Optimization",
            ["Maria-Luiza Vladarean", "Nikita Doikov", "Martin Jaggi"],
            True,
        ),
        (
            "First-order ANIL provably learns representations despite overparametrization",
            ["Oğuz Kaan Yüksel", "Etienne Boursier", "Nicolas Flammarion"],
            False,
        ),
        (
            "Competition Report: Finding Universal Jailbreak Backdoors in Aligned LLMs",
            ["Javier Rando", "Francesco Croce", "Kryštof Mitka"],
            True,
        ),
        (
            "Linear Speedup in Personalized Collaborative Learning",
            ["El Mahdi Chayti", "Sai Praneeth Karimireddy", "Sebastian U. Stich"],
            True,
        ),
        (
            "Sparse-RS: a versatile framework for query-efficient sparse black-box adversarial attacks",
            ["Francesco Croce", "Maksym Andriushchenko", "Naman D. Singh"],
            True,
        ),
        (
            "ARIA: Adversarially Robust Image Attribution for Content Provenance",
            ["Maksym Andriushchenko", "Xiaoyang Rebecca Li", "Geoffrey Oxholm"],
            True,
        ),
        (
            "Transformers Learn Latent Mixture Models In-Context via Mirror Descent",
            ["Francesco D'Angelo", "Nicolas Flammarion"],
            False,
        ),
        ("Learning Algorithms in the Limit", ["Hristo Papazov", "Nicolas Flammarion"], False),
    ],
)
def test_tricky_splits(result: ParseResult, title: str, authors: list[str], truncated: bool) -> None:
    [p] = [p for p in result.papers if p.title == title]
    assert p.authors == authors
    assert p.authors_truncated is truncated


def test_affiliations_code_marker_and_dates(result: ParseResult) -> None:
    by = {p.title: p for p in result.papers}
    jb = by["JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models"]
    assert jb.affiliations == ["eth-zurich", "princeton"]
    assert (jb.category, jb.date, jb.year, jb.code_available) == ("CR", "2024-03-28", 2024, True)
    cr = by["Competition Report: Finding Universal Jailbreak Backdoors in Aligned LLMs"]
    assert cr.affiliations == ["eth-zurich"] and cr.code_available is False
    hh = by["HalluHard: A Hard Multi-Turn Hallucination Benchmark"]
    assert (hh.category, hh.date, hh.year) == ("AI", "Feb 1", None)
    assert sum(p.code_available is True for p in result.papers) == 18
    assert sum(p.year is None for p in result.papers) == 7


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Attention, PleaseJohn Smith, Bob Lee", ("Attention, Please", ["John Smith", "Bob Lee"], False)),
        (
            "Is ChatGPT Enough?Maria McDonald, Bob Lee et al.",
            ("Is ChatGPT Enough?", ["Maria McDonald", "Bob Lee"], True),
        ),
        ("Scaling Laws for GPTAda Lovelace", ("Scaling Laws for GPT", ["Ada Lovelace"], False)),
        (
            "A Title With CamelCase WordsJean-Luc van der Berg, Ana Li · mit",
            ("A Title With CamelCase Words", ["Jean-Luc van der Berg", "Ana Li"], False),
        ),
    ],
)
def test_split_unit_cases(line: str, expected: tuple[str, list[str], bool]) -> None:
    split = split_title_authors(line)
    assert split is not None
    assert split[:3] == expected


def test_known_names_break_ties() -> None:
    # A first author whose name has an inner capital gives two name-shaped candidates; without help
    # the right-most one wins, a name known from elsewhere in the corpus picks the right one.
    line = "Title of PaperMary AnnaBelle Smith, Ann Lee"
    assert split_title_authors(line) == ("Title of PaperMary Anna", ["Belle Smith", "Ann Lee"], False, [])
    assert split_title_authors(line, known_names=["Mary AnnaBelle Smith"]) == (
        "Title of Paper",
        ["Mary AnnaBelle Smith", "Ann Lee"],
        False,
        [],
    )
    assert split_title_authors("no authors here at all") is None


def test_unsplittable_line_is_reported_and_rest_loads() -> None:
    r = parse_file(FIXTURES / "listing_bad_entry.txt")
    assert [p.title for p in r.papers] == ["A Good First Title", "JailbreakBench: A Camel-Case Title"]
    assert r.papers[1].authors == ["Patrick Chao", "Edoardo Debenedetti"]
    assert r.papers[1].affiliations == ["eth-zurich", "princeton"]
    [problem] = r.problems
    assert isinstance(problem, EntryParseError) and problem.line == 5
    assert "author list" in str(problem)
