"""BM25 over papers with bm25s, persisted beside the Chroma collection.

Contract used by `rag.index.build_index`: ``build_lexical_index(chunks, folder)`` writes the index for exactly
these chunks into ``folder`` (replacing what was there), as one segment;
``extend_lexical_index(old, new, added, removed, chunks_for)`` writes into ``new`` the index in ``old`` with
papers removed and added, at a cost proportional to the change (Lucene-style segments,
:mod:`rag.lexical_segments`); ``load_lexical_index(folder)`` reads either back as a :class:`LexicalIndex`.
:func:`get_lexical_index` caches the loaded index per process, keyed by the folder and its params file's
modification time, so a query never rebuilds or re-reads it.

The index is document-level: the chunks of a paper are stitched back into one text (title once, each
sentence once), with the title repeated ``TITLE_WEIGHT`` times. Tokens are lower-cased, accent-free words of
two or more characters, English stop words removed, Snowball-stemmed (PyStemmer). All of this was tuned on
the SciFact train split (see docs/retrieval.md).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMissingError
from rag.idmap import IdMap
from rag.lexical_segments import (
    BM25S_FILES,
    PARAMS_FILE,
    SEGMENT_PREFIX,
    Segment,
    link_segment,
    lucene_idf,
    plan_merge,
    read_params,
    segments_of,
    write_segment,
)
from rag.types import Chunk

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
TITLE_WEIGHT = 2
"""How many times a paper's title is counted in its BM25 document."""
K1, B = 1.2, 0.75
TOKENIZER = "casefold-noaccent-\\w\\w+-stop33-snowball-en"
_SHAPE = {"title_weight": TITLE_WEIGHT, "k1": K1, "b": B, "tokenizer": TOKENIZER}
"""What shapes the index: an index written with other values is rebuilt, not extended."""

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with""".split()
)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-case, accent-free, stop words dropped, stemmed word tokens."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = [w for w in _TOKEN.findall(folded) if w not in _STOPWORDS]
    return list(_stemmer().stemWords(words)) if words else []


def paper_texts(chunks: Sequence[Chunk]) -> tuple[list[str], list[str], list[str]]:
    """Chunks (grouped by paper, in order) → (paper ids, titles, bodies), each sentence once per paper."""
    ids: list[str] = []
    titles: dict[str, str] = {}
    bodies: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.paper_id, c.n)):
        pid = chunk.paper_id
        title = str(chunk.metadata.get("title") or "")
        text = chunk.text
        head, sep, body = text.partition("\n\n")
        if sep and (not title or head.strip() == title.strip() or not body):
            title = title or head
        elif not sep:
            body = text if text.strip() != title.strip() else ""
        if pid not in titles:
            ids.append(pid)
            titles[pid] = title
            bodies[pid] = []
            seen[pid] = set()
        from rag.chunk import split_sentences

        for sentence in split_sentences(body):
            if sentence not in seen[pid]:
                seen[pid].add(sentence)
                bodies[pid].append(sentence)
    return ids, [titles[i] for i in ids], [" ".join(bodies[i]) for i in ids]


class LexicalIndex:
    """A loaded BM25 index over papers: ``scores(query)`` for every live paper, ``search`` for the top ones.

    ``ids`` are the live papers, segment after segment, as an :class:`rag.idmap.IdMap` (``ids[i]`` is the
    paper of score ``i``, ``ids.row(pid)`` its position; no Python object per paper).
    With one segment and no dead papers, scores are bm25s's own (one ``get_scores_from_ids`` call). With more,
    each query term's scores in a segment are rescaled by ``idf_global / idf_segment``: the global IDF is
    Lucene's ``log(1 + (N − df + 0.5)/(df + 0.5))`` over the live papers of all segments (N papers, df of them
    with the term), so a term weighs the same in every segment. The length normalisation stays each segment's
    own (its average document length when it was written): an approximation, close when segments have
    similar length distributions (docs/retrieval.md, BM25 segments).
    """

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._live = [seg.live for seg in segments]
        self._starts = np.cumsum([0, *(len(live) for live in self._live)])[:-1].tolist()
        whole = len(segments) == 1 and not len(segments[0].dead)
        self.ids = segments[0].ids if whole else _joined(segments, self._live)
        self._single: Any = segments[0].retriever if whole else None

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str | list[str], weights: dict[str, float] | None = None) -> np.ndarray:
        """BM25 score of every paper (aligned with ``ids``); zeros when no query word is in the index.

        ``weights`` (token → weight) scores a weighted bag of tokens instead, e.g. an expanded query.
        """
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        if self._single is not None:
            return self._single_scores(tokens, weights)
        out = np.zeros(len(self.ids), dtype=np.float32)
        for token, weight in (Counter(tokens) if weights is None else weights).items():
            if weight:
                self._add_term(out, token, float(weight))
        return out

    def _single_scores(self, tokens: list[str], weights: dict[str, float] | None) -> np.ndarray:
        """bm25s's scores of the one segment, as written (the index of a fresh build)."""
        vocab = self._single.vocab_dict
        n_cols = len(self.segments[0].df_live)
        if weights is not None:
            out = np.zeros(len(self.ids), dtype=np.float32)
            for token, weight in weights.items():
                tid = vocab.get(token)
                if tid is not None and tid < n_cols and weight:
                    out += weight * self._single.get_scores_from_ids([tid])
            return out
        ids = [vocab[t] for t in tokens if t in vocab and vocab[t] < n_cols]
        if not ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._single.get_scores_from_ids(ids), dtype=np.float32)

    def _add_term(self, out: np.ndarray, token: str, weight: float) -> None:
        """Add ``weight`` × the term's BM25 score at the global IDF to each live paper's entry of ``out``."""
        cols = [seg.column(token) for seg in self.segments]
        df = sum(int(seg.df_live[c]) for seg, c in zip(self.segments, cols, strict=True) if c is not None)
        if not df:
            return
        idf = lucene_idf(df, len(self.ids))
        for seg, col, live, start in zip(self.segments, cols, self._live, self._starts, strict=True):
            if col is None or not len(live):
                continue
            got = seg.retriever.get_scores_from_ids([col])
            got = got if len(live) == len(seg.ids) else got[live]
            out[start : start + len(live)] += (weight * idf / seg.idf_built(col)) * got

    def contains(self, term: str) -> np.ndarray | None:
        """Which papers (aligned with ``ids``) contain the BM25 token ``term``; None when none does."""
        out = np.zeros(len(self.ids), dtype=bool)
        for seg, live, start in zip(self.segments, self._live, self._starts, strict=True):
            col = seg.column(term)
            if col is not None and seg.df_live[col]:
                has = np.zeros(len(seg.ids), dtype=bool)
                has[seg.postings(col)] = True
                out[start : start + len(live)] = has[live]
        return out if out.any() else None

    def doc_freq(self, term: str) -> int:
        """How many papers contain the BM25 token ``term``."""
        cols = [(seg, seg.column(term)) for seg in self.segments]
        return sum(int(seg.df_live[col]) for seg, col in cols if col is not None)

    def search(self, query: str, n: int, allowed: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The ``n`` best (paper id, score) pairs with a positive score, restricted to ``allowed`` ids."""
        scores = self.scores(query)
        return top_n(scores, self.ids, n, self.mask(allowed))

    def mask(self, allowed: Iterable[str] | None) -> np.ndarray | None:
        """Which papers (aligned with ``ids``) are in ``allowed`` (None for None: every paper)."""
        return self.ids.mask(allowed)


def _joined(segments: list[Segment], live: list[np.ndarray]) -> IdMap:
    """The live papers of ``segments``, segment after segment, as one IdMap (made from the segments' UTF-8
    ids: no Python string per paper)."""
    encoded = [seg.ids.encoded()[rows] for seg, rows in zip(segments, live, strict=True)]
    return IdMap.from_encoded(np.concatenate(encoded)) if encoded else IdMap([])


def top_n(
    scores: np.ndarray, ids: Sequence[str] | IdMap, n: int, mask: np.ndarray | None = None
) -> list[tuple[str, float]]:
    """Best ``n`` (id, score) with score > 0, best first; ``mask`` False entries are skipped. ``ids`` gives
    the id of each score's position (a list, or an :class:`rag.idmap.IdMap`)."""
    if mask is not None:
        scores = np.where(mask, scores, 0.0)
    n = min(n, int(np.count_nonzero(scores > 0)))
    if n <= 0:
        return []
    idx = np.argpartition(-scores, n - 1)[:n]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(ids[i], float(scores[i])) for i in idx]


_BM25S_OPTIONAL = ("numba", "scipy")


def _bm25s() -> Any:
    """The bm25s module, its logger at our log level: importing bm25s sets its logger to DEBUG, which
    would print "Building index from tokens" at the default level (WARNING; -v INFO, -vv DEBUG).

    bm25s imports numba and scipy.sparse when they are installed (ranx and sentence-transformers bring
    them), for its optional backends (``backend="numba"``, ``csc_backend="scipy"``); rag uses the defaults,
    numpy for both, so neither is ever called. Those imports are ~1.2 s of a fresh `rag search` on the
    2-core machine, so bm25s is imported with them hidden (unless already loaded); both stay importable
    for everything else afterwards."""
    if "bm25s" not in sys.modules:
        hidden = [name for name in _BM25S_OPTIONAL if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
        try:
            import bm25s  # noqa: F401
        finally:
            for name in hidden:
                del sys.modules[name]
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.getLogger("rag").getEffectiveLevel())
    return bm25s


def _documents(chunks: Sequence[Chunk]) -> tuple[list[str], list[list[str]]]:
    """Chunks → (paper ids, one BM25 token list per paper: title ``TITLE_WEIGHT`` times, then the body)."""
    ids, titles, bodies = paper_texts(chunks)
    docs = [tokenize(" ".join([t] * TITLE_WEIGHT + [b])) or [""] for t, b in zip(titles, bodies, strict=True)]
    return ids, docs


def _write_params(folder: Path, segments: list[dict[str, Any]]) -> None:
    """Write the format-3 params file listing ``segments``, and remove what no longer belongs in ``folder``
    (segments it does not list, a format-2 index at the root)."""
    params = {"format": FORMAT_VERSION, **_SHAPE, "segments": segments}
    (folder / PARAMS_FILE).write_text(json.dumps(params), encoding="utf-8")
    listed = {seg["dir"] for seg in segments}
    for path in folder.iterdir():
        if path.is_dir() and path.name.startswith(SEGMENT_PREFIX) and path.name not in listed:
            shutil.rmtree(path, ignore_errors=True)
        elif path.name in BM25S_FILES:
            path.unlink()


def build_lexical_index(chunks: list[Chunk], folder: Path) -> None:
    """Write a BM25 index over the papers these chunks belong to into ``folder`` (replacing it), as one
    segment."""
    bm25s = _bm25s()

    folder.mkdir(parents=True, exist_ok=True)
    ids, docs = _documents(chunks)
    _write_params(folder, [write_segment(bm25s, docs, ids, folder, K1, B)] if ids else [])


def extend_lexical_index(
    old: Path,
    new: Path,
    added: Sequence[Chunk],
    removed: Iterable[str],
    chunks_for: Callable[[list[str]], Sequence[Chunk]],
) -> None:
    """Write into the folder ``new`` (created; empty or missing) the index in ``old`` minus the papers in
    ``removed``, plus the papers of ``added``, without re-reading the rest of the corpus.

    A paper whose text changed is in ``removed`` and its new chunks in ``added`` (a paper in ``added`` that
    is already indexed is superseded either way). ``old`` is never changed: its segment files are hard-linked
    into ``new`` (copied where links fail) and the caller swaps ``new`` into place
    (:func:`rag.writer_lock.swap_dir`). The added papers go into a new segment, together with the live papers
    of the segments that :func:`rag.lexical_segments.plan_merge` folds into it (over 30% dead, or the smallest
    ones while they are at most twice the growing batch): ``chunks_for(paper_ids)`` must return those papers'
    chunks, re-made from their records; a paper it returns no chunk for is dropped. The work is proportional
    to the batch and the folded segments; a full rebuild happens by itself once a batch reaches half the
    largest segment.

    Raises IndexMissingError when ``old`` is missing, unreadable, damaged or built with other tokenizer
    settings: the caller then runs :func:`build_lexical_index` over all chunks.
    """
    if new.resolve() == old.resolve():
        raise ValueError(f"extend_lexical_index writes a new folder, not {old} itself")
    bm25s = _bm25s()
    params = read_params(old)
    if any(params.get(key) != value for key, value in _SHAPE.items()):
        raise IndexMissingError(f"The BM25 index in {old} was built with other settings: rebuilding it.")
    ids, docs = _documents(added)
    gone = {*removed, *ids}
    new.mkdir(parents=True, exist_ok=True)
    try:
        segments = segments_of(old, params)
        for seg in segments:
            seg.kill(gone)
        kept, folded = plan_merge(segments, len(ids))
        entries = [link_segment(seg, new) for seg in kept]
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise IndexMissingError(f"The BM25 index in {old} is damaged ({type(exc).__name__}: {exc}).") from exc
    fold_ids = [pid for seg in folded for pid in seg.live_ids()]
    if fold_ids:  # the folded papers are tokenised; the added ones already were (the ids are disjoint)
        fids, fdocs = _documents(chunks_for(fold_ids))
        if dropped := set(fold_ids) - set(fids):
            log.warning("BM25: %d papers of merged segments came without chunks: dropped", len(dropped))
        pairs = sorted(zip([*ids, *fids], [*docs, *fdocs], strict=True), key=lambda pair: pair[0])
        ids, docs = [pid for pid, _ in pairs], [doc for _, doc in pairs]  # paper order, as one call gives
    if ids:
        entries.append(write_segment(bm25s, docs, ids, new, K1, B))
    _write_params(new, entries)
    log.info(
        "BM25: %d segments (%d kept, %d folded into a new one of %d papers)",
        len(entries), len(kept), len(folded), len(ids),
    )


def load_lexical_index(folder: Path) -> LexicalIndex:
    """Read the index written by :func:`build_lexical_index` or :func:`extend_lexical_index` (format 3), or a
    format-2 one (one bm25s index at the root of ``folder``)."""
    bm25s = _bm25s()

    params = read_params(folder)
    try:
        return LexicalIndex([seg.open(bm25s) for seg in segments_of(folder, params)])
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise IndexMissingError(
            f"The BM25 index in {folder} is damaged ({type(exc).__name__}: {exc}): run `rag index` to "
            "rebuild it (it is rebuilt from the stored chunks; nothing is re-embedded)."
        ) from exc


_CACHE: dict[str, tuple[float, LexicalIndex]] = {}


def get_lexical_index(folder: Path) -> LexicalIndex:
    """The index in ``folder``, loaded once per process and reloaded when the folder changes."""
    from rag.writer_lock import settled

    key = str(folder.resolve())
    settled(folder)  # a writer may be between its two renames (rag.writer_lock.swap_dir)
    try:
        mtime = (folder / PARAMS_FILE).stat().st_mtime_ns
    except OSError as exc:
        raise IndexMissingError(f"There is no BM25 index in {folder}: run `rag index` to build it.") from exc
    cached = _CACHE.get(key)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        index = load_lexical_index(folder)
    except IndexMissingError:
        if not settled(folder) or (folder / PARAMS_FILE).stat().st_mtime_ns == mtime:
            raise
        index = load_lexical_index(folder)  # replaced while it was being read: read the new one
    _CACHE[key] = (mtime, index)
    log.debug("loaded BM25 index %s (%d papers)", folder, len(index))
    return index
