"""Indexing speed on BEIR SciFact: our `build_index` against a bare `SentenceTransformer.encode`.

    .venv/bin/python bench/index_speed.py                 # all 5,183 abstracts (minutes on 2 cores)
    .venv/bin/python bench/index_speed.py --limit 1000    # the first 1,000

Measures, in one process with one loaded model and a temporary RAG_HOME:
  * build_index from scratch: wall and CPU seconds, papers/s, chunks/s, peak RSS;
  * a bare ``SentenceTransformer.encode`` of exactly the chunk texts we embedded (same model, same batch
    size), so ``ratio = ours / bare`` is the pipeline's overhead (chunking, Chroma writes, BM25, files);
  * a no-op re-index (nothing changed: goal ≤ 2 s);
  * on the full corpus with a stand-in embedder (hash vectors, no model): the pipeline's own cost at
    full size (chunking, Chroma writes, BM25, files) and the no-op re-index time at full size, which
    never touches the embedder anyway (skip with ``--no-full``);
  * with ``--raw``, also a bare encode of one title+abstract text per paper (what a naive, truncating
    index would embed).
CPU seconds (user+sys of this process) are reported beside wall seconds because the machine is shared:
they are less disturbed by other work. Figures are printed and written to bench/results/index_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import PROJECT_ROOT, Settings  # noqa: E402

SCIFACT = PROJECT_ROOT.parent / "shared" / "bench" / "scifact"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


class HashEmbedder:
    """Stand-in with the Embedder interface: unit vectors from a hash of the text, no model."""

    model_id = "hash"
    dim = 384

    def encode(self, texts: list[str], *, batch_size: int | None = None, progress: bool = False):  # type: ignore[no-untyped-def]
        import hashlib

        import numpy as np

        rows = np.stack([
            np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
            .standard_normal(self.dim).astype(np.float32) for t in texts
        ])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    # late interaction: the real tokenizer's word pieces, a random vector each (rag.late needs these)
    def token_table(self):  # type: ignore[no-untyped-def]
        from rag.embed import get_embedder

        return get_embedder().token_table()

    def token_ids(self, texts):  # type: ignore[no-untyped-def]
        from rag.embed import get_embedder

        return get_embedder().token_ids(texts)

    def encode_with_tokens(self, texts, *, batch_size=None):  # type: ignore[no-untyped-def]
        import numpy as np

        rng = np.random.default_rng(0)
        pieces = [np.asarray(ids, dtype=np.int32) for ids in self.token_ids(texts)]
        tokens = [(ids, rng.standard_normal((len(ids), self.dim), np.float32)) for ids in pieces]
        return self.encode(texts), tokens


def full_size_pass(corpus: Path) -> dict[str, float]:
    """Index the whole corpus with HashEmbedder in its own home; time it and a no-op re-index."""
    import rag.index
    import rag.index_embed
    from rag.index import build_index

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="rag-bench-index-full-")))
    real = rag.index.get_embedder
    rag.index.get_embedder = lambda settings=None: HashEmbedder()  # type: ignore[assignment,misc]
    try:
        stats, wall, _ = timed(lambda: build_index([corpus], settings))
        vectors = HashEmbedder()
        texts = [c.text for c in rag.index.indexed_chunks(settings)]
        def stand_in() -> None:  # the stand-in's own cost, batch by batch as build_index calls it
            for i in range(0, len(texts), rag.index_embed.WRITE_BATCH):
                vectors.encode_with_tokens(texts[i : i + rag.index_embed.WRITE_BATCH])

        _, hash_wall, _ = timed(stand_in)
    finally:
        rag.index.get_embedder = real  # type: ignore[assignment]
    noop, noop_wall, _ = timed(lambda: build_index([corpus], settings))
    assert noop.embedded == 0, noop
    return {
        "full_papers": stats.papers,
        "full_chunks": stats.chunks,
        "full_pipeline_seconds": round(wall - hash_wall, 2),
        "full_noop_reindex_seconds": round(noop_wall, 3),
        "full_noop_inner_seconds": noop.seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="BEIR folder (default: SciFact).")
    parser.add_argument("--limit", type=int, help="Index only the first N papers.")
    parser.add_argument("--no-full", action="store_true", help="Skip the full-size pass without a model.")
    parser.add_argument("--raw", action="store_true", help="Also encode one title+abstract per paper.")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "index_speed.json")
    args = parser.parse_args()

    import numpy as np

    from rag.corpus import load_corpus
    from rag.embed import get_embedder
    from rag.index import build_index, indexed_chunks
    from rag.store import Store

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    home = Path(tempfile.mkdtemp(prefix="rag-bench-index-"))
    settings = Settings(home=home)

    papers, load_wall, _ = timed(lambda: load_corpus([args.corpus], settings=settings))
    sources: object = [args.corpus]
    if args.limit:
        papers = papers[: args.limit]
        sources = papers
    embedder, model_wall, _ = timed(lambda: get_embedder(settings))
    rss_model = peak_rss_mb()
    print(f"{len(papers)} papers from {args.corpus} (parsed in {load_wall:.2f} s); model loaded in "
          f"{model_wall:.2f} s; load average {load_before[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    full: dict[str, float] = {}
    if not args.no_full:
        full = full_size_pass(args.corpus)
        print(f"full size without a model: {full['full_papers']} papers, {full['full_chunks']} chunks: "
              f"pipeline {full['full_pipeline_seconds']:.1f} s (chunking, Chroma, BM25, files; no vectors "
              f"computed), no-op re-index {full['full_noop_reindex_seconds']:.2f} s", flush=True)

    stats, ours_wall, ours_cpu = timed(lambda: build_index(sources, settings, progress=True))
    rss_ours = peak_rss_mb()
    print(f"build_index: {stats.papers} papers, {stats.chunks} chunks in {ours_wall:.1f} s "
          f"({stats.papers / ours_wall:.1f} papers/s, CPU {ours_cpu:.1f} s), peak RSS {rss_ours:.0f} MB",
          flush=True)

    noop, noop_wall, _ = timed(lambda: build_index(sources, settings))
    assert noop.embedded == 0, noop
    print(f"no-op re-index: {noop_wall:.2f} s (embedded {noop.embedded})", flush=True)

    store = Store.open(settings)
    chunks = indexed_chunks(settings)
    texts = [c.text for c in chunks]
    model = embedder.model
    bare, bare_wall, bare_cpu = timed(
        lambda: model.encode(texts, batch_size=settings.index.embed_batch_size,
                             normalize_embeddings=True, convert_to_numpy=True)
    )
    print(f"bare encode of the same {len(texts)} chunk texts: {bare_wall:.1f} s (CPU {bare_cpu:.1f} s)",
          flush=True)
    sample = list(range(0, len(chunks), max(1, len(chunks) // 200)))
    got = store.collection.get(ids=[chunks[i].id for i in sample], include=["embeddings"])
    stored = dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))
    cosines = [float(np.dot(stored[chunks[i].id], bare[i])) for i in sample]

    raw: dict[str, float] = {}
    if args.raw:
        raw_texts = [f"{p.title}\n\n{p.abstract}".strip() for p in papers]
        _, raw_wall, raw_cpu = timed(
            lambda: model.encode(raw_texts, batch_size=settings.index.embed_batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True)
        )
        raw = {"raw_encode_seconds": round(raw_wall, 2), "raw_encode_cpu_seconds": round(raw_cpu, 2),
               "raw_papers_per_second": round(len(raw_texts) / raw_wall, 2)}
        print(f"bare encode of {len(raw_texts)} title+abstract texts (truncated at "
              f"{embedder.max_seq_length} word pieces): {raw_wall:.1f} s", flush=True)

    result = {
        "started": started,
        "corpus": str(args.corpus),
        "papers": stats.papers,
        "chunks": stats.chunks,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "chunk_overlap_sentences": settings.index.chunk_overlap_sentences,
        "embed_model": settings.index.embed_model,
        "embed_backend": settings.index.embed_backend,
        "batch_size": settings.index.embed_batch_size,
        "model_load_seconds": round(model_wall, 2),
        "index_seconds": round(ours_wall, 2),
        "index_cpu_seconds": round(ours_cpu, 2),
        "papers_per_second": round(stats.papers / ours_wall, 2),
        "chunks_per_second": round(stats.chunks / ours_wall, 2),
        "bare_encode_seconds": round(bare_wall, 2),
        "bare_encode_cpu_seconds": round(bare_cpu, 2),
        "ratio_wall": round(ours_wall / bare_wall, 3),
        "ratio_cpu": round(ours_cpu / bare_cpu, 3),
        "noop_reindex_seconds": round(noop_wall, 3),
        "stored_vs_bare_min_cosine": round(min(cosines), 6),
        "peak_rss_mb_after_model_load": round(rss_model),
        "peak_rss_mb_after_index": round(rss_ours),
        **raw,
        **full,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
