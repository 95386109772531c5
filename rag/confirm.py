"""Confirmation: when retrieval finds no good match, the model is asked whether the top papers answer.

The calibrated relevance (:mod:`rag.relevance`) abstains correctly on questions about things the corpus does
not hold ("How does LoRA work?"), but it also abstains on paraphrased questions that share few words with
the paper they are about ("Which paper reads a classifier's outputs as ordinal preferences?"), though that
paper is retrieved at rank 1. Between the two the scores overlap. For a question in that band — no good
match, but some hit with relevance at least ``llm.confirm_floor`` — each of the ``llm.confirm_depth`` best
papers goes to the model in one short prompt ("Does this abstract answer the question? YES or NO"). A paper
the model says YES to is *confirmed* (``Hit.confirmed``): the answer goes ahead as a normal list or fact
answer, built from the confirmed papers; with no YES it abstains as before.

Untrusted text: a paper with an instruction-like sentence (:func:`rag.support.flagged_sentences`) is never
sent and never confirmed, and the prompt marks the abstract as data. A model error, timeout or off-format
reply confirms nothing (the answer abstains, as it would without this step).

Chosen on the odd-id ("tune") half of eval/questions.jsonl and reported on both halves (docs/answers.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from rag.errors import RagError
from rag.prompts import CONFIRM_SYSTEM, CONFIRM_USER, render
from rag.settings import Settings
from rag.support import flagged_sentences, units_of
from rag.types import Hit, Hits

log = logging.getLogger(__name__)

Complete = Callable[[list[dict[str, str]], Settings, str | None], str]
"""``(messages, settings, model) -> reply``: one short model call (through ``rag.llm.stream`` by default)."""

_YES = re.compile(r"^\W*(yes|true)\b", re.I)


def _llm_complete(messages: list[dict[str, str]], settings: Settings, model: str | None) -> str:
    """The reply's text, through ``rag.llm.stream`` (the seam the answer step already uses)."""
    from rag import llm

    deltas = llm.stream(messages, settings, model=model, max_tokens=3, temperature=0.0)
    try:
        return "".join(d for d in deltas if isinstance(d, str))
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()


def messages_for(question: str, hit: Hit) -> list[dict[str, str]]:
    """The confirmation prompt for one paper: its title and its abstract without instruction-like text."""
    abstract = " ".join(units_of(hit.paper)[1:]) or "(no abstract)"
    return [
        {"role": "system", "content": render(CONFIRM_SYSTEM)},
        {"role": "user", "content": render(CONFIRM_USER, question=question, title=hit.paper.title,
                                           abstract=abstract)},
    ]


def confirmed_indices(hits: Sequence[Hit]) -> list[int]:
    """Positions of the confirmed hits. When there are any, the question was rescued by the model and is
    answered from them alone (list members, claim verdicts); empty for every other question."""
    return [i for i, h in enumerate(hits) if h.confirmed]


def says_yes(reply: str) -> bool:
    """A reply confirms only when its first word is YES (or TRUE); anything else is NO."""
    return bool(_YES.match(reply or ""))


def in_band(hits: Hits, settings: Settings) -> bool:
    """Whether to ask the model: no good match, but some of the papers it would be asked about scores at
    least ``llm.confirm_floor`` (questions about something the corpus plainly lacks score ~0)."""
    depth = settings.llm.confirm_depth
    if not hits or hits.good_match or depth < 1 or hits.total is not None:
        return False  # a filter decided the set, or nothing to confirm
    return max((h.relevance or 0.0) for h in list(hits)[:depth]) >= settings.llm.confirm_floor


def confirm(
    question: str,
    hits: Hits,
    settings: Settings,
    model: str | None = None,
    *,
    first_only: bool = True,
    complete: Complete | None = None,
) -> Hits:
    """``hits`` with the papers the model confirms marked and moved first, and ``good_match`` True when
    one is; ``hits`` unchanged when the question is not in the band (:func:`in_band`) or none is confirmed.

    ``first_only``: stop at the first YES (a fact answer needs one paper; a list asks about every one).
    """
    if not in_band(hits, settings):
        return hits
    complete = complete or _llm_complete
    confirmed: list[int] = []
    for i, hit in enumerate(list(hits)[: settings.llm.confirm_depth]):
        if flagged_sentences(hit.paper):
            log.info("not asking about %s: its abstract carries instruction-like text", hit.paper.id)
            continue
        try:
            reply = complete(messages_for(question, hit), settings, model)
        except RagError as exc:  # the answer abstains as it would have without this step
            log.warning("confirmation call failed, abstaining: %s", exc)
            break
        log.info("confirm %s: %r", hit.paper.id, reply)
        if says_yes(reply):
            confirmed.append(i)
            if first_only:
                break
    if not confirmed:
        return hits
    marked = [h.model_copy(update={"confirmed": True}) if i in confirmed else h for i, h in enumerate(hits)]
    order = [marked[i] for i in confirmed] + [h for i, h in enumerate(marked) if i not in confirmed]
    names = ", ".join(f"“{marked[i].paper.title}”" for i in confirmed)
    note = f"Retrieval scored this question low; the model judged {names} relevant."
    return hits.replaced(order, note=note, good_match=True)

