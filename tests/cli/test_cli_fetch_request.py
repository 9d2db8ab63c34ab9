"""The fetch command's request options (-X, -H, -d, --data-binary, -u, --cookies, --max-body)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import HTTPServer

ROOT = Path(__file__).resolve().parent.parent.parent


def fetch_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "asyncnet", "fetch", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def echoes(out: Path) -> list[dict[str, Any]]:
    """The /echo documents fetch wrote with --output, in file-name order."""
    docs = []
    for path in sorted(out.iterdir()):
        doc = json.loads(path.read_bytes())
        doc["headers"] = {k.lower(): v for k, v in doc["headers"]}
        docs.append(doc)
    return docs


def test_method_headers_and_basic_auth(tmp_path: Path) -> None:
    with HTTPServer() as srv:
        proc = fetch_cli(
            "-X", "delete", "-H", "X-One: 1", "-H", "X-Two:  two words ",
            "-u", "alice:pa:ss", "--output", str(tmp_path), srv.url("/echo"),
        )
    assert proc.returncode == 0, proc.stderr
    (doc,) = echoes(tmp_path)
    assert doc["method"] == "DELETE"
    assert doc["headers"]["x-one"] == "1" and doc["headers"]["x-two"] == "two words"
    assert doc["headers"]["authorization"] == "Basic YWxpY2U6cGE6c3M="


def test_data_posts_a_form_and_data_binary_sends_a_file_exactly(tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"line1\r\nline2\n\x00\xff")
    out1, out2, out3 = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    for out in (out1, out2, out3):
        out.mkdir()
    with HTTPServer() as srv:
        proc = fetch_cli("-d", "a=1", "-d", "b=x%20y", "--output", str(out1), srv.url("/echo"))
        assert proc.returncode == 0, proc.stderr
        proc = fetch_cli("-d", f"@{payload}", "--output", str(out2), srv.url("/echo"))
        assert proc.returncode == 0, proc.stderr
        proc = fetch_cli(
            "-X", "PUT", "-H", "Content-Type: application/octet-stream",
            "--data-binary", f"@{payload}", "--output", str(out3), srv.url("/echo"),
        )
        assert proc.returncode == 0, proc.stderr
    (form,) = echoes(out1)
    assert form["method"] == "POST" and form["body"] == "a=1&b=x%20y"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    (stripped,) = echoes(out2)
    assert stripped["body"] == "line1line2\x00\xff"  # curl's -d @file drops CR and LF
    (exact,) = echoes(out3)
    assert exact["method"] == "PUT"
    assert exact["body"].encode("latin-1") == payload.read_bytes()
    assert exact["headers"]["content-type"] == "application/octet-stream"


def test_cookies_are_kept_for_the_run(tmp_path: Path) -> None:
    with HTTPServer() as srv:
        # /headers sets a=1 and b=2; with one worker the URLs go in order.
        args = ["--concurrency", "1", "--output", str(tmp_path), srv.url("/headers"),
                srv.url("/echo")]
        with_jar = fetch_cli("--cookies", *args)
        assert with_jar.returncode == 0, with_jar.stderr
        docs = [d for d in (_load(p) for p in sorted(tmp_path.iterdir())) if d is not None]
        assert docs[0]["headers"]["cookie"] == "a=1; b=2"
        for path in tmp_path.iterdir():
            path.unlink()
        without = fetch_cli(*args)
        assert without.returncode == 0, without.stderr
        docs = [d for d in (_load(p) for p in sorted(tmp_path.iterdir())) if d is not None]
        assert "cookie" not in docs[0]["headers"]


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
    except ValueError:
        return None  # the /headers body
    doc["headers"] = {k.lower(): v for k, v in doc["headers"]}
    return doc


def test_max_body_truncates_what_is_kept(tmp_path: Path) -> None:
    with HTTPServer() as srv:
        proc = fetch_cli("--max-body", "1000", "--output", str(tmp_path), "--json",
                         srv.url("/bytes/5000"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["bytes"] == 1000
    (written,) = list(tmp_path.iterdir())
    assert written.stat().st_size == 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "a=1", "--data-binary", "b"], "cannot be combined"),
        (["-X", "GET", "-d", "a=1"], "sends no body"),
        (["-X", "HEAD", "--data-binary", "x"], "sends no body"),
        (["-X", "BAD METHOD"], "-X/--method"),
        (["-H", "no colon here"], "expected 'Name: value'"),
        (["-H", "Content-Length: 5"], "set by the client"),
        (["-H", "X-Bad: a\x01b"], "-H"),
        (["-u", "alice"], "USER:PASSWORD"),
        (["--data-binary", "@/nonexistent/file"], "--data-binary"),
        (["--max-body", "-1"], "--max-body"),
        (["-X", "POST", "--retries", "2"], "not idempotent"),
    ],
)
def test_bad_combinations_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    proc = fetch_cli(*args, "http://127.0.0.1:9/")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""
