"""BEIR corpus (``corpus.jsonl``): one JSON object per line with ``_id``, ``title``, ``text``, ``metadata``.

Each line becomes a `Paper` whose id is the ``_id`` as a string, whose abstract is ``text`` and whose
``extra["metadata"]`` keeps a non-empty ``metadata`` object. The source name is
``<folder>/corpus.jsonl`` (every BEIR dataset calls its file corpus.jsonl). A line that is not JSON,
not an object, lacks ``_id``/``text``, or repeats an ``_id`` is reported with its line number.
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import EntryParseError
from rag.sources.base import ParseResult, json_lines
from rag.types import Paper

NAME = "beir"


def source_name(path: Path) -> str:
    return (
        f"{path.parent.name}/{path.name}" if path.name == "corpus.jsonl" and path.parent.name else path.name
    )


def sniff_object(obj: object) -> bool:
    return isinstance(obj, dict) and "_id" in obj and "text" in obj


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(path=path, format=NAME)
    name = source_name(path)
    seen: dict[str, int] = {}
    for lineno, obj in json_lines(text, path, result, "one BEIR document"):
        if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
            result.problems.append(
                EntryParseError(
                    path, 'expected a BEIR document {"_id": …, "title": …, "text": …} on this line.', lineno
                )
            )
            continue
        doc_id = str(obj["_id"])
        if doc_id in seen:
            result.problems.append(
                EntryParseError(path, f"duplicate _id {doc_id!r} (first on line {seen[doc_id]}).", lineno)
            )
            continue
        seen[doc_id] = lineno
        title = obj.get("title") or ""
        metadata = obj.get("metadata")
        result.papers.append(
            Paper(
                id=doc_id,
                title=" ".join(str(title).split()),
                abstract=obj["text"].strip(),
                source=name,
                sources=[name],
                line=lineno,
                extra={"metadata": metadata} if metadata else {},
            )
        )
    return result
