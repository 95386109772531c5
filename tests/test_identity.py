"""Identity across sources: one paper from BibTeX + arXiv + OpenAlex (+ seeds), stable ids, and new Paper
fields that leave content hashes — hence existing indexes — untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag.index
from rag.chunk import chunk_metadata
from rag.corpus import load_corpus, load_corpus_report
from rag.identity import ids_of
from rag.index import build_index, content_hash
from rag.settings import Settings
from rag.types import Paper, paper_id

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
MODERN = "A Modern Look at the Relationship between Sharpness and Generalization"


def test_same_paper_from_bibtex_arxiv_and_openalex_is_one_paper() -> None:
    files = [FORMATS / n for n in ("library.bib", "arxiv_query.atom", "openalex_works.json")]
    report = load_corpus_report(files)
    modern = [p for p in report.papers if p.title == MODERN]
    assert len(modern) == 1
    p = modern[0]
    assert p.sources == ["library.bib", "arxiv_query.atom", "openalex_works.json"]
    assert p.id == paper_id(MODERN)
    assert report.merged[p.id] == ["library.bib:5", "arxiv_query.atom:8", "openalex_works.json:1"]
    # fuller metadata wins: the full date (arXiv) over "2023-07", the longest abstract (OpenAlex)
    assert (p.date, p.arxiv_id, p.venue) == (
        "2023-02-14",
        "2302.07011",
        "International Conference on Machine Learning",
    )
    assert p.abstract.endswith("not invariant under reparametrizations of neural networks.")
    assert p.keywords[:3] == ["sharpness", "generalization", "flat minima"]  # every source's keywords kept
    assert "cs.LG" in p.keywords and "Sharpness" in p.keywords


def test_identifiers_join_papers_whose_titles_differ(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps({"title": "Deep Nets, Preprint Title", "arxiv_id": "2401.00001"}) + "\n", "utf-8")
    b = tmp_path / "b.ris"
    b.write_text(
        "TY  - JOUR\nTI  - Deep Nets: The Journal Title\nUR  - https://arxiv.org/abs/2401.00001v3\n"
        "DO  - 10.1/J.1\nER  - \n",
        "utf-8",
    )
    c = tmp_path / "c.ris"
    c.write_text("TY  - JOUR\nTI  - A Third Name for It\nDO  - https://doi.org/10.1/j.1\nER  - \n", "utf-8")
    papers = load_corpus([a, b, c])
    assert len(papers) == 1
    assert papers[0].id == paper_id("Deep Nets, Preprint Title")  # the first seen keeps its id
    assert papers[0].sources == ["a.jsonl", "b.ris", "c.ris"]


def test_same_title_and_author_with_different_dois_stay_apart(tmp_path: Path) -> None:
    f = tmp_path / "two.ris"
    rec = "TY  - JOUR\nTI  - Erratum\nAU  - Smith, A.\nDO  - {}\nER  - \n"
    f.write_text(rec.format("10.1/one") + rec.format("10.1/two"), "utf-8")
    papers = load_corpus([f])
    assert [p.doi for p in papers] == ["10.1/one", "10.1/two"]
    assert [p.id for p in papers] == ["erratum", "erratum-2"]


def test_title_and_first_author_join_entries_without_ids(tmp_path: Path) -> None:
    f = tmp_path / "a.bib"
    f.write_text(
        "@article{x, title={Robust {Learning}}, author={Lee, K. and Park, J.}, year=2020}\n", "utf-8"
    )
    g = tmp_path / "b.ris"
    g.write_text(
        "TY  - JOUR\nTI  - Robust learning.\nAU  - Lee, Kim\nAB  - Longer abstract.\nER  - \n", "utf-8"
    )
    (p,) = load_corpus([f, g])
    assert (p.authors, p.abstract, p.year) == (["K. Lee", "J. Park"], "Longer abstract.", 2020)


def test_seed_ids_do_not_change_when_libraries_are_added() -> None:
    alone = {(p.title, p.id) for p in load_corpus([SEEDS])}
    mixed = load_corpus([SEEDS, FORMATS / "library.bib", FORMATS / "library.ris", FORMATS / "s2_papers.json"])
    seed_files = {p.name for p in SEEDS.iterdir()}
    kept = {(p.title, p.id) for p in mixed if set(p.sources) & seed_files}
    assert kept == alone
    again = [
        p.id
        for p in load_corpus(
            [SEEDS, FORMATS / "library.bib", FORMATS / "library.ris", FORMATS / "s2_papers.json"]
        )
    ]
    assert again == [p.id for p in mixed]  # stable across runs


def test_arxiv_doi_counts_as_arxiv_id() -> None:
    p = Paper(id="x", title="x", source="s", doi="10.48550/arxiv.2302.07011")
    assert ids_of(p) == {"arxiv": "2302.07011"}


def test_new_fields_leave_content_hash_and_chunk_metadata_alone() -> None:
    seed = next(p for p in load_corpus([SEEDS]) if p.has_abstract)
    richer = seed.model_copy(
        update={"doi": "10.1/x", "arxiv_id": "2302.07011", "pmid": "1", "keywords": ["k"], "url": "https://x"}
    )
    assert content_hash(richer) == content_hash(seed)
    assert chunk_metadata(richer) == chunk_metadata(seed)


def test_an_index_built_before_the_new_fields_re_embeds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_index import FakeEmbedder

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    settings = Settings()
    seeds = load_corpus([SEEDS])[:12]
    first = build_index(seeds, settings)
    # Same papers, now read from exports that carry DOIs, arXiv ids and keywords.
    richer = [p.model_copy(update={"doi": f"10.1/{i}", "keywords": ["x"]}) for i, p in enumerate(seeds)]
    again = build_index(richer, settings)
    assert first.embedded > 0 and (again.embedded, again.unchanged) == (0, 12)
