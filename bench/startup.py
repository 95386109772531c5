"""Cold start: fresh processes of `rag search`, `rag ask` (to the first token) and `rag ui` (to the page).

Each run is a new Python process on the seeds index of the default home; the figure is the median of
``--runs``. Wall time is from launch to: exit (search), the first streamed answer text (ask, via a probe
that records when ``answer_stream`` yields its first text), the page answering HTTP 200 (ui). CPU time is
the process's user + system seconds (a steadier figure on a shared machine). ``ask-server`` is `rag ask
--server-url` against a `rag ui` started (and warmed by one answer) before the runs: the client process's
time to the first text, with the server's own first-token time (warm) printed beside it. ``--tree`` runs
the same commands from another checkout (e.g. the commit before) in alternation with this one, so both see
the same machine load.

    .venv/bin/python bench/startup.py --what search --runs 5
    .venv/bin/python bench/startup.py --what search,ask,ui --runs 3 --tree /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is Frost Training?"

_PROBE = """
import sys, time
import {module}
real = {module}.{function}
def timed(*a, **k):
    seen = False
    for item in real(*a, **k):
        if not seen and isinstance(item, str) and item.strip():
            seen = True
            print("FIRST_TOKEN", time.time(), file=sys.stderr, flush=True)
        if {server} and hasattr(item, "timings") and "first_token" in item.timings:
            print("SERVER_FIRST_TOKEN", item.timings["first_token"], file=sys.stderr, flush=True)
        yield item
{module}.{function} = timed
from rag.cli import main
sys.exit(main({argv}))
"""
"""Runs `rag ask` with ``module.function`` (the answer stream it reads) wrapped to record the first text."""

_ASK_PROBE = _PROBE.format(
    module="rag.pipeline", function="answer_stream", server=False, argv='["ask", sys.argv[1]]'
)
_SERVER_PROBE = _PROBE.format(
    module="rag.remote", function="remote_stream", server=True,
    argv='["ask", "--server-url", sys.argv[2], sys.argv[1]]',
)


TREE_HOMES: dict[Path, str] = {}
"""A data home per checkout (``--tree-home``): an older checkout may not read this one's index."""


def _env(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if tree in TREE_HOMES:
        env["RAG_HOME"] = TREE_HOMES[tree]
    for key, value in (
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
        ("HF_HUB_OFFLINE", "1"),
        ("GRADIO_ANALYTICS_ENABLED", "False"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
        env.setdefault(key, value)
    return env


def _cpu(rusage: object) -> float:
    return float(rusage.ru_utime + rusage.ru_stime)  # type: ignore[attr-defined]


def run_search(tree: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "rag", "search", "edge of stability", "--k", "3"]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"search failed in {tree}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return time.time() - started, _cpu(rusage)


def _first_token(tree: Path, cmd: list[str]) -> tuple[float, float]:
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(b"FIRST_TOKEN"):
            first = float(line.split()[1])
        elif line.startswith(b"SERVER_FIRST_TOKEN"):
            SERVER_FIRST.append(float(line.split()[1]))
    _, _, rusage = os.wait4(proc.pid, 0)
    if first is None:
        raise SystemExit(f"ask produced no text in {tree}: {cmd[3:]}")
    return first - started, _cpu(rusage)


def run_ask(tree: Path) -> tuple[float, float]:
    return _first_token(tree, [sys.executable, "-c", _ASK_PROBE, QUESTION])


SERVERS: dict[Path, tuple[subprocess.Popen[bytes], str]] = {}
SERVER_FIRST: list[float] = []
"""The first-token seconds the `rag ui` reported for each `ask-server` answer (warm, in its process)."""


def _server(tree: Path) -> str:
    """A `rag ui` of ``tree`` (started once, warmed by one answer), for `rag ask --server-url`."""
    if tree not in SERVERS:
        port = _free_port()
        cmd = [sys.executable, "-m", "rag", "ui", "--port", str(port)]
        quiet = subprocess.DEVNULL
        SERVERS[tree] = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=quiet, stderr=quiet), (
            f"http://127.0.0.1:{port}/"
        )
        url = SERVERS[tree][1]
        for _ in range(600):
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        _first_token(tree, [sys.executable, "-c", _SERVER_PROBE, QUESTION, url])  # loads its models
        SERVER_FIRST.clear()
    return SERVERS[tree][1]


def run_ask_server(tree: Path) -> tuple[float, float]:
    return _first_token(tree, [sys.executable, "-c", _SERVER_PROBE, QUESTION, _server(tree)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ui(tree: Path) -> tuple[float, float]:
    port = _free_port()
    cmd = [sys.executable, "-m", "rag", "ui", "--port", str(port)]
    started = time.time()
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=quiet, stderr=quiet)
    served = None
    while served is None and proc.poll() is None and time.time() - started < 300:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                if reply.status == 200 and reply.read(200):
                    served = time.time() - started
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    _, _, rusage = os.wait4(proc.pid, 0)
    if served is None:
        raise SystemExit(f"ui did not serve its page in {tree}")
    return served, _cpu(rusage)


_HOST_PROBE = """
import json, time
t = time.perf_counter(); sum(i * i for i in range(3_000_000)); loop = time.perf_counter() - t
from rag.models import model_path
import llama_cpp
llama = llama_cpp.Llama(model_path=str(model_path()), n_ctx=1024, n_threads=2, n_batch=512, verbose=False)
tokens = llama.tokenize(("The quick brown fox jumps over the lazy dog. " * 40).encode())[:400]
speeds = []
for _ in range(2):
    llama.reset()
    t = time.perf_counter()
    llama.eval(tokens)
    speeds.append(len(tokens) / (time.perf_counter() - t))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({"cpu": cpu, "python_loop_s": round(loop, 3), "llama_prompt_tok_s": round(max(speeds), 1)}))
"""


def host_speed() -> dict[str, object]:
    """How fast this host is right now: a fixed pure-Python loop (seconds) and llama.cpp reading a
    400-token prompt on 2 threads (tokens/s). Hosts differ several-fold between days; these two figures
    let timings from different days be compared."""
    out = subprocess.run(
        [sys.executable, "-c", _HOST_PROBE], env=_env(ROOT), capture_output=True, text=True, check=False
    )
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": (out.stderr or out.stdout)[-300:]}


RUNNERS = {"search": run_search, "ask": run_ask, "ui": run_ui, "ask-server": run_ask_server}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="search", help="Comma-separated: search, ask, ui, ask-server.")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tree", type=Path, help="Another checkout, timed in alternation.")
    ap.add_argument("--tree-home", help="RAG_HOME for --tree (its own seeds index, built by that checkout).")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = ap.parse_args()
    trees = {"this": ROOT, **({"other": args.tree.resolve()} if args.tree else {})}
    if args.tree and args.tree_home:
        TREE_HOMES[args.tree.resolve()] = args.tree_home
    results: dict[str, dict[str, dict[str, object]]] = {}
    host = host_speed()
    print(f"host: {host}", flush=True)
    for what in args.what.split(","):
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                runs[name].append(RUNNERS[what](tree))
        for name, values in runs.items():
            walls = [w for w, _ in values]
            cpus = [c for _, c in values]
            row = {
                "tree": str(trees[name]),
                "wall_median_s": round(statistics.median(walls), 2),
                "cpu_median_s": round(statistics.median(cpus), 2),
                "walls_s": [round(w, 2) for w in walls],
                "load_1min": round(os.getloadavg()[0], 1),
            }
            results.setdefault(what, {})[name] = row
            print(f"{what:<6} {name:<5} wall median {row['wall_median_s']:.2f} s  cpu median "
                  f"{row['cpu_median_s']:.2f} s  walls {row['walls_s']}  load {row['load_1min']}", flush=True)
    for proc, _ in SERVERS.values():
        proc.terminate()
        proc.wait()
    if SERVER_FIRST:
        warm = round(statistics.median(SERVER_FIRST), 2)
        results["ask-server"]["server_first_token_median_s"] = warm  # type: ignore[assignment]
        print(f"ask-server: the server's own first token (warm, in its process) median {warm:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": host, **results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
