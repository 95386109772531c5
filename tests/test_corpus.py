"""The whole seed corpus: counts, de-duplication across pages, ids, years."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import rag
from rag.corpus import CorpusReport, load_corpus, load_corpus_report, merge, same_paper
from rag.types import Paper, paper_id

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
P000, P001, P002, P003 = (
    "000_cdad20cdf183ce13.txt",
    "001_dddadfe95e7b2692.txt",
    "002_a67de8bfbd891bd2.txt",
    "003_018b3c99b71c7c41.txt",
)


@pytest.fixture(scope="module")
def report() -> CorpusReport:
    return load_corpus_report()


def get(report: CorpusReport, title: str) -> Paper:
    [p] = [p for p in report.papers if p.title == title]
    return p


def test_public_api_defaults_to_seeds() -> None:
    papers = rag.load_corpus()
    assert len(papers) == 208
    assert all(isinstance(p, Paper) for p in papers)


def test_counts(report: CorpusReport) -> None:
    # one malformed entry on 002 (no footer) is reported with file and line; everything else loads
    assert [(Path(p.path).name, p.line) for p in report.problems] == [(P002, 277)]
    with_abstract = [p for p in report.papers if p.has_abstract]
    title_only = [p for p in report.papers if not p.has_abstract]
    assert len(with_abstract) == 192  # 13 + 50 + 76 + 55 entries, 2 papers on two pages
    assert len(title_only) == 16
    assert all(p.source == P003 and p.extra["section"] == "More from the Same Authors" for p in title_only)
    assert report.by_source() == {P000: 13, P001: 50, P002: 76, P003: 71}
    assert [(f.name, f.format, f.entries) for f in report.files] == [
        (P000, "profile", 13),
        (P001, "listing", 50),
        (P002, "daily", 77),
        (P003, "workshop", 83),
    ]
    assert Counter(p.kind for p in report.papers) == {
        "paper": 137,
        "poster": 57,
        "talk": 5,
        "oral": 5,
        None: 3,
        "tutorial": 1,
    }


def test_ids_unique_stable_and_slugged(report: CorpusReport) -> None:
    ids = [p.id for p in report.papers]
    assert len(ids) == len(set(ids))
    assert all(p.id == paper_id(p.title) for p in report.papers)
    assert ids == [p.id for p in load_corpus()]


def test_every_paper_knows_where_it_came_from(report: CorpusReport) -> None:
    for p in report.papers:
        assert p.source == p.sources[0] and p.line is not None and p.line > 0
        assert p.title == " ".join(p.title.split())


def test_cross_page_duplicates_are_merged(report: CorpusReport) -> None:
    across = {pid: e for pid, e in report.merged.items() if len({x.split(":")[0] for x in e}) > 1}
    assert across == {
        "neural-tangent-kernel-convergence-and-generalization-in-neural": [f"{P000}:96", f"{P002}:289"],
        "sharpness-aware-minimization-leads-to-low-rank-features": [f"{P001}:76", f"{P003}:240"],
    }
    ntk = get(report, "Neural Tangent Kernel: Convergence and Generalization in Neural Networks")
    assert (ntk.source, ntk.sources, ntk.line) == (P000, [P000, P002], 96)
    assert ntk.authors == ["Arthur Jacot", "Franck Gabriel", "Clément Hongler"]  # names from 000
    assert ntk.n_authors == 3  # count from 002
    assert (ntk.category, ntk.date, ntk.year, ntk.kind) == ("LG", "2018-06-20", 2018, "paper")
    sam = get(report, "Sharpness-Aware Minimization Leads to Low-Rank Features")
    assert (sam.source, sam.sources) == (P001, [P001, P003])
    # the complete author list from the workshop beats the listing's "et al."
    assert sam.authors == ["Maksym Andriushchenko", "Dara Bahri", "Hossein Mobahi", "Nicolas Flammarion"]
    assert sam.authors_truncated is False
    assert (sam.year, sam.date, sam.category, sam.code_available) == (2023, "2023-05-25", "LG", True)
    assert sam.kind == "poster" and sam.extra["kinds"] == ["paper", "poster"]
    assert len(sam.abstract) >= 1214  # the longer of the two abstracts


def test_more_from_the_same_authors_gives_posters_their_year(report: CorpusReport) -> None:
    for title in [
        "High-dimensional Learning Dynamics of Deep Neural Nets in the Neural Tangent Regime",
        "On the Equivalence Between Implicit and Explicit Neural Networks: A High-dimensional Viewpoint",
        "Network Degeneracy as an Indicator of Training Performance: Comparing Finite and Infinite Width "
        "Angle Predictions",
    ]:
        p = get(report, title)
        assert (p.kind, p.year, p.sources) == ("poster", 2023, [P003])
        assert p.has_abstract and len(report.merged[p.id]) == 2
    other = get(report, "How to escape sharp minima")
    assert other.year is None  # nothing on the page dates it


def test_same_title_listed_twice_on_one_page(report: CorpusReport) -> None:
    p = get(report, "Noisy Dual Principal Component Pursuit")
    assert (p.kind, p.year, p.extra["kinds"]) == ("poster", 2019, ["poster", "oral"])
    assert p.extra["entries"] == [f"{P003}:565", f"{P003}:567"]
    assert len(report.merged) == 14


def test_year_rule(report: CorpusReport) -> None:
    for p in report.papers:
        if p.date and p.date[:4].isdigit():
            assert p.year == int(p.date[:4])
        else:
            assert p.year is None
    no_year = [p for p in report.papers if p.date and p.year is None]
    assert {p.date for p in no_year} >= {"May 26", "Jan 5", "Feb 1", "Sep 22"}
    assert Counter(p.year is None for p in report.papers)[True] == 81


def _paper(title: str, authors: list[str], source: str, line: int, **kw: object) -> Paper:
    return Paper(
        id=paper_id(title), title=title, authors=authors, source=source, sources=[source], line=line, **kw
    )  # type: ignore[arg-type]


def test_different_papers_with_the_same_slug_get_distinct_ids(tmp_path: Path) -> None:
    stem = "A Very Long Title About Neural Networks That Goes On And On Past The Slug Limit Of"
    f = tmp_path / "papers.jsonl"
    f.write_text(
        f'{{"title": "{stem} Sixty Four Characters", "abstract": "one"}}\n'
        f'{{"title": "{stem} Something Else Entirely", "abstract": "two"}}\n'
        f'{{"title": "{stem} Sixty Four Characters", "authors": '
        f'["Ada Lovelace"], "abstract": "one, longer"}}\n',
        encoding="utf-8",
    )
    papers = load_corpus([f])
    slug = paper_id(f"{stem} Sixty Four Characters")
    assert slug == paper_id(f"{stem} Something Else Entirely")
    assert [p.id for p in papers] == [slug, f"{slug}-2"]
    assert papers[0].abstract == "one, longer" and papers[0].authors == ["Ada Lovelace"]
    assert papers[1].title.endswith("Something Else Entirely")
    assert [p.id for p in load_corpus([f])] == [slug, f"{slug}-2"]  # deterministic


def test_same_title_disjoint_authors_are_different_papers() -> None:
    a = _paper("Attention Is All You Need", ["Ashish Vaswani"], "a.txt", 1)
    b = _paper("Attention is all you need", ["Noam Shazeer", "Ashish Vaswani"], "b.txt", 5)
    c = _paper("Attention Is All You Need", ["Someone Else"], "c.txt", 9)
    assert same_paper(a, b) and not same_paper(a, c)
    merged = merge([a, b])
    assert merged.authors == ["Noam Shazeer", "Ashish Vaswani"] and merged.sources == ["a.txt", "b.txt"]
    assert merged.title == "Attention Is All You Need" and merged.line == 1


def test_settings_paths_are_used(tmp_path: Path) -> None:
    from rag.settings import Settings

    settings = Settings()
    settings.corpus.paths = [SEEDS / P000]
    assert len(load_corpus(settings=settings)) == 13
