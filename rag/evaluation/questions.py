"""The question set: loading and checking ``eval/questions.jsonl``, choosing questions, and the two
halves (odd ids tune, even ids held out)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.errors import ConfigError
from rag.evaluation.records import HALVES, KINDS, Question
from rag.settings import PROJECT_ROOT


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


def half(question_id: str) -> str:
    """``"tune"`` for odd question ids ("q001"), ``"held-out"`` for even ones ("q002").

    Anything calibrated on the question set looks only at the tune half; the held-out half is only
    reported. The number is the last run of digits in the id.
    """
    digits = re.findall(r"\d+", question_id)
    if not digits:
        raise ConfigError(f"Question id {question_id!r} has no number; the halves are defined by id number.")
    return "tune" if int(digits[-1]) % 2 else "held-out"


def half_of(question_id: str) -> str | None:
    """Like :func:`half`, but None for an id without a number (such a question is in neither half)."""
    return half(question_id) if re.search(r"\d", question_id) else None


def in_half(question_id: str, which: str) -> bool:
    """Whether a question belongs to ``which`` (``all`` holds every question)."""
    if which not in HALVES:
        raise ConfigError(f"Unknown half {which!r}; choose from {', '.join(HALVES)}.")
    return which == "all" or half(question_id) == which


def select(
    questions: Sequence[Question],
    kinds: Iterable[str] | None = None,
    limit: int | None = None,
    per_kind: int | None = None,
    half: str = "all",
) -> list[Question]:
    """Questions of the given kinds (all when empty) in the given half, at most ``per_kind`` of each
    kind, at most ``limit``."""
    wanted = set(kinds or [])
    unknown = wanted - set(KINDS)
    if unknown:
        raise ConfigError(f"Unknown kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}.")
    chosen = [q for q in questions if (not wanted or q.kind in wanted) and in_half(q.id, half)]
    if per_kind:
        taken: dict[str, int] = {}
        kept: list[Question] = []
        for q in chosen:
            taken[q.kind] = taken.get(q.kind, 0) + 1
            if taken[q.kind] <= per_kind:
                kept.append(q)
        chosen = kept
    return chosen[:limit] if limit else chosen
