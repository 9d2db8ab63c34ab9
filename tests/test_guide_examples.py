"""Every guide example under ``docs/examples/`` runs on loopback, exits 0 and shows its point.

Each example is run as its own process, exactly as a reader would run it.
The checks look for the sentences that carry each lesson's claim, not for
the measured numbers (those vary from machine to machine).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
ROOT = EXAMPLES.parent.parent

# For each lesson: phrases its output must contain.
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "lesson1_scheduling.py": [
        "the log is []: the body never ran",
        "await a; await b",
        "create_task(a), create_task(b)",
        "speed-up from scheduling both at once",
    ],
    "lesson2_waiting.py": [
        "gather results, in argument order: [0.06, 0.02, 0.04]",
        "gather raised the first exception: ValueError",
        "gather(return_exceptions=True) -> [0.02, ValueError",
        "2 done, 1 pending",
        "as_completed order: [0.01, 0.03, 0.05]",
        "TaskGroup raised 1 ValueError(s); sibling: ['long job was cancelled']",
        "after awaiting it: done=True, cancelled=True, cleaned up=True",
    ],
    "lesson3_flow_control.py": [
        "without drain(): wrote 8192 KiB to a peer that reads nothing",
        "with drain():    the writer stopped after",
        "protocol callbacks after one big write: ['pause_writing at",
        "asyncnet echo server, slow reader: 2048 KiB echoed; the server paused reading",
    ],
    "lesson4_closing.py": [
        "after close():       is_closing=True, server saw EOF=False",
        "after wait_closed(): the socket is closed, server saw EOF=True",
        "server handlers running=1",
        "closed properly: server handlers running=0",
        "new connections are refused",
    ],
    "lesson5_limits.py": [
        "Semaphore(4), 20 requests of 0.05 s: 20 done in",
        "fetch_all(concurrency=6, per_host=2), 40 URLs on 2 hosts: 40 ok in",
        "results come back in input order, whatever finishes first: True",
    ],
    "lesson6_blocking.py": [
        "time.sleep(0.3) inside a coroutine",
        "urllib.request.urlopen (0.3 s server)",
        "await asyncio.to_thread(urlopen, ...)",
    ],
}


@functools.cache
def _run(name: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-X", "dev", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(EXAMPLES),
        env=env,
        check=False,
    )


def _is_slow_callback_log(line: str) -> bool:
    return line.startswith("Executing <") and " took " in line and line.endswith(" seconds")


# Servers run with real clients by tests/framing/test_protocol_examples.py.
CHECKED_ELSEWHERE = {"chat_server.py", "resp_server.py", "rpc.py"}
# The HTTP client page's examples, run by tests/http/test_http_client_examples.py.
CHECKED_ELSEWHERE |= {
    "http_auth.py", "http_cookies.py", "http_expect.py", "http_forms.py",
    "http_max_body.py", "http_params.py", "http_streams.py",
}
# The tracing and mocking examples, run by tests/http/test_http_hooks_trace.py
# and tests/http/test_http_mock.py.
CHECKED_ELSEWHERE |= {"trace_histogram.py", "test_mock_recipe.py"}


def test_every_example_is_checked() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert on_disk == set(EXPECTED_OUTPUT) | CHECKED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_and_shows_its_point(name: str) -> None:
    proc = _run(name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -X dev turns on asyncio debug checks: no unclosed transports, no
    # never-retrieved exceptions, nothing left behind.
    # Debug mode also logs "Executing <Task ...> took 0.300 seconds" for any
    # step that held the loop over 100 ms: lesson 6 does so on purpose, and on
    # a loaded machine any step can; that is timing, not a defect.
    lines = [ln for ln in proc.stderr.splitlines() if not _is_slow_callback_log(ln)]
    stderr = "\n".join(lines)
    assert stderr == "", proc.stderr
    for phrase in EXPECTED_OUTPUT[name]:
        assert phrase in proc.stdout, (phrase, proc.stdout)


def test_blocking_lesson_measures_the_freeze() -> None:
    """The blocking calls must show a much longer heartbeat gap than the threaded one."""
    proc = _run("lesson6_blocking.py")
    assert proc.returncode == 0, proc.stderr
    gaps = {}
    for line in proc.stdout.splitlines():
        if "longest heartbeat gap:" in line:
            label, _, value = line.partition("longest heartbeat gap:")
            gaps[label.strip()] = float(value.split()[0])
    assert len(gaps) == 4, proc.stdout
    frozen = gaps["time.sleep(0.3) inside a coroutine"]
    threaded = gaps["await asyncio.to_thread(urlopen, ...)"]
    # The frozen gap includes the whole 300 ms block by construction.
    assert frozen >= 300.0
    assert gaps["urllib.request.urlopen (0.3 s server)"] >= 300.0
    assert threaded < frozen


def test_flow_control_lesson_shows_drain_bounding_the_buffer() -> None:
    proc = _run("lesson3_flow_control.py")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    without = next(x for x in lines if x.startswith("without drain()"))
    with_drain = next(x for x in lines if x.startswith("with drain()"))
    buffered_without = int(without.split("; ")[1].split()[0])
    buffered_with = int(with_drain.split("buffered: ")[1].split()[0])
    # Without drain nearly everything stays in the process; with it, a bounded amount.
    assert buffered_without > 4096
    assert buffered_with <= 16 + 64 + 64  # high-water mark plus a chunk, with room
    echo = next(x for x in lines if x.startswith("asyncnet echo server"))
    pauses = int(echo.split("paused reading ")[1].split()[0])
    peak = int(echo.split("peaked at ")[1].split()[0])
    assert pauses >= 1
    assert peak <= 64 + 256  # the mark plus one read of at most 256 KiB


def test_limits_lesson_shows_the_limits_held_at_the_servers() -> None:
    proc = _run("lesson5_limits.py")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    sem = next(x for x in lines if x.startswith("Semaphore(4)"))
    assert int(sem.split("at most ")[1].split()[0]) <= 4
    fetch = next(x for x in lines if x.startswith("fetch_all("))
    per_host = fetch.split("peak in flight per host: ")[1].split()
    assert int(per_host[0]) <= 2 and int(per_host[2]) <= 2
