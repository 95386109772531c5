"""What ``rag index``'s fast path trusts, checked cheaply: a fingerprint of every file beside the collection
(``bm25/``, ``late/``, ``papers.jsonl``) recorded in ``manifest.json`` by the run that wrote them.

A fingerprint is each file's size and a SHA-256 of its bytes — all of them for files up to
:data:`FULL_HASH_BYTES`, the first and last MiB for larger ones (``late/vectors.npy`` grows with the corpus;
reading it whole on every no-op run would cost seconds per GB). A truncated, extended, rewritten or missing
file changes it, so the next ``rag index`` rebuilds that part instead of printing ``embedded 0`` and
trusting a damaged folder. An in-place change in the middle of a file over 64 MiB that keeps its size is the
one damage this does not see; loading such a file in search still fails with an error naming it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

FULL_HASH_BYTES = 64 << 20
EDGE_BYTES = 1 << 20


def file_digest(path: Path) -> list[int | str]:
    """``[size, sha256 hex]`` of one file (see the module doc for files over :data:`FULL_HASH_BYTES`)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(fh.read(EDGE_BYTES))
            fh.seek(size - EDGE_BYTES)
            digest.update(fh.read(EDGE_BYTES))
    return [size, digest.hexdigest()[:32]]


def fingerprint(path: Path) -> dict[str, list[int | str]]:
    """Relative file name → ``[size, digest]`` for a file, or for every file under a folder; {} if absent."""
    if path.is_file():
        return {path.name: file_digest(path)}
    if not path.is_dir():
        return {}
    return {
        str(f.relative_to(path)): file_digest(f) for f in sorted(path.rglob("*")) if f.is_file()
    }


def damaged(path: Path, recorded: object) -> str | None:
    """Why ``path`` no longer matches the fingerprint recorded for it (None when it does, or when nothing was
    recorded: an index written before fingerprints is trusted as before). Files it did not record are not
    looked at."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    now = fingerprint(path)
    for name, want in recorded.items():
        got = now.get(name)
        where = path if name == path.name and not path.is_dir() else path / name
        if got is None:
            return f"{where} is missing"
        if list(got) != list(want):
            return f"{where} has changed since `rag index` wrote it ({got[0]} bytes, recorded {want[0]})"
    return None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a manifest, a snapshot record), or ``{}`` when the file is missing,
    unreadable, damaged or not an object: the caller then treats it as never written."""
    try:
        data = orjson.loads(path.read_bytes())  # the manifest: ~0.15 KB per paper of JSON
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
