"""Serve and open framed connections: ``start_server(handler, ...)`` and ``open_connection``.

The server runs one task per connection: ``await handler(conn)``. When the
handler returns, the connection closes after flushing what was sent; when it
raises, the error is counted and logged (``logging.getLogger("asyncnet")``)
and the connection is aborted. The server's lifecycle::

    serving --close()--> closed (no new connections; open ones go on)
    serving/closed --shutdown(grace)--> handlers get ``grace`` seconds to
        return, then are cancelled; their connections are aborted; done

Admission: past ``max_connections``, or once closed, a new connection is
closed at once, before any handler runs, and counted as refused. An idle
connection (no byte in either direction for ``idle_timeout``) is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._connect import open_connection as _open_tcp_transport
from ._errors import (
    ConnectError,
    ConnectTimeout,
    RemoteProtocolError,
    TransportError,
    UsageError,
)
from ._flow import DEFAULT_HIGH, DEFAULT_RECEIVE_LIMIT, WaterMarks
from ._framed import (
    Connection,
    ConnectionProtocol,
    abort_quietly,
    connection_factory,
)
from ._framing import Framing, Raw
from ._lifetime import Opening, caller_site

__all__ = ["Server", "ServerStatistics", "open_connection", "start_server"]

logger = logging.getLogger("asyncnet")

F = TypeVar("F")

Handler = Callable[[Connection[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ServerStatistics:
    """A snapshot of a :class:`Server`'s counters, taken by ``statistics()``."""

    #: Connections open now (refused ones are never counted here).
    current_connections: int
    #: Connections accepted since start.
    total_connections: int
    #: Connections closed at once: ``max_connections`` were open, or the server was closed.
    refused_connections: int
    #: Handlers that raised something other than a peer's or transport's error.
    handler_errors: int
    #: Handlers ended by the peer's malformed data (``FrameTooLarge``, ``IncompleteFrame``...).
    protocol_errors: int
    #: Connections aborted because no byte moved either way for ``idle_timeout``.
    idle_timeouts: int
    #: Bytes read from peers.
    bytes_received: int
    #: Bytes handed to transports for peers.
    bytes_sent: int
    #: Frames decoded.
    frames_received: int
    #: Frames sent.
    frames_sent: int


class _ServerProtocol(ConnectionProtocol[Any]):
    """One accepted connection: admission, handler task, idle timer."""

    def __init__(self, server: Server, **kwargs: Any) -> None:
        super().__init__(server.framing, **kwargs)
        self._server = server
        self._admitted = False
        self._timer: asyncio.TimerHandle | None = None
        self._sample = (0, 0, 0)
        self._last_progress = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self._server
        if not server._admit(self):
            transport.close()
            return
        self._admitted = True
        if server.idle_timeout is not None:
            loop = asyncio.get_running_loop()
            self._last_progress = loop.time()
            self._timer = loop.call_later(server.idle_timeout / 2, self._check_idle)
        server._start_handler(self, Connection(transport, self))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._admitted:
            self._server._forget(self)

    def _check_idle(self) -> None:
        # Progress is sampled, not timestamped per read, to keep clock calls off
        # the data path (as the echo server does): bytes in, bytes handed to the
        # transport, or a smaller write buffer all count. Checking every half
        # timeout aborts between 1x and 1.5x idle_timeout, never early.
        transport = self._transport
        timeout = self._server.idle_timeout
        if transport is None or timeout is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        buffered = transport.get_write_buffer_size()
        sample = (self.bytes_received, self.bytes_sent, buffered)
        old = self._sample
        if sample[0] != old[0] or sample[1] != old[1] or buffered < old[2]:
            self._last_progress = now
        self._sample = sample
        if now - self._last_progress >= timeout:
            self._timer = None
            self._server._idle_timeouts += 1
            transport.abort()
            return
        self._timer = loop.call_later(timeout / 2, self._check_idle)


class Server:
    """A running framed server: read its ``statistics()``, ``shutdown()`` it, ``async with`` it.

    Returned by :func:`start_server`, already accepting. Leaving ``async with``
    calls ``shutdown(0)``.
    """

    def __init__(
        self,
        handler: Handler,
        framing: Framing[Any],
        *,
        max_connections: int | None,
        idle_timeout: float | None,
        high_water: int,
        low_water: int | None,
        receive_limit: int,
        receive_low: int | None,
    ) -> None:
        WaterMarks(high_water, low_water)
        WaterMarks(receive_limit, receive_low)
        if max_connections is not None and max_connections < 1:
            raise UsageError(f"max_connections must be at least 1 or None, got {max_connections}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise UsageError(f"idle_timeout must be positive or None, got {idle_timeout!r}")
        self.handler = handler
        self.framing = framing
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._limits = {
            "high_water": high_water,
            "low_water": low_water,
            "receive_limit": receive_limit,
            "receive_low": receive_low,
        }
        self._server: asyncio.Server | None = None
        self._connections: set[_ServerProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._stopped = asyncio.Event()
        self._total = 0
        self._refused = 0
        self._handler_errors = 0
        self._protocol_errors = 0
        self._idle_timeouts = 0
        # Counters of connections that have ended; live ones are summed on demand.
        self._done = [0, 0, 0, 0]

    # -- used by the connections ------------------------------------------------------

    def _make_protocol(self) -> _ServerProtocol:
        return _ServerProtocol(self, **self._limits)

    def _admit(self, protocol: _ServerProtocol) -> bool:
        if self._stopped.is_set() or (
            self.max_connections is not None and len(self._connections) >= self.max_connections
        ):
            self._refused += 1
            return False
        self._connections.add(protocol)
        self._total += 1
        self._no_connections.clear()
        return True

    def _forget(self, protocol: _ServerProtocol) -> None:
        self._connections.discard(protocol)
        done = self._done
        done[0] += protocol.bytes_received
        done[1] += protocol.bytes_sent
        done[2] += protocol.frames_received
        done[3] += protocol.frames_sent
        if not self._connections:
            self._no_connections.set()

    def _start_handler(self, protocol: _ServerProtocol, conn: Connection[Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(protocol, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, protocol: _ServerProtocol, conn: Connection[Any]) -> None:
        try:
            await self.handler(conn)
        except TransportError:
            # The peer went away or we aborted (idle, shutdown): nothing to report.
            abort_quietly(protocol.transport)
        except RemoteProtocolError as exc:
            self._protocol_errors += 1
            logger.info("connection from %r ended by a protocol error: %r", conn.peername, exc)
            abort_quietly(protocol.transport)
        except Exception:
            self._handler_errors += 1
            logger.exception("handler failed for %r; connection aborted", conn.peername)
            abort_quietly(protocol.transport)
        except asyncio.CancelledError:
            abort_quietly(protocol.transport)
            raise
        else:
            # Flush what the handler sent, then close.
            conn.close()

    # -- public API --------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets (empty once closed)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    def is_serving(self) -> bool:
        """Whether the server is accepting new connections."""
        return self._server is not None and self._server.is_serving()

    def statistics(self) -> ServerStatistics:
        """Return a frozen snapshot of the server's counters."""
        received, sent, frames_in, frames_out = self._done
        for conn in self._connections:
            received += conn.bytes_received
            sent += conn.bytes_sent
            frames_in += conn.frames_received
            frames_out += conn.frames_sent
        return ServerStatistics(
            current_connections=len(self._connections),
            total_connections=self._total,
            refused_connections=self._refused,
            handler_errors=self._handler_errors,
            protocol_errors=self._protocol_errors,
            idle_timeouts=self._idle_timeouts,
            bytes_received=received,
            bytes_sent=sent,
            frames_received=frames_in,
            frames_sent=frames_out,
        )

    def close(self) -> None:
        """Stop accepting new connections; open ones keep being served. Idempotent."""
        self._stopped.set()
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        """Wait until the server is closed, every handler has ended and every connection is gone."""
        await self._stopped.wait()
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._no_connections.wait()
        if self._server is not None:
            await self._server.wait_closed()

    async def shutdown(self, grace: float | None = 5.0) -> None:
        """Stop accepting, give handlers ``grace`` seconds (``None``: no limit), then abort.

        Handlers still running after ``grace`` are cancelled; connections not
        gone by then (a peer not reading the last reply) are aborted.
        """
        self.close()
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + max(grace, 0)

        def remaining() -> float | None:
            return None if deadline is None else max(deadline - loop.time(), 0)

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
            abort_quietly(conn.transport)
        await self.wait_closed()

    async def serve_forever(self) -> None:
        """Wait until the server is closed; cancelling this closes it (like asyncio's)."""
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            self.close()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(0)

    def __repr__(self) -> str:
        names = [s.getsockname() for s in self.sockets]
        return f"<Server sockets={names!r} {self.framing!r} connections={len(self._connections)}>"


def start_server(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    framing: Framing[Any] | None = None,
    path: str | None = None,
    ssl: _ssl.SSLContext | None = None,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    high_water: int = DEFAULT_HIGH,
    low_water: int | None = None,
    receive_limit: int = DEFAULT_RECEIVE_LIMIT,
    receive_low: int | None = None,
    reuse_port: bool = False,
    backlog: int = 100,
) -> Opening[Server]:
    """Serve ``handler(conn)`` for each connection on ``host:port`` (or the Unix socket ``path``).

    ``framing`` (default :class:`~asyncnet.Raw`) cuts the stream into frames;
    ``high_water``/``low_water`` are the write-buffer marks ``send`` waits on;
    ``receive_limit``/``receive_low`` bound the frames queued for a handler
    that falls behind (see :doc:`protocols` for the memory bound). Use as
    ``server = await start_server(...)`` or ``async with start_server(...) as
    server``. Raises :class:`~asyncnet.ConnectError` if the address cannot be bound.
    """
    if path is not None and (host != "127.0.0.1" or port != 0):
        raise UsageError("give either host/port or path, not both")
    if reuse_port and path is not None:
        raise UsageError("reuse_port applies to TCP servers only")
    server = Server(
        handler,
        framing if framing is not None else Raw(),
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        high_water=high_water,
        low_water=low_water,
        receive_limit=receive_limit,
        receive_low=receive_low,
    )

    async def start() -> Server:
        loop = asyncio.get_running_loop()
        try:
            if path is not None:
                server._server = await loop.create_unix_server(
                    server._make_protocol, path, ssl=ssl, backlog=backlog
                )
            else:
                server._server = await loop.create_server(
                    server._make_protocol, host, port, ssl=ssl, backlog=backlog,
                    reuse_port=reuse_port or None,
                )
        except OSError as exc:
            where = path if path is not None else f"{host}:{port}"
            raise ConnectError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        return server

    return Opening(start)


def open_connection(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    framing: Framing[F] | None = None,
    ssl: _ssl.SSLContext | None = None,
    path: str | None = None,
    server_hostname: str | None = None,
    connect_timeout: float | None = 10.0,
    high_water: int = DEFAULT_HIGH,
    low_water: int | None = None,
    receive_limit: int = DEFAULT_RECEIVE_LIMIT,
    receive_low: int | None = None,
) -> Opening[Connection[F]]:
    """Connect to ``host:port`` (or the Unix socket ``path``) and return a :class:`Connection`.

    Use as ``conn = await open_connection(...)`` or ``async with
    open_connection(...) as conn`` (closed on exit). Failures raise
    :class:`~asyncnet.ConnectError` or :class:`~asyncnet.ConnectTimeout`
    with the ``OSError`` as the cause; nothing leaks if cancelled.
    """
    chosen: Framing[F] = framing if framing is not None else Raw()  # type: ignore[assignment]
    factory = connection_factory(
        chosen,
        high_water=high_water,
        low_water=low_water,
        receive_limit=receive_limit,
        receive_low=receive_low,
    )
    if path is not None and ssl is not None and server_hostname is None:
        raise UsageError("TLS over a Unix socket needs server_hostname")

    async def connect() -> Connection[F]:
        loop = asyncio.get_running_loop()
        where = path if path is not None else f"{host}:{port}"
        transport: asyncio.BaseTransport
        protocol: ConnectionProtocol[F]
        try:
            async with asyncio.timeout(connect_timeout):
                if path is not None:
                    transport, protocol = await loop.create_unix_connection(
                        factory, path, ssl=ssl, server_hostname=server_hostname
                    )
                else:
                    transport, protocol = await _open_tcp_transport(
                        factory, host, port, ssl_context=ssl, server_hostname=server_hostname
                    )
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"connecting to {where} took longer than {connect_timeout}s"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        return Connection(transport, protocol, created_at=site)

    # The caller's line, for the ResourceWarning of a connection never closed.
    site = caller_site()
    return Opening(connect)
