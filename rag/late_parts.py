"""``late.parts/``: the word-piece vectors of the chunks one ``rag index`` run embeds, written batch by batch
(so a killed run keeps what it embedded); :func:`rag.late.consolidate` folds them into ``late/``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.late import META_FILE, PART_IDS_FILE, PARTS_DIR, TokenEncoder, _kept, skip_masks
from rag.late_codec import quantise


class PartWriter:
    """Token vectors of the chunks embedded in one ``rag index`` run, written batch by batch into
    ``late.parts/`` (so a killed run keeps what it embedded; the next consolidation uses it)."""

    def __init__(self, folder: Path, encoder: TokenEncoder) -> None:
        self.dir = folder / PARTS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        vocab, special = encoder.token_table()
        self.skip = skip_masks(vocab, special)[1]

    def add(
        self, chunk_ids: Sequence[str], hashes: Sequence[str], tokens: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> None:
        rows: list[np.ndarray] = []
        bounds = [0]
        pieces: list[np.ndarray] = []  # every word-piece id of each chunk: the merge and the IDF need them
        for ids, vecs in tokens:
            kept = _kept(ids, vecs, self.skip)
            rows.append(kept)
            bounds.append(bounds[-1] + len(kept))
            pieces.append(np.asarray(ids, dtype=np.int32))
        dim = next((r.shape[1] for r in rows if r.ndim == 2 and r.shape[0]), 0)
        if bounds[-1]:
            q, scale = quantise(np.concatenate([r for r in rows if len(r)]))
        else:
            q, scale = np.zeros((0, dim), np.int8), np.zeros(0, np.float32)
        name = self.dir / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # names sort by age
        tmp = name.with_name(name.name + ".tmp")
        tmp.mkdir()
        np.save(tmp / "vectors.npy", q)
        np.save(tmp / "scales.npy", scale)
        np.save(tmp / PART_IDS_FILE, np.concatenate(pieces) if pieces else np.zeros(0, np.int32))
        id_bounds = np.cumsum([0, *(len(p) for p in pieces)]).tolist()
        meta = {"chunk_ids": list(chunk_ids), "hashes": list(hashes), "bounds": bounds}
        meta["id_bounds"] = id_bounds
        (tmp / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        tmp.rename(name)
