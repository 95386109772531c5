"""bench/scale.py at a tiny size (stand-in embedder), so the scale bench cannot rot; its corpus builder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, SCIFACT

needs_scifact = pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason="SciFact not available")
sys.path.insert(0, str(PROJECT_ROOT / "bench"))


@needs_scifact
def test_synthetic_corpus_is_deterministic_distinct_and_readable(tmp_path: Path) -> None:
    from scale_corpus import load_pools, write_corpus

    from rag.corpus import load_corpus

    pools = load_pools(SCIFACT / "corpus.jsonl")
    small = write_corpus(tmp_path / "a.jsonl", 40, pools, seed=5).read_text(encoding="utf-8").splitlines()
    large = write_corpus(tmp_path / "b.jsonl", 80, pools, seed=5).read_text(encoding="utf-8").splitlines()
    other = write_corpus(tmp_path / "c.jsonl", 40, pools, seed=6).read_text(encoding="utf-8").splitlines()
    assert large[:40] == small  # paper i depends only on (seed, i)
    assert other != small
    records = [json.loads(line) for line in large]
    assert len({r["title"].lower() for r in records}) == 80
    assert len({r["abstract"] for r in records}) == 80
    sentences = set(pools.sentences)
    assert all(r["abstract"].startswith(tuple(sentences)) for r in records[:10])  # made of SciFact sentences
    papers = load_corpus([tmp_path / "b.jsonl"])  # the product reads it as it is
    assert [p.id for p in papers] == [r["id"] for r in records]
    assert papers[3].authors == records[3]["authors"] and papers[3].abstract == records[3]["abstract"]


@needs_scifact
@pytest.mark.parametrize("dims", [None, 32])
def test_scale_bench_runs_at_a_tiny_size(tmp_path: Path, dims: int | None) -> None:
    out = tmp_path / "scale.json"
    cmd = [sys.executable, str(PROJECT_ROOT / "bench" / "scale.py"), "--sizes", "200", "--extra", "50",
           "--queries", "4", "--work", str(tmp_path), "--out", str(out)]
    cmd += ["--dense-dims", str(dims)] if dims else []
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = json.loads(out.read_text(encoding="utf-8"))["runs"]
    assert run["dense_dims"] == dims
    index, noop, add, alone = run["index"], run["noop"], run["add"], run["alone"]
    assert (index["papers"], index["unchanged"]) == (200, 0)
    assert index["embedded"] == index["chunks"] >= 200
    assert 0 < index["encoder_s"] < index["wall_s"] and index["steps_s"]["chroma upsert"] > 0
    assert (noop["embedded"], noop["unchanged"]) == (0, 200)
    assert (run["noop_again"]["embedded"], run["noop_again"]["unchanged"]) == (0, 200)
    assert (add["papers"], add["unchanged"], alone["papers"]) == (250, 200, 50)
    assert add["embedded"] == alone["embedded"] == alone["chunks"] > 0  # only the new papers were embedded
    disk = run["disk"]
    assert all(disk[part] > 0 for part in ("chroma", "bm25", "late", "records", "manifest"))
    assert sum(v for k, v in disk.items() if k != "total") == disk["total"]
    serve = run["serve"]
    assert serve["queries"] == 4 and 0 < serve["p50_ms"] <= serve["p95_ms"] and serve["min_hits"] > 0
    assert not list(tmp_path.glob("rag-scale-200-*"))  # the homes are removed

    from scale_report import metrics, table

    row = metrics(run, encoder_per_chunk=0.01)
    assert row["encoder_s"] == pytest.approx(index["chunks"] * 0.01)
    assert row["disk_kb"] == pytest.approx(disk["total"] / 200 / 1000)
    assert "| no-op re-index, s (goal ≤ 5) |" in table([("200", row)])
