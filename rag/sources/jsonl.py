"""JSON lines of papers: one object per line with at least ``title``, plus any `Paper` field.

``id`` defaults to ``paper_id(title)`` (so such papers merge with the same title on a seed page);
``source``, ``sources`` and ``line`` are always set from the file. Keys that are not `Paper` fields go
into ``extra``. A line that is not a JSON object, has no title, or has a field of the wrong type is
reported with its line number; the other lines still load.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from rag.errors import EntryParseError
from rag.sources.base import ParseResult, json_lines, squash
from rag.types import Paper, paper_id

NAME = "jsonl"
_FIELDS = set(Paper.model_fields)


def sniff_object(obj: object) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("title"), str) and "_id" not in obj


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    for lineno, obj in json_lines(text, path, result, "one paper object"):
        if not isinstance(obj, dict):
            result.problems.append(
                EntryParseError(path, f"expected a JSON object, found {type(obj).__name__}.", lineno)
            )
            continue
        title = obj.get("title")
        if not isinstance(title, str) or not title.strip():
            result.problems.append(
                EntryParseError(path, 'expected a non-empty "title" string in the object.', lineno)
            )
            continue
        fields = {k: v for k, v in obj.items() if k in _FIELDS}
        extra = dict(fields.pop("extra", None) or {})
        extra.update({k: v for k, v in obj.items() if k not in _FIELDS})
        fields.update(
            title=squash(title),
            id=str(fields.get("id") or paper_id(title)),
            source=path.name,
            sources=[path.name],
            line=lineno,
            extra=extra,
        )
        try:
            result.papers.append(Paper.model_validate(fields))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            result.problems.append(EntryParseError(path, f"field {where!r}: {err['msg']}.", lineno))
    return result
