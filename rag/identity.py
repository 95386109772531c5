"""Which entries from different sources are the same paper: identifiers first, then title + first author.

`link(groups)` takes the groups of entries the corpus loader already holds (one group per title id) and
joins groups that share, in this order of trust:

1. a DOI (lower-case, URL prefix stripped; an arXiv DOI ``10.48550/arXiv.X`` counts as arXiv id X),
2. an arXiv id (version stripped),
3. a PubMed id,
4. the normalised title (letters and digits of the folded title) + the first author's family name —
   unless the two carry different DOIs, arXiv ids or PMIDs (a conference paper and its journal version).

Groups with an explicit id (BEIR ``_id``, a JSON-lines ``id``) are never joined. The joined paper keeps
the id of the group seen first, so ids stay stable across runs and the seed pages' ids never change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.sources.records import norm_arxiv
from rag.types import Paper, fold

_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.", re.IGNORECASE)


def title_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", fold(title))


def family(name: str) -> str:
    words = fold(name).replace(".", " ").split()
    return words[-1] if words else ""


def ids_of(p: Paper) -> dict[str, str]:
    """The paper's identifiers as ``{"doi": …, "arxiv": …, "pmid": …}`` (only those it has)."""
    out: dict[str, str] = {}
    arxiv = p.arxiv_id
    if p.doi and _ARXIV_DOI.match(p.doi):
        arxiv = arxiv or norm_arxiv(p.doi)
    elif p.doi:
        out["doi"] = p.doi.lower()
    if arxiv:
        out["arxiv"] = arxiv.lower()
    if p.pmid:
        out["pmid"] = p.pmid.strip()
    return out


def different_ids(a: Paper, b: Paper) -> bool:
    """Both papers carry a DOI (or arXiv id, or PMID) and they differ: two papers, whatever their titles."""
    ia, ib = ids_of(a), ids_of(b)
    return any(k in ia and k in ib and ia[k] != ib[k] for k in ("doi", "arxiv", "pmid"))


def _conflict(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    return any(a.get(k) and b.get(k) and not (a[k] & b[k]) for k in ("doi", "arxiv", "pmid"))


def link(groups: Sequence[Sequence[Paper]], explicit: Sequence[bool]) -> list[list[int]]:
    """Indices of ``groups`` joined into papers, each list ascending, lists in order of first index."""
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ids: list[dict[str, set[str]]] = []
    for group in groups:
        mine: dict[str, set[str]] = {}
        for p in group:
            for k, v in ids_of(p).items():
                mine.setdefault(k, set()).add(v)
        ids.append(mine)

    def join(i: int, j: int) -> None:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
            for k, v in ids[max(ri, rj)].items():
                ids[min(ri, rj)].setdefault(k, set()).update(v)

    seen: dict[str, int] = {}
    for i, mine in enumerate(ids):
        if explicit[i]:
            continue
        for kind in ("doi", "arxiv", "pmid"):
            for value in sorted(mine.get(kind, ())):
                key = f"{kind}:{value}"
                if key in seen:
                    join(seen[key], i)
                else:
                    seen[key] = i
    by_title: dict[str, int] = {}
    for i, group in enumerate(groups):
        first = group[0]
        if explicit[i] or not first.authors:
            continue
        key = f"{title_key(first.title)}|{family(first.authors[0])}"
        j = by_title.get(key)
        if j is None:
            by_title[key] = i
        elif root(j) != root(i) and not _conflict(ids[root(j)], ids[root(i)]):
            join(j, i)
    sets: dict[int, list[int]] = {}
    for i in range(len(groups)):
        sets.setdefault(root(i), []).append(i)
    return [sets[r] for r in sorted(sets)]
