"""Issue 14 item 6: bm25s quiet at the default log level, a subcommand's own usage for an unknown flag,
relevance notes whose comparison is true as printed, control characters that do not split words."""

from __future__ import annotations

import logging
import re

import pytest
from test_index import FakeEmbedder, papers

from rag.filters import clean_text
from rag.retrieve import check_query
from rag.settings import Settings
from rag.types import Chunk


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("rag_level, shown", [(logging.WARNING, False), (logging.DEBUG, True)])
def test_bm25s_debug_lines_only_with_debug_logging(
    tmp_path, monkeypatch: pytest.MonkeyPatch, rag_level: int, shown: bool  # type: ignore[no-untyped-def]
) -> None:
    """As `rag` configures logging: a root handler at NOTSET, the root level from -v/-q."""
    from rag.lexical import build_lexical_index, load_lexical_index

    handler = _Records()
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", rag_level)
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(logging.getLogger("rag"), "level", logging.NOTSET)
    chunks = [Chunk(id=f"p{i}#0", paper_id=f"p{i}", n=0, text=f"Title {i}\n\nWords about topic {i}.",
                    metadata={"title": f"Title {i}"}) for i in range(3)]
    build_lexical_index(chunks, tmp_path / "bm25")
    load_lexical_index(tmp_path / "bm25")
    from_bm25s = [r for r in handler.records if r.name.startswith("bm25s")]
    assert bool(from_bm25s) is shown, [r.getMessage() for r in from_bm25s]


def test_unknown_flag_prints_the_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    with pytest.raises(SystemExit) as info:
        main(["ask", "--bogus", "x"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: rag ask ") and "rag ask: error: unrecognized arguments: --bogus" in err
    with pytest.raises(SystemExit):
        main(["--bogus", "papers"])  # before the subcommand: the top-level usage is the right one
    err = capsys.readouterr().err
    assert err.startswith("usage: rag [-h]") and "rag: error: unrecognized arguments: --bogus" in err


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("sharp\x01ness of minima", "sharpness of minima"),
        ("sharp\x7fness\x9b", "sharpness"),  # DEL and a C1 control
        ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
        ("tab\there\nnewline\x85next", "tab here newline next"),
        ("unit\x1fsep", "unitsep"),  # Python counts \x1f as a space; it is a control character
        ("  \x00\x01  ", ""),
    ],
)
def test_control_characters_do_not_split_words(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    if clean:
        assert check_query(raw) == clean


def test_a_control_character_inside_a_word_finds_the_same_papers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rag.index
    import rag.query_encoder
    from rag.retrieve import search

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    monkeypatch.setattr(rag.query_encoder, "get_query_encoder", lambda settings=None: fake)
    settings = Settings()
    settings.index.late_interaction = False
    rag.index.build_index(papers(4), settings)
    plain = search("Paper 2 finding", settings=settings, k=2)
    odd = search("Pa\x01per 2 fin\x00ding", settings=settings, k=2)
    assert odd.query == plain.query == "Paper 2 finding"
    assert [h.paper.id for h in odd] == [h.paper.id for h in plain]


def test_low_relevance_note_is_true_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The note used to round both sides to 2 decimals: "best relevance 0.50 < 0.50"."""
    import rag.index
    import rag.query_encoder
    from rag.retrieve import search

    fake = FakeEmbedder()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    monkeypatch.setattr(rag.query_encoder, "get_query_encoder", lambda settings=None: fake)
    settings = Settings()
    settings.index.late_interaction = False
    rag.index.build_index(papers(4), settings)
    settings.retrieve.min_relevance = 1.0
    best = max(h.relevance or 0.0 for h in search("described here", settings=settings))
    assert best < 0.999
    # A threshold just above the best relevance: both sides were "0.xy" at 2 decimals.
    settings.retrieve.min_relevance = round(best + 0.0003, 6)
    hits = search("described here", settings=settings)
    assert not hits.good_match and hits.note
    shown = re.search(r"best relevance (\d\.\d+), below the threshold (\d(?:\.\d+)?)", hits.note)
    assert shown, hits.note
    assert float(shown[1]) < float(shown[2]) and float(shown[1]) <= best
