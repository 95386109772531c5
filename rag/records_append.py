"""``records.npz`` for a ``papers.jsonl`` that only grew at its end (``rag index`` adding papers).

Deriving the records (:mod:`rag.records`) goes over every paper: its columns, its authors for the lexicon.
When the new ``papers.jsonl`` is the old one with lines appended, the saved derivation already describes
the old lines, so only the new papers are gone over and merged in:

* offsets and ids: the new lines' offsets follow the old ones; the ids are indexed again (one sort);
* columns (:mod:`rag.record_columns`): the new papers are coded with the old vocabularies as they stand
  (new values get the next codes, as a derivation over all papers in file order gives them); author names
  are sorted by family name again and every code renumbered; the listing rank places each new paper by a
  binary search among the old ones in rank order, reading only the records it compares with;
* lexicon: the new papers' names and affiliations are added after the old ones, as a derivation in file
  order adds them; the common-word set is recomputed from the carried word counts.

The result equals a derivation from scratch (tests/test_records_append.py compares every array).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, BinaryIO

import numpy as np

from rag.idmap import IdMap
from rag.query_filters import AuthorLexicon
from rag.record_columns import ColumnBuilder, Columns, SortKey, sort_key
from rag.types import Paper
from rag.word_counts import updated


def extend_ids(ids: IdMap, new: Sequence[Paper]) -> IdMap:
    added = np.asarray([p.id.encode("utf-8") for p in new], dtype=bytes)
    return IdMap.from_encoded(np.concatenate([ids.encoded(), added]) if len(added) else ids.encoded())


def extend_columns(old: Columns, new: Sequence[Paper], old_key: Callable[[int], SortKey]) -> Columns:
    """``old`` with ``new`` appended; ``old_key(row)`` is an old paper's sort key (read when compared)."""
    builder = ColumnBuilder(base=old)
    for p in new:
        builder.add(p)
    return builder.columns(rank=_merged_rank(old.rank, builder.sort_keys, old_key))


def _merged_rank(rank: np.ndarray, new_keys: list[SortKey], old_key: Callable[[int], SortKey]) -> np.ndarray:
    """Every paper's listing rank once papers with ``new_keys`` follow the old ones in file order: a stable
    sort of all keys, where an old paper comes before a new one with an equal key."""
    by_rank = np.argsort(rank, kind="stable")  # old rows in rank order
    key_at = lru_cache(maxsize=None)(lambda r: old_key(int(by_rank[r])))

    def position(key: SortKey) -> int:  # the first old rank whose key is greater (bisect right)
        lo, hi = 0, len(by_rank)
        while lo < hi:
            mid = (lo + hi) // 2
            if key < key_at(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    order = sorted(range(len(new_keys)), key=new_keys.__getitem__)  # new papers among themselves, stable
    pos = np.asarray([position(new_keys[i]) for i in order], dtype=np.int64)
    out = np.empty(len(rank) + len(new_keys), dtype=np.int32)
    out[len(rank) + np.asarray(order, dtype=np.int64)] = pos + np.arange(len(order))
    shift = np.searchsorted(pos, np.arange(len(rank)), side="right")  # new papers placed before each rank
    out[by_rank] = np.arange(len(rank)) + shift
    return out


def extend_lexicon(
    old: AuthorLexicon, new: Sequence[Paper], words: Counter[str] | None
) -> AuthorLexicon | None:
    """``old`` with the names, kinds, categories and affiliations of ``new`` added as a derivation in file
    order adds them; None when the common-word set needs word counts that were not kept."""
    add = AuthorLexicon.from_papers(new, lambda: {})
    full = {**old.full, **{k: v for k, v in add.full.items() if k not in old.full}}
    family = {**old.family, **{k: v for k, v in add.family.items() if k not in old.family}}
    affs = {**old.affiliations, **{k: v for k, v in add.affiliations.items() if k not in old.affiliations}}
    asked = {fam[-1] for fam in family} | {key for key in affs if " " not in key}
    if asked and words is None:
        return None
    counts: Any = words or {}
    return AuthorLexicon(
        full=full,
        family=family,
        common={w for w in asked if counts.get(w, 0) >= 2},
        kinds={**old.kinds, **add.kinds},
        categories={**old.categories, **add.categories},
        has_years=old.has_years or add.has_years,
        affiliations=affs,
        has_upvotes=old.has_upvotes or add.has_upvotes,
        has_author_counts=old.has_author_counts or add.has_author_counts,
    )


def old_key_reader(fh: BinaryIO, offsets: np.ndarray) -> Callable[[int], SortKey]:
    """An old paper's sort key by row, read from its record in ``fh``."""

    def key(row: int) -> SortKey:
        start, end = int(offsets[0, row]), int(offsets[1, row])
        return sort_key(Paper.model_validate_json(os.pread(fh.fileno(), end - start, start)))

    return key


def extended_words(words: Counter[str] | None, new: Sequence[Paper]) -> Counter[str] | None:
    return None if words is None else updated(Counter(words), (p.title + " " + p.abstract for p in new), ())
