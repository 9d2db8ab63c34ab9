"""Cancellation at any point leaks nothing: slots, connections, tasks, warnings.

The big test cancels 1,000 requests at seeded random points of their life
(waiting for a slot, connecting, sending, waiting for the head, reading the
body); afterwards the pool must be whole, the limits must have held on the
server side, and new requests must succeed. ``tests/conftest.py`` adds the
rest: no task left pending, no loop error, no ResourceWarning.
"""

from __future__ import annotations

import asyncio
import gzip
import random
from collections.abc import AsyncIterator, Callable

import pytest

from asyncnet import HTTPClient, Limits, Timeout
from tests.support.servers import RawServer, read_request, response, server_ssl_context

OK = response(200, b"ok")


async def _until(condition: Callable[[], bool]) -> None:
    """Give the loop a bounded number of turns (callbacks such as connection_lost)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


def _assert_pool_whole(client: HTTPClient) -> None:
    stats = client.statistics()
    assert stats.pool_waiters == 0, stats
    # Every open connection is idle: none is still held by a dead request.
    assert stats.connections_open == stats.connections_idle, stats


async def _varied_replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer keep-alive requests in pieces, with loop turns between them."""
    body = bytes(range(256)) * 64  # 16 KiB
    while True:
        request = await read_one(reader)
        if not request:
            return
        kind = len(request) % 3
        if kind == 0:
            writer.write(response(200, body))
        elif kind == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 4096):
                await asyncio.sleep(0)
                writer.write(body[i : i + 4096])
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 4096):
                await asyncio.sleep(0)
                writer.write(b"1000\r\n" + body[i : i + 4096] + b"\r\n")
            writer.write(b"0\r\n\r\n")
        await writer.drain()


async def read_one(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""


async def test_cancel_1000_requests_at_random_points() -> None:
    rng = random.Random(20261124)
    limit = 8
    body = bytes(range(256)) * 64
    outcomes = {"done": 0, "cancelled": 0}
    srv = RawServer(_varied_replies)
    async with srv, HTTPClient(
        limits=Limits(max_connections=limit, max_per_host=limit),
        timeout=Timeout(pool=30, read=30),
    ) as client:

        async def one(i: int) -> None:
            # Paths of different lengths pick different reply framings on the server.
            path = "/" + "p" * (i % 3)
            if i % 4 == 0:
                async with client.stream("GET", srv.url(path)) as resp:
                    async for _ in resp.aiter_bytes():
                        await asyncio.sleep(0)
            else:
                resp = await client.get(srv.url(path))
                assert resp.content == body

        for batch in range(20):
            tasks = [asyncio.create_task(one(batch * 50 + i)) for i in range(50)]
            points = [rng.randrange(0, 80) for _ in tasks]
            for turn in range(max(points) + 1):
                for task, point in zip(tasks, points, strict=True):
                    if point == turn:
                        task.cancel()
                await asyncio.sleep(0)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, asyncio.CancelledError):
                    outcomes["cancelled"] += 1
                elif result is None:
                    outcomes["done"] += 1
                else:
                    raise AssertionError(f"unexpected outcome {result!r}")
            await _until(lambda: client.statistics().connections_open
                         == client.statistics().connections_idle)
            _assert_pool_whole(client)

        assert outcomes["done"] + outcomes["cancelled"] == 1000
        # The seed makes both outcomes common; a test that never cancels proves nothing.
        assert outcomes["cancelled"] >= 100 and outcomes["done"] >= 100, outcomes
        assert srv.peak_connections <= limit
        assert client.statistics().connections_open <= limit

        # Every slot is usable again: `limit` concurrent requests all get through.
        results2 = await asyncio.gather(*(client.get(srv.url()) for _ in range(limit * 3)))
        assert all(r.content == body for r in results2)
        assert srv.peak_connections <= limit
        # No connection was forgotten while left open: the server sees exactly
        # the connections the client still accounts for.
        await srv.wait_until(
            lambda s: s.active_connections == client.statistics().connections_open
        )
    await srv.wait_until(lambda s: s.active_connections == 0)


def _gated(gate: asyncio.Event) -> RawServer:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            await gate.wait()
            await srv.send(writer, OK)

    srv = RawServer(handler)
    return srv


async def test_cancelled_pool_waiters_leave_no_trace() -> None:
    gate = asyncio.Event()
    async with _gated(gate) as srv, HTTPClient(limits=Limits(max_connections=1)) as client:
        first = asyncio.create_task(client.get(srv.url("/first")))
        await srv.wait_until(lambda s: s.active_requests == 1)
        waiters = [asyncio.create_task(client.get(srv.url(f"/w{i}"))) for i in range(10)]
        await _until(lambda: client.statistics().pool_waiters == 10)
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert client.statistics().pool_waiters == 0
        gate.set()
        assert (await first).content == b"ok"
        assert (await client.get(srv.url("/after"))).content == b"ok"
        assert srv.connections == 1
        _assert_pool_whole(client)


async def test_waiter_cancelled_right_after_being_handed_a_connection() -> None:
    gate = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The head at once, the body only once the gate opens.
        while await srv.read_request(reader, writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            await gate.wait()
            await srv.send(writer, b"ok")

    srv = RawServer(handler)
    async with srv, HTTPClient(limits=Limits(max_connections=1)) as client:
        async with client.stream("GET", srv.url("/first")) as first:
            second = asyncio.create_task(client.get(srv.url("/second")))
            third = asyncio.create_task(client.get(srv.url("/third")))
            await _until(lambda: client.statistics().pool_waiters == 2)
            gate.set()
            assert await first.read() == b"ok"
        # The connection went back to the pool and on to the oldest waiter,
        # which has not run yet: cancel it now, before it can use it. The
        # connection must pass on to the next waiter, not leak or close.
        second.cancel()
        assert (await third).content == b"ok"
        with pytest.raises(asyncio.CancelledError):
            await second
        _assert_pool_whole(client)
        assert srv.connections == 1
        assert [r.split(b" ")[1] for r in srv.request_log] == [b"/first", b"/third"]


async def test_cancel_while_connecting_frees_the_slot() -> None:
    # A TLS peer that never answers the handshake: the request is stuck connecting.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # the ClientHello, then EOF when the client gives up

    async with RawServer(handler) as srv, HTTPClient(limits=Limits(max_connections=1)) as client:
        url = srv.url().replace("http://", "https://")
        task = asyncio.create_task(client.get(url))
        await srv.wait_until(lambda s: s.active_connections == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _until(lambda: client.statistics().connections_open == 0)
        await srv.wait_until(lambda s: s.active_connections == 0)


async def test_cancel_while_streaming_the_body_discards_the_connection() -> None:
    started = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
            await reader.read()  # never finishes the body

    async def consume() -> None:
        async with client.stream("GET", srv.url()) as resp:
            async for _ in resp.aiter_bytes():
                started.set()

    srv = RawServer(handler)
    async with srv, HTTPClient() as client:
        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The half-read connection is closed, never pooled.
        await srv.wait_until(lambda s: s.active_connections == 0)
        await _until(lambda: client.statistics().connections_open == 0)


async def test_outer_timeout_cancels_cleanly() -> None:
    gate = asyncio.Event()
    async with _gated(gate) as srv, HTTPClient(limits=Limits(max_connections=2)) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.get(srv.url())
        await srv.wait_until(lambda s: s.active_connections == 0)
        await _until(lambda: client.statistics().connections_open == 0)
        gate.set()
        assert (await client.get(srv.url())).content == b"ok"


async def test_closing_the_client_fails_waiters_and_requests_in_flight() -> None:
    gate = asyncio.Event()
    async with _gated(gate) as srv:
        client = HTTPClient(limits=Limits(max_connections=1))
        first = asyncio.create_task(client.get(srv.url("/first")))
        await srv.wait_until(lambda s: s.active_requests == 1)
        waiter = asyncio.create_task(client.get(srv.url("/second")))
        await _until(lambda: client.statistics().pool_waiters == 1)
        await client.aclose()
        results = await asyncio.gather(first, waiter, return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results), results
        await srv.wait_until(lambda s: s.active_connections == 0)
        gate.set()


async def test_tls_requests_cancelled_at_random_points() -> None:
    rng = random.Random(7)
    async with RawServer(
        responses=[response(200, b"t" * 5000)], repeat=True, ssl=server_ssl_context()
    ) as srv, HTTPClient(ssl=False, limits=Limits(max_connections=4)) as client:
        tasks = [asyncio.create_task(client.get(srv.url())) for _ in range(100)]
        points = [rng.randrange(0, 40) for _ in tasks]
        for turn in range(41):
            for task, point in zip(tasks, points, strict=True):
                if point == turn:
                    task.cancel()
            await asyncio.sleep(0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(
            isinstance(r, asyncio.CancelledError) or r.content == b"t" * 5000  # type: ignore[union-attr]
            for r in results
        )
        await _until(lambda: client.statistics().connections_open
                     == client.statistics().connections_idle)
        _assert_pool_whole(client)
        assert srv.peak_connections <= 4
        assert (await client.get(srv.url())).status == 200


async def _mixed_replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive replies chosen by path: redirect, gzip, chunked, or a plain echo of the size."""
    while True:
        try:
            request = await read_request(reader)
        except (asyncio.IncompleteReadError, ValueError):
            return
        if not request:
            return
        path = request.split(b" ", 2)[1]
        if path.startswith(b"/redirect"):
            reply = response(302, b"x" * 100, [("Location", "/final")])
        elif path.startswith(b"/gzip"):
            reply = response(200, GZ_BODY, [("Content-Encoding", "gzip")])
        elif path.startswith(b"/chunked"):
            reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"".join(b"400\r\n" + PLAIN[i : i + 1024] + b"\r\n"
                                for i in range(0, len(PLAIN), 1024))
                     + b"0\r\n\r\n")
        else:
            reply = response(200, PLAIN)
        for i in range(0, len(reply), 3000):
            writer.write(reply[i : i + 3000])
            await asyncio.sleep(0)
        await writer.drain()


PLAIN = bytes(range(256)) * 32  # 8 KiB
GZ_BODY = gzip.compress(PLAIN)


async def test_cancel_mixed_requests_with_redirects_uploads_and_decoding() -> None:
    rng = random.Random(99)
    limit = 5
    cancelled = 0
    async with RawServer(_mixed_replies) as srv, HTTPClient(
        limits=Limits(max_connections=limit, max_per_host=limit)
    ) as client:

        async def upload() -> AsyncIterator[bytes]:
            for _ in range(8):
                await asyncio.sleep(0)
                yield b"u" * 4096

        async def one(i: int) -> None:
            kind = i % 5
            if kind == 0:
                resp = await client.get(srv.url("/redirect"))
            elif kind == 1:
                resp = await client.get(srv.url("/gzip"))
            elif kind == 2:
                resp = await client.post(srv.url("/up"), body=upload())
            elif kind == 3:
                resp = await client.put(srv.url("/up"), body=b"p" * 50000)
            else:
                async with client.stream("GET", srv.url("/chunked")) as streamed:
                    data = b"".join([piece async for piece in streamed.aiter_bytes()])
                assert data == PLAIN
                return
            assert resp.content == PLAIN

        for batch in range(6):
            tasks = [asyncio.create_task(one(batch * 50 + i)) for i in range(50)]
            points = [rng.randrange(0, 60) for _ in tasks]
            for turn in range(61):
                for task, point in zip(tasks, points, strict=True):
                    if point == turn:
                        task.cancel()
                await asyncio.sleep(0)
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, asyncio.CancelledError):
                    cancelled += 1
                elif result is not None:
                    raise AssertionError(f"unexpected outcome {result!r}")
            await _until(lambda: client.statistics().connections_open
                         == client.statistics().connections_idle)
            _assert_pool_whole(client)
        assert 30 <= cancelled <= 270, cancelled
        assert srv.peak_connections <= limit
        results = await asyncio.gather(*(client.get(srv.url("/gzip")) for _ in range(10)))
        assert all(r.content == PLAIN for r in results)
    await srv.wait_until(lambda s: s.active_connections == 0)
