"""Paper records read on demand (rag.records), their metadata columns (rag.record_columns) and the filter
over them (rag.filter_index), checked against a plain per-paper reference on the seed corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rag
import rag.records
from rag.errors import IndexMissingError
from rag.filter_index import PaperFilter
from rag.filters import affiliation_key, author_count, authors_of, name_matches, name_tokens
from rag.query_filters import AuthorLexicon
from rag.records import RECORDS_FILE, PaperRecords, write_records
from rag.types import Filters, Paper, fold


@pytest.fixture(scope="module")
def seeds() -> list[Paper]:
    return list(rag.load_corpus())


def write(folder: Path, papers: list[Paper], blank_lines: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sep = "\n\n" if blank_lines else "\n"
    text = sep.join(p.model_dump_json() for p in papers) + "\n"
    (folder / "papers.jsonl").write_text(text, encoding="utf-8")
    return folder


def test_records_by_id_in_file_order(tmp_path: Path, seeds: list[Paper]) -> None:
    records = PaperRecords(write(tmp_path, seeds, blank_lines=True))
    assert len(records) == len(seeds) and list(records) == [p.id for p in seeds]
    for p in seeds[::17]:
        assert records[p.id] == p and p.id in records
    assert list(records.values()) == seeds
    assert "no such paper" not in records and records.get("no such paper") is None
    with pytest.raises(KeyError):
        records["no such paper"]


def test_derived_once_then_loaded_and_re_derived_when_the_records_change(
    tmp_path: Path, seeds: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write(tmp_path, seeds[:50])
    PaperRecords(folder)
    assert (folder / RECORDS_FILE).is_file()
    derive = rag.records._Derived.of
    calls: list[Path] = []
    monkeypatch.setattr(
        rag.records._Derived, "of", lambda fh, path, *a: calls.append(path) or derive(fh, path, *a)
    )
    assert len(PaperRecords(folder)) == 50 and not calls  # loaded, not derived again
    write(folder, seeds[:60])
    records = PaperRecords(folder)
    assert len(records) == 60 and records[seeds[55].id] == seeds[55] and len(calls) == 1
    (folder / RECORDS_FILE).write_bytes((folder / RECORDS_FILE).read_bytes()[:200])  # damaged: derived again
    assert list(PaperRecords(folder)) == [p.id for p in seeds[:60]] and len(calls) == 2


def test_a_records_file_of_other_papers_is_derived_again(tmp_path: Path, seeds: list[Paper]) -> None:
    folder = write(tmp_path, seeds[:30])
    PaperRecords(folder)
    saved = folder / RECORDS_FILE
    with np.load(saved) as z:
        parts = dict(z)
    parts["col_year"] = parts["col_year"][:10]  # a whole, readable file whose parts disagree
    np.savez(saved, **parts)
    records = PaperRecords(folder)
    assert len(records.columns.year) == 30 and records[seeds[29].id] == seeds[29]


def test_write_records_uses_the_papers_given(
    tmp_path: Path, seeds: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.records, "_parse_all", lambda path: pytest.fail("parsed papers.jsonl"))
    write_records(tmp_path, seeds, "".join(p.model_dump_json() + "\n" for p in seeds))
    records = PaperRecords(tmp_path)
    assert records[seeds[3].id] == seeds[3] and records.lexicon == AuthorLexicon.from_papers(seeds)


def test_a_read_only_home_still_searches(
    tmp_path: Path, seeds: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object, path: Path, stamp: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rag.records._Derived, "save", refuse)
    records = PaperRecords(write(tmp_path, seeds[:10]))
    assert records[seeds[9].id] == seeds[9] and not (tmp_path / RECORDS_FILE).exists()


def test_damaged_record_names_the_file_and_line(tmp_path: Path, seeds: list[Paper]) -> None:
    folder = write(tmp_path, seeds[:5])
    lines = (folder / "papers.jsonl").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:40]
    (folder / "papers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IndexMissingError, match=r"papers\.jsonl is damaged \(line 4: .*run `rag index`"):
        PaperRecords(folder)


def test_record_changed_under_a_loaded_index_is_named(tmp_path: Path, seeds: list[Paper]) -> None:
    folder = write(tmp_path, seeds[:5])
    records = PaperRecords(folder)
    path = folder / "papers.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:10] + b"#" + data[11:])  # same size, in place: the loaded offsets still apply
    with pytest.raises(IndexMissingError, match=r"papers\.jsonl is damaged \(line 1"):
        records[seeds[0].id]


def test_a_loaded_index_reads_the_file_it_was_loaded_from(tmp_path: Path, seeds: list[Paper]) -> None:
    records = PaperRecords(write(tmp_path, seeds[:20]))
    newer = [p.model_copy(update={"abstract": "Rewritten."}) for p in reversed(seeds[:25])]
    write_records(tmp_path, newer, "".join(p.model_dump_json() + "\n" for p in newer))  # a re-index
    assert records[seeds[7].id] == seeds[7] and list(records.values()) == seeds[:20]
    assert PaperRecords(tmp_path)[seeds[7].id].abstract == "Rewritten."


def test_lexicon_survives_the_round_trip(tmp_path: Path, seeds: list[Paper]) -> None:
    PaperRecords(write(tmp_path, seeds))
    assert PaperRecords(tmp_path).lexicon == AuthorLexicon.from_papers(seeds)


# ---------------------------------------------------------------------------------------------- filters
def reference(papers: list[Paper], f: Filters) -> set[str]:
    """The filter rules applied one paper at a time, as the per-paper filter did before the columns."""

    def ok(p: Paper) -> bool:
        if f.authors:
            names = [name_tokens(a) for a in authors_of(p)]
            hits = [any(name_matches(name_tokens(w), a) for a in names) for w in f.authors]
            if not (all(hits) if f.authors_together and len(f.authors) > 1 else any(hits)):
                return False
        if (f.year_min is not None or f.year_max is not None) and (
            p.year is None
            or (f.year_min is not None and p.year < f.year_min)
            or (f.year_max is not None and p.year > f.year_max)
        ):
            return False
        if f.sources:
            have = [fold(s) for s in (p.sources or [p.source])]
            wanted = [fold(s) for s in f.sources]
            if not any(h == w or h.startswith(w) or h.rsplit(".", 1)[0] == w for w in wanted for h in have):
                return False
        if f.kinds and (p.kind is None or fold(p.kind) not in {fold(k) for k in f.kinds}):
            return False
        if f.categories and (p.category is None or fold(p.category) not in {fold(c) for c in f.categories}):
            return False
        if f.affiliations and not any(
            affiliation_key(a) in {affiliation_key(x) for x in f.affiliations} for a in p.affiliations
        ):
            return False
        n = author_count(p)
        if f.n_authors_min is not None and (n is None or n < f.n_authors_min):
            return False
        if f.upvotes_min is not None and (p.upvotes is None or p.upvotes < f.upvotes_min):
            return False
        return f.sources_min is None or len(set(p.sources or [p.source])) >= f.sources_min

    return {p.id for p in papers if ok(p)}


def test_columns_filter_like_the_per_paper_rules(tmp_path: Path, seeds: list[Paper]) -> None:
    records = PaperRecords(write(tmp_path, seeds))
    pf = PaperFilter(records.columns, records.ids)
    authors = [a for p in seeds[::23] for a in p.authors[:2]]
    cases = [Filters(authors=[a]) for a in authors]
    cases += [Filters(authors=[a.split()[-1]]) for a in authors]
    cases += [Filters(authors=[f"{a.split()[0][0]}. {a.split()[-1]}"]) for a in authors]
    cases += [Filters(authors=authors[:2], authors_together=True), Filters(authors=authors[2:4])]
    cases += [Filters(year_min=2023), Filters(year_max=2022, year_min=2020), Filters(sources=["001"])]
    cases += [Filters(kinds=[p.kind]) for p in seeds if p.kind][:3]
    cases += [Filters(categories=[p.category.lower()]) for p in seeds if p.category][:3]
    cases += [Filters(n_authors_min=5), Filters(upvotes_min=10), Filters(sources_min=2)]
    cases += [Filters(affiliations=[a]) for p in seeds for a in p.affiliations][:3]
    assert sum(1 for f in cases if reference(seeds, f)) >= len(cases) - 3  # the cases select papers
    for f in cases:
        assert pf.allowed(f) == reference(seeds, f), f


def test_newest_first_like_the_listing_order(tmp_path: Path, seeds: list[Paper]) -> None:
    records = PaperRecords(write(tmp_path, seeds))
    pf = PaperFilter(records.columns, records.ids)
    wanted = {p.id for p in seeds if p.year and p.year >= 2023}
    order = sorted(
        (p for p in seeds if p.id in wanted), key=lambda p: (-(p.year or 0), p.date or "", p.title.casefold())
    )
    assert pf.newest(wanted, 12) == [p.id for p in order[:12]]


# ------------------------------------------------------------------------------------------ word counts
def test_word_counts_follow_the_changed_papers_only(
    tmp_path: Path, seeds: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.word_counts

    first = seeds[:40]
    write_records(tmp_path, first, "".join(p.model_dump_json() + "\n" for p in first))
    assert PaperRecords(tmp_path).lexicon == AuthorLexicon.from_papers(first)
    counted: list[str] = []
    runs = rag.word_counts.letter_runs
    monkeypatch.setattr(rag.word_counts, "letter_runs", lambda text: counted.append(text) or runs(text))
    changed = first[5].model_copy(update={"abstract": first[5].abstract + " Bengio Bengio"})
    second = [*first[:5], changed, *first[6:30], *seeds[40:45]]  # 1 changed, 10 removed, 5 added
    write_records(tmp_path, second, "".join(p.model_dump_json() + "\n" for p in second))
    assert len(counted) == 1 + 1 + 10 + 5  # the changed paper out and in, the removed out, the added in
    records = PaperRecords(tmp_path)
    assert records.lexicon == AuthorLexicon.from_papers(second) and len(records) == 35
    saved = rag.records._Derived.load(tmp_path / RECORDS_FILE, rag.records._stamp(tmp_path / "papers.jsonl"))
    assert saved is not None
    assert saved.words == rag.word_counts.count(p.title + " " + p.abstract for p in second)
