"""The keep-alive connection pool: slots, idle reuse, expiry, and fair hand-off.

A *slot* is held by every connection from the moment we start opening it
until its transport is gone, so the limits bound what the server sees, not
just what we think is open: ``max_connections`` slots in all, at most
``max_per_host`` of them for one key (scheme, host, port, TLS settings).

Waiting, and who is served next (the policy; every decision below is O(1)
amortised, whatever the number of waiters, keys or idle connections):

* Each key has its own FIFO queue of waiters, so a key's requests are served
  in the order they arrived. A waiter is a future completed with an idle
  connection, or with None meaning "a slot is reserved for you: open a
  connection".
* A connection released while its key has waiters goes straight to the
  oldest of them; it is never parked idle while someone wants it.
* Keys whose waiters could use a free slot (they are under ``max_per_host``)
  take turns, round-robin: a free slot (a connection gone, a connect failed)
  goes to the key at the front of the line, which then moves to the back
  (as does a key at the front served from its own released connection).
* When every slot is taken and a key waits for room while idle connections
  of *other* keys exist, the least recently used idle connection across all
  keys is closed to make room: one per slot wanted, counting those already
  closing.
* When no idle connection is left to close, a connection released while its
  own key has waiters is closed instead of handed on if another key is at
  the front of the line and the slots already coming back do not cover what
  the other keys want; its slot then goes to that key. So under a full pool
  one key's stream of requests cannot keep another key waiting for ever: a
  waiting key is served again after at most one turn of every other key
  (in the limit of the slots in flight). Keep ``max_per_host`` below
  ``max_connections`` to make such turns (and the new connections they
  cost) rare.
* Idle connections are reused newest first (the oldest ones are the likeliest
  to have been closed by the server) and closed once idle for
  ``keepalive_expiry`` seconds; expiry walks only the connections that
  expired.

Per-key tables are deleted the moment they empty, so memory returns to its
starting size once connections expire, however many keys were used
(:meth:`ConnectionPool.bookkeeping` shows the table sizes).

Waiting is cancellation-safe: a waiter that was cancelled or timed out after
being handed something gives it straight back (to the next waiter, or idle),
the same hand-off rule as asyncio.Semaphore since 3.11.x, so no slot or
connection is ever lost.

Invariant, restored after every change (a connection released or lost, a
waiter added or gone): if a slot is free, no key that could use it has
waiters; if slots are wanted, no idle connection is left that could be
closed to make room beyond those already closing.
"""

from __future__ import annotations

import asyncio
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Final

from .._deadline import wait_end
from .._errors import ConnectionClosed, PoolTimeout, TotalTimeout
from ._connection import HTTPConnection
from ._models import Limits

__all__ = ["ConnectionPool"]

# "No limit", as an int so that slot arithmetic stays in ints.
_UNBOUNDED: Final = sys.maxsize

Connector = Callable[[], Awaitable[HTTPConnection]]
# A waiter: completed with an idle connection, or None for a reserved slot.
Waiter = asyncio.Future[HTTPConnection | None]


class ConnectionPool:
    """Keep-alive connections per key, under total and per-key limits."""

    def __init__(self, limits: Limits) -> None:
        self._loop = asyncio.get_running_loop()
        self._max_total = _UNBOUNDED if limits.max_connections is None else limits.max_connections
        self._max_host = _UNBOUNDED if limits.max_per_host is None else limits.max_per_host
        self._expiry = limits.keepalive_expiry
        # Every idle connection, least recently released first (the LRU order
        # that eviction and expiry take from the front), and the same ones per
        # key, in release order (reuse pops the newest from the back).
        self._idle: OrderedDict[HTTPConnection, None] = OrderedDict()
        self._idle_by_key: dict[Hashable, dict[HTTPConnection, None]] = {}
        self._total = 0
        self._per_key: dict[Hashable, int] = {}
        # Per key, its waiters in arrival order, each with its arrival number.
        self._waiters: dict[Hashable, OrderedDict[Waiter, int]] = {}
        self._n_waiters = 0
        self._arrivals = 0
        # Keys whose waiters could use a free slot (under max_per_host), in
        # round-robin order, and how many slots they could use in all.
        self._wanting: OrderedDict[Hashable, None] = OrderedDict()
        self._wanted = 0
        self._all: set[HTTPConnection] = set()
        # Connections we closed that still hold a slot until they are gone.
        self._closing: set[HTTPConnection] = set()
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.connections_opened = 0
        self._gone_read_pauses = 0
        self._gone_peak_buffered = 0

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    # -- statistics ---------------------------------------------------------------

    @property
    def connections_open(self) -> int:
        """Slots in use: connections open or being opened."""
        return self._total

    @property
    def connections_idle(self) -> int:
        """Connections idle in the pool."""
        return len(self._idle)

    @property
    def waiters(self) -> int:
        """Requests waiting for a slot."""
        return self._n_waiters

    @property
    def read_pauses(self) -> int:
        """Read pauses of the connections still open."""
        return self._gone_read_pauses + sum(conn.read_pauses for conn in self._all)

    @property
    def peak_buffered(self) -> int:
        """Most body bytes any connection has buffered at once."""
        return max(
            self._gone_peak_buffered, max((c.peak_buffered for c in self._all), default=0)
        )

    def bookkeeping(self) -> dict[str, int]:
        """Sizes of the pool's internal tables, for tests and debugging.

        Every size is 0 once nothing is open, idle or waiting, whatever number
        of keys was used before: per-key entries are deleted when they empty.
        """
        return {
            "connections": len(self._all),
            "closing": len(self._closing),
            "idle": len(self._idle),
            "idle_keys": len(self._idle_by_key),
            "slot_keys": len(self._per_key),
            "waiter_keys": len(self._waiters),
            "wanting_keys": len(self._wanting),
        }

    # -- acquire ------------------------------------------------------------------

    def take_idle(self, key: Hashable) -> HTTPConnection | None:
        """Return an idle connection for ``key`` without waiting, or None.

        The common case of :meth:`acquire`, without a coroutine: None also
        when the pool is closed, which :meth:`acquire` then reports.
        """
        if self._closed:
            return None
        return self._pop_idle(key)

    async def acquire(
        self,
        key: Hashable,
        connect: Connector,
        *,
        pool_timeout: float | None,
        deadline: float | None,
    ) -> HTTPConnection:
        """Return an idle connection for ``key``, or open a new one when a slot is free.

        Waits (bounded by ``pool_timeout`` and ``deadline``) while the limits are reached.
        """
        if self._closed:
            raise ConnectionClosed("the client is closed")
        conn = self._pop_idle(key)
        if conn is not None:
            return conn
        if (
            self._total < self._max_total
            and self._per_key.get(key, 0) < self._max_host
            and key not in self._waiters
        ):
            self._reserve(key)
        else:
            conn = await self._wait_for_turn(key, pool_timeout, deadline)
            if conn is not None:
                return conn
        # A slot is reserved for us: open the connection.
        try:
            conn = await connect()
        except BaseException:
            # The socket was closed just now; give the peer a loop turn to see
            # it go before the slot lets another connection open.
            self._loop.call_soon(self._unreserve, key)
            raise
        if self.closed:
            conn.abort()
            self._unreserve(key)
            raise ConnectionClosed("the client was closed while connecting")
        self._adopt(conn, key)
        return conn

    def _pop_idle(self, key: Hashable) -> HTTPConnection | None:
        idle = self._idle_by_key.get(key)
        if idle is None:
            return None
        expiry = self._expiry
        now = self._loop.time() if expiry is not None else 0.0
        found = None
        while idle:
            conn, _ = idle.popitem()  # the newest
            del self._idle[conn]
            if conn.is_reusable() and (expiry is None or now - conn.idle_since < expiry):
                found = conn
                break
            # Stale: dropping it frees its slot once the transport is gone.
            self._closing.add(conn)
            conn.abort()
        if not idle:
            del self._idle_by_key[key]
        return found

    def _adopt(self, conn: HTTPConnection, key: Hashable) -> None:
        conn.key = key
        conn.on_release = self._release
        conn.on_lost = self._lost
        self._all.add(conn)
        self.connections_opened += 1
        if conn.is_lost:
            # Lost before we could watch it (the callback already ran without us).
            self._lost(conn)

    async def _wait_for_turn(
        self, key: Hashable, pool_timeout: float | None, deadline: float | None
    ) -> HTTPConnection | None:
        waiter: Waiter = self._loop.create_future()
        before = self._want(key)
        queue = self._waiters.get(key)
        if queue is None:
            queue = self._waiters[key] = OrderedDict()
        self._arrivals += 1
        queue[waiter] = self._arrivals
        self._n_waiters += 1
        self._account(key, before)
        self._dispatch()
        timer = None
        if not waiter.done():
            end = wait_end(pool_timeout, deadline, self._loop.time)
            if end is not None:
                when, is_total = end
                timer = self._loop.call_at(
                    when, self._time_out, key, waiter, is_total, pool_timeout
                )
        try:
            return await waiter
        except BaseException:
            self._forget_waiter(key, waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # We were handed something, then cancelled before we could use it.
                self._give_back(key, waiter.result())
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _time_out(
        self,
        key: Hashable,
        waiter: Waiter,
        is_total: bool,
        pool_timeout: float | None,
    ) -> None:
        if waiter.done():
            return
        self._forget_waiter(key, waiter)
        if is_total:
            waiter.set_exception(
                TotalTimeout("the request's total deadline passed waiting for a connection")
            )
        else:
            waiter.set_exception(
                PoolTimeout(f"no connection became free within {pool_timeout} seconds")
            )

    def _give_back(self, key: Hashable, granted: HTTPConnection | None) -> None:
        if granted is None:
            self._unreserve(key)
        else:
            self._release(granted, checked=False)

    # -- waiter queues and slot accounting ----------------------------------------

    def _want(self, key: Hashable) -> int:
        """Free slots ``key``'s waiters could use now (0 if none wait or it is at its cap)."""
        queue = self._waiters.get(key)
        if not queue:
            return 0
        room = self._max_host - self._per_key.get(key, 0)
        return min(len(queue), room) if room > 0 else 0

    def _account(self, key: Hashable, before: int) -> None:
        """Update the wanting keys after ``key``'s waiters or slots changed from ``before``."""
        after = self._want(key)
        self._wanted += after - before
        if after:
            if key not in self._wanting:
                self._wanting[key] = None
        elif before:
            del self._wanting[key]

    def _forget_waiter(self, key: Hashable, waiter: Waiter) -> None:
        queue = self._waiters.get(key)
        if queue is None or waiter not in queue:
            return
        before = self._want(key)
        del queue[waiter]
        self._n_waiters -= 1
        if not queue:
            del self._waiters[key]
        self._account(key, before)

    def _next_waiter(self, key: Hashable) -> Waiter | None:
        """Remove and return ``key``'s oldest waiter that still waits, or None."""
        queue = self._waiters.get(key)
        if queue is None:
            return None
        before = self._want(key)
        found = None
        while queue:
            waiter, _ = queue.popitem(last=False)
            self._n_waiters -= 1
            # A waiter cancelled in this loop turn is done but still queued:
            # its task removes nothing when it runs, so it is dropped here.
            if not waiter.done():
                found = waiter
                break
        if not queue:
            del self._waiters[key]
        self._account(key, before)
        return found

    def _reserve(self, key: Hashable) -> None:
        before = self._want(key)
        self._total += 1
        self._per_key[key] = self._per_key.get(key, 0) + 1
        if before:
            self._account(key, before)

    def _unreserve(self, key: Hashable) -> None:
        before = self._want(key)
        self._total -= 1
        left = self._per_key[key] - 1
        if left:
            self._per_key[key] = left
        else:
            del self._per_key[key]
        if key in self._waiters:
            self._account(key, before)
        self._dispatch()

    def _dispatch(self) -> None:
        """Give free slots to wanting keys round-robin, then make room if slots are wanted."""
        wanting = self._wanting
        while wanting and self._total < self._max_total:
            key = next(iter(wanting))
            waiter = self._next_waiter(key)
            if waiter is not None:
                self._reserve(key)
                waiter.set_result(None)
            if key in wanting:
                wanting.move_to_end(key)
        # Here either no key wants a slot or every slot is taken: close the
        # least recently used idle connections for the slots still wanted.
        short = self._wanted - len(self._closing)
        while short > 0 and self._idle:
            conn, _ = self._idle.popitem(last=False)
            self._drop_from_key(conn)
            self._closing.add(conn)
            conn.abort()
            short -= 1

    # -- release ------------------------------------------------------------------

    def _release(self, conn: HTTPConnection, checked: bool = True) -> None:
        """A connection finished an exchange cleanly: hand it on or keep it idle.

        As the connection's ``on_release`` callback it comes ``checked``: the
        connection calls it only after a complete exchange on a connection it
        may reuse. Whatever changes while it is idle, :meth:`_pop_idle` checks.
        """
        if self._closed or not (checked or conn.is_reusable()):
            conn.abort()
            return
        key = conn.key
        queue = self._waiters.get(key)
        if queue:
            wanting = self._wanting
            if wanting and next(iter(wanting)) != key:
                # Another key is next in line for a slot. Unless the slots
                # coming back already cover what the other keys want, this
                # connection is closed and its slot goes to that key.
                if self._wanted - self._want(key) > len(self._closing):
                    self._closing.add(conn)
                    conn.abort()
                    return
            elif wanting:
                wanting.move_to_end(key)  # this key had its turn
            waiter = self._next_waiter(key)
            if waiter is not None:
                waiter.set_result(conn)
                return
        conn.idle_since = self._loop.time()
        self._idle[conn] = None
        idle = self._idle_by_key.get(key)
        if idle is None:
            idle = self._idle_by_key[key] = {}
        idle[conn] = None
        if self._wanted:
            self._dispatch()
        if self._expiry is not None and self._expiry_timer is None:
            self._expiry_timer = self._loop.call_at(
                conn.idle_since + self._expiry, self._expire_idle
            )

    def _drop_from_key(self, conn: HTTPConnection) -> None:
        """Remove an idle connection from its key's table (it is already out of the LRU)."""
        key = conn.key
        idle = self._idle_by_key[key]
        del idle[conn]
        if not idle:
            del self._idle_by_key[key]

    def _lost(self, conn: HTTPConnection) -> None:
        """A connection's transport is gone: free its slot."""
        if conn not in self._all:
            return
        self._all.discard(conn)
        self._closing.discard(conn)
        self._gone_read_pauses += conn.read_pauses
        self._gone_peak_buffered = max(self._gone_peak_buffered, conn.peak_buffered)
        if conn in self._idle:
            del self._idle[conn]
            self._drop_from_key(conn)
        self._unreserve(conn.key)

    def _expire_idle(self) -> None:
        self._expiry_timer = None
        expiry = self._expiry
        if expiry is None or self._closed:
            return
        now = self._loop.time()
        idle = self._idle
        # Oldest first: stop at the first connection that has not expired.
        while idle:
            conn = next(iter(idle))
            if now - conn.idle_since < expiry:
                self._expiry_timer = self._loop.call_at(
                    conn.idle_since + expiry, self._expire_idle
                )
                return
            del idle[conn]
            self._drop_from_key(conn)
            self._closing.add(conn)
            conn.close()

    # -- shutdown -----------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection and fail every waiter; wait until transports are gone."""
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        for queue in self._waiters.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_exception(ConnectionClosed("the client was closed"))
        self._waiters.clear()
        self._wanting.clear()
        self._wanted = 0
        self._n_waiters = 0
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self._idle_by_key.clear()
        conns = list(self._all)
        for conn in conns:
            # A request still using it is told why, instead of getting an EOF
            # that it would blame on the server.
            conn.shut_down(ConnectionClosed("the client was closed during the request"))
        # Let connection_lost run for what we just closed.
        for _ in range(3):
            if not self._all:
                break
            await asyncio.sleep(0)
