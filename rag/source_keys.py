"""What a new source file's papers could merge with, kept so that adding a file need not read the old ones.

The corpus loader (:mod:`rag.corpus`, :mod:`rag.identity`) makes one paper of entries that share an id, a
DOI, an arXiv id, a PubMed id, or a normalised title + first author's family name, and renames a paper
whose id another paper already uses. After a complete run, :data:`KEYS_FILE` beside the manifest holds a
64-bit hash of every such key of every entry it read and of every paper id it kept, sorted. When none of
a new file's keys is among them, the full loader would keep the new papers apart from the old ones, with
the same ids and after them in the same order (:mod:`rag.index_add`). A shared key — or a hash collision,
one in ~10^12 at a million papers — only sends the run down the full path, which reads every file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from rag.identity import family, ids_of, title_key
from rag.types import Paper

KEYS_FILE = "source_keys.npy"


def _keys(entry: Paper) -> Iterator[str]:
    yield "id:" + entry.id
    for kind, value in ids_of(entry).items():
        yield f"{kind}:{value}"
    if entry.authors:
        yield f"title:{title_key(entry.title)}|{family(entry.authors[0])}"


def key_hashes(entries: Iterable[Paper], papers: Iterable[Paper] = ()) -> np.ndarray:
    """The sorted, unique hashes of the entries' keys and the papers' ids (uint64)."""
    texts = [k for e in entries for k in _keys(e)] + ["id:" + p.id for p in papers]
    out = np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little") for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )
    return np.unique(out)


def digest(keys: np.ndarray) -> str:
    """What the manifest records of the keys file, to trust it."""
    return f"{len(keys)}:{hashlib.sha256(keys.tobytes()).hexdigest()[:20]}"


def save(folder: Path, keys: np.ndarray) -> str:
    """Write the keys beside the manifest (through a rename); returns their :func:`digest`."""
    tmp = folder / f"{KEYS_FILE}.{os.getpid()}.tmp"
    with tmp.open("wb") as fh:
        np.save(fh, keys)
    os.replace(tmp, folder / KEYS_FILE)
    return digest(keys)


def load(folder: Path, recorded: object) -> np.ndarray | None:
    """The saved keys when they are what the manifest recorded (``recorded``: their digest), else None."""
    try:
        keys = np.load(folder / KEYS_FILE, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, not an array, empty
        return None
    if keys.dtype != np.uint64 or keys.ndim != 1 or digest(keys) != recorded:
        return None
    return keys


def shared(old: np.ndarray, new: np.ndarray) -> int:
    """How many of the ``new`` keys are among the ``old`` ones (both sorted and unique)."""
    return int(np.isin(new, old, assume_unique=True).sum())
