"""docs/scale.md's measured table and docs/scale.png from bench/scale.py's results.

    .venv/bin/python bench/scale_report.py bench/results/scale-*.json

Runs with the stand-in embedder give the pipeline's cost per size; a run with the real model gives the
encoder's seconds per chunk, from which the model's time at every size is derived (chunks × that rate).
The 1M column is projected from the two largest stand-in sizes by a straight line through them
(cost = a + b·papers), not measured; the add ratio at 1M uses the projected add and the largest size's
"alone" and model time. The table replaces the text between ``<!-- scale:begin -->`` and
``<!-- scale:end -->`` in docs/scale.md (printed when the markers are missing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "scale.md"
PLOT = ROOT / "docs" / "scale.png"
PROJECT_TO = 1_000_000
NOT_PROJECTED = {"query_encoder_ms", "add_ratio_real", "alone_s", "added_encoder_s"}
"""The question's encoder and indexing 1,000 papers alone do not depend on the corpus size; the add ratio is
recomputed from the projected add. (Search latencies are projected: runs on a loaded machine, where the
question's encoder alone took 0.7–2.4 s, make that line meaningless; compare the machine state.)"""
COMPONENTS = ("chroma", "bm25", "late", "records", "manifest")


def metrics(run: dict[str, Any], encoder_per_chunk: float | None) -> dict[str, float | None]:
    """The figures of one run, as plain numbers (None: not measured)."""
    n = run["papers"]
    index = run["index"]
    out: dict[str, float | None] = {
        "papers": n,
        "chunks": index["chunks"],
        "pipeline_s": index["pipeline_s"],
        "encoder_s": index["encoder_s"] if run["embedder"] == "real" else None,
        "index_rss_mb": index["peak_rss_mb"],
        "noop_s": run["noop"]["wall_s"],
        "noop_again_s": (run.get("noop_again") or {}).get("wall_s"),
        "disk_kb": run["disk"]["total"] / n / 1000,
    }
    for part in COMPONENTS:
        out[f"disk_{part}_kb"] = run["disk"][part] / n / 1000
    serve = run.get("serve") or {}
    out.update({
        "p50_ms": serve.get("p50_ms"),
        "p95_ms": serve.get("p95_ms"),
        "query_encoder_ms": serve.get("query_encoder_mean_ms"),
        "serve_rss_mb": serve.get("peak_rss_mb"),
    })
    steps = serve.get("anon_mb_by_step") or {}
    if steps:  # the process's own memory; Chroma's step is its HNSW, which a Chroma server holds instead
        peak = max(steps.values())
        chroma = steps["chroma"] - steps["imports"]
        out.update({"serve_anon_mb": peak, "chroma_hnsw_mb": chroma, "serve_app_mb": peak - chroma})
    add, alone = run.get("add"), run.get("alone")
    out["add_s"] = add["pipeline_s"] if add else None
    out["alone_s"] = alone["pipeline_s"] if alone else None
    if encoder_per_chunk is not None and out["encoder_s"] is None:
        out["encoder_s"] = index["chunks"] * encoder_per_chunk  # the real model's time for these chunks
    if add and alone and encoder_per_chunk is not None:
        added_enc = alone["embedded"] * encoder_per_chunk
        out["added_encoder_s"] = added_enc
        out["add_ratio_real"] = (add["pipeline_s"] + added_enc) / (alone["pipeline_s"] + added_enc)
    out["pipeline_share"] = (
        out["pipeline_s"] / out["encoder_s"] if out["encoder_s"] else None  # type: ignore[operator]
    )
    return out


def project(rows: list[dict[str, float | None]], n: int) -> dict[str, float | None]:
    """Each figure at ``n`` papers on the line through the two largest measured sizes."""
    a, b = rows[-2], rows[-1]
    out: dict[str, float | None] = {"papers": n}
    for key in a:
        if key == "papers":
            continue
        ya, yb = a.get(key), b.get(key)
        if ya is None or yb is None or key in NOT_PROJECTED:
            out[key] = None
            continue
        per_paper = key.endswith("_kb")  # projected as totals, then divided again
        if per_paper:
            ya, yb = ya * a["papers"], yb * b["papers"]  # type: ignore[operator]
        slope = (yb - ya) / (b["papers"] - a["papers"])  # type: ignore[operator]
        out[key] = yb + slope * (n - b["papers"])  # type: ignore[operator]
        if per_paper:
            out[key] /= n  # type: ignore[operator]
    enc, pipe = out.get("encoder_s"), out.get("pipeline_s")
    out["pipeline_share"] = pipe / enc if enc and pipe is not None else None
    added, alone, add = b.get("added_encoder_s"), b.get("alone_s"), out.get("add_s")
    if added is not None and alone is not None and add is not None:
        out["add_ratio_real"] = (add + added) / (alone + added)
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


ROWS = [  # (label, key, digits)
    ("chunks", "chunks", 0),
    ("indexing without the model, s", "pipeline_s", 1),
    ("real MiniLM encoder, s (measured, or chunks × measured s/chunk)", "encoder_s", 0),
    ("pipeline ÷ encoder (goal ≤ 0.10)", "pipeline_share", 3),
    ("peak RSS while indexing, MB", "index_rss_mb", 0),
    ("disk, KB per paper, all-in (goal ≤ 30)", "disk_kb", 1),
    *[(f"· {part}, KB per paper", f"disk_{part}_kb", 2) for part in COMPONENTS],
    ("hybrid search p50, ms, k=10 (goal ≤ 100)", "p50_ms", 0),
    ("hybrid search p95, ms", "p95_ms", 0),
    ("· of which the question's encoder, ms (mean)", "query_encoder_ms", 0),
    ("peak RSS while serving, MB (goal ≤ 4,096)", "serve_rss_mb", 0),
    ("· anonymous memory while serving, MB (embedded Chroma)", "serve_anon_mb", 0),
    ("· · of which Chroma's HNSW index, MB", "chroma_hnsw_mb", 0),
    ("· the search process with Chroma as a server, MB anonymous", "serve_app_mb", 0),
    ("add 1,000 papers to the index, s (no model)", "add_s", 1),
    ("index those 1,000 alone, s (no model)", "alone_s", 1),
    ("add ÷ alone with the real model's time (goal ≤ 2)", "add_ratio_real", 2),
    ("no-op re-index, s (goal ≤ 5)", "noop_s", 2),
    ("· the next no-op (Chroma not opened), s", "noop_again_s", 2),
]


def table(columns: list[tuple[str, dict[str, float | None]]]) -> str:
    head = "| | " + " | ".join(name for name, _ in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for label, key, digits in ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt(col.get(key), digits) for _, col in columns) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, float | None]], projected: dict[str, float | None] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    series = [
        ("indexing without the model (s)", "pipeline_s"),
        ("real encoder (s, derived)", "encoder_s"),
        ("disk (MB)", "disk_mb"),
        ("serving peak RSS (MB)", "serve_rss_mb"),
        ("hybrid p50 (ms)", "p50_ms"),
        ("no-op re-index (s)", "noop_s"),
    ]
    for row in [*rows, *([projected] if projected else [])]:
        row["disk_mb"] = row["disk_kb"] * row["papers"] / 1000 if row.get("disk_kb") else None  # type: ignore[operator]
    for label, key in series:
        xs = [r["papers"] for r in rows if r.get(key)]
        ys = [r[key] for r in rows if r.get(key)]
        if not xs:
            continue
        (line,) = ax.plot(xs, ys, "o-", label=label)
        if projected and projected.get(key):
            ax.plot([xs[-1], projected["papers"]], [ys[-1], projected[key]], "--", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("papers (dashed: projected to 1M)")
    ax.set_title("rag: cost with corpus size (stand-in embedder; encoder derived from real MiniLM)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main(paths: list[str]) -> int:
    runs = [run for path in paths for run in json.loads(Path(path).read_text(encoding="utf-8"))["runs"]]
    real = [r for r in runs if r["embedder"] == "real"]
    per_chunk = real[-1]["index"]["encoder_s"] / real[-1]["index"]["chunks"] if real else None
    columns = [(f"{r['papers']:,} real", metrics(r, per_chunk)) for r in real]
    standin = sorted((r for r in runs if r["embedder"] == "standin"), key=lambda r: r["papers"])
    rows = [metrics(r, per_chunk) for r in standin]
    columns += [(f"{int(m['papers'] or 0):,}", m) for m in rows]
    projected = project(rows, PROJECT_TO) if len(rows) >= 2 and rows[-1]["papers"] < PROJECT_TO else None  # type: ignore[operator]
    if projected:
        columns.append(("1,000,000 (projected)", projected))
    text = table(columns)
    if rows:
        plot(rows, projected)
    doc = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        DOC.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")
        print(f"updated {DOC} and {PLOT}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
