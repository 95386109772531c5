"""SciFact claims through rag.claims' verdict step, with BM25-only retrieval over the full SciFact corpus.

`rag eval --claims PATH` is the product path (the index's hybrid retrieval; it needs the SciFact corpus
indexed in a data home). This script is the fallback used for docs/claims.md when that index cannot be built
in time:
it ranks all 5,183 abstracts with BM25 (rag.lexical's tokenizer and parameters, in memory, seconds to build),
turns the top BM25 score into a relevance with a logistic whose centre is chosen on the odd (tune) claim ids,
and hands the hits to :func:`rag.claims.verdicts_for` — the same candidate sentences, prompt, parsing and rule
as ``rag check``. Scored with :mod:`rag.evaluation.claims` (SciFact abstract-level metrics, the baseline
beside).

    .venv/bin/python bench/claims_scifact.py --tune                     # retrieval-only threshold, odd ids
    .venv/bin/python bench/claims_scifact.py --half held-out --limit 40 --out bench/results/claims_even.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCIFACT = Path(os.environ.get("RAG_SCIFACT", "/work/shared/bench/scifact"))
DEPTH = 5
SCALE = 2.0
"""BM25 points over which relevance goes from 0.27 to 0.73."""


def load_papers() -> list[Any]:
    from rag.types import Paper

    out = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            out.append(Paper(id=str(d["_id"]), title=d["title"], abstract=d["text"], source="corpus.jsonl"))
    return out


class Bm25:
    def __init__(self, papers: list[Any]) -> None:
        import bm25s

        from rag.lexical import K1, TITLE_WEIGHT, B, tokenize

        self.papers = papers
        self.tokenize = tokenize
        docs = [tokenize(" ".join([p.title] * TITLE_WEIGHT + [p.abstract])) or [""] for p in papers]
        self.retriever = bm25s.BM25(k1=K1, b=B)
        self.retriever.index(docs, show_progress=False)
        self.vocab = dict(self.retriever.vocab_dict)

    def top(self, text: str, n: int = DEPTH) -> list[tuple[Any, float]]:
        import numpy as np

        ids = [self.vocab[t] for t in self.tokenize(text) if t in self.vocab]
        if not ids:
            return []
        scores = np.asarray(self.retriever.get_scores_from_ids(ids))
        order = np.argsort(-scores)[:n]
        return [(self.papers[i], float(scores[i])) for i in order if scores[i] > 0]


def hits_for(bm25: Bm25, claim: str, center: float) -> Any:
    from rag.types import Hit, Hits

    top = bm25.top(claim)
    hits = [
        Hit(paper=p, score=s, retrievers=["bm25"], relevance=1 / (1 + math.exp(-(s - center) / SCALE)))
        for p, s in top
    ]
    return Hits(hits, query=claim)


def tune(bm25: Bm25, claims: list[Any]) -> float:
    """The BM25 centre that maximises F1 of 'top-1 is evidence' (label-blind) on the odd claim ids."""
    rows = []
    for c in claims:
        top = bm25.top(c.claim, 1)
        rows.append((top[0][1] if top else 0.0, bool(top) and top[0][0].id in c.evidence))
    gold = sum(len(c.evidence) for c in claims)
    best = (0.0, 0.0)
    for center in [x / 2 for x in range(0, 81)]:
        pred = [ok for s, ok in rows if s >= center]
        tp = sum(pred)
        p = tp / len(pred) if pred else 0.0
        r = tp / gold if gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best[0]:
            best = (f1, center)
    print(f"tune: {len(claims)} odd claims, best centre {best[1]} (label-blind top-1 F1 {best[0]:.3f})")
    return best[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", default="tune", choices=["tune", "held-out", "all"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="Skip the first N claims of the half.")
    ap.add_argument("--center", type=float, help="BM25 centre (default: tuned on the odd ids now).")
    ap.add_argument("--tune", action="store_true", help="Only tune the centre (no model).")
    ap.add_argument("--max-papers", type=int, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--score", type=Path, help="Only score the per-claim lines of a (stopped) run.")
    args = ap.parse_args()

    from rag import claims as claims_mod
    from rag.embed import get_embedder
    from rag.evaluation import claims as ev
    from rag.settings import Settings
    from rag.types import ClaimCheck

    if args.score:
        done = [ev.ClaimResult.model_validate_json(line) for line in args.score.read_text().splitlines()]
        ids = {r.id for r in done}
        scored = [c for c in ev.load_claims(SCIFACT / "claims" / "claims_dev.jsonl") if c.id in ids]
        print(ev.to_markdown({"model": "see run", "figures": ev.figures(scored, done), "note": ""}))
        print("claim ids:", sorted(ids))
        return 0
    started = time.perf_counter()
    bm25 = Bm25(load_papers())
    print(f"BM25 over {len(bm25.papers)} abstracts in {time.perf_counter() - started:.1f} s")
    all_claims = ev.load_claims(SCIFACT / "claims" / "claims_dev.jsonl")
    center = args.center if args.center is not None else tune(bm25, ev.select(all_claims, "tune"))
    if args.tune:  # the naive baseline on every claim: BM25 top-1 labelled SUPPORT (no model)
        rows = []
        for c in all_claims:
            top = bm25.top(c.claim, 1)
            base = {top[0][0].id: ("SUPPORT", [])} if top else {}
            rows.append(ev.ClaimResult(id=c.id, baseline=base))
        for half, fig in ev.figures(all_claims, rows).items():
            lo = fig["baseline"]["label_only"]
            print(f"baseline {half}: {fig['ids']} P {lo['precision']} R {lo['recall']} F1 {lo['f1']}")
        return 0
    chosen = ev.select(all_claims, args.half)[args.start :]
    chosen = chosen[: args.limit] if args.limit else chosen
    settings = Settings()
    encode = get_embedder(settings).encode
    rule = claims_mod.DEFAULT
    if args.max_papers:
        rule = claims_mod.Verdicts(**{**rule.__dict__, "max_papers": args.max_papers})

    def check(text: str) -> ClaimCheck:
        t0 = time.perf_counter()
        hits = hits_for(bm25, text, center)
        verdicts, error = claims_mod.verdicts_for(
            text, hits, settings=settings, model=args.model, encode=encode, rule=rule
        )
        return ClaimCheck(
            claim=text, verdicts=verdicts, hits=list(hits), error=error,
            timings={"total": time.perf_counter() - t0},
        )

    def progress(n: int, total: int, result: Any) -> None:
        ev._progress(n, total, result)
        if args.out:  # one line per claim as it finishes, so a stopped run keeps what it did
            with args.out.with_suffix(".jsonl").open("a", encoding="utf-8") as fh:
                fh.write(result.model_dump_json() + "\n")

    results = ev.run_claims(chosen, check, progress=progress)
    report = {
        "task": "claims",
        "retrieval": f"BM25 only over the full corpus, relevance centre {center}",
        "model": args.model or settings.llm.model,
        "figures": ev.figures(chosen, results),
        "results": [r.model_dump() for r in results],
        "note": ev.PUBLISHED_NOTE,
    }
    print(ev.to_markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
