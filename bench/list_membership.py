"""Calibrate list membership (rag.shapes.Membership) and the quote threshold on one half of the eval set.

Retrieval only (no model): for every list-shaped answerable question, the top LIST_CAP hits with their
relevance and score ratio; a grid over (min_ratio, sure_relevance) picks the rule with the best mean F1 on the
"tune" half (odd question ids) and the figures are printed for both halves. Filter listings are left out
(their membership is the filter). Also prints the top hit's relevance for answerable and absent questions that
reach the model, to place the quote threshold (shapes.EXTRACT_MIN_RELEVANCE).

    python bench/list_membership.py [--questions eval/questions.jsonl]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.evaluation import load_questions  # noqa: E402
from rag.retrieve import search  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.shapes import LIST_CAP, Membership, decide, is_filter_listing, members  # noqa: E402


def half(qid: str) -> str:
    return "tune" if int(qid.lstrip("q")) % 2 else "held-out"


def f1(chosen: set[str], expected: set[str]) -> tuple[float, float, float]:
    hit = len(chosen & expected)
    p = hit / len(chosen) if chosen else 0.0
    r = hit / len(expected) if expected else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", default=None)
    args = parser.parse_args()
    settings = Settings()
    rows = []
    tops: dict[str, list[tuple[str, float, str]]] = {"answerable": [], "absent": []}
    for q in load_questions(args.questions):
        hits = search(q.question, k=LIST_CAP, settings=settings)
        if hits and hits.good_match:
            group = "absent" if q.kind == "absent" else "answerable"
            tops[group].append((q.id, hits[0].relevance or 0.0, half(q.id)))
        if q.kind == "absent" or not hits or decide(q.question, hits) != "list" or is_filter_listing(hits):
            continue
        rows.append((q, hits))
    print(f"list questions ranked by relevance: {len(rows)}")
    ratios = [round(0.5 + x * 0.05, 2) for x in range(0, 10)]
    sure = [0.3, 0.5, 0.7, 0.9, 1.1]  # 1.1: relevance alone never makes a member
    best: tuple[float, Membership] | None = None
    for ratio, rel in itertools.product(ratios, sure):
        rule = Membership(min_ratio=ratio, sure_relevance=rel)
        scores = [
            f1({hits[i].paper.id for i in members(hits, rule)}, set(q.expected))[2]
            for q, hits in rows
            if half(q.id) == "tune"
        ]
        mean = statistics.mean(scores) if scores else 0.0
        if best is None or mean > best[0] + 1e-9:
            best = (mean, rule)
    assert best is not None
    chosen_rule = best[1]
    report = {}
    for name, rule in (("default", Membership()), ("best-on-tune", chosen_rule)):
        for part in ("tune", "held-out", "all"):
            sel = [(q, h) for q, h in rows if part == "all" or half(q.id) == part]
            prf = [f1({h[i].paper.id for i in members(h, rule)}, set(q.expected)) for q, h in sel]
            if not prf:
                continue
            p, r, f = (statistics.mean(x[j] for x in prf) for j in range(3))
            report[f"{name}/{part}"] = {"n": len(sel), "precision": p, "recall": r, "f1": f}
            print(
                f"{name:13s} {part:9s} n={len(sel):3d}  precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  "
                f"(min_ratio {rule.min_ratio}, sure_relevance {rule.sure_relevance})"
            )
    for group, values in tops.items():
        vals = sorted(v for _, v, _ in values)
        print(
            f"top-hit relevance, {group} with a good match: n={len(vals)} "
            + " ".join(f"{v:.2f}" for v in vals[:12])
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "list_membership.json").write_text(json.dumps({"report": report, "tops": tops}, indent=1))


if __name__ == "__main__":
    main()
