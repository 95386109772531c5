"""`rag papers`: what the corpus holds — counts by source, year and kind, problems with file:line,
and (``--list``) the papers themselves, optionally filtered and as JSON lines.

Examples::

    rag papers                                  # summary + any problems
    rag papers --list --source 001 --year 2024  # matching papers, one per line
    rag papers --list --json                    # every paper as a JSON object per line
    rag papers --path /work/shared/bench/scifact --strict
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from typing import Any

from rag.settings import Settings
from rag.types import Paper


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "papers",
        help="Show what the corpus holds: counts, problems, and (--list) the papers.",
        description="Load the corpus and print counts by source, year and kind, plus every problem found "
        "(file:line). With --list, print the papers.",
    )
    p.add_argument(
        "--path",
        action="append",
        metavar="PATH",
        help="Source file, folder or glob (seed pages, BEIR folder, .jsonl, .bib, .ris, CSL-JSON, arXiv, "
        "OpenAlex, Semantic Scholar, PubMed XML); repeatable. Default: the corpus paths in settings (the "
        "project's seeds/).",
    )
    p.add_argument("--strict", action="store_true", help="Fail (exit 2) if any file or entry has a problem.")
    p.add_argument("--list", action="store_true", help="List the papers instead of only counting them.")
    p.add_argument(
        "--source",
        action="append",
        metavar="S",
        help="Only papers from a source file whose name starts with or contains S; repeatable.",
    )
    p.add_argument(
        "--year", type=int, action="append", metavar="Y", help="Only papers from year Y; repeatable."
    )
    p.add_argument(
        "--kind",
        action="append",
        metavar="K",
        help="Only papers of kind K (paper, poster, oral, talk, …; 'none' for no kind); repeatable.",
    )
    p.add_argument("--title-only", action="store_true", help="Only papers without an abstract.")
    p.add_argument("--json", action="store_true", help="With --list: one JSON object per paper per line.")


def _emit(text: str) -> None:
    """Print, tolerating a closed pipe (`rag papers --list | head`)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _matches(p: Paper, args: argparse.Namespace) -> bool:
    if args.source and not any(s in src for s in args.source for src in (p.sources or [p.source])):
        return False
    if args.year and p.year not in args.year:
        return False
    if args.kind and (p.kind or "none") not in {k.lower() for k in args.kind}:
        return False
    return not (args.title_only and p.has_abstract)


def _counts(title: str, counter: Counter[str], order: list[str] | None = None) -> list[str]:
    keys = order if order is not None else sorted(counter)
    width = max((len(k) for k in keys), default=0)
    return [f"{title}:"] + [f"  {k:<{width}}  {counter[k]:>5}" for k in keys]


def _format_lines(files: list[Any]) -> list[str]:
    """Records and problems per detected format (a record that failed counts as a problem, not a paper)."""
    records: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    n_files: Counter[str] = Counter()
    for f in files:
        fmt = f.format or "not loaded"
        n_files[fmt] += 1
        records[fmt] += f.entries
        bad[fmt] += f.problems
    width = max((len(k) for k in n_files), default=0)
    return ["by format (records read, from files):"] + [
        f"  {fmt:<{width}}  {records[fmt]:>5} in {n_files[fmt]} file(s), {bad[fmt]} problem(s)"
        for fmt in sorted(n_files)
    ]


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.corpus import load_corpus_report

    # This command prints every problem itself; the loader's warnings would only repeat them.
    corpus_logger = logging.getLogger("rag.corpus")
    level = corpus_logger.level
    corpus_logger.setLevel(logging.ERROR)
    try:
        report = load_corpus_report(args.path, strict=args.strict, settings=settings)
    finally:
        corpus_logger.setLevel(level)
    papers = [p for p in report.papers if _matches(p, args)]
    if args.list:
        out: list[str] = []
        for p in papers:
            if args.json:
                out.append(json.dumps(p.model_dump(mode="json"), ensure_ascii=False))
            else:
                year = str(p.year) if p.year is not None else "----"
                kind = p.kind or "-"
                flag = "" if p.has_abstract else "  [title only]"
                out.append(f"{p.id}\t{year}\t{kind}\t{p.title} — {p.author_line(3)}{flag}")
        if out:
            _emit("\n".join(out))
        if report.problems and not args.json:
            note = f"({len(report.problems)} problem(s) while loading; run `rag papers` to see them)"
            print(note, file=sys.stderr)
        return 0

    filtered = len(papers) != len(report.papers)
    with_abs = sum(p.has_abstract for p in papers)
    cross = sum(1 for p in papers if p.id in report.merged and len(p.sources) > 1)
    within = sum(1 for p in papers if p.id in report.merged) - cross
    lines = [
        f"{len(papers)} papers{' (filtered)' if filtered else ''}: {with_abs} with abstracts, "
        f"{len(papers) - with_abs} title-only; merged: {cross} listed on several pages, "
        f"{within} listed several times on one page."
    ]
    by_source: Counter[str] = Counter()
    for p in papers:
        for s in p.sources or [p.source]:
            by_source[s] += 1
    lines += _counts("by source (a paper listed on two pages counts for both)", by_source)
    years: Counter[str] = Counter(str(p.year) if p.year is not None else "unknown" for p in papers)
    order = sorted((k for k in years if k != "unknown"), reverse=True) + (
        ["unknown"] if "unknown" in years else []
    )
    lines += _counts("by year", years, order)
    kinds: Counter[str] = Counter(p.kind or "none" for p in papers)
    lines += _counts("by kind", kinds, [k for k, _ in kinds.most_common()])
    lines += _format_lines(report.files)
    lines.append("files:")
    for f in report.files:
        skipped = f", {len(f.skipped)} non-paper block(s) skipped" if f.skipped else ""
        lines.append(
            f"  {f.name}: {f.format or 'not loaded'}, {f.entries} entries, {f.problems} problem(s){skipped}"
        )
    if report.problems:
        lines.append(f"problems ({len(report.problems)}):")
        lines += [f"  {p}" for p in report.problems]
    else:
        lines.append("problems: none")
    _emit("\n".join(lines))
    return 0
