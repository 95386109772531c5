"""``late/``'s small files (rag.late): ``chunks.json``, its summary ``info.json``, and each paper's rows as
numpy files, so search never parses ``chunks.json``.

``chunks.json`` lists every chunk (``[chunk id, paper id, hash, start, end]``): 2.8M rows at a million
papers. Search needs only each paper's range of rows, and building a dict of them from the JSON cost 126 MB
resident (and a larger peak while the JSON was parsed) at 100k papers. Every writer of ``late/``
(:func:`write_meta`) therefore also writes:

* ``spans.npy`` — int64 ``[start, end)`` per paper with rows, papers in store order;
* ``span_ids.npy`` and ``span_order.npy`` — those papers' ids as :meth:`rag.idmap.IdMap.arrays` gives
  them (sorted UTF-8 bytes, and each one's row of ``spans.npy``),

and records ``"spans": {"papers": n}`` in ``info.json`` after them. Search memory-maps the three files (a
lookup touches a few pages). A store written before them has no such entry: it is still searched (its spans
are read from ``chunks.json``), and the next ``rag index`` adds the files in place
(:func:`rag.late.is_current`), which re-encodes and rewrites nothing else.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rag.idmap import IdMap

log = logging.getLogger(__name__)

META_FILE = "chunks.json"
INFO_FILE = "info.json"  # chunks.json without its rows (format, codec, model, …), the chunk count, the spans
SPANS_FILE = "spans.npy"
SPAN_IDS_FILE = "span_ids.npy"
SPAN_ORDER_FILE = "span_order.npy"
SPANS_KEY = "spans"
"""The ``info.json`` entry saying the three files are there (written after them)."""


def paper_spans(rows: Iterable[Sequence[Any]]) -> tuple[list[str], np.ndarray]:
    """``chunks.json`` rows → (paper ids, int64 ``[start, end)`` per paper): each paper's rows from its
    chunks' smallest start to their largest end, papers in order of first appearance, those without rows
    (stop words only) left out."""
    spans: dict[str, list[int]] = {}
    for row in rows:
        pid, s, e = str(row[1]), int(row[3]), int(row[4])
        span = spans.get(pid)
        if span is None:
            spans[pid] = [s, e]
        else:
            span[0], span[1] = min(span[0], s), max(span[1], e)
    ids = [pid for pid, (s, e) in spans.items() if e > s]
    return ids, np.asarray([spans[pid] for pid in ids], dtype=np.int64).reshape(-1, 2)


def _save(path: Path, arr: np.ndarray) -> None:
    """``np.save`` through a temporary file and a rename: a reader sees the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


def write_spans(late_dir: Path, rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """Write the three span files of the chunk ``rows`` into ``late_dir``; the ``info.json`` entry that
    announces them (the caller writes it after)."""
    ids, spans = paper_spans(rows)
    sorted_ids, order = IdMap(ids).arrays()
    _save(late_dir / SPANS_FILE, spans)
    _save(late_dir / SPAN_IDS_FILE, sorted_ids)
    _save(late_dir / SPAN_ORDER_FILE, order)
    return {"papers": len(ids)}


def read_spans(late_dir: Path, info: dict[str, Any]) -> tuple[IdMap, np.ndarray] | None:
    """The papers' ids and spans (memory-mapped) when ``info`` (``info.json``) announces the files, None
    when it does not (a store written before them). Raises ValueError or OSError when announced files are
    missing or do not agree with each other."""
    entry = info.get(SPANS_KEY)
    if not isinstance(entry, dict):
        return None
    spans = np.load(late_dir / SPANS_FILE, mmap_mode="r")
    sorted_ids = np.load(late_dir / SPAN_IDS_FILE, mmap_mode="r")
    order = np.load(late_dir / SPAN_ORDER_FILE, mmap_mode="r")
    n = entry.get("papers")
    if spans.shape != (n, 2) or sorted_ids.shape != (n,) or order.shape != (n,):
        raise ValueError(f"the span files in {late_dir} do not agree with info.json ({n} papers)")
    if spans.dtype != np.int64:
        raise ValueError(f"the span files in {late_dir} have unexpected types")
    return IdMap.from_arrays(sorted_ids, order), spans  # ValueError for ids and rows of the wrong types


class SpanView(Mapping[str, tuple[int, int]]):
    """Paper id → ``(start, end)`` of its rows, read from an :class:`IdMap` and a spans array (what
    ``LateIndex.spans`` was as a dict, without a Python object per paper)."""

    def __init__(self, ids: IdMap, spans: np.ndarray) -> None:
        self._ids, self._spans = ids, spans

    def __getitem__(self, pid: str) -> tuple[int, int]:
        row = self._ids.row(pid) if isinstance(pid, str) else None
        if row is None:
            raise KeyError(pid)
        s, e = self._spans[row]
        return int(s), int(e)

    def __contains__(self, pid: object) -> bool:
        return pid in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def read_meta(late_dir: Path) -> dict[str, Any]:
    """A ``late/`` folder's ``chunks.json`` (raises OSError or ValueError when it cannot be read)."""
    meta = orjson.loads((late_dir / META_FILE).read_bytes())  # every chunk's row: ~20 MB at 100k papers
    if not isinstance(meta, dict):
        raise ValueError(f"{late_dir / META_FILE} is not a JSON object")
    return meta


def write_meta(tmp: Path, meta: dict[str, Any]) -> None:
    """``chunks.json``, each paper's span of rows (what search reads) and their summary (:data:`INFO_FILE`:
    everything but the rows, their count, and the spans' entry), the summary last."""
    (tmp / META_FILE).write_bytes(orjson.dumps(meta))
    _write_info(tmp, meta, write_spans(tmp, meta.get("chunks", ())))


def _write_info(late_dir: Path, meta: dict[str, Any], spans: dict[str, int]) -> None:
    """:data:`INFO_FILE` for the ``chunks.json`` ``meta`` in ``late_dir`` (its size and modification time
    tell :func:`rag.late.is_current` whether the file was rewritten since) and its span files' entry."""
    st = (late_dir / META_FILE).stat()
    info = {k: v for k, v in meta.items() if k not in ("chunks", SPANS_KEY)}
    info.update(n_chunks=len(meta.get("chunks", ())), of=[st.st_size, st.st_mtime_ns])
    info[SPANS_KEY] = spans
    tmp = late_dir / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, late_dir / INFO_FILE)


def add_spans(late_dir: Path, meta: dict[str, Any]) -> None:
    """Give a store written before the span files its span files and an ``info.json`` announcing them, in
    place: one read of ``chunks.json``, nothing re-encoded or rewritten. ``meta`` is ``chunks.json`` when the
    caller read it, else ``info.json``. :func:`rag.late.is_current` calls it under the home's writer lock
    (``rag index``); a store it cannot write to is left as it is (it is still searched)."""
    try:
        full = meta if "chunks" in meta else read_meta(late_dir)
        _write_info(late_dir, full, write_spans(late_dir, full.get("chunks", ())))
    except (OSError, ValueError, TypeError, IndexError) as exc:
        log.warning("could not add the span files to %s (%s)", late_dir, exc)
        return
    log.info("added the per-paper span files to %s", late_dir)


def summary(late_dir: Path) -> dict[str, Any]:
    """What search reads of a ``late/`` folder: ``info.json`` when it announces the span files (then
    ``chunks.json`` is never parsed), else ``chunks.json`` (a store written before them)."""
    try:
        info = json.loads((late_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and isinstance(info.get(SPANS_KEY), dict):
        return info
    return read_meta(late_dir)


def spans_of(late_dir: Path, meta: dict[str, Any]) -> tuple[IdMap, np.ndarray]:
    """The papers' ids and row spans: the span files when ``meta`` (from :func:`summary`) announces them,
    else (a store written before them) from the rows of ``chunks.json`` in ``meta``."""
    stored = read_spans(late_dir, meta)
    if stored is not None:
        return stored
    ids, spans = paper_spans(meta["chunks"])
    return IdMap(ids), spans
