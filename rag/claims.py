"""Claims and yes/no questions: a verdict per paper — SUPPORT, CONTRADICT or NOT_ENOUGH_INFO.

The pipeline does everything a small model is bad at, and asks the model one narrow thing:

1. **which papers** — the retrieved hits whose calibrated relevance (``Hit.relevance``) reaches
   :data:`Verdicts.min_relevance`, at most :data:`Verdicts.max_papers` of them; a claim the corpus does not
   address gets no verdict at all (``ClaimCheck.addressed`` is False);
2. **which sentences** — per paper, the abstract sentences most relevant to the claim
   (:func:`rag.shapes.sentence_scores`, the same scoring as list lines and quotes); sentences that read as
   instructions to a model (:mod:`rag.injection`) are never candidates, so they never reach the prompt and
   are never a rationale;
3. **the label** — one very small prompt per paper (``prompts/claim_*.j2``), a reply of a few tokens, read
   leniently (:func:`rag.verdicts.parse_label`): what cannot be read is NOT_ENOUGH_INFO, never a crash.

The rationale of a SUPPORT or CONTRADICT verdict is the candidate sentences the model was shown, verbatim.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from rag.chunk import split_sentences
from rag.cite import Encode, SupportChecker
from rag.confirm import confirmed_indices
from rag.errors import QueryError, RagError
from rag.naming import reference_name
from rag.prompts import CLAIM_SYSTEM, CLAIM_USER, render
from rag.settings import Settings
from rag.shapes import sentence_scores, wants_list
from rag.types import Citation, ClaimCheck, Filters, Hit, Hits, Verdict
from rag.verdicts import LABELS, parse_label

log = logging.getLogger(__name__)

Complete = Callable[[list[dict[str, str]], Settings, "str | None", int], str]
"""``(messages, settings, model, max tokens) -> reply``: the model call (``rag.llm.complete`` by default)."""


@dataclass(frozen=True)
class Verdicts:
    """The knobs of the verdict step, chosen on the odd claim ids of SciFact dev (docs/claims.md)."""

    min_relevance: float = 0.5
    """A paper is examined only when its calibrated relevance to the claim reaches this (else: NEI)."""
    max_papers: int = 1
    """At most this many papers are examined (one model call each). One: on the odd SciFact claims the second
    paper was evidence for 15 of 153 claims (12 labelled right) and drew 77 verdicts on papers that were not
    (docs/claims.md)."""
    min_ratio: float = 0.0
    """A paper after the first is examined only when its fused score is at least this share of the top's."""
    min_evidence: float = 0.0
    """An examined paper gets a verdict only when its best abstract sentence scores at least this against the
    claim (:func:`rag.shapes.sentence_scores`: MiniLM cosine blended with word overlap, 0..1); below it the
    paper is retrieved but does not speak to the claim, and no model call is made."""
    sentences: int = 3
    """Candidate rationale sentences shown to the model per paper (SciFact scores at most 3)."""
    reply_tokens: int = 4
    """The model writes at most this many tokens: one label word."""


DEFAULT = Verdicts()

# ---- which questions are claims ----------------------------------------------------------------------------

_AUX = r"(?:does|do|did|is|are|was|were|can|could|should|will|would|has|have|had|may|might|must)"
_YES_NO = re.compile(
    rf"^\s*{_AUX}\b(?!\s+(?:you|we|i|there\s+(?:any|other|papers?|works?))\b)", re.IGNORECASE
)
_NOT_A_CLAIM = re.compile(
    r"^\s*(?:who|what|which|when|where|why|how|whose|whom|list|name|show|find|give|tell|explain|describe|"
    r"summari[sz]e|compare|papers?\b|please)\b",
    re.IGNORECASE,
)
_VERB = re.compile(
    r"\b(?:is|are|was|were|has|have|had|can|cannot|could|does|do|did|will|may|might|must|should|not|"
    r"(?:increase|decrease|reduce|improve|cause|lead|correlate|associate|outperform|inhibit|promote|induce|"
    r"prevent|enhance|require|predict|affect|depend|contribute|raise|lower|help|hurt|block|activate|suppress|"
    r"regulate|protect|confer|enable|show|exhibit|need|generali[sz]e|converge|fail|work|beat|match|"
    r"underperform|degrade|harm|benefit|remove|trigger|impair|worsen|boost|stabili[sz]e|mediate|"
    r"modulate|bind|encode|express|drive|limit|scale|transfer)(?:s|es|d|ed|ing)?)\b",
    re.IGNORECASE,
)
_OPEN_ENDED = re.compile(
    r",?\s+or\s+(?:to\s+|is\s+it\s+|does\s+it\s+)?(?:other|something|not)\b|\b(?:and|or)\s+(?:why|how|what|which)\b",
    re.I,
)
"""An alternative ("…, or to other solutions?") or a wh-part ("…, and why?"): not a yes/no question."""
CLAIM_MIN_WORDS = 4


def is_claim(question: str) -> bool:
    """Whether ``question`` is a yes/no question ("Does X cause Y?") or a pasted claim ("X causes Y.").

    A list request ("Are there papers on X?") is not; neither is a wh-question or a keyword query (a claim
    has a verb and at least :data:`CLAIM_MIN_WORDS` words).
    """
    text = " ".join(question.split())
    if len(text.split()) < CLAIM_MIN_WORDS or wants_list(text) or _NOT_A_CLAIM.search(text):
        return False
    if _OPEN_ENDED.search(text):
        return False
    if text.endswith("?"):
        return bool(_YES_NO.search(text))
    return bool(_VERB.search(text)) and "\n" not in question.strip()


def check_text(claim: Any) -> str:
    """The claim, cleaned; :class:`QueryError` for an empty one (a long one is refused by retrieval)."""
    if not isinstance(claim, str) or not claim.strip():
        raise QueryError('The claim is empty: give a statement to check, e.g. rag check "X improves Y."')
    from rag.retrieve import check_query

    return check_query(claim)


# ---- the step ----------------------------------------------------------------------------------------------


def _llm_complete(messages: list[dict[str, str]], settings: Settings, model: str | None, tokens: int) -> str:
    from rag import llm

    return llm.complete(messages, settings, model=model, max_tokens=tokens, temperature=0.0).text


def _encoder(settings: Settings) -> Encode | None:
    from rag.pipeline import _encoder

    return _encoder(settings)


def _search(claim: str, *, k: int, filters: Filters | Mapping[str, Any] | None, settings: Settings) -> Hits:
    from rag.retrieve import search

    return search(claim, k=k, filters=filters, settings=settings)


def examined(hits: Sequence[Hit], rule: Verdicts = DEFAULT) -> list[int]:
    """Indices of the hits that get a verdict: relevant enough, close enough to the top, at most
    ``max_papers``."""
    if not hits:
        return []
    rescued = confirmed_indices(hits)  # a low-scored question rescued by the model: its confirmed papers
    if rescued:
        return rescued[: rule.max_papers]
    top = hits[0].score if hits[0].score > 0 else 1.0
    out: list[int] = []
    for i, hit in enumerate(hits):
        if len(out) >= rule.max_papers:
            break
        if (hit.relevance or 0.0) < rule.min_relevance:
            continue
        if out and hit.score / top < rule.min_ratio:
            continue
        out.append(i)
    return out


def candidates(checker: SupportChecker, i: int, claim: str, n: int) -> tuple[list[str], list[int], float]:
    """The ``n`` abstract sentences of paper ``i`` most relevant to the claim, in abstract order, verbatim,
    with their 0-based positions in the abstract, and the best sentence's score (0..1; 0 without an abstract).
    Instruction-like sentences are never units, so never here.
    """
    units = checker.units[i][1:]
    if not units:
        return [], [], 0.0
    sentences = split_sentences(checker.papers[i].abstract)
    scores = sentence_scores(checker, i, claim)
    picked: list[int] = []
    for j in np.argsort(-scores, kind="stable"):
        unit = units[int(j)]
        where = next((s for s, text in enumerate(sentences) if unit in text), None)
        if where is not None and where not in picked:
            picked.append(where)
        if len(picked) >= n:
            break
    picked.sort()
    return [sentences[s] for s in picked], picked, float(scores.max())


def messages_for(claim: str, title: str, sentences: Sequence[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": render(CLAIM_SYSTEM)},
        {"role": "user", "content": render(CLAIM_USER, claim=claim, title=title, sentences=list(sentences))},
    ]


def verdicts_for(
    claim: str,
    hits: Sequence[Hit],
    *,
    settings: Settings,
    model: str | None = None,
    encode: Encode | None = None,
    rule: Verdicts = DEFAULT,
    complete: Complete | None = None,
) -> tuple[list[Verdict], str | None]:
    """One verdict per examined hit (see :func:`examined`) whose best abstract sentence reaches
    ``rule.min_evidence`` (a paper with no sentence close to the claim gets no verdict and no model call),
    and the model error that stopped it, if any."""
    chosen = [hits[i] for i in examined(hits, rule)]
    if not chosen:
        return [], None
    call = complete or _llm_complete
    checker = SupportChecker([h.paper for h in chosen], encode=encode)
    out: list[Verdict] = []
    error: str | None = None
    for i, hit in enumerate(chosen):
        relevance = float(hit.relevance or 0.0)
        sentences, ids, best = candidates(checker, i, claim, rule.sentences)
        if sentences and best < rule.min_evidence:
            continue  # retrieved, but no sentence of it is about the claim: it does not settle it
        # a paper that carries planted instructions decides nothing (as it is never cited in a fact answer)
        if not sentences or error is not None or checker.planted[i]:
            out.append(Verdict(paper=hit.paper, label="NOT_ENOUGH_INFO", relevance=relevance))
            continue
        reply, error = _ask(call, messages_for(claim, hit.paper.title, sentences), settings, model, rule)
        label, clean = parse_label(reply)
        decided = label != "NOT_ENOUGH_INFO"
        out.append(
            Verdict(
                paper=hit.paper,
                label=label,
                rationale=sentences if decided else [],
                sentence_ids=ids if decided else [],
                confidence=round(relevance * (1.0 if clean else 0.7), 4) if decided else 0.0,
                relevance=round(relevance, 4),
                reply=reply,
            )
        )
    return out, error


def _ask(
    call: Complete, messages: list[dict[str, str]], settings: Settings, model: str | None, rule: Verdicts
) -> tuple[str, str | None]:
    """The model's reply, or ``""`` and the error that stopped it (the message says what to do)."""
    try:
        return call(messages, settings, model, rule.reply_tokens), None
    except RagError as exc:  # LLMError and its kinds
        return "", str(exc)
    except Exception as exc:  # never crash the caller
        log.exception("verdict call failed unexpectedly")
        return "", f"The model call failed unexpectedly ({type(exc).__name__}: {exc})."


def overall(verdicts: Sequence[Verdict], addressed: bool) -> str:
    """'2 papers support, 1 contradicts' (papers the model found no verdict in are counted last)."""
    if not addressed:
        return "No retrieved paper addresses this claim."
    counts: dict[str, int] = {lab: sum(v.label == lab for v in verdicts) for lab in LABELS}
    parts = []
    for lab, one, many in (("SUPPORT", "supports", "support"), ("CONTRADICT", "contradicts", "contradict")):
        n = counts[lab]
        if n:
            parts.append(f"{n} paper{'s' if n > 1 else ''} {one if n == 1 else many}")
    n = counts["NOT_ENOUGH_INFO"]
    if n:
        parts.append(f"{n} {'says' if n == 1 else 'say'} not enough to decide")
    return ", ".join(parts) if parts else "No verdict."


def check_claim(
    claim: str,
    *,
    k: int | None = None,
    filters: Filters | Mapping[str, Any] | None = None,
    model: str | None = None,
    settings: Settings | None = None,
    rule: Verdicts = DEFAULT,
) -> ClaimCheck:
    """Check ``claim`` against the index: a :class:`~rag.types.Verdict` per examined paper.

    Raises :class:`~rag.errors.QueryError` for an empty or oversized claim; a failing model comes back as
    ``ClaimCheck.error`` with the verdicts it could not give as NOT_ENOUGH_INFO.
    """
    settings = settings or Settings()
    text = check_text(claim)
    started = perf_counter()
    hits = _search(text, k=k or settings.retrieve.k, filters=filters, settings=settings)
    timings = {"retrieve": round(perf_counter() - started, 4)}
    encode = _encoder(settings) if examined(hits, rule) else None
    verdicts, error = verdicts_for(text, hits, settings=settings, model=model, encode=encode, rule=rule)
    addressed = bool(verdicts)
    timings["verdicts"] = round(perf_counter() - started - timings["retrieve"], 4)
    timings["total"] = round(perf_counter() - started, 4)
    return ClaimCheck(
        claim=text,
        verdicts=verdicts,
        overall=overall(verdicts, addressed),
        addressed=addressed,
        hits=list(hits),
        model=model or settings.llm.model,
        error=error,
        timings=timings,
    )


# ---- the answer shape --------------------------------------------------------------------------------------

_SAYS = {"SUPPORT": "supports it", "CONTRADICT": "contradicts it", "NOT_ENOUGH_INFO": "does not settle it"}


def claim_text(verdicts: Sequence[Verdict], addressed: bool) -> tuple[str, list[Citation]]:
    """The answer to a yes/no question or claim: the summary, then per paper what it finds, quoted and cited.

    Never a bare "Yes": every line names the paper and quotes its deciding sentences verbatim.
    """
    if not addressed:
        return overall(verdicts, addressed), []
    lines = [f"Verdict per retrieved paper: {overall(verdicts, addressed)}."]
    citations: list[Citation] = []
    for n, v in enumerate(verdicts, start=1):
        line = f"[{n}] {reference_name(v.paper)} {_SAYS[v.label]}"
        if v.rationale:
            line += ": " + " ".join(f"“{s}”" for s in v.rationale)
        lines.append(line + ("" if line.endswith((".", "”")) else "."))
        citations.append(
            Citation(
                number=n,
                paper=v.paper,
                sentences=[lines[-1]],
                evidence=v.rationale[0] if v.rationale else v.paper.title,
                support=v.confidence,
            )
        )
    return "\n".join(lines), citations


def answer_fields(
    question: str,
    hits: Sequence[Hit],
    *,
    settings: Settings,
    model: str | None,
    encode: Encode | None,
    rule: Verdicts = DEFAULT,
) -> dict[str, Any]:
    """The fields of a claim-shaped :class:`~rag.types.Answer` (``kind == "claim"``) for ``answer()``."""
    started = perf_counter()
    verdicts, error = verdicts_for(question, hits, settings=settings, model=model, encode=encode, rule=rule)
    addressed = bool(verdicts)
    text, citations = claim_text(verdicts, addressed)
    fields: dict[str, Any] = {
        "text": text,
        "citations": citations,
        "verdicts": verdicts,
        "abstained": not addressed,
        "raw_text": "\n".join(v.reply for v in verdicts),
    }
    if error is not None and not any(v.label != "NOT_ENOUGH_INFO" for v in verdicts):
        fields["error"] = error
    fields["seconds"] = round(perf_counter() - started, 4)
    return fields
