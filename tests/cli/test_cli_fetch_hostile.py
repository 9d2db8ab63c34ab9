"""``fetch`` against hostile peers and hostile input: bounded memory, lazy input, safe output.

Every test runs the real command (``python -m asyncnet fetch``) as a child
process against loopback servers started here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncnet._text import is_terminal_safe
from tests.support.servers import RawServer

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")


async def _fetch_cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncnet", "fetch", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8"), err.decode("utf-8")


# -- nothing a server or a URL list controls reaches the terminal unescaped ------------


async def test_table_output_escapes_urls_and_error_texts() -> None:
    # A redirect whose Location holds obs-text (C1 controls once decoded),
    # and URLs in the list with ESC, BEL, DEL and a C1 CSI.
    hostile = b"HTTP/1.1 302 Found\x9b\r\nLocation: /a\x9b[2J\x85b\r\nContent-Length: 0\r\n\r\n"
    async with RawServer(responses=[hostile], repeat=True) as server:
        urls = [
            server.url("/r"),
            "http://127.0.0.1:1/\x1b[2J\x07x",
            "http://127.0.0.1:1/\x7f\x9b",
            "htt\x1bp://x/",
        ]
        code, out, err = await _fetch_cli("-i", "-", stdin="\n".join(urls).encode())
    assert code == 1
    rows = out.splitlines()
    # Four rows, then the summary's headline and outcomes: no line was broken or eaten.
    assert len(rows) == 6 and rows[4].startswith("0 ok, 4 failed: 4 URLs"), rows
    assert is_terminal_safe(out.replace("\n", "")), out
    assert is_terminal_safe(err.replace("\n", "")), err
    # The URL column shows the escapes, the error text quotes them too.
    assert any(
        row.startswith("InvalidURL ") and "  http://127.0.0.1:1/\\x1b[2J\\x07x  (URL " in row
        for row in rows
    ), rows
    assert any("  htt\\x1bp://x/  (" in row for row in rows), rows


async def test_tls_failure_row_names_its_cause() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello arrived; close without answering
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        code, out, _ = await _fetch_cli(f"https://127.0.0.1:{port}/")
    assert code == 1
    row = out.splitlines()[0]
    assert row.startswith("ConnectError "), row
    assert row.endswith(
        f"https://127.0.0.1:{port}/  (cannot connect: TLS handshake failed: "
        "ConnectionResetError (the peer closed the connection))"
    ), row


# -- memory does not depend on body size ------------------------------------------------

BIG = 128 * 1024 * 1024
# Peak RSS allowed for the whole child (interpreter included, about 30 MiB
# here): far below the body, which the old command kept whole (about 160
# MiB peak for a 64 MiB body).
RSS_BOUND = 48 * 1024 * 1024


# Runs the command in a child that reports its own peak RSS (VmHWM) as it
# exits. Not ru_maxrss from wait4: Linux folds the pre-exec image, a fork of
# this test process with all its memory, into the child's maximum.
_MEASURED = """
import atexit, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("peak-rss-kib " + peak.split()[1] + "\\n")
atexit.register(report)
sys.argv[0] = "asyncnet"
runpy.run_module("asyncnet", run_name="__main__", alter_sys=True)
"""


def _run_measured(args: list[str]) -> tuple[int, str, int]:
    """Run the command to its end; (exit status, stdout, the child's peak RSS in bytes)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, "fetch", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    err = proc.stderr.decode()
    peaks = [line.split()[1] for line in err.splitlines() if line.startswith("peak-rss-kib ")]
    assert len(peaks) == 1, err
    return proc.returncode, proc.stdout.decode(), int(peaks[0]) * 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
@pytest.mark.parametrize("to_file", [False, True], ids=["counted", "output"])
async def test_peak_memory_does_not_depend_on_body_size(tmp_path: Path, to_file: bool) -> None:
    piece = bytes(range(256)) * 1024  # the server reuses one 256 KiB piece

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
        for _ in range(BIG // len(piece)):
            writer.write(piece)
            await writer.drain()
        server._request_finished(writer)
        await reader.read()  # until the client closes

    async with RawServer(big) as server:
        args = ["--output", str(tmp_path)] if to_file else []
        code, out, peak = await asyncio.to_thread(_run_measured, [*args, server.url("/big")])
    assert code == 0, out
    assert out.splitlines()[0].split()[:3] == ["200", "128.0", "MiB"]
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.1f} MiB for a {BIG / 2**20:.0f} MiB body"
    if to_file:
        (written,) = tmp_path.iterdir()
        assert written.stat().st_size == BIG
        with written.open("rb") as f:
            assert f.read(len(piece)) == piece
            f.seek(BIG - len(piece))
            assert f.read() == piece


async def test_a_body_cut_short_leaves_no_file(tmp_path: Path) -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader, writer)
        await server.send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)

    async with RawServer(cut_short) as server:
        code, out, _ = await _fetch_cli("--json", "--output", str(tmp_path), server.url("/f"))
    assert code == 1
    assert json.loads(out)["error"].startswith("RemoteProtocolError: connection closed")
    assert list(tmp_path.iterdir()) == []


# -- -i - reads lazily -------------------------------------------------------------------


async def test_stdin_urls_are_fetched_while_stdin_is_still_open() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(responses=[ok], repeat=True) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncnet", "fetch", "--json", "-i", "-",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_env(),
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for n in (1, 2):
                url = server.url(f"/{n}")
                proc.stdin.write(f"{url}\n".encode())
                await proc.stdin.drain()
                # The result arrives while stdin stays open (a bound, not a timing
                # assert: the old command read all of stdin first and never answered).
                async with asyncio.timeout(30):
                    line = await proc.stdout.readline()
                row = json.loads(line)
                assert (row["url"], row["ok"], row["bytes"]) == (url, True, 2)
            proc.stdin.close()
            async with asyncio.timeout(60):
                rest = await proc.stdout.read()
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0
    assert rest == b""


async def test_deadline_ends_the_run_while_stdin_stays_open() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(responses=[ok], repeat=True) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncnet", "fetch", "--json", "-i", "-", "--deadline", "1",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_env(),
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{server.url('/1')}\n".encode())
            await proc.stdin.drain()
            # stdin is never closed: only the deadline can end the run (the
            # bound turns a hang into a failure; it is not a timing assert).
            async with asyncio.timeout(30):
                out = await proc.stdout.read()
                await proc.wait()
        finally:
            proc.stdin.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["url"] for row in rows] == [server.url("/1")]
    assert proc.returncode in (0, 1)  # 1 only if the one URL itself hit the deadline


# -- --max-time bounds a request however slowly the server drips --------------------------


async def test_max_time_stops_a_server_that_drips() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        # One byte every 50 ms on the server's own clock: far inside --timeout,
        # so only a total deadline ends it. At most 1000 bytes (50 s).
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with RawServer(drip) as server:
        code, out, err = await _fetch_cli(
            "--json", "--timeout", "10", "--max-time", "0.5", server.url("/drip")
        )
    assert code == 1, err
    result = json.loads(out)
    assert result["error"].startswith("TotalTimeout: "), result


async def test_max_time_is_documented_with_its_default() -> None:
    code, out, _ = await _fetch_cli("--help")
    assert code == 0
    assert "--max-time" in out
    assert "default 60; 0 for none" in " ".join(out.split())


async def test_an_endless_stdin_line_is_refused_not_buffered() -> None:
    code, out, err = await _fetch_cli("-i", "-", stdin=b"x" * 200_000 + b"\n")
    assert code == 2
    assert out == ""
    message = "fetch: cannot read URLs: a line of standard input is longer than 65536 bytes"
    assert err.strip() == message
