"""What the reference-library readers share (BibTeX, RIS, CSL-JSON, arXiv, OpenAlex, Semantic Scholar,
PubMed): reading a file as a stream (plain or gzip), normalised identifiers, names and dates, and one
`Paper` per record.

Readers are generators of `Paper` or `EntryParseError`: a file of any size is read record by record and
`collect` gathers them into a `ParseResult`. Ids are ``paper_id(title)`` — the same rule as the seed pages,
so a paper merges with its seed-page entry by title, and with the same paper from another export by
DOI / arXiv id / PMID (rag.corpus, "Identity").
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from isal import igzip_threaded
from isal.igzip_lib import IsalError
from pydantic import ValidationError

from rag.errors import EmptySourceError, EncodingError, EntryParseError, SourceError
from rag.sources.base import ParseResult, squash
from rag.types import Paper, paper_id

Record = Paper | SourceError
HEAD_BYTES = 64 * 1024

_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_ARXIV_PREFIX = re.compile(r"^(?:https?://(?:export\.)?arxiv\.org/(?:abs|pdf)/|arxiv:)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_VERSION = re.compile(r"v\d+$")
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
DAMAGED: tuple[type[Exception], ...] = (
    EOFError, zlib.error, cast(type[Exception], IsalError), gzip.BadGzipFile
)
"""What reading a gzip stream that is cut short or corrupt raises (the stdlib's and ISA-L's errors)."""


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_binary(path: Path, *, threaded: bool = True) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip (by its magic number, not its name). gzip is inflated by
    ISA-L (python-isal) in a thread of its own, beside the parser that reads the lines: on two cores a
    gigabyte snapshot's gzip costs little over the plain file (docs/corpus.md). ``threaded=False``: the
    stdlib's reader, for a short read (the thread inflates a whole block ahead)."""
    if is_gzip(path):
        if threaded:
            return cast(IO[bytes], igzip_threaded.open(path, "rb", threads=1))
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def binary_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` for each line of the file (gzip or plain), streamed in constant memory, a
    leading UTF-8 byte-order mark dropped. A gzip file cut short or damaged part-way gives every line before
    the damage that the stdlib's reader can give, then raises one of `DAMAGED`: ISA-L's threaded reader
    drops the whole block that holds the damage, so that (rare) error path reads the file again with the
    stdlib's reader, which stops closer to it, and gives the lines not given yet."""
    done = 0
    for threaded in (True, False):
        try:
            with open_binary(path, threaded=threaded) as fh:
                for lineno, raw in enumerate(fh, start=1):
                    if lineno > done:
                        done = lineno
                        yield lineno, raw[3:] if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else raw
            return
        except DAMAGED:
            if not threaded:
                raise


def _damaged(path: Path, exc: Exception) -> SourceError:
    return SourceError(path, f"is a damaged gzip file ({exc}); download or export it again.")


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes (after gunzip) as text, for format detection; undecodable bytes become
    U+FFFD (a Latin-1 .bib is still recognised). Raises `SourceError` when unreadable."""
    try:
        with open_binary(path, threaded=False) as fh:
            data = fh.read(size)
    except DAMAGED as exc:
        raise _damaged(path, exc) from exc
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc}); check the path and permissions.") from exc
    text = data.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def text_lines(path: Path) -> Iterator[str]:
    """The file's lines as UTF-8 text (gzip or plain), streamed; a byte that is not UTF-8 raises
    `EncodingError` with its line."""
    for lineno, raw in binary_lines(path):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(
                path, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8.", lineno
            ) from exc


def read_document(path: Path) -> str:
    """The whole file as UTF-8 text (gzip or plain), for formats that are one document (a JSON array)."""
    try:
        with open_binary(path) as fh:
            data = fh.read()
    except DAMAGED as exc:
        raise _damaged(path, exc) from exc
    if not data.strip():
        raise EmptySourceError(path, "the file is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EncodingError(path, "not valid UTF-8; re-save the file as UTF-8.", line) from exc
    return text[1:] if text.startswith("\ufeff") else text


def json_records(path: Path, head: str, what: str, unwrap: tuple[str, ...] = ()) -> Iterator[tuple[int, Any]]:
    """(position, object) for each record of a JSON file: JSON lines (position = line, streamed), or one
    document that is an array, an object holding the array under one of ``unwrap`` keys (an API page), or
    a single record (position = 1-based index). Lines that are not JSON are yielded as `EntryParseError`."""
    first = next((ln for ln in head.split("\n") if ln.strip()), "")
    try:
        one_line = isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        one_line = False
    if one_line:
        for lineno, line in enumerate(text_lines(path), start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, EntryParseError(path, f"not valid JSON ({exc.msg}); expected {what}.", lineno)
        return
    try:
        doc = json.loads(read_document(path))
    except json.JSONDecodeError as exc:
        raise EntryParseError(path, f"not valid JSON ({exc.msg}); expected {what}.", exc.lineno) from exc
    if isinstance(doc, dict):
        key = next((k for k in unwrap if isinstance(doc.get(k), list)), None)
        doc = doc[key] if key else [doc]
    if not isinstance(doc, list):
        raise EntryParseError(path, f"expected a JSON array of {what}s, found {type(doc).__name__}.", 1)
    yield from enumerate(doc, start=1)


def json_papers(
    path: Path,
    head: str,
    what: str,
    build: Callable[[Path, int, Any], Record],
    *,
    unwrap: tuple[str, ...] = (),
    kind: str = "record",
) -> Iterator[Record]:
    """``build(path, position, object)`` for each record of a JSON file (:func:`json_records`), each one
    :func:`guarded`; lines that are not JSON come through as their `EntryParseError`."""
    for pos, obj in json_records(path, head, what, unwrap=unwrap):
        if isinstance(obj, EntryParseError):
            yield obj
        else:
            yield guarded(path, pos, kind, partial(build, path, pos, obj))


def collect(path: Path, fmt: str, records: Iterable[Record]) -> ParseResult:
    """Gather a reader's records. A fatal error part-way (broken XML) keeps what came before it, reported
    as one more problem; before any record it is the file's error."""
    result = ParseResult(path=path, format=fmt)
    try:
        for rec in records:
            if isinstance(rec, Paper):
                result.papers.append(rec)
            else:
                result.problems.append(rec)
    except DAMAGED as exc:  # a gzip file cut short (an interrupted download) or corrupt part-way
        n = len(result.papers) + len(result.problems)
        damaged = SourceError(
            path,
            f"the gzip data is cut short or damaged after record {n} ({exc}); download or export the file "
            f"again (the {n} records before it are read).",
        )
        if not n:
            raise damaged from exc
        result.problems.append(damaged)
    except SourceError as exc:
        if not result.papers and not result.problems:
            raise
        result.problems.append(exc)
    return result


def norm_doi(raw: Any) -> str | None:
    """``https://doi.org/10.1/ABC`` → ``10.1/abc`` (DOIs are case-insensitive); None when not a DOI."""
    if not isinstance(raw, str):
        return None
    doi = _DOI_PREFIX.sub("", raw.strip()).strip().lower()
    return doi if doi.startswith("10.") and "/" in doi else None


def norm_arxiv(raw: Any) -> str | None:
    """``arXiv:2301.01234v2`` / ``https://arxiv.org/abs/hep-th/9901001v1`` → ``2301.01234`` /
    ``hep-th/9901001``; an arXiv DOI (10.48550/arXiv.…) gives its id too."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    if _ARXIV_ID.fullmatch(text):  # the common case: a bare id (the snapshot's "id")
        return text
    m = _ARXIV_DOI.match(_DOI_PREFIX.sub("", text))
    if m:
        text = m.group(1)
    text = _ARXIV_PREFIX.sub("", text).strip().removesuffix(".pdf")
    text = _VERSION.sub("", text)
    return text if _ARXIV_ID.fullmatch(text) else None


def person(raw: str) -> str:
    """``"Müller, Jörg"`` → ``"Jörg Müller"``; ``"Ford, Jr., Henry"`` → ``"Henry Ford Jr."``; a name
    without a comma is kept as written (whitespace collapsed)."""
    parts = [squash(p) for p in raw.split(",")]
    if len(parts) == 2 and all(parts):
        return f"{parts[1]} {parts[0]}"
    if len(parts) == 3 and all(parts):
        return f"{parts[2]} {parts[0]} {parts[1]}"
    return squash(raw)


def year_of(raw: Any) -> int | None:
    if isinstance(raw, int):
        return raw if 1500 <= raw <= 2100 else None
    m = _YEAR.search(str(raw or ""))
    return int(m.group(1)) if m else None


def iso_date(year: Any, month: Any = None, day: Any = None) -> str | None:
    """``2023-02-14`` / ``2023-02`` / ``2023`` from parts that may be missing; None without a year."""
    y = year_of(year)
    if y is None:
        return None
    try:
        m = int(month) if month not in (None, "") else None
        d = int(day) if day not in (None, "") else None
    except (TypeError, ValueError):
        m = d = None
    if m is None or not 1 <= m <= 12:
        return f"{y:04d}"
    if d is None or not 1 <= d <= 31:
        return f"{y:04d}-{m:02d}"
    return f"{y:04d}-{m:02d}-{d:02d}"


def paper(path: Path, position: int, *, title: str, **fields: Any) -> Paper:
    """A `Paper` from one record: id from the title, source and position from the file. Empty values are
    dropped; ``date`` sets ``year`` when no year is given."""
    title = " ".join(title.split())
    values = {k: v for k, v in fields.items() if v is not None and v != "" and v != [] and v != {}}
    if isinstance(values.get("abstract"), str):
        values["abstract"] = values["abstract"].strip()
    if values.get("year") is None and values.get("date"):
        values["year"] = year_of(values["date"])
    return Paper(
        id=paper_id(title), title=title, source=path.name, sources=[path.name], line=position, **values
    )


def missing_title(path: Path, position: int, what: str) -> EntryParseError:
    return EntryParseError(path, f"{what} has no title; expected a non-empty title.", position)


def guarded(path: Path, position: int, what: str, build: Callable[[], Record]) -> Record:
    """``build()``, or an `EntryParseError` naming the record when one of its values has an unexpected type
    (a list where a string belongs, …): one odd record never stops the file."""
    try:
        return build()
    except (ValidationError, TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            detail = f"field {'.'.join(str(x) for x in err['loc'])!r}: {err['msg']}"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return EntryParseError(
            path, f"{what} {position} has a value of an unexpected type ({detail}).", position
        )
