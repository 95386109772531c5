"""A scripted stand-in for ``rag.answer_stream`` used by the UI tests (fake at our own interface)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rag.claims import claim_text
from rag.errors import QueryError
from rag.types import Answer, Citation, Filters, Hit, Hits, ListItem, Paper, Verdict

PAPERS = [
    Paper(
        id="jailbreakbench",
        title="JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models",
        authors=["Patrick Chao", "Edoardo Debenedetti", "Alexander Robey"],
        authors_truncated=True,
        year=2024,
        source="001_dddadfe95e7b2692.txt",
        sources=["001_dddadfe95e7b2692.txt"],
        abstract="Jailbreak attacks cause large language models to generate harmful content. "
        "We introduce JailbreakBench, an open-sourced benchmark with an evolving repository of attacks.",
    ),
    Paper(
        id="sam-low-rank",
        title="Sharpness-Aware Minimization Leads to Low-Rank Features",
        authors=["Maksym Andriushchenko", "Dara Bahri"],
        year=2023,
        source="003_018b3c99b71c7c41.txt",
        sources=["001_dddadfe95e7b2692.txt", "003_018b3c99b71c7c41.txt"],
        abstract="Sharpness-aware minimization (SAM) reduces the feature rank at different layers.",
    ),
    Paper(
        id="evil",
        title='<img src=x onerror="alert(1)"> Script <b>kiddie</b> & friends',
        authors=["<script>alert('a')</script>"],
        year=2021,
        source="002_a67de8bfbd891bd2.txt",
        abstract="An abstract with <iframe src='http://evil.example/'></iframe> inside.",
    ),
]


class FakeStream:
    """Scripted answer stream. Records each call; behaviour chosen by the model id:

    - ``fake/abstain``: abstains, nearest papers as hits
    - ``fake/model-error``: hits, then an Answer with ``error`` set (as the pipeline reports a failed call)
    - ``fake/raise``: raises a RagError after the hits
    - ``fake/crash``: raises a plain RuntimeError before anything
    - ``fake/list``: a list answer over the hits (the list lines stream first, then the lead sentence)
    - ``fake/list-capped``: the same list capped at 2 items of 14 papers, no lead sentence
    - ``fake/extractive``: the model declined; the answer quotes the top hit's abstract
    - ``fake/claim``: a claim answer, the hits labelled SUPPORT, CONTRADICT, NOT_ENOUGH_INFO in order
    - anything else: a cited answer whose first sentence cites the top hit
    """

    def __init__(self, papers: list[Paper] | None = None) -> None:
        self.papers = papers or PAPERS
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        question: str,
        *,
        model: str | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        settings: Any = None,
        history: Any = None,
    ) -> Iterator[Hits | str | Answer]:
        self.calls.append(
            {"question": question, "model": model, "filters": filters, "k": k, "history": history}
        )
        model = model or "fake/default"
        if model == "fake/crash":
            raise RuntimeError("boom in the fake")
        filters = filters or Filters()
        papers = [p for p in self.papers if filters.year_min is None or (p.year or 0) >= filters.year_min]
        hits = [Hit(paper=p, score=1.0 / (i + 1), text=p.abstract) for i, p in enumerate(papers[: k or 5])]
        yield Hits(hits, query=question, filters=filters, note=None, good_match=bool(hits))
        if model == "fake/raise":
            raise QueryError("year_min is after year_max: swap them or clear one.")
        if model == "fake/abstain" or not hits:
            yield Answer(
                question=question, text="The corpus does not answer this question.", abstained=True,
                hits=hits, filters=filters, model=model,
            )
            return
        if model == "fake/model-error":
            yield Answer(
                question=question, hits=hits, filters=filters, model=model,
                error="openai/does-not-exist: no API key; set OPENAI_API_KEY or pick the local model.",
            )
            return
        if model == "fake/claim":
            yield from claim_stream(question, hits, filters, model)
            return
        if model.startswith("fake/list"):
            yield from list_stream(question, hits, filters, model, capped=model == "fake/list-capped")
            return
        top = hits[0].paper
        if model == "fake/extractive":
            quote = top.abstract.split(". ")[-1]
            yield Answer(
                question=question, text=f"“{quote}” [1]", raw_text="I cannot answer this.", extractive=True,
                citations=[Citation(number=1, paper=top, evidence=quote, support=0.9)],
                hits=hits, filters=filters, model=model,
            )
            return
        raw = f"{top.title.split(':')[0]} is the answer [{top.id}]. It is open [{top.id}]."
        for word in raw.split(" "):
            yield word + " "
        yield Answer(
            question=question,
            text=f"{top.title.split(':')[0]} is the answer [1]. It is open [1].",
            raw_text=raw,
            citations=[
                Citation(
                    number=1, paper=top, sentences=["It is open."],
                    evidence=top.abstract.split(". ")[-1], support=0.8,
                )
            ],
            hits=hits,
            filters=filters,
            model=model,
        )


LEAD = "JailbreakBench is one of them [1]."
CAP_LINE = "… and 12 more — narrow the filter (e.g. a year or an author)."


def list_item(number: int, paper: Paper) -> ListItem:
    """The pipeline's line for one member of a list: [n] Title (First author et al., year) — evidence."""
    evidence = paper.abstract.split(". ")[0].rstrip(".") + "."
    first = paper.authors[0].split()[-1] if paper.authors else "unknown"
    who = f"{first} et al." if len(paper.authors) > 1 or paper.authors_truncated else first
    line = f"[{number}] {paper.title} ({who}, {paper.year}) — {evidence}"
    return ListItem(number=number, paper=paper, evidence=evidence, line=line)


def list_stream(
    question: str, hits: list[Hit], filters: Filters, model: str, *, capped: bool = False
) -> Iterator[str | Answer]:
    """A list answer as the pipeline streams it: each list line, then the lead's deltas, then the Answer."""
    papers = [h.paper for h in hits][: 2 if capped else None]
    items = [list_item(n, p) for n, p in enumerate(papers, 1)]
    for item in items:
        yield item.line + "\n"
    lead = "" if capped else LEAD
    for word in lead.split(" ") if lead else []:
        yield word + " "
    lines = ([lead] if lead else []) + [i.line for i in items] + ([CAP_LINE] if capped else [])
    yield Answer(
        question=question, kind="list", text="\n".join(lines), raw_text=lead, lead=lead, items=items,
        total=14 if capped else len(items),
        citations=[Citation(number=i.number, paper=i.paper, evidence=i.evidence, support=1.0) for i in items],
        hits=hits, filters=filters, model=model,
    )


def patch_pipeline(monkeypatch: Any) -> FakeStream:
    """Replace ``rag.pipeline.answer_stream`` and ``answer`` with a :class:`FakeStream` (CLI tests)."""
    from rag import pipeline

    fake = FakeStream()

    def answer(question: str, **kw: Any) -> Answer:
        *_, last = fake(question, **kw)
        assert isinstance(last, Answer)
        return last

    monkeypatch.setattr(pipeline, "answer_stream", fake)
    monkeypatch.setattr(pipeline, "answer", answer)
    return fake


CLAIM_LABELS = ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")


def claim_stream(question: str, hits: list[Hit], filters: Filters, model: str) -> Iterator[str | Answer]:
    """A claim answer as the pipeline streams it (its text, then the Answer): one verdict per hit, the
    labels in the order of :data:`CLAIM_LABELS`, the rationale the abstract's last sentence (none for NEI)."""
    verdicts = [
        Verdict(
            paper=h.paper, label=label, confidence=0.9 - 0.2 * i,
            rationale=[] if label == "NOT_ENOUGH_INFO" else [h.paper.abstract.split(". ")[-1]],
        )
        for i, (h, label) in enumerate(zip(hits, CLAIM_LABELS, strict=False))
    ]
    text, citations = claim_text(verdicts, addressed=True)
    yield text
    yield Answer(
        question=question, kind="claim", text=text, citations=citations, verdicts=verdicts,
        hits=hits, filters=filters, model=model,
    )


@contextmanager
def served_app(papers: Sequence[Paper], name: str) -> Iterator[str]:
    """The app with a :class:`FakeStream`, served in-process on a free loopback port; yields its URL."""
    from netutil import free_port

    from rag.settings import Settings
    from ui.app import create_app

    demo = create_app(Settings(home=f"/nonexistent/{name}"), FakeStream(), papers=list(papers))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
