"""Helpers for tests that start real servers on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout: float, interval: float = 0.5) -> str | None:
    """Poll ``url`` until it answers 200 and return the body; None if ``proc`` exits or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return str(resp.read().decode("utf-8", "replace"))
        except OSError:
            pass
        time.sleep(interval)
    return None


def stop(proc: subprocess.Popen[Any], timeout: float, *, group: bool = False) -> None:
    """SIGTERM ``proc`` (its whole process group with ``group``), SIGKILL it after ``timeout`` s, reap it."""

    def send(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()
