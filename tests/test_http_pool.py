"""ConnectionPool slot logic: hand-off, limits, eviction, cancellation races.

These drive the pool with stand-in connections so that the exact interleaving
(a waiter cancelled right after being handed a slot, a timer firing at the
same turn) can be set up deterministically; the end-to-end behaviour over
real sockets is in test_http_client.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

import asyncnet
from asyncnet import Limits
from asyncnet._http_connection import HTTPConnection
from asyncnet._http_pool import ConnectionPool


class FakeConnection(HTTPConnection):
    """An HTTPConnection without a socket: abort() reports the loss on the next turn."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def is_reusable(self) -> bool:
        return not self.aborted

    def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            asyncio.get_running_loop().call_soon(self.connection_lost, None)

    close = abort

    def finish(self) -> None:
        """End an exchange cleanly: hand the connection back to the pool."""
        assert self.on_release is not None
        self.on_release(self)


class Opener:
    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []

    async def __call__(self) -> HTTPConnection:
        await asyncio.sleep(0)
        conn = FakeConnection()
        self.opened.append(conn)
        return conn


async def _acquire(
    pool: ConnectionPool, key: Hashable, opener: Opener, timeout: float | None = None
) -> HTTPConnection:
    return await pool.acquire(key, opener, pool_timeout=timeout, deadline=None)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_reuse_after_release() -> None:
    pool = ConnectionPool(Limits())
    opener = Opener()
    first = await _acquire(pool, "a", opener)
    assert isinstance(first, FakeConnection)
    first.finish()
    assert pool.connections_idle == 1
    assert await _acquire(pool, "a", opener) is first
    assert len(opener.opened) == 1
    await pool.aclose()


async def test_waiter_gets_the_released_connection() -> None:
    pool = ConnectionPool(Limits(max_connections=1))
    opener = Opener()
    held = await _acquire(pool, "a", opener)
    waiter = asyncio.ensure_future(_acquire(pool, "a", opener))
    await _settle()
    assert not waiter.done() and pool.waiters == 1
    assert isinstance(held, FakeConnection)
    held.finish()
    assert await waiter is held
    assert pool.waiters == 0 and pool.connections_open == 1
    await pool.aclose()


async def test_cancel_after_wakeup_gives_the_connection_back() -> None:
    pool = ConnectionPool(Limits(max_connections=1))
    opener = Opener()
    held = await _acquire(pool, "a", opener)
    first = asyncio.ensure_future(_acquire(pool, "a", opener))
    second = asyncio.ensure_future(_acquire(pool, "a", opener))
    await _settle()
    assert pool.waiters == 2
    assert isinstance(held, FakeConnection)
    held.finish()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    # The connection went on to the next waiter instead of being lost.
    assert await second is held
    assert pool.connections_open == 1 and pool.waiters == 0
    await pool.aclose()


async def test_cancel_after_wakeup_gives_the_slot_back() -> None:
    pool = ConnectionPool(Limits(max_connections=1))
    opener = Opener()
    held = await _acquire(pool, "a", opener)
    first = asyncio.ensure_future(_acquire(pool, "b", opener))
    second = asyncio.ensure_future(_acquire(pool, "b", opener))
    await _settle()
    held.abort()  # its slot is free once it is gone
    await asyncio.sleep(0)  # connection_lost runs: the slot goes to `first`
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    conn = await second
    assert pool.connections_open == 1
    assert conn is opener.opened[-1]
    await pool.aclose()


async def test_pool_timeout_leaves_no_waiter_and_no_slot() -> None:
    pool = ConnectionPool(Limits(max_connections=1))
    opener = Opener()
    held = await _acquire(pool, "a", opener)
    with pytest.raises(asyncnet.PoolTimeout):
        await _acquire(pool, "a", opener, timeout=0.01)
    assert pool.waiters == 0
    assert isinstance(held, FakeConnection)
    held.finish()
    assert await _acquire(pool, "a", opener) is held
    await pool.aclose()


async def test_idle_connection_of_another_host_is_evicted_for_a_waiter() -> None:
    pool = ConnectionPool(Limits(max_connections=1))
    opener = Opener()
    a = await _acquire(pool, "a", opener)
    assert isinstance(a, FakeConnection)
    a.finish()
    b = await _acquire(pool, "b", opener)
    assert a.aborted
    assert b is not a
    assert pool.connections_open == 1
    await pool.aclose()


async def test_per_host_limit_does_not_block_other_hosts() -> None:
    pool = ConnectionPool(Limits(max_connections=10, max_per_host=1))
    opener = Opener()
    await _acquire(pool, "a", opener)
    blocked = asyncio.ensure_future(_acquire(pool, "a", opener))
    await _settle()
    other = await _acquire(pool, "b", opener)
    assert other is opener.opened[-1]
    assert not blocked.done()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert pool.waiters == 0 and pool.connections_open == 2
    await pool.aclose()


async def test_failed_connect_frees_its_slot() -> None:
    pool = ConnectionPool(Limits(max_connections=1))

    async def failing() -> HTTPConnection:
        raise asyncnet.ConnectError("refused")

    with pytest.raises(asyncnet.ConnectError):
        await pool.acquire("a", failing, pool_timeout=None, deadline=None)
    await asyncio.sleep(0)
    assert pool.connections_open == 0
    opener = Opener()
    assert await _acquire(pool, "a", opener, timeout=1) is opener.opened[0]
    await pool.aclose()


async def test_random_cancellation_never_leaks_slots() -> None:
    pool = ConnectionPool(Limits(max_connections=3, max_per_host=2))
    opener = Opener()

    async def user(i: int) -> None:
        conn = await _acquire(pool, "ab"[i % 2], opener)
        for _ in range(i % 3):
            await asyncio.sleep(0)
        assert isinstance(conn, FakeConnection)
        if i % 5 == 0:
            conn.abort()
        else:
            conn.finish()

    tasks = [asyncio.ensure_future(user(i)) for i in range(300)]
    for i, task in enumerate(tasks):
        if i % 3 == 0:
            for _ in range(i % 4):
                await asyncio.sleep(0)
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _settle()
    assert pool.waiters == 0
    assert pool.connections_open == pool.connections_idle <= 3
    await pool.aclose()
    await _settle()
    assert pool.connections_open == 0
