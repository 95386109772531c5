"""Hardened, streaming XML for the arXiv Atom and PubMed readers (defusedxml; the one door to it).

`elements(path, tag)` feeds the file to defusedxml's parser in 64 KiB pieces and yields each complete
``tag`` element with the line where it starts, then drops it, so memory stays flat in the file size.
Entity declarations (billion laughs), external entities and DTD fetching are refused by defusedxml:
the file is reported, never expanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement

from rag.errors import SourceError
from rag.sources.records import open_binary


def local(tag: str) -> str:
    """``{http://www.w3.org/2005/Atom}entry`` → ``entry``."""
    return tag.rsplit("}", 1)[-1]


class _Collector:
    """Parser target that builds only the ``tag`` elements (anything outside them is dropped) and notes
    the line where each starts."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.stack: list[Element] = []
        self.parser: Any = None
        self.done: list[tuple[int, Element]] = []
        self.line = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if not self.stack:
            if local(tag) != self.tag:
                return
            self.line = self.parser.CurrentLineNumber if self.parser is not None else 0
            elem = Element(tag, attrs)
        else:
            elem = SubElement(self.stack[-1], tag, attrs)
        self.stack.append(elem)

    def end(self, tag: str) -> None:
        if not self.stack:
            return
        elem = self.stack.pop()
        if not self.stack:
            self.done.append((self.line, elem))

    def data(self, data: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if len(top):
            top[-1].tail = (top[-1].tail or "") + data
        else:
            top.text = (top.text or "") + data

    def close(self) -> None:
        return None


def elements(path: Path, tag: str) -> Iterator[tuple[int, Element]]:
    """Each ``tag`` element of the file with its start line (see the module doc)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    target = _Collector(tag)
    parser = DefusedXMLParser(target=target, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    target.parser = parser.parser
    try:
        with open_binary(path) as fh:
            while chunk := fh.read(64 * 1024):
                parser.feed(chunk)
                yield from target.done
                target.done.clear()
            parser.close()
            yield from target.done
    except DefusedXmlException as exc:
        raise SourceError(
            path,
            f"refused: the XML declares entities or external references ({type(exc).__name__}); "
            "export it again without a DTD internal subset.",
            line=parser.parser.CurrentLineNumber,
        ) from exc
    except ParseError as exc:
        raise SourceError(
            path,
            f"not well-formed XML ({exc}); the records before this point were kept.",
            line=getattr(exc, "position", (None,))[0],
        ) from exc
