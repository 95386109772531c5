"""The filterable metadata of every paper as numpy columns, what :class:`rag.filter_index.PaperFilter` reads.

One row per paper, in the order of ``papers.jsonl``. Single values are int32 columns (``NONE`` when the paper
has none); small vocabularies (kind, category) are codes into a list of their spellings; lists (sources,
affiliations, author names) are CSR pairs — ``ptr`` (row ``i``'s codes are ``codes[ptr[i]:ptr[i+1]]``) and
``codes`` into a vocabulary. Author names are kept once each, as their folded tokens, sorted by family name
(last token) so a wanted name is compared only with the names that share its last token. ``rank`` is each
paper's place in the listing order (newest first, then date, then title), so a filter-only question lists
its papers without reading them.

At a million papers this is a few tens of MB, where ``Paper`` objects held ~6 GB (docs/scale.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rag.filters import affiliation_key, author_count, authors_of, name_tokens
from rag.types import Paper

NONE = np.iinfo(np.int32).min
"""The value of an int32 column for a paper without one."""
SEP = "\x1f"
"""Between a name's tokens in ``names``."""
PER_PAPER = ("year", "upvotes", "n_authors", "kind", "category", "rank")
"""The columns with one value per paper."""
SortKey = tuple[int, str, str]


def sort_key(p: Paper) -> SortKey:
    """A paper's place in listings (``rank``): newest year first, then date, then title."""
    return (-(p.year or 0), p.date or "", p.title.casefold())


@dataclass
class Columns:
    """See the module docstring."""

    year: np.ndarray
    upvotes: np.ndarray
    n_authors: np.ndarray
    kind: np.ndarray
    category: np.ndarray
    rank: np.ndarray
    source_ptr: np.ndarray
    source_codes: np.ndarray
    aff_ptr: np.ndarray
    aff_codes: np.ndarray
    author_ptr: np.ndarray
    author_codes: np.ndarray
    names: np.ndarray
    """Distinct author names, each its folded tokens joined by ``SEP`` (UTF-8 bytes), sorted by ``family``."""
    family: np.ndarray
    """Each name's last token (UTF-8 bytes), sorted: ``names[i]``'s family name is ``family[i]``."""
    kinds: list[str]
    categories: list[str]
    sources: list[str]
    affiliations: list[str]
    """Affiliation keys (:func:`rag.filters.affiliation_key`)."""

    def __len__(self) -> int:
        return len(self.year)

    # --------------------------------------------------------------------------------------- matching
    def any_code(self, ptr: np.ndarray, codes: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """Per row: does any of its codes have ``hit[code]`` True?"""
        if not len(codes):
            return np.zeros(len(ptr) - 1, dtype=bool)
        cum = np.concatenate(([0], np.cumsum(hit[codes], dtype=np.int64)))
        return (cum[ptr[1:]] - cum[ptr[:-1]]) > 0

    def name_candidates(self, last: str) -> tuple[int, list[tuple[str, ...]]]:
        """The first code and the token tuples of the author names whose last token is ``last``."""
        key = last.encode("utf-8")
        lo = int(np.searchsorted(self.family, key, side="left"))
        hi = int(np.searchsorted(self.family, key, side="right"))
        return lo, [tuple(bytes(n).decode("utf-8").split(SEP)) for n in self.names[lo:hi]]

    # ---------------------------------------------------------------------------------------- storage
    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as named arrays (``col_<name>``, the vocabularies as JSON in ``vocab``), to save in one
        ``.npz`` with other arrays; :meth:`from_arrays` reads them back."""
        out: dict[str, np.ndarray] = {}
        vocab: dict[str, list[str]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f"col_{f.name}"] = value
            else:
                vocab[f.name] = value
        out["vocab"] = json_array(vocab)
        return out

    @classmethod
    def from_arrays(cls, saved: Mapping[str, np.ndarray], papers: int) -> Columns:
        """The columns :meth:`arrays` saved, for ``papers`` papers; KeyError when a part is missing,
        ValueError when the parts do not all describe that many papers (a file saved whole but wrong)."""
        vocab = json_value(saved["vocab"])
        values: dict[str, Any] = {f.name: vocab.get(f.name) for f in fields(cls)}
        values.update({k: saved[f"col_{k}"] for k, v in values.items() if v is None})
        cols = cls(**values)
        rows = [len(getattr(cols, name)) for name in PER_PAPER]
        rows += [len(getattr(cols, f"{part}_ptr")) - 1 for part in ("source", "aff", "author")]
        if any(r != papers for r in rows):
            raise ValueError(f"columns of {rows} rows for {papers} papers")
        return cols


def json_array(value: Any) -> np.ndarray:
    """``value`` as JSON, in a uint8 array (so it saves in an ``.npz`` beside numeric arrays)."""
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def json_value(array: np.ndarray) -> Any:
    return json.loads(bytes(array))


def csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    codes = np.fromiter((c for x in lists for c in x), dtype=np.int32, count=int(ptr[-1]))
    return ptr, codes


def _code(vocab: dict[str, int], value: str) -> int:
    return vocab.setdefault(value, len(vocab))


def _value(x: int | None) -> int:
    return NONE if x is None else int(x)


class ColumnBuilder:
    """Collects papers one at a time (:meth:`add`) and makes the :class:`Columns` (:meth:`columns`). Given
    ``base`` (the columns of papers before these, rag.records_append), the new papers are coded with its
    vocabularies (new values get the next codes, as one build over all papers in order gives them) and the
    columns made are ``base``'s with theirs appended."""

    def __init__(self, base: Columns | None = None) -> None:
        singles = ("year", "upvotes", "n_authors", "kind", "category")
        self.base = base
        self.ints: dict[str, list[int]] = {k: [] for k in singles}
        self.lists: dict[str, list[list[int]]] = {"source": [], "aff": [], "author": []}
        self.vocab: dict[str, dict[str, int]] = {k: {} for k in ("kind", "category", *self.lists)}
        if base is not None:
            names = [bytes(n).decode("utf-8") for n in base.names]
            seeds = (
                ("kind", base.kinds), ("category", base.categories), ("source", base.sources),
                ("aff", base.affiliations), ("author", names),
            )  # fmt: skip
            for part, values in seeds:
                self.vocab[part] = {v: i for i, v in enumerate(values)}
        self.sort_keys: list[SortKey] = []

    def add(self, p: Paper) -> None:
        ints, lists, vocab = self.ints, self.lists, self.vocab
        ints["year"].append(_value(p.year))
        ints["upvotes"].append(_value(p.upvotes))
        ints["n_authors"].append(_value(author_count(p)))
        ints["kind"].append(_code(vocab["kind"], p.kind) if p.kind else -1)
        ints["category"].append(_code(vocab["category"], p.category) if p.category else -1)
        lists["source"].append(sorted({_code(vocab["source"], s) for s in (p.sources or [p.source])}))
        lists["aff"].append(sorted({_code(vocab["aff"], affiliation_key(a)) for a in p.affiliations}))
        names = (SEP.join(t) for t in (name_tokens(a) for a in authors_of(p)) if t)
        lists["author"].append([_code(vocab["author"], n) for n in names])
        self.sort_keys.append(sort_key(p))

    def columns(self, rank: np.ndarray | None = None) -> Columns:
        """The columns; ``rank`` every paper's listing rank (computed from the papers added when not given:
        with a ``base``, it must be)."""
        base = self.base
        arrays = {k: np.asarray(v, dtype=np.int32) for k, v in self.ints.items()}
        lists: dict[str, np.ndarray] = {}
        for part in ("source", "aff", "author"):
            ptr, codes = csr(self.lists[part])
            if base is not None:
                old_ptr, old_codes = getattr(base, f"{part}_ptr"), getattr(base, f"{part}_codes")
                ptr = np.concatenate([old_ptr, old_ptr[-1] + ptr[1:]])
                codes = np.concatenate([old_codes, codes])
            lists[f"{part}_ptr"], lists[f"{part}_codes"] = ptr, codes.astype(np.int32)
        if base is not None:
            arrays = {k: np.concatenate([getattr(base, k), v]) for k, v in arrays.items()}
        if rank is None:
            if base is not None:
                raise ValueError("the rank of papers added to base columns must be given")
            rank = np.empty(len(self.sort_keys), dtype=np.int32)
            order = sorted(range(len(self.sort_keys)), key=self.sort_keys.__getitem__)
            rank[order] = np.arange(len(order), dtype=np.int32)
        # author names sorted by family name: codes are re-numbered in that order
        names = list(self.vocab["author"])
        by_family = sorted(range(len(names)), key=lambda i: (names[i].rsplit(SEP, 1)[-1], names[i]))
        renumber = np.empty(len(names), dtype=np.int32)
        renumber[by_family] = np.arange(len(names), dtype=np.int32)
        codes = lists["author_codes"]
        lists["author_codes"] = renumber[codes] if len(codes) else codes
        sorted_names = [names[i] for i in by_family]
        return Columns(
            **arrays,
            rank=rank,
            **lists,
            names=utf8_array(sorted_names),
            family=utf8_array([n.rsplit(SEP, 1)[-1] for n in sorted_names]),
            kinds=list(self.vocab["kind"]),
            categories=list(self.vocab["category"]),
            sources=list(self.vocab["source"]),
            affiliations=list(self.vocab["aff"]),
        )


def utf8_array(values: list[str]) -> np.ndarray:
    if not values:
        return np.zeros(0, dtype="S1")
    return np.asarray([v.encode("utf-8") for v in values], dtype=bytes)


def columns_of(papers: Iterable[Paper]) -> Columns:
    """The columns of ``papers``, in the order given."""
    builder = ColumnBuilder()
    for p in papers:
        builder.add(p)
    return builder.columns()

