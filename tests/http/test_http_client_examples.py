"""The HTTP client page's examples (docs/examples/http_*.py) run and print what the page says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "docs" / "examples"

EXPECTED_OUTPUT = {
    "http_params.py": [
        "the server saw: /search?lang=en&api_key=k1&q=caf%C3%A9%20%26%20tea&tag=a&tag=b&page=2",
    ],
    "http_auth.py": [
        "Basic:   Basic YWxpY2U6czNjcmV0",
        "Bearer:  Bearer tok3n",
        "Digest:  digest ok, nonce count 00000001",
        "Digest:  digest ok, nonce count 00000002",
    ],
    "http_cookies.py": [
        "with cookies=True: 200 welcome back | jar: ['sid=abc123']",
        "without a jar: TooManyRedirects after 5 responses",
    ],
    "http_forms.py": [
        "form:      application/x-www-form-urlencoded name=Zo%C3%AB&tags=a&tags=b",
        "multipart: title(field, 2 bytes), report(report.csv, 14000 bytes), note(note, 9 bytes)",
    ],
    "http_streams.py": [
        "lines:  ['first', 'second', 'third: café, no newline']",
        "event:  tick '1' id 'a'",
        "event:  message 'line one\\nline two' id 'a'",
    ],
    "http_max_body.py": [
        "/big: BodyTooLarge (limit 1000000 bytes)",
        "/bomb: BodyTooLarge (limit 1000000 bytes)",
        "/big with max_body=10_000_000: 5000000 bytes",
    ],
    "http_expect.py": [
        "small: 201 stored 1000 bytes",
        "large: 413 too large, not even sent",
    ],
}


def test_every_http_example_is_checked() -> None:
    assert {p.name for p in EXAMPLES.glob("http_*.py")} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_and_prints_its_point(name: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent.parent), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(EXAMPLES / name)],
        capture_output=True, text=True, timeout=60, cwd=str(EXAMPLES), env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stderr = [
        line for line in proc.stderr.splitlines()
        if not (line.startswith("Executing <") and " took " in line)  # a loaded machine
    ]
    assert stderr == [], proc.stderr
    assert proc.stdout.splitlines() == EXPECTED_OUTPUT[name]
