"""Retrieval: dense (Chroma) + BM25 (bm25s), fused, aggregated to papers, filtered, optionally reranked.

``search(query, k, filters, settings)`` returns :class:`rag.types.Hits`: one hit per paper, best first,
with the filter that was applied (given explicitly and/or read from the question), a note when the result
is empty or unreliable, and ``good_match`` False when nothing in the corpus answers the question well.

Steps (the recipe and its knobs were tuned on the SciFact train split; see docs/retrieval.md):

1. Check and clean the query; read author/year/kind/category filters written in it (:mod:`rag.filters`)
   and merge them with the explicit ones. A filter that allows no paper returns no hits, with a note
   saying which part matched nothing.
2. Dense: the query vector against the chunk vectors in Chroma (a filter becomes a paper-id allow-list,
   computed over the records' columns); chunk hits become paper scores (best chunk).
3. BM25 over whole papers (:mod:`rag.lexical`), scored for every paper and masked by the same allow-list.
4. Late interaction (:mod:`rag.late`): the ``late_depth`` best papers of the dense + BM25 fusion are
   scored by IDF-weighted MaxSim of the question's word-piece vectors (same forward pass as the query
   vector) against the paper's stored ones.
5. Fusion of the three paper scores (``settings.retrieve.fusion``: convex combination of normalised scores,
   or reciprocal-rank fusion).
6. Optional cross-encoder rerank of the top ``rerank_depth`` (:mod:`rag.rerank`).
7. Relevance in 0..1 from each hit's dense similarity, BM25 score and IDF-weighted term coverage, calibrated
   on the eval set's unanswerable questions (:mod:`rag.relevance`); a filter that selects at most ``depth``
   papers counts as a match, and so does a question that names the top hit (a rare term of its title).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from rag.errors import QueryError
from rag.filters import clean_text, coerce_filters, merge_filters
from rag.fusion import aggregate_chunks, fuse
from rag.opened_index import OpenIndex as _Index
from rag.opened_index import indexed_papers as indexed_papers
from rag.opened_index import open_index as _open
from rag.query_filters import ParsedQuery, is_listing, parse_query
from rag.relevance import names_a_title, relevance, term_coverage
from rag.settings import Settings
from rag.types import Filters, Hit, Hits, Paper

log = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "bm25")
MAX_QUERY_CHARS = 8000
"""Longer queries are refused: a question, or a pasted abstract, fits well inside this."""
ID_LIST_MAX = 20_000
"""Allow-lists up to this many papers go to Chroma as ``paper_id $in``. Larger ones are not sent: Chroma is
asked for more chunks, unfiltered, and its hits are filtered here. Measured at 100k papers (one query, 300
chunks): ``$in`` of 2,782 ids 123 ms, of 10,000 ids 176 ms, of 30,000 ids 408 ms; the same year filters as
a metadata range (``$gte``/``$lte``) 698 and 1,089 ms; unfiltered, 3 ms for 300 chunks, 70 ms for 10,000."""
OVERFETCH_MAX = 20_000
"""At most this many chunks are asked for when a large allow-list is applied after the query."""


def check_query(query: Any) -> str:
    """The cleaned query, or :class:`QueryError` for empty, non-text or oversized queries."""
    if not isinstance(query, str):
        raise QueryError(f"The query must be text, not {type(query).__name__}.")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"The query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}. "
            "Ask a shorter question (a sentence or a pasted abstract)."
        )
    text = clean_text(query)
    if not text:
        raise QueryError("The query is empty: ask a question or give some keywords.")
    return text


# -------------------------------------------------------------------------------------- retrievers
def _dense(
    index: _Index, vector: np.ndarray, depth: int, allowed: set[str] | None
) -> tuple[dict[str, float], dict[str, Any]]:
    total = len(index.papers)
    where: dict[str, Any] | None = None
    n = math.ceil(depth * index.chunks_per_paper) + 5
    if allowed is not None:
        if len(allowed) <= ID_LIST_MAX:
            where = {"paper_id": {"$in": sorted(allowed)}}
            if len(allowed) <= depth:  # a selective filter: score every chunk of every allowed paper
                n = math.ceil(len(allowed) * index.chunks_per_paper * 3) + 10
        else:  # as many chunks as hold ``n`` allowed ones on average, filtered below
            n = max(n, min(math.ceil(n * total / len(allowed)), OVERFETCH_MAX))
    rescore = 2 * (math.ceil(depth * index.chunks_per_paper) + 5)  # index.dense_dims: full cosines of these
    hits = index.store.query(vector, n, where=where, contents=False, allowed=allowed, rescore=rescore)
    if allowed is not None:
        hits = [h for h in hits if h.paper_id in allowed]
    best = aggregate_chunks(hits)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[: max(depth, len(allowed or ()))]
    return {pid: sim for pid, (sim, _) in ranked}, {pid: hit for pid, (_, hit) in ranked}


def _late_index(index: _Index) -> Any:
    """The index's word-piece vectors (:mod:`rag.late`), or None when it was built without them."""
    from rag.late import get_late_index

    late = get_late_index(index.folder)
    if late is None and not index.warned_no_late:
        index.warned_no_late = True
        log.info("%s has no word-piece vectors: hybrid search fuses dense + BM25 only", index.folder)
    return late


def _bm25(index: _Index, text: str, depth: int, allowed: set[str] | None) -> dict[str, float]:
    from rag.corpus_identity import BM25_DIR
    from rag.lexical import get_lexical_index, top_n

    lexical = get_lexical_index(index.folder / BM25_DIR)
    scores = lexical.scores(text)
    n = depth if allowed is None or len(allowed) > depth else len(allowed)
    return dict(top_n(scores, lexical.ids, n, lexical.mask(allowed)))


# ---------------------------------------------------------------------------------------------- search
def search(
    query: str,
    k: int = 10,
    filters: Filters | Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    *,
    mode: str | None = None,
) -> Hits:
    """Papers for ``query``, best first (see the module docstring).

    ``filters``: a :class:`Filters` or a dict (``{"author": "Jacot", "year": "2019-", "kind": "poster"}``);
    filters written in the question fill in the fields not given. ``mode``: hybrid (default), dense or bm25.
    Raises :class:`QueryError` for an empty or oversized query, unknown filter names or impossible ranges,
    and :class:`IndexMissingError` when nothing is indexed.
    """
    started = time.perf_counter()
    settings = settings or Settings()
    rs = settings.retrieve
    text = check_query(query)
    explicit = coerce_filters(filters)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive whole number of papers, not {k!r}.")
    mode = (mode or rs.mode).lower()
    if mode not in MODES:
        raise QueryError(f"Unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}.")

    index = _open(settings)
    parsed = parse_query(text, index.lexicon) if rs.parse_filters else ParsedQuery(text=text)
    applied = merge_filters(explicit, parsed.filters)
    from_query = not parsed.filters.is_empty() and applied != explicit

    def result(
        hits: list[Hit], note: str | None, good: bool, total: int | None = None, named: bool = False
    ) -> Hits:
        return Hits(
            hits,
            total=total,
            named=named,
            query=text,
            filters=applied,
            filters_from_query=from_query,
            note=note,
            good_match=good,
            seconds=round(time.perf_counter() - started, 4),
        )

    allowed: set[str] | None = None
    relaxed: str | None = None
    if not applied.is_empty():
        allowed = index.filter.allowed(applied)
        if not allowed and applied.authors_together:  # no joint paper: the papers of any of them
            relaxed = (
                f"No paper has all of {', '.join(applied.authors)} as authors; showing papers by any of them."
            )
            applied = applied.model_copy(update={"authors_together": False})
            allowed = index.filter.allowed(applied)
        if not allowed:
            return result([], index.filter.explain_empty(applied), False)
    if allowed is not None and (parsed.listing or is_listing(parsed.text)):
        listed = _listing(index, allowed, k)
        listed_note = _listing_note(applied, len(allowed), k)
        return result(
            listed, f"{relaxed} {listed_note}" if relaxed else listed_note, True, total=len(allowed)
        )

    depth = max(rs.depth, k)
    dense: dict[str, float] = {}
    chunks: dict[str, Any] = {}
    lexical: dict[str, float] = {}
    late_index = _late_index(index) if mode == "hybrid" and rs.late_weight > 0 else None
    pieces: tuple[np.ndarray, np.ndarray] | None = None
    if mode in ("hybrid", "dense"):
        from rag.query_encoder import get_query_encoder

        embedder = get_query_encoder(settings)  # MiniLM in numpy: no torch import for one question
        if late_index is not None:  # the question's word-piece vectors come from the same forward pass
            vector, ids, vecs = embedder.encode_query_with_tokens(parsed.text)
            pieces = (ids, vecs)
        else:
            vector = embedder.encode_query(parsed.text)
        dense, chunks = _dense(index, vector, depth, allowed)
    lexical = _bm25(index, parsed.text, depth, allowed)  # in dense mode too: it feeds the relevance
    if mode == "hybrid":
        knobs: dict[str, Any] = {
            "method": rs.fusion,
            "dense_weight": rs.dense_weight,
            "normalisation": rs.normalisation,
            "rrf_k": rs.rrf_k,
            "late_weight": rs.late_weight,
        }
        fused = fuse(dense, lexical, **knobs)  # dense + BM25 alone: its head is what late interaction scores
        if late_index is not None and pieces is not None:
            head = sorted(fused, key=lambda pid: (-fused[pid], pid))[: max(rs.late_depth, k)]
            late = late_index.scores(pieces[0], pieces[1], head)
            if late:
                fused = fuse(dense, lexical, late=late, **knobs)
    else:
        fused = dict(dense if mode == "dense" else lexical)
    order = sorted(fused, key=lambda pid: (-fused[pid], pid))

    dense_rank = {pid: r for r, pid in enumerate(sorted(dense, key=lambda p: -dense[p]), start=1)}
    bm25_rank = {pid: r for r, pid in enumerate(sorted(lexical, key=lambda p: -lexical[p]), start=1)}
    if mode == "dense":
        bm25_rank = {}
    floor = min(dense.values()) if dense else None
    coverage = _coverage(index, parsed.text, order) if dense else {}
    hits: list[Hit] = []
    shown = max(k, rs.rerank_depth) if rs.rerank_model else k  # records are read only for these
    for pid in order:
        if len(hits) >= shown:
            break
        paper = index.papers.get(pid)
        if paper is None:
            continue
        ranks = {}
        if pid in dense_rank:
            ranks["dense"] = dense_rank[pid]
        if pid in bm25_rank:
            ranks["bm25"] = bm25_rank[pid]
        chunk = chunks.get(pid)
        sim = dense.get(pid, floor)
        hits.append(
            Hit(
                paper=paper,
                score=round(float(fused[pid]), 6),
                text=chunk.text if chunk is not None else _paper_text(paper),  # "" until _with_texts
                chunk_id=chunk.chunk_id if chunk is not None else None,
                retrievers=list(ranks),
                ranks=ranks,
                relevance=(
                    round(relevance(sim, lexical.get(pid, 0.0), coverage.get(pid, 0.0)), 4)
                    if sim is not None
                    else None
                ),
            )
        )
    # texts for the hits shown, and for the reranker's head when one is set
    hits = _with_texts(hits, shown, settings)
    hits = _rerank(hits, parsed.text, settings)[:k]

    note: str | None = None
    good = bool(hits)
    named = False
    if not hits:
        note = "No paper shares a word with the question." if mode == "bm25" else "Nothing was retrieved."
    elif mode != "bm25":  # BM25 alone has no calibrated relevance
        best = max((h.relevance or 0.0) for h in hits)
        # A filter that selects only a few papers is itself the evidence: the hits are the papers the
        # question's metadata asks for ("Which papers are in the OC category?"), whatever the text scores.
        selective = allowed is not None and len(allowed) <= depth
        named = _names_top(index, parsed.text, hits[0].paper)
        good = best >= rs.min_relevance or selective or named
        if not good:
            note = (
                f"Nothing in the corpus seems to match this question well (best relevance "
                f"{math.floor(best * 1000) / 1000:.3f}, below the threshold {rs.min_relevance:g}); the hits "
                "below are the closest papers."
            )
    if (
        applied is not None
        and not applied.is_empty()
        and note is None
        and allowed is not None
        and len(allowed) < k
    ):
        note = f"Only {len(allowed)} paper(s) match the filter ({applied.describe()})."
    if relaxed:
        note = f"{relaxed} {note}" if note else relaxed
    return result(hits, note, good, total=len(allowed) if allowed is not None else None, named=named)


def _names_top(index: _Index, text: str, paper: Paper) -> bool:
    from rag.corpus_identity import BM25_DIR
    from rag.lexical import get_lexical_index

    return names_a_title(get_lexical_index(index.folder / BM25_DIR), text, paper.title, paper.id)


def _coverage(index: _Index, text: str, paper_ids: list[str]) -> dict[str, float]:
    from rag.corpus_identity import BM25_DIR
    from rag.lexical import get_lexical_index

    return term_coverage(get_lexical_index(index.folder / BM25_DIR), text, paper_ids)


def _with_texts(hits: list[Hit], n: int, settings: Settings) -> list[Hit]:
    """The first ``n`` hits with their best chunk's text, re-made from their papers (Chroma keeps no chunk
    texts; dense queries return ids and distances only). Without the tokenizer, the paper's text."""
    missing = {h.paper.id: h.paper for h in hits[:n] if h.chunk_id and not h.text}
    if not missing:
        return hits
    texts = _chunk_texts(list(missing.values()), settings)
    return [
        h.model_copy(update={"text": texts.get(h.chunk_id) or _paper_text(h.paper)})
        if i < n and h.chunk_id and not h.text
        else h
        for i, h in enumerate(hits)
    ]


def _chunk_texts(papers: list[Paper], settings: Settings) -> dict[str, str]:
    from rag.chunk import chunk_with_settings
    from rag.errors import EmbeddingModelError

    try:
        grouped = chunk_with_settings(papers, settings)
    except (EmbeddingModelError, OSError) as exc:
        log.warning("showing whole abstracts: the chunk texts need the embedding model's tokenizer (%s)", exc)
        return {}
    return {c.id: c.text for group in grouped for c in group}


def _paper_text(paper: Paper) -> str:
    return f"{paper.title}\n\n{paper.abstract}".strip()


def _listing(index: _Index, allowed: set[str], k: int) -> list[Hit]:
    """Filter-only questions: the matching papers, newest first."""
    papers = [index.papers[pid] for pid in index.filter.newest(allowed, k)]
    return [
        Hit(paper=p, score=1.0, text=_paper_text(p), retrievers=["filter"], relevance=1.0) for p in papers
    ]


def _listing_note(applied: Filters, n: int, k: int) -> str:
    shown = f"; showing the first {k}, newest first" if n > k else ""
    return f"{n} paper(s) match the filter ({applied.describe()}){shown}."


def _rerank(hits: list[Hit], text: str, settings: Settings) -> list[Hit]:
    from rag.rerank import get_reranker, rerank_order

    reranker = get_reranker(settings)
    if reranker is None or len(hits) < 2:
        return hits
    depth = min(settings.retrieve.rerank_depth, len(hits))
    head = hits[:depth]
    order = rerank_order(reranker, text, [h.text or _paper_text(h.paper) for h in head])
    reranked = []
    for pos, score in order:
        hit = head[pos]
        reranked.append(
            hit.model_copy(
                update={
                    "score": round(float(score), 6),
                    "retrievers": [*hit.retrievers, "rerank"],
                }
            )
        )
    return reranked + hits[depth:]
