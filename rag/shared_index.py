"""One index shared through the Chroma server: the files beside a collection, published to the server.

With ``RAG_CHROMA_URL`` the vectors and chunk metadata live in the corpus's collection on the server (chunk
texts are re-made from ``papers.jsonl``); search also needs the files ``rag index`` writes beside it
(``papers.jsonl``, ``bm25/``, ``late/``'s word-piece vectors, ``manifest.json``). ``rag index`` publishes
those files to a companion collection on the same server (:func:`publish`); any home with the same
``RAG_CHROMA_URL`` and corpus name fetches them when it opens the index for searching, or at the start of its
own ``rag index`` (:func:`fetch`), so a fresh home searches — same hits as the home that indexed — without
embedding anything.

The companion collection (``<collection>.files``, see :func:`files_collection_name`) holds content-addressed
pieces of the files: each file is cut into pieces of :data:`PIECE_BYTES`; a piece's id is a hash of its bytes
and its bytes are stored base64-encoded in its metadata (Chroma stores records, not files; every record
carries a one-number placeholder vector). A ``head-<snapshot>`` record lists the files and their pieces;
the ``current`` record names the snapshot, and is written last, so a reader sees the previous snapshot or
the new one, never a half-published one. Pieces already on the server are not sent again, and pieces a home
already holds (same bytes at the same place in the same file) are not fetched again: a re-index that appends
papers resends the files' tails, not the whole files. Pieces no snapshot uses any more are deleted after the
new ``current``; a reader that loses one mid-fetch starts over from the new ``current``.

The format of the files is not this module's concern: whatever ``rag index`` writes beside the collection is
shared byte for byte, and checked against the piece hashes on arrival. ``shared.json`` beside the collection
records the snapshot the home's files are (fetched or published), which makes the check for a newer index one
small ``get`` (at most every :data:`CHECK_SECONDS` in a long-running process, :mod:`rag.retrieve`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.corpus_identity import (
    BM25_DIR,
    MANIFEST_FILE,
    PAPERS_FILE,
    record_identity,
    valid_collection_name,
    write_atomic,
)
from rag.errors import IndexBusyError, IndexMissingError
from rag.integrity import read_json_object
from rag.settings import Settings
from rag.writer_lock import swap_dir, writer_lock

log = logging.getLogger(__name__)

FORMAT = 1
LATE_DIR = "late"  # rag.late.LATE_DIR (not imported: numpy-free module)
DENSE_FILE = "dense.npz"  # rag.dense_projection.FILE, present when index.dense_dims is set
PARTS = (PAPERS_FILE, BM25_DIR, LATE_DIR, DENSE_FILE, MANIFEST_FILE)
"""What is shared, in the order it is put in place (the manifest last, as ``rag index`` writes it)."""
PIECE_BYTES = 4 << 20
"""Bytes of a file per piece (a record of the companion collection; about 5.6 MB of base64)."""
SNAPSHOT_FILE = "shared.json"
CURRENT_ID = "current"
CHECK_SECONDS = 10.0
"""A long-running process (``rag ui``) asks the server for a newer snapshot at most this often."""
_PLACEHOLDER = [1.0]  # Chroma stores a vector with every record; the pieces need none


@dataclass(frozen=True)
class Transfer:
    """What one :func:`publish` or :func:`fetch` moved."""

    snapshot: str
    files: int
    pieces: int
    bytes: int
    seconds: float


def files_collection_name(collection: str) -> str:
    """The companion collection of ``collection``: ``<collection>.files``, or, when that is longer than Chroma
    allows, ``rag-files-<24 hex of the name>``."""
    name = f"{collection}.files"
    if valid_collection_name(name):
        return name
    return f"rag-files-{hashlib.sha256(collection.encode('utf-8')).hexdigest()[:24]}"


def _files_collection(store: Any, *, create: bool) -> Any | None:
    from rag.store import RagEmbeddingFunction

    name = files_collection_name(store.collection_name)
    # Our own (lazy) embedding function, so Chroma never loads its downloading default; never called.
    ef = RagEmbeddingFunction(store.settings.index.embed_model, store.settings.index.embed_backend)
    with store._guard():
        if create:
            meta = {"rag_files_of": store.collection_name, "rag_files_format": FORMAT}
            return store.client.get_or_create_collection(name, embedding_function=ef, metadata=meta)
        try:
            return store.client.get_collection(name, embedding_function=ef)
        except Exception as exc:
            if type(exc).__name__ in ("NotFoundError", "InvalidCollectionException"):
                return None
            raise


def _local_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(path relative to ``folder``, path) of every shared file present, in :data:`PARTS` order."""
    for part in PARTS:
        path = folder / part
        if path.is_file():
            yield part, path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    yield str(f.relative_to(folder)), f


def _piece_id(block: bytes) -> str:
    return "piece-" + hashlib.sha256(block).hexdigest()[:40]


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from iter(lambda: fh.read(PIECE_BYTES), b"")


def _listing(folder: Path) -> dict[str, dict[str, Any]]:
    """Relative path → ``{"size", "pieces"}`` for the shared files in ``folder``."""
    return {
        rel: {"size": path.stat().st_size, "pieces": [_piece_id(b) for b in _blocks(path)]}
        for rel, path in _local_files(folder)
    }


def _snapshot_id(listing: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode("utf-8")).hexdigest()[:20]



def local_snapshot(folder: Path) -> str | None:
    """The snapshot this home's files are, as recorded in ``shared.json`` (None when unknown)."""
    value = read_json_object(folder / SNAPSHOT_FILE).get("snapshot")
    return value if isinstance(value, str) else None


def server_snapshot(store: Any, files: Any = None) -> str | None:
    """The snapshot the server's ``current`` record names (None when none was published)."""
    files = files if files is not None else _files_collection(store, create=False)
    if files is None:
        return None
    with store._guard():
        got = files.get(ids=[CURRENT_ID], include=["metadatas"])
    metas = got.get("metadatas") or []
    value = (metas[0] or {}).get("snapshot") if metas else None
    return value if isinstance(value, str) else None


def _head(store: Any, files: Any, snapshot: str) -> dict[str, Any] | None:
    with store._guard():
        got = files.get(ids=[f"head-{snapshot}"], include=["metadatas"])
    metas = got.get("metadatas") or []
    if not metas or not metas[0]:
        return None
    head = json.loads(str(metas[0].get("head", "{}")))
    return head if isinstance(head, dict) and head.get("format") == FORMAT else None


def _all_ids(store: Any, files: Any) -> list[str]:
    ids: list[str] = []
    page = 1000
    with store._guard():
        while True:
            got = files.get(include=[], limit=page, offset=len(ids))
            ids += got["ids"]
            if len(got["ids"]) < page:
                return ids


# ------------------------------------------------------------------------------------------ publishing
def publish(store: Any) -> Transfer | None:
    """Publish the files beside ``store``'s collection to its companion collection (see the module doc).
    Returns what was sent, or None when the server already has this snapshot. Called by ``rag index`` (under
    the home's writer lock) after it wrote the manifest."""
    folder = store.folder
    started = time.perf_counter()
    files: Any = _files_collection(store, create=True)  # never None when created
    on_server = server_snapshot(store, files)
    state = _state(folder)
    recorded = read_json_object(folder / SNAPSHOT_FILE)
    if on_server is not None and recorded.get("snapshot") == on_server and recorded.get("state") == state:
        return None  # the files are as this home published or fetched them (fingerprints, not a full read)
    listing = _listing(folder)
    if MANIFEST_FILE not in listing:
        return None
    snapshot = _snapshot_id(listing)
    if on_server == snapshot:
        _record(folder, snapshot, store)
        return None
    where: dict[str, tuple[Path, int]] = {}
    for rel, entry in listing.items():
        for i, pid in enumerate(entry["pieces"]):
            where.setdefault(pid, (folder / rel, i))
    with store._guard():
        have = set()
        wanted = list(where)
        for start in range(0, len(wanted), 1000):
            have |= set(files.get(ids=wanted[start : start + 1000], include=[])["ids"])
    sent = 0
    todo = [pid for pid in where if pid not in have]
    for pid in todo:
        path, i = where[pid]
        with path.open("rb") as fh:
            fh.seek(i * PIECE_BYTES)
            block = fh.read(PIECE_BYTES)
        if _piece_id(block) != pid:  # changed under us (only this home's writer could, and it holds the lock)
            raise IndexMissingError(f"{path} changed while it was being published: run `rag index` again.")
        with store._guard():
            files.upsert(
                ids=[pid],
                embeddings=[_PLACEHOLDER],
                metadatas=[{"data": base64.b64encode(block).decode("ascii")}],
            )
        sent += len(block)
    manifest = read_json_object(folder / MANIFEST_FILE)
    head = {
        "format": FORMAT,
        "snapshot": snapshot,
        "collection": store.collection_name,
        "papers": manifest.get("papers"),
        "chunks": manifest.get("chunks"),
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": listing,
    }
    with store._guard():
        head_id = f"head-{snapshot}"
        files.upsert(ids=[head_id], embeddings=[_PLACEHOLDER], metadatas=[{"head": json.dumps(head)}])
        files.upsert(ids=[CURRENT_ID], embeddings=[_PLACEHOLDER], metadatas=[{"snapshot": snapshot}])
        stale = [i for i in _all_ids(store, files) if i not in where and i not in (CURRENT_ID, head_id)]
        for start in range(0, len(stale), 1000):
            files.delete(ids=stale[start : start + 1000])
    _record(folder, snapshot, store)
    done = Transfer(snapshot, len(listing), len(todo), sent, round(time.perf_counter() - started, 3))
    log.info(
        "published the index files of %s to %s: %d file(s), %d new piece(s), %d bytes",
        store.collection_name,
        store.where,
        done.files,
        done.pieces,
        done.bytes,
    )
    return done


def _state(folder: Path) -> Any:
    """The fingerprints ``rag index`` recorded for the files (rag.integrity) and the manifest's own: equal
    states mean the files are unchanged, without reading them whole."""
    from rag.integrity import fingerprint

    return [read_json_object(folder / MANIFEST_FILE).get("files"), fingerprint(folder / MANIFEST_FILE)]


def _record(folder: Path, snapshot: str, store: Any) -> None:
    data = {
        "snapshot": snapshot,
        "collection": store.collection_name,
        "chroma_url": store.url,
        "state": json.loads(json.dumps(_state(folder))),
    }
    if read_json_object(folder / SNAPSHOT_FILE) != data:
        write_atomic(folder / SNAPSHOT_FILE, json.dumps(data) + "\n")


# -------------------------------------------------------------------------------------------- fetching
class _Changed(Exception):
    """A piece went missing or arrived damaged: the server moved to a newer snapshot mid-fetch."""


def fetch(store: Any, *, force: bool = False) -> Transfer | None:
    """Bring the files beside ``store``'s collection up to the server's current snapshot (see the module
    doc); None when the home already has it (unless ``force``: a file of it is damaged) or the server has
    none. The caller holds the home's writer lock (``rag index``, or :func:`sync`). Embeds nothing."""
    files = _files_collection(store, create=False)
    for _attempt in range(3):
        snapshot = server_snapshot(store, files)
        have = snapshot == local_snapshot(store.folder) and (store.folder / MANIFEST_FILE).is_file()
        if snapshot is None or (have and not force):
            return None
        head = _head(store, files, snapshot)
        if head is None:
            continue  # replaced between the two reads
        try:
            return _fetch(store, files, head)
        except _Changed as exc:
            log.info("the shared index changed while it was fetched (%s): fetching the new one", exc)
    raise IndexMissingError(
        f"The index files of {store.collection_name} on {store.where} kept changing while they were fetched "
        "(another home is indexing this corpus): try again when it has finished."
    )


def _fetch(store: Any, files: Any, head: dict[str, Any]) -> Transfer:
    folder: Path = store.folder
    started = time.perf_counter()
    tmp = folder.with_name(folder.name + ".fetch")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    got_bytes = got_pieces = 0
    try:
        for rel, entry in head["files"].items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            have = folder / rel
            with target.open("wb") as out:
                for i, pid in enumerate(entry["pieces"]):
                    block = _local_piece(have, i, pid)
                    if block is None:
                        block = _download(store, files, pid)
                        got_bytes += len(block)
                        got_pieces += 1
                    out.write(block)
            if target.stat().st_size != entry["size"]:
                raise _Changed(f"{rel} has {target.stat().st_size} bytes, the listing says {entry['size']}")
        folder.mkdir(parents=True, exist_ok=True)
        for part in PARTS:  # the manifest last: a reader trusts the folder once it is there
            src = tmp / part
            if src.is_dir():
                swap_dir(src, folder / part)
            elif src.is_file():
                os.replace(src, folder / part)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _record(folder, head["snapshot"], store)
    record_identity(store.settings)
    store.mark_current({"papers": head.get("papers"), "chunks": head.get("chunks")})
    done = Transfer(
        head["snapshot"], len(head["files"]), got_pieces, got_bytes, round(time.perf_counter() - started, 3)
    )
    log.warning(
        "fetched the index files of corpus %r from %s (%d file(s), %.1f MB, %.1f s; nothing embedded)",
        store.corpus,
        store.where,
        done.files,
        done.bytes / 1e6,
        done.seconds,
    )
    return done


def _local_piece(path: Path, i: int, pid: str) -> bytes | None:
    """Piece ``i`` of a file this home already has, when its bytes are the wanted piece."""
    try:
        with path.open("rb") as fh:
            fh.seek(i * PIECE_BYTES)
            block = fh.read(PIECE_BYTES)
    except OSError:
        return None
    return block if block and _piece_id(block) == pid else None


def _download(store: Any, files: Any, pid: str) -> bytes:
    with store._guard():
        got = files.get(ids=[pid], include=["metadatas"])
    metas = got.get("metadatas") or []
    if not metas or not metas[0] or "data" not in metas[0]:
        raise _Changed(f"piece {pid} is gone")
    block = base64.b64decode(str(metas[0]["data"]))
    if _piece_id(block) != pid:
        raise _Changed(f"piece {pid} arrived damaged")
    return block


# --------------------------------------------------------------------------------------------- readers
def sync(settings: Settings, store: Any = None) -> Transfer | None:
    """For searching with ``RAG_CHROMA_URL``: fetch the server's newer index files into this home, unless a
    ``rag index`` of this home is running (its result is published when it finishes; searches meanwhile use
    the last complete local files). Raises what :meth:`rag.store.Store.open` raises when the server or the
    collection is not there."""
    from rag.store import Store

    if store is None:
        store = Store.open(settings, require_current=False)
    try:
        with writer_lock(settings, wait=False):
            return fetch(store)
    except IndexBusyError:
        log.info("`rag index` is running in %s: searching the last complete local index", settings.home)
        return None
