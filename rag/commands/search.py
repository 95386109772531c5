"""`rag search "question"`: the ranked papers (title, authors, year, source, score), the filter, any note."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rag.commands._filter_flags import add_filter_flags, filters_from_args
from rag.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="Rank the indexed papers for a question (no model call).",
        description="Rank the indexed papers for a question. Filters can also be written in the question "
        'itself: "papers by Flammarion since 2022".',
    )
    p.add_argument("query", nargs="+", help="The question or keywords.")
    p.add_argument("-k", "--k", type=int, default=None, help="Papers to show (default: settings.retrieve.k).")
    add_filter_flags(p)
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None, help="Retrieval mode.")
    p.add_argument("--json", action="store_true", help="Print the hits as JSON.")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.retrieve import search

    query = " ".join(args.query)
    k = args.k if args.k is not None else settings.retrieve.k
    hits = search(query, k=k, filters=filters_from_args(args), settings=settings, mode=args.mode)
    if args.json:
        data = {
            "query": hits.query,
            "filters": hits.filters.model_dump(),
            "filters_from_query": hits.filters_from_query,
            "note": hits.note,
            "good_match": hits.good_match,
            "seconds": hits.seconds,
            "hits": [h.model_dump(mode="json") for h in hits],
        }
        json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    _print(hits)
    return 0


def _print(hits: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    if not hits.filters.is_empty():
        origin = " (read from the question)" if hits.filters_from_query else ""
        console.print(f"[dim]filter:[/] {escape(hits.filters.describe())}{origin}")
    if hits.note:
        console.print(f"[yellow]note:[/] {escape(hits.note)}")
    for i, hit in enumerate(hits, start=1):
        p = hit.paper
        meta = [p.author_line(3) or "authors unknown", str(p.year) if p.year else "year unknown", p.source]
        if p.kind and p.kind != "paper":
            meta.append(p.kind)
        found = "+".join(hit.retrievers)
        rel = f" relevance {hit.relevance:.2f}" if hit.relevance is not None else ""
        console.print(f"{i:>2}. [bold]{escape(p.title)}[/]")
        console.print(f"    {escape(' · '.join(meta))}")
        console.print(f"    [dim]score {hit.score:.4f}{rel} ({escape(found)}) · id {escape(p.id)}[/]")
    if not hits:
        console.print("no hits")
    console.print(f"[dim]{len(hits)} hit(s) in {hits.seconds * 1000:.0f} ms[/]")
