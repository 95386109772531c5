"""Citations out: papers as BibTeX, for the user's manuscript.

`bibtex(papers)` writes one entry per paper: the key the paper had in the user's own .bib (so their
``\\cite{…}`` keep working), else a stable key ``<first author's family name><year><first title word>``
(``andriushchenko2023modern``; ``b``, ``c``… appended when two papers would share one). LaTeX's special
characters are escaped (``& % $ # _ { } ~ ^ \\``); math written as ``$…$`` stays math; other text is
written as UTF-8 (biber and BibTeX 0.99d read it). Fields: title, author (``and``-joined), year, month,
journal/booktitle, doi, eprint + archivePrefix for arXiv, url, pmid, keywords, abstract. The output reads
back (rag.sources.bibtex) to the same titles, authors, years, venues, ids and abstracts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.types import Paper, fold

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SPECIAL_RE = re.compile(r"[\\{}&%$#_~^]|-(?=-)")
_MATH = re.compile(r"(\$[^$\n]+\$)")
_STOP = frozenset("a an the on of for in to and with from towards toward is are do does via by at".split())
_TYPES = frozenset(
    "article book booklet inbook incollection inproceedings manual mastersthesis misc phdthesis "
    "proceedings techreport unpublished".split()
)
_CONFERENCE = re.compile(r"conference|proceedings|workshop|symposium|neurips|icml|iclr|cvpr|acl\b", re.I)


def escape(text: str) -> str:
    """``50% of A&B`` → ``50\\% of A\\&B``; ``$\\ell_p$`` is kept as math; ``--`` stays two hyphens."""
    parts = _MATH.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
        else:
            out.append(_SPECIAL_RE.sub(lambda m: _SPECIAL.get(m.group(0), "-{}"), part))
    return "".join(out)


def _word(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text))


def cite_key(paper: Paper) -> str:
    """``andriushchenko2023modern``: first author's family name, year, first word of the title that is
    not a stop word (all folded to ASCII letters and digits)."""
    family = _word(paper.authors[0].split()[-1]) if paper.authors and paper.authors[0].split() else ""
    words = [_word(w) for w in paper.title.split()]
    first = next((w for w in words if w and w not in _STOP), "")
    return f"{family or 'anon'}{paper.year or ''}{first}"


def _entry_type(paper: Paper) -> str:
    if paper.kind and paper.kind.lower() in _TYPES:
        return paper.kind.lower()
    if paper.venue:
        return "inproceedings" if _CONFERENCE.search(paper.venue) else "article"
    return "misc"


def _fields(paper: Paper, kind: str) -> list[tuple[str, str]]:
    fields = [("title", escape(paper.title))]
    if paper.authors:
        fields.append(("author", " and ".join(escape(a) for a in paper.authors)))
    if paper.year is not None:
        fields.append(("year", str(paper.year)))
    month = re.match(r"^\d{4}-(\d{2})", paper.date or "")
    if month:
        fields.append(("month", str(int(month.group(1)))))
    if paper.venue:
        venue_field = {
            "inproceedings": "booktitle",
            "incollection": "booktitle",
            "phdthesis": "school",
            "mastersthesis": "school",
            "techreport": "institution",
        }.get(kind)
        fields.append(
            (venue_field or ("journal" if kind == "article" else "howpublished"), escape(paper.venue))
        )
    if paper.doi:
        fields.append(("doi", paper.doi))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archiveprefix", "arXiv")]
    if paper.url:
        fields.append(("url", paper.url.replace("{", "%7B").replace("}", "%7D")))
    if paper.pmid:
        fields.append(("pmid", paper.pmid))
    if paper.keywords:
        fields.append(("keywords", escape(", ".join(paper.keywords))))
    if paper.abstract.strip():
        fields.append(("abstract", escape(paper.abstract.strip())))
    return fields


def bibtex(papers: Iterable[Paper]) -> str:
    """The papers as a BibTeX file (see the module doc); ``""`` for no papers."""
    used: set[str] = set()
    entries = []
    for paper in papers:
        own = paper.extra.get("bibtex_key")
        base = own if isinstance(own, str) and re.fullmatch(r"[^\s,{}()=\"#%']+", own) else cite_key(paper)
        key, n = base, 1
        while key in used:
            n += 1
            key = base + "abcdefghijklmnopqrstuvwxyz"[n - 1] if n <= 26 else f"{base}-{n}"
        used.add(key)
        kind = _entry_type(paper)
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in _fields(paper, kind))
        entries.append(f"@{kind}{{{key},\n{body},\n}}\n")
    return "\n".join(entries)
