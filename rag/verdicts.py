"""Reading a verdict label out of a model's reply, leniently: any wording, any case, extra words, Markdown.

The model is asked for one word (``TRUE`` or ``FALSE``: the wording the 1.5B model followed best on the odd
SciFact claims; ``SUPPORT``/``CONTRADICT`` made it answer CONTRADICT to everything); small models add
words, answer "Yes"/"No", write "Supported." or "refutes". What cannot be read as one label is
``NOT_ENOUGH_INFO``: an unreadable reply is never a crash and never a guess.
"""

from __future__ import annotations

import re
from typing import Literal

Label = Literal["SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"]
LABELS: tuple[Label, ...] = ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")

_NEI = re.compile(
    r"\b(?:none|neither|not[\s_-]+enough|nei|insufficient|unrelated|irrelevant|unclear|unknown|cannot\s+tell|"
    r"can'?t\s+tell|no\s+(?:evidence|information|info)|does\s+not\s+(?:address|mention|say|discuss)|n/?a)\b",
    re.IGNORECASE,
)
_CONTRADICT = re.compile(
    r"\b(?:contradict\w*|refut\w*|disprov\w*|oppos\w*|conflict\w*|against|false|no|incorrect|disagree\w*|"
    r"does\s+not\s+support|doesn'?t\s+support|not\s+support\w*)\b",
    re.IGNORECASE,
)
_SUPPORT = re.compile(
    r"\b(?:support\w*|confirm\w*|agree\w*|consistent|true|yes|correct|entail\w*)\b", re.IGNORECASE
)


_CLEAN = frozenset({"support", "supports", "contradict", "contradicts", "true", "false", "none"})


def parse_label(reply: str) -> tuple[Label, bool]:
    """The label a reply gives, and whether it was clean (the reply's first word is exactly one label).

    The first label word wins ("CONTRADICT. The paper supports the opposite" is CONTRADICT); "not support"
    reads as CONTRADICT, "not enough"/"none"/"neither" as NOT_ENOUGH_INFO; nothing readable is
    NOT_ENOUGH_INFO (not clean).
    """
    text = " ".join((reply or "").replace("*", " ").replace("_", " ").split())
    if not text:
        return "NOT_ENOUGH_INFO", False
    found: list[tuple[int, Label]] = []
    for pattern, label in ((_NEI, "NOT_ENOUGH_INFO"), (_CONTRADICT, "CONTRADICT"), (_SUPPORT, "SUPPORT")):
        match = pattern.search(text)
        if match:
            found.append((match.start(), label))  # type: ignore[arg-type]
    if not found:
        return "NOT_ENOUGH_INFO", False
    start, label = min(found, key=lambda f: f[0])
    first = re.sub(r"[^a-z]", "", text.split()[0].lower())
    clean = start == 0 and first in _CLEAN
    return label, clean
