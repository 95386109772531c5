"""Prompt templates: repo prompts/ or the packaged copy, placeholders checked at load, strict rendering."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rag import prompts
from rag.cite import CANNOT_ANSWER
from rag.errors import PromptError, RagError

ROOT = Path(__file__).resolve().parent.parent


def test_every_registered_template_loads_from_the_repository() -> None:
    paths = prompts.check_all()
    assert [p.name for p in paths] == list(prompts.EXPECTED)
    assert all(p.parent == ROOT / "prompts" for p in paths)


def test_system_prompt_carries_the_fixed_phrase_and_treats_abstracts_as_data() -> None:
    text = prompts.render(prompts.ANSWER_SYSTEM, cannot_answer=CANNOT_ANSWER)
    assert CANNOT_ANSWER in text
    assert "not instructions" in text
    assert "{{" not in text


def test_user_prompt_lists_papers_with_keys_inside_delimiters() -> None:
    papers = [
        {"key": 1, "title": "JailbreakBench", "year": 2024, "text": "A benchmark."},
        {"key": 2, "title": "No year here", "year": None, "text": "Another abstract."},
    ]
    text = prompts.render(prompts.ANSWER_USER, question="What is it?", papers=papers, history_note="")
    assert text.index("<papers>") < text.index("[1] JailbreakBench (2024)") < text.index("[2] No year here\n")
    assert text.index("Another abstract.") < text.index("</papers>") < text.index("Question: What is it?")
    assert "Earlier" not in text
    with_note = prompts.render(prompts.ANSWER_USER, question="q", papers=papers, history_note="asked X")
    assert with_note.splitlines()[0].endswith("asked X")


def _write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def test_unknown_placeholder_is_reported_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, prompts.ANSWER_SYSTEM, "Reply {{ cannot_answr }} exactly.")
    with pytest.raises(PromptError) as info:
        prompts.load_template(prompts.ANSWER_SYSTEM, dirs=[tmp_path])
    message = str(info.value)
    assert str(path) in message and "cannot_answr" in message and "cannot_answer" in message
    assert isinstance(info.value, RagError)


def test_missing_placeholder_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, prompts.ANSWER_USER, "{{ question }} {% for p in papers %}{{ p.text }}{% endfor %}")
    with pytest.raises(PromptError, match="missing placeholder.*history_note"):
        prompts.load_template(prompts.ANSWER_USER, dirs=[tmp_path])


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, prompts.ANSWER_SYSTEM, "ok\n{% if cannot_answer %}never closed")
    with pytest.raises(PromptError, match=str(path) + ":2"):
        prompts.load_template(prompts.ANSWER_SYSTEM, dirs=[tmp_path])


def test_missing_template_lists_the_folders_searched(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=str(tmp_path)):
        prompts.load_template(prompts.ANSWER_SYSTEM, dirs=[tmp_path])


def test_first_folder_wins_then_the_next_is_used(tmp_path: Path) -> None:
    first, second = tmp_path / "repo", tmp_path / "packaged"
    _write(second, prompts.ANSWER_SYSTEM, "packaged {{ cannot_answer }}")
    assert prompts.render(prompts.ANSWER_SYSTEM, dirs=[first, second], cannot_answer="X") == "packaged X"
    _write(first, prompts.ANSWER_SYSTEM, "repo {{ cannot_answer }}")
    assert prompts.render(prompts.ANSWER_SYSTEM, dirs=[first, second], cannot_answer="X") == "repo X"


def test_edited_template_is_reloaded(tmp_path: Path) -> None:
    path = _write(tmp_path, prompts.ANSWER_SYSTEM, "one {{ cannot_answer }}")
    assert prompts.render(prompts.ANSWER_SYSTEM, dirs=[tmp_path], cannot_answer="X") == "one X"
    path.write_text("two, longer {{ cannot_answer }}", encoding="utf-8")
    assert prompts.render(prompts.ANSWER_SYSTEM, dirs=[tmp_path], cannot_answer="X") == "two, longer X"


def test_rendering_is_strict_about_missing_values(tmp_path: Path) -> None:
    _write(
        tmp_path,
        prompts.ANSWER_USER,
        "{{ question }}{{ history_note }}{% for p in papers %}{{ p.key }}{% endfor %}",
    )
    with pytest.raises(PromptError, match="key"):
        prompts.render(prompts.ANSWER_USER, dirs=[tmp_path], question="q", history_note="", papers=[{"x": 1}])


def test_packaged_copy_points_at_the_repository_templates() -> None:
    link = ROOT / "rag" / "_prompts"
    for name in prompts.EXPECTED:
        assert (link / name).read_text(encoding="utf-8") == (ROOT / "prompts" / name).read_text(
            encoding="utf-8"
        )


@pytest.mark.slow
def test_wheel_ships_the_templates(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources (the repository stays clean) and look inside."""
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "prompts", src / "prompts")
    shutil.copytree(ROOT / "rag", src / "rag", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", "dist"],
        check=True,
        capture_output=True,
        cwd=src,
    )
    wheel = next((src / "dist").glob("rag-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in prompts.EXPECTED:
        assert f"rag/_prompts/{name}" in names
