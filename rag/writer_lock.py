"""One writer per data home: the lock ``rag index`` holds while it changes the index, and the folder swap that
lets searches in other processes keep reading the last complete index meanwhile.

The lock is ``<index_dir>/index.lock``, taken with filelock (``fcntl.flock`` on Unix): the operating system
releases it when the holder exits, however it exits (``kill -9`` included), so a stale lock never blocks the
next run. Who holds it (pid, host, start time) is written beside it in ``index.lock.json``, for the message
the next writer prints. A second ``rag index`` on the same home waits for the first to finish (saying so once)
or, with ``wait=False`` (``rag index --no-wait``), refuses at once with :class:`IndexBusyError`.

Homes on a shared Chroma server that share a corpus name also share its collection; this lock covers one
home, not the server (docs/index.md, "Concurrent writers").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import IndexBusyError
from rag.settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = "index.lock"
OWNER_FILE = "index.lock.json"


def _owner(index_dir: Path) -> str:
    """Who holds the lock, in words (from ``index.lock.json``; best effort)."""
    try:
        data = json.loads((index_dir / OWNER_FILE).read_text(encoding="utf-8"))
        return f"pid {data['pid']} on {data['host']}, started {data['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def writer_lock(settings: Settings, *, wait: bool = True) -> Iterator[None]:
    """Hold this home's writer lock for the block (see the module doc)."""
    index_dir = settings.index_dir
    fresh = not index_dir.exists()
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = _owner(index_dir)
        if not wait:
            raise IndexBusyError(
                f"Another `rag index` ({owner}) is writing the index in {index_dir}. Run this again when it "
                "has finished, or without --no-wait to wait for it; searches keep using the last complete "
                "index."
            ) from None
        log.warning(
            "another `rag index` (%s) is writing the index in %s: waiting for it to finish "
            "(Ctrl-C stops waiting; `rag index --no-wait` refuses instead)",
            owner,
            index_dir,
        )
        lock.acquire()
    try:
        owner_data = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (index_dir / OWNER_FILE).write_text(json.dumps(owner_data), encoding="utf-8")
        yield
    except BaseException:
        if fresh and {p.name for p in index_dir.iterdir()} <= {LOCK_FILE, OWNER_FILE}:
            shutil.rmtree(index_dir, ignore_errors=True)  # a failed first run leaves nothing behind
        raise
    finally:
        (index_dir / OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def swap_dir(new: Path, dest: Path) -> None:
    """Put the folder ``new`` in place of ``dest`` (two renames, then the old one is removed): a reader in
    another process finds ``dest`` missing for at most the instant between the renames (:func:`settled`
    waits that out), never half-written. A reader that has the old files open or mapped keeps them."""
    old = dest.with_name(f"{dest.name}.old-{uuid.uuid4().hex[:8]}")
    had = dest.exists()
    if had:
        dest.rename(old)
    new.rename(dest)
    if had:
        shutil.rmtree(old, ignore_errors=True)
    for stale in dest.parent.glob(f"{dest.name}.old-*"):  # left by a writer killed between the renames
        shutil.rmtree(stale, ignore_errors=True)


def settled(path: Path, tries: int = 20, pause: float = 0.01) -> bool:
    """Whether ``path`` exists, waiting briefly when a writer is between :func:`swap_dir`'s two renames."""
    for _ in range(tries):
        if path.exists():
            return True
        if not any(path.parent.glob(f"{path.name}.old-*")):
            return False
        time.sleep(pause)
    return path.exists()
