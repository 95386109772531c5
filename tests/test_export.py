"""Citations out: rag.export.bibtex, its round trip through our BibTeX reader, Answer.bibtex and
`rag ask --bib` (the scripted fake answer stream of the UI tests; no index, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_fakes import PAPERS, FakeStream, patch_pipeline

from rag.cli import main
from rag.corpus import load_corpus
from rag.export import bibtex, cite_key, escape
from rag.sources import parse_file
from rag.types import Answer, Citation, Paper

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"
FIELDS = ("title", "authors", "year", "venue", "doi", "arxiv_id", "pmid", "abstract", "keywords", "url")


def test_every_fixture_paper_round_trips_through_bibtex(tmp_path: Path) -> None:
    papers = load_corpus([FORMATS])  # all formats, merged papers included
    out = tmp_path / "out.bib"
    out.write_text(bibtex(papers), encoding="utf-8")
    back = parse_file(out)
    assert not back.problems
    assert len(back.papers) == len(papers) > 10
    for a, b in zip(papers, back.papers, strict=True):
        assert {f: getattr(b, f) for f in FIELDS} == {f: getattr(a, f) for f in FIELDS}


def test_specials_are_escaped_and_math_is_kept(tmp_path: Path) -> None:
    p = Paper(
        id="x",
        title="50% of A&B_c use $\\ell_\\infty$ -- #1 {really} ~ ^ \\ too",
        authors=["Zoë d'Arc"],
        source="s",
        year=2020,
    )
    text = bibtex([p])
    assert "50\\% of A\\&B\\_c use $\\ell_\\infty$ -{}- \\#1 \\{really\\}" in text
    out = tmp_path / "x.bib"
    out.write_text(text, encoding="utf-8")
    assert parse_file(out).papers[0].title == p.title
    assert escape("$a$ & $b$") == "$a$ \\& $b$"


def test_keys_are_stable_readable_and_unique() -> None:
    p = Paper(
        id="x",
        title="A Modern Look at the Relationship between Sharpness and Generalization",
        authors=["Maksym Andriushchenko", "Francesco Croce"],
        year=2023,
        source="s",
    )
    assert cite_key(p) == "andriushchenko2023modern"
    q = p.model_copy(update={"id": "y", "authors": ["Jörg Müller"], "title": "The Über Paper"})
    assert cite_key(q) == "muller2023uber"
    text = bibtex([p, p.model_copy(update={"id": "z"}), q])
    keys = [line.split("{", 1)[1].rstrip(",") for line in text.splitlines() if line.startswith("@")]
    assert keys == ["andriushchenko2023modern", "andriushchenko2023modernb", "muller2023uber"]
    assert bibtex([p]) == bibtex([p])  # same input, same output


def test_a_paper_from_the_users_bib_keeps_its_key() -> None:
    papers = parse_file(FORMATS / "library.bib").papers
    text = bibtex(papers)
    assert "@article{Mueller2021," in text and "@incollection{ford," in text
    assert "eprint = {2302.07011},\n  archiveprefix = {arXiv}" in text
    assert "doi = {10.5555/jmlr.2021.abc}" in text


def test_answer_bibtex_has_the_cited_papers_once_in_order() -> None:
    a, b, c = PAPERS
    answer = Answer(
        question="q",
        citations=[
            Citation(number=2, paper=b),
            Citation(number=1, paper=c),
            Citation(number=3, paper=b),
        ],
    )
    assert [p.id for p in answer.cited_papers()] == [c.id, b.id]
    text = answer.bibtex()
    assert text.count("\n@") + text.startswith("@") == 2
    assert text.index(escape(c.title)) < text.index(escape(b.title))
    assert Answer(question="q").bibtex() == ""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeStream:
    return patch_pipeline(monkeypatch)


def test_ask_bib_prints_only_the_bibtex_of_the_cited_papers(
    fake: FakeStream, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ask", "--bib", "Which papers study jailbreaking?", "--model", "fake/list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("@") and out.count("\n@") + 1 == len(PAPERS)
    bib = tmp_path / "refs.bib"
    bib.write_text(out, encoding="utf-8")
    assert [p.title for p in parse_file(bib).papers] == [p.title for p in PAPERS]
    assert main(["ask", "--bib", "anything", "--model", "fake/abstain"]) == 0
    assert capsys.readouterr().out == "% no papers cited\n"
    assert main(["ask", "--bib", "anything", "--model", "fake/model-error"]) == 2
