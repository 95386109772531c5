"""`rag check "claim"`: a verdict per retrieved paper — supports, contradicts, or not enough to decide."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rag.commands._filter_flags import add_filter_flags, filters_from_args
from rag.settings import Settings

_BADGE = {"SUPPORT": "SUPPORTS", "CONTRADICT": "CONTRADICTS", "NOT_ENOUGH_INFO": "NOT ENOUGH INFO"}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="Check a claim or yes/no question: a verdict per retrieved paper.",
        description="Retrieve the papers that address the claim and ask the model, per paper, whether the "
        "abstract's most relevant sentences support or contradict it. Prints one verdict per paper with the "
        "deciding sentences quoted, or says that no indexed paper addresses the claim.",
    )
    parser.add_argument("claim", help='The claim, e.g. "Weight decay is not needed for one-epoch training."')
    parser.add_argument(
        "--model", help="Any litellm model id (default: the local model; env RAG_LLM__MODEL)."
    )
    parser.add_argument("-k", type=int, help="Papers retrieved (default: settings).")
    parser.add_argument("--json", action="store_true", help="Print the ClaimCheck as JSON.")
    add_filter_flags(parser)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.claims import check_claim

    check = check_claim(
        args.claim, k=args.k, filters=filters_from_args(args), model=args.model, settings=settings
    )
    if args.json:
        sys.stdout.write(check.model_dump_json(indent=1) + "\n")
        return 0 if check.error is None else 1
    out = [check.overall]
    for n, v in enumerate(check.verdicts, start=1):
        out.append(f"[{n}] {_BADGE[v.label]} ({v.confidence:.2f}) {v.paper.title} [{v.paper.id}]")
        out += [f"    “{s}”" for s in v.rationale]
    if check.error:
        out.append(f"error: {check.error}")
    out.append(f"({check.timings.get('total', 0.0):.1f} s)")
    sys.stdout.write("\n".join(out) + "\n")
    return 0 if check.error is None else 1
