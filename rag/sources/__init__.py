"""Source parsers, one per input layout, and format detection by content.

The only code that reads raw source files. Formats:

============  ================================================================================
``profile``   author-profile page (seed 000): subject+date line, title, authors, abstract
``listing``   paper listing (seed 001): subject+date[+Code], title glued to the authors, abstract
``daily``     Daily Papers page (seed 002): title, abstract, "• N authors", date and upvotes
``workshop``  workshop page (seed 003): talks, posters, orals, "More from the Same Authors"
``beir``      BEIR ``corpus.jsonl`` (``_id``/``title``/``text``), or a folder holding one
``jsonl``     JSON lines of papers (objects with at least ``title``)
``bibtex``    BibTeX ``.bib`` (bibtexparser; LaTeX decoded, @string, crossref)
``ris``       RIS ``.ris`` (rispy)
``csljson``   CSL-JSON, e.g. Zotero's "CSL JSON" export
``arxiv``     arXiv API Atom feed
``arxiv-snapshot``  arXiv metadata snapshot (JSON lines, plain or .gz; streamed)
``openalex``  OpenAlex works (object, ``results`` page, array or JSON lines)
``s2``        Semantic Scholar Graph API papers (array, ``data`` page or JSON lines)
``pubmed``    PubMed XML (``PubmedArticleSet``; defusedxml, streamed)
============  ================================================================================

The reference-library formats (bibtex … pubmed) are recognised from the first 64 KiB of the file
(gunzipped when it is gzip) and read by their own module, record by record (`rag.sources.records`);
the page and JSON-lines formats are read whole, as before.

`detect_format` looks at the text, never only at the file name. `expand_paths` turns the user's
paths (files, seed folders, BEIR folders) into the files to read. `parse_file` reads one file and
returns a `ParseResult`; unreadable files raise a `SourceError` subclass.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from pathlib import Path

from rag.errors import SourceError, UnknownFormatError
from rag.sources import (
    arxiv,
    beir,
    bibtex,
    csljson,
    daily,
    jsonl,
    listing,
    openalex,
    profile,
    pubmed,
    ris,
    s2,
    workshop,
)
from rag.sources.base import ParseResult, Skipped, read_text
from rag.sources.records import read_head

__all__ = [
    "FORMATS",
    "LIBRARY_FORMATS",
    "ParseResult",
    "Skipped",
    "detect_format",
    "detect_library_format",
    "expand_paths",
    "parse_file",
    "parse_library_file",
    "read_head",
    "read_text",
]

LIBRARY_FORMATS = ["pubmed", "arxiv", "openalex", "s2", "arxiv-snapshot", "csljson", "bibtex", "ris"]
"""Reference-library formats, in the order they are tried (the most specific first)."""
FORMATS = ["profile", "listing", "daily", "workshop", "beir", "jsonl", *LIBRARY_FORMATS]
_LIBRARY_SNIFFERS = [
    ("pubmed", pubmed.sniff),
    ("arxiv", arxiv.sniff),
    ("openalex", openalex.sniff),
    ("s2", s2.sniff),
    ("arxiv-snapshot", arxiv.sniff_snapshot),
    ("csljson", csljson.sniff),
    ("bibtex", bibtex.sniff),
    ("ris", ris.sniff),
]
_PAGE_SNIFFERS = [
    ("workshop", workshop.sniff),
    ("daily", daily.sniff),
    ("listing", listing.sniff),
    ("profile", profile.sniff),
]
_EXPECTED = (
    "expected one of: an author-profile page, a paper listing, a Daily Papers page, a workshop page "
    '(see docs/corpus.md), a BEIR corpus.jsonl, JSON lines of papers with a "title", BibTeX, RIS, '
    "CSL-JSON, an arXiv Atom feed or metadata snapshot, OpenAlex works, Semantic Scholar papers or "
    "PubMed XML"
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


def detect_library_format(head: str) -> str | None:
    """Name of the reference-library format of a file that starts with ``head``, or None."""
    return next((name for name, sniff in _LIBRARY_SNIFFERS if sniff(head)), None)


def detect_format(text: str) -> str | None:
    """Name of the format of `text` (one of `FORMATS`), or None when it is none of them."""
    library = detect_library_format(text[:65536])
    if library:
        return library
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
    its visible files, sorted by name; a glob (``exports/*.bib``, ``lib/**/*.ris``) → the files it
    matches, sorted. A missing path, or a glob that matches nothing, raises `SourceError`."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and any(c in str(raw) for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            if not matches:
                raise SourceError(path, "the pattern matches no file; check it (quote it in the shell).")
            files.extend(expand_paths(m for m in matches if m.is_file() or m.is_dir()))
        elif path.is_dir():
            corpus = path / "corpus.jsonl"
            if corpus.is_file():
                files.append(corpus)
            else:
                files.extend(p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(
                path, "no such file or folder; pass seed pages, a BEIR folder, a .jsonl file or a "
                "reference-library export (.bib, .ris, CSL-JSON, arXiv, OpenAlex, Semantic Scholar, PubMed)."
            )
    return list(dict.fromkeys(files))


def parse_library_file(path: Path, fmt: str, head: str) -> ParseResult:
    """Read one reference-library file (``fmt`` from `detect_library_format`), record by record."""
    if fmt in ("csljson", "openalex", "s2"):
        module = {"csljson": csljson, "openalex": openalex, "s2": s2}[fmt]
        result: ParseResult = module.parse(path, head)
        return result
    if fmt == "arxiv-snapshot":
        return arxiv.parse_snapshot(path)
    return {"bibtex": bibtex, "ris": ris, "arxiv": arxiv, "pubmed": pubmed}[fmt].parse(path)


def parse_file(path: Path, known_names: Iterable[str] = (), text: str | None = None) -> ParseResult:
    """Read and parse one file. Raises `SourceError` (empty, binary, not UTF-8, unknown format)."""
    if text is None:
        head = read_head(path)
        fmt = detect_library_format(head) if head.strip() else None
        if fmt:
            return parse_library_file(path, fmt, head)
        text = read_text(path)
    fmt = detect_format(text)
    if fmt in LIBRARY_FORMATS:
        return parse_library_file(path, fmt, text[:65536])
    if fmt is None:
        first = next((line.strip() for line in text.split("\n") if line.strip()), "")
        raise UnknownFormatError(path, f"unknown format (starts with {first[:50]!r}); {_EXPECTED}.", line=1)
    if fmt == "listing":
        return listing.parse(text, path, known_names=known_names)
    module = {"profile": profile, "daily": daily, "workshop": workshop, "beir": beir, "jsonl": jsonl}[fmt]
    result: ParseResult = module.parse(text, path)
    return result
