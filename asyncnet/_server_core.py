"""What every asyncnet server shares: listening, admission, idle timer, statistics, shutdown.

Two halves, used by the echo server (``_echo.py``, which keeps its own tuned
receive path) and by the framed server (``_server.py``, one handler task per
connection), so that each rule below is written once:

* :class:`ServerCore`, the server: the listening sockets, the set of open
  connections, the handler tasks, the counters and the lifecycle;
* :class:`ServedProtocol`, a mixin for the server's connection protocol:
  admission when the connection is made, the idle timer, and the report to
  the server when it is lost.

The server's lifecycle::

    serving --close()--> closed: no new connections; open ones go on
    serving/closed --shutdown(grace)--> every connection hears
        ``_shutting_down()`` (the echo stops reading and flushes; a handler
        goes on); handler tasks get until ``grace`` to return, then are
        cancelled; connections still open at ``grace`` are aborted; done

Admission: past ``max_connections``, or once closed, a new connection is
closed at once, before it is served, and counted as refused.

Idle timer: a connection on which no byte moved either way for
``idle_timeout`` seconds is aborted and counted.

Statistics: the server's own counts (connections, refusals, idle timeouts,
whatever the server adds with :meth:`ServerCore._count`) plus every
connection's counters (``_counters()``), summed over the connections that
ended and those still open (or, for the names in ``_peak_counters``, their
largest value), give the server's frozen statistics dataclass.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl as _ssl
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

from ._errors import ConnectError, UsageError
from ._lifetime import Opening
from ._text import describe_error

__all__ = ["ServedProtocol", "ServerCore", "check_listen_arguments"]

S = TypeVar("S")


def check_listen_arguments(host: str | None, port: int, path: str | None, reuse_port: bool) -> None:
    """Refuse address arguments that contradict each other (before anything is bound)."""
    if path is not None and (host != "127.0.0.1" or port != 0):
        raise UsageError("give either host/port or path, not both")
    if reuse_port and path is not None:
        raise UsageError("reuse_port applies to TCP servers only")


class ServedProtocol:
    """Mixin for a server's connection protocol: admission, idle timer, report at the end.

    The protocol calls :meth:`_start_serving` from ``connection_made`` and
    :meth:`_stop_serving` from ``connection_lost`` (after it forgot its
    transport), and implements :meth:`_progress`, :meth:`_counters` and
    :meth:`_abort`. Without a server (a protocol handed straight to
    ``loop.create_server``) only the idle timer runs.
    """

    # Class-level defaults: the mixin has no __init__, so it fits any
    # protocol's constructor and costs a connection nothing until it is used.
    _server: ServerCore[Any] | None = None
    _admitted = False
    _idle_timeout: float | None = None
    _idle_handle: asyncio.TimerHandle | None = None
    _idle_moved = 0
    _idle_buffered = 0
    _idle_since = 0.0
    _transport: asyncio.Transport | None

    # -- for the protocol to implement -------------------------------------------------

    def _progress(self) -> int:
        """A count that grows whenever bytes move either way (read, or handed to the transport)."""
        raise NotImplementedError

    def _counters(self) -> dict[str, int]:
        """This connection's counters, by the name of the server statistics field they add to."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Close at once, discarding what is unsent (idle, or shutdown's grace is over)."""
        raise NotImplementedError

    def _shutting_down(self) -> None:
        """The server is shutting down; the default lets the connection go on."""

    # -- called by the protocol --------------------------------------------------------

    def _start_serving(self, transport: asyncio.Transport, idle_timeout: float | None) -> bool:
        """Ask the server to admit this connection; close it and return False if refused."""
        server = self._server
        if server is not None and not server._admit(self):
            transport.close()
            return False
        self._admitted = server is not None
        if idle_timeout is not None:
            loop = asyncio.get_running_loop()
            self._idle_timeout = idle_timeout
            self._idle_since = loop.time()
            self._idle_moved = self._progress()
            self._idle_handle = loop.call_later(idle_timeout / 2, self._check_idle)
        return True

    def _stop_serving(self) -> None:
        """Stop the idle timer and hand this connection's counters to the server."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        server = self._server
        if self._admitted and server is not None:
            self._admitted = False
            server._forget(self)

    def _check_idle(self) -> None:
        # Progress is sampled here rather than timestamped per read, which keeps
        # clock calls off the data path: bytes moved, or a smaller write buffer
        # (the peer read some), both count. Checking every half timeout closes
        # an idle peer between 1x and 1.5x idle_timeout after its last
        # progress, and never early.
        transport = self._transport
        timeout = self._idle_timeout
        if transport is None or timeout is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        moved = self._progress()
        buffered = transport.get_write_buffer_size()
        if moved != self._idle_moved or buffered < self._idle_buffered:
            self._idle_since = now
        self._idle_moved = moved
        self._idle_buffered = buffered
        if now - self._idle_since >= timeout:
            self._idle_handle = None
            if self._server is not None:
                self._server._count("idle_timeouts")
            self._abort()
            return
        self._idle_handle = loop.call_later(timeout / 2, self._check_idle)


class ServerCore(Generic[S]):
    """A running server's shared part: sockets, admission, counters, lifecycle.

    ``S`` is the server's statistics dataclass; every field is filled by name
    from the server's counts and the connections' counters (0 when nothing
    was counted under that name).
    """

    #: Connection counters combined with ``max`` rather than summed.
    _peak_counters: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        statistics_type: type[S],
        *,
        max_connections: int | None,
        idle_timeout: float | None,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise UsageError(f"max_connections must be at least 1 or None, got {max_connections}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise UsageError(f"idle_timeout must be positive or None, got {idle_timeout!r}")
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._statistics_type = statistics_type
        self._server: asyncio.Server | None = None
        self._connections: set[ServedProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._stopped = asyncio.Event()
        self._counts: dict[str, int] = {}
        # Counters of connections that have ended; live ones are added on demand.
        self._ended: dict[str, int] = {}

    # -- used by the connections and the server built on this -----------------------------

    def _opening(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        host: str | None,
        port: int,
        path: str | None,
        ssl: _ssl.SSLContext | None,
        backlog: int,
        reuse_port: bool,
    ) -> Opening[Self]:
        """What ``start_*`` returns: the server listens once that is awaited or entered."""

        async def listen() -> Self:
            loop = asyncio.get_running_loop()
            try:
                if path is not None:
                    self._server = await loop.create_unix_server(
                        factory, path, ssl=ssl, backlog=backlog
                    )
                else:
                    self._server = await loop.create_server(
                        factory,
                        host,
                        port,
                        ssl=ssl,
                        backlog=backlog,
                        reuse_port=reuse_port or None,
                    )
            except OSError as exc:
                where = path if path is not None else f"{host}:{port}"
                raise ConnectError(f"cannot listen on {where}: {describe_error(exc)}") from exc
            return self

        return Opening(listen)

    def _count(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1

    def _admit(self, protocol: ServedProtocol) -> bool:
        if self._stopped.is_set() or (
            self.max_connections is not None and len(self._connections) >= self.max_connections
        ):
            self._count("refused_connections")
            return False
        self._connections.add(protocol)
        self._count("total_connections")
        self._no_connections.clear()
        return True

    def _forget(self, protocol: ServedProtocol) -> None:
        self._connections.discard(protocol)
        self._add_counters(self._ended, protocol._counters())
        if not self._connections:
            self._no_connections.set()

    def _add_counters(self, totals: dict[str, int], counters: dict[str, int]) -> None:
        peaks = self._peak_counters
        for name, value in counters.items():
            if name in peaks:
                totals[name] = max(totals.get(name, 0), value)
            else:
                totals[name] = totals.get(name, 0) + value

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the server waits for and cancels at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- public API ------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets (empty once closed)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    def is_serving(self) -> bool:
        """Whether the server is accepting new connections."""
        return self._server is not None and self._server.is_serving()

    def _snapshot(self) -> S:
        """The statistics dataclass, filled (each server's ``statistics()`` returns it)."""
        names = [f.name for f in dataclasses.fields(cast(Any, self._statistics_type))]
        values = dict.fromkeys(names, 0)
        values.update(self._counts)
        values["current_connections"] = len(self._connections)
        self._add_counters(values, self._ended)
        for conn in self._connections:
            self._add_counters(values, conn._counters())
        return cast(Callable[..., S], self._statistics_type)(**values)

    def close(self) -> None:
        """Stop accepting new connections; open ones keep being served. Idempotent."""
        self._stopped.set()
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection (and its handler) has ended."""
        await self._stopped.wait()
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._no_connections.wait()
        if self._server is not None:
            await self._server.wait_closed()

    async def shutdown(self, grace: float | None = 5.0) -> None:
        """Stop accepting, let open connections finish for ``grace`` seconds, then abort them.

        ``grace=None`` waits without limit. What "finish" means is the
        server's: see its class.
        """
        self.close()
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + max(grace, 0)

        def remaining() -> float | None:
            return None if deadline is None else max(deadline - loop.time(), 0)

        for conn in list(self._connections):
            conn._shutting_down()
        if self._tasks and remaining() != 0:
            await asyncio.wait(set(self._tasks), timeout=remaining())
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._connections and remaining() != 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining()):
                    await self._no_connections.wait()
        for conn in list(self._connections):
            conn._abort()
        await self.wait_closed()

    async def serve_forever(self) -> None:
        """Wait until the server is closed; cancelling this closes it (like asyncio's)."""
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            self.close()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(0)

    def _describe(self) -> str:
        return ""

    def __repr__(self) -> str:
        names = [s.getsockname() for s in self.sockets]
        return (
            f"<{type(self).__name__} sockets={names!r}{self._describe()}"
            f" connections={len(self._connections)}>"
        )
