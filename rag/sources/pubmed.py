"""PubMed XML (``PubmedArticleSet`` from E-utilities efetch or a MEDLINE/baseline file), streamed.

Each ``PubmedArticle`` becomes a paper: ``ArticleTitle``, ``AuthorList`` (ForeName + LastName, or
CollectiveName), ``Abstract`` (a structured abstract keeps its section labels: "BACKGROUND: … METHODS:
…"), ``PubDate`` (Year/Month/Day or MedlineDate), ``Journal/Title``, ``PMID``, ``ArticleId`` doi/arxiv,
``KeywordList`` and MeSH headings. Parsed with defusedxml (rag.sources.xmlstream): entity bombs and
external entities are refused. An article without ArticleTitle is reported with its line and PMID.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from xml.etree.ElementTree import Element

from rag.errors import EntryParseError
from rag.sources.base import MONTHS, ParseResult
from rag.sources.records import Record, collect, guarded, iso_date, norm_arxiv, norm_doi, paper, year_of
from rag.sources.xmlstream import elements

NAME = "pubmed"


def sniff(head: str) -> bool:
    return "<PubmedArticleSet" in head or "<PubmedArticle>" in head


def _text(elem: Element | None) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def _abstract(article: Element) -> str:
    parts = []
    for node in article.findall("Abstract/AbstractText"):
        label = node.get("Label")
        text = _text(node)
        if text:
            parts.append(f"{label.upper()}: {text}" if label else text)
    return " ".join(parts)


def _authors(article: Element) -> tuple[list[str], bool]:
    names = []
    for a in article.findall("AuthorList/Author"):
        collective = _text(a.find("CollectiveName"))
        words = [
            _text(a.find("ForeName")) or _text(a.find("Initials")),
            _text(a.find("LastName")),
            _text(a.find("Suffix")),
        ]
        name = collective or " ".join(w for w in words if w)
        if name:
            names.append(name)
    author_list = article.find("AuthorList")
    return names, author_list is not None and author_list.get("CompleteYN") == "N"


def _date(article: Element) -> str | None:
    pub = article.find("Journal/JournalIssue/PubDate")
    if pub is None:
        pub = article.find("ArticleDate")
    if pub is None:
        return None
    medline = _text(pub.find("MedlineDate"))
    if medline:
        return iso_date(medline)
    month = _text(pub.find("Month"))
    month_n = MONTHS.get(month[:3].title()) if month and not month.isdigit() else month or None
    return iso_date(_text(pub.find("Year")), month_n, _text(pub.find("Day")) or None)


def _article(path: Path, line: int, elem: Element) -> Record:
    citation = elem.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    pmid = _text(citation.find("PMID")) if citation is not None else ""
    title = _text(article.find("ArticleTitle")) if article is not None else ""
    title = title or (_text(article.find("VernacularTitle")) if article is not None else "")
    if article is None or not title:
        return EntryParseError(
            path,
            f"PubmedArticle (PMID {pmid or '?'}) has no ArticleTitle; expected "
            "MedlineCitation/Article/ArticleTitle.",
            line,
        )
    ids = {i.get("IdType"): _text(i) for i in elem.findall("PubmedData/ArticleIdList/ArticleId")}
    doi = ids.get("doi") or next(
        (_text(e) for e in article.findall("ELocationID") if e.get("EIdType") == "doi"), None
    )
    keywords = [_text(k) for k in citation.findall("KeywordList/Keyword")] if citation is not None else []
    mesh = (
        [_text(m) for m in citation.findall("MeshHeadingList/MeshHeading/DescriptorName")]
        if (citation is not None)
        else []
    )
    authors, truncated = _authors(article)
    date = _date(article)
    return paper(
        path,
        line,
        # PubMed ends titles with "." and brackets translated ones: "[Lernraten …]."
        title=re.sub(r"^\[(.*)\]$", r"\1", title.removesuffix(".")),
        authors=authors,
        authors_truncated=truncated,
        abstract=_abstract(article),
        year=year_of(date),
        date=date,
        venue=_text(article.find("Journal/Title")) or _text(article.find("Journal/ISOAbbreviation")) or None,
        kind="article",
        doi=norm_doi(doi),
        arxiv_id=norm_arxiv(ids.get("arxiv")),
        pmid=pmid or None,
        keywords=[k for k in dict.fromkeys(keywords + mesh) if k],
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None,
    )


def records(path: Path) -> Iterator[Record]:
    for line, elem in elements(path, "PubmedArticle"):
        yield guarded(path, line, "PubmedArticle on line", partial(_article, path, line, elem))


def parse(path: Path) -> ParseResult:
    return collect(path, NAME, records(path))
