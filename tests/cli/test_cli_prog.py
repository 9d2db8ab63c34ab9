"""Usage lines name the command the way it was invoked: ``asyncnet`` or ``python -m asyncnet``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# What pip writes for the ``asyncnet = asyncnet._cli:main`` console script.
CONSOLE_SCRIPT = "import sys\nfrom asyncnet._cli import main\nsys.exit(main())\n"


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="80")
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False
    )


def test_python_m_asyncnet_says_python_m_asyncnet(tmp_path: Path) -> None:
    proc = _run([sys.executable, "-m", "asyncnet", "fetch", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m asyncnet fetch ")


def test_console_script_says_asyncnet(tmp_path: Path) -> None:
    script = tmp_path / "asyncnet"
    script.write_text(CONSOLE_SCRIPT)
    proc = _run([sys.executable, str(script), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: asyncnet [-h]")
    bad = _run([sys.executable, str(script), "echo-server", "--port", "abc"], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("usage: asyncnet echo-server ")
