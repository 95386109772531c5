"""Citation keys in, verified citations out.

The model sees each retrieved abstract under an opaque key (``[1]`` … ``[4]``) and is told to end every
sentence with the key of the paper it used. Small local models get this wrong often, so the model's keys
are treated as hints, not facts:

1. keys are read from the text with a regex; keys that were not shown to the model are dropped;
2. every cited sentence is checked against the abstract it cites (cosine of sentence embeddings plus the
   share of the sentence's content words found in the abstract);
3. a citation the cited abstract does not support is re-pointed to the retrieved abstract that does
   (``repaired``), or kept and ``flagged`` when only a weak match exists, or removed when nothing
   retrieved is related to the sentence at all;
4. an uncited sentence that a retrieved abstract clearly supports gets that citation (``added``);
5. citations are renumbered ``[1]``, ``[2]``, … in order of first appearance.

Abstracts are untrusted: a paper with a sentence that reads as an instruction to a model (``rag.injection``,
flagged by :class:`~rag.support.SupportChecker`) is *planted*. The check never adds, re-points or keeps a
citation to a planted paper. While a planted paper is among the retrieved ones the model may have been
steered, so an answer sentence is dropped when it echoes a planted abstract (:data:`ECHO`), when only a
planted paper supports it, or when it is left without an unflagged citation to a clean paper that says
nearly the same words in one sentence (:data:`STRICT`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.chunk import split_sentences
from rag.naming import is_dangling, mentions, parenthetical, reference_name
from rag.support import (
    DENSE_WEIGHT,
    Encode,
    Support,
    SupportChecker,
    content_words,
    looks_like_instruction,
    units_of,
)
from rag.types import Citation, fold

__all__ = [
    "ADD",
    "CANNOT_ANSWER",
    "DENSE_WEIGHT",
    "ECHO",
    "MARGIN",
    "RELATED",
    "STRICT",
    "SUPPORTED",
    "Checked",
    "Encode",
    "Support",
    "SupportChecker",
    "check_citations",
    "content_words",
    "looks_like_instruction",
    "parse_keys",
    "says_cannot_answer",
    "strip_keys",
    "units_of",
    "with_keys",
]

CANNOT_ANSWER = "The corpus does not answer this question."
"""The one phrase for "the retrieved abstracts do not answer this"; the model is told to reply with it."""

# Support thresholds on the combined score (0..1): see docs/answers.md for how they were chosen.
SUPPORTED = 0.62
"""A sentence is supported by an abstract at or above this score."""
RELATED = 0.35
"""Below this, an abstract is unrelated to the sentence; a citation nothing relates to is removed."""
ADD = 0.7
"""An uncited sentence gets a citation added when one abstract supports it at least this well."""
MARGIN = 0.05
"""A citation is re-pointed only to an abstract that scores this much better than the cited one."""
STRICT = 0.6
"""While a planted paper is retrieved, a citation is kept only when this share of the sentence's content words
is in one sentence (or the title, with the metadata) of the cited paper."""
ECHO = 0.6
"""An answer sentence echoes a planted abstract when one of its sentences holds this share of the answer
sentence's content words (then the sentence is dropped, whatever it cites)."""
KEY_RE = re.compile(r"\[\s*((?:P(?:aper)?\s*)?\d+(?:\s*[,;]\s*(?:P(?:aper)?\s*)?\d+)*)\s*\]", re.IGNORECASE)
"""A citation group: ``[1]``, ``[1, 3]``, ``[P2]``, ``[Paper 2]``."""
_KEY_NUM = re.compile(r"\d+")
_END_PUNCT = re.compile(r"([.!?:;]+[\"')\]]*)$")


def says_cannot_answer(text: str) -> bool:
    """True when the text is (or contains) the fixed phrase, or a close variant of it."""
    folded = fold(text)
    if fold(CANNOT_ANSWER).rstrip(".") in folded:
        return True
    return bool(
        re.search(
            r"\b(corpus|abstracts?|context|papers?|provided information)\s+(does|do)\s*(not|n't)\s+"
            r"(answer|contain|provide|mention|address|say)",
            folded,
        )
    )


def parse_keys(text: str) -> list[int]:
    """Every key number in ``text``, in order (``[1, 3] … [P2]`` → ``[1, 3, 2]``)."""
    return [int(n) for m in KEY_RE.finditer(text) for n in _KEY_NUM.findall(m.group(1))]


def strip_keys(text: str) -> str:
    """``text`` without citation groups, spacing before punctuation tidied."""
    out = KEY_RE.sub("", text)
    out = re.sub(r"\s+([.,;:!?])", r"\1", out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


@dataclass
class _Use:
    """One paper cited by one sentence, after checking."""

    paper: int
    support: Support
    repaired: bool = False
    flagged: bool = False
    added: bool = False


@dataclass
class _Sentence:
    text: str
    keys: list[int]
    uses: list[_Use] = field(default_factory=list)


@dataclass
class Checked:
    """The verified answer: final text, citations, and what the check changed."""

    text: str
    citations: list[Citation]
    dropped_keys: list[int] = field(default_factory=list)
    removed: int = 0
    """Citations removed because no retrieved paper relates to their sentence."""
    dropped_planted: int = 0
    """Sentences dropped because a planted paper was retrieved: they echo it, only it supports them, or they
    were left without a strict, unflagged citation to a clean paper."""


PLACE = "§"
"""Stands in a sentence where the model used a key as a noun ("introduced in [1]"): the cited paper's name
goes there once the citation is checked, or the sentence is dropped when no citation survives."""
_NOUN_BEFORE = re.compile(
    r"(?:^|\b(?:in|by|from|of|see|to|and|study|paper|work|article|authors|cf\.|e\.g\.,?|like|as|than))\s*$",
    re.IGNORECASE,
)


def _mark_noun_keys(sentence: str) -> str:
    """Replace key groups used as nouns ("The study by [1] found", "[2] shows") with :data:`PLACE`."""
    out: list[str] = []
    last = 0
    for m in KEY_RE.finditer(sentence):
        before = sentence[last : m.start()]
        prefix = "".join(out) + before
        if _NOUN_BEFORE.search(prefix):
            out.append(before + f"{PLACE}{m.group(0)}")
        else:
            out.append(before + m.group(0))
        last = m.end()
    out.append(sentence[last:])
    return "".join(out)


def _split_answer(text: str) -> list[list[_Sentence]]:
    """Lines of sentences, each with the key numbers it carries (keys after a full stop move inside)."""
    text = re.sub(r"([.!?])((?:\s*" + KEY_RE.pattern + r")+)", r"\2\1", text, flags=re.IGNORECASE)
    lines: list[list[_Sentence]] = []
    for line in text.splitlines():
        if not line.strip():
            lines.append([])
            continue
        indent = re.match(r"\s*(?:[-*•]|\d+[.)])?\s*", line)
        prefix = indent.group(0) if indent else ""
        body = line[len(prefix) :]
        marked = [_mark_noun_keys(s) for s in split_sentences(body)]
        sentences = [_Sentence(strip_keys(s), parse_keys(s)) for s in marked]
        sentences = [s for s in sentences if s.text or s.keys]
        if sentences and prefix.strip():
            sentences[0].text = prefix.strip() + " " + sentences[0].text
        lines.append(sentences)
    return lines


def _is_content(sentence: str) -> bool:
    """Whether a sentence makes a claim worth citing (not a greeting, a heading or the abstain phrase)."""
    return len(content_words(sentence)) >= 2 and not says_cannot_answer(sentence)


def check_citations(
    raw: str,
    checker: SupportChecker,
    keys: dict[int, int],
    *,
    supported: float = SUPPORTED,
    related: float = RELATED,
    add: float = ADD,
    margin: float = MARGIN,
    name: bool = False,
) -> Checked:
    """Verify the model's citations in ``raw``.

    A key the model used as a noun ("introduced in [1]") is replaced by the name of the paper the check
    settles on, and a sentence that would be left without its subject is dropped. With ``name``, the first
    mention of each cited paper also names it (short title or first author + year) unless the sentence
    already does.

    ``keys`` maps each key number shown to the model to the index of its paper in ``checker.papers``;
    any other key is dropped. Papers in ``checker`` without a key (retrieved but not in the prompt) can
    still receive repaired or added citations.
    """
    lines = _split_answer(raw)
    sentences = [s for line in lines for s in line]
    scores = checker.score_all([s.text for s in sentences]) if sentences else []
    planted = {i for i, flags in enumerate(checker.flagged) if flags}
    planted_words = [
        w
        for p in sorted(planted)
        for w in [*checker.unit_words[p][1:], *map(content_words, checker.flagged[p])]
    ]
    dropped: list[int] = []
    removed = dropped_planted = 0
    for s_i, sentence in enumerate(sentences):
        row = scores[s_i]
        if planted_words and _is_content(sentence.text) and _echoes(sentence.text, planted_words):
            # the model repeats a planted abstract (its instruction, or a claim next to one): not stated
            removed += len(sentence.keys)
            sentence.text, sentence.uses = "", []
            dropped_planted += 1
            continue
        order = sorted(range(len(row)), key=lambda p: row[p].score, reverse=True)
        top = order[0] if order else None
        # citations are only ever re-pointed or added to a clean paper
        best = next((p for p in order if p not in planted), None)
        cited: list[int] = []
        for key in sentence.keys:
            if key not in keys:
                dropped.append(key)
            elif keys[key] not in cited:
                cited.append(keys[key])
        if not _is_content(sentence.text):
            sentence.uses = [_Use(p, row[p]) for p in cited if row[p].score >= related and p not in planted]
            continue
        if top in planted and row[top].score >= related and (best is None or row[best].score < supported):
            # what a planted paper says and no clean paper supports is not stated at all
            sentence.text, sentence.uses = "", []
            dropped_planted += 1
            removed += len(cited)
            continue
        for p in cited:
            sup = row[p]
            if p in planted:  # never kept: re-pointed to a clean paper that supports the sentence, or removed
                if best is not None and row[best].score >= supported:
                    named = checker.title_words[p] & content_words(sentence.text)
                    use = _Use(
                        best, row[best], repaired=True, flagged=bool(named - checker.paper_words[best])
                    )
                else:
                    removed += 1
                    continue
            elif sup.score >= supported:
                use = _Use(p, sup)
            elif best is not None and row[best].score >= supported and row[best].score >= sup.score + margin:
                # Re-pointed; but a sentence that names the cited paper ("RobustBench provides …") while
                # the content matches another one is wrong either way: flag it.
                named = checker.title_words[p] & content_words(sentence.text)
                use = _Use(best, row[best], repaired=True, flagged=bool(named - checker.paper_words[best]))
            elif sup.score >= related:
                use = _Use(p, sup, flagged=True)
            elif best is not None and row[best].score >= related:
                use = _Use(best, row[best], repaired=True, flagged=True)
            else:
                removed += 1
                continue
            if all(u.paper != use.paper for u in sentence.uses):
                sentence.uses.append(use)
        if not sentence.uses and not cited and best is not None and row[best].score >= add:
            sentence.uses.append(_Use(best, row[best], added=True))
    if planted:
        # A planted paper was retrieved, so the model may have been steered (a planted claim, translated or
        # reworded, can score as "supported" by a clean paper on the same topic): a claim stays only with a
        # citation to a clean paper that is not flagged and that says nearly the same words in one sentence.
        for sentence in sentences:
            if not sentence.text or not _is_content(sentence.text):
                continue
            kept = [u for u in sentence.uses if not u.flagged and u.support.unit_lexical >= STRICT]
            removed += len(sentence.uses) - len(kept)
            sentence.uses = kept
            if not kept:
                sentence.text = ""
                dropped_planted += 1

    removed += _settle_sentences(sentences, checker)
    numbers: dict[int, int] = {}
    for sentence in sentences:
        for use in sentence.uses:
            numbers.setdefault(use.paper, len(numbers) + 1)

    already_named: set[int] = set()
    out_lines = []
    for line in lines:
        parts = [_render(s, numbers, checker, already_named if name else None) for s in line if s.text]
        out_lines.append(" ".join(p for p in parts if p))
    text = "\n".join(out_lines).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)

    citations: dict[int, Citation] = {}
    for sentence in sentences:
        for use in sentence.uses:
            n = numbers[use.paper]
            cit = citations.get(n)
            if cit is None:
                cit = citations[n] = Citation(
                    number=n,
                    paper=checker.papers[use.paper],
                    evidence=use.support.evidence,
                    support=use.support.score,
                    added=use.added,
                )
            plain = re.sub(_INLINE + r"\d+" + _INLINE, "", sentence.text).replace("  ", " ")
            if plain not in cit.sentences:
                cit.sentences.append(plain)
            if use.support.score < cit.support or (use.flagged and not cit.flagged):
                cit.evidence, cit.support = use.support.evidence, use.support.score
            cit.repaired = cit.repaired or use.repaired
            cit.flagged = cit.flagged or use.flagged
            cit.added = cit.added and use.added
    return Checked(
        text=text,
        citations=[citations[n] for n in sorted(citations)],
        dropped_keys=dropped,
        removed=removed,
        dropped_planted=dropped_planted,
    )


def _echoes(sentence: str, planted_words: list[set[str]]) -> bool:
    words = content_words(sentence)
    return any(
        len(shared := words & other) >= 2 and len(shared) >= ECHO * len(words) for other in planted_words
    )


def _settle_sentences(sentences: list[_Sentence], checker: SupportChecker) -> int:
    """Put the settled paper's name where a key stood as a noun; drop sentences left without a subject.

    Returns how many sentences were dropped. A dropped sentence keeps no citation.
    """
    dropped = 0
    for sentence in sentences:
        if PLACE in sentence.text:
            inline = [u.paper for u in sentence.uses]
            text = sentence.text
            for p in inline:
                if PLACE not in text:
                    break
                text = text.replace(PLACE, f"{reference_name(checker.papers[p])} {_INLINE}{p}{_INLINE}", 1)
            sentence.text = re.sub(r"\s*" + PLACE + r"\s*", " ", text).strip()
            sentence.text = re.sub(r"\s+([.,;:!?])", r"\1", sentence.text)
        plain = re.sub(_INLINE + r"\d+" + _INLINE, "", sentence.text)
        if sentence.text and (
            is_dangling(plain) or (sentence.keys and not _is_content(plain) and not sentence.uses)
        ):
            sentence.text, sentence.uses = "", []
            dropped += 1
    return dropped


_INLINE = "\x00"


def _render(
    sentence: _Sentence, numbers: dict[int, int], checker: SupportChecker, named: set[int] | None
) -> str:
    """A settled sentence with its keys renumbered; with ``named``, first mentions get the paper's name."""
    text = re.sub(_INLINE + r"(\d+)" + _INLINE, lambda m: f"[{numbers[int(m.group(1))]}]", sentence.text)
    inline = {int(m) for m in re.findall(_INLINE + r"(\d+)" + _INLINE, sentence.text)}
    trailing = [u.paper for u in sentence.uses if u.paper not in inline]
    names: list[str] = []
    if named is not None:
        named.update(inline)
        for p in trailing:
            if p not in named and not mentions(text, checker.papers[p]):
                names.append(parenthetical(checker.papers[p]))
            named.add(p)
    return with_keys(text, [numbers[p] for p in trailing], names)


def with_keys(sentence: str, numbers: list[int], names: list[str] | None = None) -> str:
    if not numbers:
        return sentence
    keys = "".join(f"[{n}]" for n in numbers)
    if names:
        keys = " ".join(names) + " " + keys
    match = _END_PUNCT.search(sentence)
    if match:
        return f"{sentence[: match.start()].rstrip()} {keys}{match.group(1)}"
    return f"{sentence} {keys}"
