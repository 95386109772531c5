"""Answer speed with the offline local model: time to first token and total time per answer.

    .venv/bin/python bench/answer_speed.py                 # seeds index in a temp home, 5 questions
    .venv/bin/python bench/answer_speed.py --home /tmp/h   # reuse (or build) the index under /tmp/h

Builds the seeds index (skipped when it is already up to date), loads the models once (the embedding model
and the local LLM; loading is reported apart, not counted per answer), then answers typical seed questions
through ``rag.answer_stream`` and records per answer: retrieval seconds, time to first token (from the
question), model seconds, total seconds, prompt and completion tokens, abstained, the cited paper ids.
Five fact and five list questions. Goals: time to first token ≤ 5 s, first list line ≤ 1.5 s, total ≤ 15 s on
2 cores. On a shared machine wall time mostly measures
the other work, so the process's CPU seconds (user+sys, all threads) to the first token and in total are
recorded too: on 2 otherwise idle cores, wall time ≈ CPU seconds / 2 for the model part (llama.cpp keeps
both cores busy). The 1-minute load average before each answer is recorded as well.

Prints a table and writes bench/results/answer_speed.json. (Model tokens/s against bare llama.cpp is
bench/llm_speed.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import PROJECT_ROOT, Settings  # noqa: E402

QUESTIONS = [
    (
        "How does Frost Training improve Monte Carlo policy optimization for LLM-as-a-judge tasks?",
        "cross-entropy-games-and-frost-training",
    ),
    ("Does refusal training in LLMs generalize to the past tense?", None),
    ("Which benchmark provides a standardized evaluation framework for jailbreak attacks?", None),
    ("Is there a time asymmetry in how language models predict the next versus the previous token?", None),
    ("What does TempSamp-R1 improve in video LLMs?", None),
]
LIST_QUESTIONS = [
    ("Which papers study jailbreaking attacks on large language models?", None),
    ("What did Maksym Andriushchenko publish in 2024?", None),
    ("Which papers study the edge of stability in gradient descent?", None),
    ("How many papers did Nicolas Flammarion co-author in 2023?", None),
    ("Which papers analyse sharpness-aware minimization?", None),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="Data home for the index (default: a temp folder).")
    parser.add_argument("--model", help="Model id (default: settings.llm.model, the local model).")
    parser.add_argument("--limit", type=int, default=len(QUESTIONS), help="Questions of each shape to ask.")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "answer_speed.json")
    args = parser.parse_args(argv)

    from rag import llm
    from rag.embed import get_embedder
    from rag.index import build_index
    from rag.models import installed_dir
    from rag.pipeline import answer_stream
    from rag.types import Answer

    home = args.home or Path(tempfile.mkdtemp(prefix="rag-answer-bench-"))
    settings = Settings(home=home, models_dir=installed_dir())
    settings.llm.timeout = 1800  # measure, do not abandon, on a busy machine
    t = time.perf_counter()
    stats = build_index(settings=settings)
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    get_embedder(settings)
    llm.preload(settings, model=args.model)
    load_s = time.perf_counter() - t
    print(f"index: {stats.papers} papers in {index_s:.1f} s; models loaded in {load_s:.1f} s", flush=True)

    rows = []
    for question, expected in QUESTIONS[: args.limit] + LIST_QUESTIONS[: args.limit]:
        load_before = os.getloadavg()[0]
        final: Answer | None = None
        cpu0 = time.process_time()
        cpu_first: float | None = None
        for item in answer_stream(question, model=args.model, settings=settings):
            if isinstance(item, str) and cpu_first is None and item.strip():
                cpu_first = time.process_time() - cpu0
            elif isinstance(item, Answer):
                final = item
        cpu_total = time.process_time() - cpu0
        assert final is not None
        t = final.timings
        row = {
            "question": question,
            "retrieve_s": t.get("retrieve"),
            "kind": final.kind,
            "extractive": final.extractive,
            "first_item_s": t.get("first_item"),
            "first_token_s": t.get("first_token"),
            "generate_s": t.get("generate"),
            "total_s": t.get("total"),
            "cpu_s_to_first_token": None if cpu_first is None else round(cpu_first, 2),
            "cpu_s_total": round(cpu_total, 2),
            "prompt_tokens": final.prompt_tokens,
            "completion_tokens": final.completion_tokens,
            "abstained": final.abstained,
            "error": final.error,
            "cited": [c.paper.id for c in final.citations],
            "flagged": [c.paper.id for c in final.citations if c.flagged],
            "repaired": [c.paper.id for c in final.citations if c.repaired],
            "expected": expected,
            "raw_text": final.raw_text,
            "text": final.text,
            "load_avg_1m": round(load_before, 2),
        }
        rows.append(row)
        ft = row["first_token_s"]
        fi = row["first_item_s"]
        print(
            f"- [{final.kind}] first list line {fi if fi is None else round(fi, 2)} s, "
            f"first token {ft if ft is None else round(ft, 1)} s ({row['cpu_s_to_first_token']} CPU-s), "
            f"total {row['total_s']:.1f} s ({row['cpu_s_total']} CPU-s), "
            f"{row['prompt_tokens']} prompt + {row['completion_tokens']} completion tokens, "
            f"load {load_before:.1f}: {question}\n    → {final.text!r}",
            flush=True,
        )

    def med(key: str, kind: str | None = None) -> float | None:
        values = [r[key] for r in rows if r[key] is not None and (kind is None or r["kind"] == kind)]
        return round(statistics.median(values), 2) if values else None

    summary = {
        "median_first_token_s": med("first_token_s"),
        "median_total_s": med("total_s"),
        "fact_median_first_token_s": med("first_token_s", "fact"),
        "fact_median_total_s": med("total_s", "fact"),
        "list_median_first_item_s": med("first_item_s", "list"),
        "list_max_first_item_s": max((r["first_item_s"] for r in rows if r["first_item_s"]), default=None),
        "list_median_total_s": med("total_s", "list"),
        "median_cpu_s_to_first_token": med("cpu_s_to_first_token"),
        "median_cpu_s_total": med("cpu_s_total"),
        "median_prompt_tokens": med("prompt_tokens"),
        "median_completion_tokens": med("completion_tokens"),
        "goals": {"first_token_s": 5.0, "total_s": 15.0, "first_list_line_s": 1.5},
    }
    result = {
        "model": args.model or settings.llm.model,
        "context_papers": settings.llm.context_papers,
        "context_sentences": settings.llm.context_sentences,
        "max_tokens": settings.llm.max_tokens,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "index_seconds": round(index_s, 1),
        "model_load_seconds": round(load_s, 1),
        "summary": summary,
        "answers": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(
        f"\nfact answers: median first token {summary['fact_median_first_token_s']} s, total "
        f"{summary['fact_median_total_s']} s; list answers: median first line "
        f"{summary['list_median_first_item_s']} s "
        f"(max {summary['list_max_first_item_s']}, goal ≤ 1.5), total {summary['list_median_total_s']} s\n"
        f"median time to first token {summary['median_first_token_s']} s (goal ≤ 5), "
        f"median total {summary['median_total_s']} s (goal ≤ 15), "
        f"median prompt {summary['median_prompt_tokens']} tokens; CPU-s to first token "
        f"{summary['median_cpu_s_to_first_token']}, CPU-s total {summary['median_cpu_s_total']}; "
        f"written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
