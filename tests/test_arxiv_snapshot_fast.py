"""The arXiv snapshot reader's fast path (orjson, a specialised builder) gives every record exactly what
the reference path gives (stdlib json, `_record` through `records.paper`): the same `Paper`, field by
field, or the same problem. Checked over generated records (bench/parse_arxiv.py's generator), the
fixtures and lines made to sit on every edge the fast path must decline or handle alike."""

from __future__ import annotations

import gzip
import json
import random
import re
import string
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT

from rag.errors import EncodingError
from rag.sources import arxiv
from rag.sources.records import open_binary
from rag.types import fold, paper_id

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from parse_arxiv import record as generated_record  # noqa: E402

FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"
BASE: dict[str, Any] = {
    "id": "0704.0001",
    "title": "A Title\n  on Two Lines",
    "authors": "Anna Müller, Wei Li",
    "abstract": "  One line\nand another.\n",
    "categories": "cs.LG stat.ML",
    "journal-ref": None,
    "doi": None,
    "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
    "update_date": "2008-05-23",
    "authors_parsed": [["Müller", "Anna", ""], ["Li", "Wei", ""]],
}
# One field of BASE changed per line (None: the key left out).
EDGES: list[tuple[str, Any]] = [
    ("authors_parsed", [["  Smith ", "J.\tK.", ""], ["Ford", "Henry", "Jr."], ["Solo", ""], []]),
    ("authors_parsed", [["Solo"]]),
    ("authors_parsed", [["Li", 1, ""]]),
    ("authors_parsed", [["Li", None, ""]]),
    ("authors_parsed", [["Li", "Wei", None]]),
    ("authors_parsed", [{"0": "x"}]),
    ("authors_parsed", ["ab", "c d"]),
    ("authors_parsed", [7]),
    ("authors_parsed", []),
    ("authors_parsed", "Li, Wei"),
    ("authors_parsed", None),
    ("authors", "A. One and B. Two, C. Three"),
    ("title", "   "),
    ("title", 5),
    ("title", None),
    ("title", "Tabs\tand\u00a0non-breaking  spaces, Über ß"),
    ("abstract", None),
    ("abstract", 42),
    ("abstract", 123456789012345678901234567890),
    ("abstract", "  a\n  b\t c\r\nd  "),
    ("abstract", "x\u00a0 y  z"),
    ("abstract", "x\u2003\u2003y"),
    ("abstract", "a\x1cb  c"),
    ("abstract", "a\x0bb  c\x07"),
    ("abstract", "many      spaces\n\n\n here"),
    ("abstract", "   "),
    ("abstract", "café  crème"),
    ("id", None),
    ("id", 1234),
    ("id", "0704.0001v2"),
    ("id", "math/0501001"),
    ("id", ""),
    ("id", 123456789012345678901234567890),
    ("categories", None),
    ("categories", ""),
    ("categories", 123),
    ("categories", 123456789012345678901234567890),
    ("categories", "cs.LG  stat.ML\t"),
    ("journal-ref", ""),
    ("journal-ref", 5),
    ("journal-ref", ["x"]),
    ("journal-ref", {}),
    ("journal-ref", {"a": 1}),
    ("journal-ref", True),
    ("journal-ref", "Phys. Rev. D 99 (1999)"),
    ("doi", "https://doi.org/10.1/ABC"),
    ("doi", 5),
    ("doi", "nope"),
    ("versions", []),
    ("versions", "x"),
    ("versions", [{"created": "Mon, 2 Foo 2007 19:18:42 GMT"}]),
    ("versions", [{"created": "2 Apr 2007 19:18:42 +0000"}]),
    ("versions", [{"created": 5}]),
    ("versions", [{"created": 123456789012345678901234567890}]),
    ("versions", [{"created": "Mon, 2 Apr 2150 19:18:42 GMT"}]),
    ("versions", [{"created": "Mon, 2 Apr 1499 19:18:42 GMT"}]),
    ("versions", [{"created": "Mon, 2 Apr \u0662\u0660\u0660\u0667 19:18:42 GMT"}]),
    ("versions", [None]),
    ("update_date", ""),
    ("update_date", 7),
    ("update_date", "2100-01-01"),
]
RAW_LINES = [
    b"",
    b"   ",
    "\u00a0".encode(),
    b"[1, 2]",
    b"nonsense",
    b'{"title": NaN, "id": "0704.0002"}',
    b'{"title": "Infinite", "abstract": 1e400}',
    b'{"title": "Big", "categories": 123456789012345678901234567890}',
    b'{"title": "\\ud800 lone surrogate"}',
    b'{"title": "Dup", "title": "Duplicate keys: the last one"}',
    b'{"title": "Ctrl \\u0001 escaped", "abstract": "a\\u001fb  c"}',
    b'{"title": "CRLF line"}\r',
    b'  {"title": "Padded"}  ',
]


def _variant(key: str, value: Any) -> bytes:
    obj = {k: v for k, v in BASE.items() if not (k == key and value is None)}
    if value is not None:
        obj[key] = value
    return json.dumps(obj, ensure_ascii=False).encode()


def _reference(path: Path) -> list[Any]:
    """The reader as it was: every line through the reference path."""
    out = []
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            rec = arxiv._exact_record(path, lineno, raw)
            if rec is not None:
                out.append(rec)
    return out


def _key(rec: Any) -> Any:
    if hasattr(rec, "model_dump"):
        return ("paper", rec.model_dump(), sorted(rec.model_fields_set))
    return (type(rec).__name__, rec.line, rec.detail)


def _same_as_reference(path: Path) -> int:
    fast = [_key(r) for r in arxiv.snapshot_records(path)]
    assert fast == [_key(r) for r in _reference(path)]
    return sum(1 for k in fast if k[0] == "paper")


def test_generated_records_take_the_fast_path_and_equal_the_reference(tmp_path: Path) -> None:
    rng = random.Random(1)
    lines = [json.dumps(generated_record(i, rng), ensure_ascii=False).encode() for i in range(2000)]
    assert all(arxiv._fast_record("x.json", 1, line) is not None for line in lines)
    for name, opener in (("gen.json", open), ("gen.json.gz", gzip.open)):
        path = tmp_path / name
        with opener(path, "wb") as fh:  # type: ignore[operator]
            fh.write(b"\n".join(lines) + b"\n")
        assert _same_as_reference(path) == 2000


@pytest.mark.parametrize("name", ["arxiv-metadata-oai-snapshot.json", "arxiv-snapshot.json.gz"])
def test_fixtures_equal_the_reference(name: str) -> None:
    assert _same_as_reference(FORMATS / name) >= 2


def test_edge_lines_equal_the_reference(tmp_path: Path) -> None:
    lines = [_variant(k, v) for k, v in EDGES] + RAW_LINES
    path = tmp_path / "edges.json"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    papers = _same_as_reference(path)
    assert papers >= len(EDGES) // 2  # most edges are papers, not only problems
    fast = sum(arxiv._fast_record("x", 1, line) is not None for line in lines)
    assert 0 < fast < len(lines)  # both paths are exercised


def test_invalid_utf8_stops_the_file_as_before(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(_variant("id", None) + b"\n" + b'{"title": "caf\xe9"}\n')
    with pytest.raises(EncodingError) as fast:
        list(arxiv.snapshot_records(path))
    with pytest.raises(EncodingError) as ref:
        _reference(path)
    assert (fast.value.line, fast.value.detail) == (ref.value.line, ref.value.detail) == (
        2,
        "not valid UTF-8 (byte 0xe9); re-save the file as UTF-8.",
    )


@pytest.mark.parametrize(
    "text",
    ["  a\n b  c ", "x\u00a0 y  z", "x\u2003\u2003y", "a\x1cb  c", "a\tb", "a\rb  c", "é  è\n", "   ", ""],
)
def test_fast_flat_is_flat(text: str) -> None:
    assert arxiv._fast_flat(text) == arxiv._flat(text)


@pytest.mark.parametrize(
    ("title", "slug"),
    [("A Modern Look: at (Sharpness)!", "a-modern-look-at-sharpness"), ("Über  Größe", "uber-grosse"),
     ("???", "untitled")],
)
def test_paper_id_slug(title: str, slug: str) -> None:
    assert paper_id(title) == slug


def test_ascii_paper_id_equals_the_folded_slug() -> None:
    """`paper_id`'s ASCII shortcut gives the slug of the general rule (fold, then runs of [a-z0-9])."""
    rng = random.Random(2)
    alphabet = string.printable + "\x00\x1c\x1f\x7f"
    for _ in range(3000):
        title = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        slug = re.sub(r"[^a-z0-9]+", "-", fold(title)).strip("-")
        if len(slug) > 64:
            slug = slug[:64].rsplit("-", 1)[0]
        assert paper_id(title) == (slug or "untitled"), title
