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
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.cite import CANNOT_ANSWER, Encode, SupportChecker, check_citations, says_cannot_answer
from rag.errors import EmbeddingModelError, QueryError, RagError
from rag.prompts import ANSWER_SYSTEM, ANSWER_USER, render
from rag.settings import Settings
from rag.types import Answer, Filters, Hits

if TYPE_CHECKING:
    from rag.llm import Completion

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
"""Earlier turns of a chat: ``(question, answer text)`` pairs, oldest first."""

MAX_SENTENCE_WORDS = 40
"""Abstract sentences longer than this are cut (with …) in the prompt."""
CONTEXT_TOKENS = 420
"""Budget (estimated tokens, a conservative estimate) for the abstracts in the prompt. On five seed questions
the whole prompt measured 434–532 Qwen tokens with it, 557–740 without (4 papers × 3 sentences)."""

_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|same|above|previous|former|latter|"
    r"the (paper|papers|method|approach|benchmark|model|authors?|work))\b",
    re.IGNORECASE,
)


# ---- seams: the heavy collaborators, looked up at call time so tests can replace them -------------------


def _search(query: str, *, k: int, filters: Filters | Mapping[str, Any] | None, settings: Settings) -> Hits:
    from rag.retrieve import search

    return search(query, k=k, filters=filters, settings=settings)


def _llm_stream(
    messages: list[dict[str, str]], settings: Settings, model: str | None
) -> Iterator[str | Completion]:
    from rag import llm

    return llm.stream(messages, settings, model=model)


def _encoder(settings: Settings) -> Encode | None:
    """The embedding model's ``encode`` (the index's model), or None to check support by words only."""
    try:
        from rag.embed import get_embedder

        return get_embedder(settings).encode
    except EmbeddingModelError as exc:
        log.warning("citation check falls back to word overlap: %s", exc)
        return None


# ---- prompt ----------------------------------------------------------------------------------------------


@dataclass
class Context:
    """One paper as the model sees it."""

    key: int
    title: str
    year: int | None
    text: str


def retrieval_query(question: str, history: History | None) -> str:
    """The text to retrieve with: a follow-up ("what does it measure?") borrows the previous question."""
    if not history:
        return question
    last = history[-1][0].strip()
    if last and (len(question.split()) <= 6 or _FOLLOW_UP.search(question)):
        return f"{last} {question}"
    return question


def history_note(history: History | None, max_words: int = 30) -> str:
    """One line for the prompt about the previous turn (empty without history)."""
    if not history:
        return ""
    last = " ".join(history[-1][0].split()[:max_words])
    return f"the user previously asked: {last}" if last else ""


def _clean(text: str) -> str:
    """Abstract text made safe for the prompt: no citation-like brackets, no delimiter tags."""
    text = re.sub(r"\s*(?:at\s+)?https?://\S+", "", text)
    text = text.replace("[", "(").replace("]", ")")
    text = re.sub(r"</?\s*papers?\s*>", "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def _trim(sentence: str, max_words: int = MAX_SENTENCE_WORDS) -> str:
    words = sentence.split()
    return sentence if len(words) <= max_words else " ".join(words[:max_words]) + " …"


def _end(unit: str) -> str:
    return unit if unit.endswith((".", "!", "?", "…")) else unit.rstrip(",;:") + "."


def estimate_tokens(text: str) -> int:
    """Conservative token count for English prose (3.6 characters a token; Qwen averages about 4.4)."""
    return max(1, round(len(text) / 3.6))


def build_contexts(
    question: str,
    checker: SupportChecker,
    n_papers: int,
    n_sentences: int,
    budget: int = CONTEXT_TOKENS,
) -> list[Context]:
    """The first ``n_papers`` papers, each cut to its ``n_sentences`` sentences most relevant to the question.

    Sentences keep their order in the abstract; instruction-like sentences were already left out by the
    checker. While the papers' text is over ``budget`` tokens (estimated), the least relevant sentence of
    the lowest-ranked paper that still has more than one is dropped. Keys are 1-based ranks.
    """
    relevance = checker.unit_relevance(question)
    chosen: list[list[int]] = []
    for i in range(min(n_papers, len(checker.papers))):
        scores = relevance[i][1:]  # unit 0 is the title
        chosen.append(np.argsort(-scores, kind="stable")[:n_sentences].tolist() if len(scores) else [])

    def render_text(i: int) -> str:
        units = checker.units[i][1:]
        return _clean(" ".join(_end(_trim(units[j])) for j in sorted(chosen[i])) or "(no abstract)")

    def size() -> int:
        return sum(
            estimate_tokens(checker.papers[i].title + " " + render_text(i)) for i in range(len(chosen))
        )

    while size() > budget:
        shrinkable = [i for i in range(len(chosen)) if len(chosen[i]) > 1]
        if not shrinkable:
            break
        chosen[shrinkable[-1]].pop()  # the least relevant kept sentence (lists are best first)
    return [
        Context(
            key=i + 1, title=_clean(checker.papers[i].title), year=checker.papers[i].year, text=render_text(i)
        )
        for i in range(len(chosen))
    ]


def build_messages(
    question: str, contexts: list[Context], history: History | None = None
) -> list[dict[str, str]]:
    """System and user messages from the templates in ``prompts/``."""
    system = render(ANSWER_SYSTEM, cannot_answer=CANNOT_ANSWER)
    user = render(
        ANSWER_USER,
        question=" ".join(question.split()),
        papers=[{"key": c.key, "title": c.title, "year": c.year, "text": c.text} for c in contexts],
        history_note=history_note(history),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---- the step --------------------------------------------------------------------------------------------


def answer_stream(
    question: str,
    *,
    model: str | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    k: int | None = None,
    settings: Settings | None = None,
    history: History | None = None,
) -> Iterator[Hits | str | Answer]:
    """Answer ``question`` from the index, streaming: ``Hits`` first, then text deltas, then the ``Answer``.

    ``model`` overrides ``settings.llm.model`` (any litellm id); ``filters`` and ``k`` go to retrieval;
    ``history`` is the chat so far, used only to resolve follow-up questions. The final ``Answer.text``
    is authoritative (citations verified and renumbered); the streamed deltas are the model's raw text.
    Raises only for bad input or a missing index (:class:`~rag.errors.RagError`); model failures come
    back as ``Answer.error``.
    """
    settings = settings or Settings()
    question = (question or "").strip()
    if not question:
        raise QueryError('The question is empty: ask something, e.g. rag ask "Which paper introduces X?"')
    started = perf_counter()
    model_id = model or settings.llm.model
    hits = _search(
        retrieval_query(question, history), k=k or settings.retrieve.k, filters=filters, settings=settings
    )
    timings = {"retrieve": round(perf_counter() - started, 4)}
    yield hits
    base: dict[str, Any] = {
        "question": question,
        "hits": list(hits),
        "filters": hits.filters,
        "model": model_id,
    }

    def done(**fields: Any) -> Answer:
        timings["total"] = round(perf_counter() - started, 4)
        return Answer(**base, timings=dict(timings), **fields)

    if not hits or not hits.good_match:
        log.info("no good match for %r: abstaining without calling the model", question)
        yield done(text=CANNOT_ANSWER, abstained=True)
        return

    checker = SupportChecker([h.paper for h in hits], encode=_encoder(settings))
    n_papers = min(settings.llm.context_papers, len(hits))
    contexts = build_contexts(question, checker, n_papers, settings.llm.context_sentences)
    messages = build_messages(question, contexts, history)

    parts: list[str] = []
    completion: Completion | None = None
    call_started = perf_counter()
    deltas: Iterator[str | Completion] | None = None
    try:
        deltas = _llm_stream(messages, settings, model)
        for item in deltas:
            if isinstance(item, str):
                if "first_token" not in timings and item.strip():
                    timings["first_token"] = round(perf_counter() - started, 4)
                parts.append(item)
                yield item
            else:
                completion = item
    except GeneratorExit:  # the caller stopped reading (a UI's stop button): stop the model too
        _close(deltas)
        raise
    except RagError as exc:  # LLMError and its kinds; the message says what to do
        timings["generate"] = round(perf_counter() - call_started, 4)
        yield done(error=str(exc), raw_text="".join(parts))
        return
    except Exception as exc:  # never crash the caller: an unexpected failure is still an Answer
        log.exception("model call failed unexpectedly")
        timings["generate"] = round(perf_counter() - call_started, 4)
        yield done(
            error=f"The model call failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Try again, or choose another model with --model / RAG_LLM__MODEL.",
            raw_text="".join(parts),
        )
        return
    timings["generate"] = round(perf_counter() - call_started, 4)

    raw = "".join(parts) or (completion.text if completion else "")
    if completion is not None:
        base["model"] = completion.model or model_id
        base["prompt_tokens"] = completion.prompt_tokens
        base["completion_tokens"] = completion.completion_tokens
    if not raw.strip():
        yield done(raw_text=raw, error="The model returned an empty answer. Try again or use another model.")
        return

    checked = check_citations(raw, checker, keys={c.key: c.key - 1 for c in contexts})
    if checked.dropped_keys:
        log.info("dropped citation keys not in the prompt: %s", checked.dropped_keys)
    verified = [c for c in checked.citations if not c.flagged]
    if not verified:
        # The model said the abstracts do not answer, or nothing it wrote is supported by a retrieved
        # abstract (e.g. an answer from its own memory): the one fixed phrase, with the nearest papers.
        if not says_cannot_answer(raw):
            log.info("no claim of the answer is supported by a retrieved abstract: abstaining")
        yield done(text=CANNOT_ANSWER, raw_text=raw, abstained=True)
        return
    yield done(text=checked.text, raw_text=raw, citations=checked.citations)


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
