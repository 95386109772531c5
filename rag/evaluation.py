"""The evaluation runner behind `rag eval`: retrieval metrics per question kind and retrieval mode,
BEIR datasets with published reference numbers, answer-level metrics, and JSON/Markdown reports.

Metrics are computed with ranx (``Qrels``/``Run``/``evaluate``). ranx needs at least one relevant
document per query, so questions of kind ``absent`` (expected ``[]``) are left out of the IR metrics
and reported instead as an abstention figure: the share of them for which ``search`` says
``good_match`` is False.

The search and answer functions are injectable (``search_fn=``, ``answer_fn=``, ``index_fn=``) so the
runner can be tested with fakes; by default they are ``rag.retrieve.search``, ``rag.pipeline.answer``
and ``rag.index.build_index``.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from rag.errors import ConfigError, LLMError, RagError
from rag.settings import PROJECT_ROOT, Settings
from rag.types import Answer, Hits, Record

KINDS = ("single", "multi", "meta", "absent")
MODES = ("bm25", "dense", "hybrid")
SEED_METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
BEIR_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")
SEED_DEPTH = 20  # hits fetched per question on the seeds (MRR is computed over these)
BEIR_DEPTH = 100
MAX_LEADING_ERRORS = 3  # `--answers` stops when the first answers all fail (no model, bad key)

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

SearchFn = Callable[..., Hits]
AnswerFn = Callable[..., Answer]
IndexFn = Callable[..., Any]


# ---------------------------------------------------------------------------------------------- records
class Question(Record):
    id: str
    question: str
    expected: list[str] = Field(default_factory=list, description="Paper ids that answer it; [] for absent.")
    kind: str
    note: str | None = None


class QuestionResult(Record):
    id: str
    kind: str
    question: str
    expected: list[str]
    retrieved: list[str] = Field(description="Paper ids, best first (up to the fetch depth).")
    good_match: bool = True
    first_rank: int | None = Field(None, description="1-based rank of the first expected paper.")
    failed: bool = False


class ModeResult(Record):
    mode: str
    metrics: dict[str, dict[str, float]] = Field(description="kind (or 'all') → metric → value.")
    counts: dict[str, int] = Field(default_factory=dict, description="Questions per kind.")
    abstention: dict[str, float | None] = Field(
        default_factory=dict,
        description="absent_flagged: share of absent questions with good_match False; "
        "answerable_flagged: share of answerable questions with good_match False.",
    )
    seconds: float = 0.0
    questions: list[QuestionResult] = Field(default_factory=list)


class AnswerResult(Record):
    id: str
    kind: str
    question: str
    expected: list[str]
    abstained: bool
    cited: list[str]
    valid_citations: int
    citations: int
    seconds: float
    error: str | None = None
    text: str = ""


class AnswerMetrics(Record):
    model: str = ""
    n: int = 0
    cites_expected: float | None = Field(None, description="Answerable questions citing an expected paper.")
    citation_validity: float | None = Field(None, description="Citations that are retrieved and not flagged.")
    answers_all_valid: float | None = Field(None, description="Answers whose citations are all valid.")
    abstention_precision: float | None = None
    abstention_recall: float | None = None
    mean_seconds: float | None = None
    errors: int = 0
    results: list[AnswerResult] = Field(default_factory=list)


class EvalReport(Record):
    name: str
    created: str
    task: str = Field(description="retrieval, beir or answers.")
    dataset: str
    settings: dict[str, Any] = Field(default_factory=dict)
    modes: list[ModeResult] = Field(default_factory=list)
    reference: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    answers: AnswerMetrics | None = None


# ---------------------------------------------------------------------------------------------- inputs
def default_questions_path() -> Path:
    for candidate in (Path.cwd() / "eval" / "questions.jsonl", PROJECT_ROOT / "eval" / "questions.jsonl"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "No eval/questions.jsonl found in the current folder or the project; "
        "run from the repository root or pass --questions PATH."
    )


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Read a question set (one JSON object a line) and check ids, kinds and absent-expected rules."""
    path = Path(path) if path else default_questions_path()
    if not path.is_file():
        raise ConfigError(f"Question file {path} does not exist; pass --questions PATH.")
    questions: list[Question] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            q = Question.model_validate(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a valid question ({exc}); fix the line.") from exc
        if q.kind not in KINDS:
            raise ConfigError(f"{path}:{lineno}: kind {q.kind!r} is not one of {', '.join(KINDS)}.")
        if (q.kind == "absent") != (not q.expected):
            raise ConfigError(f"{path}:{lineno}: absent questions (and only they) must have expected [].")
        if q.id in seen:
            raise ConfigError(f"{path}:{lineno}: question id {q.id} appears twice.")
        seen.add(q.id)
        questions.append(q)
    if not questions:
        raise ConfigError(f"{path} holds no questions.")
    return questions


def select(
    questions: Sequence[Question],
    kinds: Iterable[str] | None = None,
    limit: int | None = None,
    per_kind: int | None = None,
) -> list[Question]:
    """Questions of the given kinds (all when empty), at most ``per_kind`` of each kind, at most ``limit``."""
    wanted = set(kinds or [])
    unknown = wanted - set(KINDS)
    if unknown:
        raise ConfigError(f"Unknown kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}.")
    chosen = [q for q in questions if not wanted or q.kind in wanted]
    if per_kind:
        taken: dict[str, int] = {}
        kept: list[Question] = []
        for q in chosen:
            taken[q.kind] = taken.get(q.kind, 0) + 1
            if taken[q.kind] <= per_kind:
                kept.append(q)
        chosen = kept
    return chosen[:limit] if limit else chosen


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
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
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


# ---------------------------------------------------------------------------------------------- metrics
def ranked_ids(hits: Iterable[Any]) -> list[str]:
    """Paper ids of hits, best first, each once."""
    out: list[str] = []
    for h in hits:
        pid = h.paper.id
        if pid not in out:
            out.append(pid)
    return out


def ir_metrics(
    qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]], metrics: Sequence[str]
) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (ranx). Scores are derived from ranks."""
    from ranx import Qrels, Run, evaluate

    if not qrels:
        return {}
    run = {qid: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for qid, docs in ranked.items()}
    run = {qid: run.get(qid, {}) for qid in qrels}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate(Qrels.from_dict(qrels), Run.from_dict(run), list(metrics), make_comparable=True)
    if not isinstance(scores, dict):
        scores = {metrics[0]: scores}
    return {m: round(float(v), 4) for m, v in scores.items()}


def _failed(q: Question, retrieved: list[str], good_match: bool) -> bool:
    if q.kind == "absent":
        return good_match
    if q.kind == "single":
        return not set(q.expected) & set(retrieved[:5])
    return not set(q.expected) <= set(retrieved[:10])


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _with(settings: Settings, **retrieve: Any) -> Settings:
    s = settings.model_copy(deep=True)
    for key, value in retrieve.items():
        setattr(s.retrieve, key, value)
    return s


def _default_search() -> SearchFn:
    try:
        from rag.retrieve import search
    except ImportError as exc:  # pragma: no cover - only before retrieval exists
        raise RagError(f"Retrieval is not available ({exc}); `rag eval` needs rag.retrieve.search.") from exc
    return search


def _default_answer() -> AnswerFn:
    try:
        from rag.pipeline import answer
    except ImportError as exc:  # pragma: no cover - only before the pipeline exists
        raise RagError(
            f"The answer pipeline is not available ({exc}); `rag eval --answers` needs it."
        ) from exc
    return answer


def _default_index() -> IndexFn:
    from rag.index import build_index

    return build_index


# ---------------------------------------------------------------------------------------------- runners
def evaluate_mode(
    questions: Sequence[Question],
    mode: str,
    *,
    settings: Settings,
    search_fn: SearchFn,
    depth: int = SEED_DEPTH,
) -> ModeResult:
    """Run every question through ``search_fn`` in one retrieval mode and score it per kind."""
    s = _with(settings, mode=mode)
    started = time.perf_counter()
    results: list[QuestionResult] = []
    for q in questions:
        hits = search_fn(q.question, k=depth, settings=s)
        retrieved = ranked_ids(hits)
        good = bool(getattr(hits, "good_match", True))
        first = next((i + 1 for i, pid in enumerate(retrieved) if pid in q.expected), None)
        results.append(
            QuestionResult(
                id=q.id,
                kind=q.kind,
                question=q.question,
                expected=q.expected,
                retrieved=retrieved,
                good_match=good,
                first_rank=first,
                failed=_failed(q, retrieved, good),
            )
        )
    seconds = time.perf_counter() - started
    metrics: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    answerable = [r for r in results if r.kind != "absent"]
    groups = [(k, [r for r in answerable if r.kind == k]) for k in KINDS if k != "absent"] + [
        ("all", answerable)
    ]
    for kind, group in groups:
        if not group:
            continue
        counts[kind] = len(group)
        metrics[kind] = ir_metrics(
            {r.id: dict.fromkeys(r.expected, 1) for r in group},
            {r.id: r.retrieved for r in group},
            SEED_METRICS,
        )
    absent = [r for r in results if r.kind == "absent"]
    if absent:
        counts["absent"] = len(absent)
    abstention = {
        "absent_flagged": _share([not r.good_match for r in absent]),
        "answerable_flagged": _share([not r.good_match for r in answerable]),
    }
    return ModeResult(
        mode=mode,
        metrics=metrics,
        counts=counts,
        abstention=abstention,
        seconds=round(seconds, 3),
        questions=results,
    )


def _settings_summary(settings: Settings) -> dict[str, Any]:
    return {
        "embed_model": settings.index.embed_model,
        "chunk_max_tokens": settings.index.chunk_max_tokens,
        "late_interaction": settings.index.late_interaction,
        "retrieve": settings.retrieve.model_dump(mode="json"),
    }


def _stamp() -> tuple[str, str]:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%d-%H%M%S"), now.isoformat(timespec="seconds")


def run_retrieval_eval(
    questions: Sequence[Question] | None = None,
    *,
    modes: Sequence[str] = MODES,
    settings: Settings | None = None,
    search_fn: SearchFn | None = None,
    index_fn: IndexFn | None = None,
    name: str | None = None,
    dataset: str = "seeds",
) -> EvalReport:
    """Retrieval eval on the question set: ensure the index is current, then score each mode."""
    settings = settings or Settings()
    questions = list(questions) if questions is not None else load_questions()
    _check_modes(modes)
    (index_fn or _default_index())(settings=settings)
    search = search_fn or _default_search()
    stamp, created = _stamp()
    return EvalReport(
        name=name or f"retrieval-{stamp}",
        created=created,
        task="retrieval",
        dataset=dataset,
        settings=_settings_summary(settings),
        modes=[evaluate_mode(questions, m, settings=settings, search_fn=search) for m in modes],
    )


def _check_modes(modes: Sequence[str]) -> None:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(
            f"Unknown retrieval mode(s) {', '.join(bad) or '(none)'}; choose from {', '.join(MODES)}."
        )


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
    _check_modes(modes)
    root = Path(path).resolve()
    dataset = root.name
    corpus, queries, qrels = load_beir(root, split)
    if limit:
        keep = sorted(queries)[:limit]
        queries = {q: queries[q] for q in keep}
        qrels = {q: qrels[q] for q in keep}
    s = beir_settings(settings, dataset, corpus)
    (index_fn or _default_index())(sources=[corpus], settings=s)
    search = search_fn or _default_search()
    results: list[ModeResult] = []
    for mode in modes:
        ms = _with(s, mode=mode)
        started = time.perf_counter()
        ranked = {qid: ranked_ids(search(text, k=BEIR_DEPTH, settings=ms)) for qid, text in queries.items()}
        seconds = time.perf_counter() - started
        metrics = {"all": ir_metrics(qrels, ranked, BEIR_METRICS)}
        results.append(
            ModeResult(mode=mode, metrics=metrics, counts={"all": len(queries)}, seconds=round(seconds, 3))
        )
    stamp, created = _stamp()
    return EvalReport(
        name=name or f"beir-{dataset}-{stamp}",
        created=created,
        task="beir",
        dataset=f"{dataset}/{split}",
        settings=_settings_summary(s),
        modes=results,
        reference=REFERENCE.get(dataset.lower(), {}),
    )


def run_answer_eval(
    questions: Sequence[Question] | None = None,
    *,
    model: str | None = None,
    settings: Settings | None = None,
    answer_fn: AnswerFn | None = None,
    index_fn: IndexFn | None = None,
    name: str | None = None,
    progress: Callable[[int, int, AnswerResult], None] | None = None,
) -> EvalReport:
    """Answer each question with the pipeline and score citations and abstention."""
    settings = settings or Settings()
    questions = list(questions) if questions is not None else load_questions()
    (index_fn or _default_index())(settings=settings)
    ask = answer_fn or _default_answer()
    results: list[AnswerResult] = []
    for n, q in enumerate(questions, start=1):
        started = time.perf_counter()
        a = ask(q.question, model=model, settings=settings)
        wall = time.perf_counter() - started
        retrieved = {h.paper.id for h in a.hits}
        valid = sum(1 for c in a.citations if c.paper.id in retrieved and not c.flagged)
        result = AnswerResult(
            id=q.id,
            kind=q.kind,
            question=q.question,
            expected=q.expected,
            abstained=a.abstained,
            cited=[c.paper.id for c in a.citations],
            valid_citations=valid,
            citations=len(a.citations),
            seconds=round(a.timings.get("total", wall), 3),
            error=a.error,
            text=a.text[:400],
        )
        results.append(result)
        if progress:
            progress(n, len(questions), result)
        if len(results) == MAX_LEADING_ERRORS and all(r.error for r in results):
            raise LLMError(
                f"The first {MAX_LEADING_ERRORS} answers all failed; stopping. Last error: {a.error}"
            )
    stamp, created = _stamp()
    return EvalReport(
        name=name or f"answers-{stamp}",
        created=created,
        task="answers",
        dataset="seeds",
        settings={**_settings_summary(settings), "model": model or settings.llm.model},
        answers=answer_metrics(results, model=model or settings.llm.model),
    )


def answer_metrics(results: Sequence[AnswerResult], model: str = "") -> AnswerMetrics:
    """Aggregate answer-level figures (see AnswerMetrics field descriptions)."""
    answerable = [r for r in results if r.kind != "absent"]
    absent = [r for r in results if r.kind == "absent"]
    abstained = [r for r in results if r.abstained]
    n_cit = sum(r.citations for r in results)
    with_cit = [r for r in results if r.citations]
    return AnswerMetrics(
        model=model,
        n=len(results),
        cites_expected=_share([bool(set(r.cited) & set(r.expected)) for r in answerable]),
        citation_validity=round(sum(r.valid_citations for r in results) / n_cit, 4) if n_cit else None,
        answers_all_valid=_share([r.valid_citations == r.citations for r in with_cit]),
        abstention_precision=_share([r.kind == "absent" for r in abstained]),
        abstention_recall=_share([r.abstained for r in absent]),
        mean_seconds=round(sum(r.seconds for r in results) / len(results), 3) if results else None,
        errors=sum(1 for r in results if r.error),
        results=list(results),
    )


# ---------------------------------------------------------------------------------------------- output
def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def to_markdown(report: EvalReport) -> str:
    """A Markdown summary of a report: the tables printed by `rag eval` and written beside the JSON."""
    out = [f"## {report.name}", "", f"{report.task} eval on `{report.dataset}`, {report.created}", ""]
    if report.task == "retrieval":
        header = ["mode", "kind", "n", *SEED_METRICS]
        rows = [
            [m.mode, kind, str(m.counts.get(kind, 0)), *(_fmt(vals.get(x)) for x in SEED_METRICS)]
            for m in report.modes
            for kind, vals in m.metrics.items()
        ]
        out += _table(header, rows) + [""]
        rows = [
            [
                m.mode,
                _fmt(m.abstention.get("absent_flagged")),
                _fmt(m.abstention.get("answerable_flagged")),
                f"{1000 * m.seconds / max(1, len(m.questions)):.0f}",
            ]
            for m in report.modes
        ]
        out += _table(
            ["mode", "absent flagged (good_match False)", "answerable flagged", "ms/query"], rows
        ) + [""]
    elif report.task == "beir":
        rows = [
            [f"rag {m.mode}", *(_fmt(m.metrics["all"].get(x)) for x in BEIR_METRICS)] for m in report.modes
        ]
        rows += [
            [f"{ref} (published)", *(_fmt(v.get(x)) for x in BEIR_METRICS)]
            for ref, v in report.reference.items()
        ]
        out += _table(["system", *BEIR_METRICS], rows) + [""]
    if report.answers is not None:
        a = report.answers
        rows = [
            ["model", a.model],
            ["answers", str(a.n)],
            ["cite an expected paper", _fmt(a.cites_expected)],
            ["citation validity", _fmt(a.citation_validity)],
            ["answers with all citations valid", _fmt(a.answers_all_valid)],
            ["abstention precision", _fmt(a.abstention_precision)],
            ["abstention recall", _fmt(a.abstention_recall)],
            ["mean seconds per answer", _fmt(a.mean_seconds)],
            ["errors", str(a.errors)],
        ]
        out += _table(["figure", "value"], rows) + [""]
    return "\n".join(out)


def failures(report: EvalReport, mode: str | None = None, top: int = 5) -> str:
    """The questions that failed in ``mode`` (default: the last mode), with what was retrieved."""
    if not report.modes or not report.modes[0].questions:
        return ""
    m = next((x for x in report.modes if x.mode == mode), report.modes[-1])
    failed = [r for r in m.questions if r.failed]
    lines = [f"Failing questions in {m.mode} mode: {len(failed)} of {len(m.questions)}"]
    for r in failed:
        lines.append(f"- {r.id} [{r.kind}] {r.question}")
        if r.kind == "absent":
            lines.append("    good_match was True; top: " + ", ".join(r.retrieved[:3]))
            continue
        missing = [e for e in r.expected if e not in r.retrieved[:10]]
        lines.append(
            f"    first expected at rank {r.first_rank or '>' + str(len(r.retrieved))}; "
            f"missing from top 10: {', '.join(missing) or '—'}"
        )
        lines.append(
            "    retrieved: " + ", ".join(("✓ " if p in r.expected else "") + p for p in r.retrieved[:top])
        )
    return "\n".join(lines)


def answer_failed(r: AnswerResult) -> bool:
    """An answer fails when the model errored, abstention was wrong, or no expected paper was cited."""
    if r.error or (r.kind == "absent") != r.abstained:
        return True
    return r.kind != "absent" and not set(r.cited) & set(r.expected)


def answer_failures(report: EvalReport) -> str:
    """The answers that failed (see `answer_failed`), one line each."""
    if report.answers is None:
        return ""
    failed = [r for r in report.answers.results if answer_failed(r)]
    lines = [f"Failing answers: {len(failed)} of {len(report.answers.results)}"]
    for r in failed:
        error = f"; error: {r.error}" if r.error else ""
        lines.append(
            f"- {r.id} [{r.kind}] abstained={r.abstained}; cited: {', '.join(r.cited) or '—'}; "
            f"expected: {', '.join(r.expected) or '—'}{error}"
        )
    return "\n".join(lines)


def save_report(report: EvalReport, folder: str | Path) -> tuple[Path, Path]:
    """Write ``<folder>/<name>.json`` and ``<name>.md``; return both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{report.name}.json", folder / f"{report.name}.md"
    json_path.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report) + "\n", encoding="utf-8")
    return json_path, md_path


def load_report(path: str | Path) -> EvalReport:
    path = Path(path)
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; pass a JSON file written by `rag eval`.") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not a `rag eval` JSON report ({exc.__class__.__name__}).") from exc


def flatten(report: EvalReport) -> dict[str, float]:
    """All numeric figures of a report as ``mode/kind/metric`` (or ``answers/figure``) → value."""
    flat: dict[str, float] = {}
    for m in report.modes:
        for kind, vals in m.metrics.items():
            for metric, v in vals.items():
                flat[f"{m.mode}/{kind}/{metric}"] = v
        for key, share in m.abstention.items():
            if share is not None:
                flat[f"{m.mode}/abstention/{key}"] = share
    if report.answers is not None:
        for key, figure in report.answers.model_dump(exclude={"results", "model"}).items():
            if isinstance(figure, int | float):
                flat[f"answers/{key}"] = float(figure)
    return flat


def compare(a: EvalReport, b: EvalReport) -> str:
    """A Markdown table of every figure the two reports share: A, B and B − A."""
    fa, fb = flatten(a), flatten(b)
    keys = [k for k in fa if k in fb]
    if not keys:
        return f"{a.name} and {b.name} share no figures (different tasks?)."
    rows = [[k, _fmt(fa[k]), _fmt(fb[k]), f"{fb[k] - fa[k]:+.3f}"] for k in keys]
    return "\n".join(_table(["figure", a.name, b.name, "delta"], rows))
