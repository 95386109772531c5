"""Compact late interaction: re-code an index's stored word-piece rows per codec and measure each.

Takes a SciFact home already indexed with int8 rows (``bench/retrieval_scifact.py --home DIR``; work on a
copy: this rewrites its ``late/``), keeps those rows aside once (``late.int8/``), and for each codec
re-codes them with ``rag.late.consolidate`` (no re-embedding: every row comes from the int8 store), then
runs the real ``rag.search`` (hybrid, k=100) for every test query and scores nDCG@10 with ranx, and times
warm searches (k=10, query embedding included). Prints bytes per word piece, ``late/`` KB per paper,
nDCG@10 and p50/p95 per codec, with the load average, and writes bench/results/late_compression.json.
The home is left with the int8 rows it started with.

    .venv/bin/python bench/late_compression.py --home /tmp/scifact-copy
    .venv/bin/python bench/late_compression.py --home /tmp/scifact-copy --codecs int8,pq24 --split train
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SCIFACT = Path(os.environ.get("RAG_SCIFACT", "/work/shared/bench/scifact"))


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*") if f.is_file())


def measure(settings, queries, qrels, latency_queries: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """nDCG@10 of ``rag.search(k=100)`` over ``queries`` and warm k=10 latency over the first ones."""
    from ranx import Qrels, Run, evaluate

    from rag.retrieve import search

    search("warm-up query about protein folding", k=10, settings=settings)  # loads the re-coded store
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        hits = search(text, k=100, settings=settings)
        run[qid] = {h.paper.id: float(len(hits) - i) for i, h in enumerate(hits)} or {"-": 0.0}
    ndcg = float(evaluate(Qrels(qrels), Run(run), "ndcg@10"))
    times = []
    for text in list(queries.values())[:latency_queries]:
        t = time.perf_counter()
        search(text, k=10, settings=settings)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "ndcg@10": round(ndcg, 4),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="Copy of an indexed SciFact home (int8).")
    ap.add_argument("--codecs", default="int8,pq16,pq24,pq32,pq48")
    ap.add_argument("--split", default="test", choices=["test", "train"])
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "late_compression.json")
    args = ap.parse_args()

    from retrieval_scifact import load_split

    from rag.embed import get_embedder
    from rag.index import indexed_chunks
    from rag.late import LATE_DIR, consolidate
    from rag.settings import Settings
    from rag.store import Store

    settings = Settings(home=args.home, corpus={"paths": [SCIFACT]})  # type: ignore[arg-type]
    store = Store.open(settings)
    late, kept = store.folder / LATE_DIR, store.folder / (LATE_DIR + ".int8")
    if not kept.is_dir():
        meta = json.loads((late / "chunks.json").read_text(encoding="utf-8"))
        if meta.get("codec", "int8") != "int8":
            raise SystemExit(f"{late} is {meta['codec']}: start from a home with int8 rows")
        shutil.copytree(late, kept)
    order = {row[0]: i for i, row in enumerate(json.loads((kept / "chunks.json").read_text())["chunks"])}
    chunks = sorted(indexed_chunks(settings), key=lambda c: order.get(c.id, len(order)))  # the stored layout
    papers = len({c.paper_id for c in chunks})
    embedder = get_embedder(settings)
    queries, qrels = load_split(args.split)
    results = []
    for codec in args.codecs.split(","):
        shutil.rmtree(late, ignore_errors=True)
        shutil.copytree(kept, late)
        started = time.perf_counter()
        if codec != "int8":
            assert consolidate(store.folder, chunks, embedder, settings.index.embed_model, codec) == 0
        recode_s = time.perf_counter() - started
        meta = json.loads((late / "chunks.json").read_text(encoding="utf-8"))
        size = folder_bytes(late)
        row: dict[str, object] = {
            "codec": codec,
            "late_bytes": size,
            "late_kb_per_paper": round(size / papers / 1000, 2),
            "recode_s": round(recode_s, 1),
            "load_before": round(os.getloadavg()[0], 2),
        }
        vectors = (late / "vectors.npy").stat().st_size + (
            (late / "scales.npy").stat().st_size if (late / "scales.npy").exists() else 0
        )
        row["bytes_per_piece"] = round(vectors / meta["rows"], 1)
        row.update(measure(settings, queries, qrels, args.latency_queries))
        row["load_after"] = round(os.getloadavg()[0], 2)
        results.append(row)
        print(json.dumps(row), flush=True)
    shutil.rmtree(late, ignore_errors=True)
    shutil.copytree(kept, late)  # the home as it came

    print(f"\nSciFact {args.split} ({len(queries)} queries, {papers} papers), rag.search hybrid k=100")
    head = f"{'codec':<8} {'B/piece':>8} {'KB/paper':>9} {'nDCG@10':>8} {'p50 ms':>7} {'p95 ms':>7}"
    print(head + f" {'load':>6}")
    for r in results:
        print(
            f"{r['codec']:<8} {r['bytes_per_piece']:>8} {r['late_kb_per_paper']:>9} {r['ndcg@10']:>8.4f} "
            f"{r['p50_ms']:>7} {r['p95_ms']:>7} {r['load_before']:>6}"
        )
    out = {
        "split": args.split,
        "queries": len(queries),
        "papers": papers,
        "rows": json.loads((late / "chunks.json").read_text(encoding="utf-8"))["rows"],
        "results": results,
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    name = args.out if args.split == "test" else args.out.with_name(args.out.stem + f"_{args.split}.json")
    name.parent.mkdir(parents=True, exist_ok=True)
    name.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
