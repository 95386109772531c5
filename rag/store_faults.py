"""Why Chroma could not be used: the errors ``rag.store`` raises, the check of ``RAG_CHROMA_URL``, and the
checks on the embedded database that tell a damaged or foreign file from a healthy database that is merely
busy. No chromadb here.

Only a path shown not to be a Chroma database (a file where the folder should be, a ``chroma.sqlite3`` that
is not SQLite or lacks Chroma's tables) gives :class:`StoreCorruptError`; any other failure says what failed
and never advises removing a database that may be healthy.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

from rag.errors import ConfigError, IndexError_, IndexMissingError, StoreCorruptError, StoreUnavailableError
from rag.settings import Settings


def unreachable(settings: Settings, exc: Exception) -> StoreUnavailableError:
    """The error for a Chroma server that does not answer."""
    return StoreUnavailableError(
        f"Cannot reach the Chroma server at {settings.chroma_url} ({exc}). Start it "
        "(`chroma run --path DIR --port N`) or unset RAG_CHROMA_URL to use embedded Chroma."
    )


def parse_url(url: str) -> tuple[str, int, bool]:
    """``RAG_CHROMA_URL`` as (host, port, ssl), or :class:`ConfigError` when it is not an http(s) URL."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"RAG_CHROMA_URL={url!r} is not an http://host:port URL.")
    ssl = parsed.scheme == "https"
    try:
        port = parsed.port or (443 if ssl else 8000)
    except ValueError as exc:
        raise ConfigError(f"RAG_CHROMA_URL={url!r} has an invalid port.") from exc
    return parsed.hostname, port, ssl


def store_fault(settings: Settings, exc: Exception, *, broken: bool = False) -> IndexError_:
    """The error for a Chroma failure. In embedded mode only ``broken`` (what is at the path is shown
    not to be a Chroma database) gives :class:`StoreCorruptError`; any other failure (a lock, a busy
    writer, a bug) says what failed and never advises removing a database that may be healthy."""
    if settings.chroma_url:
        text = str(exc).lower()
        if isinstance(exc, (ConnectionError, OSError)) or "connect" in text or "timed out" in text:
            return unreachable(settings, exc)
        return IndexError_(f"The Chroma server at {settings.chroma_url} failed: {exc}")
    path = settings.index_dir / "chroma"
    if broken:
        return StoreCorruptError(
            f"{path} is not a Chroma database ({exc}). Move it away (it may be something else's data), "
            "then run `rag index` to build the index anew."
        )
    return IndexError_(
        f"Embedded Chroma in {path} failed ({type(exc).__name__}: {exc}). This does not show that the "
        "database is damaged: if another process (a `rag index`, a `rag ui`) is writing to this home, "
        "let it finish and retry."
    )


def check_embedded(settings: Settings, path: Path, *, create: bool) -> None:
    """Before Chroma opens ``path``: raise :class:`StoreCorruptError` when what is there is not a Chroma
    database, and :class:`IndexMissingError` when reading (``create=False``) a home never indexed."""
    if path.exists() and not path.is_dir():
        raise store_fault(settings, NotADirectoryError(f"{path} is a file"), broken=True)
    if not create and not path.is_dir():
        raise IndexMissingError(f"Nothing is indexed in {settings.index_dir}: run `rag index` first.")
    sqlite = path / "chroma.sqlite3"
    if sqlite.is_file() and sqlite.stat().st_size and not _is_sqlite(sqlite):
        raise store_fault(settings, ValueError(f"{sqlite} is not an SQLite database"), broken=True)
    if sqlite.is_file() and sqlite.stat().st_size and _foreign_tables(sqlite):
        raise store_fault(
            settings, ValueError(f"{sqlite} is an SQLite database without Chroma's tables"), broken=True
        )


def _foreign_tables(path: Path) -> bool:
    """An SQLite file that has tables but not Chroma's (``migrations``, ``collections``)."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            names = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.Error:
        return False  # locked or unreadable: let Chroma say what is wrong
    return bool(names) and not {"migrations", "collections"} <= names


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
