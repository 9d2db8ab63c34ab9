"""Tracing the HTTP client: typed events with monotonic timestamps, and DEBUG log lines.

``HTTPClient(trace=callback)`` calls ``callback(event)`` for each step of a
request's life; the same steps are logged at DEBUG on the ``asyncnet``
logger (asyncnet never configures logging: a handler and level are the
application's choice). Every event carries ``time``, a
:func:`time.monotonic` reading, so differences between events of one
connection give per-phase latencies.

The order for one request on a new connection::

    DNSStart -> DNSEnd -> ConnectStart -> ConnectEnd [-> TLSStart -> TLSEnd]
    [-> ProxyTunnelEstablished [-> TLSStart -> TLSEnd]] -> ConnectionCreated
    -> RequestHeadSent [-> RequestBodySent] -> ResponseHeadReceived
    -> ResponseBodyComplete -> ConnectionReleased | ConnectionClosed

On a kept-alive connection ``ConnectionReused`` replaces everything up to
``ConnectionCreated``. ``DNSStart``/``DNSEnd`` are skipped for IP
addresses and names in the resolver's cache. ``ConnectionClosed`` comes when
the transport is gone, with the reason.

Zero cost when nobody listens: without a callback and with DEBUG off for the
``asyncnet`` logger, connections are plain
:class:`~asyncnet._http._connection.HTTPConnection` objects and the request
path checks one attribute. With either on, connections are a subclass that
reports its steps (:class:`TracedConnection`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final

from .._text import escape
from ._connection import HTTPConnection
from ._exchange import RequestState, ResponseState
from ._parser import ParserLimits, ResponseHead
from ._proxy import Proxy
from ._request import RequestBody
from ._url import URL

#: The names :mod:`asyncnet.tracing` makes public.
PUBLIC_NAMES: Final = (
    "ConnectEnd",
    "ConnectStart",
    "ConnectionClosedEvent",
    "ConnectionCreated",
    "ConnectionReleased",
    "ConnectionReused",
    "DNSEnd",
    "DNSStart",
    "ProxyTunnelEstablished",
    "RequestBodySent",
    "RequestHeadSent",
    "ResponseBodyComplete",
    "ResponseHeadReceived",
    "TLSEnd",
    "TLSStart",
    "TraceCallback",
    "TraceEvent",
)

__all__ = [
    "PUBLIC_NAMES",
    *PUBLIC_NAMES,
    "TracedConnection",
    "Tracer",
    "connection_factory",
    "debug_tracer",
    "logger",
    "origin_name",
]

#: The library's logger; DEBUG lines describe each traced step.
logger = logging.getLogger("asyncnet")

_connection_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Base class of every trace event: ``time`` is a :func:`time.monotonic` reading."""

    name: ClassVar[str] = "event"
    time: float

    def describe(self) -> str:
        """One line for the log: the event's name and fields, escaped."""
        parts = [
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "time"
        ]
        return escape(f"{self.name} " + " ".join(parts))


@dataclass(frozen=True, slots=True)
class DNSStart(TraceEvent):
    """A host name lookup starts."""

    name: ClassVar[str] = "dns_start"
    host: str


@dataclass(frozen=True, slots=True)
class DNSEnd(TraceEvent):
    """A lookup answered: the addresses found, in the resolver's order."""

    name: ClassVar[str] = "dns_end"
    host: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConnectStart(TraceEvent):
    """A TCP (or Unix socket) connect starts; ``host`` is the socket path for Unix sockets."""

    name: ClassVar[str] = "connect_start"
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ConnectEnd(TraceEvent):
    """A socket connected: ``address`` is the peer address chosen (``(ip, port)`` or a path)."""

    name: ClassVar[str] = "connect_end"
    address: Any


@dataclass(frozen=True, slots=True)
class TLSStart(TraceEvent):
    """A TLS handshake starts (to the origin, or to an ``https://`` proxy)."""

    name: ClassVar[str] = "tls_start"
    server_hostname: str


@dataclass(frozen=True, slots=True)
class TLSEnd(TraceEvent):
    """A TLS handshake finished: the protocol version and cipher agreed."""

    name: ClassVar[str] = "tls_end"
    server_hostname: str
    version: str | None
    cipher: str | None


@dataclass(frozen=True, slots=True)
class ProxyTunnelEstablished(TraceEvent):
    """A proxy (CONNECT or SOCKS5) opened a tunnel to ``target`` (``host:port``)."""

    name: ClassVar[str] = "proxy_tunnel"
    proxy: str
    target: str


@dataclass(frozen=True, slots=True)
class ConnectionCreated(TraceEvent):
    """A new connection is ready for its first request."""

    name: ClassVar[str] = "connection_created"
    connection: int
    origin: str


@dataclass(frozen=True, slots=True)
class ConnectionReused(TraceEvent):
    """A kept-alive connection carries another request."""

    name: ClassVar[str] = "connection_reused"
    connection: int
    origin: str


@dataclass(frozen=True, slots=True)
class RequestHeadSent(TraceEvent):
    """The request head (and a small body with it) was handed to the transport."""

    name: ClassVar[str] = "request_head_sent"
    connection: int
    method: str


@dataclass(frozen=True, slots=True)
class RequestBodySent(TraceEvent):
    """The whole request body was handed to the transport."""

    name: ClassVar[str] = "request_body_sent"
    connection: int


@dataclass(frozen=True, slots=True)
class ResponseHeadReceived(TraceEvent):
    """The final response head arrived."""

    name: ClassVar[str] = "response_head_received"
    connection: int
    status: int


@dataclass(frozen=True, slots=True)
class ResponseBodyComplete(TraceEvent):
    """The caller has read the response body to its end."""

    name: ClassVar[str] = "response_body_complete"
    connection: int


@dataclass(frozen=True, slots=True)
class ConnectionReleased(TraceEvent):
    """The exchange ended cleanly and the connection went back to the pool."""

    name: ClassVar[str] = "connection_released"
    connection: int


@dataclass(frozen=True, slots=True)
class ConnectionClosedEvent(TraceEvent):
    """The connection's transport is gone; ``reason`` says why."""

    name: ClassVar[str] = "connection_closed"
    connection: int
    reason: str


TraceCallback = Callable[[TraceEvent], object]


class Tracer:
    """Delivers events to the trace callback and the ``asyncnet`` logger.

    A callback that raises does not break the connection it was called from
    (it may run inside a protocol callback): the error goes to the event
    loop's exception handler, where it is seen, and the request carries on.
    """

    __slots__ = ("_callback",)

    def __init__(self, callback: TraceCallback | None) -> None:
        self._callback = callback

    @staticmethod
    def now() -> float:
        """The timestamp events carry."""
        return time.monotonic()

    def emit(self, event: TraceEvent) -> None:
        """Hand ``event`` to the callback and, at DEBUG, to the log."""
        callback = self._callback
        if callback is not None:
            try:
                callback(event)
            except Exception as exc:
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "trace callback failed", "exception": exc}
                )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", event.describe())


# Emits DEBUG log lines for clients without a trace callback.
_LOG_TRACER: Final = Tracer(None)


def debug_tracer() -> Tracer | None:
    """The tracer that only logs, when the ``asyncnet`` logger wants DEBUG lines, else None.

    Asked once per new connection, so turning DEBUG on affects connections
    opened from then on.
    """
    return _LOG_TRACER if logger.isEnabledFor(logging.DEBUG) else None


def origin_name(url: URL, proxy: Proxy | None) -> str:
    """How trace events name where a connection goes."""
    origin = f"{url.scheme}://{url.host_header}"
    return origin if proxy is None else f"{origin} via {proxy}"


def connection_factory(
    tracer: Tracer | None, parser_limits: ParserLimits | None, body_buffer: int
) -> Callable[[], HTTPConnection]:
    """What builds a client's connections: plain ones, or traced ones when someone listens."""
    if tracer is None:

        def plain() -> HTTPConnection:
            return HTTPConnection(parser_limits=parser_limits, body_buffer=body_buffer)

        return plain

    def traced() -> HTTPConnection:
        return TracedConnection(tracer, parser_limits=parser_limits, body_buffer=body_buffer)

    return traced


class TracedConnection(HTTPConnection):
    """An :class:`HTTPConnection` that reports each step of its exchanges to a :class:`Tracer`.

    Used only while someone listens, so plain connections pay nothing. The
    reason a connection closes is recorded where it is decided (a release
    that cannot keep it, a pool dropping it, the peer) and reported when the
    transport is gone.
    """

    def __init__(
        self,
        tracer: Tracer,
        *,
        parser_limits: ParserLimits | None = None,
        body_buffer: int,
    ) -> None:
        super().__init__(parser_limits=parser_limits, body_buffer=body_buffer)
        self.tracer = tracer
        #: A number naming this connection in events.
        self.connection_id = next(_connection_ids)
        self._close_reason: str | None = None
        self._body_reported = False
        self._traced_method = ""

    def _emit_body_complete(self) -> None:
        if (
            not self._body_reported
            and self._response is ResponseState.DONE
            and self._error is None
        ):
            self._body_reported = True
            self.tracer.emit(ResponseBodyComplete(Tracer.now(), self.connection_id))

    def begin(self, method: str, *args: Any, **kwargs: Any) -> None:
        # The same parameters as HTTPConnection.begin, passed on untouched.
        super().begin(method, *args, **kwargs)
        self._body_reported = False
        self._traced_method = method

    def write_head(
        self, head: bytes, body: bytes | None = None, *, body_follows: bool = False
    ) -> None:
        super().write_head(head, body, body_follows=body_follows)
        tracer = self.tracer
        tracer.emit(RequestHeadSent(Tracer.now(), self.connection_id, self._traced_method))
        if body:
            tracer.emit(RequestBodySent(Tracer.now(), self.connection_id))

    def write_body(self, body: bytes) -> None:
        super().write_body(body)
        self.tracer.emit(RequestBodySent(Tracer.now(), self.connection_id))

    async def send_body(self, body: RequestBody, *, chunked: bool) -> None:
        await super().send_body(body, chunked=chunked)
        self.tracer.emit(RequestBodySent(Tracer.now(), self.connection_id))

    async def receive_head(self) -> ResponseHead:
        head = await super().receive_head()
        self.tracer.emit(ResponseHeadReceived(Tracer.now(), self.connection_id, head.status))
        return head

    async def read_chunk(self) -> bytes:
        data = await super().read_chunk()
        if not data:
            self._emit_body_complete()
        return data

    async def read_all(self) -> bytes:
        data = await super().read_all()
        self._emit_body_complete()
        return data

    def read_all_now(self) -> bytes | None:
        data = super().read_all_now()
        if data is not None:
            self._emit_body_complete()
        return data

    def release(self) -> None:
        if self._request is RequestState.IDLE:
            return
        if self._error is not None:
            reason = f"the exchange failed: {type(self._error).__name__}: {self._error}"
        elif self._response is not ResponseState.DONE or self._chunks:
            reason = "the response was not read to its end"
        elif self._request is not RequestState.SENT:
            reason = "the request was not sent whole"
        elif self._close_after or not self._parser.keep_alive:
            reason = "the exchange ended the connection (Connection: close or a body read to EOF)"
        else:
            reason = "not taken back by the pool"
        before = self._close_reason
        if before is None:
            # Recorded first: the release below aborts a connection it cannot keep.
            self._close_reason = reason
        super().release()
        transport = self.transport
        if not self._closed and transport is not None and not transport.is_closing():
            self._close_reason = before
            self.tracer.emit(ConnectionReleased(Tracer.now(), self.connection_id))

    def abort(self) -> None:
        if self._close_reason is None:
            self._close_reason = (
                "aborted during an exchange" if self._request is not RequestState.IDLE
                else "dropped by the client (stale, evicted to make room, or client closed)"
            )
        super().abort()

    def close(self) -> None:
        if self._close_reason is None:
            self._close_reason = "closed by the client (idle expiry or client closed)"
        super().close()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self._close_reason
        if reason is None:
            reason = "closed by the server" if exc is None else f"lost: {exc!r}"
        super().connection_lost(exc)
        self.tracer.emit(ConnectionClosedEvent(Tracer.now(), self.connection_id, reason))
