"""Typed records that travel between the steps: Paper → Chunk → Hit → Citation → Answer."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def fold(text: str) -> str:
    """Lower-case, accent-free, whitespace-collapsed form used for matching titles and names."""
    if text.isascii():  # the same result, without decomposing (a large arXiv snapshot is mostly ASCII)
        return " ".join(text.split()).casefold()
    stripped = unicodedata.normalize("NFKD", text).translate(combining_marks())
    return re.sub(r"\s+", " ", stripped).strip().casefold()


@functools.lru_cache(maxsize=1)
def combining_marks() -> dict[int, None]:
    """Every combining code point → None, for ``str.translate``: one C pass instead of a Python test per
    character (fold's own loop was most of building the query lexicon: 20.8M characters at 30k papers)."""
    return {c: None for c in range(0x110000) if unicodedata.combining(chr(c))}


_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# An ASCII title's slug in one pass: letters lower-cased, digits kept, every other byte a space.
_SLUG_BYTES = bytes(
    c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or 48 <= c <= 57 else 32 for c in range(256)
)


def paper_id(title: str) -> str:
    """Stable, readable id from a title: the folded title as a slug, at most 64 characters.

    The same title on two pages gives the same id, which is what de-duplication keys on.
    """
    if title.isascii():  # the same slug: the runs of [a-z0-9] of the lower-cased title, joined by "-"
        slug = "-".join(title.encode().translate(_SLUG_BYTES).decode().split())
    else:
        slug = _NOT_SLUG.sub("-", fold(title)).strip("-")
    if len(slug) > 64:
        slug = slug[:64].rsplit("-", 1)[0]
    return slug or "untitled"


class Paper(Record):
    id: str = Field(description="Stable id: title slug for seed pages, the `_id` for BEIR.")
    title: str
    authors: list[str] = Field(default_factory=list, description="Full names in page order.")
    authors_truncated: bool = Field(False, description="The page lists only some authors ('et al.').")
    n_authors: int | None = Field(None, description="Author count when the page gives it.")
    abstract: str = ""
    year: int | None = None
    date: str | None = Field(None, description="ISO date when the page gives a full date, else raw text.")
    category: str | None = Field(None, description="Subject code, e.g. LG, ML, AI.")
    source: str = Field(description="File name of the page the paper came from (first one if merged).")
    sources: list[str] = Field(default_factory=list, description="Every page that lists the paper.")
    kind: str | None = Field(None, description="paper, poster, oral, talk, …")
    venue: str | None = None
    affiliations: list[str] = Field(default_factory=list)
    code_available: bool | None = None
    upvotes: int | None = None
    line: int | None = Field(None, description="Line in `source` where the entry starts.")
    doi: str | None = Field(None, description="DOI, lower-case, without a URL prefix: 10.1234/abc.")
    arxiv_id: str | None = Field(None, description="arXiv id without version: 2301.01234, hep-th/9901001.")
    pmid: str | None = Field(None, description="PubMed id.")
    keywords: list[str] = Field(default_factory=list, description="Keywords or subject categories.")
    url: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Any other field the page carries.")

    @property
    def has_abstract(self) -> bool:
        return bool(self.abstract.strip())

    def author_line(self, limit: int = 4) -> str:
        names = self.authors[:limit]
        more = len(self.authors) > limit or self.authors_truncated
        text = ", ".join(names) + (" et al." if more else "")
        if not names and self.n_authors:
            text = f"{self.n_authors} authors"
        return text


class Chunk(Record):
    id: str = Field(description="`<paper id>#<n>`")
    paper_id: str
    n: int
    text: str = Field(description="Text that is embedded: title as context, then the chunk's sentences.")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Filters(Record):
    """Metadata filters. Empty fields do not filter."""

    authors: list[str] = Field(default_factory=list, description="Full or family names; any may match.")
    authors_together: bool = Field(
        False, description="Every name in `authors` must be on the paper (joint work), not any one of them."
    )
    year_min: int | None = None
    year_max: int | None = None
    sources: list[str] = Field(default_factory=list, description="Source page file names (or prefixes).")
    categories: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    affiliations: list[str] = Field(
        default_factory=list, description="Affiliations ('ETH Zurich' or 'eth-zurich'); any may match."
    )
    upvotes_min: int | None = Field(None, description="At least this many upvotes.")
    n_authors_min: int | None = Field(None, description="At least this many authors (count known).")
    n_authors_max: int | None = Field(None, description="At most this many authors (count known).")
    sources_min: int | None = Field(
        None, description="Listed in at least this many source files (a paper merged from several)."
    )

    def is_empty(self) -> bool:
        return not (
            self.authors or self.sources or self.categories or self.kinds or self.affiliations
            or self.year_min is not None or self.year_max is not None or self.upvotes_min is not None
            or self.n_authors_min is not None or self.n_authors_max is not None
            or self.sources_min is not None
        )

    def describe(self) -> str:
        parts: list[str] = []
        if self.authors:
            together = self.authors_together and len(self.authors) > 1
            parts.append(
                "authors: " + " and ".join(self.authors)
                if together
                else "author: " + " or ".join(self.authors)
            )
        if self.year_min is not None and self.year_max is not None and self.year_min == self.year_max:
            parts.append(f"year: {self.year_min}")
        elif self.year_min is not None or self.year_max is not None:
            lo = self.year_min if self.year_min is not None else "…"
            hi = self.year_max if self.year_max is not None else "…"
            parts.append(f"years: {lo}–{hi}")
        if self.sources:
            parts.append("source: " + " or ".join(self.sources))
        if self.categories:
            parts.append("category: " + " or ".join(self.categories))
        if self.kinds:
            parts.append("kind: " + " or ".join(self.kinds))
        if self.affiliations:
            parts.append("affiliation: " + " or ".join(self.affiliations))
        if self.upvotes_min is not None:
            parts.append(f"upvotes: ≥ {self.upvotes_min}")
        n_lo, n_hi = self.n_authors_min, self.n_authors_max
        if n_lo is not None and n_lo == n_hi:
            parts.append(f"authors: {n_lo}")
        elif n_lo is not None or n_hi is not None:
            rng = f"≥ {n_lo}" if n_hi is None else f"≤ {n_hi}" if n_lo is None else f"{n_lo}–{n_hi}"
            parts.append("authors: " + rng)
        if self.sources_min is not None:
            parts.append(f"sources: ≥ {self.sources_min}")
        return "; ".join(parts) if parts else "none"


class Hit(Record):
    paper: Paper
    score: float = Field(description="Fused score (higher is better).")
    text: str = Field("", description="Best-matching chunk text.")
    chunk_id: str | None = None
    retrievers: list[str] = Field(default_factory=list, description="Which retrievers found it: dense, bm25.")
    ranks: dict[str, int] = Field(default_factory=dict, description="1-based rank in each retriever.")
    relevance: float | None = Field(None, description="Calibrated relevance of this hit, 0..1.")
    confirmed: bool = Field(
        False, description="Retrieval scored it low, but the model judged it relevant (rag.confirm)."
    )


class Hits(list[Hit]):
    """What `search` returns: the hits, best first, plus how they were obtained.

    A plain list of `Hit` with attributes: the filter actually applied, whether part of it was read from
    the question, a note when the result is empty or unreliable, and whether the corpus seems to answer.
    """

    def __init__(
        self,
        hits: list[Hit] | None = None,
        *,
        query: str = "",
        filters: Filters | None = None,
        filters_from_query: bool = False,
        note: str | None = None,
        good_match: bool = True,
        seconds: float = 0.0,
        total: int | None = None,
        named: bool = False,
    ) -> None:
        super().__init__(hits or [])
        self.query = query
        self.filters = filters or Filters()
        self.filters_from_query = filters_from_query
        self.note = note
        self.good_match = good_match
        self.seconds = seconds
        self.total = total
        self.named = named
        """The question names the top hit (a rare term of its title: "What does RobustBench measure?")."""

    def head(self, k: int) -> Hits:
        """The first ``k`` hits, with the same attributes."""
        return self.replaced(list(self)[:k])

    _ATTRIBUTES: ClassVar[tuple[str, ...]] = (
        "query", "filters", "filters_from_query", "note", "good_match", "seconds", "total", "named",
    )
    """How a result was obtained, beside its hits: what `replaced` carries over and `to_json` writes."""

    def _attributes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._ATTRIBUTES}

    def replaced(self, hits: list[Hit], **changes: Any) -> Hits:
        """``hits`` with this result's attributes, except those given in ``changes``."""
        return Hits(hits, **{**self._attributes(), **changes})

    def to_json(self) -> dict[str, Any]:
        """The hits and their attributes as JSON-ready data (:meth:`from_json` reads it back)."""
        return {
            "hits": [hit.model_dump(mode="json") for hit in self],
            **self._attributes(),
            "filters": self.filters.model_dump(mode="json"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hits:
        fields = {key: data[key] for key in cls._ATTRIBUTES if key in data and key != "filters"}
        hits = [Hit.model_validate(hit) for hit in data.get("hits", [])]
        return cls(hits, filters=Filters.model_validate(data.get("filters") or {}), **fields)
        """How many papers the filter selects (None without a filter); may exceed ``len(self)``."""


class Citation(Record):
    number: int = Field(description="The [n] shown in the answer text.")
    paper: Paper
    sentences: list[str] = Field(default_factory=list, description="Answer sentences this paper supports.")
    evidence: str = Field("", description="The abstract sentence that best supports them.")
    support: float = Field(0.0, description="Support score of the evidence, 0..1.")
    repaired: bool = Field(False, description="The model cited another paper; the pipeline re-pointed it.")
    flagged: bool = Field(False, description="No retrieved abstract clearly supports the sentence.")
    added: bool = Field(
        False, description="The model left the sentence uncited; the pipeline added this supporting paper."
    )


AnswerKind = Literal["fact", "list", "claim"]
"""The shape of an answer, decided by the pipeline (:mod:`rag.shapes`), never by the model."""


class ListItem(Record):
    """One member of a list answer: a line written by the pipeline, verified by construction."""

    number: int = Field(description="The [n] of this paper in the answer text (same as its Citation).")
    paper: Paper
    evidence: str = Field(
        "", description="The abstract sentence most relevant to the question, verbatim ('' if none)."
    )
    line: str = Field(description="The line as shown: [n] Title (First author et al., year) — evidence.")


VerdictLabel = Literal["SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"]


class Verdict(Record):
    """What one examined paper says about a claim (:mod:`rag.claims`)."""

    paper: Paper
    label: VerdictLabel
    rationale: list[str] = Field(
        default_factory=list, description="The abstract sentences that decide it, verbatim ([] for NEI)."
    )
    sentence_ids: list[int] = Field(
        default_factory=list, description="0-based positions of the rationale sentences in the abstract."
    )
    confidence: float = Field(0.0, description="0..1: the paper's relevance, lowered for an unclean reply.")
    relevance: float = Field(0.0, description="Calibrated relevance of the paper to the claim, 0..1.")
    reply: str = Field("", description="The model's reply as given (for debugging a verdict).")


class ClaimCheck(Record):
    """The verdicts on a claim: one per examined paper, best first, and a one-line summary."""

    claim: str
    verdicts: list[Verdict] = Field(default_factory=list)
    overall: str = Field("", description='Summary, e.g. "2 papers support, 1 contradicts".')
    addressed: bool = Field(False, description="Some retrieved paper is relevant enough to be examined.")
    hits: list[Hit] = Field(default_factory=list)
    model: str = ""
    error: str | None = Field(None, description="What went wrong with the model call, and what to do.")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds: retrieve, verdicts, total.")


class Answer(Record):
    question: str
    kind: AnswerKind = Field("fact", description="fact (prose), list (one line per paper) or claim.")
    text: str = Field("", description="The final answer; citations numbered by first appearance.")
    raw_text: str = Field("", description="The model's text as streamed, before citations were checked.")
    citations: list[Citation] = Field(default_factory=list)
    abstained: bool = False
    extractive: bool = Field(
        False, description="Quoted abstract sentences, verbatim: the model declined or was unverified."
    )
    items: list[ListItem] = Field(default_factory=list, description="List answers: the members, in order.")
    verdicts: list[Verdict] = Field(
        default_factory=list, description="Claim answers: one verdict per examined paper."
    )
    total: int | None = Field(
        None, description="List answers: how many papers the set has (more than len(items) when capped)."
    )
    lead: str = Field("", description="List answers: the model's checked lead sentence ('' if none).")
    hits: list[Hit] = Field(default_factory=list)
    filters: Filters = Field(default_factory=Filters)
    model: str = ""
    error: str | None = Field(None, description="What went wrong with the model call, and what to do.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, float] = Field(
        default_factory=dict, description="Seconds: retrieve, first_token, generate, total."
    )

    def cited_papers(self) -> list[Paper]:
        """The papers the answer cites, in citation order (a list answer: its members), each once."""
        papers = [c.paper for c in sorted(self.citations, key=lambda c: c.number)]
        papers += [item.paper for item in self.items]
        return list({p.id: p for p in papers}.values())

    def bibtex(self) -> str:
        """BibTeX entries of the cited papers (rag.export.bibtex), ``""`` when nothing is cited."""
        from rag.export import bibtex

        return bibtex(self.cited_papers())


class IndexStats(Record):
    papers: int = 0
    chunks: int = 0
    embedded: int = Field(0, description="Chunks embedded in this run.")
    unchanged: int = Field(0, description="Papers whose vectors were reused.")
    removed: int = Field(0, description="Papers deleted from the index.")
    seconds: float = 0.0
    collection: str = ""
    fetched: int = Field(0, description="Bytes of index files fetched from the Chroma server (shared index).")
    published: int = Field(0, description="Bytes of index files sent to the Chroma server (shared index).")
