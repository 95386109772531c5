"""Paper ids ↔ row numbers without a Python object per paper.

A dict of a million id strings to ints holds ~150 MB of Python objects; :class:`IdMap` keeps the ids as one
numpy string array and a sorted permutation of it (about 30 bytes per paper), and looks ids up with a binary
search. Serving a million-paper index keeps one of these per component (records, BM25, word-piece spans)
instead of one dict each (docs/scale.md, Serving memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np


def _encoded(ids: Iterable[str]) -> np.ndarray:
    return np.asarray([pid.encode("utf-8") for pid in ids], dtype=bytes)


class IdMap:
    """Row ``i`` ↔ ``ids[i]``: :meth:`row` / :meth:`rows` look ids up, :meth:`id` and :meth:`ids_of` go back.

    The ids are kept once, sorted, as UTF-8 bytes (byte order is code-point order, so sorting and binary
    search agree), with the permutation to rows and back (two int32 per paper).
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self._index(_encoded(ids) if len(ids) else np.zeros(0, dtype="S1"))

    @classmethod
    def from_encoded(cls, encoded: np.ndarray) -> IdMap:
        """An IdMap of ids already UTF-8 encoded (a numpy bytes array in row order, e.g. :meth:`encoded`
        of other maps, concatenated): no Python string per id is made."""
        out = cls.__new__(cls)
        out._index(np.asarray(encoded) if len(encoded) else np.zeros(0, dtype="S1"))
        return out

    def _index(self, arr: np.ndarray) -> None:
        order = np.argsort(arr, kind="stable").astype(np.int32)
        self._set(arr[order], order)

    def _set(self, sorted_ids: np.ndarray, order: np.ndarray) -> None:
        self._sorted, self._order = sorted_ids, order
        self._inv = np.empty_like(order)
        self._inv[order] = np.arange(len(order), dtype=np.int32)

    @classmethod
    def from_arrays(cls, sorted_ids: np.ndarray, order: np.ndarray) -> IdMap:
        """An IdMap from saved :meth:`arrays` (sorted ids, sorted position → row), not sorted again. Raises
        ValueError when they are not such a pair (bytes ids, int32 rows, one per id)."""
        if sorted_ids.dtype.kind != "S" or order.dtype != np.int32 or sorted_ids.shape != order.shape:
            ids, rows = f"{sorted_ids.dtype}{sorted_ids.shape}", f"{order.dtype}{order.shape}"
            raise ValueError(f"not a saved id map ({ids} ids, {rows} rows)")
        out = cls.__new__(cls)
        out._set(sorted_ids, order)
        return out

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ids and their rows, to save with ``np.save`` and reload with :meth:`from_arrays`."""
        return self._sorted, self._order

    def __len__(self) -> int:
        return len(self._sorted)

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self.row(pid) is not None

    def __iter__(self) -> Iterator[str]:
        """The ids in row order."""
        for start in range(0, len(self._inv), 8192):
            yield from self.ids_of(np.arange(start, min(start + 8192, len(self._inv))))

    def __getitem__(self, row: int) -> str:
        """The id of ``row``, so an IdMap stands where a list of ids was indexed by row."""
        return self.id(row)

    def encoded(self) -> np.ndarray:
        """The ids in row order as UTF-8 bytes (one numpy array, for :meth:`from_encoded`)."""
        return self._sorted[self._inv]

    def id(self, row: int) -> str:
        return bytes(self._sorted[self._inv[row]]).decode("utf-8")

    def ids_of(self, rows: np.ndarray | Sequence[int]) -> list[str]:
        return [bytes(b).decode("utf-8") for b in self._sorted[self._inv[np.asarray(rows, dtype=np.int64)]]]

    def row(self, pid: str) -> int | None:
        """The row of ``pid``, None when it is not here."""
        found = self.rows([pid])
        return int(found[0]) if len(found) else None

    def rows(self, pids: Iterable[str]) -> np.ndarray:
        """Rows of the ``pids`` that are here (unknown ids are skipped), in the order given."""
        found = self.lookup(list(pids))
        return found[found >= 0]

    def lookup(self, pids: Sequence[str]) -> np.ndarray:
        """The row of each of ``pids``, -1 where an id is not here (aligned with ``pids``, unlike
        :meth:`rows`)."""
        out = np.full(len(pids), -1, dtype=np.int64)
        if not len(pids) or not len(self._sorted):
            return out
        wanted = _encoded(pids)
        at = np.searchsorted(self._sorted, wanted)
        inside = np.flatnonzero(at < len(self._sorted))
        hit = inside[self._sorted[at[inside]] == wanted[inside]]
        out[hit] = self._order[at[hit]]
        return out

    def mask(self, pids: Iterable[str] | None) -> np.ndarray | None:
        """A boolean row mask of ``pids`` (None for None: everything allowed)."""
        if pids is None:
            return None
        out = np.zeros(len(self._sorted), dtype=bool)
        out[self.rows(pids)] = True
        return out
