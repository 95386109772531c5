"""Markdown for people: the tables `rag eval` prints and writes beside the JSON, and the failure lists."""

from __future__ import annotations

from rag.evaluation.answers import failure_reasons
from rag.evaluation.figures import shape_of
from rag.evaluation.records import (
    BEIR_METRICS,
    HALF_METRICS,
    HALVES,
    SEED_METRICS,
    AnswerMetrics,
    AnswerResult,
    EvalReport,
    GroupFigures,
)

HALF_TITLES = {
    "all": "all questions",
    "tune": "tune half (odd question ids: what calibration may look at)",
    "held-out": "held-out half (even question ids: never tuned on, only reported)",
}
GROUP_HEADER = [
    "group", "n", "expected cited", "cites an expected", "cited expected", "abstained (answerable)",
    "abstained (absent)", "evidence verbatim", "dangling / prose", "integrity", "median s",
    "median s to 1st line", "errors",
]  # fmt: skip


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _retrieval(report: EvalReport) -> list[str]:
    header = ["mode", "kind", "n", *SEED_METRICS]
    rows = [
        [m.mode, kind, str(m.counts.get(kind, 0)), *(fmt(vals.get(x)) for x in SEED_METRICS)]
        for m in report.modes
        for kind, vals in m.metrics.items()
    ]
    out = table(header, rows) + [""]
    rows = [
        [
            m.mode,
            fmt(m.abstention.get("absent_flagged")),
            fmt(m.abstention.get("answerable_flagged")),
            f"{1000 * m.seconds / max(1, len(m.questions)):.0f}",
        ]
        for m in report.modes
    ]
    out += table(["mode", "absent flagged (good_match False)", "answerable flagged", "ms/query"], rows)
    rows = [
        [m.mode, which, *(f"{v.get(x) or 0:.0f}" for x in ("n", "answerable"))]
        + [fmt(v.get(x)) for x in (*HALF_METRICS, "absent_flagged", "answerable_flagged")]
        for m in report.modes
        for which, v in m.halves.items()
    ]
    if rows:
        header = ["mode", "half", "n", "answerable", *HALF_METRICS, "absent flagged", "answerable flagged"]
        out += ["", "Per half (tune: odd question ids; held-out: even ids):", ""] + table(header, rows)
    return out + [""]


def _beir(report: EvalReport) -> list[str]:
    rows = [[f"rag {m.mode}", *(fmt(m.metrics["all"].get(x)) for x in BEIR_METRICS)] for m in report.modes]
    rows += [
        [f"{ref} (published)", *(fmt(v.get(x)) for x in BEIR_METRICS)] for ref, v in report.reference.items()
    ]
    return table(["system", *BEIR_METRICS], rows) + [""]


def _group_row(g: GroupFigures) -> list[str]:
    return [
        f"{g.axis}: {g.group}", str(g.n), fmt(g.expected_cited), fmt(g.cites_expected), fmt(g.cited_expected),
        fmt(g.abstained_answerable), fmt(g.abstained_absent), fmt(g.evidence_verbatim),
        f"{g.dangling} / {g.prose_sentences}", fmt(g.integrity), fmt(g.median_seconds),
        fmt(g.median_first_item), str(g.errors),
    ]  # fmt: skip


def _answers(a: AnswerMetrics) -> list[str]:
    rows = [
        ["model", a.model],
        ["answers", str(a.n)],
        ["cite an expected paper", fmt(a.cites_expected)],
        ["citation validity", fmt(a.citation_validity)],
        ["answers with all citations valid", fmt(a.answers_all_valid)],
        ["abstention precision", fmt(a.abstention_precision)],
        ["abstention recall", fmt(a.abstention_recall)],
        ["mean seconds per answer", fmt(a.mean_seconds)],
        ["errors", str(a.errors)],
    ]
    out = table(["figure", "value"], rows) + [""]
    for which in HALVES:
        groups = [g for g in a.groups if g.half == which]
        if groups:
            out += [f"### Answers per kind and shape, {HALF_TITLES[which]}", ""]
            out += table(GROUP_HEADER, [_group_row(g) for g in groups]) + [""]
    return out


def to_markdown(report: EvalReport) -> str:
    """A Markdown summary of a report: the tables printed by `rag eval` and written beside the JSON."""
    ran = "" if report.half == "all" else f", {HALF_TITLES.get(report.half, report.half)} only"
    out = [f"## {report.name}", "", f"{report.task} eval on `{report.dataset}`{ran}, {report.created}", ""]
    if report.task == "retrieval":
        out += _retrieval(report)
    elif report.task == "beir":
        out += _beir(report)
    if report.answers is not None:
        out += _answers(report.answers)
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


def _answer_lines(r: AnswerResult, reasons: list[str]) -> list[str]:
    shape = shape_of(r)
    if r.shape == "list" and not r.abstained:
        shape += f", {r.items} items" + (f" of {r.total}" if r.total is not None else "")
    error = f"; error: {r.error}" if r.error else ""
    lines = [
        f"- {r.id} [{r.kind}] shape: {shape}; {'; '.join(reasons)}; cited: {', '.join(r.cited) or '—'}; "
        f"expected: {', '.join(r.expected) or '—'}{error}"
    ]
    lines += [f"    [{c.number}] {c.paper}: {c.outcome}: “{c.evidence[:120]}”" for c in r.checks if not c.ok]
    lines += [f"    without subject: “{s}”" for s in r.dangling]
    return lines


def answer_failures(report: EvalReport) -> str:
    """The answers that failed (see ``failure_reasons``), one line each with shape and reasons, then the
    failing evidence and sentences."""
    if report.answers is None:
        return ""
    results = report.answers.results
    failed = [(r, why) for r in results if (why := failure_reasons(r))]
    lines = [f"Failing answers: {len(failed)} of {len(results)}"]
    for r, why in failed:
        lines += _answer_lines(r, why)
    return "\n".join(lines)
