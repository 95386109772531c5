"""The indexed paper records, read from ``papers.jsonl`` on demand instead of held as objects.

``papers.jsonl`` (one :class:`Paper` per line, beside the collection) is the record of what is indexed. A
search needs only a few records (the hits shown), plus the metadata every filter matches and the author
lexicon that reads filters from questions. So a loaded index keeps (:class:`PaperRecords`):

* the byte offset of each line and the paper ids (:class:`rag.idmap.IdMap`): a record is one ``pread`` and
  one parse away, with the most recent ones cached;
* the filterable metadata as numpy columns (:mod:`rag.record_columns`);
* the author lexicon (:class:`rag.query_filters.AuthorLexicon`).

All three are derived from ``papers.jsonl`` and saved beside it in one file, ``records.npz``, stamped with the
size and modification time of the ``papers.jsonl`` they describe. ``rag index`` writes it with the records;
a search that finds it missing, stale or unreadable derives it again from ``papers.jsonl`` (one pass) and
saves it when the folder is writable. At a million papers this is tens of MB where ``Paper`` objects held
~6 GB, and the lexicon is not re-counted on every start (docs/scale.md, Serving memory).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, ValuesView
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rag.corpus_identity import PAPERS_FILE, write_atomic
from rag.errors import IndexMissingError
from rag.idmap import IdMap
from rag.query_filters import AuthorLexicon
from rag.record_columns import ColumnBuilder, Columns, json_array, json_value
from rag.types import Paper
from rag.word_counts import count as word_counts_of
from rag.word_counts import from_arrays, to_arrays, updated

log = logging.getLogger(__name__)

RECORDS_FILE = "records.npz"
FORMAT = 1
CACHED = 4096
"""Parsed records kept per loaded index (the hits of recent searches)."""


def _stamp(path: Path | BinaryIO) -> list[int]:
    st = path.stat() if isinstance(path, Path) else os.fstat(path.fileno())
    return [FORMAT, st.st_size, st.st_mtime_ns]


_BLANK = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _record_lines(fh: BinaryIO) -> np.ndarray:
    """``[starts, ends]``: the byte range of each line of the file that is not blank (2 × n)."""
    fh.seek(0)
    return _line_ranges(np.fromfile(fh, dtype=np.uint8))


def _line_ranges(data: np.ndarray) -> np.ndarray:
    """``[starts, ends]`` of the lines of ``data`` (bytes) that are not blank."""
    ends = np.flatnonzero(data == 10) + 1
    if len(data) and data[-1] != 10:
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64) if len(ends) else np.zeros(0, np.int64)
    keep = ~np.isin(data[starts], _BLANK) if len(starts) else np.zeros(0, bool)
    return np.stack([starts[keep], ends[keep].astype(np.int64)])


def _damaged(path: Path, line: int, exc: Exception) -> IndexMissingError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return IndexMissingError(
        f"{path} is damaged (line {line}: {first}): run `rag index` to rewrite it (nothing is re-embedded)."
    )


# ------------------------------------------------------------------------------------------ deriving
class _Derived:
    """What ``records.npz`` holds: the byte range of each record, ids, columns, lexicon."""

    def __init__(
        self,
        offsets: np.ndarray,
        ids: IdMap,
        columns: Columns,
        lexicon: AuthorLexicon,
        words: Counter[str] | None = None,
    ) -> None:
        self.offsets, self.ids, self.columns, self.lexicon = offsets, ids, columns, lexicon
        self.words = words
        """Word counts of the titles and abstracts (:mod:`rag.word_counts`), once the lexicon needed them."""

    @classmethod
    def of(
        cls,
        fh: BinaryIO,
        path: Path,
        papers: Iterable[Paper] | None = None,
        words: Counter[str] | None = None,
    ) -> _Derived:
        """Derived from the open file ``fh`` (``path``, named in errors); ``papers`` (its records, in its
        order) saves parsing it again, ``words`` (its word counts) counting them again."""
        lines = _record_lines(fh)
        if papers is None:
            papers = _parse_all(fh, path)
        builder = ColumnBuilder()
        ids: list[str] = []

        def feed() -> Iterator[Paper]:
            for p in papers:
                builder.add(p)
                ids.append(p.id)
                yield p

        given = papers if isinstance(papers, list) else None
        counted: list[Counter[str]] = [words] if words is not None else []

        def word_counts() -> Counter[str]:  # a second pass over the records, when the lexicon needs one
            if not counted:
                again = _parse_all(fh, path) if given is None else given
                counted.append(word_counts_of(p.title + " " + p.abstract for p in again))
            return counted[0]

        lexicon = AuthorLexicon.from_papers(feed(), word_counts)
        if lines.shape[1] != len(ids):
            raise _damaged(path, len(ids) + 1, ValueError(f"{lines.shape[1]} records for {len(ids)} papers"))
        return cls(lines, IdMap(ids), builder.columns(), lexicon, counted[0] if counted else None)

    @classmethod
    def extended(
        cls, before: _Derived, fh: BinaryIO, old_size: int, added: list[Paper], tail: bytes
    ) -> _Derived | None:
        """``before`` (which describes the first ``old_size`` bytes of the file ``fh``) extended to the papers
        ``added`` after them, whose lines are ``tail`` (rag.records_append); None when it cannot be (the lines
        and papers disagree, or the lexicon needs word counts ``before`` did not keep)."""
        from rag import records_append as grow

        offsets = _line_ranges(np.frombuffer(tail, dtype=np.uint8)) + old_size
        if before.offsets.shape[1] != len(before.ids) or offsets.shape[1] != len(added):
            return None
        words = grow.extended_words(before.words, added)
        lexicon = grow.extend_lexicon(before.lexicon, added, words)
        if lexicon is None:
            return None
        key = grow.old_key_reader(fh, before.offsets)
        return cls(
            np.concatenate([before.offsets, offsets], axis=1),
            grow.extend_ids(before.ids, added),
            grow.extend_columns(before.columns, added, key),
            lexicon,
            words,
        )

    def save(self, path: Path, stamp: list[int]) -> None:
        arrays = {"stamp": np.asarray(stamp, dtype=np.int64), "offsets": self.offsets}
        arrays.update(self.columns.arrays())
        arrays["ids_sorted"], arrays["ids_rows"] = self.ids.arrays()
        arrays["lexicon"] = json_array(_lexicon_json(self.lexicon))
        if self.words is not None:
            arrays["words"], arrays["word_counts"] = to_arrays(self.words)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, stamp: list[int]) -> _Derived | None:
        """The saved derivation, or None when it is missing, unreadable or for another ``papers.jsonl``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if z["stamp"].tolist() != stamp:
                    return None
                ids = IdMap.from_arrays(z["ids_sorted"], z["ids_rows"])
                if z["offsets"].shape != (2, len(ids)):
                    raise ValueError(f"{z['offsets'].shape[-1]} records for {len(ids)} ids")
                return cls(
                    z["offsets"],
                    ids,
                    Columns.from_arrays(z, len(ids)),
                    _lexicon_of(json_value(z["lexicon"])),
                    from_arrays(z["words"], z["word_counts"]) if "words" in z else None,
                )
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
            if path.exists():
                log.info("re-deriving %s (%s)", path, exc)
            return None


def _parse_all(fh: BinaryIO, path: Path) -> Iterator[Paper]:
    fh.seek(0)
    try:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield Paper.model_validate_json(line)
                except ValueError as exc:
                    raise _damaged(path, n, exc) from exc
    except OSError as exc:
        raise _damaged(path, 0, exc) from exc


def _lexicon_json(lex: AuthorLexicon) -> dict[str, Any]:
    out = asdict(lex)
    out["full"] = [[list(k), v] for k, v in lex.full.items()]
    out["family"] = [[list(k), v] for k, v in lex.family.items()]
    out["common"] = sorted(lex.common)
    return out


def _lexicon_of(data: dict[str, Any]) -> AuthorLexicon:
    data["full"] = {tuple(k): v for k, v in data["full"]}
    data["family"] = {tuple(k): v for k, v in data["family"]}
    data["common"] = set(data["common"])
    return AuthorLexicon(**data)


def record_lines(papers: Iterable[Paper]) -> str:
    """``papers`` as ``papers.jsonl`` holds them: one JSON object per line."""
    return "".join(p.model_dump_json() + "\n" for p in papers)


def write_records(folder: Path, papers: list[Paper], text: str) -> None:
    """Write ``papers.jsonl`` (``text``: ``papers`` as JSON lines) when it changed, and ``records.npz`` for it
    unless the saved one already describes it. The word counts are carried over from the previous records
    when those describe the file being replaced: only the papers added, changed or removed are counted."""
    path, saved = folder / PAPERS_FILE, folder / RECORDS_FILE
    old = path.read_bytes() if path.is_file() else None
    new = text.encode("utf-8")
    before = _Derived.load(saved, _stamp(path)) if old is not None else None
    if old == new and before is not None:
        return
    grown = before is not None and old is not None and old.endswith(b"\n") and new.startswith(old)
    words = None
    if before is not None and old is not None and not grown:
        words = _carried_words(before, old, papers, new)
    if old != new:
        write_atomic(path, text)
    with path.open("rb") as fh:
        derived = None
        if grown and before is not None and old is not None:
            n_old = len(before.ids)
            derived = _Derived.extended(before, fh, len(old), papers[n_old:], new[len(old) :])
        if derived is None:
            derived = _Derived.of(fh, path, papers, words)
        derived.save(saved, _stamp(fh))


def append_records(folder: Path, added: list[Paper]) -> None:
    """Append ``added`` to ``papers.jsonl`` (a copy of it, then a rename: readers keep the file they opened)
    and extend ``records.npz`` to them — what :func:`write_records` does for the old papers followed by
    ``added``, without the old papers in memory."""
    path, saved = folder / PAPERS_FILE, folder / RECORDS_FILE
    tail = record_lines(added).encode("utf-8")
    before = _Derived.load(saved, _stamp(path))
    old_size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(old_size - 1, 0))
        open_line = old_size > 0 and fh.read(1) != b"\n"  # a last line without its newline
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(path, tmp)
    with tmp.open("ab") as fh:
        fh.write(b"\n" + tail if open_line else tail)
    if open_line:
        before = None
    os.replace(tmp, path)
    with path.open("rb") as fh:
        derived = _Derived.extended(before, fh, old_size, added, tail) if before is not None else None
        if derived is None:
            derived = _Derived.of(fh, path)
        derived.save(saved, _stamp(fh))


def _carried_words(before: _Derived, old: bytes, papers: list[Paper], new: bytes) -> Counter[str] | None:
    """``before``'s word counts updated to ``papers``: records whose line changed are counted out (old line)
    and in (new line), records no longer there out, new ones in."""
    if before.words is None:
        return None
    view = memoryview(old)
    old_lines = {pid: view[s:e] for pid, (s, e) in zip(before.ids, before.offsets.T.tolist(), strict=True)}
    new_lines = [line + b"\n" for line in new.split(b"\n") if line.strip()]
    if len(new_lines) != len(papers):
        return None
    added: list[Paper] = []
    gone: list[memoryview] = []
    for paper, line in zip(papers, new_lines, strict=True):
        was = old_lines.pop(paper.id, None)
        if was is None or was != line:
            added.append(paper)
            if was is not None:
                gone.append(was)
    gone += old_lines.values()  # papers no longer indexed
    return updated(
        Counter(before.words),
        (p.title + " " + p.abstract for p in added),
        (p.title + " " + p.abstract for p in (Paper.model_validate_json(bytes(g)) for g in gone)),
    )


# -------------------------------------------------------------------------------------------- reading
class PaperRecords(Mapping[str, Paper]):
    """The papers of ``folder/papers.jsonl`` by id, each read from the file when asked for (see the module
    docstring). ``columns``, ``ids`` and ``lexicon`` are what filters and question parsing need."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / PAPERS_FILE
        try:  # kept open: a re-index replaces the file, and this index reads the one it was loaded from
            self._fh = self.path.open("rb")
        except OSError as exc:
            missing = f"{self.path} is missing: run `rag index` to complete the index."
            raise IndexMissingError(missing) from exc
        stamp = _stamp(self._fh)
        derived = _Derived.load(folder / RECORDS_FILE, stamp)
        if derived is None:
            derived = _Derived.of(self._fh, self.path)
            try:
                if _stamp(self.path) == stamp:  # still the current file: never clobber a newer one's
                    derived.save(folder / RECORDS_FILE, stamp)
            except OSError as exc:  # a read-only home still searches
                log.info("could not save %s (%s)", folder / RECORDS_FILE, exc)
        self.offsets, self.ids = derived.offsets, derived.ids
        self.columns, self.lexicon = derived.columns, derived.lexicon
        self._cache: OrderedDict[int, Paper] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __contains__(self, pid: object) -> bool:
        return pid in self.ids

    def __getitem__(self, pid: str) -> Paper:
        row = self.ids.row(pid) if isinstance(pid, str) else None
        if row is None:
            raise KeyError(pid)
        return self.at(row)

    def at(self, row: int) -> Paper:
        """The record in row ``row`` (file order)."""
        with self._lock:
            if row in self._cache:
                self._cache.move_to_end(row)
                return self._cache[row]
        start, end = int(self.offsets[0, row]), int(self.offsets[1, row])
        try:
            paper = Paper.model_validate_json(os.pread(self._fh.fileno(), end - start, start))
        except (OSError, ValueError) as exc:
            raise _damaged(self.path, row + 1, exc) from exc
        if paper.id != self.ids.id(row):
            wrong = ValueError(f"record {paper.id!r} where {self.ids.id(row)!r} was")
            raise _damaged(self.path, row + 1, wrong)
        with self._lock:
            self._cache[row] = paper
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return paper

    def values(self) -> ValuesView[Paper]:
        """Every record in file order, parsed as the file is read (not kept)."""
        return _Streamed(self)


class _Streamed(ValuesView[Paper]):
    def __init__(self, records: PaperRecords) -> None:
        super().__init__(records)
        self.records = records

    def __iter__(self) -> Iterator[Paper]:
        fd = self.records._fh.fileno()
        for row, (start, end) in enumerate(self.records.offsets.T.tolist()):
            try:
                yield Paper.model_validate_json(os.pread(fd, end - start, start))
            except (OSError, ValueError) as exc:
                raise _damaged(self.records.path, row + 1, exc) from exc
