"""``python -m asyncnet demo``: its claims checked from outside, not by its own "[ok]" lines.

The demo grades itself; these tests do not rely on that. They check the exit
status, parse the figures it prints and hold them against facts that do not
come from the demo's own checks (the sizes the URLs ask for, the delays the
server enforces, the concurrency limit), and compare its report with the
counters of the very servers it ran, read by the test.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncnet._cli import _demo
from asyncnet._cli._demo_server import DemoHTTPServer
from asyncnet._echo import EchoServer, start_echo_server

ROOT = Path(__file__).resolve().parents[2]

# What the demo says it does, written down here rather than imported from it.
ECHO_MIB = 4
HIGH_WATER_KIB = 64
ONE_READ_KIB = 256
CONCURRENCY = 8
READ_TIMEOUT = 0.5
SLOW_DELAY = 0.2
# kind: (URLs, URLs ok, what the first one's result must be).
URL_KINDS = {
    "fast": (16, 16, "200, 1024 bytes"),  # /fast?size=1024
    "slow": (8, 8, "200, 2048 bytes"),  # /slow?size=2048
    "chunked": (3, 3, "200, 32768 bytes"),  # 8 chunks of 4096
    "gzip": (3, 3, "200, 65536 bytes"),  # decoded size
    "redirect": (3, 3, "200, 64 bytes"),  # ends at /fast, 64 bytes by default
    "stuck": (1, 0, "ReadTimeout"),
    "dead port": (1, 0, "ConnectError"),
}


def _unwrap(out: str) -> str:
    """The narration with each wrapped item joined back onto one line.

    The demo wraps to the terminal; an item's continuation lines are indented
    deeper than the item, so joining them restores the sentence a figure is in.
    """
    lines: list[str] = []
    for line in out.splitlines():
        if lines and line.startswith("    ") and lines[-1].startswith("  "):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return "\n".join(lines)


def _figures(out: str) -> dict[str, Any]:
    """Pull the measured figures out of the demo's narration (AssertionError if one is missing)."""
    out = _unwrap(out)

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out, re.MULTILINE)
        assert match is not None, (pattern, out)
        return match

    echo = find(
        r"echoed ([\d.]+) MiB in [\d.]+ s; the server paused reading (\d+) times .*"
        r"its largest write buffer was (\d+) KiB"
    )
    kinds = {}
    for kind in URL_KINDS:
        m = find(rf"^  {kind} +(\d+) URLs, +(\d+) ok   e\.g\. (.+) in ([\d.]+) s$")
        kinds[kind] = (int(m[1]), int(m[2]), m[3], float(m[4]))
    return {
        "mib": echo[1],
        "pauses": int(echo[2]),
        "buffer_kib": int(echo[3]),
        "kinds": kinds,
        "urls": int(find(r"sum of the (\d+) individual times")[1]),
        "http": find(r"http: (\d+)/(\d+) URLs ok .* \(peak (\d+) at the server\)").groups(),
    }


def _check_figures(figures: dict[str, Any]) -> None:
    assert figures["mib"] == f"{ECHO_MIB:.1f}"
    # It must have paused at least once, and a pause happens only above the mark.
    assert figures["pauses"] >= 1
    assert HIGH_WATER_KIB <= figures["buffer_kib"] <= HIGH_WATER_KIB + ONE_READ_KIB
    for kind, (count, ok, first) in URL_KINDS.items():
        got_count, got_ok, got_first, _ = figures["kinds"][kind]
        assert (got_count, got_ok, got_first) == (count, ok, first), kind
    # Lower bounds only: the server waits SLOW_DELAY before it answers, and the
    # stuck URL cannot fail before its read timeout has run out.
    assert figures["kinds"]["slow"][3] >= SLOW_DELAY
    assert figures["kinds"]["stuck"][3] >= READ_TIMEOUT
    total = sum(count for count, _, _ in URL_KINDS.values())
    ok_urls = sum(ok for _, ok, _ in URL_KINDS.values())
    assert figures["urls"] == total
    ok_text, total_text, peak = figures["http"]
    assert (int(ok_text), int(total_text)) == (ok_urls, total)
    # Overlap and the limit, as the server counted them.
    assert 2 <= int(peak) <= CONCURRENCY


def test_demo_exits_zero_and_its_figures_hold() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-m", "asyncnet", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -X dev: no unclosed transport and no never-retrieved exception. Its
    # "Executing <Task ...> took N seconds" lines are timing on a loaded
    # machine, not defects, so they are set aside.
    stderr = [
        line
        for line in proc.stderr.splitlines()
        if not (line.startswith("Executing <") and line.endswith(" seconds"))
    ]
    assert stderr == [], proc.stderr
    _check_figures(_figures(proc.stdout))


async def test_demo_report_matches_its_servers_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo's own servers, kept by the test so their counters can be read
    # after the run; they are the real servers, only remembered.
    echo_servers: list[EchoServer] = []
    http_servers: list[DemoHTTPServer] = []

    async def remembered_echo_server(*args: Any, **kwargs: Any) -> EchoServer:
        server = await start_echo_server(*args, **kwargs)
        echo_servers.append(server)
        return server

    class RememberedHTTPServer(DemoHTTPServer):
        def __init__(self) -> None:
            super().__init__()
            http_servers.append(self)

    monkeypatch.setattr(_demo, "start_echo_server", remembered_echo_server)
    monkeypatch.setattr(_demo, "DemoHTTPServer", RememberedHTTPServer)
    out = io.StringIO()
    assert await _demo.run_demo(out) == 0, out.getvalue()
    figures = _figures(out.getvalue())
    _check_figures(figures)

    [echo] = echo_servers
    stats = echo.statistics()
    assert stats.total_connections == 1
    assert stats.bytes_received == stats.bytes_sent == ECHO_MIB * 1024 * 1024
    assert stats.write_pauses == figures["pauses"]
    assert stats.max_write_buffer // 1024 == figures["buffer_kib"]
    assert stats.max_write_buffer > HIGH_WATER_KIB * 1024

    [http] = http_servers
    counters = http.counters()
    # 16 fast, 8 slow and the stuck one, 3 chunked, 3 gzip, and 3 chains of
    # 3 redirects each ending at /fast; the dead port never reaches it.
    assert counters.paths == {"/fast": 19, "/slow": 9, "/chunked": 3, "/gzip": 3, "/redirect": 9}
    assert counters.requests == 43
    assert counters.in_flight == 0
    assert counters.peak_in_flight == int(figures["http"][2])


def test_demo_help() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "asyncnet", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0
    assert "loopback" in proc.stdout


def test_demo_wraps_to_the_terminal_explains_the_bound_and_says_where_next() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", COLUMNS="50")
    proc = subprocess.run(
        [sys.executable, "-m", "asyncnet", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # Table rows (the URL kinds, the commands) are never broken; everything
    # else, the sentences, fits in 49 columns.
    rows = re.compile(r"^  (\S+( port)? +\d+ URLs,|python -m asyncnet )")
    prose = [line for line in lines if not rows.match(line)]
    assert all(len(line) <= 49 for line in prose), [x for x in prose if len(x) > 49]
    assert sum(len(line) > 49 for line in lines) <= len(URL_KINDS) + 3
    text = _unwrap(proc.stdout)
    # The memory bound it checks is explained: high water plus one read.
    bound = HIGH_WATER_KIB + ONE_READ_KIB
    assert re.search(rf"Why {bound} KiB: .*{HIGH_WATER_KIB} KiB high-water mark", text), text
    # It ends by saying where to go next.
    tail = text[text.index("== Where to go next ==") :]
    assert "python -m asyncnet --help" in tail and "fetch --help" in tail
    assert "docs/" in tail
    _check_figures(_figures(proc.stdout))
