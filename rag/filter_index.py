"""Matching papers against a :class:`Filters`, over the corpus's metadata columns (:mod:`rag.record_columns`).

Each part of a filter becomes a boolean mask over the papers' rows, computed with numpy on the columns, so a
filter over a million papers reads no paper record. The rules are :mod:`rag.filters`' own: authors by full
name, family name or initials + family name, accent- and case-insensitive (a profile page's owner counts as
an author of every paper on it); sources by file name, prefix or name without extension; kinds with or
without a plural ``s``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from rag.filters import affiliation_key, name_matches, name_tokens
from rag.idmap import IdMap
from rag.record_columns import NONE, Columns, columns_of
from rag.types import Filters, Paper, fold

Mask = Callable[[], np.ndarray]


@dataclass
class PaperFilter:
    """Matches papers against filters; built once per corpus (:meth:`from_papers`, or from a loaded index's
    columns and ids)."""

    columns: Columns
    ids: IdMap

    def __post_init__(self) -> None:
        self.kinds = _last_wins(self.columns.kinds)

    @classmethod
    def from_papers(cls, papers: Mapping[str, Paper]) -> PaperFilter:
        return cls(columns_of(papers.values()), IdMap(list(papers)))

    # single conditions ------------------------------------------------------------------------------
    def _authors(self, wanted: list[tuple[str, ...]]) -> np.ndarray:
        """Rows with an author matching any of ``wanted``."""
        cols = self.columns
        hit = np.zeros(len(cols.names), dtype=bool)
        for w in wanted:
            if not w:
                continue
            first, names = cols.name_candidates(w[-1])
            for i, author in enumerate(names):
                if name_matches(w, author):
                    hit[first + i] = True
        return cols.any_code(cols.author_ptr, cols.author_codes, hit)

    def _sources(self, wanted: list[str]) -> np.ndarray:
        hit = np.asarray(
            [
                any(h == w or h.startswith(w) or h.rsplit(".", 1)[0] == w for w in wanted)
                for h in (fold(s) for s in self.columns.sources)
            ],
            dtype=bool,
        )
        return self.columns.any_code(self.columns.source_ptr, self.columns.source_codes, hit)

    def _coded(self, column: np.ndarray, vocab: list[str], wanted: set[str]) -> np.ndarray:
        """Rows whose (folded) value of a small-vocabulary column is in ``wanted``."""
        codes = [i for i, v in enumerate(vocab) if fold(v) in wanted]
        return np.isin(column, np.asarray(codes, dtype=np.int32))

    @staticmethod
    def _between(column: np.ndarray, lo: int | None, hi: int | None) -> np.ndarray:
        ok = column != NONE
        if lo is not None:
            ok &= column >= lo
        if hi is not None:
            ok &= column <= hi
        return ok

    def conditions(self, filters: Filters) -> list[tuple[str, Mask]]:
        """(description, row mask) for each non-empty part of ``filters``; masks are computed when called."""
        cols = self.columns
        out: list[tuple[str, Mask]] = []
        if filters.authors and filters.authors_together and len(filters.authors) > 1:
            each = [[name_tokens(a)] for a in filters.authors]

            def together() -> np.ndarray:
                masks = [self._authors(w) for w in each]
                return np.logical_and.reduce(masks)

            out.append(("authors " + " and ".join(filters.authors), together))
        elif filters.authors:
            wanted = [name_tokens(a) for a in filters.authors]
            out.append(("author " + " or ".join(filters.authors), lambda: self._authors(wanted)))
        lo, hi = filters.year_min, filters.year_max
        if lo is not None or hi is not None:
            desc = Filters(year_min=lo, year_max=hi).describe()
            out.append((desc, lambda: self._between(cols.year, lo, hi)))
        if filters.sources:
            srcs = [fold(s) for s in filters.sources]
            out.append(("source " + " or ".join(filters.sources), lambda: self._sources(srcs)))
        if filters.categories:
            cats = {fold(c) for c in filters.categories}
            desc = "category " + " or ".join(filters.categories)
            out.append((desc, lambda: self._coded(cols.category, cols.categories, cats)))
        if filters.kinds:
            kinds = {fold(k).rstrip("s") if fold(k) not in self.kinds else fold(k) for k in filters.kinds}
            kinds |= {fold(k) for k in filters.kinds}
            desc = "kind " + " or ".join(filters.kinds)
            out.append((desc, lambda: self._coded(cols.kind, cols.kinds, kinds)))
        if filters.affiliations:
            affs = {affiliation_key(a) for a in filters.affiliations}
            hit = np.asarray([a in affs for a in cols.affiliations], dtype=bool)
            desc = "affiliation " + " or ".join(filters.affiliations)
            out.append((desc, lambda: cols.any_code(cols.aff_ptr, cols.aff_codes, hit)))
        if filters.upvotes_min is not None:
            up = filters.upvotes_min
            out.append((f"upvotes ≥ {up}", lambda: self._between(cols.upvotes, up, None)))
        n_lo, n_hi = filters.n_authors_min, filters.n_authors_max
        if n_lo is not None or n_hi is not None:
            desc = Filters(n_authors_min=n_lo, n_authors_max=n_hi).describe()
            desc = desc.replace("authors:", "author count")
            out.append((desc, lambda: self._between(cols.n_authors, n_lo, n_hi)))
        if filters.sources_min is not None:
            n_src = filters.sources_min
            out.append((f"listed in ≥ {n_src} sources", lambda: np.diff(cols.source_ptr) >= n_src))
        return out

    def allowed_rows(self, filters: Filters) -> np.ndarray:
        """Row mask of the papers that pass every part of ``filters`` (all rows when it is empty)."""
        mask = np.ones(len(self.columns), dtype=bool)
        for _, part in self.conditions(filters):
            mask &= part()
        return mask

    def allowed(self, filters: Filters) -> set[str]:
        """Ids of the papers that pass every part of ``filters`` (all papers when it is empty)."""
        return set(self.ids.ids_of(np.flatnonzero(self.allowed_rows(filters))))

    def newest(self, ids: set[str], k: int) -> list[str]:
        """The first ``k`` of ``ids`` in listing order: newest first, then by date, then by title."""
        rows = self.ids.rows(ids)
        rows = rows[np.argsort(self.columns.rank[rows], kind="stable")][:k]
        return self.ids.ids_of(rows)

    def explain_empty(self, filters: Filters) -> str:
        """Why ``filters`` allows no paper: the parts that match nothing, or the combination."""
        counts = [(desc, int(np.count_nonzero(part()))) for desc, part in self.conditions(filters)]
        empty = [desc for desc, n in counts if n == 0]
        if empty:
            return "No indexed paper matches " + "; ".join(empty) + "."
        parts = ", ".join(f"{desc} alone matches {n}" for desc, n in counts)
        return f"No indexed paper matches all of the filters together ({parts})."


def _last_wins(values: list[str]) -> dict[str, str]:
    """Folded spelling → the corpus's spelling (the last distinct spelling, as the old dict built it)."""
    out: dict[str, str] = {}
    for v in values:
        out[fold(v)] = v
    return out

