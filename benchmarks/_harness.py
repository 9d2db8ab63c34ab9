"""What the HTTP benchmarks share: contestants, pinned subprocesses, machine facts.

Each contestant runs in its own subprocess (``_contestants.py``) so that no
library's imports, event loop or garbage slow another down, pinned with
``taskset`` to the client CPU while nginx runs on the other one.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BENCHVENV_PYTHON",
    "CONTESTANTS_PY",
    "REPO_ROOT",
    "Contestant",
    "ContestantFailed",
    "available",
    "fmt_ratio",
    "machine_facts",
    "median",
    "pinned",
    "run_json",
    "stop_on_sigterm",
]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
CONTESTANTS_PY = os.path.join(HERE, "_contestants.py")
BENCHVENV_PYTHON = os.environ.get("ASYNCNET_BENCH_VENV_PYTHON", "/opt/benchvenv/bin/python")


class ContestantFailed(RuntimeError):
    """A contestant's subprocess exited with an error or printed no result."""


@dataclass(frozen=True)
class Contestant:
    """One library (and event loop) under test, and the interpreter it runs on."""

    name: str
    library: str  # the _contestants.py library name, or "wrk"
    python: str = sys.executable
    uvloop: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, job: str, options: Sequence[str]) -> list[str]:
        argv = [self.python, CONTESTANTS_PY, job, self.library, *options]
        if self.uvloop:
            argv.append("--uvloop")
        return argv


def asyncnet_env() -> dict[str, str]:
    # The asyncnet under test is this checkout's (or ASYNCNET_BENCH_ROOT's, to
    # measure another checkout), never an installed copy.
    return {"PYTHONPATH": os.environ.get("ASYNCNET_BENCH_ROOT", REPO_ROOT)}


def available(contestant: Contestant) -> str | None:
    """Return None when the contestant can run here, else the reason it cannot."""
    if contestant.library == "wrk":
        return None if shutil.which("wrk") else "wrk not installed"
    if not os.path.exists(contestant.python):
        return f"{contestant.python} not found"
    modules = {"http.client": "http.client"}.get(contestant.library, contestant.library)
    if contestant.uvloop:
        modules += ", uvloop"
    code = f"import {modules}"
    proc = subprocess.run(
        [contestant.python, "-c", code],
        env={**os.environ, **contestant.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"cannot import ({last})"
    return None


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    if cpus is None or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", cpus, *argv]


def run_json(argv: list[str], *, env: dict[str, str], timeout: float) -> tuple[dict[str, Any], int]:
    """Run a contestant; return its JSON result and its peak RSS in KiB.

    The peak RSS is ``ru_maxrss`` of that one child, from ``os.wait4``
    (``taskset`` execs the command, so the pid is the contestant's own).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ContestantFailed(f"exit {proc.returncode}: " + " | ".join(tail))
    lines = stdout.decode().strip().splitlines()
    if not lines:
        raise ContestantFailed("no output")
    result: dict[str, Any] = json.loads(lines[-1])
    return result, usage.ru_maxrss


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that a killed run still stops its nginx."""

    def handler(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "   n/a"
    return f"{a / b:6.2f}x"


def _run_text(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (proc.stdout + proc.stderr).strip()


def _asyncnet_checkout() -> str:
    root = asyncnet_env()["PYTHONPATH"]
    commit = _run_text(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = _run_text(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
    return f"{root} at {commit}" + (" (with uncommitted changes)" if dirty else "")


def machine_facts() -> dict[str, str]:
    """Facts to print above every table, so figures can be compared later."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = _run_text(
        [
            BENCHVENV_PYTHON,
            "-c",
            "import importlib.metadata as m\n"
            "print(' '.join(f'{p}={m.version(p)}' for p in ('aiohttp','httpx','uvloop')))",
        ]
    )
    return {
        "cpus": f"{os.cpu_count()} x {cpu}",
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "contestant libraries": versions.splitlines()[-1] if versions else "?",
        "nginx": _run_text(["nginx", "-v"]).replace("nginx version: ", ""),
        "asyncnet": _asyncnet_checkout(),
    }
