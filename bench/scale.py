"""The cost curve of `rag index` and `rag search` with corpus size (issue 13), on synthetic corpora.

    .venv/bin/python bench/scale.py --sizes 10000,100000          # stand-in embedder (no model)
    .venv/bin/python bench/scale.py --sizes 10000 --real 1000     # and the real MiniLM on 1,000 papers
    .venv/bin/python bench/scale.py --sizes 300 --extra 100 --queries 5 --out /tmp/x.json   # smoke

Corpora come from bench/scale_corpus.py (SciFact's titles and sentences recombined, deterministic, JSON
lines). Each size is indexed through the real pipeline (``rag.index.build_index``) in a temporary RAG_HOME,
every step in its own process so its peak RSS is its own:

* ``index``  — build from scratch; wall seconds, the embedder's seconds (timed inside the process), the
  pipeline's steps (parse, chunk, Chroma reads and writes, BM25, late store), peak RSS;
* disk bytes per paper by component: ``chroma/`` (vectors, texts, metadata), ``bm25/``, ``late/``,
  records (``papers.jsonl`` and ``records.npz``), ``manifest.json``, the rest;
* ``noop``   — the same sources again (nothing to do);
* ``serve``  — open the index and run hybrid searches at k=10 (SciFact test questions), warm: p50, p95,
  the first search (opening included), peak RSS, and the anonymous memory after each step of opening
  (Chroma's HNSW, the records, BM25, late/, the query encoder) and after the searches: what a search
  process holds when Chroma runs as a server is everything but the Chroma step;
* ``add``    — the same home with ``--extra`` more papers (a second file) vs those papers ``alone`` in a
  fresh home.

The stand-in embedder (``--embedder standin``, the default for ``--sizes``) sits behind the embedder
interface: it tokenises with the model's own tokenizer and gives each word piece a fixed random unit vector
(pooled vector: their normalised mean), so Chroma, BM25 and the late store get vectors of the right shape
and count with no model cost. The product always uses the real model. ``--real N`` indexes the first N
papers with the real MiniLM to measure the encoder's time per chunk, from which the model's share at every
size is derived. The query side always uses the real (numpy) MiniLM query encoder.

Writes bench/results/scale.json (``--out``); ``bench/scale_report.py`` turns it into docs/scale.md's table
and plot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_corpus import load_pools, write_corpus  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "bench" / "scifact"
RESULTS = ROOT / "bench" / "results" / "scale.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ------------------------------------------------------------------------------ the stand-in embedder
class StandInEmbedder:
    """The :class:`rag.embed.Embedder` interface without a model: the model's tokenizer, and a fixed random
    unit vector per vocabulary id as every word piece's contextual vector (the pooled vector is their
    normalised mean, so texts sharing words get close vectors, as with a model)."""

    model_id = "standin"

    def __init__(self, model_folder: Path, dim: int = 384, max_len: int = 256, seed: int = 0) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(model_folder / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_len)
        self.dim, self.max_seq_length, self.batch_size = dim, max_len, 64
        rng = np.random.default_rng(seed)
        table = rng.standard_normal((self.tok.get_vocab_size(), dim)).astype(np.float32)
        self.table = table / np.linalg.norm(table, axis=1, keepdims=True)

    def token_ids(self, texts: Any) -> list[list[int]]:
        return [list(e.ids) for e in self.tok.encode_batch(list(texts))]

    def count_tokens(self, texts: Any) -> list[int]:
        return [len(ids) for ids in self.token_ids(texts)]

    def token_table(self) -> tuple[list[str], list[int]]:
        vocab = [""] * self.tok.get_vocab_size()
        for piece, i in self.tok.get_vocab().items():
            vocab[i] = piece
        special = [self.tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
        return vocab, [i for i in special if i is not None]

    def encode_with_tokens(self, texts: Any, *, batch_size: int | None = None) -> tuple[Any, list[Any]]:
        import numpy as np

        tokens = []
        pooled = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, ids in enumerate(self.token_ids(texts)):
            arr = np.asarray(ids, dtype=np.int32)
            vecs = self.table[arr]
            mean = vecs.mean(axis=0)
            pooled[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            tokens.append((arr, vecs))
        return pooled, tokens

    def encode(self, texts: Any, *, batch_size: int | None = None, progress: bool = False) -> Any:
        return self.encode_with_tokens(texts)[0]

    def encode_query(self, text: str) -> Any:
        return self.encode([text])[0]

    def encode_query_with_tokens(self, text: str) -> tuple[Any, Any, Any]:
        pooled, tokens = self.encode_with_tokens([text])
        return pooled[0], tokens[0][0], tokens[0][1]


# ------------------------------------------------------------------------------------- the workers
class Clock:
    """Seconds spent inside named functions (patched in place; a name that is gone is skipped), and with
    ``sample_rss()`` running, the highest resident set size seen while each was running (the innermost)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # process CPU seconds (all threads): less moved by a loaded machine
        self.active: list[str] = []
        self.rss_mb: dict[str, dict[str, float]] = {}

    def sample_rss(self, every: float = 0.05) -> threading.Event:
        """Sample the resident set in a thread every ``every`` seconds, until the returned event is set:
        its anonymous part (heap: what must fit in memory) and its file-backed part (memory-mapped files,
        e.g. ``late/`` being read and written, which the kernel can write back and drop), in MB."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every):
                lines = Path("/proc/self/status").read_text().splitlines()
                fields = dict(line.split(":", 1) for line in lines if ":" in line)
                label = self.active[-1] if self.active else "other"
                for key, name in (("RssAnon", "anon"), ("RssFile", "file")):
                    mb = int(fields.get(key, "0 kB").split()[0]) / 1024
                    peaks = self.rss_mb.setdefault(name, {})
                    peaks[label] = max(peaks.get(label, 0.0), mb)

        threading.Thread(target=run, daemon=True).start()
        return stop

    def wrap(self, owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name, None)
        if fn is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            self.active.append(label)
            try:
                return fn(*args, **kwargs)
            finally:
                self.active.pop()
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c

        setattr(owner, name, timed)


def _install_embedder(kind: str, clock: Clock) -> None:
    """Route every ``rag.embed.get_embedder`` to the stand-in (or the real model), its encoding timed."""
    import rag.embed

    if kind == "standin":
        stand_in = StandInEmbedder(Path(rag.embed.resolve_model(rag.embed.DEFAULT_EMBED_MODEL)))
        rag.embed.load_embedder = lambda *a, **k: stand_in  # type: ignore[assignment]
    embedder = rag.embed.get_embedder()  # the instance build_index will get (settings from the env)
    for name in ("encode", "encode_with_tokens"):  # the model's forward pass; tokenising for idf is not
        clock.wrap(embedder, name, "encoder")


def work_index(spec: dict[str, Any]) -> dict[str, Any]:
    import rag.chunk
    import rag.index
    import rag.index_add
    import rag.index_incremental
    import rag.lexical
    import rag.store

    clock = Clock()
    _install_embedder(spec["embedder"], clock)
    for owner, name, label in [
        (rag.index, "_load_papers", "parse"),
        (rag.index, "chunk_with_settings", "chunk"),
        (rag.chunk, "chunk_with_settings", "chunk"),  # through rag.chunk.chunks_in_order
        (rag.index_incremental, "chunk_with_settings", "chunk"),
        (rag.index_add, "_read_new", "parse"),  # an add reads only the new files (rag.index_add)
        (rag.index_add, "chunk_with_settings", "chunk"),
        (rag.index, "consolidate", "late store"),
        (rag.lexical, "build_lexical_index", "bm25"),
        (rag.lexical, "extend_lexical_index", "bm25"),
        (rag.store.Store, "upsert", "chroma upsert"),
        (rag.store.Store, "chunk_states", "chroma read states"),
        (rag.store.Store, "delete", "chroma delete"),
    ]:
        clock.wrap(owner, name, label)
    settings = settings_for(spec)
    sampling = clock.sample_rss()
    t, c = time.perf_counter(), time.process_time()
    stats = rag.index.build_index([Path(p) for p in spec["sources"]], settings)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    sampling.set()
    encoder = clock.seconds.pop("encoder", 0.0)
    encoder_cpu = clock.cpu.pop("encoder", 0.0)
    return {
        "wall_s": round(wall, 3),
        "encoder_s": round(encoder, 3),
        "pipeline_s": round(wall - encoder, 3),
        "cpu_s": round(cpu, 3),
        "encoder_cpu_s": round(encoder_cpu, 3),
        "pipeline_cpu_s": round(cpu - encoder_cpu, 3),
        "steps_s": {k: round(v, 3) for k, v in sorted(clock.seconds.items())},
        "papers": stats.papers,
        "chunks": stats.chunks,
        "embedded": stats.embedded,
        "unchanged": stats.unchanged,
        "peak_rss_mb": round(peak_rss_mb()),
        "peak_rss_mb_by_step": {
            kind: {k: round(v) for k, v in sorted(peaks.items())} for kind, peaks in clock.rss_mb.items()
        },
    }


def settings_for(spec: dict[str, Any]) -> Any:
    """The home's settings, with ``index.dense_dims`` when the run asks for it (--dense-dims)."""
    from rag.settings import Settings

    dims = spec.get("dense_dims")
    return Settings(home=Path(spec["home"]), **({"index": {"dense_dims": dims}} if dims else {}))


def anon_mb() -> float:
    """This process's anonymous resident memory (its own heap, not file pages mapped from the index)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def work_serve(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from rag.corpus_identity import BM25_DIR
    from rag.late import get_late_index
    from rag.lexical import get_lexical_index
    from rag.query_encoder import get_query_encoder
    from rag.retrieve import search
    from rag.store import Store

    settings = settings_for(spec)
    queries = spec["queries"]
    steps: dict[str, float] = {"imports": anon_mb()}  # anonymous MB after each step of opening the index
    t = time.perf_counter()
    store = Store.open(settings)
    store.count()
    steps["chroma"] = anon_mb()  # embedded Chroma loads its HNSW index (vectors + graph) here
    store.papers()
    steps["records"] = anon_mb()  # ids, offsets, metadata columns, author lexicon (rag.records)
    get_lexical_index(store.folder / BM25_DIR)
    steps["bm25"] = anon_mb()
    get_late_index(store.folder)
    steps["late"] = anon_mb()
    clock = Clock()  # the question's forward pass (real MiniLM, numpy), part of every search
    clock.wrap(get_query_encoder(settings), "encode_query_with_tokens", "query encoder")
    steps["query encoder"] = anon_mb()
    first = search(queries[0], k=10, settings=settings, mode="hybrid")
    first_s = time.perf_counter() - t
    steps["first search"] = anon_mb()
    for q in queries[1:4]:  # warm: caches, mmaps, the query encoder
        search(q, k=10, settings=settings, mode="hybrid")
    times, counts = [], []
    clock.seconds.clear()
    for q in queries:
        t = time.perf_counter()
        hits = search(q, k=10, settings=settings, mode="hybrid")
        times.append(time.perf_counter() - t)
        counts.append(len(hits))
    ms = np.asarray(times) * 1000
    return {
        "queries": len(times),
        "first_search_s": round(first_s, 3),
        "first_hits": len(first),
        "min_hits": min(counts),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "query_encoder_mean_ms": round(1000 * clock.seconds.get("query encoder", 0.0) / len(times), 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "anon_mb_by_step": {**{k: round(v) for k, v in steps.items()}, "searches": round(anon_mb())},
    }


def run_worker(kind: str, spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """One step in a fresh process (its peak RSS is the step's own)."""
    spec_path = scratch / "spec.json"
    out_path = scratch / "out.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_HOME": spec["home"]}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(spec_path), str(out_path)], env=env, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"the {kind} step failed (exit {proc.returncode}); see its output above.")
    result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


# -------------------------------------------------------------------------------------- measuring
def disk_bytes(home: Path) -> dict[str, int]:
    """Bytes under ``home/index`` by component."""
    out = {"chroma": 0, "bm25": 0, "late": 0, "records": 0, "manifest": 0, "other": 0}
    for path in (home / "index").rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(home / "index").parts
        size = path.stat().st_size
        if rel[0] == "chroma":
            key = "chroma"
        elif len(rel) > 1 and rel[1] in ("bm25", "late"):
            key = rel[1]
        elif rel[-1] in ("papers.jsonl", "records.npz"):  # the records and what search derives from them
            key = "records"
        elif rel[-1] == "manifest.json":
            key = "manifest"
        else:
            key = "other"
        out[key] += size
    out["total"] = sum(out.values())
    return out


def load_queries(n: int) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    return texts[:n]


def measure_size(n: int, args: argparse.Namespace, corpora: Path, pools: Any) -> dict[str, Any]:
    base = write_corpus(corpora / f"syn-{n}.jsonl", n, pools, seed=args.seed)
    extra = write_corpus(corpora / f"add-{args.extra}.jsonl", args.extra, pools, seed=args.seed, prefix="add")
    scratch = Path(tempfile.mkdtemp(prefix=f"rag-scale-{n}-", dir=args.work))
    home, alone = scratch / "home", scratch / "alone"
    kind = args.embedder
    row: dict[str, Any] = {"papers": n, "embedder": kind, "dense_dims": args.dense_dims}
    dims = {"dense_dims": args.dense_dims}
    print(f"== {n:,} papers ({kind} embedder), home {home}", flush=True)
    same = {"home": str(home), "sources": [str(base)], "embedder": kind, **dims}
    row["index"] = run_worker("index", same, scratch)
    print(f"   index: {row['index']}", flush=True)
    row["disk"] = disk_bytes(home)
    row["disk_per_paper"] = {k: round(v / n) for k, v in row["disk"].items()}
    print(f"   disk per paper: {row['disk_per_paper']}", flush=True)
    row["noop"] = run_worker("index", same, scratch)
    # the first no-op after a build may count the collection (Chroma can rewrite its files when it next
    # opens, rag.index_fastpath); the second shows the steady state
    row["noop_again"] = run_worker("index", same, scratch)
    print(f"   no-op: {row['noop']['wall_s']} s, again {row['noop_again']['wall_s']} s", flush=True)
    if not args.no_serve:
        queries = load_queries(args.queries)
        row["serve"] = run_worker("serve", {"home": str(home), "queries": queries, **dims}, scratch)
        print(f"   serve: {row['serve']}", flush=True)
    if args.extra and not args.no_add:
        both = [str(base), str(extra)]
        row["add"] = run_worker("index", {**same, "sources": both}, scratch)
        row["alone"] = run_worker("index", {**same, "home": str(alone), "sources": [str(extra)]}, scratch)
        print(f"   add {args.extra}: {row['add']['wall_s']} s; alone: {row['alone']['wall_s']} s", flush=True)
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10000", help="Corpus sizes, comma-separated (default 10000).")
    parser.add_argument("--embedder", choices=("standin", "real"), default="standin",
                        help="Embedder for --sizes (default: the stand-in).")
    parser.add_argument("--real", type=int, default=0, help="Also index N papers with the real model.")
    parser.add_argument("--extra", type=int, default=1000, help="Papers added to the built index (0: skip).")
    parser.add_argument("--queries", type=int, default=60, help="Timed hybrid searches per size.")
    parser.add_argument("--no-serve", action="store_true", help="Skip the search step.")
    parser.add_argument("--no-add", action="store_true", help="Skip the add/alone steps.")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--work", type=Path, default=None, help="Corpora and homes (default: tmp).")
    parser.add_argument("--keep", action="store_true", help="Keep the homes.")
    parser.add_argument("--dense-dims", type=int, default=None,
                        help="Index with index.dense_dims (vectors reduced in Chroma; rag.dense_projection).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        kind, spec_path, out_path = args.worker
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        result = work_index(spec) if kind == "index" else work_serve(spec)
        Path(out_path).write_text(json.dumps(result), encoding="utf-8")
        return 0

    work = args.work or Path(tempfile.gettempdir())
    corpora = work / "rag-scale-corpora"
    pools = load_pools(SCIFACT / "corpus.jsonl")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    if args.real:
        real_args = argparse.Namespace(**{**vars(args), "embedder": "real", "no_add": True})
        runs.append(measure_size(args.real, real_args, corpora, pools))
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        runs.append(measure_size(n, args, corpora, pools))
    result = {
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extra": args.extra,
        "runs": runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
