"""A failed TLS connection always names its cause: never "cannot connect to HOST:PORT: ".

The echo client and the HTTP client talk TLS to a plain server (one that
reads the ClientHello and hangs up: asyncio then raises a bare
``ConnectionResetError()``, whose ``str()`` is empty; and a real plain
``echo-server`` process, which echoes the hello back) and to a TLS
``echo-server`` process whose certificate no trusted CA signed.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import asyncnet
from asyncnet import HTTPClient, open_echo_client
from tests.support.servers import CERTS, client_ssl_context

REPO_ROOT = str(Path(__file__).resolve().parents[2])
# "cannot connect to 127.0.0.1:PORT: <reason>" with a reason of at least one word.
NAMED = re.compile(r"^cannot connect to 127\.0\.0\.1:\d+: \S")


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)  # the ClientHello arrived; close without answering
    writer.close()


@asynccontextmanager
async def echo_server_process(*args: str) -> AsyncIterator[int]:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncnet", "echo-server", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.kill()
        await proc.communicate()


async def _echo_error(port: int) -> asyncnet.ConnectError:
    with pytest.raises(asyncnet.ConnectError) as info:
        async with open_echo_client(
            "127.0.0.1", port, ssl=client_ssl_context(), server_hostname="localhost"
        ) as client:
            await client.echo(b"x")
    return info.value


async def _http_error(port: int) -> asyncnet.ConnectError:
    async with HTTPClient(ssl=client_ssl_context()) as client:
        with pytest.raises(asyncnet.ConnectError) as info:
            await client.get(f"https://127.0.0.1:{port}/")
    return info.value


async def test_plain_server_that_hangs_up_is_named() -> None:
    server = await asyncio.start_server(_hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        for error in (await _echo_error(port), await _http_error(port)):
            assert NAMED.match(str(error)), str(error)
            assert "TLS handshake failed: ConnectionResetError" in str(error)


async def test_plain_echo_server_process_is_named() -> None:
    async with echo_server_process() as port:
        error = await _echo_error(port)
    assert NAMED.match(str(error)), str(error)
    # Our ClientHello came back: said in words, OpenSSL's kept as the cause.
    assert "it echoes in plain text, not TLS" in str(error)
    assert isinstance(error.__cause__, ssl.SSLError)


async def test_wrong_ca_server_process_is_named() -> None:
    certs = ("--certfile", str(CERTS / "self-signed.pem"), "--keyfile", str(CERTS / "server.key"))
    async with echo_server_process(*certs) as port:
        echo_error = await _echo_error(port)
        http_error = await _http_error(port)
    assert NAMED.match(str(echo_error)), str(echo_error)
    for error in (echo_error, http_error):
        # OpenSSL's own words for the cause.
        assert str(error).endswith("self-signed certificate") or (
            "certificate verify failed: self-signed certificate" in str(error)
        ), str(error)
