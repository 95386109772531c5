"""A `rag index` in its own process for tests/test_writers.py: ``build_index`` over ``papers(N)`` (from
test_index) with the fake embedder, optionally slowed down per batch, printing its IndexStats as JSON.

    python tests/index_worker.py HOME N [--delay S] [--marker FILE] [--hold FILE] [--no-wait] [--variant V]

``--marker`` is created once the first batch is written (the test then knows the writer is mid-run), and
with ``--hold`` the writer then waits until that file exists (the test decides when it goes on);
``--variant`` changes every abstract (so the run re-embeds everything). Errors print the rag message and
exit 2, as the CLI does.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from test_index import FakeEmbedder, papers

import rag.index
import rag.index_embed
from rag.errors import RagError
from rag.index import build_index
from rag.settings import Settings


class SlowEmbedder(FakeEmbedder):
    def __init__(self, delay: float, marker: Path | None, hold: Path | None) -> None:
        super().__init__()
        self.delay = delay
        self.marker = marker
        self.hold = hold

    def encode_with_tokens(self, texts, *, batch_size=None):  # type: ignore[no-untyped-def]
        if self.marker is not None and self.calls == 1:
            self.marker.touch()  # the first batch has been written
            while self.hold is not None and not self.hold.exists():
                time.sleep(0.05)
        time.sleep(self.delay)
        return super().encode_with_tokens(texts, batch_size=batch_size)


def corpus(n: int, variant: str) -> list:  # type: ignore[type-arg]
    out = papers(n, long={1})
    if variant:
        out = [p.model_copy(update={"abstract": f"{p.abstract} {variant}."}) for p in out]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("n", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--marker")
    parser.add_argument("--hold")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--variant", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    embedder = SlowEmbedder(
        args.delay, Path(args.marker) if args.marker else None, Path(args.hold) if args.hold else None
    )
    rag.index.get_embedder = lambda settings=None: embedder  # type: ignore[assignment]
    rag.index_embed.WRITE_BATCH = 4
    try:
        settings = Settings(home=Path(args.home))
        stats = build_index(corpus(args.n, args.variant), settings, wait=not args.no_wait)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(stats.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
