"""Where connections go: Unix-domain sockets, a bound source address, the transport= seam."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator

import pytest

import asyncnet
from asyncnet import HTTPClient, Timeout
from asyncnet.testing import MockResponse, MockTransport
from tests.support.servers import RawServer, read_request, response


@contextlib.asynccontextmanager
async def unix_server(
    replies: list[bytes], log: list[bytes], *, hold: asyncio.Event | None = None
) -> AsyncIterator[str]:
    """An HTTP server on a Unix socket in a private directory, answering ``replies`` in turn."""
    connections: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        try:
            while request := await read_request(reader):
                log.append(request)
                if hold is not None:
                    await hold.wait()
                writer.write(replies[min(len(log), len(replies)) - 1])
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    with tempfile.TemporaryDirectory(prefix="asyncnet-uds-") as tmp:
        path = os.path.join(tmp, "http.sock")
        server = await asyncio.start_unix_server(handle, path)
        try:
            yield path
        finally:
            server.close()
            for writer in connections:
                writer.transport.abort()
            await server.wait_closed()


async def test_uds_requests_take_host_and_target_from_the_url() -> None:
    log: list[bytes] = []
    async with (
        unix_server([response(200, b'{"ok": true}')], log) as path,
        HTTPClient(uds=path) as client,
    ):
        first = await client.get("http://localhost/v1.43/info?all=1")
        assert await first.json() == {"ok": True}
        second = await client.get("http://docker.example:2375/v1.43/containers/json")
        assert second.status == 200
        # Two origins, so two pool keys, each on the one socket.
        assert client.statistics().connections_opened == 2
        third = await client.get("http://localhost/v1.43/info")
        assert third.status == 200
        assert client.statistics().requests_reused == 1
    assert log[0].startswith(b"GET /v1.43/info?all=1 HTTP/1.1\r\nHost: localhost\r\n")
    assert log[1].startswith(
        b"GET /v1.43/containers/json HTTP/1.1\r\nHost: docker.example:2375\r\n"
    )


async def test_uds_streaming_and_read_timeout() -> None:
    log: list[bytes] = []
    hold = asyncio.Event()
    async with unix_server([response(200, b"x" * 200_000)], log, hold=hold) as path:
        async with HTTPClient(uds=path, timeout=Timeout(read=0.2)) as client:
            with pytest.raises(asyncnet.ReadTimeout):
                await client.get("http://localhost/slow")
        hold.set()
        async with HTTPClient(uds=path) as client, client.stream("GET", "http://localhost/") as r:
            total = 0
            async for chunk in r.aiter_bytes():
                total += len(chunk)
            assert total == 200_000


async def test_uds_missing_socket_is_a_connect_error() -> None:
    with tempfile.TemporaryDirectory(prefix="asyncnet-uds-") as tmp:
        path = os.path.join(tmp, "absent.sock")
        async with HTTPClient(uds=path) as client:
            with pytest.raises(asyncnet.ConnectError, match="Unix socket"):
                await client.get("http://localhost/")


async def test_uds_ignores_the_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    log: list[bytes] = []
    async with (
        unix_server([response(200, b"ok")], log) as path,
        HTTPClient(uds=path, trust_env=True) as client,
    ):
        assert (await client.get("http://localhost/x")).content == b"ok"
    assert log[0].startswith(b"GET /x HTTP/1.1\r\n")


async def test_local_addr_binds_the_source_address() -> None:
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        await read_request(reader)
        writer.write(response(200, b"ok"))
        await writer.drain()

    # Any address in 127.0.0.0/8 is local on Linux: 127.0.0.2 is not what
    # the kernel would pick by itself.
    async with RawServer(handler) as srv, HTTPClient(local_addr=("127.0.0.2", 0)) as client:
        assert (await client.get(srv.url("/"))).content == b"ok"
    assert seen == ["127.0.0.2"]


async def test_local_addr_of_another_family_cannot_connect() -> None:
    async with RawServer(responses=[response(200)]) as srv:
        if not socket.has_ipv6:
            pytest.skip("no IPv6")
        async with HTTPClient(local_addr=("::1", 0)) as client:
            with pytest.raises(asyncnet.ConnectError, match="family"):
                await client.get(srv.url("/"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_addr": ("localhost", 0)}, "local_addr must be (ip address, port)"),
        ({"local_addr": ("127.0.0.1", 70000)}, "local_addr must be (ip address, port)"),
        ({"local_addr": "127.0.0.1"}, "local_addr must be (ip address, port)"),
        ({"transport": object()}, "transport must be a connector"),
        (
            {"uds": "/x", "transport": MockTransport(lambda request: MockResponse())},
            "pass either transport= or uds=, not both",
        ),
        ({"uds": "/x", "local_addr": ("127.0.0.1", 0)}, "local_addr has no meaning with uds="),
        ({"trace": 5}, "trace must be callable"),
        ({"event_hooks": {"request": [1]}}, "request hook 1 is not callable"),
        ({"event_hooks": {"sent": []}}, "unknown event hook kinds ['sent']"),
    ],
)
def test_bad_connection_arguments_are_usage_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(asyncnet.UsageError, match="^" + re.escape(message)):
        HTTPClient(**kwargs)  # type: ignore[arg-type]
