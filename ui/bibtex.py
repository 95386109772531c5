"""'Copy BibTeX' under the cited papers: ``Answer.bibtex()`` (rag.export) as a button and as text.

The button copies the entries to the clipboard (:data:`COPY_JS`, run in the browser). Where the clipboard
API is blocked (an insecure origin, a headless browser, a refused permission) the same entries are there as
text in a read-only box, which the button then opens and selects, so Ctrl+C (⌘C) copies them.

Pure functions of rag's records (no Gradio import).
"""

from __future__ import annotations

import json
from html import escape

from rag.types import Answer

COPIED = "Copied to the clipboard."
BLOCKED = "The clipboard is blocked here: the BibTeX below is selected; press Ctrl+C (⌘C) to copy it."


def bibtex_text(answer: Answer) -> str:
    """The BibTeX of the papers the answer cites ('' for an abstention or an answer that cites nothing)."""
    if answer.abstained:
        return ""
    return answer.bibtex()


def bibtex_block(answer: Answer) -> str:
    """The 'Copy BibTeX' control and the entries as selectable text ('' when there is nothing to copy)."""
    text = bibtex_text(answer)
    if not text:
        return ""
    n = len(answer.cited_papers())  # one entry each
    entries = f"{n} entr{'y' if n == 1 else 'ies'}"
    rows = min(12, text.count("\n") + 1)
    return (
        '<div class="rag-bibtex">'
        f'<button type="button" class="rag-copy-bibtex">Copy BibTeX ({entries})</button> '
        '<span class="rag-copy-status" role="status" aria-live="polite"></span>'
        f"<details><summary>Show the BibTeX of the cited papers</summary>"
        f'<textarea class="rag-bibtex-text" readonly rows="{rows}" spellcheck="false" '
        f'aria-label="BibTeX of the cited papers">{escape(text)}</textarea></details></div>'
    )


COPY_JS = f"""
element.addEventListener('click', async (event) => {{
  const button = event.target.closest('.rag-copy-bibtex');
  if (!button) return;
  const block = button.closest('.rag-bibtex');
  const box = block.querySelector('textarea');
  const status = block.querySelector('.rag-copy-status');
  let copied = false;
  try {{
    await navigator.clipboard.writeText(box.value);
    copied = true;
  }} catch (err) {{
    copied = false;
  }}
  if (!copied) {{
    block.querySelector('details').open = true;
    box.focus();
    box.select();
  }}
  status.textContent = copied ? {json.dumps(COPIED)} : {json.dumps(BLOCKED)};
}});
"""
"""Runs once when the Sources panel loads; one delegated listener serves the button of every answer."""
