"""Prompt templates: Jinja2 files in ``prompts/``, placeholders checked when a template is loaded.

The repository's ``prompts/`` folder is searched first (edit a template and the next call uses it), then the
copy packaged inside the wheel (``rag/_prompts``, a link to ``prompts/`` in the source tree). A template whose
placeholders differ from the ones the code fills raises :class:`~rag.errors.PromptError` naming the file, so
a typo in a template fails at load time, not half-way through an answer. Rendering uses ``StrictUndefined``:
a value the code forgot to pass raises instead of rendering as an empty string.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from rag.errors import PromptError
from rag.settings import PROJECT_ROOT

ANSWER_SYSTEM = "answer_system.j2"
ANSWER_USER = "answer_user.j2"
LIST_LEAD_SYSTEM = "list_lead_system.j2"
LIST_LEAD_USER = "list_lead_user.j2"
CLAIM_SYSTEM = "claim_system.j2"
CLAIM_USER = "claim_user.j2"
CONFIRM_SYSTEM = "confirm_system.j2"
CONFIRM_USER = "confirm_user.j2"

# Every template the code renders, with the placeholders the code fills.
EXPECTED: dict[str, frozenset[str]] = {
    ANSWER_SYSTEM: frozenset({"cannot_answer"}),
    ANSWER_USER: frozenset({"question", "papers", "history_note"}),
    LIST_LEAD_SYSTEM: frozenset(),
    LIST_LEAD_USER: frozenset({"question", "items"}),
    CLAIM_SYSTEM: frozenset(),
    CLAIM_USER: frozenset({"claim", "title", "sentences"}),
    CONFIRM_SYSTEM: frozenset(),
    CONFIRM_USER: frozenset({"question", "title", "abstract"}),
}


def prompt_dirs() -> list[Path]:
    """Folders searched for templates, first match wins: the repository's ``prompts/``, then the package's."""
    dirs = [PROJECT_ROOT / "prompts"]
    try:
        packaged = Path(str(resources.files("rag") / "_prompts"))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - rag is always importable here
        packaged = Path(__file__).resolve().parent / "_prompts"
    if packaged.resolve() != dirs[0].resolve():
        dirs.append(packaged)
    return [d for d in dirs if d.is_dir()]


def find_template(name: str, dirs: list[Path] | None = None) -> Path:
    """The file for template ``name``; raises :class:`PromptError` listing the folders searched."""
    searched = dirs if dirs is not None else prompt_dirs()
    for folder in searched:
        path = folder / name
        if path.is_file():
            return path
    where = ", ".join(str(d) for d in searched) or "(no prompt folder exists)"
    raise PromptError(
        f"Prompt template {name!r} not found; searched {where}. "
        "Restore it from the repository (prompts/) or reinstall rag."
    )


def _environment(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def load_template(
    name: str, expected: frozenset[str] | set[str] | None = None, dirs: list[Path] | None = None
) -> jinja2.Template:
    """Load template ``name`` and check that its placeholders are exactly ``expected``.

    ``expected`` defaults to the set registered in :data:`EXPECTED`. Raises :class:`PromptError` naming
    the file when it is missing, does not parse, or uses other placeholders than the code fills.
    """
    want = frozenset(expected) if expected is not None else EXPECTED.get(name)
    if want is None:
        raise PromptError(f"No placeholder set is registered for prompt template {name!r}.")
    path = find_template(name, dirs)
    return _load_checked(path, want)


@functools.lru_cache(maxsize=32)
def _cached(path: Path, mtime_ns: int, want: frozenset[str]) -> jinja2.Template:
    env = _environment(path.parent)
    try:
        source = path.read_text(encoding="utf-8")
        found = meta.find_undeclared_variables(env.parse(source))
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: cannot read the prompt template: {exc}") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"{path}:{exc.lineno}: template syntax error: {exc.message}") from exc
    if found != want:
        missing = sorted(want - found)
        unknown = sorted(found - want)
        parts = []
        if unknown:
            parts.append("unknown placeholder(s) " + ", ".join(unknown))
        if missing:
            parts.append("missing placeholder(s) " + ", ".join(missing))
        raise PromptError(
            f"{path}: {'; '.join(parts)}. The code fills exactly: {', '.join(sorted(want))}; "
            "fix the template to use those names."
        )
    return env.from_string(source)


def _load_checked(path: Path, want: frozenset[str]) -> jinja2.Template:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise PromptError(f"{path}: cannot read the prompt template: {exc}") from exc
    return _cached(path, mtime, want)


def render(name: str, dirs: list[Path] | None = None, **values: Any) -> str:
    """Render template ``name`` with ``values`` (which must be exactly its registered placeholders)."""
    template = load_template(name, dirs=dirs)
    try:
        return template.render(**values).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"Prompt template {name!r}: {exc.message}") from exc


def check_all(dirs: list[Path] | None = None) -> list[Path]:
    """Load every registered template (fails fast on a broken one); returns the files used."""
    paths = []
    for name, want in EXPECTED.items():
        path = find_template(name, dirs)
        _load_checked(path, want)
        paths.append(path)
    return paths
