"""The evaluation runner behind `rag eval`: retrieval metrics per question kind and retrieval mode,
BEIR datasets with published reference numbers, answer-level metrics per question kind and answer
shape, and JSON/Markdown reports. Every figure on the question set is also given per half: odd question
ids are the ``tune`` half (what calibration may look at), even ids the ``held-out`` half.

One module per job:

- ``records``: the records (questions, results, figures, reports) and the constants;
- ``questions``: loading and choosing questions, the halves;
- ``retrieval``: ranx metrics per kind, mode and half;
- ``beir``: BEIR folders and the published reference numbers;
- ``answers``: running the answer pipeline, one result per question, failure reasons;
- ``integrity``: evidence and lost-subject checks of one answer;
- ``figures``: answer figures per half × kind / shape;
- ``markdown`` and ``report``: tables, failure lists, save / load / compare;
- ``defaults``: the default search / answer / index functions and shared helpers.

The search and answer functions are injectable (``search_fn=``, ``answer_fn=``, ``index_fn=``) so the
runner can be tested with fakes; by default they are ``rag.retrieve.search``, ``rag.pipeline.answer``
and ``rag.index.build_index`` (see :mod:`rag.evaluation.defaults`).
"""

from __future__ import annotations

from rag.evaluation.answers import answer_failed, answer_result, failure_reasons, run_answer_eval
from rag.evaluation.beir import REFERENCE, beir_settings, load_beir, run_beir_eval
from rag.evaluation.defaults import AnswerFn, IndexFn, SearchFn
from rag.evaluation.figures import answer_metrics, cited_expected, expected_cited, group_figures, shape_of
from rag.evaluation.integrity import check_citation, dangling_sentences, evidence_outcome, prose_sentences
from rag.evaluation.markdown import answer_failures, failures, to_markdown
from rag.evaluation.questions import default_questions_path, half, half_of, in_half, load_questions, select
from rag.evaluation.records import (
    BEIR_DEPTH,
    BEIR_METRICS,
    HALF_METRICS,
    HALVES,
    KINDS,
    MAX_LEADING_ERRORS,
    MODES,
    SEED_DEPTH,
    SEED_METRICS,
    SHAPES,
    AnswerMetrics,
    AnswerResult,
    CitationCheck,
    EvalReport,
    GroupFigures,
    ModeResult,
    Question,
    QuestionResult,
)
from rag.evaluation.report import compare, flatten, load_report, save_report
from rag.evaluation.retrieval import check_modes, evaluate_mode, ir_metrics, ranked_ids, run_retrieval_eval

__all__ = [
    "BEIR_DEPTH", "BEIR_METRICS", "HALF_METRICS", "HALVES", "KINDS", "MAX_LEADING_ERRORS", "MODES",
    "REFERENCE", "SEED_DEPTH", "SEED_METRICS", "SHAPES",
    "AnswerFn", "IndexFn", "SearchFn",
    "AnswerMetrics", "AnswerResult", "CitationCheck", "EvalReport", "GroupFigures", "ModeResult", "Question",
    "QuestionResult",
    "default_questions_path", "load_questions", "select", "half", "half_of", "in_half",
    "ranked_ids", "ir_metrics", "check_modes", "evaluate_mode", "run_retrieval_eval",
    "load_beir", "beir_settings", "run_beir_eval",
    "answer_result", "run_answer_eval", "failure_reasons", "answer_failed",
    "check_citation", "evidence_outcome", "prose_sentences", "dangling_sentences",
    "answer_metrics", "group_figures", "expected_cited", "cited_expected", "shape_of",
    "to_markdown", "failures", "answer_failures", "save_report", "load_report", "flatten", "compare",
]  # fmt: skip
