"""``fetch`` against hostile peers and hostile input: bounded memory, lazy input, safe output.

Every test runs the real command (``python -m asyncnet fetch``) as a child
process against loopback servers started here.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

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
    assert len(rows) == 5  # four rows and the summary: no line was broken or eaten
    assert is_terminal_safe(out.replace("\n", "")), out
    assert is_terminal_safe(err.replace("\n", "")), err
    # The URL column shows the escapes, the error text quotes them too.
    assert any("  http://127.0.0.1:1/\\x1b[2J\\x07x  (InvalidURL: " in row for row in rows)
    assert any("  htt\\x1bp://x/  (InvalidURL: " in row for row in rows)


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
    assert row.endswith(
        f"(ConnectError: cannot connect to 127.0.0.1:{port}: TLS handshake failed: "
        "ConnectionResetError (the peer closed the connection))"
    ), row
