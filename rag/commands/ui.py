"""`rag ui`: serve the Gradio chat UI (ui/app.py) over the Python API."""

from __future__ import annotations

import argparse
from typing import Any

from rag.errors import ConfigError
from rag.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ui",
        help="Open the chat UI in the browser (Gradio, offline).",
        description="Serve the chat UI: streamed answers, cited papers as cards, filters, model choice. "
        "Also exposes the API endpoint /answer for gradio_client.",
    )
    p.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default: 127.0.0.1).")
    p.add_argument("--port", type=int, default=7860, help="Port (default: 7860).")
    p.add_argument("--model", help="Default model: any litellm id (default: the local offline model).")
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="Answers computed at once; others queue (default: 1 for the local model, else 4).",
    )
    p.add_argument(
        "--no-preload", action="store_true", help="Do not load the models in the background at start."
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from ui.app import launch
    except ImportError as exc:
        raise ConfigError(
            f"The UI needs gradio ({exc}). Install it with: pip install -e '.[ui]'"
        ) from exc
    if args.model:
        settings.llm.model = args.model
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1.")
    print(f"rag ui: http://{args.host}:{args.port}  (Ctrl+C to stop)", flush=True)
    launch(
        settings,
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        preload=not args.no_preload,
        quiet=True,
    )
    return 0
