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
    error_detail,
    format_row,
    format_size,
    json_line,
    read_urls,
    safe_filename,
    short_error,
)
from tests.support.terminal import Terminal, python_env

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
    assert ok.split() == ["200", "1.5", "KiB", "12.3", "ms", "http://127.0.0.1:8000/a"]
    failed = format_row(
        result(ok=False, status=None, body=b"", error=asyncnet.ConnectError("refused\nnow"))
    )
    assert failed.startswith("ConnectError ")
    # The class is named once, in its column; the message follows the URL.
    assert failed.endswith("http://127.0.0.1:8000/a  (refused now)")
    assert failed.count("ConnectError") == 1
    assert "\n" not in failed
    assert "(3 attempts)" in format_row(result(attempts=3))
    assert "attempt" not in format_row(result(attempts=1))
    assert "1.5 KiB+" in format_row(result(truncated=True))


def test_error_rows_do_not_repeat_the_url_or_the_address() -> None:
    url = "http://127.0.0.1:9/x"
    refused = asyncnet.ConnectError("cannot connect to 127.0.0.1:9: Connection refused")
    assert error_detail(refused, url) == "cannot connect: Connection refused"
    bad = asyncnet.InvalidURL("scheme must be http or https, not 'ftp': 'ftp://x/'")
    assert error_detail(bad, "ftp://x/") == "scheme must be http or https, not 'ftp'"
    row = format_row(result(url=url, ok=False, status=None, error=refused, attempts=3))
    assert row.endswith(f"{url}  (cannot connect: Connection refused; 3 attempts)")


def test_rows_fit_a_terminal_and_shorten_long_urls_in_the_middle() -> None:
    from asyncnet._cli._progress import Style

    url = "http://127.0.0.1:8000/" + "d" * 150 + "/file.txt"
    fancy = Style(unicode=True)
    for width in (60, 80, 120):
        row = format_row(result(url=url), width=width, style=fancy)
        assert len(row) <= width - 1
        assert "…" in row and row.endswith("/file.txt")
        error = asyncnet.ReadTimeout("the server sent nothing for 30 seconds " * 5)
        failed = format_row(result(url=url, ok=False, status=None, error=error), width=width)
        rows = failed.split("\n")
        assert all(len(row) <= width - 1 for row in rows), rows
        assert "  http://12" in rows[0]
        # The error text is kept readable: beside the URL, or under it.
        assert "(the server sent" in failed
    # Without a width (a pipe, a log) nothing is cut.
    assert url in format_row(result(url=url))


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
    rows = sorted(lines[:2], key=lambda line: line.split()[-1])
    assert rows[0].split()[:3] == ["200", "10", "B"] and rows[0].endswith(urls[0])
    assert rows[1].split()[:3] == ["200", "2.0", "KiB"] and rows[1].endswith(urls[1])
    assert lines[2].startswith("2 ok, 0 failed: 2 URLs in ")
    assert lines[3].split() == ["2xx", "2"]
    assert lines[4].split()[:2] == ["latency", "p50"]
    # Not a terminal: a histogram in plain ASCII, no colours.
    assert any(line.lstrip().startswith("<= ") and "#" in line for line in lines[5:]), lines
    assert proc.stdout.isascii() and "\x1b" not in proc.stdout
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
    assert lines[1].startswith("1 ok, 1 failed: 2 URLs")


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
        ["--concurrency", "0", "http://127.0.0.1/"],
        ["--timeout", "-1", "http://127.0.0.1/"],
        ["--retries", "x", "http://127.0.0.1/"],
        ["--bogus"],
        ["-i", "/nonexistent/urls.txt"],
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


def test_output_dir_is_created(tmp_path: Path) -> None:
    target = tmp_path / "pages" / "today"
    with DemoHTTPServer() as server:
        url = server.url("/fast?size=5")
        proc = fetch_cli("--output", str(target), url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / safe_filename(url)).read_bytes() == body_of(5)


def test_output_that_cannot_be_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for where in (a_file, a_file / "below"):
        proc = fetch_cli("--output", str(where), "http://127.0.0.1:1/")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        assert f"--output {where}" in proc.stderr


@pytest.mark.parametrize("source", ["none", "file", "stdin"])
def test_an_empty_url_list_is_0_urls_not_an_error(source: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    args = {"none": [], "file": ["-i", str(empty)], "stdin": ["-i", "-"]}[source]
    proc = fetch_cli(*args, stdin="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "0 URLs\n"


# -- on a terminal ------------------------------------------------------------------


def plain(text: str) -> str:
    """``text`` without colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_on_terminal(
    *args: str, columns: int = 80, env: dict[str, str] | None = None, stdout_pipe: bool = False
) -> Terminal:
    return Terminal(
        [sys.executable, "-m", "asyncnet", "fetch", *args],
        columns=columns,
        env=env or python_env(),
        stdout_pipe=stdout_pipe,
    )


def test_progress_line_goes_to_the_terminal_and_stdout_stays_json() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/fast?size={i}") for i in range(5)]
        with run_on_terminal("--json", *urls, stdout_pipe=True) as term:
            code, err = term.finish()
            assert term.proc.stdout is not None
            stdout = term.proc.stdout.read().decode()
    assert code == 0
    assert len(stdout.splitlines()) == 5  # stdout still only JSON
    assert re.search(r"\r\x1b\[K[0-5]/5 URLs ", err), err
    assert "5 ok, \x1b[2m0 failed" in err or "5 ok" in err  # the summary reaches the terminal


def test_progress_redraws_on_a_timer_while_nothing_finishes() -> None:
    # One URL that answers only after a long time: before it does, the line
    # is redrawn again and again (the elapsed clock moves), not left blank.
    with (
        DemoHTTPServer() as server,
        run_on_terminal(server.url("/slow?delay=30"), "--deadline", "20") as term,
    ):
            term.wait_for(r"0/1 URL [^\r]*0:00")
            clock = term.wait_for(r"0/1 URL [^\r]*0:0[1-9]")
            assert "1 in flight" in clock.group()
            term.interrupt()
            code, out = term.finish()
    assert code == 130
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert "interrupted after " in plain(out) and ", 1 URL unfinished\r\n" in plain(out)


def test_ctrl_c_prints_a_summary_clears_the_line_and_exits_130() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url("/fast?size=3")] + [server.url("/slow?delay=30")] * 3
        with run_on_terminal("--concurrency", "2", *urls) as term:
            term.wait_for(r"200\S* .*size=3\r\n")  # a first row is out
            term.interrupt()
            code, out = term.finish()
    assert code == 130
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    start = out.rindex("\r\x1b[K") + len("\r\x1b[K")
    # The last progress line was wiped, then the summary was written, and
    # nothing is drawn after it: the prompt comes back on a clean line.
    summary = plain(out[start:]).splitlines()
    assert summary[0].startswith("interrupted after ") and "3 URLs unfinished" in summary[0]
    assert summary[1].startswith("1 ok, 0 failed: 1 URL in "), summary
    assert out.endswith("\r\n")


def test_colours_and_blocks_on_a_terminal_only() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url(f"/fast?size={n}") for n in (1, 2)] + [server.url("/status?code=404")]
        with run_on_terminal(*urls) as term:
            _, coloured = term.finish()
        with run_on_terminal(*urls, env=python_env(NO_COLOR="1")) as term:
            _, no_color_env = term.finish()
        with run_on_terminal("--no-color", *urls) as term:
            _, no_color_flag = term.finish()
        piped = fetch_cli(*urls)
    assert "\x1b[32m200\x1b[0m" in coloured and "\x1b[33m404\x1b[0m" in coloured
    assert "█" in coloured or "▏" in coloured
    # NO_COLOR: no colour codes (the progress line's clearing is not a colour).
    assert not re.search(r"\x1b\[[0-9;]*m", no_color_env), no_color_env
    assert "█" in no_color_env or "▏" in no_color_env
    # --no-color: no colour and plain ASCII.
    assert not re.search(r"\x1b\[[0-9;]*m", no_color_flag)
    assert no_color_flag.replace("\x1b[K", "").isascii(), no_color_flag
    assert piped.stdout.isascii() and "\x1b" not in piped.stdout


@pytest.mark.parametrize("columns", [50, 80, 132])
def test_everything_fits_the_terminal_width(columns: int) -> None:
    with DemoHTTPServer() as server:
        long_url = server.url("/fast?size=7&pad=" + "p" * 200)
        urls = [long_url, server.url("/fast?size=1"), dead_url() + "x" * 150]
        with run_on_terminal(*urls, columns=columns) as term:
            code, out = term.finish()
        as_json = fetch_cli("--json", long_url)
    assert code == 1
    plain = re.sub(r"\x1b\[[0-9;]*[mK]", "", out)
    # Every drawn piece (rows, progress redraws, summary) fits in the width.
    for piece in re.split(r"\r\n|\r", plain):
        assert len(piece) < columns, (columns, piece)
    assert "…" in plain  # the long URLs lost their middles
    assert json.loads(as_json.stdout)["url"] == long_url  # --json keeps them whole


