"""Answer shapes: the pipeline, not the model, decides what an answer is.

* **list** — "Which papers …", "What did X publish …", "Papers on …", "List …", "How many …", and any question
  whose filter alone selects the set. Membership is decided here: every paper a filter selects when the rest
  of the question is generic (capped at :data:`LIST_CAP`, with a count of the rest), otherwise the retrieved
  papers that pass :func:`members`. Each member is one line written from the record and the abstract sentence
  most relevant to the question, so every line is verified by construction. The model may add one lead
  sentence over the list (checked like any sentence); the list stands without it.
* **fact** — today's path: the model writes prose, citations are checked. When the model declines or nothing
  it wrote is supported but retrieval is confident, :func:`extractive` quotes the abstract sentences that best
  answer the question instead.
* **claim** — reserved for yes/no questions and pasted claims (not built yet: they take the fact path).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rag.cite import Encode, SupportChecker
from rag.confirm import confirmed_indices
from rag.naming import author_year, reference_name
from rag.types import AnswerKind, Citation, Filters, Hit, Hits, ListItem, Paper

LIST_CAP = 15
"""At most this many lines in a list answer; past it the answer says how many more there are."""

_PLURAL = (
    r"papers|works|articles|studies|publications|preprints|entries|talks|posters|orals|contributions|"
    r"methods|approaches|techniques|algorithms|attacks|defenses|defences|benchmarks|optimizers|optimisers"
)
_SINGULAR = (
    r"paper|work|article|study|publication|preprint|entry|talk|poster|oral|contribution|method|approach|"
    r"technique|algorithm|attack|defen[cs]e|benchmark|optimi[sz]er"
)
_LIST_WORDING = re.compile(
    # "Which (adversarial) attacks …", "What papers …", "Which of the papers …"
    rf"^\s*(?:which|what)\s+(?:of\s+the\s+)?(?:[\w-]+\s+){{0,3}}?(?:{_PLURAL})\b"
    # "List / Name / Show (me) / Find / Give (me) …"
    r"|^\s*(?:please\s+)?(?:list|name|enumerate|show(?:\s+me)?|find(?:\s+me)?|give\s+me)\b"
    # "Papers on X", "Are there (any) papers about X", "Is there work on X", "Any work by X"
    r"|^\s*(?:(?:are|is)\s+there\s+|any\s+|all\s+)?(?:any\s+)?(?:other\s+)?"
    r"(?:papers?|works?|publications?|research|studies|articles?)\s+(?:on|about|by|from|in|of|regarding|"
    r"concerning|that|which|with|where)\b"
    # "What did X publish / write / present", "What has X published", "What has been written about X"
    r"|^\s*what\s+(?:did|does|has|have)\b.{0,80}?\b(?:publish(?:ed)?|write|written|wrote|present(?:ed)?|"
    r"co-?author(?:ed)?|release[d]?)\b"
    r"|^\s*what\s+(?:has|have)\s+been\s+(?:written|published|done|proposed)\b"
    r"|^\s*what\s+(?:work|research)\s+(?:is|exists|has)\b"
    # "How many papers …" (not "How many neurons …": that is a fact)
    rf"|^\s*how\s+many\s+(?:[\w-]+\s+){{0,2}}?(?:{_PLURAL})\b",
    re.IGNORECASE,
)
_COUNT_WORDING = re.compile(
    rf"^\s*how\s+many\s+(?:[\w-]+\s+){{0,2}}?(?:{_PLURAL})\b|\bnumber\s+of\s+(?:{_PLURAL})\b", re.I
)


_PREAMBLE = re.compile(
    r"^\s*(?:(?:(?:can|could|would|will)\s+you\s+|please\s+|tell\s+me\s+|"
    r"i(?:'m|\s+am)\s+(?:looking|searching)\s+for\s+|i\s+(?:want|need|would\s+like)\s+(?:to\s+(?:see|find|know)\s+)?|"
    r"do\s+you\s+(?:have|know)\s+(?:of\s+)?)+)",
    re.IGNORECASE,
)
"""A polite or first-person opening ("Can you …", "Tell me …", "I am looking for …"), skipped before the
wording is read: "Tell me which papers …" asks what "Which papers …" asks."""


def wants_list(question: str) -> bool:
    """Whether the question's wording asks for a set of papers."""
    return bool(_LIST_WORDING.search(question) or _LIST_WORDING.search(_PREAMBLE.sub("", question, count=1)))


def wants_count(question: str) -> bool:
    """Whether the question asks how many."""
    return bool(_COUNT_WORDING.search(_PREAMBLE.sub("", question, count=1)))




def is_filter_listing(hits: Sequence[Hit]) -> bool:
    """Whether the hits are a filter's listing (the filter alone defined the set: ``retrieve._listing``)."""
    return bool(hits) and all(h.retrievers == ["filter"] for h in hits)


def decide(question: str, hits: Sequence[Hit]) -> AnswerKind:
    """The shape of the answer, from the question's wording and what retrieval did."""
    return "list" if is_filter_listing(hits) or wants_list(question) else "fact"


# ---- membership ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    """Which retrieved papers belong in a list answer that a filter listing does not already settle.

    * a filter read from the question that selects at most ``filter_set`` papers defines the set ("Which
      papers were contributed orals at the workshop?"): every paper it selects is a member;
    * otherwise a hit is a member when its fused score is at least ``min_ratio`` of the top hit's, or its
      calibrated relevance is at least ``sure_relevance``; the top hit of a good match always is.

    Chosen on the odd-id ("tune") half of eval/questions.jsonl by mean F1 over list questions, and reported on
    both halves (bench/list_membership.py, docs/answers.md).
    """

    min_ratio: float = 0.75
    sure_relevance: float = 0.7
    filter_set: int = LIST_CAP


_ALL_WORDING = re.compile(
    rf"\b(?:all|every|each)\s+(?:of\s+)?(?:the\s+)?(?:[\w-]+\s+){{0,2}}?(?:{_PLURAL}|{_SINGULAR})\b", re.I
)
"""'List every poster …', 'all the papers …', 'each talk …': the user wants the whole set a filter selects."""


def filter_defines_set(question: str, hits: Hits | Sequence[Hit], rule: Membership = Membership()) -> bool:
    """Whether the filter read from the question is the list: a filter listing, a filter that selects at most
    ``rule.filter_set`` papers, or one the question asks for all of ("List every poster at the workshop")."""
    if is_filter_listing(hits):
        return True
    total = getattr(hits, "total", None)
    if not getattr(hits, "filters_from_query", False) or total is None:
        return False
    return total <= rule.filter_set or bool(_ALL_WORDING.search(question))


def members(
    hits: Hits | Sequence[Hit], rule: Membership = Membership(), cap: int = LIST_CAP, *, whole: bool = False
) -> list[int]:
    """Indices of the hits that belong in a list answer, best first. ``whole``: the filter defines the set
    (:func:`filter_defines_set`), so every hit is a member up to ``cap``."""
    if not hits:
        return []
    head = list(range(min(len(hits), cap)))
    if whole or filter_defines_set("", hits, rule):  # without the question: a listing or a small filter
        return head
    rescued = confirmed_indices(hits)  # a low-scored question rescued by the model: its confirmed papers
    if rescued:
        return rescued[:cap]
    top = hits[0].score if hits[0].score > 0 else 1.0
    return [
        i
        for i in head
        if i == 0
        or hits[i].score / top >= rule.min_ratio
        or (hits[i].relevance or 0.0) >= rule.sure_relevance
    ]


# ---- list lines ------------------------------------------------------------------------------------------


_BOILERPLATE = re.compile(
    r"https?://|\bgithub\b|\b(?:code|data|models?|implementation)\b[^.]{0,60}\b(?:is|are)\s+"
    r"(?:publicly\s+|freely\s+)?(?:available|released)|\bwe\s+(?:release|open-?source)\b",
    re.IGNORECASE,
)
"""Sentences that say where the code is: never the sentence that describes a paper in a list."""


def sentence_scores(checker: SupportChecker, i: int, query: str) -> np.ndarray:
    """Relevance to ``query`` of each abstract unit of paper ``i`` (title left out); a sentence that only says
    where the code is ranks below every other one. Instruction-like sentences are never units
    (:func:`rag.cite.units_of`)."""
    units = checker.units[i][1:]
    scores = np.array(checker.unit_relevance(query)[i][1:], dtype=np.float32)
    scores[[bool(_BOILERPLATE.search(u)) for u in units]] -= 1.0
    return scores


def best_sentence(checker: SupportChecker, i: int, query: str) -> str:
    """The abstract sentence (or clause) of paper ``i`` most relevant to ``query``; '' without an abstract."""
    units = checker.units[i][1:]
    return units[int(np.argmax(sentence_scores(checker, i, query)))] if units else ""


LINE_WORDS = 45
"""A list line quotes at most this many words of its sentence (abstracts with glued sentences, "(DNNs).By
assuming …", would otherwise put a whole paragraph on one line)."""
_BREAKS = (re.compile(r"(?<=[a-z0-9)\]])[.;](?=\s|[A-Z])"), re.compile(r"[,:](?=\s)"))
"""Where a long sentence may be cut: a (glued) sentence end or semicolon first, else a comma or colon."""


def clip(sentence: str, max_words: int = LINE_WORDS) -> str:
    """``sentence`` verbatim when short, else its first ``max_words`` words cut at the last sentence or clause
    break inside them (a word boundary if there is none), marked with "…"."""
    words = sentence.split()
    if len(words) <= max_words:
        return sentence
    head = " ".join(words[:max_words])
    for pattern in _BREAKS:
        breaks = [m.start() for m in pattern.finditer(head) if m.start() >= len(head) // 3]
        if breaks:
            return head[: breaks[-1] + 1].rstrip(",;: ") + " …"
    return head + " …"


def item_line(number: int, paper: Paper, evidence: str) -> str:
    """``[n] Title (First author et al., year) — evidence`` (long evidence clipped: :func:`clip`)."""
    who = author_year(paper) if paper.authors else (str(paper.year) if paper.year else "")
    head = f"[{number}] {paper.title}" + (f" ({who})" if who else "")
    return f"{head} — {clip(evidence)}" if evidence else head


def list_items(
    question: str, papers: Sequence[Paper], encode: Encode | None, generic: bool
) -> Iterator[tuple[ListItem, SupportChecker]]:
    """One line per paper (the members, in order), each as soon as its abstract is embedded.

    ``generic``: the question says nothing about content (a filter listing), so each line quotes the
    sentence that best matches the paper's own title (its main contribution) rather than the question.
    Yields each item with the one-paper checker that chose its sentence (see ``SupportChecker.merge``).
    """
    for n, paper in enumerate(papers, start=1):
        checker = SupportChecker([paper], encode=encode)
        # a paper that carries planted instructions is listed by its title only: none of its words are quoted
        evidence = (
            "" if checker.planted[0] else best_sentence(checker, 0, paper.title if generic else question)
        )
        yield ListItem(number=n, paper=paper, evidence=evidence, line=item_line(n, paper, evidence)), checker


def item_citations(items: Sequence[ListItem]) -> list[Citation]:
    """One citation per list line; its evidence is the quoted sentence (the title for a title-only paper)."""
    return [
        Citation(
            number=it.number,
            paper=it.paper,
            sentences=[it.line],
            evidence=it.evidence or it.paper.title,
            support=1.0,
        )
        for it in items
    ]


def count_line(n: int, filters: Filters | None, from_filter: bool) -> str:
    """The sentence that states the size of the set ("3 papers match the filter (author: …).")."""
    noun = "paper" if n == 1 else "papers"
    if from_filter and filters is not None and not filters.is_empty():
        return f"{n} {noun} match the filter ({filters.describe()})."
    verb = "addresses" if n == 1 else "address"
    return f"{n} retrieved {noun} {verb} this question."


def cap_line(more: int) -> str:
    return f"… and {more} more — narrow the filter (e.g. add a year, an author or a topic)."


def list_text(lead: str, head: str, items: Sequence[ListItem], more: int) -> str:
    """The whole list answer: lead sentence, count line, one line per item, the cap line."""
    lines = [line for line in (lead, head) if line]
    lines += [it.line for it in items]
    if more > 0:
        lines.append(cap_line(more))
    return "\n".join(lines)


def lead_items(items: Sequence[ListItem], max_words: int = 30) -> list[dict[str, object]]:
    """What the model sees to write a lead sentence: key, title, year and the quoted sentence, cut short."""
    out = []
    for it in items:
        words = it.evidence.split()
        text = " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")
        clean = text.replace("[", "(").replace("]", ")")
        out.append(
            {
                "key": it.number,
                "title": it.paper.title,
                "year": it.paper.year,
                "text": clean or "(no abstract)",
            }
        )
    return out


# ---- extractive fallback ---------------------------------------------------------------------------------

EXTRACT_MIN_RELEVANCE = 0.5
"""The top hit must be at least this relevant (Hit.relevance) for a quoted answer when the model fails."""
SECOND_SENTENCE = 0.85
"""A second sentence of the top paper is quoted when it scores at least this share of the best one."""


def extractive(
    question: str, hits: Hits | Sequence[Hit], checker: SupportChecker
) -> tuple[str, list[Citation]] | None:
    """The one or two sentences of the top paper that best answer the question, quoted and cited.

    None when the top hit is not clearly relevant: relevance below :data:`EXTRACT_MIN_RELEVANCE`, not named
    by the question and not confirmed by the model (:mod:`rag.confirm`); then the fixed phrase stands.
    """
    if not hits or not checker.papers or checker.planted[0]:  # never quote a paper that carries instructions
        return None
    sure = hits[0].confirmed or getattr(hits, "named", False)
    if (hits[0].relevance or 0.0) < EXTRACT_MIN_RELEVANCE and not sure:
        return None
    units = checker.units[0][1:]
    if not units:
        return None
    scores = sentence_scores(checker, 0, question)
    order = np.argsort(-scores, kind="stable")
    picked = [int(order[0])]
    if len(order) > 1 and scores[order[1]] > 0 and scores[order[1]] >= SECOND_SENTENCE * scores[order[0]]:
        picked.append(int(order[1]))
    quote = " ".join(units[j] for j in sorted(picked))
    paper = checker.papers[0]
    text = f"{reference_name(paper)} [1]: “{quote}”"
    citation = Citation(
        number=1,
        paper=paper,
        sentences=[quote],
        evidence=units[picked[0]],
        support=round(float(scores[picked[0]]), 4),
    )
    return text, [citation]
