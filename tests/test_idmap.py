"""rag.idmap.IdMap: paper ids ↔ rows without a Python object per paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.idmap import IdMap

IDS = ["p10", "p2", "ä-ü/ß", "p1", "日本語", "", "p100"]


def test_rows_and_ids_go_both_ways() -> None:
    m = IdMap(IDS)
    assert len(m) == len(IDS) and list(m) == IDS
    assert [m.row(pid) for pid in IDS] == list(range(len(IDS)))
    assert [m.id(i) for i in range(len(IDS))] == IDS == [m[i] for i in range(len(IDS))]
    assert m.ids_of([4, 0, 2]) == ["日本語", "p10", "ä-ü/ß"]
    assert m.rows(["p1", "p10"]).tolist() == [3, 0]


def test_unknown_ids_are_skipped_or_minus_one() -> None:
    m = IdMap(IDS)
    for unknown in ("p3", "p1000000000000", "p", "日本", "ä"):
        assert m.row(unknown) is None and unknown not in m
    assert m.rows(["nope", "p2", "p20"]).tolist() == [1]
    assert m.lookup(["nope", "p2", "p1000000000000", "日本語"]).tolist() == [-1, 1, -1, 4]
    assert 3 not in m  # not a str
    mask = m.mask(["p2", "nope", "日本語"])
    assert mask is not None and np.flatnonzero(mask).tolist() == [1, 4]
    assert m.mask(None) is None


def test_empty_map() -> None:
    m = IdMap([])
    assert len(m) == 0 and list(m) == [] and m.row("a") is None and "a" not in m
    assert m.rows(["a"]).tolist() == [] and m.lookup(["a", "b"]).tolist() == [-1, -1]
    mask = m.mask(["a"])
    assert mask is not None and mask.shape == (0,)
    again = IdMap.from_arrays(*m.arrays())
    assert len(again) == 0 and again.row("a") is None
    assert len(IdMap.from_encoded(m.encoded())) == 0


def test_round_trip_through_saved_arrays(tmp_path: Path) -> None:
    m = IdMap(IDS)
    sorted_ids, order = m.arrays()
    np.save(tmp_path / "ids.npy", sorted_ids)
    np.save(tmp_path / "order.npy", order)
    back = IdMap.from_arrays(np.load(tmp_path / "ids.npy", mmap_mode="r"), np.load(tmp_path / "order.npy"))
    assert list(back) == IDS and [back.row(pid) for pid in IDS] == list(range(len(IDS)))
    assert back.lookup(["日本語", "x"]).tolist() == [4, -1]


def test_from_encoded_joins_maps_without_strings() -> None:
    a, b = IdMap(["x", "ä"]), IdMap(["a-much-longer-id", "b"])
    joined = IdMap.from_encoded(np.concatenate([a.encoded(), b.encoded()[[1, 0]]]))
    assert list(joined) == ["x", "ä", "b", "a-much-longer-id"]
    assert joined.row("a-much-longer-id") == 3 and joined.row("a") is None


def test_saved_arrays_of_the_wrong_kind_are_refused() -> None:
    sorted_ids, order = IdMap(["a", "b"]).arrays()
    for bad in [(order, order), (sorted_ids, order.astype(np.int64)), (sorted_ids, order[:1])]:
        with pytest.raises(ValueError, match="not a saved id map"):
            IdMap.from_arrays(*bad)
