"""Every command README shows is run here (or by CI: `make test` is what `.ci/run` calls).

The README's set-up is exactly two commands (`make run`, `make test`); `make run` is started for real on a
free port and must serve the chat UI. Each `rag …` line of README's usage block is run verbatim against a
temporary data home.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from netutil import free_port, stop, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    lines = [ln.split("  #")[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_readme_setup_is_exactly_two_make_commands() -> None:
    make = [c for c in _commands() if c.startswith("make")]
    assert make == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    others = [c for c in _commands() if not c.startswith(("make", "rag "))]
    assert others == [], f"README shows commands no test runs: {others}"


@pytest.mark.slow
def test_readme_rag_commands_run(rag_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    commands = [c for c in _commands() if c.startswith("rag ") and not c.startswith("rag ui")]
    assert any(c.startswith("rag index") for c in commands) and any(c.startswith("rag ask") for c in commands)
    commands.sort(key=lambda c: not c.startswith("rag index"))  # index first
    for command in commands:  # from a scratch folder, so `rag eval` writes its reports there
        proc = subprocess.run(
            shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, f"{command!r} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert proc.stdout.strip(), f"{command!r} printed nothing"


@pytest.mark.slow
def test_make_run_serves_the_chat_ui(rag_home: Path) -> None:
    """`make run` (set-up already done by `make test`) indexes the seeds and serves the UI."""
    port = free_port()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        html = wait_for_http(f"http://127.0.0.1:{port}/", proc, 600, interval=2) or ""
        assert proc.poll() is None, f"make run exited early:\n{proc.stdout.read() if proc.stdout else ''}"
        assert "gradio" in html.lower()
        assert (rag_home / "index" / "current.json").exists()  # `rag index` ran into this home
    finally:
        stop(proc, 30, group=True)


@pytest.mark.slow
def test_readme_python_snippet_runs(rag_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example runs as shown (real index, real local model) and does what it says."""
    monkeypatch.setenv("RAG_LLM__TIMEOUT", "900")  # a slow shared CPU must not turn the answer into a timeout
    [snippet] = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    scope: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - our own README
    papers, hits, a = scope["papers"], scope["hits"], scope["a"]
    assert len(papers) == 208  # type: ignore[arg-type]
    assert hits.filters.authors and hits.filters.year_min == 2019  # type: ignore[attr-defined]
    assert a.error is None and (a.abstained or a.citations)  # type: ignore[attr-defined]
