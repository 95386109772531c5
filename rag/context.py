"""The prompt for fact answers: the retrieved abstracts cut to their sentences most relevant to the question.

Abstracts are data: brackets that look like citation keys, ``<papers>``-like tags and chat-template tokens
are neutralised, invisible format characters removed, long sentences cut, each abstract is one quoted line
(``> …``, the template) that the system prompt calls data, and instruction-like sentences never reach the
prompt (the checker flags them; :mod:`rag.injection`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.cite import CANNOT_ANSWER, SupportChecker
from rag.prompts import ANSWER_SYSTEM, ANSWER_USER, render

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


# ----- prompt ---------------------------------------------------------------------------------------------


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


_TEMPLATE_TOKENS = re.compile(r"<\|[^|<>]{0,40}\|>|\[/?INST\]|<<\s*/?SYS\s*>>", re.IGNORECASE)
_TAGS = re.compile(
    r"</?\s*(?:papers?|abstracts?|context|documents?|sources?|system|instructions?|user|assistant|data|"
    r"question|answer)\s*>",
    re.IGNORECASE,
)


def _clean(text: str) -> str:
    """Abstract text made safe for the prompt: one line, no citation-like brackets, no delimiter tags or
    chat-template tokens, no invisible format characters (zero-width spaces, bidi controls)."""
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = re.sub(r"\s*(?:at\s+)?https?://\S+", "", text)
    text = _TEMPLATE_TOKENS.sub(" ", text)
    text = text.replace("[", "(").replace("]", ")")
    text = _TAGS.sub("", text)
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
