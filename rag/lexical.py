"""BM25 over papers with bm25s, persisted beside the Chroma collection.

Contract used by `rag.index.build_index`: ``build_lexical_index(chunks, folder)`` writes the index for exactly
these chunks into ``folder`` (replacing what was there); ``load_lexical_index(folder)`` reads it back as a
:class:`LexicalIndex`. :func:`get_lexical_index` caches the loaded index per process, keyed by the folder and
its modification time, so a query never rebuilds or re-reads it.

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
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMissingError
from rag.types import Chunk

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
PARAMS_FILE = "rag_lexical.json"
TITLE_WEIGHT = 2
"""How many times a paper's title is counted in its BM25 document."""
K1, B = 1.2, 0.75

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
    """A loaded BM25 index over papers: ``scores(query)`` for every paper, ``search`` for the top ones."""

    def __init__(self, retriever: Any, ids: list[str]) -> None:
        self.retriever = retriever
        self.ids = ids
        self.position = {pid: i for i, pid in enumerate(ids)}
        self.vocab: dict[str, int] = dict(retriever.vocab_dict)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str | list[str], weights: dict[str, float] | None = None) -> np.ndarray:
        """BM25 score of every paper (aligned with ``ids``); zeros when no query word is in the index.

        ``weights`` (token → weight) scores a weighted bag of tokens instead, e.g. an expanded query.
        """
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        if weights is not None:
            out = np.zeros(len(self.ids), dtype=np.float32)
            for token, weight in weights.items():
                tid = self.vocab.get(token)
                if tid is not None and weight:
                    out += weight * self.retriever.get_scores_from_ids([tid])
            return out
        ids = [self.vocab[t] for t in tokens if t in self.vocab]
        if not ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, n: int, allowed: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The ``n`` best (paper id, score) pairs with a positive score, restricted to ``allowed`` ids."""
        scores = self.scores(query)
        return top_n(scores, self.ids, n, self.mask(allowed))

    def mask(self, allowed: Iterable[str] | None) -> np.ndarray | None:
        if allowed is None:
            return None
        mask = np.zeros(len(self.ids), dtype=bool)
        for pid in allowed:
            i = self.position.get(pid)
            if i is not None:
                mask[i] = True
        return mask


def top_n(
    scores: np.ndarray, ids: list[str], n: int, mask: np.ndarray | None = None
) -> list[tuple[str, float]]:
    """Best ``n`` (id, score) with score > 0, best first; ``mask`` False entries are skipped."""
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


def build_lexical_index(chunks: list[Chunk], folder: Path) -> None:
    """Write a BM25 index over the papers these chunks belong to into ``folder`` (replacing it)."""
    bm25s = _bm25s()

    folder.mkdir(parents=True, exist_ok=True)
    ids, titles, bodies = paper_texts(chunks)
    docs = [tokenize(" ".join([t] * TITLE_WEIGHT + [b])) or [""] for t, b in zip(titles, bodies, strict=True)]
    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index(docs, show_progress=False)
    retriever.save(str(folder))
    params = {
        "format": FORMAT_VERSION,
        "ids": ids,
        "title_weight": TITLE_WEIGHT,
        "k1": K1,
        "b": B,
        "tokenizer": "casefold-noaccent-\\w\\w+-stop33-snowball-en",
    }
    (folder / PARAMS_FILE).write_text(json.dumps(params), encoding="utf-8")


def load_lexical_index(folder: Path) -> LexicalIndex:
    """Read the index written by :func:`build_lexical_index`."""
    bm25s = _bm25s()

    params_path = folder / PARAMS_FILE
    try:
        params = json.loads(params_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMissingError(
            f"The BM25 index in {folder} is missing or unreadable ({exc}): run `rag index` to rebuild it."
        ) from exc
    if params.get("format") != FORMAT_VERSION:
        raise IndexMissingError(
            f"The BM25 index in {folder} has an old format: run `rag index` to rebuild it."
        )
    try:
        retriever = bm25s.BM25.load(str(folder), load_corpus=False)
        index = LexicalIndex(retriever, list(params["ids"]))
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise IndexMissingError(
            f"The BM25 index in {folder} is damaged ({type(exc).__name__}: {exc}): run `rag index` to "
            "rebuild it (it is rebuilt from the stored chunks; nothing is re-embedded)."
        ) from exc
    scores = getattr(retriever, "scores", None)
    n_docs = scores.get("num_docs") if isinstance(scores, dict) else None
    if n_docs is not None and int(n_docs) != len(index.ids):
        raise IndexMissingError(
            f"The BM25 index in {folder} does not match its paper list: run `rag index` to rebuild it."
        )
    return index


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
