"""Build a synthetic home with bench/scale.py's stand-in embedder, or re-index it (the no-op), optionally
under cProfile — the measurements of docs/scale.md's "No-op re-index" section.

    .venv/bin/python bench/scale_noop.py 10000 /work/homes/noop-10k                  # build (or no-op)
    .venv/bin/python bench/scale_noop.py 10000 /work/homes/noop-10k --profile p.out  # the no-op, profiled

The corpus is bench/scale_corpus.py's (written to ``--corpora`` once). ``build_index`` runs in this process
after the imports, as in bench/scale.py's index step; one JSON line gives wall and CPU seconds and the load.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402
from scale_corpus import load_pools, write_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("papers", type=int)
    parser.add_argument("home", type=Path)
    parser.add_argument("--corpora", type=Path, default=Path("/tmp/rag-scale-corpora"))
    parser.add_argument("--profile", type=Path, help="Write cProfile stats here and print the top entries.")
    args = parser.parse_args()
    corpus = args.corpora / f"syn-{args.papers}.jsonl"
    write_corpus(corpus, args.papers, load_pools(scale.SCIFACT / "corpus.jsonl"), seed=13)
    os.environ["RAG_HOME"] = str(args.home)
    import rag.index
    from rag.settings import Settings

    scale._install_embedder("standin", scale.Clock())
    settings = Settings(home=args.home)
    profile = cProfile.Profile() if args.profile else None
    t, c = time.perf_counter(), time.process_time()
    if profile is not None:
        stats = profile.runcall(rag.index.build_index, [corpus], settings)
    else:
        stats = rag.index.build_index([corpus], settings)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(json.dumps({
        "papers": stats.papers, "chunks": stats.chunks, "embedded": stats.embedded, "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2), "load": [round(x, 2) for x in os.getloadavg()],
    }))
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
