"""`rag ask "question"`: stream an answer, then a numbered reference list of the papers it cites.

On a terminal the model's text appears as it is generated and is replaced by the checked text when the
answer is complete (citations verified and renumbered); piped output gets the checked text only. The shape
is the pipeline's (``Answer.kind``): a list answer prints its lines, one ``[n] Title (author, year) —
evidence`` per paper, no reference list (each line names its paper); an extractive answer (the model's own
text could not be verified) is marked as quoted from the abstracts. A model failure prints the error line,
then the papers that were retrieved, and exits with status 2. ``--json`` prints the whole ``Answer``;
``--bib`` only the BibTeX of the cited papers (``Answer.bibtex()``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from rag.commands._filter_flags import add_filter_flags, filters_from_args
from rag.settings import Settings

EXIT_ERROR = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ask",
        help="Answer a question from the indexed abstracts, with verified citations.",
        description="Answer a question from the indexed abstracts. Every citation is checked against the "
        'abstract it cites. Filters can also be written in the question ("… by Flammarion since 2022").',
    )
    p.add_argument("question", nargs="+", help="The question.")
    p.add_argument(
        "--model", help="Any litellm model id (default: settings.llm.model, the offline local model)."
    )
    p.add_argument(
        "-k", "--k", type=int, default=None, help="Papers to retrieve (default: settings.retrieve.k)."
    )
    add_filter_flags(p)
    p.add_argument("--json", action="store_true", help="Print the whole Answer as JSON (no streaming).")
    p.add_argument(
        "--bib", action="store_true", help="Print only the BibTeX of the cited papers (e.g. >> refs.bib)."
    )
    p.add_argument(
        "--server",
        action="store_true",
        help="Answer through the running `rag ui` of this data home (its models are already loaded); "
        "answers in this process when none is running.",
    )
    p.add_argument("--server-url", metavar="URL", help="Like --server, with the URL of a running `rag ui`.")


def run(args: argparse.Namespace, settings: Settings) -> int:
    question = " ".join(args.question)
    options: dict[str, Any] = {"model": args.model, "filters": filters_from_args(args) or None, "k": args.k}
    remote = getattr(args, "server", False) or getattr(args, "server_url", None)
    items = _remote(args, settings, question, options) if remote else None
    if items is None:
        _preload(settings, args.model)  # first: the model loads while the rest is imported
        from rag.pipeline import answer_stream

        items = answer_stream(question, settings=settings, **options)
    from rag.types import Answer, Hits

    if getattr(args, "bib", False):
        result = _final(items)
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
            return EXIT_ERROR
        sys.stdout.write(result.bibtex() or "% no papers cited\n")
        return 0
    if args.json:
        result = _final(items)
        json.dump(result.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
        return EXIT_ERROR if result.error else 0

    from rich.console import Console
    from rich.live import Live
    from rich.markup import escape
    from rich.text import Text

    out = Console(highlight=False, soft_wrap=True)
    live: Live | None = None
    streamed = ""
    final: Answer | None = None
    try:
        for item in items:
            if isinstance(item, Hits):
                if not item.filters.is_empty():
                    origin = " (read from the question)" if item.filters_from_query else ""
                    out.print(f"[dim]filter: {escape(item.filters.describe())}{origin}[/]")
                if item.note:
                    out.print(f"[yellow]note:[/] {escape(item.note)}")
            elif isinstance(item, str):
                streamed += item
                if out.is_terminal:
                    if live is None:
                        live = Live(Text(streamed), console=out, transient=True, auto_refresh=False)
                        live.start()
                    live.update(Text(streamed), refresh=True)
            else:
                final = item
    finally:
        if live is not None:
            live.stop()
    if final is None:  # pragma: no cover - answer_stream always ends with an Answer
        return EXIT_ERROR
    if final.error:
        print(f"error: {final.error}", file=sys.stderr)
        _papers(out, final, "Retrieved papers")
        return EXIT_ERROR
    if final.kind == "list" and final.items and not final.abstained:
        _list(out, final)  # each line names its paper: no reference list
    elif final.extractive and not final.abstained:
        _quotes(out, final)
        _references(out, final)
    else:
        out.print(escape(final.text))
        if final.abstained:
            _papers(out, final, "Nearest papers")
        else:
            _references(out, final)
    _footer(out, final)
    return 0


def _remote(
    args: argparse.Namespace, settings: Settings, question: str, options: dict[str, Any]
) -> Iterator[Any] | None:
    """The answer's items from a running `rag ui` (``--server``), or None (with a note) when none answers."""
    from rag.remote import ServerUnavailable, find_server, remote_stream

    try:
        url = args.server_url or find_server(settings.home)
        items = remote_stream(url, question, **options)
        first = next(items)  # connects: an unreachable server fails here, before anything is printed
    except ServerUnavailable as exc:
        print(f"note: {exc}; answering in this process.", file=sys.stderr)
        return None
    return itertools.chain([first], items)


def _final(items: Iterator[Any]) -> Any:
    """The ``Answer`` at the end of an answer stream."""
    from rag.types import Answer

    final = None
    for item in items:
        if isinstance(item, Answer):
            final = item
    if final is None:  # pragma: no cover - every stream ends with an Answer
        raise RuntimeError("the answer stream ended without an Answer")
    return final


def _preload(settings: Settings, model: str | None) -> None:
    """Start loading the local model (~1.1 GB, memory-mapped) in the background while retrieval runs, so
    the first token does not wait for both one after the other. A no-op for hosted models; a load that
    fails here fails again, with its message, in the real call."""
    import threading

    def load() -> None:
        try:
            from rag.llm import preload

            preload(settings, model=model)
        except Exception:  # only an optimisation: the answer's own call reports the problem
            pass

    threading.Thread(target=load, name="rag-preload", daemon=True).start()


_LIST_LINE = re.compile(r"\[(\d+)\]\s")
_HOW_MANY = re.compile(r"^\W*how\s+many\b", re.IGNORECASE)


def _list(out: Any, final: Any) -> None:
    """A list answer: its text line by line (lead, one line per paper, the cap line), and for "how many"
    questions the count first unless the text gives it."""
    from rich.markup import escape

    numbers = {i.number for i in final.items}
    lines = [line.strip() for line in final.text.splitlines() if line.strip()]
    is_item = [bool((m := _LIST_LINE.match(line)) and int(m.group(1)) in numbers) for line in lines]
    if not any(is_item):  # the text does not carry the item lines: print the items themselves
        lines, is_item = [i.line for i in final.items], [True] * len(final.items)
    count = final.total if final.total is not None else len(final.items)
    said = " ".join(line for line, item in zip(lines, is_item, strict=True) if not item)
    if _HOW_MANY.search(final.question) and not re.search(rf"\b{count}\b", said):
        out.print(f"[bold]{count} paper{'s' if count != 1 else ''}.[/]")
    for line, item in zip(lines, is_item, strict=True):
        if item:
            n, rest = line.split(" ", 1)
            out.print(f"[bold]{escape(n)}[/] {escape(rest)}")
        elif line.startswith("…") or "narrow the filter" in line:
            out.print(f"[yellow]{escape(line)}[/]")
        else:
            out.print(escape(line))


def _quotes(out: Any, final: Any) -> None:
    """An extractive answer: marked as quotations, each line behind a '> ' bar."""
    from rich.markup import escape

    out.print("[yellow]Quoted from the abstracts: the model's own answer could not be verified.[/]")
    for line in final.text.splitlines():
        if line.strip():
            out.print(f"[dim]>[/] [italic]{escape(line.strip())}[/]")


def _meta(paper: Any) -> str:
    parts = [
        paper.author_line(3) or "authors unknown",
        str(paper.year) if paper.year else "year unknown",
        paper.source,
    ]
    return " · ".join(parts)


def _references(out: Any, final: Any) -> None:
    from rich.markup import escape

    if not final.citations:
        out.print("[yellow]No citation could be verified for this answer.[/]")
        return
    out.print("\n[bold]References[/]")
    for c in final.citations:
        marks = []
        if c.repaired:
            marks.append("re-pointed by the citation check")
        if c.added:
            marks.append("added by the citation check")
        if c.flagged:
            marks.append(f"FLAGGED: weak support {c.support:.2f}")
        note = f" [yellow]({'; '.join(marks)})[/]" if marks else ""
        out.print(f"{escape(f'[{c.number}]')} [bold]{escape(c.paper.title)}[/]{note}")
        out.print(f"    {escape(_meta(c.paper))}")


def _papers(out: Any, final: Any, heading: str, limit: int = 5) -> None:
    from rich.markup import escape

    if not final.hits:
        out.print(f"\n{heading}: none")
        return
    out.print(f"\n[bold]{heading}[/]")
    for i, hit in enumerate(final.hits[:limit], start=1):
        out.print(f"{i:>2}. {escape(hit.paper.title)}")
        out.print(f"    {escape(_meta(hit.paper))}")


def _footer(out: Any, final: Any) -> None:
    t = final.timings
    parts = [final.model]
    if final.kind == "list" and final.items:
        total = final.total if final.total is not None else len(final.items)
        parts.append(f"{len(final.items)} of {total} papers listed")
    if final.prompt_tokens:
        parts.append(f"{final.prompt_tokens} prompt tokens")
    if "first_token" in t:
        parts.append(f"first token {t['first_token']:.1f} s")
    if "total" in t:
        parts.append(f"total {t['total']:.1f} s")
    out.print(f"[dim]{' · '.join(parts)}[/]")
