"""The ``fetch`` command: pure formatting helpers, then end to end as a subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet import FetchResult
from asyncnet._cli._demo_server import DemoHTTPServer, body_of
from asyncnet._cli._fetch import (
    format_progress,
    format_row,
    format_size,
    format_summary,
    json_line,
    read_urls,
    safe_filename,
    short_error,
)

ROOT = Path(__file__).resolve().parents[2]
JSON_KEYS = {"url", "ok", "status", "bytes", "elapsed", "error", "attempts"}


def result(**kw: object) -> FetchResult:
    fields: dict[str, object] = {
        "url": "http://127.0.0.1:8000/a",
        "ok": True,
        "status": 200,
        "reason": "OK",
        "headers": None,
        # What the command sees: bodies are counted, never kept (size, no body).
        "body": b"",
        "size": 1536,
        "elapsed": 0.0123,
        "attempts": 1,
        "error": None,
    }
    fields.update(kw)
    return FetchResult(**fields)  # type: ignore[arg-type]


# -- pure helpers ---------------------------------------------------------------


def test_read_urls_skips_blanks_and_comments() -> None:
    lines = ["http://a/\n", "\n", "   \n", "# a comment\n", "  http://b/x  \n", "  # indented\n"]
    assert read_urls(lines) == ["http://a/", "http://b/x"]


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 1024 * 1024) == "3.0 MiB"
    assert format_size(5 * 1024**4) == "5120.0 GiB"


def test_format_row_for_success_and_failure() -> None:
    ok = format_row(result())
    assert ok.split() == ["200", "1.5", "KiB", "0.012s", "http://127.0.0.1:8000/a"]
    failed = format_row(
        result(ok=False, status=None, body=b"", error=asyncnet.ConnectError("refused\nnow"))
    )
    assert failed.startswith("ConnectError ")
    assert failed.endswith("http://127.0.0.1:8000/a  (ConnectError: refused now)")
    assert "\n" not in failed
    assert "(3 attempts)" in format_row(result(attempts=3))
    assert "1.5 KiB+" in format_row(result(truncated=True))


def test_short_error_is_one_bounded_line() -> None:
    assert short_error(asyncnet.ReadTimeout()) == "ReadTimeout"
    long = short_error(ValueError("x" * 1000 + "\n"))
    assert len(long) == 200 and long.endswith("...") and "\n" not in long


def test_json_line_has_exactly_the_documented_keys() -> None:
    good = json.loads(json_line(result()))
    assert set(good) == JSON_KEYS
    assert good == {
        "url": "http://127.0.0.1:8000/a",
        "ok": True,
        "status": 200,
        "bytes": 1536,
        "elapsed": 0.0123,
        "error": None,
        "attempts": 1,
    }
    bad = json.loads(json_line(result(ok=False, status=None, body=b"", error=OSError("boom"))))
    assert (bad["ok"], bad["status"], bad["error"]) == (False, None, "OSError: boom")


def test_summary_and_progress() -> None:
    assert format_summary(3, 1, 2048, 2.0) == "3 ok, 1 failed, 2.0 KiB in 2.000 s (2.0 requests/s)"
    assert format_progress(5, 10, 1, 0.5) == "5/10 done, 1 failed, 10.0/s"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://example.com/a/b.txt", "example.com_a_b.txt"),
        ("http://127.0.0.1:8080/", "127.0.0.1_8080_index.html"),
        ("http://h/dir/", "h_dir_index.html"),
        ("https://h", "h_index.html"),
    ],
)
def test_safe_filename_examples(url: str, name: str) -> None:
    assert safe_filename(url) == name


def test_safe_filename_never_escapes() -> None:
    for url in [
        "http://h/../../etc/passwd",
        "http://h/%2e%2e/%2e%2e/etc/passwd",
        "http://h/..%2f..%2fetc%2fpasswd",
        "http://h/a\\..\\..\\b",
        "http://../",
        "..",
        "",
        "http://h/.hidden",
        "http://h/x?a=/../../y",
    ]:
        name = safe_filename(url)
        assert name and "/" not in name and "\\" not in name and "\0" not in name
        assert not name.startswith("."), (url, name)
        assert name not in (".", "..")


def test_safe_filename_keeps_distinct_queries_apart() -> None:
    a = safe_filename("http://h/page?id=1")
    b = safe_filename("http://h/page?id=2")
    assert a != b and a.startswith("h_page-")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_safe_filename_is_always_a_plain_name(url: str) -> None:
    name = safe_filename(url)
    assert 0 < len(name) <= 140
    assert os.path.basename(name) == name
    assert not name.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)


# -- end to end -----------------------------------------------------------------


def fetch_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "asyncnet", "fetch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_table_output_and_exit_zero() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url("/fast?size=10"), server.url("/gzip?size=2048")]
        proc = fetch_cli(*urls)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    rows = sorted(lines[:2], key=lambda line: line.split()[-1])
    assert rows[0].split()[:3] == ["200", "10", "B"] and rows[0].endswith(urls[0])
    assert rows[1].split()[:3] == ["200", "2.0", "KiB"] and rows[1].endswith(urls[1])
    assert lines[2].startswith("2 ok, 0 failed, ")
    assert "requests/s" in lines[2]
    assert proc.stderr == ""  # stderr is not a terminal: no progress noise


def test_json_output_exit_one_and_nothing_else_on_stdout() -> None:
    with DemoHTTPServer() as server:
        good = server.url("/fast?size=5")
        missing = server.url("/status?code=404")
        dead = dead_url()
        proc = fetch_cli("--json", good, missing, dead)
    assert proc.returncode == 1
    assert proc.stderr == ""
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(set(o) == JSON_KEYS for o in objects)
    by_url = {o["url"]: o for o in objects}
    assert set(by_url) == {good, missing, dead}
    assert (by_url[good]["ok"], by_url[good]["status"], by_url[good]["bytes"]) == (True, 200, 5)
    assert (by_url[missing]["ok"], by_url[missing]["status"]) == (False, 404)
    assert by_url[missing]["error"] is None
    assert by_url[dead]["ok"] is False and by_url[dead]["status"] is None
    assert by_url[dead]["error"].startswith("ConnectError")
    assert all(o["attempts"] == 1 for o in objects)


def test_urls_from_stdin_and_from_a_file(tmp_path: Path) -> None:
    with DemoHTTPServer() as server:
        listing = f"# my list\n\n{server.url('/fast?size=1')}\n  {server.url('/fast?size=2')}  \n"
        proc = fetch_cli("--json", "-i", "-", stdin=listing)
        path = tmp_path / "urls.txt"
        path.write_text(listing)
        from_file = fetch_cli("--json", "--input", str(path), server.url("/fast?size=3"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(x)["bytes"] for x in proc.stdout.splitlines()) == [1, 2]
    assert from_file.returncode == 0, from_file.stderr
    assert sorted(json.loads(x)["bytes"] for x in from_file.stdout.splitlines()) == [1, 2, 3]


def test_retries_and_limits_are_passed_through() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/flaky?key=k{i}&fails=1&code=503&retry_after=0") for i in range(6)]
        proc = fetch_cli("--json", "--retries", "1", "--concurrency", "2", "--per-host", "2", *urls)
        peak = server.counters().peak_in_flight
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [json.loads(x)["attempts"] for x in proc.stdout.splitlines()] == [2] * 6
    assert peak <= 2


def test_timeout_and_deadline_fail_the_run() -> None:
    with DemoHTTPServer() as server:
        slow = server.url("/slow?delay=30")
        timed = fetch_cli("--json", "--timeout", "0.2", slow)
        deadline = fetch_cli("--json", "--deadline", "0.2", slow)
    assert timed.returncode == 1
    assert json.loads(timed.stdout)["error"].startswith("ReadTimeout")
    assert deadline.returncode == 1
    assert json.loads(deadline.stdout)["error"].startswith("TotalTimeout")


def test_quiet_prints_only_failures_and_the_summary() -> None:
    with DemoHTTPServer() as server:
        proc = fetch_cli("--quiet", server.url("/fast"), server.url("/status?code=503"))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("503 ")
    assert lines[1].startswith("1 ok, 1 failed")


def test_output_dir_gets_safely_named_files(tmp_path: Path) -> None:
    with DemoHTTPServer() as server:
        a = server.url("/fast?size=100")
        b = server.url("/fast?size=200")
        c = server.url("/chunked?chunks=2&size=10")
        traversal = server.url("/fast?size=7&x=/../../../etc/passwd")
        proc = fetch_cli("--output", str(tmp_path), a, b, c, traversal)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert written == {
        safe_filename(a): body_of(100),
        safe_filename(b): body_of(200),
        safe_filename(c): body_of(10) * 2,
        safe_filename(traversal): body_of(7),
    }
    assert all(p.parent == tmp_path for p in tmp_path.iterdir())
    assert not any(tmp_path.parent.glob("fast*"))


def test_output_never_overwrites(tmp_path: Path) -> None:
    with DemoHTTPServer() as server:
        url = server.url("/fast?size=3")
        (tmp_path / safe_filename(url)).write_bytes(b"precious")
        proc = fetch_cli("--output", str(tmp_path), url)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / safe_filename(url)).read_bytes() == b"precious"
    others = [p for p in tmp_path.iterdir() if p.name != safe_filename(url)]
    assert [p.read_bytes() for p in others] == [body_of(3)]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--concurrency", "0", "http://127.0.0.1/"],
        ["--timeout", "-1", "http://127.0.0.1/"],
        ["--retries", "x", "http://127.0.0.1/"],
        ["--bogus"],
        ["-i", "/nonexistent/urls.txt"],
        ["--output", "/nonexistent/dir", "http://127.0.0.1/"],
    ],
)
def test_bad_usage_exits_two(args: list[str]) -> None:
    proc = fetch_cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "usage:" in proc.stderr


def test_help_explains_the_command() -> None:
    proc = fetch_cli("--help")
    assert proc.returncode == 0
    for word in ("--json", "--output", "--per-host", "--deadline", "Exit status"):
        assert word in proc.stdout


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_line_only_on_a_terminal() -> None:
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    try:
        with DemoHTTPServer() as server:
            urls = [server.url(f"/fast?size={i}") for i in range(5)]
            proc = subprocess.run(
                [sys.executable, "-m", "asyncnet", "fetch", "--json", *urls],
                stderr=slave,
                stdout=subprocess.PIPE,
                text=True,
                timeout=60,
                env=env,
                check=False,
            )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            chunks.append(data)
        err = b"".join(chunks).decode()
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 5  # stdout still only JSON
    assert re.search(r"\r\x1b\[K[1-5]/5 done, 0 failed, [0-9.]+/s", err), err
    assert "5 ok, 0 failed" in err  # the summary goes to the terminal too
