"""SciFact claim verification, abstract level, open setting: `rag eval --claims PATH`.

Each claim goes through :func:`rag.claims.check_claim` against the index (the system finds the abstracts
itself). Scoring follows SciFact's abstract-level evaluation (Wadden et al., EMNLP 2020, and its evaluation
code): a predicted (claim, abstract, label) with label SUPPORT or CONTRADICT is

* **label-only correct** when the abstract is gold evidence for the claim with that label;
* **label+rationale correct** when, in addition, its first :data:`MAX_RATIONALE` rationale sentences contain
  every sentence of at least one gold evidence set.

Precision = correct / predicted pairs, recall = correct / gold (claim, abstract) pairs, F1 their harmonic
mean.
Beside it, computed in the same run: the naive baseline (the top-1 retrieved abstract labelled SUPPORT).
Every figure is given for the tune half (odd claim ids), the held-out half (even ids) and all claims.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rag.errors import ConfigError

MAX_RATIONALE = 3
"""SciFact counts at most this many rationale sentences per predicted abstract."""
GOLD = ("SUPPORT", "CONTRADICT")
HALF_NAMES = {"tune": "tune (odd ids)", "held-out": "held-out (even ids)", "all": "all"}

Prediction = dict[str, tuple[str, list[int]]]
"""Per claim: abstract id -> (label, rationale sentence ids); NOT_ENOUGH_INFO entries are not predictions."""


class Claim(BaseModel):
    id: int
    claim: str
    evidence: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Abstract id -> {'label': ..., 'sets': [[sentence ids], ...]}."
    )


class ClaimResult(BaseModel):
    """One claim's run: what the system predicted, what the baseline predicted, how long it took."""

    id: int
    predicted: dict[str, tuple[str, list[int]]] = Field(default_factory=dict)
    examined: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Every examined abstract: label, reply, relevance, sentence ids."
    )
    baseline: dict[str, tuple[str, list[int]]] = Field(default_factory=dict)
    top: list[tuple[str, float]] = Field(default_factory=list, description="Top hits: (id, relevance).")
    seconds: float = 0.0
    error: str | None = None


def load_claims(path: str | Path) -> list[Claim]:
    """SciFact's claims file (``claims_dev.jsonl``): one claim a line with its evidence per abstract."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"No claims file at {path}: give a SciFact claims JSON-lines file (claims_dev.jsonl)."
        )
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            evidence = {
                str(doc): {"label": sets[0]["label"], "sets": [list(s["sentences"]) for s in sets]}
                for doc, sets in (row.get("evidence") or {}).items()
            }
            out.append(Claim(id=int(row["id"]), claim=str(row["claim"]), evidence=evidence))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ConfigError(
                f"{path}:{n}: not a SciFact claim ({exc}); expected id, claim, evidence."
            ) from None
    return out


def half_of(claim_id: int) -> str:
    return "tune" if claim_id % 2 else "held-out"


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
    }


def score(claims: Sequence[Claim], predictions: dict[int, Prediction]) -> dict[str, Any]:
    """SciFact abstract-level metrics of ``predictions`` on ``claims``, a confusion matrix over gold and
    predicted pairs (rows gold SUPPORT / CONTRADICT / not evidence, columns predicted SUPPORT / CONTRADICT
    / no verdict), and the CONTRADICT pairs found with the right label."""
    n_gold = n_pred = label_ok = rationale_ok = 0
    confusion = {g: {p: 0 for p in ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")} for g in (*GOLD, "NONE")}
    for claim in claims:
        pred = {d: v for d, v in predictions.get(claim.id, {}).items() if v[0] in GOLD}
        n_gold += len(claim.evidence)
        n_pred += len(pred)
        for doc, evidence in claim.evidence.items():
            confusion[evidence["label"]][pred[doc][0] if doc in pred else "NOT_ENOUGH_INFO"] += 1
        for doc, (label, sentences) in pred.items():
            gold = claim.evidence.get(doc)
            if gold is None:
                confusion["NONE"][label] += 1
                continue
            if label != gold["label"]:
                continue
            label_ok += 1
            shown = set(sentences[:MAX_RATIONALE])
            if any(set(s) <= shown for s in gold["sets"]):
                rationale_ok += 1
    contradict = sum(confusion["CONTRADICT"].values())
    return {
        "claims": len(claims),
        "gold_pairs": n_gold,
        "predicted_pairs": n_pred,
        "label_only": _prf(label_ok, n_pred, n_gold),
        "label_rationale": _prf(rationale_ok, n_pred, n_gold),
        "contradict_found": round(confusion["CONTRADICT"]["CONTRADICT"] / contradict, 4)
        if contradict
        else 0.0,
        "confusion": confusion,
    }


def predict(check: Any, rationale: bool = True) -> Prediction:
    """The (abstract, label, rationale) predictions of a :class:`~rag.types.ClaimCheck`."""
    return {
        v.paper.id: (v.label, list(v.sentence_ids) if rationale else [])
        for v in check.verdicts
        if v.label in GOLD
    }


def run_claims(
    claims: Sequence[Claim],
    check_fn: Callable[[str], Any],
    *,
    progress: Callable[[int, int, ClaimResult], None] | None = None,
) -> list[ClaimResult]:
    """Check every claim with ``check_fn`` (``claim -> ClaimCheck``): system and baseline predictions."""
    out = []
    for n, claim in enumerate(claims, start=1):
        check = check_fn(claim.claim)
        top = [(h.paper.id, round(float(h.relevance or 0.0), 4)) for h in check.hits[:5]]
        result = ClaimResult(
            id=claim.id,
            predicted=predict(check),
            examined={
                v.paper.id: {
                    "label": v.label,
                    "reply": v.reply,
                    "relevance": v.relevance,
                    "sentence_ids": v.sentence_ids,
                }
                for v in check.verdicts
            },
            baseline={top[0][0]: ("SUPPORT", [])} if top else {},
            top=top,
            seconds=round(float(check.timings.get("total", 0.0)), 3),
            error=check.error,
        )
        out.append(result)
        if progress is not None:
            progress(n, len(claims), result)
    return out


def figures(claims: Sequence[Claim], results: Sequence[ClaimResult]) -> dict[str, Any]:
    """System and baseline metrics, and seconds per claim, for each half and for all claims run."""
    by_id = {r.id: r for r in results}
    out: dict[str, Any] = {}
    for half in ("tune", "held-out", "all"):
        chosen = [c for c in claims if c.id in by_id and (half == "all" or half_of(c.id) == half)]
        if not chosen:
            continue
        seconds = [by_id[c.id].seconds for c in chosen]
        out[half] = {
            "ids": f"{len(chosen)} claims",
            "system": score(chosen, {c.id: by_id[c.id].predicted for c in chosen}),
            "baseline": score(chosen, {c.id: by_id[c.id].baseline for c in chosen}),
            "median_seconds": round(statistics.median(seconds), 2),
            "errors": sum(by_id[c.id].error is not None for c in chosen),
        }
    return out


def to_markdown(report: dict[str, Any]) -> str:
    """The figures as Markdown tables: per half, system vs baseline, then the confusion matrices."""
    lines = [
        f"# SciFact claims, abstract level, open setting ({report.get('model', '')})",
        "",
        "| half | system | label-only P / R / F1 | label+rationale P / R / F1 | CONTRADICT found "
        "| median s/claim |",
        "|---|---|---|---|---|---|",
    ]
    for half, fig in report["figures"].items():
        for who in ("system", "baseline"):
            m = fig[who]
            lo, lr = m["label_only"], m["label_rationale"]
            rationale = (
                "—" if who == "baseline" else f"{lr['precision']:.3f} / {lr['recall']:.3f} / {lr['f1']:.3f}"
            )
            seconds = f"{fig['median_seconds']:.1f}" if who == "system" else ""
            name = "rag check" if who == "system" else "top-1 → SUPPORT"
            lines.append(
                f"| {HALF_NAMES[half]}, {fig['ids']} | {name} | "
                f"{lo['precision']:.3f} / {lo['recall']:.3f} / {lo['f1']:.3f} | {rationale} | "
                f"{m['contradict_found']:.3f} | {seconds} |"
            )
    for half, fig in report["figures"].items():
        conf = fig["system"]["confusion"]
        lines += ["", f"Confusion, {HALF_NAMES[half]} (rows gold, columns predicted):", ""]
        lines += ["| gold \\ predicted | SUPPORT | CONTRADICT | no verdict |", "|---|---|---|---|"]
        for gold, row in conf.items():
            name = "not evidence" if gold == "NONE" else gold
            lines.append(f"| {name} | {row['SUPPORT']} | {row['CONTRADICT']} | {row['NOT_ENOUGH_INFO']} |")
    lines += ["", report.get("note", "")]
    return "\n".join(lines).rstrip() + "\n"


def select(claims: Iterable[Claim], half: str = "all", limit: int | None = None) -> list[Claim]:
    chosen = [c for c in claims if half == "all" or half_of(c.id) == half]
    return chosen[:limit] if limit else chosen


PUBLISHED_NOTE = (
    "Published open-setting figures (VeriSci: Wadden et al., EMNLP 2020; MultiVerS: Wadden et al., "
    "Findings of NAACL 2022) are not printed: they could not be checked against a source available on this "
    "machine."
)


def run_claims_eval(
    path: str | Path,
    *,
    settings: Any,
    model: str | None = None,
    half: str = "all",
    limit: int | None = None,
    check_fn: Callable[[str], Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Load the claims, run them, and return the report (figures per half, per-claim results)."""
    claims = select(load_claims(path), half, limit)
    if check_fn is None:
        from rag.claims import check_claim

        def check_fn(text: str) -> Any:
            return check_claim(text, model=model, settings=settings)

    results = run_claims(claims, check_fn, progress=_progress if progress else None)
    return {
        "task": "claims",
        "claims_file": str(path),
        "model": model or settings.llm.model,
        "figures": figures(claims, results),
        "results": [r.model_dump() for r in results],
        "note": PUBLISHED_NOTE,
    }


def _progress(n: int, total: int, result: ClaimResult) -> None:
    labels = ", ".join(f"{d}:{v['label'][:3]}" for d, v in result.examined.items()) or "no verdict"
    sys.stderr.write(f"[{n}/{total}] claim {result.id}: {labels} ({result.seconds:.1f} s)\n")
