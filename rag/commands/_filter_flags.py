"""The metadata-filter flags shared by `rag search` and `rag ask` (the same filters as the API)."""

from __future__ import annotations

import argparse
from typing import Any


def add_filter_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--author", action="append", default=[], help="Author (full or family name); repeatable.")
    p.add_argument("--year", help="YYYY, YYYY-YYYY, YYYY- or -YYYY.")
    p.add_argument(
        "--source", action="append", default=[], help="Source page file name or prefix; repeatable."
    )
    p.add_argument("--category", action="append", default=[], help="Subject category, e.g. LG; repeatable.")
    p.add_argument("--kind", action="append", default=[], help="paper, poster, oral, talk, …; repeatable.")
    p.add_argument(
        "--affiliation", action="append", default=[], help="Affiliation tag, e.g. eth-zurich; repeatable."
    )
    p.add_argument("--upvotes-min", type=int, help="At least this many upvotes (Daily Papers).")
    p.add_argument("--n-authors", help="Author count: N, N-M, N- or -M.")


def filters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The filter flags as the mapping ``search``/``answer`` accept (ranges are parsed and checked there)."""
    out: dict[str, Any] = {}
    for flag, key in (
        ("author", "authors"),
        ("source", "sources"),
        ("category", "categories"),
        ("kind", "kinds"),
        ("affiliation", "affiliations"),
    ):
        values = getattr(args, flag, None)
        if values:
            out[key] = list(values)
    for flag, key in (("year", "year"), ("upvotes_min", "upvotes_min"), ("n_authors", "n_authors")):
        value = getattr(args, flag, None)
        if value is not None:
            out[key] = value
    return out
