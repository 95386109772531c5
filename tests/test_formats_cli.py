"""`rag index PATH …` over mixed reference-library files/folders/globs (fake embedder: the incremental
fast path), and `rag papers` counting records and problems per format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_index import FakeEmbedder

import rag.index
from rag.cli import main

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"

NEW = """
@article{new{n},
  title = {A Newly Added Paper Number {n}},
  author = {Added, Ada},
  year = {2025},
  abstract = {This paper was added to the export later; it is number {n}.},
}
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    embedder = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: embedder)
    return embedder


def _stats(out: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in out.strip().splitlines() if line.strip())


def test_index_mixed_paths_then_three_new_items_embed_three_papers(
    fake: FakeEmbedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("library.ris", "zotero.json", "pubmed.xml"):
        shutil.copy(FORMATS / name, lib / name)
    bib = tmp_path / "export.bib"
    shutil.copy(FORMATS / "library.bib", bib)
    args = ["index", "--no-progress", str(bib), str(lib), str(FORMATS / "arxiv*.atom")]
    assert main(args) == 0
    first = _stats(capsys.readouterr().out)
    assert int(first["papers"]) > 10 and first["unchanged"] == "0"

    with bib.open("a", encoding="utf-8") as fh:  # the user exports the library again, with 3 new items
        fh.write("".join(NEW.replace("{n}", str(n)) for n in (1, 2, 3)))
    texts_before = fake.texts
    assert main(args) == 0
    second = _stats(capsys.readouterr().out)
    assert int(second["papers"]) == int(first["papers"]) + 3
    assert int(second["unchanged"]) == int(first["papers"])
    assert int(second["embedded"]) == 3 == fake.texts - texts_before  # one chunk per short abstract


def test_papers_counts_per_format_and_lists_problems(capsys: pytest.CaptureFixture[str]) -> None:
    paths = ["library.bib", "library.ris", "s2_papers.json", "arxiv-snapshot.json.gz"]
    argv = ["papers", *(x for p in paths for x in ("--path", str(FORMATS / p)))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    block = out[out.index("by format") : out.index("files:")].splitlines()[1:]
    rows = {fmt: " ".join(rest.split()) for fmt, rest in (line.split(None, 1) for line in block)}
    assert rows == {
        "arxiv-snapshot": "2 in 1 file(s), 0 problem(s)",
        "bibtex": "7 in 1 file(s), 2 problem(s)",
        "ris": "7 in 1 file(s), 3 problem(s)",
        "s2": "5 in 1 file(s), 3 problem(s)",
    }
    assert "library.bib:33: BibTeX entry 'broken' cannot be parsed" in out
    assert "library.ris:42: RIS record is not closed" in out
