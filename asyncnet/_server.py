"""Serve and open framed connections: ``start_server(handler, ...)`` and ``open_connection``.

The server runs one task per connection: ``await handler(conn)``. When the
handler returns, the connection closes after flushing what was sent; when it
raises, the error is counted and logged (``logging.getLogger("asyncnet")``)
and the connection is aborted. On ``shutdown(grace)`` handlers get ``grace``
seconds to return, then are cancelled.

Listening, admission (``max_connections``), the idle timer, the statistics and
the lifecycle are the ones every asyncnet server shares (``_server_core.py``,
where their rules are written down); the echo server uses the same.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ._connect import open_stream
from ._connection import Connection, ConnectionProtocol, connection_factory
from ._errors import (
    EndOfStream,
    RemoteProtocolError,
    TransportError,
    UsageError,
)
from ._flow import DEFAULT_HIGH, DEFAULT_RECEIVE_LIMIT, WaterMarks
from ._framed import abort_quietly
from ._framing import Framing, Raw
from ._lifetime import Opening, caller_site
from ._server_core import ServedProtocol, ServerCore, check_listen_arguments

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
    #: Handlers that raised something other than this connection's end (the
    #: peer's malformed data, EOF or reset; an abort): another connection's errors too.
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


class _ServerProtocol(ServedProtocol, ConnectionProtocol[Any]):
    """One accepted connection: admission, idle timer, the handler's task."""

    _server: Server

    def __init__(self, server: Server, **kwargs: Any) -> None:
        super().__init__(server.framing, **kwargs)
        self._server = server
        self._wake_batch = server._wake_batch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self._server
        if self._start_serving(cast(asyncio.Transport, transport), server.idle_timeout):
            server._spawn(server._run(self, Connection(transport, self)))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_serving()

    def _progress(self) -> int:
        return self.bytes_received + self.bytes_sent

    def _counters(self) -> dict[str, int]:
        return {
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "frames_received": self.frames_received,
            "frames_sent": self.frames_sent,
        }

    def _abort(self) -> None:
        abort_quietly(self._transport)


class Server(ServerCore[ServerStatistics]):
    """A running framed server: read its ``statistics()``, ``shutdown()`` it, ``async with`` it.

    Returned by :func:`start_server`, already accepting. On
    ``shutdown(grace)`` handlers get ``grace`` seconds to return and are
    then cancelled; connections not gone by then (a peer not reading the
    last reply) are aborted. Leaving ``async with`` calls ``shutdown(0)``.
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
        super().__init__(
            ServerStatistics, max_connections=max_connections, idle_timeout=idle_timeout
        )
        self.handler = handler
        self.framing = framing
        # Connections whose receivers wait to run on the next pass (see
        # asyncnet._connection._run_receivers): one callback for all of them.
        self._wake_batch: list[ConnectionProtocol[Any]] = []
        self._limits = {
            "high_water": high_water,
            "low_water": low_water,
            "receive_limit": receive_limit,
            "receive_low": receive_low,
        }

    def _make_protocol(self) -> _ServerProtocol:
        return _ServerProtocol(self, **self._limits)

    async def _run(self, protocol: _ServerProtocol, conn: Connection[Any]) -> None:
        try:
            await self.handler(conn)
        except (TransportError, RemoteProtocolError) as exc:
            if not _ended_by(protocol, exc):
                # Another connection's (the handler's own upstream, say).
                self._count("handler_errors")
                logger.exception("handler failed for %r; connection aborted", conn.peername)
            elif isinstance(exc, RemoteProtocolError):
                self._count("protocol_errors")
                logger.info("connection from %r ended by a protocol error: %r", conn.peername, exc)
            # else the peer went away or we aborted (idle, shutdown): nothing to report.
            _abort(protocol)
        except Exception:
            self._count("handler_errors")
            logger.exception("handler failed for %r; connection aborted", conn.peername)
            _abort(protocol)
        except asyncio.CancelledError:
            _abort(protocol)
            raise
        else:
            # Flush what the handler sent, then close.
            conn.close()

    def statistics(self) -> ServerStatistics:
        """Return a frozen snapshot of the server's counters."""
        return self._snapshot()

    def _describe(self) -> str:
        return f" {self.framing!r}"


def _ended_by(protocol: _ServerProtocol, exc: Exception) -> bool:
    """Whether ``exc`` is this connection's end rather than some other connection's error.

    It is when ``receive()`` raised it (the decoder's error, the peer's EOF
    or reset), or, for a transport error, when this connection is closing
    (a send after the peer left, an abort for idleness or shutdown).
    """
    end = protocol._end
    if exc is end or (isinstance(exc, EndOfStream) and isinstance(end, EndOfStream)):
        return True
    if isinstance(exc, RemoteProtocolError):
        return False
    transport = protocol.transport
    return transport is None or transport.is_closing()


def _abort(protocol: _ServerProtocol) -> None:
    """Abort a connection whose handler failed, handing over first the replies it holds.

    Replies are held while the handler runs from a read (see
    ``ConnectionProtocol._run_receiver``); they were sent before the failure,
    so they go out as they would have without the hold.
    """
    protocol._flush_cork()
    abort_quietly(protocol.transport)


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
    check_listen_arguments(host, port, path, reuse_port)
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
    return server._opening(server._make_protocol, host, port, path, ssl, backlog, reuse_port)


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
        transport, protocol = await open_stream(
            factory,
            host,
            port,
            path=path,
            ssl_context=ssl,
            server_hostname=server_hostname,
            connect_timeout=connect_timeout,
        )
        return Connection(transport, protocol, created_at=site)

    # The caller's line, for the ResourceWarning of a connection never closed.
    site = caller_site()
    return Opening(connect)
