"""The verdict badge of a claim answer's source card: what that paper says about the claim.

A claim answer (``Answer.kind == "claim"``: a yes/no question or a pasted claim, :mod:`rag.claims`) carries
one ``Verdict`` per examined paper; each card of such a paper shows its label as a badge. The badge says it
in words and with a symbol, not by colour alone, and screen readers hear "Verdict: supports the claim".

Pure functions of rag's records (no Gradio import).
"""

from __future__ import annotations

from html import escape

from rag.types import Answer, Verdict

BADGES = {
    "SUPPORT": ("support", "✓", "Supports", "supports the claim"),
    "CONTRADICT": ("contradict", "✗", "Contradicts", "contradicts the claim"),
    "NOT_ENOUGH_INFO": ("nei", "?", "Not enough info", "does not say enough to decide"),
}
"""label → (CSS suffix, symbol, visible text, what it means for the title and screen readers)."""


def verdicts_by_paper(answer: Answer) -> dict[str, Verdict]:
    """The verdict of each examined paper, by paper id (empty unless the answer is a claim answer)."""
    if answer.kind != "claim":
        return {}
    return {v.paper.id: v for v in answer.verdicts}


def verdict_badge(verdict: Verdict) -> str:
    """``<span class="rag-verdict rag-verdict-support">✓ Supports</span>`` (with a title and hidden text)."""
    suffix, symbol, text, meaning = BADGES[verdict.label]
    title = f"This abstract {meaning}"
    if verdict.label != "NOT_ENOUGH_INFO":
        title += f" (confidence {verdict.confidence:.2f})"
    return (
        f'<span class="rag-verdict rag-verdict-{suffix}" title="{escape(title)}">'
        f'<span aria-hidden="true">{symbol}</span> '
        f'<span class="rag-sr">Verdict: </span>{escape(text)}</span>'
    )


def verdict_quote(verdict: Verdict) -> str:
    """The sentences that decide the verdict, verbatim ('' when the paper does not settle the claim)."""
    return " ".join(s.strip() for s in verdict.rationale if s.strip())
