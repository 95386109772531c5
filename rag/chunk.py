"""`Paper` → `Chunk`s: sentence-bounded pieces of an abstract, each led by the paper's title.

* A chunk's text is ``"<title>\\n\\n<sentences>"``; its length, measured with the embedding model's own
  tokenizer ([CLS]/[SEP] included), never exceeds ``max_tokens``, so nothing is silently truncated.
* Consecutive chunks of one abstract repeat ``overlap`` sentences.
* A sentence longer than the budget on its own is cut at word boundaries.
* A title-only paper (no abstract) gets one chunk: its title and its authors.
* Chunk ids are ``<paper id>#<n>`` (n from 0): the same paper text always gives the same ids.

Every chunk carries its paper's metadata as Chroma-friendly scalars (see :func:`chunk_metadata`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rag.types import Chunk, Paper, fold

if TYPE_CHECKING:
    from rag.settings import Settings

CountTokens = Callable[[list[str]], list[int]]
"""Word pieces per text, special tokens included (``rag.embed.Tokenizer.count``)."""

SPECIAL_TOKENS = 2  # [CLS] and [SEP]: counted once per chunk

# Words that end with a full stop without ending a sentence.
_ABBREVIATIONS = {
    "al", "e.g", "i.e", "eg", "ie", "etc", "vs", "cf", "fig", "figs", "eq", "eqs", "ref", "refs", "sec",
    "no", "nos", "vol", "approx", "resp", "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc", "ltd",
    "co", "corp", "dept", "univ", "tab", "ca", "viz", "wrt", "w.r.t", "a.k.a", "aka", "u.s", "u.k", "ph.d",
}
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$\\])")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at ``.``, ``!`` or ``?`` followed by space and a capital or digit.

    Abbreviations (``et al.``, ``e.g.``, ``Fig.``), initials (``J. Smith``) and decimals stay inside.
    """
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start()
        piece = text[start:end].rstrip()
        last_word = piece.rsplit(" ", 1)[-1].rstrip(".!?\"')]").lower()
        if piece.endswith(".") and (last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word)):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def paper_hash(paper: Paper) -> str:
    """Content hash of everything that shapes a paper's chunks and metadata (not its line number)."""
    data = paper.model_dump_json(exclude={"line"})
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:20]


def chunk_metadata(paper: Paper, content_hash: str | None = None) -> dict[str, str | int | float | bool]:
    """Paper metadata as Chroma scalars. Keys whose value is unknown are left out (``year`` included).

    ``authors`` is ``"; "``-joined; ``authors_folded`` is the same, lower-case and accent-free
    (``rag.types.fold``), for matching names. ``sources`` is ``"; "``-joined.
    """
    meta: dict[str, str | int | float | bool] = {
        "paper_id": paper.id,
        "title": paper.title,
        "authors": "; ".join(paper.authors),
        "authors_folded": fold("; ".join(paper.authors)),
        "source": paper.source,
        "sources": "; ".join(paper.sources or [paper.source]),
        "has_abstract": paper.has_abstract,
    }
    if paper.year is not None:
        meta["year"] = int(paper.year)
    for key in ("category", "kind", "venue", "date"):
        value = getattr(paper, key)
        if value:
            meta[key] = str(value)
    if paper.authors_truncated:
        meta["authors_truncated"] = True
    if content_hash:
        meta["content_hash"] = content_hash
    return meta


def _cut_words(text: str, budget: int, count: CountTokens) -> list[str]:
    """Cut ``text`` at word boundaries into pieces of at most ``budget`` word pieces each."""
    words = text.split(" ")
    sizes = [n - SPECIAL_TOKENS for n in count(words)]
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for word, size in zip(words, sizes, strict=True):
        if current and used + size > budget:
            pieces.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += size
    if current:
        pieces.append(" ".join(current))
    return pieces


def _pack(
    units: list[str], sizes: list[int], budget: int, overlap: int, max_units: int | None = None
) -> list[list[str]]:
    """Greedy packing of sentences into groups of at most ``budget`` tokens and ``max_units`` sentences,
    repeating ``overlap``."""
    groups: list[list[str]] = []
    current: list[int] = []
    for i, size in enumerate(sizes):
        full = max_units is not None and len(current) >= max_units
        if current and (full or sum(sizes[j] for j in current) + size > budget):
            groups.append([units[j] for j in current])
            tail = current[len(current) - overlap :] if overlap else []
            while tail and (
                sum(sizes[j] for j in tail) + size > budget
                or (max_units is not None and len(tail) >= max_units)
            ):
                tail = tail[1:]
            current = tail
        current.append(i)
    if current:
        groups.append([units[j] for j in current])
    return groups


def chunk_paper(
    paper: Paper,
    count: CountTokens,
    *,
    max_tokens: int = 200,
    overlap: int = 1,
    max_sentences: int | None = None,
    content_hash: str | None = None,
) -> list[Chunk]:
    """Chunks of one paper (see the module docstring)."""
    return chunk_papers(
        [paper],
        count,
        max_tokens=max_tokens,
        overlap=overlap,
        max_sentences=max_sentences,
        hashes=[content_hash],
    )[0]


def chunk_papers(
    papers: Sequence[Paper],
    count: CountTokens,
    *,
    max_tokens: int = 200,
    overlap: int = 1,
    max_sentences: int | None = None,
    hashes: Sequence[str | None] | None = None,
) -> list[list[Chunk]]:
    """Chunks of each paper, in order. Tokenises all titles and sentences in one call.

    ``max_sentences`` caps the sentences (or pieces of an over-long sentence) per chunk; ``overlap`` must be
    smaller than it.
    """
    if max_sentences is not None and overlap >= max_sentences:
        raise ValueError(f"overlap ({overlap}) must be smaller than max_sentences ({max_sentences})")
    hashes = list(hashes) if hashes is not None else [paper_hash(p) for p in papers]
    sentences = [split_sentences(p.abstract) for p in papers]
    titles = [re.sub(r"\s+", " ", p.title).strip() for p in papers]
    flat = titles + [s for group in sentences for s in group]
    sizes = [n - SPECIAL_TOKENS for n in count(flat)] if flat else []
    title_sizes, sentence_sizes = sizes[: len(papers)], sizes[len(papers) :]
    out: list[list[Chunk]] = []
    offset = 0
    for paper, title, title_size, group, content_hash in zip(
        papers, titles, title_sizes, sentences, hashes, strict=True
    ):
        group_sizes = sentence_sizes[offset : offset + len(group)]
        offset += len(group)
        meta = chunk_metadata(paper, content_hash)
        room = max_tokens - SPECIAL_TOKENS
        if title_size > room // 2:  # an absurdly long title: keep its start as context
            title = _cut_words(title, room // 2, count)[0]
            title_size = count([title])[0] - SPECIAL_TOKENS
        if not group:  # title-only paper: title and authors
            authors = ", ".join(paper.authors) or paper.author_line()
            text = f"{title}\n\n{authors}".strip() if authors else title
            if count([text])[0] > max_tokens:
                text = _cut_words(text, room, count)[0]
            texts = [text]
        else:
            budget = room - title_size - 1  # the blank line after the title
            units: list[str] = []
            unit_sizes: list[int] = []
            for sentence, size in zip(group, group_sizes, strict=True):
                if size <= budget:
                    units.append(sentence)
                    unit_sizes.append(size)
                    continue
                for piece in _cut_words(sentence, budget, count):
                    units.append(piece)
                    unit_sizes.append(count([piece])[0] - SPECIAL_TOKENS)
            texts = [
                f"{title}\n\n{' '.join(g)}" for g in _pack(units, unit_sizes, budget, overlap, max_sentences)
            ]
        chunks = []
        for n, text in enumerate(texts):
            chunk_meta = dict(meta)
            chunk_meta["n"] = n
            chunk_meta["n_chunks"] = len(texts)
            chunks.append(Chunk(id=f"{paper.id}#{n}", paper_id=paper.id, n=n, text=text, metadata=chunk_meta))
        out.append(chunks)
    return out


def chunk_with_settings(
    papers: Sequence[Paper], settings: Settings, hashes: Sequence[str | None] | None = None
) -> list[list[Chunk]]:
    """Chunks of each paper as the index of ``settings`` makes them (its embedding model's tokenizer, its
    chunk sizes). A chunk's text is a function of its paper and these settings, so the index keeps no copy:
    ``rag index`` and search re-make the texts they need from the paper records."""
    from rag.embed import get_tokenizer

    tokenizer = get_tokenizer(settings)
    return chunk_papers(
        papers,
        tokenizer.count,
        max_tokens=min(settings.index.chunk_max_tokens, tokenizer.max_seq_length),
        overlap=settings.index.chunk_overlap_sentences,
        max_sentences=settings.index.chunk_max_sentences,
        hashes=hashes,
    )


def chunks_in_order(
    papers: list[Paper], hashes: dict[str, str], made: dict[str, list[Chunk]], settings: Settings
) -> list[Chunk]:
    """Every paper's chunks, in paper order: those chunked in this run as they are, the others re-made from
    their records (Chroma keeps no chunk texts; a chunk's text is a function of its paper and the
    settings, rag.chunk.chunk_with_settings)."""
    rest = [p for p in papers if p.id not in made]
    for start in range(0, len(rest), 2000):  # batches bound the tokenizer's memory
        part = rest[start : start + 2000]
        for paper, group in zip(
            part, chunk_with_settings(part, settings, [hashes[p.id] for p in part]), strict=True
        ):
            made[paper.id] = group
    return [c for p in papers for c in made[p.id]]
