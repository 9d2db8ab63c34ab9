"""Where received bytes land: the shared buffer, direct bodies and bulk reads.

Every path must deliver exactly the bytes sent, keep the errors and the
connection reuse rules of the plain path, and release what it holds (the
direct-body budget, the transport's protocol) however the exchange ends.
Real loopback sockets throughout; the server holds the body back until the
client waits for it, so that the path taken does not depend on timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet._http import _receive as _http_receive
from asyncnet._http._connection import HTTPConnection
from asyncnet._http._receive import DIRECT_MIN, READ_SIZE
from tests.support.servers import RawServer, pattern, read_request
from tests.support.transports import RecordingTransport

MiB = 1024 * 1024
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _live_direct_bytes() -> int:
    return int(getattr(_http_receive._local, "direct", 0))


def _release_dropped(conn: HTTPConnection) -> None:
    """End the exchange on a connection that must not be reused."""
    conn.release()
    assert not conn.is_reusable()


async def _open(srv: RawServer) -> HTTPConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(HTTPConnection, "127.0.0.1", srv.port)
    # As a pool would: a released connection that may be reused stays open.
    conn.on_release = lambda conn: None
    return conn


async def _request(conn: HTTPConnection, method: str = "GET", *, read_whole: bool = False) -> None:
    conn.begin(method, read_timeout=None, write_timeout=None, deadline=None, read_whole=read_whole)
    conn.write_head(f"{method} / HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await conn.receive_head()


async def _started(*tasks: asyncio.Task[bytes]) -> None:
    """Wait until every task has run up to its first wait (read_all picks its path before).

    A coroutine that has begun and is waiting is CORO_SUSPENDED; one not yet
    run is CORO_CREATED, and one that finished is CORO_CLOSED. Bounded in
    loop turns, so a task that never starts or ends early fails here.
    """

    def states() -> list[str]:
        return [inspect.getcoroutinestate(task.get_coro()) for task in tasks]  # type: ignore[arg-type]

    for _ in range(100):
        if all(state == inspect.CORO_SUSPENDED for state in states()):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"read_all did not reach its first wait: {states()}")


async def _read_all_started(conn: HTTPConnection) -> asyncio.Task[bytes]:
    """Send a request, wait for the head, and start ``read_all`` up to its first wait."""
    await _request(conn)
    task = asyncio.ensure_future(conn.read_all())
    await _started(task)
    return task


def _held_back_body(size: int, go: asyncio.Event, *, send: int | None = None) -> Handler:
    """Handler: send the head, wait for ``go``, then ``send`` body bytes (all by default)."""
    body = pattern(size)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            await writer.drain()
            await go.wait()
            go.clear()
            writer.write(body if send is None else body[:send])
            await writer.drain()
            if send is not None:
                writer.close()
                return

    return handler


@pytest.mark.parametrize("size", [DIRECT_MIN, DIRECT_MIN + 1, 3 * MiB + 7])
async def test_long_body_read_whole_goes_direct_intact_and_the_connection_is_reused(
    size: int,
) -> None:
    go = asyncio.Event()
    async with RawServer(_held_back_body(size, go)) as srv:
        conn = await _open(srv)
        try:
            for round_ in (1, 2):
                task = await _read_all_started(conn)
                assert conn.direct_bodies == round_
                go.set()
                body = await task
                assert type(body) is bytes
                assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(size)).digest()
                assert _live_direct_bytes() == 0
                conn.release()
                assert conn.is_reusable()
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_short_remainder_is_joined_not_direct() -> None:
    go = asyncio.Event()
    async with RawServer(_held_back_body(DIRECT_MIN - 1, go)) as srv:
        conn = await _open(srv)
        try:
            task = await _read_all_started(conn)
            go.set()
            assert await task == pattern(DIRECT_MIN - 1)
            assert conn.direct_bodies == 0
        finally:
            conn.abort()


async def test_direct_body_cut_short_names_the_bytes_and_frees_the_budget() -> None:
    go = asyncio.Event()
    size = 2 * MiB
    async with RawServer(_held_back_body(size, go, send=MiB)) as srv:
        conn = await _open(srv)
        try:
            task = await _read_all_started(conn)
            assert conn.direct_bodies == 1
            assert _live_direct_bytes() == size
            go.set()
            with pytest.raises(asyncnet.RemoteProtocolError, match=f"{MiB} of {size}"):
                await task
            assert _live_direct_bytes() == 0
            _release_dropped(conn)
        finally:
            conn.abort()


async def test_direct_body_reset_is_a_read_error() -> None:
    size = MiB
    sent_part = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        await writer.drain()
        await go.wait()
        writer.write(pattern(size // 2))
        await writer.drain()
        await sent_part.wait()
        writer.transport.abort()

    go = asyncio.Event()
    async with RawServer(handler) as srv:
        conn = await _open(srv)
        try:
            task = await _read_all_started(conn)
            assert conn.direct_bodies == 1
            go.set()
            await srv.wait_until(lambda s: s.requests == 1)
            sent_part.set()
            with pytest.raises(
                (asyncnet.ReadError, asyncnet.RemoteProtocolError),
                match=(
                    r"^connection (closed after \d+ of 1048576 body bytes"
                    r"|lost while receiving the response body)"
                ),
            ):
                await task
            assert _live_direct_bytes() == 0
        finally:
            conn.abort()


async def test_cancelled_direct_read_drops_the_connection_and_frees_the_budget() -> None:
    go = asyncio.Event()
    async with RawServer(_held_back_body(MiB, go)) as srv:
        conn = await _open(srv)
        try:
            task = await _read_all_started(conn)
            assert _live_direct_bytes() == MiB
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            conn.release()
            assert _live_direct_bytes() == 0
            assert not conn.is_reusable()
            await srv.wait_until(lambda s: s.active_connections == 0)
        finally:
            conn.abort()


@pytest.mark.parametrize("make", ["uninitialized", "zeroed"])
async def test_budget_bounds_direct_bodies_in_flight_and_every_body_is_intact(
    make: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 8
    size = MiB
    chosen = _http_receive.allocator() if make == "uninitialized" else _http_receive._ZEROED
    # The same rule with a budget small enough to reach with a few bodies.
    monkeypatch.setattr(_http_receive, "_allocator", chosen._replace(budget=4 * MiB))
    go = asyncio.Event()
    conns: list[HTTPConnection] = []
    async with RawServer(_held_back_body(size, go)) as srv:
        try:
            for _ in range(count):
                conns.append(await _open(srv))
            for conn in conns:
                await _request(conn)
            tasks = [asyncio.ensure_future(conn.read_all()) for conn in conns]
            await _started(*tasks)
            direct = sum(conn.direct_bodies for conn in conns)
            assert direct == 4
            assert _live_direct_bytes() == direct * size
            go.set()
            bodies = await asyncio.gather(*tasks)
            assert all(body == pattern(size) for body in bodies)
            assert _live_direct_bytes() == 0
        finally:
            for conn in conns:
                conn.release()
                conn.abort()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's C API")
def test_cpython_allocator_leaves_bodies_unset_and_makes_plain_bytes() -> None:
    alloc = _http_receive.allocator()
    assert alloc is not _http_receive._ZEROED
    assert alloc.budget > _http_receive._ZEROED.budget
    body = alloc.make(3 * MiB)
    assert type(body) is bytes and len(body) == 3 * MiB
    # Its own object each time, never a shared singleton.
    assert alloc.make(DIRECT_MIN) is not alloc.make(DIRECT_MIN)


def test_default_budget_lets_a_pool_of_large_bodies_go_direct() -> None:
    """64 bodies of 1 MiB in flight at once all go direct (the benchmark's c64 case)."""
    started = [_http_receive.DirectBody.start([], 0, MiB) for _ in range(64)]
    try:
        assert all(body is not None for body in started)
        assert _live_direct_bytes() == 64 * MiB
        assert _http_receive.DirectBody.start([], 0, _http_receive.allocator().budget) is None
    finally:
        for body in started:
            if body is not None:
                body.discard()
    assert _live_direct_bytes() == 0


async def test_streamed_long_body_is_read_in_bulk_then_the_connection_reads_normally() -> None:
    size = 2 * MiB
    body = pattern(size)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body)
        await writer.drain()
        await srv.read_request(reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall")
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        conn = await _open(srv)
        try:
            await _request(conn)
            received = hashlib.sha256()
            total = 0
            while piece := await conn.read_chunk():
                received.update(piece)
                total += len(piece)
            assert total == size
            assert received.digest() == hashlib.sha256(body).digest()
            assert conn.bulk_bodies == 1
            assert conn.direct_bodies == 0
            conn.release()
            assert conn.transport is not None
            assert conn.transport.get_protocol() is conn
            await _request(conn)
            assert await conn.read_all() == b"small"
            conn.release()
            assert conn.is_reusable()
        finally:
            conn.abort()


async def test_head_and_long_body_in_one_read_arrive_intact() -> None:
    """A first read far longer than the head: head and body are copied out apart."""
    size = READ_SIZE - 200
    body = pattern(size)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body
    async with RawServer(responses=[reply, reply]) as srv:
        conn = await _open(srv)
        try:
            for _ in range(2):
                await _request(conn)
                assert await conn.read_all() == body
                conn.release()
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_malformed_head_before_a_long_body_is_the_same_error() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" + pattern(100_000)
    async with RawServer(responses=[reply]) as srv:
        conn = await _open(srv)
        try:
            with pytest.raises(asyncnet.RemoteProtocolError, match="Content-Length"):
                await _request(conn)
            _release_dropped(conn)
        finally:
            conn.abort()


async def test_bytes_after_a_bodiless_response_in_one_long_read_drop_the_connection() -> None:
    reply = b"HTTP/1.1 204 No Content\r\n\r\n" + pattern(100_000)
    async with RawServer(responses=[reply]) as srv:
        conn = await _open(srv)
        try:
            await _request(conn)
            assert await conn.read_all() == b""
            _release_dropped(conn)
        finally:
            conn.abort()


async def test_a_transport_that_delivers_bytes_still_fills_a_direct_body() -> None:
    """data_received (the plain-protocol path) while a direct body is being received."""
    conn = HTTPConnection()
    conn.connection_made(RecordingTransport())
    conn.begin("GET", read_timeout=None, write_timeout=None, deadline=None)
    size = 3 * DIRECT_MIN
    body = pattern(size)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body[:1000])
    task = asyncio.ensure_future(conn.read_all())
    await _started(task)
    assert conn.direct_bodies == 1
    conn.data_received(body[1000:DIRECT_MIN])
    conn.data_received(body[DIRECT_MIN:])
    assert await task == body
    assert _live_direct_bytes() == 0
    conn.connection_lost(None)


# -- bodies the caller promised to read whole (client.request) ------------------------


async def test_read_whole_goes_direct_at_the_head_before_read_all() -> None:
    size = 2 * MiB
    go = asyncio.Event()
    async with RawServer(_held_back_body(size, go)) as srv:
        conn = await _open(srv)
        try:
            for round_ in (1, 2):
                await _request(conn, read_whole=True)
                # Nothing of the body has arrived yet, and no read_all() was called.
                assert conn.direct_bodies == round_
                assert _live_direct_bytes() == size
                go.set()
                assert await conn.read_all() == pattern(size)
                assert _live_direct_bytes() == 0
                conn.release()
                assert conn.is_reusable()
            assert conn.bulk_bodies == 0
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_read_all_now_hands_over_only_a_complete_body() -> None:
    go = asyncio.Event()
    async with RawServer(_held_back_body(1000, go)) as srv:
        conn = await _open(srv)
        try:
            await _request(conn, read_whole=True)
            assert conn.read_all_now() is None  # the body is held back
            go.set()
            assert await conn.read_all() == pattern(1000)
            conn.release()
            assert conn.is_reusable()
        finally:
            conn.abort()
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    async with RawServer(responses=[reply, reply]) as srv:
        conn = await _open(srv)
        try:
            for _ in range(2):
                await _request(conn, read_whole=True)
                # Head and body came in one read: the body is here at once.
                assert conn.read_all_now() == b"hello"
                conn.release()
                assert conn.is_reusable()
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_read_all_now_leaves_an_error_to_read_all() -> None:
    # Five of ten bytes, then the server closes (Connection: close).
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello"
    async with RawServer(responses=[reply]) as srv:
        conn = await _open(srv)
        try:
            await _request(conn, read_whole=True)
            assert conn.read_all_now() is None
            with pytest.raises(asyncnet.RemoteProtocolError, match="5 of 10"):
                await conn.read_all()
            _release_dropped(conn)
        finally:
            conn.abort()


# Sizes that go direct whatever the first read holds (up to 16 KiB is parsed
# with the head; a longer first read is split after it).
@pytest.mark.parametrize("size", [DIRECT_MIN + 20_000, 3 * MiB + 5])
async def test_read_whole_head_and_body_sent_at_once_arrive_intact(size: int) -> None:
    """The body bytes of the first read go from the shared buffer into the direct body."""
    body = pattern(size)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body
    async with RawServer(responses=[reply, reply]) as srv:
        conn = await _open(srv)
        try:
            for _ in range(2):
                await _request(conn, read_whole=True)
                assert await conn.read_all() == body
                conn.release()
                assert conn.is_reusable()
            assert conn.direct_bodies == 2
            assert conn.bulk_bodies == 0
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_read_whole_bytes_after_the_body_drop_the_connection_not_the_body() -> None:
    size = 200 * 1024
    body = pattern(size)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body + b"HTTP/1.1 junk"
    async with RawServer(responses=[reply]) as srv:
        conn = await _open(srv)
        try:
            await _request(conn, read_whole=True)
            assert await conn.read_all() == body
            await srv.wait_until(lambda s: s.active_connections == 0)
            _release_dropped(conn)
        finally:
            conn.abort()


async def test_read_whole_leaves_a_redirect_body_to_be_drained_in_pieces() -> None:
    size = MiB
    go = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: %d\r\n\r\n" % size)
        await writer.drain()
        await go.wait()
        writer.write(pattern(size))
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        conn = await _open(srv)
        try:
            await _request(conn, read_whole=True)
            assert conn.direct_bodies == 0
            assert _live_direct_bytes() == 0
            go.set()
            received = hashlib.sha256()
            while piece := await conn.read_chunk():
                assert len(piece) <= MiB
                received.update(piece)
            assert received.digest() == hashlib.sha256(pattern(size)).digest()
            conn.release()
            assert conn.is_reusable()
        finally:
            conn.abort()


async def test_client_get_receives_long_bodies_direct_after_a_long_redirect_body() -> None:
    size = 3 * MiB + 1
    body = pattern(size)
    redirect = b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: %d\r\n\r\n" % size + body
    final = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body
    server = RawServer(responses=[redirect, final, final])
    async with server as srv, asyncnet.HTTPClient() as client:
        url = f"http://127.0.0.1:{srv.port}/start"
        for _ in range(2):
            resp = await client.get(url)
            assert resp.status == 200
            assert resp.content == body
            assert [r.status for r in resp.history] == ([302] if _ == 0 else [])
        # The redirect's connection was dropped after draining part of its
        # long body; the other carried both final bodies, direct.
        [conn] = client._dispatcher.pool._all  # type: ignore[union-attr]
        assert conn.direct_bodies == 2
        assert srv.connections == 2
        assert _live_direct_bytes() == 0


def test_a_direct_body_is_never_handed_out_unfilled() -> None:
    """Its unfilled part is unset memory: taking it early is an error, not a result."""
    body = _http_receive.DirectBody(DIRECT_MIN)
    body.write(b"x" * (DIRECT_MIN - 1))
    with pytest.raises(asyncnet.LocalProtocolError, match=f"{DIRECT_MIN - 1} of {DIRECT_MIN}"):
        body.take()
    body.write(b"y")
    assert body.take() == b"x" * (DIRECT_MIN - 1) + b"y"
    assert _live_direct_bytes() == 0


async def test_after_a_direct_body_the_next_first_read_is_short_and_any_size_still_arrives() -> (
    None
):
    """A short first read keeps the next long body in the kernel until it can go direct."""
    large, medium = 2 * MiB, 64 * 1024
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + pattern(n)
        for n in (large, large, medium, large)
    ]
    async with RawServer(responses=replies) as srv:
        conn = await _open(srv)
        try:
            first_reads = []
            for size in (large, large, medium, large):
                conn.begin(
                    "GET", read_timeout=None, write_timeout=None, deadline=None, read_whole=True
                )
                first_reads.append(len(conn.get_buffer(-1)))
                conn.write_head(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                await conn.receive_head()
                assert await conn.read_all() == pattern(size)
                conn.release()
                assert conn.is_reusable()
            short = _http_receive._SHORT_FIRST_READ
            # Full after a fresh start or a body that did not go direct; short after one that did.
            assert first_reads == [READ_SIZE, short, short, READ_SIZE]
            assert conn.direct_bodies == 3
            assert srv.connections == 1
        finally:
            conn.abort()


async def test_a_direct_body_never_pauses_reading_whatever_the_body_buffer() -> None:
    """Body bytes that came with the head count as buffered, yet the body's memory is set aside."""
    size = 2 * MiB
    go = asyncio.Event()
    body = pattern(size)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # One short segment: the head and 4 KiB of body, parsed together.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body[:4096])
        await writer.drain()
        await go.wait()
        writer.write(body[4096:])
        await writer.drain()
        await reader.read()

    async with RawServer(handler) as srv:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: HTTPConnection(body_buffer=1024), "127.0.0.1", srv.port
        )
        conn.on_release = lambda conn: None
        try:
            await _request(conn, read_whole=True)
            assert conn.direct_bodies == 1
            go.set()
            assert await conn.read_all() == body
            assert conn.read_pauses == 0
        finally:
            conn.release()
            conn.abort()


async def test_chunked_bodies_cut_at_every_kind_of_boundary() -> None:
    # Reads end inside size lines, extensions, data and CRLFs, and between CR
    # and LF. The connection hands the parser views of its reused receive
    # buffer, so any view kept past a read would corrupt what follows.
    sizes = [1, 2, 3, 10, 300, 1, 5000, 7, 40_000, 2]
    body = pattern(sum(sizes))
    framed = []
    start = 0
    for i, size in enumerate(sizes):
        ext = b";name=value" if i == 3 else b""
        framed.append(b"%x%s\r\n" % (size, ext) + body[start : start + size] + b"\r\n")
        start += size
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(framed)
        + b"0\r\nX-Sum: 1\r\n\r\n"
    )
    cuts = sorted({*range(0, 400, 3), *range(400, len(wire), 997), len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(cuts)]
    was_read = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                # One piece per read: the next goes out once this one is in.
                await was_read.wait()
                was_read.clear()

    async with RawServer(handler=handler) as srv:
        conn = await _open(srv)
        received = conn.buffer_updated

        def buffer_updated(nbytes: int) -> None:
            received(nbytes)
            was_read.set()

        conn.buffer_updated = buffer_updated  # type: ignore[method-assign]
        try:
            for _ in range(2):
                await _request(conn, read_whole=True)
                assert await conn.read_all() == body
                assert conn.trailers.get("x-sum") == "1"
                conn.release()
                assert conn.is_reusable()
        finally:
            conn.abort()


# -- any split of a valid response, through every receive path -------------------------
#
# One valid Content-Length response, cut at random points, is served one piece
# per client read: the server writes a piece and waits until the connection has
# taken every byte sent so far (whichever path took it) before it writes the next.
# Each receive path must give the exact body and leave the connection reusable.


class _CountingConnection(HTTPConnection):
    """An HTTPConnection that counts the bytes its transport delivered, on any path.

    The transport delivers through ``buffer_updated`` (shared buffer or direct
    body) or ``data_received`` (bulk reads, via the BulkReceiver); calls the
    connection makes to itself from inside one of those are not counted again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0
        self._depth = 0
        self._progress: list[tuple[int, asyncio.Future[None]]] = []
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _delivered(self, nbytes: int, deliver: Callable[[], None]) -> None:
        if self._depth:
            deliver()
            return
        self.delivered += nbytes
        self._depth += 1
        try:
            deliver()
        finally:
            self._depth -= 1
            self._wake_progress(lost=False)

    def buffer_updated(self, nbytes: int) -> None:
        self._delivered(nbytes, lambda: super(_CountingConnection, self).buffer_updated(nbytes))

    def data_received(self, data: bytes | memoryview) -> None:
        self._delivered(len(data), lambda: super(_CountingConnection, self).data_received(data))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake_progress(lost=True)
        if not self.lost.done():
            self.lost.set_result(None)

    def _wake_progress(self, *, lost: bool) -> None:
        for target, waiter in self._progress:
            if (lost or self.delivered >= target) and not waiter.done():
                waiter.set_result(None)

    async def wait_delivered(self, nbytes: int) -> None:
        """Wait until ``nbytes`` were delivered in all (or the connection is gone)."""
        if self.delivered >= nbytes or self.lost.done():
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (nbytes, waiter)
        self._progress.append(entry)
        try:
            await waiter
        finally:
            self._progress.remove(entry)


def _response_of(head_size: int, body: bytes) -> bytes:
    """A keep-alive response whose head is exactly ``head_size`` bytes (padded with fields)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    pad = head_size - len(head) - 2
    fields = []
    while pad > 0:
        # Each field line stays under the parser's 8 KiB line limit, and
        # leaves either nothing or room for the shortest field ("X:" CRLF).
        size = min(pad, 4000)
        if 0 < pad - size < 4:
            size -= 4
        value = size - len(b"X-Pad-00: \r\n")
        if value < 0:
            fields.append(b"X:" + b"p" * (pad - 4) + b"\r\n")
            break
        fields.append(b"X-Pad-%02d: %s\r\n" % (len(fields), b"p" * value))
        pad -= len(fields[-1])
    wire = head + b"".join(fields) + b"\r\n"
    assert len(wire) == head_size
    return wire + body


# Sizes where the receive paths switch: the short first read, the split of a
# long first read, the shared buffer, going direct and reading in bulk.
_BODY_SIZES = [0, 1, 100, 8 * 1024, 16 * 1024, READ_SIZE - 1, READ_SIZE, DIRECT_MIN - 1,
               DIRECT_MIN, DIRECT_MIN + 1, 2 * DIRECT_MIN, 400 * 1024]
_HEAD_SIZES = [100, 8 * 1024, 16 * 1024, 16 * 1024 + 1, 40 * 1024, 60 * 1024]


@st.composite
def _cut_responses(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    head_size = draw(st.sampled_from(_HEAD_SIZES) | st.integers(100, 60 * 1024))
    body_size = draw(st.sampled_from(_BODY_SIZES) | st.integers(0, 400 * 1024))
    total = head_size + body_size
    near_head = st.integers(max(1, head_size - 2), min(total, head_size + 2))
    cuts = draw(st.lists(near_head | st.integers(1, total), max_size=5))
    return head_size, body_size, cuts


async def _serve_cut_response(
    path: str, head_size: int, body_size: int, cuts: list[int]
) -> tuple[int, int]:
    """Serve the response in pieces, read it by ``path``; return (direct, bulk) bodies."""
    body = pattern(body_size)
    wire = _response_of(head_size, body)
    bounds = sorted({0, *cuts, len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds)]
    conn: _CountingConnection | None = None
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        assert conn is not None  # the client wrote its request after connecting
        sent = 0
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            await conn.wait_delivered(sent)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
        await writer.drain()
        await reader.read()

    async with RawServer(handler=handler) as srv:
        _, conn = await asyncio.get_running_loop().create_connection(
            _CountingConnection, "127.0.0.1", srv.port
        )
        released: list[HTTPConnection] = []
        conn.on_release = released.append
        try:
            # A read timeout only so that a broken path fails instead of hanging.
            conn.begin("GET", read_timeout=10, write_timeout=10, deadline=None,
                       read_whole=path == "whole")
            conn.write_head(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            await conn.receive_head()
            if path == "chunks":
                got = b"".join([piece async for piece in _chunks(conn)])
            else:
                got = conn.read_all_now()
                if got is None:
                    got = await conn.read_all()
            assert got == body
            conn.release()
            assert released == [conn], "the connection was not reusable"
            await _request(conn)
            assert await conn.read_all() == b"again"
            conn.release()
        finally:
            conn.close()
            await conn.lost
    assert not errors, errors
    return conn.direct_bodies, conn.bulk_bodies


async def _chunks(conn: HTTPConnection) -> AsyncIterator[bytes]:
    while piece := await conn.read_chunk():
        yield piece


_PATH_EXAMPLE = (20 * 1024, 300 * 1024, [20 * 1024])  # the head alone in the first read


@pytest.mark.parametrize("path", ["chunks", "all", "whole"])
def test_any_split_of_a_valid_response_arrives_intact_on_every_receive_path(path: str) -> None:
    """Head 100 B..60 KiB, body across the thresholds, cut anywhere, read three ways.

    ``chunks`` streams the body (long ones in bulk), ``all`` calls read_all after
    the head (long ones go direct from there), ``whole`` promises read_all at
    begin (long ones go direct from the first byte after the head).
    """
    seen = {"direct": 0, "bulk": 0, "plain": 0}

    @settings(max_examples=100)
    @example(_PATH_EXAMPLE)
    @example((20 * 1024, 0, [20 * 1024]))
    @given(_cut_responses())
    def run(case: tuple[int, int, list[int]]) -> None:
        direct, bulk = asyncio.run(_serve_cut_response(path, *case))
        seen["direct"] += direct
        seen["bulk"] += bulk
        seen["plain"] += not (direct or bulk)

    run()
    # Every path this way of reading can take was taken at least once.
    assert seen["plain"]
    assert seen["bulk" if path == "chunks" else "direct"], seen


async def test_connections_share_the_read_views_and_default_limits_and_read_intact() -> None:
    """Per-connection objects stay few (the cyclic GC walks each one of 10,000 open).

    Twenty connections open at once, each answered with its own body, all
    reading through the thread's one buffer and its two views, with one
    default ``ParserLimits`` object among them (before: three views and a
    limits object per connection).
    """
    n = 20
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b"body %d" % i), b"body %d" % i)
        for i in range(n)
    ]
    async with RawServer(responses=responses) as srv:
        conns = [await _open(srv) for _ in range(n)]
        try:
            await srv.wait_until(lambda s: s.connections == n)
            bodies = []
            for conn in conns:
                await _request(conn)
                bodies.append(await conn.read_all())
                conn.release()
            assert sorted(bodies) == sorted(b"body %d" % i for i in range(n))
            assert len({id(c._rbuf) for c in conns}) == 1
            assert len({id(c._short_view) for c in conns}) == 1
            assert len({id(c._parser.limits) for c in conns}) == 1
            assert conns[0]._rbuf.obj is _http_receive.read_buffer()
        finally:
            for conn in conns:
                conn.abort()
