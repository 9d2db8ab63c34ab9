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

    with pytest.raises(asyncnet.ConnectError, match=r"^refused$"):
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


# -- policy at scale: LRU eviction, FIFO per key, no starvation, no residue -----


class InstantOpener(Opener):
    """Opens without yielding, so that acquire() returns in the turn its
    waiter was woken: tasks then run in the order the pool served them."""

    async def __call__(self) -> HTTPConnection:
        conn = FakeConnection()
        self.opened.append(conn)
        return conn


async def _served_in_order(
    pool: ConnectionPool, keys: list[str], opener: Opener
) -> list[tuple[str, int]]:
    """Start one waiter per entry of ``keys`` (in that order); each returns its
    connection right after getting it. Return (key, arrival) in service order."""
    served: list[tuple[str, int]] = []

    async def user(i: int, key: str) -> None:
        conn = await _acquire(pool, key, opener)
        served.append((key, i))
        await asyncio.sleep(0)
        assert isinstance(conn, FakeConnection)
        conn.finish()

    tasks = [asyncio.ensure_future(user(i, key)) for i, key in enumerate(keys)]
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return served


async def test_eviction_closes_the_least_recently_used_idle_connection() -> None:
    pool = ConnectionPool(Limits(max_connections=3))
    opener = Opener()
    a, b, c = [await _acquire(pool, key, opener) for key in "abc"]
    assert isinstance(a, FakeConnection) and isinstance(b, FakeConnection)
    assert isinstance(c, FakeConnection)
    b.finish()
    a.finish()
    c.finish()
    # Reusing `b` makes it the most recently used: the order is now a, c, b.
    again = await _acquire(pool, "b", opener)
    assert again is b
    b.finish()
    d = asyncio.ensure_future(_acquire(pool, "d", opener))
    await _settle()
    assert (a.aborted, c.aborted, b.aborted) == (True, False, False)
    e = asyncio.ensure_future(_acquire(pool, "e", opener))
    await _settle()
    assert (c.aborted, b.aborted) == (True, False)
    await asyncio.gather(d, e)
    assert pool.connections_open == 3
    await pool.aclose()


async def test_a_key_is_not_starved_behind_another_keys_queue() -> None:
    # Key "a" holds every slot and has a long queue; one waiter for "b"
    # arrives after the first ten of them: it must be served before any "a"
    # waiter that came after it, not after the whole queue.
    pool = ConnectionPool(Limits(max_connections=4, max_per_host=None))
    opener = InstantOpener()
    keys = ["a"] * 10 + ["b"] + ["a"] * 500
    served = await _served_in_order(pool, keys, opener)
    position = served.index(("b", 10))
    later_a_before_b = [i for key, i in served[:position] if i > 10]
    assert later_a_before_b == []
    await pool.aclose()


# Round-robin over ten keys: at most one turn per other key (and the slots in
# flight when a key joins the line) before a waiting key is served again.
_ROUNDS_BOUND = 2 * 10


async def test_10000_waiters_served_fifo_per_key_and_no_key_starves() -> None:
    import random

    rng = random.Random(20)
    # A skewed mix: half the requests go to one key, the rest to nine others;
    # 10,000 waiters at once (issue 19's size).
    keys = [rng.choice("aaaaaaaaabcdefghij") for _ in range(10_000)]
    for limits in (
        Limits(max_connections=4, max_per_host=None),
        Limits(max_connections=6, max_per_host=2),
    ):
        pool = ConnectionPool(limits)
        opener = InstantOpener()
        served = await _served_in_order(pool, keys, opener)
        assert sorted(i for _, i in served) == list(range(10_000))
        for key in set(keys):
            arrivals = [i for k, i in served if k == key]
            assert arrivals == sorted(arrivals), f"key {key} not served in arrival order"
        # No key starves: while a key still has waiters, the other keys are
        # served only a bounded number of times in a row before it is.
        max_total = limits.max_connections
        assert max_total is not None
        for key in set(keys):
            last = max(p for p, (k, _) in enumerate(served) if k == key)
            gap = longest = 0
            for k, _ in served[:last]:
                gap = 0 if k == key else gap + 1
                longest = max(longest, gap)
            assert longest <= _ROUNDS_BOUND, f"key {key}: {longest} others served in a row"
        assert pool.connections_open <= max_total
        await pool.aclose()


async def test_bookkeeping_returns_to_empty_after_many_keys_expire() -> None:
    pool = ConnectionPool(Limits(max_connections=50, max_per_host=2, keepalive_expiry=0.01))
    opener = Opener()
    start = pool.bookkeeping()
    assert set(start.values()) == {0}

    async def use(key: str) -> None:
        conn = await _acquire(pool, key, opener)
        await asyncio.sleep(0)
        assert isinstance(conn, FakeConnection)
        conn.finish()

    # 2,000 keys through 50 slots: waiters, evictions and idle connections of
    # many keys at once.
    await asyncio.gather(*(use(f"origin-{i}") for i in range(2000)))
    assert pool.connections_idle > 0
    # Wait (bounded) for the expiry timer to close every idle connection.
    for _ in range(500):
        if pool.connections_open == 0:
            break
        await asyncio.sleep(0.01)
    await _settle()
    assert pool.connections_open == 0
    assert pool.bookkeeping() == start
    await pool.aclose()


async def test_bookkeeping_returns_to_empty_after_connections_are_lost() -> None:
    pool = ConnectionPool(Limits(max_connections=None, max_per_host=None))
    opener = Opener()
    conns = await asyncio.gather(*(_acquire(pool, f"k{i}", opener) for i in range(1000)))
    for conn in conns[::2]:
        assert isinstance(conn, FakeConnection)
        conn.finish()  # idle
    for conn in conns:
        conn.abort()  # the peer goes away, idle or not
    await _settle()
    assert pool.connections_open == 0
    assert set(pool.bookkeeping().values()) == {0}
    await pool.aclose()


async def test_cancelling_random_waiters_of_10000_leaks_nothing() -> None:
    import random

    rng = random.Random(19)
    pool = ConnectionPool(Limits(max_connections=8, max_per_host=3))
    opener = Opener()

    async def user(key: str) -> None:
        conn = await _acquire(pool, key, opener)
        assert isinstance(conn, FakeConnection)
        try:
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Cancelled while using it: drop it, as the client's request does.
            conn.abort()
            raise
        conn.abort() if rng.random() < 0.1 else conn.finish()

    tasks = [asyncio.ensure_future(user(rng.choice("abcdefghijklmnop"))) for _ in range(10_000)]
    for _ in range(2000):
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        rng.choice(tasks).cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
    assert any(isinstance(r, asyncio.CancelledError) for r in results)
    await _settle()
    assert pool.waiters == 0
    assert pool.connections_open == pool.connections_idle <= 8
    sizes = pool.bookkeeping()
    assert sizes["waiter_keys"] == sizes["wanting_keys"] == sizes["closing"] == 0
    assert sizes["slot_keys"] == sizes["idle_keys"]
    # Every slot can still be used: 8 new keys each get a connection.
    more = [asyncio.ensure_future(_acquire(pool, f"new{i}", opener)) for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*more), 5)
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
            # The pool's own invariant (module docstring) and its counters.
            queues = pool._waiters
            assert pool.waiters == sum(len(q) for q in queues.values())
            assert set(pool._wanting) == {k for k in queues if pool._want(k)}
            assert pool._wanted == sum(pool._want(k) for k in queues)
            if pool._wanting:
                assert pool.connections_open == max_total
            if pool._wanted > len(pool._closing):
                assert pool.connections_idle == 0
            assert not set(queues) & set(pool._idle_by_key)

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
        assert set(pool.bookkeeping().values()) == {0}, pool.bookkeeping()

    asyncio.run(scenario())
