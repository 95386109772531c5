"""`rag eval` (not built yet)."""

from __future__ import annotations

import argparse
from typing import Any

from rag.errors import RagError
from rag.settings import Settings


def add_parser(sub: Any) -> None:
    sub.add_parser("eval", help="(not built yet)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise RagError("`rag eval` is not built yet.")
