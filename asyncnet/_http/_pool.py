"""The keep-alive connection pool: slots, idle reuse, expiry, and fair hand-off.

A *slot* is held by every connection from the moment we start opening it
until its transport is gone, so the limits bound what the server sees, not
just what we think is open. Waiting for a slot is cancellation-safe: a free
slot or idle connection is handed to a waiter by completing its future, and a
waiter that was cancelled or timed out after being handed something gives it
straight back (the same hand-off rule as asyncio.Semaphore since 3.11.x), so
no slot is ever lost.

Invariant: after every change (a connection released, lost, or a waiter
gone) :meth:`ConnectionPool._wake_waiters` runs, so a waiter is only left
waiting while nothing it could use is free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Final

from .._deadline import wait_end
from .._errors import ConnectionClosed, PoolTimeout, TotalTimeout
from ._connection import HTTPConnection
from ._models import Limits

__all__ = ["ConnectionPool"]

_INF: Final = float("inf")

Connector = Callable[[], Awaitable[HTTPConnection]]


class ConnectionPool:
    """Keep-alive connections per key, under total and per-key limits."""

    def __init__(self, limits: Limits) -> None:
        self._loop = asyncio.get_running_loop()
        self._max_total = limits.max_connections if limits.max_connections is not None else _INF
        self._max_host = limits.max_per_host if limits.max_per_host is not None else _INF
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Hashable, list[HTTPConnection]] = {}
        self._n_idle = 0
        self._total = 0
        self._per_key: dict[Hashable, int] = {}
        # Futures in arrival order; each resolves to an idle connection or to
        # None meaning "a slot is reserved for you: open a connection".
        self._waiters: dict[asyncio.Future[HTTPConnection | None], Hashable] = {}
        self._all: set[HTTPConnection] = set()
        # Idle connections closed to free a slot for another key, not yet gone.
        self._evicting: set[HTTPConnection] = set()
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
        return self._n_idle

    @property
    def waiters(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

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
        if self._has_room(key) and not self._waiters:
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
        idle = self._idle.get(key)
        if not idle:
            return None
        now = self._loop.time()
        expiry = self._expiry
        while idle:
            conn = idle.pop()
            self._n_idle -= 1
            if conn.is_reusable() and (expiry is None or now - conn.idle_since < expiry):
                return conn
            # Stale: dropping it frees its slot once the transport is gone.
            conn.abort()
        return None

    def _has_room(self, key: Hashable) -> bool:
        return self._total < self._max_total and self._per_key.get(key, 0) < self._max_host

    def _reserve(self, key: Hashable) -> None:
        self._total += 1
        self._per_key[key] = self._per_key.get(key, 0) + 1

    def _unreserve(self, key: Hashable) -> None:
        self._total -= 1
        left = self._per_key[key] - 1
        if left:
            self._per_key[key] = left
        else:
            del self._per_key[key]
        self._wake_waiters()

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
        waiter: asyncio.Future[HTTPConnection | None] = self._loop.create_future()
        self._waiters[waiter] = key
        self._wake_waiters()
        timer = None
        if not waiter.done():
            end = wait_end(pool_timeout, deadline, self._loop.time)
            if end is not None:
                when, is_total = end
                timer = self._loop.call_at(when, self._time_out, waiter, is_total, pool_timeout)
        try:
            return await waiter
        except BaseException:
            self._waiters.pop(waiter, None)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # We were handed something, then cancelled before we could use it.
                self._give_back(key, waiter.result())
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _time_out(
        self,
        waiter: asyncio.Future[HTTPConnection | None],
        is_total: bool,
        pool_timeout: float | None,
    ) -> None:
        if waiter.done():
            return
        self._waiters.pop(waiter, None)
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

    # -- release ------------------------------------------------------------------

    def _release(self, conn: HTTPConnection, checked: bool = True) -> None:
        """A connection finished an exchange cleanly: keep it idle or hand it on.

        As the connection's ``on_release`` callback it comes ``checked``: the
        connection calls it only after a complete exchange on a connection it
        may reuse. Whatever changes while it is idle, :meth:`_pop_idle` checks.
        """
        if self._closed or not (checked or conn.is_reusable()):
            conn.abort()
            return
        key = conn.key
        conn.idle_since = self._loop.time()
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = []
        idle.append(conn)
        self._n_idle += 1
        if self._waiters:
            self._wake_waiters()
        if self._expiry is not None and self._expiry_timer is None and self._n_idle:
            self._expiry_timer = self._loop.call_later(self._expiry, self._expire_idle)

    def _lost(self, conn: HTTPConnection) -> None:
        """A connection's transport is gone: free its slot."""
        if conn not in self._all:
            return
        self._all.discard(conn)
        self._evicting.discard(conn)
        self._gone_read_pauses += conn.read_pauses
        self._gone_peak_buffered = max(self._gone_peak_buffered, conn.peak_buffered)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
            self._n_idle -= 1
        self._unreserve(conn.key)

    def _expire_idle(self) -> None:
        self._expiry_timer = None
        expiry = self._expiry
        if expiry is None:
            return
        now = self._loop.time()
        soonest = _INF
        for idle in self._idle.values():
            for conn in list(idle):
                if now - conn.idle_since >= expiry:
                    idle.remove(conn)
                    self._n_idle -= 1
                    conn.close()
                else:
                    soonest = min(soonest, conn.idle_since + expiry)
        if soonest < _INF and not self._closed:
            self._expiry_timer = self._loop.call_at(soonest, self._expire_idle)

    def _wake_waiters(self) -> None:
        """Hand idle connections and free slots to waiters, oldest first."""
        if not self._waiters:
            return
        blocked_on_total = 0
        for waiter, key in list(self._waiters.items()):
            if waiter.done():
                self._waiters.pop(waiter, None)
                continue
            conn = self._pop_idle(key)
            if conn is not None:
                self._waiters.pop(waiter)
                waiter.set_result(conn)
            elif self._has_room(key):
                self._waiters.pop(waiter)
                self._reserve(key)
                waiter.set_result(None)
            elif self._per_key.get(key, 0) < self._max_host:
                blocked_on_total += 1
        needed = blocked_on_total - len(self._evicting)
        if needed > 0 and self._n_idle:
            # Idle connections to other hosts hold slots that waiters need:
            # close the oldest; their slots come back when they are gone.
            candidates = sorted(
                (conn for idle in self._idle.values() for conn in idle),
                key=lambda c: c.idle_since,
            )
            for conn in candidates[:needed]:
                self._idle[conn.key].remove(conn)
                self._n_idle -= 1
                self._evicting.add(conn)
                conn.abort()

    # -- shutdown -----------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection and fail every waiter; wait until transports are gone."""
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_exception(ConnectionClosed("the client was closed"))
        self._waiters.clear()
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._n_idle = 0
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
