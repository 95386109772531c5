"""Reports on disk and side by side: save/load the JSON (+ Markdown), flatten a report's figures, and
compare two reports (old reports load too: every newer field has a default)."""

from __future__ import annotations

from pathlib import Path

from rag.errors import ConfigError
from rag.evaluation.markdown import fmt, table, to_markdown
from rag.evaluation.records import EvalReport


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
    """All numeric figures of a report: ``mode/kind/metric``, ``mode/half/metric``, ``answers/figure`` and
    ``answers/half/axis:group/figure`` → value."""
    flat: dict[str, float] = {}
    for m in report.modes:
        for kind, vals in m.metrics.items():
            for metric, v in vals.items():
                flat[f"{m.mode}/{kind}/{metric}"] = v
        for key, share in m.abstention.items():
            if share is not None:
                flat[f"{m.mode}/abstention/{key}"] = share
        for which, figures in m.halves.items():
            for key, value in figures.items():
                if value is not None and key not in ("n", "answerable"):
                    flat[f"{m.mode}/{which}/{key}"] = value
    if report.answers is not None:
        for key, figure in report.answers.model_dump(exclude={"results", "model", "groups"}).items():
            if isinstance(figure, int | float):
                flat[f"answers/{key}"] = float(figure)
        for g in report.answers.groups:
            for key, figure in g.model_dump(exclude={"half", "axis", "group"}).items():
                if isinstance(figure, int | float):
                    flat[f"answers/{g.half}/{g.axis}:{g.group}/{key}"] = float(figure)
    return flat


def compare(a: EvalReport, b: EvalReport) -> str:
    """A Markdown table of every figure the two reports share: A, B and B − A."""
    fa, fb = flatten(a), flatten(b)
    keys = [k for k in fa if k in fb]
    if not keys:
        return f"{a.name} and {b.name} share no figures (different tasks?)."
    rows = [[k, fmt(fa[k]), fmt(fb[k]), f"{fb[k] - fa[k]:+.3f}"] for k in keys]
    return "\n".join(table(["figure", a.name, b.name, "delta"], rows))
