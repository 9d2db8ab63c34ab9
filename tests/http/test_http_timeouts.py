"""Each timeout phase against loopback peers that stall in exactly that phase.

Deadlines are small (0.2-0.3 s) so the suite stays fast; the tests wait on the
client's own deadline and assert only which exception it raises, never how
long it took. Servers that drip bytes pace themselves with their own timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Callable

import pytest

import asyncnet
from asyncnet import HTTPClient, Limits, Timeout
from asyncnet._http._connection import HTTPConnection
from asyncnet._http._connector import Connector
from tests.support.servers import HTTPServer, RawServer, response, server_ssl_context

OK = response(200, b"ok")
SHORT = 0.25


def _stalling(release: asyncio.Event, *, reply: bool = True, read: bool = True) -> RawServer:
    """A server that (optionally) reads the request, then waits for ``release``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not read:
            await release.wait()
            return
        while await srv.read_request(reader, writer):
            await release.wait()
            if not reply:
                return
            await srv.send(writer, OK)

    srv = RawServer(handler)
    return srv


async def _dripping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100000):  # bounded; the client gives up long before
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.01)  # the server's own pacing timer


async def _until(condition: Callable[[], bool]) -> None:
    """Give the loop a bounded number of turns (callbacks such as connection_lost)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


def _assert_timeout(exc: BaseException, kind: type[asyncnet.TimeoutError]) -> None:
    assert type(exc) is kind
    assert isinstance(exc, asyncnet.TimeoutError)
    assert isinstance(exc, TimeoutError)  # the builtin


async def test_total_deadline_stops_a_slow_drip() -> None:
    # Bytes keep coming well within the read timeout; only the total deadline can stop this.
    async with RawServer(_dripping) as srv, HTTPClient(
        timeout=Timeout(read=5, total=SHORT)
    ) as client:
        with pytest.raises(asyncnet.TotalTimeout) as info:
            await client.get(srv.url())
        _assert_timeout(info.value, asyncnet.TotalTimeout)
        await _until(lambda: client.statistics().connections_open == 0)


async def test_total_deadline_stops_a_slow_drip_while_streaming() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(timeout=Timeout(read=5, total=SHORT)) as client:
            with pytest.raises(asyncnet.TotalTimeout):
                async with client.stream("GET", srv.url("/slow-drip?interval=0.01&count=10000"))\
                        as resp:
                    async for _ in resp.aiter_bytes():
                        pass


async def test_read_timeout_when_the_server_never_answers() -> None:
    release = asyncio.Event()
    async with _stalling(release) as srv, HTTPClient(timeout=Timeout(read=SHORT)) as client:
        with pytest.raises(asyncnet.ReadTimeout) as info:
            await client.get(srv.url())
        _assert_timeout(info.value, asyncnet.ReadTimeout)
        release.set()


async def test_read_timeout_between_body_pieces() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await release.wait()

    async with RawServer(handler) as srv, HTTPClient(timeout=Timeout(read=SHORT)) as client:
        with pytest.raises(asyncnet.ReadTimeout):
            await client.get(srv.url())
        release.set()


async def test_per_request_timeout_overrides_the_clients() -> None:
    release = asyncio.Event()
    async with _stalling(release) as srv, HTTPClient(timeout=Timeout(read=60)) as client:
        with pytest.raises(asyncnet.ReadTimeout):
            await client.get(srv.url(), timeout=Timeout(read=SHORT))
        with pytest.raises(asyncnet.TotalTimeout):
            await client.get(srv.url(), timeout=Timeout(read=60, total=SHORT))
        release.set()


async def test_connect_timeout_covers_the_tls_handshake() -> None:
    # The server accepts TCP but never speaks TLS: the handshake is part of connecting.
    release = asyncio.Event()
    async with _stalling(release, reply=False, read=False) as srv, HTTPClient(
        timeout=Timeout(connect=SHORT, read=60)
    ) as client:
        url = srv.url().replace("http://", "https://")
        with pytest.raises(asyncnet.ConnectTimeout) as info:
            await client.get(url)
        _assert_timeout(info.value, asyncnet.ConnectTimeout)
        release.set()


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux: SYNs dropped on a full backlog")
async def test_connect_timeout_on_a_full_accept_queue() -> None:
    # A listener that never accepts, with its backlog filled: new SYNs go unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):  # the kernel allows backlog + 1 or so; fill it
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            async with HTTPClient(timeout=Timeout(connect=SHORT)) as client:
                with pytest.raises(asyncnet.ConnectTimeout):
                    await client.get(f"http://127.0.0.1:{port}/")
        finally:
            for filler in fillers:
                filler.close()


async def test_write_timeout_when_the_server_does_not_read() -> None:
    release = asyncio.Event()
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"x" * 65536
        for _ in range(16384):  # at most 1 GiB; the kernel buffers fill long before
            sent += len(chunk)
            yield chunk

    async with _stalling(release, read=False) as srv, HTTPClient(
        timeout=Timeout(write=SHORT, read=60)
    ) as client:
        with pytest.raises(asyncnet.WriteTimeout) as info:
            await client.post(srv.url(), body=body())
        _assert_timeout(info.value, asyncnet.WriteTimeout)
        assert sent < 1024 * 1024 * 1024
        release.set()


async def test_pool_timeout_then_recovery() -> None:
    release = asyncio.Event()
    async with _stalling(release) as srv, HTTPClient(
        limits=Limits(max_connections=1), timeout=Timeout(pool=SHORT, read=60)
    ) as client:
        first = asyncio.create_task(client.get(srv.url("/first")))
        await srv.wait_until(lambda s: s.active_requests == 1)
        with pytest.raises(asyncnet.PoolTimeout) as info:
            await client.get(srv.url("/second"))
        _assert_timeout(info.value, asyncnet.PoolTimeout)
        assert client.statistics().pool_waiters == 0
        release.set()
        assert (await first).content == b"ok"
        assert (await client.get(srv.url("/third"))).content == b"ok"
        assert srv.connections == 1


async def test_total_deadline_while_waiting_for_the_pool() -> None:
    release = asyncio.Event()
    async with _stalling(release) as srv, HTTPClient(
        limits=Limits(max_connections=1), timeout=Timeout(pool=60, read=60)
    ) as client:
        first = asyncio.create_task(client.get(srv.url("/first")))
        await srv.wait_until(lambda s: s.active_requests == 1)
        # The deadline passes while the request waits for the pool's one connection.
        with pytest.raises(asyncnet.TotalTimeout, match=r"passed waiting for a connection$"):
            await client.get(srv.url("/second"), timeout=Timeout(pool=60, read=60, total=SHORT))
        release.set()
        await first
        assert client.statistics().pool_waiters == 0


async def test_total_deadline_spans_redirect_hops() -> None:
    # Each hop answers quickly; together they outlast the deadline.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            await asyncio.sleep(0.05)  # the server's own pacing
            await srv.send(writer, response(302, b"", [("Location", "/again")]))

    srv = RawServer(handler)
    async with srv, HTTPClient(timeout=Timeout(total=SHORT), max_redirects=1000) as client:
        with pytest.raises(asyncnet.TotalTimeout):
            await client.get(srv.url())


def test_timeout_phases_are_separate_fields() -> None:
    t = Timeout(connect=1, read=2, write=3, pool=4, total=5)
    assert (t.connect, t.read, t.write, t.pool, t.total) == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"^read must be > 0 seconds"):
        Timeout(read=-1)


@pytest.mark.parametrize("cert", ["server"])
async def test_tls_server_that_drips_is_stopped_too(cert: str) -> None:
    async with RawServer(_dripping, ssl=server_ssl_context(cert)) as srv, HTTPClient(
        timeout=Timeout(total=SHORT), ssl=False
    ) as client:
        with pytest.raises(asyncnet.TotalTimeout):
            await client.get(srv.url())


class _StuckConnector(Connector):
    """Never connects; with ``cancel_too`` the caller's own cancel lands with the timer's."""

    def __init__(self, *, cancel_too: bool) -> None:
        self.cancel_too = cancel_too

    async def connect(self, *args: object) -> HTTPConnection:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self.cancel_too:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
            raise
        raise AssertionError("unreachable")  # pragma: no cover


async def test_connect_timeout_is_the_timers_own_cancellation_only() -> None:
    # The connect timer cancels the request's task: that cancellation, and
    # only it, becomes ConnectTimeout, and it is withdrawn afterwards.
    async with HTTPClient(transport=_StuckConnector(cancel_too=False),
                          timeout=Timeout(connect=0.01)) as client:
        with pytest.raises(asyncnet.ConnectTimeout):
            await client.get("http://127.0.0.1:9/")
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
    # A caller's cancel that arrives with the timer's goes on as CancelledError.
    async with HTTPClient(transport=_StuckConnector(cancel_too=True),
                          timeout=Timeout(connect=0.01)) as client:
        request = asyncio.create_task(client.get("http://127.0.0.1:9/"))
        with pytest.raises(asyncio.CancelledError):
            await request
        assert request.cancelled()
