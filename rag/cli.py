"""The `rag` command. Thin: parses flags, calls the Python API, prints.

Each subcommand lives in `rag/commands/<name>.py` with `add_parser(subparsers)` and `run(args, settings)`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from rag.errors import ConfigError, RagError
from rag.settings import Settings

COMMANDS = ["papers", "index", "search", "ask", "check", "eval", "ui"]


def _quiet_libraries() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet = ["LiteLLM", "litellm", "httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3"]
    quiet.append("bm25s")
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser reports arguments it does not know itself, with its own usage: argparse
    would hand them back to the top-level parser, which prints `usage: rag [-h] …` instead of
    `usage: rag ask …`."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Answer questions about research-paper abstracts, with verified citations."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More logging (-vv for debug).")
    parser.add_argument("-q", "--quiet", action="store_true", help="Only errors.")
    parser.add_argument("--home", help="Data home (index, models); env RAG_HOME.")
    parser.add_argument("--chroma-url", help="Use a `chroma run` server at this URL; env RAG_CHROMA_URL.")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_SubcommandParser
    )
    for name in COMMANDS:
        importlib.import_module(f"rag.commands.{name}").add_parser(sub)
    return parser


def make_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "home", None):
        overrides["home"] = args.home
    if getattr(args, "chroma_url", None):
        overrides["chroma_url"] = args.chroma_url
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid settings ({problems}). Fix the RAG_* environment variable (nested fields use __, "
            "e.g. RAG_RETRIEVE__K=8) or the command-line option."
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if args.quiet else levels[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = make_settings(args)
        module = importlib.import_module(f"rag.commands.{args.command}")
        return int(module.run(args, settings) or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
