"""The pool under many origins and many waiters, over real loopback sockets.

One asyncio server listens on many ports of 127.0.0.1 (every port is an
origin to the client) and counts, across all of them, the connections open at
once: the pool's limits must hold as the server sees them. One test runs at
issue 19's size (5,000 origins, 10,000 requests; a few seconds, with the
descriptor limit raised for it); the others use 50 to 200 origins.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import random
import resource
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest

import asyncnet
from asyncnet import HTTPClient, Limits
from asyncnet._fetch._limits import connection_budget as _connection_budget
from asyncnet._http._connector import open_connection
from tests.support.servers import RawServer

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _Counting(asyncio.Protocol):
    """Answers every GET with a small keep-alive response; counts itself open or gone."""

    def __init__(self, server: ManyPortServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._opened(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\r\n\r\n" in self._buffer:
            _, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            self._server.requests += 1
            assert self._transport is not None
            self._transport.write(_REPLY)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._server._ended(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class ManyPortServer:
    """``async with ManyPortServer(n) as srv``: one HTTP responder on ``n`` ports of 127.0.0.1.

    ``active`` and ``peak`` count connections open at once across every port
    (open from ``connection_made`` until EOF or loss).
    """

    def __init__(self, ports: int) -> None:
        self._n = ports
        self._servers: list[asyncio.Server] = []
        self._conns: set[_Counting] = set()
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.ports: list[int] = []
        self.active = 0
        self.peak = 0
        self.connections = 0
        self.requests = 0

    async def __aenter__(self) -> ManyPortServer:
        loop = asyncio.get_running_loop()
        for _ in range(self._n):
            server = await loop.create_server(lambda: _Counting(self), "127.0.0.1", 0)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers:
            server.close()
        self.abort_all()
        for server in self._servers:
            await server.wait_closed()

    def _opened(self, conn: _Counting) -> None:
        self._conns.add(conn)
        self.connections += 1
        self.active += 1
        self.peak = max(self.peak, self.active)

    def _ended(self, conn: _Counting) -> None:
        self._conns.discard(conn)
        self.active -= 1
        for condition, future in list(self._conditions):
            if not future.done() and condition():
                future.set_result(None)

    def abort_all(self) -> None:
        """Reset every open connection (as a server restarting would)."""
        for conn in list(self._conns):
            conn.abort()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked whenever a connection ends."""
        if condition():
            return
        future = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._conditions.append(entry)
        try:
            await future
        finally:
            self._conditions.remove(entry)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition the client reaches on its own loop turns."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_limits_hold_on_the_server_side_with_200_origins() -> None:
    rng = random.Random(5)
    limits = Limits(max_connections=20, max_per_host=2)
    async with ManyPortServer(200) as srv, HTTPClient(limits=limits) as client:
        urls = [f"http://127.0.0.1:{port}/" for port in srv.ports] * 5
        rng.shuffle(urls)
        peak_open = 0

        async def get(url: str) -> int:
            nonlocal peak_open
            response = await client.get(url)
            peak_open = max(peak_open, client.statistics().connections_open)
            return response.status

        statuses = await asyncio.gather(*(get(url) for url in urls))
        assert statuses == [200] * len(urls)
        assert srv.requests == len(urls)
        assert srv.peak <= 20, f"the server saw {srv.peak} connections at once"
        assert peak_open <= 20
        # Every origin was used: the cap forced connections to be closed and
        # opened again (least recently used first), not just reused.
        assert srv.connections > 20


@contextlib.contextmanager
def _descriptors(needed: int) -> Iterator[None]:
    """Raise the soft descriptor limit to ``needed`` in the block; skip if the hard one is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_limits_hold_on_the_server_side_with_5000_origins() -> None:
    # Issue 19's size: 10,000 requests over 5,000 origins (each twice, in a
    # random order) through at most 100 connections, counted on the server
    # side. Every request past the first 100 needs the least recently used
    # idle connection closed before its own opens.
    rng = random.Random(19)
    limits = Limits(max_connections=100, max_per_host=2)
    with _descriptors(5_000 + 2 * 100 + 200):
        async with ManyPortServer(5_000) as srv, HTTPClient(limits=limits) as client:
            urls = [f"http://127.0.0.1:{port}/" for port in srv.ports] * 2
            rng.shuffle(urls)
            todo = iter(urls)
            peak_open = 0

            async def worker() -> None:
                nonlocal peak_open
                for url in todo:
                    response = await client.get(url)
                    assert response.status == 200
                    peak_open = max(peak_open, client.statistics().connections_open)

            await asyncio.gather(*(worker() for _ in range(100)))
            assert srv.requests == 10_000
            assert srv.peak <= 100, f"the server saw {srv.peak} connections at once"
            assert peak_open <= 100
            # Most requests found their origin without an idle connection.
            assert srv.connections > 5_000


async def test_pool_tables_empty_again_after_200_origins_are_gone() -> None:
    limits = Limits(max_connections=None, max_per_host=4)
    async with ManyPortServer(200) as srv, HTTPClient(limits=limits) as client:
        for port in srv.ports:
            assert (await client.get(f"http://127.0.0.1:{port}/")).status == 200
        pool = client._dispatcher.pool
        assert pool is not None
        assert client.statistics().connections_idle == 200
        assert pool.bookkeeping()["idle_keys"] == 200
        srv.abort_all()  # every idle connection is reset by the server
        await _until(lambda: client.statistics().connections_open == 0)
        pool_sizes = pool.bookkeeping()
        assert set(pool_sizes.values()) == {0}, pool_sizes


async def test_many_waiters_on_many_origins_are_all_served_and_leave_nothing() -> None:
    # 2,000 requests on 50 origins through 8 connections, a tenth of them
    # cancelled at random points: every other one gets its response, and the
    # pool ends with idle connections only.
    rng = random.Random(9)
    limits = Limits(max_connections=8, max_per_host=3)
    async with ManyPortServer(50) as srv, HTTPClient(limits=limits) as client:
        urls = [f"http://127.0.0.1:{rng.choice(srv.ports)}/" for _ in range(2000)]
        tasks = [asyncio.ensure_future(client.get(url)) for url in urls]
        for _ in range(200):
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            rng.choice(tasks).cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        served = [r for r in results if isinstance(r, asyncnet.Response)]
        cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
        assert len(served) + len(cancelled) == len(results)
        assert cancelled and all(r.status == 200 for r in served)
        assert srv.peak <= 8
        stats = client.statistics()
        assert stats.pool_waiters == 0
        assert stats.connections_open == stats.connections_idle <= 8
        await srv.wait_until(lambda: srv.active == stats.connections_open)


async def test_fetch_all_reuses_connections_when_origins_outnumber_concurrency() -> None:
    # 1,000 URLs over 200 origins at concurrency 20 (issue 19): requests in
    # flight are bounded by the workers, connections kept open by the
    # descriptor budget, so each origin's connection is opened once and
    # reused, instead of a cap of 20 connections closing one per request.
    async with ManyPortServer(200) as srv:
        urls = [f"http://127.0.0.1:{srv.ports[i % 200]}/?i={i}" for i in range(1000)]
        results = await asyncnet.fetch_all(urls, concurrency=20)
        assert [r.status for r in results] == [200] * 1000
        assert srv.requests == 1000
        assert srv.connections == 200, f"{srv.connections} connections for 200 origins"
        assert srv.peak <= 200
        # fetch_all closed its client: nothing stays open on the server.
        await srv.wait_until(lambda: srv.active == 0)


def test_connection_budget_is_half_the_descriptor_limit_within_bounds() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        # No descriptor is opened while the limit is low.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(200, hard), hard))
        assert _connection_budget(10) == min(200, hard) // 2
        assert _connection_budget(500) == 500  # never below the concurrency
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if hard == resource.RLIM_INFINITY or hard >= 40_000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40_000, hard))
        try:
            assert _connection_budget(10) == 10_000  # the memory cap
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_open_connections_share_the_pools_callbacks_and_all_come_back() -> None:
    """What each open connection holds stays small: the pool's two callbacks are shared.

    With 10,000 connections open, a bound method per connection and callback
    is 20,000 more objects for every full garbage collection to walk. Twenty
    connections held open at once on 20 origins: every one carries the same
    ``on_release`` and ``on_lost`` objects, and every one comes back idle
    (the server saw exactly 20 connections).
    """
    async with (
        ManyPortServer(20) as srv,
        HTTPClient(limits=Limits(max_per_host=1)) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        responses = [
            await stack.enter_async_context(client.stream("GET", f"http://127.0.0.1:{port}/"))
            for port in srv.ports
        ]
        pool = client._dispatcher.pool
        assert pool is not None
        conns = list(pool._all)
        assert len(conns) == 20
        assert len({id(c.on_release) for c in conns}) == 1
        assert len({id(c.on_lost) for c in conns}) == 1
        for response in responses:
            assert await response.read() == b"ok"
        assert client.statistics().connections_idle == 20
        assert srv.connections == 20


async def test_a_request_waiting_for_its_answer_keeps_no_opener() -> None:
    """The connection opener is dropped once the connection is open.

    Twenty requests wait at once for answers the server holds back: none of
    them still holds the ``functools.partial`` that opened its connection
    (it would be two objects per request in flight, args and all, for every
    full garbage collection to walk), and all twenty are answered.
    """
    go = asyncio.Event()
    n = 20

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader, writer):
            await go.wait()
            await srv.send(writer, _REPLY)

    async with RawServer(held) as srv, HTTPClient(limits=Limits(max_per_host=n)) as client:
        url = f"http://127.0.0.1:{srv.port}/"
        tasks = [asyncio.create_task(client.get(url)) for _ in range(n)]
        try:
            await srv.wait_until(lambda s: s.active_requests == n)
            openers = [
                o
                for o in gc.get_objects()
                if isinstance(o, functools.partial) and o.func is open_connection
            ]
            assert openers == []
        finally:
            go.set()
            responses = await asyncio.gather(*tasks)
        assert [r.status for r in responses] == [200] * n
        assert srv.connections == n
