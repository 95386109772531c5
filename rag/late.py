"""Late interaction: the question's word-piece vectors against each candidate paper's (MaxSim).

The embedding model's forward pass over a chunk yields one contextual vector per word piece before pooling;
``rag index`` keeps them (no second model, no second pass) and search scores every fused candidate by

    late(q, paper) = Σ_t idf(t) · max_j cos(q_t, d_j) / Σ_t idf(t)

over the question's word pieces ``t`` (special tokens and punctuation dropped) and the paper's stored word
pieces ``d_j`` (special tokens, punctuation and stop words dropped: they never decide a match and are 35% of
the rows). ``idf`` is ``log(1 + (N − df + 0.5)/(df + 0.5))`` over the indexed papers' word pieces. This is
ColBERT's MaxSim applied to an ordinary sentence-transformers model: on SciFact train it scores 0.726
nDCG@10 alone (pooled MiniLM vectors: 0.692) and adds a third signal to the dense + BM25 fusion
(docs/retrieval.md).

Storage, beside the Chroma collection in ``late/`` (rebuilt by ``rag index`` when the chunk set changes;
vectors of chunks embedded in this run are taken from ``late.parts/``, others from the previous ``late/``
when their content hash matches, the rest are re-encoded):

* ``vectors.npy`` (and, after runs that only added papers, ``vectors.1.npy``, …: rag.late_segments) — one
  row per kept word piece, grouped by paper (read with ``mmap``), in the codec
  ``settings.index.late_codec`` names (rag.late_codec): int8 rows with ``scales.npy`` (float32 per row,
  ``vector ≈ int8 row × scale``; rows are unit vectors before quantising), or ``pqN`` codes (N bytes per
  row) with their codebooks in ``codec.npz``;
* ``idf.npy`` — float32 per vocabulary id; ``query_skip.npy`` — bool per vocabulary id;
* ``chunks.json`` — format (2; format 1, int8 without a ``codec`` field, is still read), codec, model, and
  per chunk ``[chunk id, paper id, content hash, start, end]``; ``info.json`` — the same without the rows;
* ``spans.npy``, ``span_ids.npy``, ``span_order.npy`` — each paper's range of rows, what search reads
  instead of ``chunks.json`` (rag.late_meta).

With ``settings.index.late_merge`` (format 3, ``"layout": "paper"``; rag.late_merge) a paper keeps one row
per distinct word piece — the mean of its rows — and ``lengths.npy`` holds each mean's length (float16),
which scoring multiplies into the cosine; the paper's rows sit on its first chunk.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexMissingError
from rag.late_codec import (
    CODEC_FILE,
    INT8,
    ProductQuantiser,
    StoredRows,
    check_name,
    quantise,
    sample_rows,
    slices_of,
    write_rows,
)
from rag.late_merge import LENGTHS_FILE, PaperRows, consolidate_merged, old_papers
from rag.late_meta import (
    INFO_FILE,
    META_FILE,
    SPANS_KEY,
    SpanView,
    add_spans,
    read_meta,
    spans_of,
    summary,
    write_meta,
)
from rag.late_segments import load_rows
from rag.writer_lock import settled, swap_dir

log = logging.getLogger(__name__)

LATE_DIR = "late"
PARTS_DIR = "late.parts"
FORMAT_VERSION = 2
MERGED_FORMAT = 3  # format 2 + "layout": "paper" (rag.late_merge): one row per distinct word piece per paper
READABLE_FORMATS = (1, 2, 3)  # format 1: int8 rows only, no "codec" field
PART_IDS_FILE = "ids.npy"  # in a part: every word-piece id of its chunks, as the forward pass saw them

STOP_WORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with from than which who whom its were been being has have had do does did can
    could may might should would also we our us i you he she his her them those what when where how all any
    each more most other some only same so too very""".split()
)
"""Word pieces dropped from the stored paper side (never from the question)."""


class TokenEncoder(Protocol):
    """What indexing needs from the embedding model (``rag.embed.Embedder`` implements it)."""

    def encode_with_tokens(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]: ...

    def token_table(self) -> tuple[list[str], list[int]]: ...

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]: ...


def skip_masks(vocab: list[str], special_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """(query skip, paper skip) per vocabulary id: special tokens and punctuation-only pieces for the
    question; also stop words for the paper side."""
    query = np.zeros(len(vocab), dtype=bool)
    paper = np.zeros(len(vocab), dtype=bool)
    for i, piece in enumerate(vocab):
        bare = piece[2:] if piece.startswith("##") else piece
        if not any(ch.isalnum() for ch in bare):
            query[i] = paper[i] = True
        elif bare.casefold() in STOP_WORDS and not piece.startswith("##"):
            paper[i] = True
    for i in special_ids:
        if 0 <= i < len(vocab):
            query[i] = paper[i] = True
    return query, paper


def _skipped(ids: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Per word piece, whether ``skip`` (a bool per vocabulary id) drops it; ids outside it are kept."""
    ids = np.asarray(ids, dtype=np.int64)
    inside = (ids >= 0) & (ids < len(skip))
    return np.where(inside, skip[np.clip(ids, 0, len(skip) - 1)], False)


def _kept(ids: np.ndarray, vecs: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """The rows of ``vecs`` whose word piece ``skip`` keeps."""
    return np.asarray(vecs, dtype=np.float32)[~_skipped(ids, skip)]


# ------------------------------------------------------------------------------------------ writing
# (this run's word-piece vectors are written batch by batch by rag.late_parts.PartWriter)
def _codec_of(meta: dict[str, Any]) -> str | None:
    """The codec a ``chunks.json`` was written with (format 1: int8), or None for an unknown format."""
    if meta.get("format") not in READABLE_FORMATS or (meta.get("format") == MERGED_FORMAT) != _merged(meta):
        return None
    return str(meta.get("codec", INT8)) if meta.get("format") != 1 else INT8


def _merged(meta: dict[str, Any]) -> bool:
    """Whether a ``chunks.json`` describes merged rows (one per distinct word piece per paper)."""
    return meta.get("format") == MERGED_FORMAT and meta.get("layout") == "paper"


def is_current(folder: Path, chunks: int, model_id: str, codec: str = INT8, merge: bool = False) -> bool:
    """``late/`` exists, for this model, with this many chunks, in ``codec`` (a format-1 store is int8),
    with merged rows or not as ``merge`` asks. A current store written before the span files gets them here
    (rag.late_meta.add_spans: ``rag index`` calls this under the home's writer lock, so a no-op run adds
    them without re-encoding or rewriting anything)."""
    try:  # the summary beside chunks.json (written with it), not its rows: 200 MB of JSON at 1M papers
        meta = json.loads((folder / LATE_DIR / INFO_FILE).read_text(encoding="utf-8"))
        st = (folder / LATE_DIR / META_FILE).stat()
        same = meta.get("of") == [st.st_size, st.st_mtime_ns]  # chunks.json not rewritten since
        count = meta.get("n_chunks") if same else None
    except (OSError, ValueError):
        count = None
    try:
        if not isinstance(count, int):  # a store written before the summary
            meta = json.loads((folder / LATE_DIR / META_FILE).read_text(encoding="utf-8"))
            count = len(meta.get("chunks", ()))
    except (OSError, ValueError):
        return False
    same_kind = _codec_of(meta) == codec and _merged(meta) == merge
    current = same_kind and meta.get("model") == model_id and count == chunks
    if current and not isinstance(meta.get(SPANS_KEY), dict):
        add_spans(folder / LATE_DIR, meta)
    return current


def _old_sources(
    old: Path, model_id: str, codec: str, merge: bool, stored_meta: dict[str, Any] | None = None
) -> tuple[dict[tuple[str, str], StoredRows], ProductQuantiser | None, dict[tuple[str, str], PaperRows]]:
    """The previous ``late/``'s rows: by (chunk id, hash) from a per-chunk store, or by (paper id, hash) from
    a merged one (only when ``merge``: a merged store has no chunk rows to give), and its product quantiser
    when it is ``codec``'s in the same layout (then its codes are kept as they are); nothing when it is
    unreadable or of another model. ``stored_meta``: its ``chunks.json``, when the caller already read it."""
    found: dict[tuple[str, str], StoredRows] = {}
    try:
        meta = stored_meta if stored_meta is not None else read_meta(old)
        stored = _codec_of(meta)
        if stored is None or meta.get("model") != model_id:
            return found, None, {}
        pq = None if stored == INT8 else ProductQuantiser.load(old / CODEC_FILE)
        same = pq if stored == codec and _merged(meta) == merge else None
        if stored != codec:
            log.info("re-coding the stored word-piece vectors from %s to %s", stored, codec)
        if _merged(meta):
            return found, same, (old_papers(old, meta, pq) if merge else {})
        data = load_rows(old, meta)
        scales = np.load(old / "scales.npy") if pq is None else None
        for cid, _pid, h, s, e in meta["chunks"]:
            found[(cid, h)] = StoredRows(data, scales, int(s), int(e), pq)
    except (OSError, ValueError, KeyError):
        return {}, None, {}
    return found, same, {}


def consolidate(
    folder: Path,
    chunks: Sequence[Any],
    encoder: TokenEncoder,
    model_id: str,
    codec: str = INT8,
    merge: bool = False,
    stored_meta: dict[str, Any] | None = None,
) -> int:
    """Write ``late/`` for exactly ``chunks`` (``rag.types.Chunk`` with ``metadata['content_hash']``, each
    paper's chunks together and in order), made by the embedding model ``model_id``
    (``settings.index.embed_model``), stored with ``codec`` (``settings.index.late_codec``: rag.late_codec),
    one row per word piece or, with ``merge`` (``settings.index.late_merge``), one per distinct word piece
    per paper (rag.late_merge).

    ``stored_meta`` is the current ``late/chunks.json`` when the caller has already read it (it is not read
    again). Returns how many chunks had to be re-encoded (none were in this run's parts or the previous
    store).
    """
    check_name(codec)
    vocab, special = encoder.token_table()
    query_skip, paper_skip = skip_masks(vocab, special)
    ordered = list(chunks)
    old = folder / LATE_DIR
    found, pq, papers = _old_sources(old, model_id, codec, merge, stored_meta)
    known = part_rows(folder, found)
    if merge:
        return consolidate_merged(folder, ordered, encoder, model_id, codec, (found, pq, papers), known)
    missing = [c for c in ordered if (c.id, str(c.metadata.get("content_hash", ""))) not in found]
    if missing:
        log.info("encoding word-piece vectors of %d chunk(s) not in the previous store", len(missing))
        step = 256
        for start in range(0, len(missing), step):
            part_chunks = missing[start : start + step]
            _, toks = encoder.encode_with_tokens([c.text for c in part_chunks])
            for c, (ids_, vecs_) in zip(part_chunks, toks, strict=True):
                kept = _kept(ids_, vecs_, paper_skip)
                q, sc = quantise(kept) if len(kept) else (np.zeros((0, 1), np.int8), np.zeros(0, np.float32))
                found[(c.id, str(c.metadata.get("content_hash", "")))] = StoredRows(q, sc, 0, len(q))

    sources = [found[(c.id, str(c.metadata.get("content_hash", "")))] for c in ordered]
    if codec != INT8 and pq is None:
        pq = ProductQuantiser.fit(sample_rows(sources), slices_of(codec))
    tmp = folder / (LATE_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dim = write_rows(tmp, sources, pq)
    rows: list[list[Any]] = []
    at = 0
    for c, s in zip(ordered, sources, strict=True):
        rows.append([c.id, c.paper_id, str(c.metadata.get("content_hash", "")), at, at + s.end - s.start])
        at += s.end - s.start
    np.save(tmp / "idf.npy", _idf(encoder, ordered, len(vocab)))
    np.save(tmp / "query_skip.npy", query_skip)
    done = {"format": FORMAT_VERSION, "codec": codec, "model": model_id, "dim": dim, "rows": at}
    done["chunks"] = rows
    write_meta(tmp, done)
    swap_dir(tmp, old)  # searches in other processes keep the old folder until the new one is complete
    shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)
    return len(missing)


def part_rows(folder: Path, found: dict[tuple[str, str], StoredRows]) -> dict[tuple[str, str], np.ndarray]:
    """Add this run's ``late.parts/`` rows to ``found`` by (chunk id, hash); returns the word-piece ids of
    those chunks as the forward pass saw them (they need no re-tokenising). Later parts win: a re-embedded
    chunk replaces the old rows."""
    known: dict[tuple[str, str], np.ndarray] = {}
    parts = sorted(p for p in (folder / PARTS_DIR).glob("part-*") if not p.name.endswith(".tmp"))
    for part in parts:
        try:
            meta = json.loads((part / META_FILE).read_text(encoding="utf-8"))
            ids, hashes, bounds = meta["chunk_ids"], meta["hashes"], meta["bounds"]
            vecs = np.load(part / "vectors.npy", mmap_mode="r")
            scales = np.load(part / "scales.npy")
            id_bounds = meta.get("id_bounds")
            every = np.load(part / PART_IDS_FILE) if id_bounds is not None else None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable word-piece part %s (%s)", part, exc)
            continue
        for i, (cid, h) in enumerate(zip(ids, hashes, strict=True)):
            found[(cid, h)] = StoredRows(vecs, scales, int(bounds[i]), int(bounds[i + 1]))
            if every is not None and id_bounds is not None:
                known[(cid, h)] = every[int(id_bounds[i]) : int(id_bounds[i + 1])]
            else:
                known.pop((cid, h), None)
    return known


def _idf(encoder: TokenEncoder, chunks: Sequence[Any], vocab_size: int) -> np.ndarray:
    """BM25-style IDF of each word piece over papers (a paper contains a piece if any chunk does)."""
    df = np.zeros(vocab_size, dtype=np.int64)
    by_paper: dict[str, set[int]] = {}
    texts = [c.text for c in chunks]
    step = 2048
    for start in range(0, len(texts), step):
        ids_batch = encoder.token_ids(texts[start : start + step])
        for c, ids in zip(chunks[start : start + step], ids_batch, strict=True):
            by_paper.setdefault(c.paper_id, set()).update(i for i in ids if 0 <= i < vocab_size)
    for pieces in by_paper.values():
        df[list(pieces)] += 1
    return idf_of(df, len(by_paper))


def idf_of(df: np.ndarray, papers: int) -> np.ndarray:
    """BM25's IDF per vocabulary id from its document frequency over ``papers`` papers."""
    n = max(1, papers)
    return np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)


# ------------------------------------------------------------------------------------------ reading
class LateIndex:
    """A loaded ``late/`` folder: :meth:`scores` for a question's word pieces against some papers."""

    def __init__(self, folder: Path) -> None:
        try:
            meta = summary(folder)
            codec = _codec_of(meta)
            if codec is None:
                raise ValueError(f"format {meta.get('format')} (this version reads {READABLE_FORMATS})")
            self.vectors = load_rows(folder, meta)
            self.codec = None if codec == INT8 else ProductQuantiser.load(folder / CODEC_FILE)
            self.scales = np.load(folder / "scales.npy") if self.codec is None else None
            width = self.vectors.shape[1] if self.vectors.ndim == 2 else -1
            if self.codec is not None and width != self.codec.books.shape[0]:
                raise ValueError(f"{width} bytes per row, {self.codec.name} expected")
            self.idf = np.load(folder / "idf.npy")
            self.query_skip = np.load(folder / "query_skip.npy")
            self.lengths = np.load(folder / LENGTHS_FILE, mmap_mode="r") if _merged(meta) else None
            if self.lengths is not None and len(self.lengths) != len(self.vectors):
                raise ValueError(f"{len(self.lengths)} lengths for {len(self.vectors)} rows")
            self.paper_ids, self._spans = spans_of(folder, meta)
            if len(self._spans) and int(self._spans[-1, 1]) > len(self.vectors):  # store order: rows ascend
                raise ValueError(f"the papers' spans end past the {len(self.vectors)} rows")
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise IndexMissingError(
                f"The word-piece vectors in {folder} are missing or unreadable ({exc}): run `rag index` "
                "to rebuild them."
            ) from exc
        self.model: str = str(meta.get("model", ""))

    @property
    def spans(self) -> SpanView:
        """Paper id → ``(start, end)`` of its rows, for the papers with rows (a read-only mapping)."""
        return SpanView(self.paper_ids, self._spans)

    def __len__(self) -> int:
        return len(self.paper_ids)

    def scores(self, ids: np.ndarray, vecs: np.ndarray, paper_ids: Iterable[str]) -> dict[str, float]:
        """IDF-weighted MaxSim of the question's word pieces (``ids``, ``vecs``) for each known paper."""
        ids = np.asarray(ids, dtype=np.int64)
        keep = ~_skipped(ids, self.query_skip)
        if not keep.any():
            return {}
        q = np.asarray(vecs, dtype=np.float32)[keep]
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        kept_ids = ids[keep]
        weights = np.where(
            kept_ids < len(self.idf), self.idf[np.clip(kept_ids, 0, len(self.idf) - 1)], float(self.idf.max())
        ).astype(np.float32)
        if float(weights.sum()) <= 0:
            weights = np.ones_like(weights)
        wanted = list(dict.fromkeys(paper_ids))
        rows = self.paper_ids.lookup(wanted)
        found = np.flatnonzero(rows >= 0)
        if not len(found):
            return {}
        bounds = np.asarray(self._spans[rows[found]]).tolist()
        chosen = list(zip([wanted[i] for i in found], bounds, strict=True))
        starts = np.cumsum([0] + [e - s for _, (s, e) in chosen[:-1]])
        if self.codec is None:
            rows = np.concatenate([self.vectors[s:e] for _, (s, e) in chosen], dtype=np.float32)
            scale = np.concatenate([self.scales[s:e] for _, (s, e) in chosen])  # type: ignore[index]
            sim = (q @ rows.T) * scale[None, :]
        else:  # decode the candidates' codes; the cosine with the decoded row estimates the stored one's
            rows = self.codec.decode(np.concatenate([self.vectors[s:e] for _, (s, e) in chosen]))
            rows /= np.maximum(np.sqrt(np.einsum("ij,ij->i", rows, rows)), 1e-12)[:, None]
            sim = q @ rows.T
        if self.lengths is not None:  # merged rows: the mean row's length (rag.late_merge)
            sim *= np.concatenate([self.lengths[s:e] for _, (s, e) in chosen]).astype(np.float32)[None, :]
        best = np.maximum.reduceat(sim, starts, axis=1)  # question pieces × papers
        values = (weights @ best) / float(weights.sum())
        return {pid: float(v) for (pid, _), v in zip(chosen, values.tolist(), strict=True)}


_CACHE: dict[str, tuple[int, LateIndex]] = {}


def get_late_index(folder: Path) -> LateIndex | None:
    """The ``late/`` index in ``folder``, loaded once per process; None when the index has none."""
    meta = folder / LATE_DIR / META_FILE
    try:
        stamp = meta.stat().st_mtime_ns
    except OSError:
        if not settled(folder / LATE_DIR):  # not between a writer's two renames: there is none
            return None
        return get_late_index(folder)
    key = str(meta.resolve())
    cached = _CACHE.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    index = LateIndex(folder / LATE_DIR)
    _CACHE[key] = (stamp, index)
    log.debug("loaded word-piece vectors %s (%d papers)", folder, len(index))
    return index

