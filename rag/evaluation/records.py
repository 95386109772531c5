"""The records of an eval run: questions, per-question results, per-mode and per-group figures, reports.

Every field added after the first reports were written has a default, so old JSON reports in
``eval/results/`` still load (``Record`` forbids unknown fields, never missing ones with defaults).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rag.types import Record

KINDS = ("single", "multi", "meta", "absent")
MODES = ("bm25", "dense", "hybrid")
HALVES = ("all", "tune", "held-out")
"""``tune``: odd question ids (what calibration may look at); ``held-out``: even ids (reported only)."""
SHAPES = ("fact", "list", "claim", "extractive", "abstained")
"""Answer shapes as grouped by the eval: abstained first, then extractive, then ``Answer.kind``."""
SEED_METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
HALF_METRICS = ("recall@5", "recall@10", "mrr", "ndcg@10")
BEIR_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr")
SEED_DEPTH = 20  # hits fetched per question on the seeds (MRR is computed over these)
BEIR_DEPTH = 100
MAX_LEADING_ERRORS = 3  # `--answers` stops when the first answers all fail (no model, bad key)


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
    halves: dict[str, dict[str, float | None]] = Field(
        default_factory=dict,
        description="tune / held-out half → figure (n, answerable IR metrics, abstention shares).",
    )
    seconds: float = 0.0
    questions: list[QuestionResult] = Field(default_factory=list)


class CitationCheck(Record):
    """Whether one citation's evidence is the cited paper's own words."""

    number: int
    paper: str = Field(description="Paper id.")
    outcome: str = Field(
        description="sentence, clause, excerpt (contiguous text of the abstract), title, metadata "
        "(a list line that quotes no sentence), or the failures: empty, not in abstract."
    )
    ok: bool
    evidence: str = Field("", description="The evidence, clipped to 200 characters.")


class AnswerResult(Record):
    id: str
    kind: str
    question: str
    expected: list[str]
    abstained: bool
    cited: list[str] = Field(description="Cited paper ids, in citation order.")
    valid_citations: int
    citations: int
    seconds: float
    error: str | None = None
    text: str = ""
    shape: str = Field("fact", description="Answer.kind: fact, list or claim.")
    extractive: bool = False
    items: int = Field(0, description="List answers: lines in the list.")
    total: int | None = Field(None, description="List answers: size of the set (over items when capped).")
    first_item_seconds: float | None = Field(None, description="Answer.timings['first_item'].")
    checks: list[CitationCheck] = Field(default_factory=list, description="One per citation.")
    prose_sentences: int = Field(0, description="Sentences checked for a lost subject (lead, fact text).")
    dangling: list[str] = Field(default_factory=list, description="Those that lost their subject.")


class GroupFigures(Record):
    """Answer figures over one group of questions (a kind or an answer shape) in one half."""

    half: str = Field(description="all, tune (odd ids) or held-out (even ids).")
    axis: str = Field(description="kind (question kind) or shape (answer shape).")
    group: str
    n: int = 0
    expected_cited: float | None = Field(None, description="Recall: mean |cited ∩ expected| / |expected|.")
    cites_expected: float | None = Field(None, description="Share of answerable citing an expected paper.")
    cited_expected: float | None = Field(
        None, description="Precision: mean |cited ∩ expected| / |cited| over answered, citing answers."
    )
    abstained_answerable: float | None = None
    abstained_absent: float | None = None
    citations: int = 0
    evidence_verbatim: float | None = Field(None, description="Citations whose evidence passed the check.")
    prose_sentences: int = 0
    dangling: int = Field(0, description="Prose sentences that lost their subject.")
    integrity: float | None = Field(
        None, description="Passing checks over citations + prose sentences; 1.0 only when both are perfect."
    )
    median_seconds: float | None = None
    median_first_item: float | None = Field(None, description="List answers: seconds to the first line.")
    errors: int = 0


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
    groups: list[GroupFigures] = Field(default_factory=list, description="Per half × kind/shape.")
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
    half: str = Field("all", description="Which questions ran: all, tune (odd ids) or held-out (even ids).")
