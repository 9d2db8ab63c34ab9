"""``python -m asyncnet demo`` runs on loopback, checks its own claims, and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_exits_zero_and_explains_itself() -> None:
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
    out = proc.stdout
    for phrase in [
        "== 1. Flow control",
        "[ok] every byte came back",
        "[ok] the server paused instead of buffering",
        "[ok] the server's buffer stayed bounded",
        "== 2. Fetching many URLs at once",
        "[ok] the requests overlapped",
        "[ok] the limit held",
        "[ok] the stuck URL hit its timeout",
        "[ok] the dead port gave a connection error",
        "[ok] nothing else was disturbed",
        "== Summary ==",
        "every claim held",
    ]:
        assert phrase in out, (phrase, out)
    assert "FAILED" not in out


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
