"""Parse rate of the arXiv metadata snapshot reader (rag.sources.arxiv): records/s and peak RSS.

    .venv/bin/python bench/parse_arxiv.py                       # 200,000 records, plain and .gz
    .venv/bin/python bench/parse_arxiv.py --records 50000 --sizes 10000,50000
    .venv/bin/python bench/parse_arxiv.py --sizes "" --rounds 3 --tree /tmp/before  # alternating

Generates a synthetic snapshot in a temporary folder (the real file's fields and shapes: ``id``,
``submitter``, ``authors``, ``title`` with line breaks, ``comments``, ``journal-ref``, ``doi``,
``categories``, ``license``, ``abstract`` of ~1,000 characters, ``versions``, ``update_date``,
``authors_parsed``), then, each in a fresh child process so that its peak RSS is its own, reads it with
``snapshot_records`` (the streaming generator ``rag index`` uses) without keeping the papers: records,
seconds (wall and CPU), records/s, peak RSS and the machine's 1-minute load average after the read.
The smaller ``--sizes`` show whether memory is flat in the file size (goal: ≥ 20,000 records/s, the
same peak RSS at every size). Figures are printed and written to bench/results/parse_arxiv.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "we propose a method for learning robust representations of neural networks under distribution "
    "shift and show that sharpness adversarial training generalization improves the accuracy of deep "
    "models on benchmark datasets while reducing the computational cost of inference in practice"
).split()
CATS = ["cs.LG", "stat.ML", "cs.CV", "cs.CL", "math.OC", "hep-th", "q-bio.NC", "cs.AI"]
FAMILIES = ["Müller", "Smith", "Wang", "Andriushchenko", "García-López", "O'Brien", "Li", "Kumar", "Dubois"]
GIVEN = ["Anna", "Wei", "Maksym", "José", "Siobhán", "Priya", "Jean-Luc", "Kim"]


def record(i: int, rng: random.Random) -> dict[str, object]:
    n_authors = rng.randint(1, 8)
    parsed = [[rng.choice(FAMILIES), rng.choice(GIVEN), ""] for _ in range(n_authors)]
    title_words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
    title = " ".join(title_words[:6]).title() + "\n  " + " ".join(title_words[6:])
    abstract = " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 200)))
    year = 2007 + i % 18
    return {
        "id": f"{year % 100:02d}{1 + i % 12:02d}.{i:05d}",
        "submitter": f"{parsed[0][1]} {parsed[0][0]}",
        "authors": ", ".join(f"{g} {f}" for f, g, _ in parsed),
        "title": title,
        "comments": "12 pages, 3 figures",
        "journal-ref": None if i % 3 else "J. Imag. Res. 1 (2020) 1-10",
        "doi": None if i % 4 else f"10.1000/jir.{i}",
        "report-no": None,
        "categories": " ".join(rng.sample(CATS, rng.randint(1, 3))),
        "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
        "abstract": "  " + "\n".join(abstract[k : k + 80] for k in range(0, len(abstract), 80)) + "\n",
        "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
        "update_date": f"{year}-05-23",
        "authors_parsed": parsed,
    }


def generate(path: Path, n: int) -> None:
    rng = random.Random(0)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        for i in range(n):
            fh.write(json.dumps(record(i, rng), ensure_ascii=False) + "\n")


def measure(path: Path) -> dict[str, float]:
    """Read the file in this process; the caller runs this in a fresh child process."""
    from rag.sources.arxiv import snapshot_records

    t0, c0 = time.perf_counter(), time.process_time()
    papers = problems = 0
    for rec in snapshot_records(path):
        if hasattr(rec, "title"):
            papers += 1
        else:
            problems += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    return {"records": papers, "problems": problems, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "records_per_s": round(papers / wall), "records_per_cpu_s": round(papers / cpu),
            "peak_rss_mib": round(rss, 1)}


def child(path: Path, tree: Path | None = None) -> dict[str, float]:
    script = tree / "bench" / "parse_arxiv.py" if tree else Path(__file__)
    proc = subprocess.run([sys.executable, str(script), "--measure", str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--sizes", default="20000,50000", help="Smaller sizes for the memory check.")
    ap.add_argument("--tree", type=Path, help="Another checkout, read the same files in alternation.")
    ap.add_argument("--rounds", type=int, default=1, help="Reads of each file (alternating with --tree).")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [*(int(s) for s in args.sizes.split(",") if s), args.records]:
            for suffix in (".json", ".json.gz"):
                path = Path(tmp) / f"arxiv-{n}{suffix}"
                generate(path, n)
                for _ in range(args.rounds):
                    for tree in (None, args.tree) if args.tree else (None,):
                        row = {"file": path.name, "tree": str(tree or ROOT),
                               "mib": round(path.stat().st_size / 2**20, 1), **child(path, tree),
                               "load": round(os.getloadavg()[0], 2)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                path.unlink()
    out = Path(__file__).resolve().parent / "results" / "parse_arxiv.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
