"""The answer step: retrieve → compact prompt → model (streamed) → verified citations → :class:`Answer`.

``answer_stream`` yields, in order:

1. the retrieval result (:class:`~rag.types.Hits`), so a UI can show the sources at once;
2. the model's text as it arrives (``str`` deltas, with the model's own keys ``[1]`` … ``[4]``, which are
   the ranks of the papers in the prompt);
3. one final :class:`~rag.types.Answer`.

The final ``Answer.text`` is authoritative and may differ from the streamed text: citations are checked
against the abstracts, re-pointed, flagged, added or removed, and renumbered by first appearance.

Nothing in here raises for a failing model: timeouts, provider errors, a missing API key or a missing local
model give an ``Answer`` with ``error`` set and the retrieved papers kept. When retrieval finds no good
match the model is not called at all and the answer is :data:`~rag.cite.CANNOT_ANSWER`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from rag.chunk import split_sentences
from rag.cite import (
    CANNOT_ANSWER,
    Encode,
    SupportChecker,
    check_citations,
    content_words,
    says_cannot_answer,
    strip_keys,
    with_keys,
)
from rag.claims import answer_fields as claim_answer_fields
from rag.claims import is_claim
from rag.context import History, build_contexts, build_messages, retrieval_query
from rag.errors import EmbeddingModelError, QueryError, RagError
from rag.naming import is_dangling
from rag.prompts import LIST_LEAD_SYSTEM, LIST_LEAD_USER, render
from rag.settings import Settings
from rag.shapes import (
    LIST_CAP,
    cap_line,
    count_line,
    decide,
    extractive,
    filter_defines_set,
    is_filter_listing,
    item_citations,
    lead_items,
    list_items,
    list_text,
    members,
    wants_count,
)
from rag.types import Answer, AnswerKind, Filters, Hits, ListItem

if TYPE_CHECKING:
    from rag.llm import Completion

log = logging.getLogger(__name__)

# ---- seams: the heavy collaborators, looked up at call time so tests can replace them -------------------


def _search(query: str, *, k: int, filters: Filters | Mapping[str, Any] | None, settings: Settings) -> Hits:
    from rag.retrieve import search

    return search(query, k=k, filters=filters, settings=settings)


def _llm_stream(
    messages: list[dict[str, str]], settings: Settings, model: str | None
) -> Iterator[str | Completion]:
    from rag import llm

    return llm.stream(messages, settings, model=model)


def _confirm(question: str, hits: Hits, settings: Settings, model: str | None, *, first_only: bool) -> Hits:
    from rag.confirm import confirm

    return confirm(question, hits, settings, model, first_only=first_only)


def _encoder(settings: Settings) -> Encode | None:
    """The embedding model's ``encode`` (the index's model), or None to check support by words only.
    The numpy forward pass for the default MiniLM (:mod:`rag.query_encoder`): no torch import per answer."""
    try:
        from rag.query_encoder import get_query_encoder

        return get_query_encoder(settings).encode
    except EmbeddingModelError as exc:
        log.warning("citation check falls back to word overlap: %s", exc)
        return None


# ---- the step --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one answer has gathered so far: the fields every Answer carries, and the clock."""

    question: str
    hits: Hits
    model_id: str
    kind: AnswerKind
    started: float
    timings: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def done(self, **fields: Any) -> Answer:
        self.timings["total"] = round(perf_counter() - self.started, 4)
        base = {
            "question": self.question,
            "hits": list(self.hits),
            "filters": self.hits.filters,
            "model": self.model_id,
            "kind": self.kind,
            **self.extra,
        }
        return Answer(**{**base, **fields}, timings=dict(self.timings))

    def mark(self, name: str) -> None:
        self.timings.setdefault(name, round(perf_counter() - self.started, 4))


def answer_stream(
    question: str,
    *,
    model: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    k: int | None = None,
    settings: Settings | None = None,
    history: History | None = None,
) -> Iterator[Hits | str | Answer]:
    """Answer ``question`` from the index, streaming: ``Hits`` first, then text, then the ``Answer``.

    The pipeline decides the shape (:mod:`rag.shapes`): a list answer streams its lines (written from the
    records, no model needed) and then the model's optional lead sentence; a fact answer streams the model's
    text. ``model`` overrides ``settings.llm.model`` (any litellm id); ``filters`` and ``k`` go to retrieval;
    ``history`` is the chat so far, used only to resolve follow-up questions. The final ``Answer.text``
    is authoritative. Raises only for bad input or a missing index (:class:`~rag.errors.RagError`); model
    failures come back as ``Answer.error``.
    """
    settings = settings or Settings()
    question = (question or "").strip()
    if not question:
        raise QueryError('The question is empty: ask something, e.g. rag ask "Which paper introduces X?"')
    started = perf_counter()
    k = k or settings.retrieve.k
    found = _search(
        retrieval_query(question, history), k=max(k, LIST_CAP), filters=filters, settings=settings
    )
    kind = decide(question, found)
    if kind == "fact" and is_claim(question):  # yes/no questions and pasted claims: a verdict per paper
        kind = "claim"
    hits = found if kind == "list" else found.head(k)
    run = _Run(question, hits, model or settings.llm.model, kind, started, {})
    run.mark("retrieve")
    yield hits
    if hits and not hits.good_match:  # the band where relevance cannot tell: the model judges the top papers
        run.hits = hits = _confirm(question, hits, settings, model, first_only=kind != "list")
        run.mark("confirm")
    if not hits or not hits.good_match:
        log.info("no good match for %r: abstaining without calling the model", question)
        yield run.done(text=CANNOT_ANSWER, abstained=True)
        return
    encode = _encoder(settings)
    if kind == "claim":  # rag.claims: one small model call per relevant paper, no prose
        fields = claim_answer_fields(question, hits, settings=settings, model=model, encode=encode)
        run.timings["generate"] = fields.pop("seconds")
        yield fields["text"]
        yield run.done(**fields)
        return
    if kind == "list":
        yield from _list_answer(run, encode, settings, model)
    else:
        checker = SupportChecker([h.paper for h in hits], encode=encode)
        yield from _fact_answer(run, checker, settings, model, history)


def _model_text(
    run: _Run, messages: list[dict[str, str]], settings: Settings, model: str | None
) -> Iterator[str | tuple[str, str | None]]:
    """Stream the model's deltas; end with ``(raw text, error or None)``. Records usage on ``run``."""
    parts: list[str] = []
    completion: Completion | None = None
    call_started = perf_counter()
    deltas: Iterator[str | Completion] | None = None
    error: str | None = None
    try:
        deltas = _llm_stream(messages, settings, model)
        for item in deltas:
            if isinstance(item, str):
                if item.strip():
                    run.mark("first_token")
                parts.append(item)
                yield item
            else:
                completion = item
    except GeneratorExit:  # the caller stopped reading (a UI's stop button): stop the model too
        _close(deltas)
        raise
    except RagError as exc:  # LLMError and its kinds; the message says what to do
        error = str(exc)
    except Exception as exc:  # never crash the caller: an unexpected failure is still an Answer
        log.exception("model call failed unexpectedly")
        error = (
            f"The model call failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Try again, or choose another model with --model / RAG_LLM__MODEL."
        )
    run.timings["generate"] = round(perf_counter() - call_started, 4)
    raw = "".join(parts) or (completion.text if completion else "")
    if completion is not None:
        run.model_id = completion.model or run.model_id
        run.extra["prompt_tokens"] = completion.prompt_tokens
        run.extra["completion_tokens"] = completion.completion_tokens
    if error is None and not raw.strip():
        error = "The model returned an empty answer. Try again or use another model."
    yield raw, error


def _fact_answer(
    run: _Run, checker: SupportChecker, settings: Settings, model: str | None, history: History | None
) -> Iterator[str | Answer]:
    n_papers = min(settings.llm.context_papers, len(run.hits))
    contexts = build_contexts(run.question, checker, n_papers, settings.llm.context_sentences)
    messages = build_messages(run.question, contexts, history)
    raw, error = "", None
    for item in _model_text(run, messages, settings, model):
        if isinstance(item, str):
            yield item
        else:
            raw, error = item
    if error:
        yield run.done(error=error, raw_text=raw)
        return
    checked = check_citations(raw, checker, keys={c.key: c.key - 1 for c in contexts}, name=True)
    if checked.dropped_keys:
        log.info("dropped citation keys not in the prompt: %s", checked.dropped_keys)
    if any(not c.flagged for c in checked.citations):
        yield run.done(text=checked.text, raw_text=raw, citations=checked.citations)
        return
    # The model declined, or nothing it wrote is supported by a retrieved abstract (e.g. an answer from its
    # own memory). When retrieval is confident, the abstracts' own words answer; otherwise the fixed phrase.
    quoted = extractive(run.question, run.hits, checker)
    if quoted is not None:
        log.info("model declined or was unsupported: quoting the top abstract")
        yield run.done(text=quoted[0], raw_text=raw, citations=quoted[1], extractive=True)
        return
    if not says_cannot_answer(raw):
        log.info("no claim of the answer is supported by a retrieved abstract: abstaining")
    yield run.done(text=CANNOT_ANSWER, raw_text=raw, abstained=True)


def _list_answer(
    run: _Run, encode: Encode | None, settings: Settings, model: str | None
) -> Iterator[str | Answer]:
    """Members and their lines first (streamed, no model), then the model's optional lead sentence."""
    listing = is_filter_listing(run.hits)
    whole = filter_defines_set(run.question, run.hits)
    chosen = members(run.hits, whole=whole)
    total = (run.hits.total or len(run.hits)) if whole else len(chosen)
    more = max(0, total - len(chosen))
    head = count_line(total, run.hits.filters, whole) if wants_count(run.question) or more else ""
    if head:
        run.mark("first_item")
        yield head + "\n"
    items: list[ListItem] = []
    parts: list[SupportChecker] = []
    papers = [run.hits[i].paper for i in chosen]
    for line, part in list_items(run.question, papers, encode, generic=listing):
        run.mark("first_item")
        yield line.line + "\n"
        items.append(line)
        parts.append(part)
    if more:
        yield cap_line(more) + "\n"
    member_checker = SupportChecker.merge(parts)
    fields: dict[str, Any] = {"items": items, "total": total, "citations": item_citations(items)}
    lead, raw, error = "", "", None
    if settings.llm.list_lead and not listing:  # a filter listing's lead is its count line
        shown = lead_items(items[:LEAD_ITEMS])
        messages = [
            {"role": "system", "content": render(LIST_LEAD_SYSTEM)},
            {"role": "user", "content": render(LIST_LEAD_USER, question=run.question, items=shown)},
        ]
        lead_settings = settings.model_copy(
            update={"llm": settings.llm.model_copy(update={"max_tokens": LEAD_TOKENS})}
        )
        for item in _model_text(run, messages, lead_settings, model):
            if isinstance(item, str):
                yield item
            else:
                raw, error = item
        lead = "" if error else checked_lead(raw, member_checker)
    if error:
        log.info("list answer without a lead sentence: %s", error)
    text = list_text(lead, head, items, more)
    yield run.done(text=text, raw_text=raw, lead=lead, **fields)


LEAD_TOKENS = 80
"""Enough for one lead sentence over a list."""
LEAD_ITEMS = 8
"""The model sees at most this many list lines to write the lead (prompt reading is most of its time)."""


def checked_lead(raw: str, checker: SupportChecker) -> str:
    """The model's first sentence over a list, kept only when every citation in it is verified.

    Its keys are the list's item numbers; the check may not re-number them, so they are written back as the
    item numbers of the papers the check kept. '' when the model declined or wrote something unsupported.
    """
    sentences = split_sentences(" ".join(raw.split()))
    if not sentences or says_cannot_answer(sentences[0]):
        return ""
    first = sentences[0]
    checked = check_citations(first, checker, keys={i + 1: i for i in range(len(checker.papers))})
    if not checked.citations or any(c.flagged for c in checked.citations) or "\n" in checked.text:
        return ""
    numbers = [checker.papers.index(c.paper) + 1 for c in checked.citations]
    body = strip_keys(checked.text)
    if is_dangling(body) or len(content_words(body)) < 3:
        return ""
    return with_keys(body, numbers)


def _close(deltas: Any) -> None:
    close = getattr(deltas, "close", None)
    if callable(close):
        close()


def answer(
    question: str,
    *,
    model: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    k: int | None = None,
    settings: Settings | None = None,
    history: History | None = None,
) -> Answer:
    """Answer ``question`` with verified citations (the non-streaming form of :func:`answer_stream`)."""
    final: Answer | None = None
    for item in answer_stream(
        question, model=model, filters=filters, k=k, settings=settings, history=history
    ):
        if isinstance(item, Answer):
            final = item
    if final is None:  # pragma: no cover - answer_stream always ends with an Answer
        raise RuntimeError("answer_stream ended without an Answer")
    return final
