"""records.npz extended when papers.jsonl only grew (rag.records_append): equal, array for array, to a
derivation of the grown file from scratch; used by write_records only for an append."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import rag.records
from rag.corpus_identity import PAPERS_FILE
from rag.records import RECORDS_FILE, _Derived, write_records
from rag.types import Paper

FAMILIES = ["Smith", "van der Berg", "Zhang", "Alvarez", "Müller", "Okafor", "Smith-Jones", "Li"]
GIVEN = ["Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran"]
AFFILIATIONS = ["ETH Zurich", "Oxford", "MIT", "Okafor"]
WORDS = "smith berg zhang model data result method li okafor tumour cell growth".split()


def _papers(n: int, seed: int, start: int = 0) -> list[Paper]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        authors = [f"{rng.choice(GIVEN)} {rng.choice(FAMILIES)}" for _ in range(rng.randint(0, 3))]
        year = rng.choice([None, 2019, 2020, 2020, 2021])
        out.append(
            Paper(
                id=f"p{i:03d}" if i % 7 else f"z-{i}",
                title=rng.choice(["Alpha study", "alpha Study", "Beta", f"Gamma {i}"]),  # equal listing keys
                abstract=" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))),
                authors=authors,
                year=year,
                date=rng.choice([None, f"{year or 2020}-03-01", f"{year or 2020}-01-15"]),
                kind=rng.choice([None, "paper", "poster", f"kind{i % 5}"]),
                category=rng.choice([None, "LG", f"C{i % 4}"]),
                source=rng.choice(["a.jsonl", "b.jsonl", f"s{i % 3}.jsonl"]),
                affiliations=rng.sample(AFFILIATIONS + [f"Lab {i % 4}"], rng.randint(0, 2)),
                upvotes=rng.choice([None, 3, 10]),
            )
        )
    return out


def _text(papers: list[Paper]) -> str:
    return "".join(p.model_dump_json() + "\n" for p in papers)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z if k != "stamp"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grown_records_equal_a_derivation_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    calls: list[bool] = []
    real = _Derived.extended.__func__  # type: ignore[attr-defined]

    def spy(cls, *args):  # type: ignore[no-untyped-def]
        out = real(cls, *args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(rag.records._Derived, "extended", classmethod(spy))
    old, new = _papers(40, seed), _papers(25, seed + 10, start=40)
    write_records(tmp_path, old, _text(old))
    assert calls == []  # nothing to extend: derived whole
    every = [*old, *new]
    write_records(tmp_path, every, _text(every))
    assert calls == [True]
    with (tmp_path / PAPERS_FILE).open("rb") as fh:
        _Derived.of(fh, tmp_path / PAPERS_FILE).save(tmp_path / "scratch.npz", [0])
    scratch, grown = _arrays(tmp_path / "scratch.npz"), _arrays(tmp_path / RECORDS_FILE)
    assert sorted(grown) == sorted(scratch)
    for key in scratch:
        assert grown[key].dtype.kind == scratch[key].dtype.kind, key
        assert np.array_equal(grown[key], scratch[key]), key
    records = rag.records.PaperRecords(tmp_path)
    assert [records[p.id].title for p in every] == [p.title for p in every]


def test_a_changed_or_removed_paper_is_derived_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = _Derived.of.__func__  # type: ignore[attr-defined]
    counted = classmethod(lambda cls, *a: calls.append(1) or real(cls, *a))
    monkeypatch.setattr(rag.records._Derived, "of", counted)
    papers = _papers(20, 5)
    write_records(tmp_path, papers, _text(papers))
    changed = [papers[0].model_copy(update={"title": "New"}), *papers[1:], *_papers(3, 6, start=20)]
    write_records(tmp_path, changed, _text(changed))
    write_records(tmp_path, changed[1:], _text(changed[1:]))
    assert len(calls) == 3
