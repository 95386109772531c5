"""Retrieval quality and latency on BEIR SciFact through the real `rag` path.

Builds an index of the SciFact corpus with ``rag.index.build_index`` (into a temporary home, or ``--home`` to
keep and reuse it: an unchanged corpus is not re-embedded), then runs ``rag.search`` for every query of the
split in each mode and scores the rankings with ranx (nDCG@10, Recall@100). Prints a table next to the
published numbers (/work/shared/bench/README.md) and the warm search latency (query embedding included),
and writes bench/results/retrieval_scifact.json.

    .venv/bin/python bench/retrieval_scifact.py                       # test split, temp home
    .venv/bin/python bench/retrieval_scifact.py --home /tmp/scifact   # keep the index for next time
    .venv/bin/python bench/retrieval_scifact.py --split train         # the split the knobs were tuned on
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCIFACT = Path(os.environ.get("RAG_SCIFACT", "/work/shared/bench/scifact"))
PUBLISHED = [
    ("BM25 (BEIR paper, Elasticsearch)", 0.665, 0.908),
    ("BM25 (bm25s, MTEB baseline)", 0.687, 0.913),
    ("all-MiniLM-L6-v2 (MTEB)", 0.645, 0.925),
    ("bge-small-en-v1.5 (MTEB)", 0.713, 0.945),
    ("gte-small (MTEB)", 0.727, 0.950),
    ("bge-base-en-v1.5 (MTEB)", 0.744, 0.963),
]


def load_split(split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    queries = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (SCIFACT / "qrels" / f"{split}.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    return {qid: queries[qid] for qid in qrels}, qrels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="RAG home to build into and keep (default: a temp dir).")
    ap.add_argument("--split", default="test", choices=["test", "train"])
    ap.add_argument("--modes", default="bm25,dense,hybrid-2way,hybrid")
    ap.add_argument("--limit", type=int, default=0, help="Only the first N queries (smoke runs).")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval_scifact.json")
    args = ap.parse_args()

    from ranx import Qrels, Run, evaluate

    from rag.index import build_index
    from rag.retrieve import search
    from rag.settings import Settings

    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="rag-scifact-")
        home = Path(tmp.name)
    settings = Settings(home=home, corpus={"paths": [SCIFACT]})  # type: ignore[arg-type]
    started = time.perf_counter()
    stats = build_index([SCIFACT], settings, progress=True)
    build_s = time.perf_counter() - started
    print(
        f"index: {stats.papers} papers, {stats.chunks} chunks, {stats.embedded} embedded in {build_s:.1f} s "
        f"({stats.collection})"
    )

    from rag.store import Store

    store_folder = Store.open(settings).folder
    late_mb = sum(f.stat().st_size for f in (store_folder / "late").glob("*")) / 1e6
    print(f"word-piece vectors (late/): {late_mb:.0f} MB")
    queries, qrels = load_split(args.split)
    qids = list(queries)[: args.limit or None]
    results: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    search("warm-up query about protein folding", k=10, settings=settings)  # loads model, index, BM25
    two_way = settings.model_copy(deep=True)
    two_way.retrieve.late_weight = 0.0  # "hybrid-2way": dense + BM25 only, weights rescaled
    for mode in args.modes.split(","):
        run: dict[str, dict[str, float]] = {}
        how = two_way if mode == "hybrid-2way" else settings
        real_mode = "hybrid" if mode == "hybrid-2way" else mode
        for qid in qids:
            hits = search(queries[qid], k=100, settings=how, mode=real_mode)
            run[qid] = {h.paper.id: float(len(hits) - i) for i, h in enumerate(hits)} or {"-": 0.0}
        scores = evaluate(Qrels({q: qrels[q] for q in qids}), Run(run), ["ndcg@10", "recall@100"])
        results[mode] = {m: round(float(v), 4) for m, v in scores.items()}
        times = []
        for qid in qids[:300]:
            t = time.perf_counter()
            search(queries[qid], k=10, settings=how, mode=real_mode)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        latency[mode] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        }
        print(f"{mode}: {results[mode]} latency {latency[mode]}", flush=True)

    print(f"\nSciFact {args.split} ({len(qids)} queries), rag.search through the real index")
    print(f"{'system':<44} {'nDCG@10':>8} {'R@100':>8}")
    for mode, label in (
        ("bm25", "rag bm25 (bm25s, stemmed, title x2)"),
        ("dense", "rag dense (MiniLM-L6, chunks)"),
        ("hybrid-2way", "rag hybrid, dense + BM25 only (late_weight 0)"),
        ("hybrid", "rag hybrid (default: + late interaction)"),
    ):
        if mode in results:
            r = results[mode]
            print(f"{label:<44} {r['ndcg@10']:>8.3f} {r['recall@100']:>8.3f}")
    if args.split == "test":
        print("published (test split):")
        for name, ndcg, rec in PUBLISHED:
            print(f"  {name:<42} {ndcg:>8.3f} {rec:>8.3f}")
    print("warm search latency, k=10, query embedding included:")
    for mode, lat in latency.items():
        print(f"  {mode:<8} p50 {lat['p50_ms']:.1f} ms   p95 {lat['p95_ms']:.1f} ms")

    rs = settings.retrieve
    out = {
        "split": args.split,
        "queries": len(qids),
        "metrics": results,
        "latency_ms": latency,
        "index": {
            "papers": stats.papers,
            "chunks": stats.chunks,
            "build_seconds": round(build_s, 1),
            "embedded": stats.embedded,
            "late_bytes": sum(f.stat().st_size for f in (store_folder / "late").glob("*")),
        },
        "settings": {
            "fusion": rs.fusion,
            "normalisation": rs.normalisation,
            "dense_weight": rs.dense_weight,
            "late_weight": rs.late_weight,
            "late_interaction": settings.index.late_interaction,
            "depth": rs.depth,
            "rrf_k": rs.rrf_k,
            "embed_model": settings.index.embed_model,
            "chunk_max_tokens": settings.index.chunk_max_tokens,
        },
        "published_test": {n: {"ndcg@10": a, "recall@100": b} for n, a, b in PUBLISHED},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.limit:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        name = args.out if args.split == "test" else args.out.with_name(args.out.stem + f"_{args.split}.json")
        name.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {name}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
