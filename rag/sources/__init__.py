"""Source parsers, one per input layout, and format detection by content.

The only code that reads raw source files. Formats:

============  ================================================================================
``profile``   author-profile page (seed 000): subject+date line, title, authors, abstract
``listing``   paper listing (seed 001): subject+date[+Code], title glued to the authors, abstract
``daily``     Daily Papers page (seed 002): title, abstract, "• N authors", date and upvotes
``workshop``  workshop page (seed 003): talks, posters, orals, "More from the Same Authors"
``beir``      BEIR ``corpus.jsonl`` (``_id``/``title``/``text``), or a folder holding one
``jsonl``     JSON lines of papers (objects with at least ``title``)
============  ================================================================================

`detect_format` looks at the text, never only at the file name. `expand_paths` turns the user's
paths (files, seed folders, BEIR folders) into the files to read. `parse_file` reads one file and
returns a `ParseResult`; unreadable files raise a `SourceError` subclass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rag.errors import SourceError, UnknownFormatError
from rag.sources import beir, daily, jsonl, listing, profile, workshop
from rag.sources.base import ParseResult, Skipped, read_text

__all__ = ["FORMATS", "ParseResult", "Skipped", "detect_format", "expand_paths", "parse_file", "read_text"]

FORMATS = ["profile", "listing", "daily", "workshop", "beir", "jsonl"]
_PAGE_SNIFFERS = [
    ("workshop", workshop.sniff),
    ("daily", daily.sniff),
    ("listing", listing.sniff),
    ("profile", profile.sniff),
]
_EXPECTED = (
    "expected one of: an author-profile page, a paper listing, a Daily Papers page, a workshop page "
    '(see docs/corpus.md), a BEIR corpus.jsonl, or JSON lines of papers with a "title"'
)


def _json_kind(text: str) -> str | None:
    """'beir' / 'jsonl' when the text is JSON lines of documents/papers, 'json' for other JSON, else None."""
    objs: list[object] = []
    tried = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        tried += 1
        try:
            objs.append(json.loads(line))
        except json.JSONDecodeError:
            pass
        if tried >= 20:
            break
    if not objs or len(objs) * 2 < tried:
        return None
    if any(beir.sniff_object(o) for o in objs):
        return "beir"
    if any(jsonl.sniff_object(o) for o in objs):
        return "jsonl"
    return "json"


def detect_format(text: str) -> str | None:
    """Name of the format of `text` (one of `FORMATS`), or None when it is none of them."""
    kind = _json_kind(text)
    if kind in ("beir", "jsonl"):
        return kind
    if kind == "json":
        return None
    for name, sniff in _PAGE_SNIFFERS:
        if sniff(text):
            return name
    return None


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to read: a file as is; a folder with ``corpus.jsonl`` → that file (BEIR); another folder →
    its visible files, sorted by name. A missing path raises `SourceError`."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            corpus = path / "corpus.jsonl"
            if corpus.is_file():
                files.append(corpus)
            else:
                files.extend(p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(
                path, "no such file or folder; pass seed pages, a BEIR folder or a .jsonl file."
            )
    return files


def parse_file(path: Path, known_names: Iterable[str] = (), text: str | None = None) -> ParseResult:
    """Read and parse one file. Raises `SourceError` (empty, binary, not UTF-8, unknown format)."""
    if text is None:
        text = read_text(path)
    fmt = detect_format(text)
    if fmt is None:
        first = next((line.strip() for line in text.split("\n") if line.strip()), "")
        raise UnknownFormatError(path, f"unknown format (starts with {first[:50]!r}); {_EXPECTED}.", line=1)
    if fmt == "listing":
        return listing.parse(text, path, known_names=known_names)
    module = {"profile": profile, "daily": daily, "workshop": workshop, "beir": beir, "jsonl": jsonl}[fmt]
    result: ParseResult = module.parse(text, path)
    return result
