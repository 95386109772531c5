"""Reference-library readers: BibTeX, RIS, CSL-JSON, arXiv (Atom + snapshot), OpenAlex, Semantic Scholar,
PubMed. Each fixture (tests/fixtures/formats, written by us) carries the format's quirks and bad records."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest

from rag.errors import EntryParseError, SourceError, UnknownFormatError
from rag.sources import detect_format, expand_paths, parse_file, read_head
from rag.sources.openalex import rebuild_abstract
from rag.sources.records import norm_arxiv, norm_doi, person

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"
MODERN = "A Modern Look at the Relationship between Sharpness and Generalization"
MODERN_AUTHORS = [
    "Maksym Andriushchenko",
    "Francesco Croce",
    "Maximilian Müller",
    "Matthias Hein",
    "Nicolas Flammarion",
]


def problems(result: object) -> list[tuple[int | None, str]]:
    return [(p.line, p.detail) for p in result.problems]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("library.bib", "bibtex"),
        ("latin1.bib", "bibtex"),
        ("library.ris", "ris"),
        ("zotero.json", "csljson"),
        ("arxiv_query.atom", "arxiv"),
        ("arxiv-metadata-oai-snapshot.json", "arxiv-snapshot"),
        ("arxiv-snapshot.json.gz", "arxiv-snapshot"),
        ("openalex_works.json", "openalex"),
        ("openalex_works.jsonl", "openalex"),
        ("s2_papers.json", "s2"),
        ("pubmed.xml", "pubmed"),
    ],
)
def test_format_is_detected_by_content_not_name(name: str, fmt: str, tmp_path: Path) -> None:
    assert parse_file(FORMATS / name).format == fmt
    renamed = tmp_path / "export.txt"  # the extension is no part of the decision
    shutil.copy(FORMATS / name, renamed)
    assert parse_file(renamed).format == fmt
    if not name.endswith(".gz"):
        assert detect_format((FORMATS / name).read_bytes().decode("utf-8", "replace")) == fmt


def test_bibtex_latex_strings_crossref_names_and_bad_entries() -> None:
    r = parse_file(FORMATS / "library.bib")
    by_key = {p.extra["bibtex_key"]: p for p in r.papers}
    assert list(by_key) == ["andriushchenko2023modern", "Mueller2021", "ford", "thesis", "upper"]
    modern = by_key["andriushchenko2023modern"]
    assert (modern.title, modern.authors, modern.year, modern.date) == (
        MODERN,
        MODERN_AUTHORS,
        2023,
        "2023-07",
    )
    assert modern.venue == "International Conference on Machine Learning"  # @string macro
    assert (modern.arxiv_id, modern.keywords) == (
        "2302.07011",
        ["sharpness", "generalization", "flat minima"],
    )
    m = by_key["Mueller2021"]
    assert m.title == "BERT & the Müller–Ng Effect on $\\ell_\\infty$ Robustness"  # math kept, braces gone
    assert m.authors == ["Jörg Müller", "Anna van der Berg", "Wei Li", "The RobustBench Consortium"]
    assert m.abstract == "We show that $O(n^2)$ queries suffice in 50% of cases—see Fig. 2."
    assert (m.doi, m.url) == ("10.5555/jmlr.2021.abc", "https://example.org/paper%20one_v2.pdf")
    assert (m.venue, m.date, m.kind) == ("Journal of Machine Learning Research", "2021-03", "article")
    ford = by_key["ford"]  # crossref fills venue and year; the proceedings entry is no paper itself
    assert (ford.authors, ford.venue, ford.year) == (
        ["Henry Ford Jr.", "María de la Cruz"],
        "Proceedings of the Workshop on Old Ideas",
        2019,
    )
    assert by_key["thesis"].title == "On Özgür's Lemma and Other Ètudes"
    upper = by_key["upper"]
    assert (upper.authors, upper.authors_truncated, upper.doi) == (
        ["A. B. Smith"],
        True,
        "10.1038/s41586-024-0001-x",
    )
    assert [p.line for p in r.papers] == [5, 16, 39, 52, 60]
    assert [(line, type(p).__name__) for p, (line, _) in zip(r.problems, problems(r), strict=True)] == [
        (28, "EntryParseError"),
        (33, "EntryParseError"),
    ]
    assert "'ghost' has no title" in r.problems[0].detail
    assert "'broken'" in r.problems[1].detail and "expected a matching '}'" in r.problems[1].detail


def test_latin1_bib_loads_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        r = parse_file(FORMATS / "latin1.bib")
    assert [(p.title, p.authors) for p in r.papers] == [
        ("Café Learning", ["Jürgen Müller"]),
        ("Plain Title", ["R. Roe"]),
    ]
    assert not r.problems
    assert "latin1.bib:2: not UTF-8" in caplog.text and "Latin-1" in caplog.text


def test_ris_records_and_unclosed_or_untyped_ones() -> None:
    r = parse_file(FORMATS / "library.ris")
    titles = [p.title for p in r.papers]
    assert titles == [
        "Sharpness-Aware Minimization Leads to Low-Rank Features",
        "Understanding and Improving Fast Adversarial Training",
        "Blood Pressure and Gradient Norms: A Cohort Study",
        "Deep Learning",
    ]
    sam, fast, blood, book = r.papers
    assert sam.authors == ["Maksym Andriushchenko", "Dara Bahri", "Hossein Mobahi", "Nicolas Flammarion"]
    assert (sam.date, sam.arxiv_id, sam.keywords) == (
        "2023-05-29",
        "2305.16292",
        ["sharpness", "low-rank features"],
    )
    assert sam.abstract.endswith(
        "training loss. We show that SAM reduces the feature rank."
    )  # continuation line
    assert (fast.year, fast.venue, fast.abstract[:20]) == (
        2020,
        "NeurIPS",
        "A recent line of wor",
    )  # Y1, T2, N2
    assert (blood.pmid, blood.doi, blood.authors) == (
        "31234567",
        "10.1000/jim.2019.7",
        ["José García-López", "Siobhán O'Brien"],
    )
    assert (book.kind, book.year, book.line) == ("book", 2016, 46)
    assert [line for line, _ in problems(r)] == [37, 42, 54]
    assert "expected a TI or T1" in r.problems[0].detail
    assert "expected an 'ER  -' line" in r.problems[1].detail
    assert "expected 'TY  -'" in r.problems[2].detail


def test_csl_json_items() -> None:
    r = parse_file(FORMATS / "zotero.json")
    modern, consortium, raw = r.papers
    assert (modern.title, modern.authors, modern.date) == (MODERN, MODERN_AUTHORS, "2023-07-03")
    assert modern.venue == "Proceedings of the 40th International Conference on Machine Learning"
    assert consortium.authors == ["The RobustBench Consortium", "Anna van der Berg"]  # literal + particle
    assert (consortium.doi, consortium.year) == ("10.5555/jmlr.2021.abc", 2021)
    assert (raw.year, raw.extra) == (2012, {"csl_id": "item3"})
    assert [line for line, _ in problems(r)] == [4, 5]
    assert all('expected a non-empty "title"' in d for _, d in problems(r))


def test_arxiv_atom_feed() -> None:
    r = parse_file(FORMATS / "arxiv_query.atom")
    modern, old = r.papers
    assert (modern.title, modern.authors, modern.date) == (MODERN, MODERN_AUTHORS, "2023-02-14")
    assert (modern.arxiv_id, modern.category, modern.keywords) == (
        "2302.07011",
        "cs.LG",
        ["cs.LG", "stat.ML"],
    )
    assert modern.abstract.startswith(
        "Sharpness of minima is a promising quantity that can correlate with gen"
    )
    assert (old.arxiv_id, old.doi, old.venue) == (
        "hep-th/9901001",
        "10.1103/physrevd.99.000001",
        "Phys. Rev. D 99 (1999)",
    )
    assert old.title == "An Old-Style Identifier with $\\mathcal{N}=4$ Symmetry"
    assert problems(r) == [(38, "Atom <entry> has no <title>; expected an arXiv API entry.")]


@pytest.mark.parametrize("name", ["arxiv-metadata-oai-snapshot.json", "arxiv-snapshot.json.gz"])
def test_arxiv_snapshot_plain_and_gzip(name: str) -> None:
    r = parse_file(FORMATS / name)
    modern, old = r.papers
    assert (modern.title, modern.authors, modern.date, modern.year) == (
        MODERN,
        MODERN_AUTHORS,
        "2023-02-14",
        2023,
    )
    assert (modern.arxiv_id, modern.url) == ("2302.07011", "https://arxiv.org/abs/2302.07011")
    assert (old.arxiv_id, old.authors, old.doi) == (
        "math/0501001",
        ["J. Smith", "K. Jones Jr"],
        "10.1000/old.1",
    )
    if name.endswith(".json"):
        assert [line for line, _ in problems(r)] == [3, 4]
        assert "not valid JSON" in r.problems[0].detail and 'no "title"' in r.problems[1].detail


@pytest.mark.parametrize("name", ["openalex_works.json", "openalex_works.jsonl"])
def test_openalex_works_page_and_lines(name: str) -> None:
    r = parse_file(FORMATS / name)
    modern, gapped = r.papers
    assert (modern.title, modern.authors, modern.year) == (MODERN, MODERN_AUTHORS, 2023)
    assert modern.abstract.startswith("Sharpness of minima is a promising quantity that can correlate")
    assert modern.abstract.endswith("not invariant under reparametrizations of neural networks.")
    assert (modern.doi, modern.arxiv_id, modern.extra["openalex_id"]) == (
        "10.48550/arxiv.2302.07011",
        "2302.07011",
        "W4321000001",
    )
    assert (gapped.abstract, gapped.pmid) == ("Words are … missing here.", "32000002")
    assert problems(r)[0][0] == 2 and "gaps or clashes at word position(s) 2" in problems(r)[0][1]
    if name.endswith(".json"):
        assert problems(r)[1] == (3, 'work W2000000003 (record 3) has no "title".')


def test_inverted_index_rebuild_reports_gaps_and_clashes() -> None:
    assert rebuild_abstract({"b": [1], "a": [0, 2]}) == ("a b a", [])
    assert rebuild_abstract({"a": [0], "c": [3]}) == ("a … … c", [1, 2])
    assert rebuild_abstract({"a": [0], "b": [0, 1]})[1] == [0]


def test_semantic_scholar_page() -> None:
    r = parse_file(FORMATS / "s2_papers.json")
    sam, blood = r.papers
    assert (sam.arxiv_id, sam.date, sam.venue, sam.extra) == (
        "2305.16292",
        "2023-05-26",
        "Neural Information Processing Systems",
        {"s2_id": "a1b2c3"},
    )
    assert sam.authors == ["Maksym Andriushchenko", "Dara Bahri", "H. Mobahi", "Nicolas Flammarion"]
    assert (blood.doi, blood.pmid, blood.venue, blood.abstract) == (
        "10.1000/jim.2019.7",
        "31234567",
        "Journal of Imaginary Medicine",
        "",
    )
    assert [line for line, _ in problems(r)] == [3, 4, 5]
    assert "field 'year'" in r.problems[2].detail


def test_pubmed_structured_abstract_and_missing_title() -> None:
    r = parse_file(FORMATS / "pubmed.xml")
    blood, elderly, modern = r.papers
    assert blood.title == "Blood pressure and gradient norms: a cohort study"
    assert blood.abstract == (
        "BACKGROUND: Gradient norms were never measured in vivo. METHODS: We followed 120 optimisers for 3 "
        "epochs. RESULTS: Norms rose by 12%."
    )
    assert blood.authors == ["José García-López", "Siobhán O'Brien", "Imaginary Cohort Consortium"]
    assert (blood.pmid, blood.doi, blood.date, blood.line) == (
        "31234567",
        "10.1000/jim.2019.7",
        "2019-06-07",
        4,
    )
    assert blood.keywords == ["gradients", "Blood Pressure"]
    assert (elderly.title, elderly.year, elderly.authors_truncated) == (
        "Learning rates in the elderly optimiser",
        2018,
        True,
    )
    assert (modern.arxiv_id, modern.date) == ("2302.07011", "2023-02")
    assert [line for line, _ in problems(r)] == [55]
    assert "(PMID 29999999) has no ArticleTitle; expected MedlineCitation/Article" in r.problems[0].detail


@pytest.mark.parametrize("name", ["bomb.xml", "xxe.xml"])
def test_hostile_xml_is_refused_without_expanding(name: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_file(FORMATS / name)
    assert "refused" in str(info.value) and "EntitiesForbidden" in str(info.value)


def test_truncated_xml_keeps_the_records_before_the_break(tmp_path: Path) -> None:
    text = (FORMATS / "pubmed.xml").read_text(encoding="utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(
        text[: text.index("<PubmedArticle>", text.index("30000001"))] + "<PubmedArticle><Medl", "utf-8"
    )
    r = parse_file(cut)
    assert [p.pmid for p in r.papers] == ["31234567", "30000001"]
    assert "not well-formed XML" in r.problems[-1].detail


def test_unknown_format_names_the_formats_tried(tmp_path: Path) -> None:
    odd = tmp_path / "odd.json"
    odd.write_text('[{"name": "not a paper"}]\n', encoding="utf-8")
    with pytest.raises(UnknownFormatError) as info:
        parse_file(odd)
    for fmt in ("BibTeX", "RIS", "CSL-JSON", "arXiv", "OpenAlex", "Semantic Scholar", "PubMed XML"):
        assert fmt in str(info.value)


def test_head_of_a_gzip_file_is_its_text() -> None:
    head = read_head(FORMATS / "arxiv-snapshot.json.gz")
    assert head.startswith('{"id": "2302.07011"')
    with gzip.open(FORMATS / "arxiv-snapshot.json.gz", "rt") as fh:
        assert fh.read().startswith(head[:100])


def test_expand_paths_globs_folders_and_files(tmp_path: Path) -> None:
    files = expand_paths([FORMATS / "*.bib", FORMATS / "library.ris", FORMATS / "library.bib"])
    assert [f.name for f in files] == ["latin1.bib", "library.bib", "library.ris"]  # no file twice
    with pytest.raises(SourceError, match="matches no file"):
        expand_paths([tmp_path / "*.nothing"])


@pytest.mark.parametrize(
    ("raw", "doi"),
    [
        ("https://doi.org/10.1/ABC", "10.1/abc"),
        ("doi:10.5/X.Y", "10.5/x.y"),
        ("not a doi", None),
        (None, None),
    ],
)
def test_norm_doi(raw: str | None, doi: str | None) -> None:
    assert norm_doi(raw) == doi


@pytest.mark.parametrize(
    ("raw", "arxiv"),
    [
        ("arXiv:2301.01234v2", "2301.01234"),
        ("https://arxiv.org/abs/hep-th/9901001v1", "hep-th/9901001"),
        ("10.48550/arXiv.2302.07011", "2302.07011"),
        ("https://arxiv.org/pdf/2302.07011v1.pdf", "2302.07011"),
        ("https://example.org/2302.07011", None),
    ],
)
def test_norm_arxiv(raw: str, arxiv: str | None) -> None:
    assert norm_arxiv(raw) == arxiv


def test_person_names() -> None:
    assert person("Müller, Jörg") == "Jörg Müller"
    assert person("Ford, Jr., Henry") == "Henry Ford Jr."
    assert person("  Ada   Lovelace ") == "Ada Lovelace"


def test_bad_records_never_hide_good_ones() -> None:
    for name in ("library.bib", "library.ris", "zotero.json", "s2_papers.json", "pubmed.xml"):
        r = parse_file(FORMATS / name)
        assert r.papers and r.problems
        assert all(isinstance(p, EntryParseError) and p.path.endswith(name) and p.line for p in r.problems)
