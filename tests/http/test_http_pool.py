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
from asyncnet._http._connection import HTTPConnection
from asyncnet._http._pool import ConnectionPool


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


# -- property: any interleaving of acquire / release / abort / cancel -----------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["acquire", "finish", "abort", "cancel", "hand-off race", "yield", "yield"]
        ),
        st.integers(min_value=0, max_value=5),
    ),
    min_size=1,
    max_size=60,
)


_RACE = [("acquire", 0), ("yield", 2), ("acquire", 0), ("yield", 2), ("hand-off race", 0)]


@settings(max_examples=100, deadline=None)
@given(ops=_ops, max_total=st.integers(1, 3), max_host=st.integers(1, 3))
@example(ops=_RACE, max_total=1, max_host=1)  # a connection handed to a cancelled waiter
@example(ops=[*_RACE[:3], ("yield", 2), ("abort", 0), ("yield", 1), ("cancel", 1)],
         max_total=1, max_host=1)  # a slot handed over, then the waiter cancelled
def test_pool_never_exceeds_limits_nor_leaks_slots(
    ops: list[tuple[str, int]], max_total: int, max_host: int
) -> None:
    async def scenario() -> None:
        pool = ConnectionPool(Limits(max_connections=max_total, max_per_host=max_host))
        opener = Opener()
        tasks: list[asyncio.Task[HTTPConnection]] = []
        held: list[FakeConnection] = []

        def check() -> None:
            assert pool.connections_open <= max_total
            assert all(n <= max_host for n in pool._per_key.values())
            assert pool.connections_idle <= pool.connections_open

        for kind, n in ops:
            if kind == "acquire":
                tasks.append(asyncio.ensure_future(_acquire(pool, "abc"[n % 3], opener)))
            elif kind == "cancel" and tasks:
                tasks[n % len(tasks)].cancel()
            elif kind in ("finish", "abort", "hand-off race"):
                done = [t for t in tasks if t.done() and not t.cancelled()]
                for task in done:
                    tasks.remove(task)
                    conn = task.result()
                    assert isinstance(conn, FakeConnection)
                    held.append(conn)
                if held:
                    conn = held.pop(n % len(held))
                    conn.abort() if kind == "abort" else conn.finish()
                if kind == "hand-off race":
                    # The oldest waiter was just handed that connection: cancel
                    # it in the same turn, before it can run.
                    waiting = [t for t in tasks if not t.done()]
                    if waiting:
                        waiting[0].cancel()
            # Only "yield" lets other tasks run, so a hand-off and a cancellation
            # can land in the same loop turn (the cancel-after-wakeup race).
            if kind == "yield":
                for _ in range(n):
                    await asyncio.sleep(0)
            check()
        # Wind down: cancel whoever still waits, give back whatever is held.
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, FakeConnection):
                held.append(result)
        for conn in held:
            conn.finish()
        await _settle()
        check()
        assert pool.waiters == 0
        # Every slot still counted belongs to an idle connection: none leaked.
        assert pool.connections_open == pool.connections_idle
        # And all of them are usable again.
        room = min(max_total, max_host)
        again = [asyncio.ensure_future(_acquire(pool, "a", opener)) for _ in range(room)]
        await asyncio.wait_for(asyncio.gather(*again), 5)
        await pool.aclose()
        await _settle()
        assert pool.connections_open == 0

    asyncio.run(scenario())
