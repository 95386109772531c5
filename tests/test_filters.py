"""Filter coercion, question parsing and paper matching (no model, no index)."""

from __future__ import annotations

import pytest

from rag.errors import QueryError
from rag.filter_index import PaperFilter
from rag.filters import coerce_filters, merge_filters, parse_year
from rag.query_filters import AuthorLexicon, is_listing, parse_query
from rag.types import Filters, Paper


def _paper(pid: str, title: str, authors: list[str], year: int | None, **kw: object) -> Paper:
    return Paper(
        id=pid,
        title=title,
        authors=authors,
        year=year,
        source=str(kw.pop("source", "000_a.txt")),
        abstract=str(kw.pop("abstract", f"An abstract about {title.lower()}.")),
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def papers() -> dict[str, Paper]:
    items = [
        _paper(
            "ntk",
            "Neural Tangent Kernel",
            ["Arthur Jacot", "Franck Gabriel", "Clément Hongler"],
            2018,
            category="LG",
        ),
        _paper("hessian", "The asymptotic spectrum of the Hessian", ["Arthur Jacot", "Franck Gabriel"], 2019),
        _paper(
            "sam",
            "Towards understanding sharpness-aware minimization",
            ["Maksym Andriushchenko", "Nicolas Flammarion"],
            2022,
            source="001_b.txt",
            category="LG",
        ),
        _paper(
            "sgd",
            "SGD with large step sizes learns sparse features",
            ["Maksym Andriushchenko", "Aditya Varre", "Loucas Pillaud-Vivien", "Nicolas Flammarion"],
            2023,
            source="001_b.txt",
        ),
        _paper(
            "jb",
            "JailbreakBench",
            ["Patrick Chao", "Edoardo Debenedetti", "Nicolas Flammarion"],
            2024,
            source="001_b.txt",
            category="CR",
        ),
        _paper(
            "poster1",
            "Benign overfitting of two-layer networks",
            ["Taiji Suzuki", "René Vidal"],
            None,
            source="003_d.txt",
            kind="poster",
        ),
        _paper(
            "talk1",
            "Feature learning in two-layer networks",
            ["Murat Erdogdu"],
            None,
            source="003_d.txt",
            kind="talk",
        ),
        _paper(
            "profile", "Cross-Entropy Games", ["Arthur Renard"], 2021, extra={"profile": "Clément Hongler"}
        ),
        _paper(
            "gan",
            "Checkerboard artifacts of deconvolution",
            ["Ian Way", "Li Gan"],
            2020,
            abstract="The way the generator works: a GAN.",
        ),
    ]
    return {p.id: p for p in items}


@pytest.fixture(scope="module")
def lexicon(papers: dict[str, Paper]) -> AuthorLexicon:
    return AuthorLexicon.from_papers(papers.values())


@pytest.fixture(scope="module")
def pfilter(papers: dict[str, Paper]) -> PaperFilter:
    return PaperFilter.from_papers(papers)


# ------------------------------------------------------------------------------------------- coercion
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019", (2019, 2019)),
        ("2019-2021", (2019, 2021)),
        ("2019-", (2019, None)),
        ("-2021", (None, 2021)),
        (2020, (2020, 2020)),
        ("2019–2021", (2019, 2021)),
    ],
)
def test_parse_year(text: object, expected: tuple[int | None, int | None]) -> None:
    assert parse_year(text) == expected


@pytest.mark.parametrize("bad", ["2021-2019", "nineteen", "", "-", "20", True])
def test_parse_year_rejects(bad: object) -> None:
    with pytest.raises(QueryError):
        parse_year(bad)


def test_coerce_filters_from_dict() -> None:
    f = coerce_filters({"author": "Jacot", "year": "2019-", "kind": ["poster"], "source": "001"})
    assert f.authors == ["Jacot"] and f.year_min == 2019 and f.year_max is None
    assert f.kinds == ["poster"] and f.sources == ["001"]


def test_coerce_filters_unknown_name_says_which() -> None:
    with pytest.raises(QueryError, match="venue_x"):
        coerce_filters({"venue_x": "NeurIPS"})


def test_coerce_filters_impossible_range() -> None:
    with pytest.raises(QueryError, match="Impossible"):
        coerce_filters({"year_min": 2022, "year_max": 2020})
    with pytest.raises(QueryError):
        coerce_filters(Filters(year_min=2022, year_max=2020))


def test_coerce_filters_wrong_type() -> None:
    with pytest.raises(QueryError):
        coerce_filters({"author": 42})
    with pytest.raises(QueryError):
        coerce_filters("Jacot")  # type: ignore[arg-type]


def test_merge_explicit_wins_per_field() -> None:
    merged = merge_filters(Filters(authors=["Jacot"]), Filters(authors=["Flammarion"], year_min=2020))
    assert merged.authors == ["Jacot"] and merged.year_min == 2020


# ------------------------------------------------------------------------------------------- matching
@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ("Jacot", {"ntk", "hessian"}),
        ("arthur jacot", {"ntk", "hessian"}),
        ("A. Jacot", {"ntk", "hessian"}),
        ("clement hongler", {"ntk", "profile"}),
        ("HONGLER", {"ntk", "profile"}),
        ("Rene Vidal", {"poster1"}),
        ("Pillaud-Vivien", {"sgd"}),
        ("Hinton", set()),
    ],
)
def test_author_matching(pfilter: PaperFilter, author: str, expected: set[str]) -> None:
    assert pfilter.allowed(Filters(authors=[author])) == expected


def test_year_source_kind_category(pfilter: PaperFilter) -> None:
    assert pfilter.allowed(Filters(year_min=2022)) == {"sam", "sgd", "jb"}
    assert pfilter.allowed(Filters(year_max=2018)) == {"ntk"}
    assert pfilter.allowed(Filters(sources=["001"])) == {"sam", "sgd", "jb"}
    assert pfilter.allowed(Filters(sources=["003_d.txt"])) == {"poster1", "talk1"}
    assert pfilter.allowed(Filters(kinds=["Posters"])) == {"poster1"}
    assert pfilter.allowed(Filters(categories=["cr"])) == {"jb"}
    assert pfilter.allowed(Filters(authors=["Flammarion"], year_min=2023)) == {"sgd", "jb"}


def test_explain_empty_names_the_filter(pfilter: PaperFilter) -> None:
    assert "author Hinton" in pfilter.explain_empty(Filters(authors=["Hinton"], year_min=2020))
    text = pfilter.explain_empty(Filters(authors=["Jacot"], year_min=2023))
    assert "together" in text and "author Jacot alone matches 2" in text



# ------------------------------------------------------------------------------------- question parsing
def test_parse_author_and_year_from_question(lexicon: AuthorLexicon) -> None:
    q = parse_query("papers by Flammarion since 2022", lexicon)
    assert q.filters.authors == ["Flammarion"] and q.filters.year_min == 2022 and q.filters.year_max is None
    assert q.listing and "Flammarion" not in q.text and "2022" not in q.text


def test_parse_what_did_x_publish(lexicon: AuthorLexicon) -> None:
    q = parse_query("What did Arthur Jacot publish in 2019?", lexicon)
    assert q.filters.authors == ["Arthur Jacot"] and (q.filters.year_min, q.filters.year_max) == (2019, 2019)
    assert q.listing


def test_parse_keeps_topic_text(lexicon: AuthorLexicon) -> None:
    q = parse_query("Jacot's work on the neural tangent kernel", lexicon)
    assert q.filters.authors == ["Jacot"] and not q.listing
    assert "neural tangent kernel" in q.text and "Jacot" not in q.text


@pytest.mark.parametrize(
    "question",
    [
        "By the way, how do GAN generators make checkerboard artifacts?",
        "Which way do gradients flow?",
        "Does sharpness-aware minimization help?",
        "How does a GAN work?",
    ],
)
def test_no_false_authors(lexicon: AuthorLexicon, question: str) -> None:
    assert parse_query(question, lexicon).filters.authors == []


def test_unknown_author_is_not_a_filter(lexicon: AuthorLexicon) -> None:
    assert parse_query("papers by Geoffrey Hinton", lexicon).filters.is_empty()


@pytest.mark.parametrize(
    ("question", "years"),
    [
        ("results from 2019 to 2021", (2019, 2021)),
        ("between 2019 and 2021", (2019, 2021)),
        ("published before 2020", (None, 2019)),
        ("anything after 2021", (2022, None)),
        ("older than 2017", (None, 2016)),
        ("appeared in 2021 or 2022", (2021, 2022)),
        ("2020 or later", (2020, None)),
        ("until 2020", (None, 2020)),
    ],
)
def test_parse_years(lexicon: AuthorLexicon, question: str, years: tuple[int | None, int | None]) -> None:
    f = parse_query(question, lexicon).filters
    assert (f.year_min, f.year_max) == years


def test_parse_kind_and_category(lexicon: AuthorLexicon) -> None:
    q = parse_query("Which posters did Taiji Suzuki co-author?", lexicon)
    assert q.filters.kinds == ["poster"] and q.filters.authors == ["Taiji Suzuki"] and q.listing
    q = parse_query("Which papers are in the cryptography and security (CR) category?", lexicon)
    assert q.filters.categories == ["CR"]
    assert parse_query("Is CR a good idea?", lexicon).filters.categories == []
    assert parse_query("How do models talk to each other?", lexicon).filters.kinds == []


def test_plain_question_has_no_filters(lexicon: AuthorLexicon) -> None:
    q = parse_query("How do large step sizes in SGD learn sparse features?", lexicon)
    assert q.filters.is_empty() and not q.listing and q.text.startswith("How do large")


def test_is_listing() -> None:
    assert is_listing("Which papers were published?")
    assert not is_listing("Which papers study implicit bias?")


# --------------------------------------------------------------- affiliation, upvotes, author-count filters
@pytest.fixture(scope="module")
def meta_papers() -> dict[str, Paper]:
    items = [
        _paper(
            "eth1",
            "JailbreakBench",
            ["Patrick Chao"],
            2024,
            authors_truncated=True,
            affiliations=["eth-zurich", "princeton"],
        ),
        _paper(
            "eth2",
            "Competition report on backdoors",
            ["Javier Rando"],
            2024,
            authors_truncated=True,
            affiliations=["eth-zurich"],
        ),
        _paper(
            "msr",
            "SGD over diagonal linear networks",
            ["Mathieu Even"],
            2023,
            authors_truncated=True,
            affiliations=["microsoft-research"],
        ),
        _paper("d1", "Cut your losses", [], 2024, source="002_c.txt", n_authors=4, upvotes=4),
        _paper("d2", "TempSamp", [], 2025, source="002_c.txt", n_authors=7, upvotes=3),
        _paper("d3", "Two-pass softmax", [], 2020, source="002_c.txt", n_authors=2, upvotes=0),
        _paper("d4", "Beyond backpropagation", [], 2025, source="002_c.txt", n_authors=1, upvotes=1),
        _paper("t1", "A talk on feature learning", ["Murat Erdogdu"], None, source="003_d.txt", kind="talk"),
        _paper("p1", "Benign overfitting", ["Taiji Suzuki", "Princeton Smith"], None, source="003_d.txt"),
    ]
    return {p.id: p for p in items}


@pytest.mark.parametrize(
    ("question", "expected", "listing"),
    [
        ("Which papers list ETH Zurich as an affiliation?", {"eth1", "eth2"}, True),
        ("Which paper involves authors from Microsoft Research?", {"msr"}, True),
        ("papers from ETH Zürich on jailbreaks", {"eth1", "eth2"}, False),
        ("Which papers are from eth-zurich?", {"eth1", "eth2"}, True),
        ("Which entries received at least 3 upvotes?", {"d1", "d2"}, True),
        ("papers with more than 3 upvotes", {"d1"}, True),
        ("Which entries have a single author?", {"d4", "t1"}, True),
        ("single-authored papers", {"d4", "t1"}, True),
        ("papers with at least 4 authors", {"d1", "d2"}, True),
        ("papers with fewer than three authors", {"d3", "d4", "t1", "p1"}, True),
        ("Which papers have exactly 2 authors?", {"d3", "p1"}, True),
    ],
)
def test_parse_affiliation_upvotes_author_count(
    meta_papers: dict[str, Paper], question: str, expected: set[str], listing: bool
) -> None:
    lex = AuthorLexicon.from_papers(meta_papers.values())
    q = parse_query(question, lex)
    assert PaperFilter.from_papers(meta_papers).allowed(q.filters) == expected
    assert q.listing is listing


def test_count_and_affiliation_phrases_need_corpus_support(lexicon: AuthorLexicon) -> None:
    # the main fixture corpus has no upvotes and no affiliations: such phrases are not filters there
    assert parse_query("papers with at least 3 upvotes", lexicon).filters.upvotes_min is None
    assert parse_query("papers from ETH Zurich", lexicon).filters.affiliations == []
    # a one-word affiliation that is also an ordinary word of the corpus needs a cue ("from", "at")
    meta = [
        _paper(
            "a",
            "Princeton notes",
            ["Ann Bee"],
            2020,
            abstract="princeton princeton",
            affiliations=["princeton"],
        )
    ]
    lex = AuthorLexicon.from_papers(meta)
    assert parse_query("what is princeton about", lex).filters.affiliations == []
    assert parse_query("papers from Princeton", lex).filters.affiliations == ["princeton"]


def test_no_count_filter_from_ordinary_numbers(meta_papers: dict[str, Paper]) -> None:
    lex = AuthorLexicon.from_papers(meta_papers.values())
    for question in ("What did the two authors of TempSamp find?", "a two-layer network with 3 layers"):
        f = parse_query(question, lex).filters
        assert (f.n_authors_min, f.n_authors_max, f.upvotes_min) == (None, None, None)


def test_coerce_new_filters(meta_papers: dict[str, Paper]) -> None:
    f = coerce_filters({"affiliation": "ETH Zurich", "upvotes_min": "3", "n_authors": "2-"})
    assert (f.affiliations, f.upvotes_min, f.n_authors_min, f.n_authors_max) == (["ETH Zurich"], 3, 2, None)
    assert coerce_filters({"n_authors": 1}).n_authors_max == 1
    pf = PaperFilter.from_papers(meta_papers)
    assert pf.allowed(f) == set()  # no ETH paper has upvotes
    assert pf.allowed(coerce_filters({"upvotes_min": 3, "n_authors": "2-"})) == {"d1", "d2"}
    with pytest.raises(QueryError, match="whole number"):
        coerce_filters({"upvotes_min": "many"})
    with pytest.raises(QueryError, match="author-count range"):
        coerce_filters({"n_authors_min": 5, "n_authors_max": 2})
    merged = merge_filters(Filters(upvotes_min=5), Filters(upvotes_min=1, affiliations=["x"]))
    assert (merged.upvotes_min, merged.affiliations) == (5, ["x"])
    assert "affiliation: x" in merged.describe() and "upvotes: ≥ 5" in merged.describe()


def test_explain_empty_names_affiliation(meta_papers: dict[str, Paper]) -> None:
    pf = PaperFilter.from_papers(meta_papers)
    assert "affiliation MIT" in pf.explain_empty(Filters(affiliations=["MIT"]))


# ------------------------------------------------------------------------------------ joint authorship
@pytest.mark.parametrize(
    ("question", "together"),
    [
        ("List the papers co-authored by Arthur Jacot and Clément Hongler", True),
        ("What did Jacot and Hongler write together?", True),
        ("Papers by Maksym Andriushchenko, Aditya Varre and Nicolas Flammarion", True),
        ("Papers by Arthur Jacot or Clément Hongler", False),
        ("Which papers did Arthur Jacot write, and which did Nicolas Flammarion write?", False),
        ("papers by Flammarion since 2022", False),
    ],
)
def test_names_joined_by_and_ask_for_joint_papers(
    lexicon: AuthorLexicon, question: str, together: bool
) -> None:
    assert parse_query(question, lexicon).filters.authors_together is together


def test_joint_authorship_filter(pfilter: PaperFilter) -> None:
    both = Filters(authors=["Arthur Jacot", "Clément Hongler"], authors_together=True)
    assert pfilter.allowed(both) == {"ntk"}
    assert pfilter.allowed(both.model_copy(update={"authors_together": False})) == {
        "ntk",
        "hessian",
        "profile",
    }
    assert both.describe() == "authors: Arthur Jacot and Clément Hongler"
    assert "authors Arthur Jacot and Nicolas Flammarion" in pfilter.explain_empty(
        Filters(authors=["Arthur Jacot", "Nicolas Flammarion"], authors_together=True)
    )
    # explicit filters keep their own reading; the question's fills in only when none is given
    parsed = Filters(authors=["Jacot", "Hongler"], authors_together=True)
    assert merge_filters(Filters(authors=["Jacot", "Hongler"]), parsed).authors_together is False
    assert merge_filters(Filters(), parsed).authors_together is True


def _merged_papers() -> dict[str, Paper]:
    items = [
        _paper("both", "Sharpness and low-rank", ["Ann Bee"], 2023, sources=["001_a.txt", "003_b.txt"]),
        _paper("three", "Tangents", ["Cid Dee"], 2018, sources=["000_a.txt", "001_a.txt", "003_b.txt"]),
        _paper("one", "Edge of stability", ["Eve Fay"], 2022, source="003_b.txt", sources=["003_b.txt"]),
    ]
    return {p.id: p for p in items}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which papers appear on more than one seed page?", {"both", "three"}),
        ("Which papers are listed in several sources?", {"both", "three"}),
        ("papers found in both exports", {"both", "three"}),
        ("Which papers appear in at least 3 files?", {"three"}),
    ],
)
def test_parse_papers_listed_in_several_sources(question: str, expected: set[str]) -> None:
    papers = _merged_papers()
    q = parse_query(question, AuthorLexicon.from_papers(papers.values()))
    assert PaperFilter.from_papers(papers).allowed(q.filters) == expected
    assert q.listing


def test_several_sources_is_not_read_from_ordinary_questions() -> None:
    lex = AuthorLexicon.from_papers(_merged_papers().values())
    for question in ("Which papers study more than one task?", "models trained on several datasets"):
        assert parse_query(question, lex).filters.sources_min is None
    assert coerce_filters({"sources_min": 2}).sources_min == 2
    with pytest.raises(QueryError, match="sources_min"):
        coerce_filters({"sources_min": "many"})
