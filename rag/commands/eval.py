"""`rag eval`: retrieval metrics on the question set (per kind, per retrieval mode), a BEIR dataset with
published reference numbers (--beir), answer-level metrics (--answers), or the deltas of two runs
(--compare). Every run is also written as JSON and Markdown under eval/results/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="Evaluate retrieval (default), a BEIR dataset (--beir) or answers (--answers).",
        description="Run the question set through search in each retrieval mode and print Recall@1/5/10, "
        "MRR and nDCG@10 per question kind, the abstention figure on absent questions and the failing "
        "questions; with --answers, citation recall/precision, abstention, citation integrity and time per "
        "question kind and answer shape. Every figure is also given per half of the question set (tune: "
        "odd ids, held-out: even ids). Results are written to --out as <name>.json and <name>.md.",
    )
    parser.add_argument("--questions", metavar="PATH", help="Question set (default: eval/questions.jsonl).")
    parser.add_argument(
        "--modes",
        default="bm25,dense,hybrid",
        help="Comma-separated retrieval modes to compare (default: bm25,dense,hybrid).",
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=["single", "multi", "meta", "absent"],
        help="Only this kind; repeatable.",
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="Only the first N questions (or BEIR queries)."
    )
    parser.add_argument("--per-kind", type=int, metavar="N", help="Only the first N questions of each kind.")
    parser.add_argument(
        "--half",
        choices=["all", "tune", "held-out"],
        default="all",
        help="Only one half of the question set: tune (odd ids, what calibration may look at) or held-out "
        "(even ids, only reported). Reports give every figure for both halves either way (default: all).",
    )
    parser.add_argument("--beir", metavar="PATH", help="Evaluate on a BEIR-format dataset folder instead.")
    parser.add_argument("--split", default="test", help="BEIR qrels split (default: test).")
    parser.add_argument("--answers", action="store_true", help="Run the answer pipeline and score answers.")
    parser.add_argument(
        "--claims",
        metavar="PATH",
        help="Check SciFact claims (claims_dev.jsonl) against the index and print SciFact's abstract-level "
        "label-only and label+rationale P/R/F1 beside the top-1 → SUPPORT baseline, per half.",
    )
    parser.add_argument(
        "--model", help="Model for --answers and --claims (default: the local model; env RAG_LLM__MODEL)."
    )
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="Print metric deltas B − A.")
    parser.add_argument("--name", help="Name of the result files (default: task + timestamp).")
    parser.add_argument("--out", default="eval/results", metavar="DIR", help="Where results are written.")
    parser.add_argument("--no-save", action="store_true", help="Print only; write no result files.")
    parser.add_argument(
        "--failures", type=int, default=-1, metavar="N", help="Show at most N failing questions."
    )


def _print(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag import evaluation as ev

    if args.compare:
        a, b = (ev.load_report(p) for p in args.compare)
        _print(ev.compare(a, b))
        return 0
    if args.claims:
        return _claims(args, settings)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.beir and args.half != "all":
        raise ConfigError("--half splits the question set; it does not apply to --beir.")
    if args.beir:
        report = ev.run_beir_eval(
            args.beir, split=args.split, modes=modes, settings=settings, limit=args.limit, name=args.name
        )
    else:
        questions = ev.select(
            ev.load_questions(args.questions), args.kind, args.limit, args.per_kind, half=args.half
        )
        if args.answers:
            report = ev.run_answer_eval(
                questions, model=args.model, settings=settings, name=args.name, progress=_progress,
                half=args.half,
            )
        else:
            report = ev.run_retrieval_eval(
                questions, modes=modes, settings=settings, name=args.name, half=args.half
            )
    _print(ev.to_markdown(report))
    if report.task == "retrieval":
        text = ev.failures(report)
        if args.failures >= 0:
            text = "\n".join(_head_failures(text, args.failures))
        _print(text)
    elif report.answers is not None:
        _print(ev.answer_failures(report))
    if not args.no_save:
        json_path, md_path = ev.save_report(report, Path(args.out))
        _print(f"\nwrote {json_path} and {md_path}")
    return 0


def _claims(args: argparse.Namespace, settings: Settings) -> int:
    import json
    import time

    from rag.evaluation.claims import run_claims_eval, to_markdown

    report = run_claims_eval(
        args.claims, settings=settings, model=args.model, half=args.half, limit=args.limit
    )
    text = to_markdown(report)
    _print(text)
    if not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = args.name or time.strftime("claims-%Y%m%d-%H%M%S")
        (out / f"{name}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        (out / f"{name}.md").write_text(text, encoding="utf-8")
        _print(f"\nwrote {out / (name + '.json')} and {out / (name + '.md')}")
    return 0


def _head_failures(text: str, n: int) -> list[str]:
    lines = text.splitlines()
    out, count = lines[:1], 0
    for line in lines[1:]:
        if line.startswith("- "):
            count += 1
        if count > n:
            break
        out.append(line)
    return out


def _progress(n: int, total: int, result: Any) -> None:
    from rag.evaluation import shape_of

    state = "abstained" if result.abstained else f"{shape_of(result)}, {len(result.cited)} citations"
    sys.stderr.write(f"[{n}/{total}] {result.id} {state} ({result.seconds:.1f} s)\n")
