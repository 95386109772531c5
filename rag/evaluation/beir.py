"""BEIR datasets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): indexed in their own data home and
scored per retrieval mode next to published reference numbers."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path

from rag.errors import ConfigError
from rag.evaluation import defaults
from rag.evaluation.defaults import IndexFn, SearchFn
from rag.evaluation.records import BEIR_DEPTH, BEIR_METRICS, MODES, EvalReport, ModeResult
from rag.evaluation.retrieval import check_modes, ir_metrics, ranked_ids
from rag.settings import Settings

# Published numbers (nDCG@10, Recall@100) on the BEIR test split, from /work/shared/bench/README.md.
REFERENCE: dict[str, dict[str, dict[str, float | None]]] = {
    "scifact": {
        "BM25 (BEIR paper, Elasticsearch)": {"ndcg@10": 0.665, "recall@100": 0.908},
        "BM25 (bm25s, MTEB baseline)": {"ndcg@10": 0.687, "recall@100": 0.913},
        "BM25 + MiniLM-L6 cross-encoder rerank (BEIR paper)": {"ndcg@10": 0.688, "recall@100": None},
        "all-MiniLM-L6-v2 (MTEB)": {"ndcg@10": 0.645, "recall@100": 0.925},
        "bge-small-en-v1.5 (MTEB)": {"ndcg@10": 0.713, "recall@100": 0.945},
        "gte-small (MTEB)": {"ndcg@10": 0.727, "recall@100": 0.950},
        "bge-base-en-v1.5 (MTEB)": {"ndcg@10": 0.744, "recall@100": 0.963},
    }
}


def _read_qrels(qrels_file: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(
    path: str | Path, split: str = "test"
) -> tuple[Path, dict[str, str], dict[str, dict[str, int]]]:
    """Return (corpus.jsonl path, {query id: text} for queries in the split, qrels) of a BEIR folder."""
    root = Path(path)
    corpus, queries_file, qrels_file = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / f"{split}.tsv",
    )
    for f in (corpus, queries_file, qrels_file):
        if not f.is_file():
            raise ConfigError(
                f"{f} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/<split>.tsv."
            )
    qrels = _read_qrels(qrels_file)
    queries: dict[str, str] = {}
    with queries_file.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                if str(obj["_id"]) in qrels:
                    queries[str(obj["_id"])] = obj["text"]
    missing = set(qrels) - set(queries)
    if missing:
        raise ConfigError(f"{len(missing)} query ids of qrels/{split}.tsv are not in queries.jsonl.")
    return corpus, queries, qrels


def beir_settings(settings: Settings, dataset: str, corpus: Path) -> Settings:
    """A copy of ``settings`` with its own data home (``<home>/beir/<dataset>``) and the BEIR corpus."""
    s = settings.model_copy(deep=True)
    s.home = settings.home / "beir" / dataset
    s.corpus.paths = [corpus]
    s.retrieve.parse_filters = False  # claims are not metadata queries
    return s


def run_beir_eval(
    path: str | Path,
    *,
    split: str = "test",
    modes: Sequence[str] = MODES,
    settings: Settings | None = None,
    search_fn: SearchFn | None = None,
    index_fn: IndexFn | None = None,
    limit: int | None = None,
    name: str | None = None,
) -> EvalReport:
    """Index a BEIR dataset in its own home and report nDCG@10, Recall@10/100 and MRR per mode."""
    settings = settings or Settings()
    check_modes(modes)
    root = Path(path).resolve()
    dataset = root.name
    corpus, queries, qrels = load_beir(root, split)
    if limit:
        keep = sorted(queries)[:limit]
        queries = {q: queries[q] for q in keep}
        qrels = {q: qrels[q] for q in keep}
    s = beir_settings(settings, dataset, corpus)
    (index_fn or defaults.default_index())(sources=[corpus], settings=s)
    search = search_fn or defaults.default_search()
    results: list[ModeResult] = []
    for mode in modes:
        ms = defaults.with_retrieve(s, mode=mode)
        started = time.perf_counter()
        ranked = {qid: ranked_ids(search(text, k=BEIR_DEPTH, settings=ms)) for qid, text in queries.items()}
        seconds = time.perf_counter() - started
        metrics = {"all": ir_metrics(qrels, ranked, BEIR_METRICS)}
        results.append(
            ModeResult(mode=mode, metrics=metrics, counts={"all": len(queries)}, seconds=round(seconds, 3))
        )
    stamp, created = defaults.stamp()
    return EvalReport(
        name=name or f"beir-{dataset}-{stamp}",
        created=created,
        task="beir",
        dataset=f"{dataset}/{split}",
        settings=defaults.settings_summary(s),
        modes=results,
        reference=REFERENCE.get(dataset.lower(), {}),
    )
