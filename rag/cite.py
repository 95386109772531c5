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

The same module spots instruction-like sentences planted in abstracts (``ignore previous instructions``…):
they are left out of the prompt and never count as evidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.chunk import split_sentences
from rag.types import Citation, Paper, fold

CANNOT_ANSWER = "The corpus does not answer this question."
"""The one phrase for "the retrieved abstracts do not answer this"; the model is told to reply with it."""

Encode = Callable[[Sequence[str]], np.ndarray]
"""Texts → L2-normalised vectors (``rag.embed.Embedder.encode``)."""

# Support thresholds on the combined score (0..1): see docs/answers.md for how they were chosen.
SUPPORTED = 0.62
"""A sentence is supported by an abstract at or above this score."""
RELATED = 0.35
"""Below this, an abstract is unrelated to the sentence; a citation nothing relates to is removed."""
ADD = 0.7
"""An uncited sentence gets a citation added when one abstract supports it at least this well."""
MARGIN = 0.05
"""A citation is re-pointed only to an abstract that scores this much better than the cited one."""
DENSE_WEIGHT = 0.5
"""Weight of the embedding cosine in the combined score (the rest is content-word overlap)."""

KEY_RE = re.compile(r"\[\s*((?:P(?:aper)?\s*)?\d+(?:\s*[,;]\s*(?:P(?:aper)?\s*)?\d+)*)\s*\]", re.IGNORECASE)
"""A citation group: ``[1]``, ``[1, 3]``, ``[P2]``, ``[Paper 2]``."""
_KEY_NUM = re.compile(r"\d+")
_END_PUNCT = re.compile(r"([.!?:;]+[\"')\]]*)$")

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(previous|prior|above|earlier|all|any|other|the)\b"
    r"[^.]{0,30}\b(instructions?|prompts?|rules|context|guidelines)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions?\b"
    r"|\b(respond|reply|answer|output|say|print|write)\s+(only|exactly)\b"
    r"|\b(respond|reply|answer|output|say|print|write)\s+(with\s+)?(the\s+)?(word|phrase|string)\b"
    r"|\b(respond|reply|say|print)\s+(with\s+)?[\"'“]"
    r"|\balways cite\b|\bcite (only |this paper|paper|\[)",
    re.IGNORECASE,
)

_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor
    not now of off on once only or other our ours out over own paper papers same she should so some such
    than that the their theirs them then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours via using use
    used based show shows shown propose proposes proposed present presents study studies work approach
    method methods new result results also however thus within without across introduce introduces
    introduced colleagues colleague coauthors authors author researchers team et al""".split()
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> object | None:
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None


def content_words(text: str) -> set[str]:
    """Stemmed, lower-cased content words (stop words and one-letter tokens dropped)."""
    words = [w for w in re.findall(r"[a-z0-9]+", fold(text)) if w not in _STOPWORDS and len(w) > 1]
    stemmer = _stemmer()
    if stemmer is not None:
        words = stemmer.stemWords(words)  # type: ignore[attr-defined]
    return set(words)


def looks_like_instruction(sentence: str) -> bool:
    """True for sentences that address the reader as a model ("ignore previous instructions …")."""
    return bool(_INJECTION.search(sentence))


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


LONG_SENTENCE = 35
"""Sentences longer than this (in words) are split at semicolons into separately ranked clauses."""


def _clauses(sentence: str) -> list[str]:
    if len(sentence.split()) <= LONG_SENTENCE:
        return [sentence]
    parts = [p.strip() for p in re.split(r";\s+(?:and\s+)?", sentence) if p.strip()]
    return parts if len(parts) > 1 else [sentence]


def units_of(paper: Paper) -> list[str]:
    """What a paper can be cited for: its title and each abstract sentence (long ones cut into clauses),
    leaving out instruction-like sentences."""
    sentences = [c for s in split_sentences(paper.abstract) for c in _clauses(s)]
    return [paper.title, *[s for s in sentences if not looks_like_instruction(s)]]


def _metadata_words(paper: Paper) -> set[str]:
    words = content_words(" ".join(paper.authors))
    if paper.year is not None:
        words.add(str(paper.year))
    return words


@dataclass
class Support:
    """How well one paper supports one sentence."""

    score: float
    evidence: str
    dense: float = 0.0
    lexical: float = 0.0


class SupportChecker:
    """Scores answer sentences against a fixed list of retrieved papers.

    Embeds each paper's title and abstract sentences once (when ``encode`` is given; without it the
    score is content-word overlap alone). ``pipeline`` also uses it to pick the sentences of each
    abstract that are most relevant to the question.
    """

    def __init__(self, papers: Sequence[Paper], encode: Encode | None = None) -> None:
        self.papers = list(papers)
        self.encode = encode
        self.units = [units_of(p) for p in self.papers]
        self.unit_words = [[content_words(u) for u in units] for units in self.units]
        # what a paper supports lexically: its title and abstract words, plus its metadata (author names,
        # year), so "Chao and colleagues proposed JailbreakBench [1]" is supported by that paper's record
        self.paper_words = [
            (set().union(*words) if words else set()) | _metadata_words(p)
            for p, words in zip(self.papers, self.unit_words, strict=True)
        ]
        self.title_words = [content_words(p.title) for p in self.papers]
        self.vectors: list[np.ndarray] | None = None
        if encode is not None:
            flat = [u for units in self.units for u in units]
            matrix = np.asarray(encode(flat), dtype=np.float32) if flat else np.zeros((0, 1), np.float32)
            self.vectors, start = [], 0
            for units in self.units:
                self.vectors.append(matrix[start : start + len(units)])
                start += len(units)

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.encode is None or not texts:
            return None
        return np.asarray(self.encode(list(texts)), dtype=np.float32)

    def unit_relevance(self, query: str) -> list[np.ndarray]:
        """Per paper, the relevance of each unit (title first) to ``query``, 0..1."""
        vec = self._embed([query])
        qwords = content_words(query)
        out = []
        for i, words in enumerate(self.unit_words):
            lex = np.array([len(qwords & w) / len(qwords) if qwords else 0.0 for w in words], np.float32)
            if vec is not None and self.vectors is not None:
                dense = np.clip(self.vectors[i] @ vec[0], 0.0, 1.0)
                out.append(DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lex)
            else:
                out.append(lex)
        return out

    def score_all(self, sentences: Sequence[str]) -> list[list[Support]]:
        """``result[s][p]``: how well paper ``p`` supports sentence ``s``."""
        vecs = self._embed(sentences)
        result: list[list[Support]] = []
        for s_i, sentence in enumerate(sentences):
            words = content_words(sentence)
            row = []
            for p_i, units in enumerate(self.units):
                lexical = len(words & self.paper_words[p_i]) / len(words) if words else 0.0
                unit_lex = np.array(
                    [len(words & w) / len(words) if words else 0.0 for w in self.unit_words[p_i]], np.float32
                )
                if vecs is not None and self.vectors is not None and len(units):
                    sims = np.clip(self.vectors[p_i] @ vecs[s_i], 0.0, 1.0)
                    dense = float(sims.max())
                    score = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lexical
                    best = int(np.argmax(sims + unit_lex))
                else:
                    dense, score = 0.0, lexical
                    best = int(np.argmax(unit_lex)) if len(units) else 0
                evidence = units[best] if units else ""
                row.append(Support(round(float(score), 4), evidence, round(dense, 4), round(lexical, 4)))
            result.append(row)
        return result


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
        sentences = [_Sentence(strip_keys(s), parse_keys(s)) for s in split_sentences(body)]
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
) -> Checked:
    """Verify the model's citations in ``raw``.

    ``keys`` maps each key number shown to the model to the index of its paper in ``checker.papers``;
    any other key is dropped. Papers in ``checker`` without a key (retrieved but not in the prompt) can
    still receive repaired or added citations.
    """
    lines = _split_answer(raw)
    sentences = [s for line in lines for s in line]
    scores = checker.score_all([s.text for s in sentences]) if sentences else []
    dropped: list[int] = []
    removed = 0
    for s_i, sentence in enumerate(sentences):
        row = scores[s_i]
        order = sorted(range(len(row)), key=lambda p: row[p].score, reverse=True)
        best = order[0] if order else None
        cited: list[int] = []
        for key in sentence.keys:
            if key not in keys:
                dropped.append(key)
            elif keys[key] not in cited:
                cited.append(keys[key])
        if not _is_content(sentence.text):
            sentence.uses = [_Use(p, row[p]) for p in cited if row[p].score >= related]
            continue
        for p in cited:
            sup = row[p]
            if sup.score >= supported:
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

    # A citation of the same paper that is fine elsewhere need not stay flagged here; keep per-use flags.
    numbers: dict[int, int] = {}
    for sentence in sentences:
        for use in sentence.uses:
            numbers.setdefault(use.paper, len(numbers) + 1)

    out_lines = []
    for line in lines:
        parts = []
        for sentence in line:
            nums = [numbers[u.paper] for u in sentence.uses]
            parts.append(_with_keys(sentence.text, nums))
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
            if sentence.text not in cit.sentences:
                cit.sentences.append(sentence.text)
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
    )


def _with_keys(sentence: str, numbers: list[int]) -> str:
    if not numbers:
        return sentence
    keys = "".join(f"[{n}]" for n in numbers)
    match = _END_PUNCT.search(sentence)
    if match:
        return f"{sentence[: match.start()].rstrip()} {keys}{match.group(1)}"
    return f"{sentence} {keys}"
