"""Connectors: the one way the HTTP client obtains a connection.

The client decides *where* a request goes (the origin, its TLS context, the
proxy chosen for it); a connector turns that into a connected
:class:`~asyncnet._http._connection.HTTPConnection`, ready for its first
request. Everything about sockets lives behind this seam:

* :class:`TCPConnector` (the default): resolution, the address race and TLS
  from :mod:`asyncnet._connect`, and every kind of proxy (HTTP forwarding,
  ``CONNECT`` tunnels, ``https://`` proxies with TLS inside TLS, SOCKS5);
* :class:`UnixConnector`: every connection to one Unix-domain socket;
* :class:`asyncnet.testing.MockTransport`: an in-memory server calling a
  function, for tests.

A connector returns a connection or raises; whatever it opened on the way is
closed on every failure and on cancellation (the caller bounds the whole
call with the connect timeout). ``OSError`` and ``ssl.SSLError`` may escape
and are translated by :func:`open_connection`, the one boundary every
connector's connections pass; failures only a connector can explain (a
proxy's refusal) are raised as :class:`~asyncnet.ProxyError` or
:class:`~asyncnet.ConnectError` here.

How a tunnel is opened (the negotiation runs on a throw-away protocol, and
the HTTP connection takes the transport over only when it is a clean pipe)::

    TCP to proxy [-> TLS to proxy] -> CONNECT / SOCKS5 handshake
        [-> TLS to origin through the tunnel] -> HTTPConnection
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Callable
from typing import Final, TypeVar

from .._connect import (
    PLAIN_TEXT_MESSAGE,
    AddrInfo,
    Resolver,
    interleave_addrinfos,
    is_plain_text_reply,
    numeric_addrinfos,
    race_connect,
)
from .._deadline import wait_end
from .._errors import (
    AsyncNetError,
    ConnectError,
    ConnectTimeout,
    ProxyError,
    TotalTimeout,
    UsageError,
)
from .._text import describe_error
from ._connection import HTTPConnection
from ._parser import ParserLimits
from ._proxy import Proxy, Socks5Handshake, TunnelReply, connect_request
from ._tls import SSLSetting, ssl_context_for
from ._trace import (
    ConnectEnd,
    ConnectionCreated,
    ConnectStart,
    DNSEnd,
    DNSStart,
    ProxyTunnelEstablished,
    TLSEnd,
    TLSStart,
    TracedConnection,
    Tracer,
    connection_factory,
    debug_tracer,
    origin_name,
)
from ._url import URL

__all__ = [
    "Connector",
    "ProtocolFactory",
    "TCPConnector",
    "UnixConnector",
    "connector_for",
    "open_connection",
]

#: Builds the connection object for a new transport.
ProtocolFactory = Callable[[], HTTPConnection]
_P = TypeVar("_P", bound=asyncio.BaseProtocol)

# Bytes the handshake protocol keeps unread at most: a CONNECT answer is
# bounded by the parser's head limit and a SOCKS5 reply by 262 bytes, so a
# proxy that sends more than this is misbehaving.
_HANDSHAKE_BUFFER: Final = 256 * 1024


class Connector:
    """The interface behind ``HTTPClient(transport=...)``: open one connection.

    Subclasses implement :meth:`connect`; :meth:`aclose` is called when the
    client closes.
    """

    async def connect(
        self,
        url: URL,
        ssl_context: ssl.SSLContext | None,
        proxy: Proxy | None,
        factory: ProtocolFactory,
        tracer: Tracer | None,
    ) -> HTTPConnection:
        """Open a connection for requests to ``url``'s origin and return its protocol.

        ``ssl_context`` is the origin's TLS context (None for ``http``),
        ``proxy`` the proxy chosen for this origin (None: direct), ``factory``
        builds the protocol, ``tracer`` (when not None) receives the steps.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the connector holds (the client is closing)."""


def _tls_end(tracer: Tracer, hostname: str, transport: asyncio.BaseTransport) -> None:
    ssl_object = transport.get_extra_info("ssl_object")
    version = cipher = None
    if ssl_object is not None:
        version = ssl_object.version()
        suite = ssl_object.cipher()
        cipher = suite[0] if suite else None
    tracer.emit(TLSEnd(Tracer.now(), hostname, version, cipher))


class _Handshake(asyncio.Protocol):
    """Receives a proxy's replies while a tunnel is negotiated; never owns the transport after.

    :meth:`receive` returns what arrived since the last call, or ``b""`` at
    EOF; a lost connection raises its error.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._data = bytearray()
        self._eof = False
        self._exc: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > _HANDSHAKE_BUFFER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._exc = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> bytes:
        while not self._data and not self._eof:
            self._waiter = self._loop.create_future()
            await self._waiter
        if self._data:
            data = bytes(self._data)
            self._data.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
            return data
        if self._exc is not None:
            raise self._exc
        return b""


class TCPConnector(Connector):
    """TCP connections, direct or through a proxy, with TLS where the scheme asks for it.

    :param resolver: the client's resolver (cache and lookup bound).
    :param happy_eyeballs_delay: see :func:`asyncnet._connect.race_connect`.
    :param local_addr: ``(ip, port)`` to bind each socket to before connecting.
    :param proxy_ssl: the client's ``ssl=`` setting, used for ``https://`` proxies.
    :param parser_limits: limits for reading a proxy's answer to ``CONNECT``.
    """

    def __init__(
        self,
        *,
        resolver: Resolver,
        happy_eyeballs_delay: float | None = 0.25,
        local_addr: tuple[str, int] | None = None,
        proxy_ssl: SSLSetting = None,
        parser_limits: ParserLimits | None = None,
    ) -> None:
        self._resolver = resolver
        self._delay = happy_eyeballs_delay
        self._local_addr = local_addr
        self._proxy_ssl = proxy_ssl
        self._parser_limits = parser_limits

    async def connect(
        self,
        url: URL,
        ssl_context: ssl.SSLContext | None,
        proxy: Proxy | None,
        factory: ProtocolFactory,
        tracer: Tracer | None,
    ) -> HTTPConnection:
        if proxy is None:
            if tracer is None and self._local_addr is None:
                infos = numeric_addrinfos(url.host, url.port)
                if infos is not None and len(infos) == 1:
                    return await self._direct(infos[0], factory, ssl_context, url.host)
            sock = await self._tcp(url.host, url.port, tracer)
            return await self._over(sock, factory, ssl_context, url.host, tracer)
        try:
            sock = await self._tcp(proxy.host, proxy.port, tracer)
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to proxy {proxy.authority}: {describe_error(exc)}"
            ) from exc
        proxy_context = (
            ssl_context_for("https", self._proxy_ssl) if proxy.scheme == "https" else None
        )
        if url.scheme == "http" and not proxy.is_socks:
            # Forwarding: the HTTP connection speaks to the proxy itself.
            try:
                return await self._over(sock, factory, proxy_context, proxy.host, tracer)
            except (OSError, ssl.SSLError) as exc:
                raise self._proxy_tls_error(proxy, exc) from exc
        return await self._tunnel(sock, url, ssl_context, proxy, proxy_context, factory, tracer)

    # -- the steps ----------------------------------------------------------------------

    async def _tcp(self, host: str, port: int, tracer: Tracer | None) -> socket.socket:
        """Resolve ``host`` (through the cache) and win the address race."""
        infos = numeric_addrinfos(host, port)
        if infos is None:
            infos = await self._lookup(host, port, tracer)
        if len(infos) > 1:
            infos = interleave_addrinfos(infos)
        if tracer is not None:
            tracer.emit(ConnectStart(Tracer.now(), host, port))
        sock = await race_connect(
            infos, delay=self._delay, where=f"{host}:{port}", local_addr=self._local_addr
        )
        if tracer is not None:
            try:
                address = sock.getpeername()
            except OSError:  # pragma: no cover - just connected
                address = None
            tracer.emit(ConnectEnd(Tracer.now(), address))
        return sock

    @staticmethod
    async def _direct(
        info: AddrInfo,
        factory: ProtocolFactory,
        context: ssl.SSLContext | None,
        hostname: str,
    ) -> HTTPConnection:
        """Connect to the one address of an IP literal: one socket, no race, no trace.

        What :meth:`_tcp`, :func:`race_connect` and :meth:`_over` do for one
        address, in one coroutine: where most requests open a connection (a
        crawl over many origins), every coroutine between the pool and the
        loop is created, resumed at each wake-up and torn down per request.
        Measured with ``benchmarks/http_instructions.py --new-connections``
        (callgrind): about 11,000 instructions less per new connection for
        the ``HTTPClient`` loop (666,000 -> 655,000), 5,000 for ``fetch_all``.
        """
        loop = asyncio.get_running_loop()
        family, type_, proto, _, address = info
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        try:
            _transport, conn = await loop.create_connection(
                factory,
                sock=sock,
                ssl=context,
                server_hostname=hostname if context is not None else None,
            )
        except (ValueError, TypeError):
            # Rejected before a transport took the socket (see _connect.open_connection).
            sock.close()
            raise
        return conn

    async def _lookup(self, host: str, port: int, tracer: Tracer | None) -> list[AddrInfo]:
        """Look a host name up through the resolver (and its cache), traced."""
        if tracer is not None:
            tracer.emit(DNSStart(Tracer.now(), host))
        infos = await self._resolver.resolve(host, port)
        if tracer is not None:
            tracer.emit(DNSEnd(Tracer.now(), host, tuple(str(info[4][0]) for info in infos)))
        return infos

    async def _over(
        self,
        sock: socket.socket,
        factory: Callable[[], _P],
        context: ssl.SSLContext | None,
        hostname: str,
        tracer: Tracer | None,
    ) -> _P:
        """Hand a connected socket to a transport (with TLS when ``context``) and the protocol.

        The protocol is the HTTP connection, or the handshake that opens a tunnel.
        """
        loop = asyncio.get_running_loop()
        if tracer is not None and context is not None:
            tracer.emit(TLSStart(Tracer.now(), hostname))
        try:
            transport, conn = await loop.create_connection(
                factory,
                sock=sock,
                ssl=context,
                # SNI and the host name check use the host connected to by
                # name: the origin, or the proxy (forwarding, or the TLS to an
                # https:// proxy under a tunnel).
                server_hostname=hostname if context is not None else None,
            )
        except (ValueError, TypeError):
            # Rejected before a transport took the socket (see _connect.open_connection).
            sock.close()
            raise
        if tracer is not None and context is not None:
            _tls_end(tracer, hostname, transport)
        return conn

    async def _tunnel(
        self,
        sock: socket.socket,
        url: URL,
        ssl_context: ssl.SSLContext | None,
        proxy: Proxy,
        proxy_context: ssl.SSLContext | None,
        factory: ProtocolFactory,
        tracer: Tracer | None,
    ) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        try:
            handshake = await self._over(sock, _Handshake, proxy_context, proxy.host, tracer)
        except (OSError, ssl.SSLError) as exc:
            raise self._proxy_tls_error(proxy, exc) from exc
        transport = handshake.transport
        assert transport is not None  # set by connection_made
        try:
            try:
                if proxy.is_socks:
                    await self._socks(transport, handshake, url, proxy, tracer)
                else:
                    await self._connect(transport, handshake, url, proxy)
            except OSError as exc:
                if isinstance(exc, ConnectError):
                    raise
                raise ProxyError(
                    f"proxy {proxy.authority} failed during the handshake: {describe_error(exc)}"
                ) from exc
            if tracer is not None:
                host = f"[{url.host}]" if ":" in url.host else url.host
                tracer.emit(
                    ProxyTunnelEstablished(Tracer.now(), str(proxy), f"{host}:{url.port}")
                )
            if ssl_context is not None:
                if tracer is not None:
                    tracer.emit(TLSStart(Tracer.now(), url.host))
                # TLS to the origin inside the tunnel (inside the proxy's TLS
                # for an https:// proxy): verified against the origin's name.
                tls = await loop.start_tls(
                    transport, handshake, ssl_context, server_hostname=url.host
                )
                if tls is None:  # pragma: no cover - only when the loop is closing
                    raise ConnectError("the event loop closed during the TLS handshake")
                transport = tls
                if tracer is not None:
                    _tls_end(tracer, url.host, transport)
            conn = factory()
            transport.set_protocol(conn)
            conn.connection_made(transport)
        except BaseException:
            transport.abort()
            raise
        return conn

    async def _connect(
        self, transport: asyncio.Transport, handshake: _Handshake, url: URL, proxy: Proxy
    ) -> None:
        """``CONNECT host:port``, then wait for a 2xx (see :class:`TunnelReply`)."""
        reply = TunnelReply(proxy, self._parser_limits)
        transport.write(connect_request(url.host, url.port, proxy.authorization))
        while True:
            data = await handshake.receive()
            if not data:
                reply.receive_eof()
            if reply.receive(data) is not None:
                return

    async def _socks(
        self,
        transport: asyncio.Transport,
        handshake: _Handshake,
        url: URL,
        proxy: Proxy,
        tracer: Tracer | None,
    ) -> None:
        """The SOCKS5 exchange; ``socks5`` resolves the name here, ``socks5h`` sends it."""
        host = url.host
        if proxy.scheme == "socks5" and numeric_addrinfos(host, url.port) is None:
            host = str((await self._lookup(host, url.port, tracer))[0][4][0])
        socks = Socks5Handshake(proxy, host, url.port)
        transport.write(socks.start())
        while not socks.done:
            data = await handshake.receive()
            if not data:
                socks.receive_eof()
            out = socks.receive(data)
            if out:
                transport.write(out)

    @staticmethod
    def _proxy_tls_error(proxy: Proxy, exc: BaseException) -> ConnectError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ConnectError(
                f"TLS certificate of proxy {proxy.authority} failed verification: "
                f"{exc.verify_message}"
            )
        if isinstance(exc, ConnectError):
            return exc
        return ConnectError(f"cannot connect to proxy {proxy.authority}: {describe_error(exc)}")


class UnixConnector(Connector):
    """Every connection to one Unix-domain socket; Host and target still come from the URL.

    ``https`` URLs get TLS over the socket, verified against the URL's host.
    Proxies do not apply: the socket is the destination.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    async def connect(
        self,
        url: URL,
        ssl_context: ssl.SSLContext | None,
        proxy: Proxy | None,
        factory: ProtocolFactory,
        tracer: Tracer | None,
    ) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        if tracer is not None:
            tracer.emit(ConnectStart(Tracer.now(), self.path, 0))
        try:
            _transport, conn = await loop.create_unix_connection(
                factory,
                self.path,
                ssl=ssl_context,
                server_hostname=url.host if ssl_context is not None else None,
            )
        except ssl.SSLCertVerificationError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(
                f"cannot connect to Unix socket {self.path!r}: {describe_error(exc)}"
            ) from exc
        if tracer is not None:
            tracer.emit(ConnectEnd(Tracer.now(), self.path))
        return conn


def connector_for(
    transport: Connector | None,
    uds: str | None,
    local_addr: tuple[str, int] | None,
    resolver: Resolver,
    happy_eyeballs_delay: float | None,
    ssl_setting: SSLSetting,
    parser_limits: ParserLimits | None,
) -> Connector:
    """A client's connector from its ``transport=``, ``uds=`` and ``local_addr=`` arguments."""
    if transport is not None:
        if uds is not None:
            raise UsageError("pass either transport= or uds=, not both")
        if not isinstance(transport, Connector):
            raise UsageError(
                f"transport must be a connector such as asyncnet.testing.MockTransport, "
                f"not {transport!r}"
            )
        return transport
    if uds is not None:
        if not isinstance(uds, (str, os.PathLike)):
            raise UsageError(f"uds must be a path, not {uds!r}")
        if local_addr is not None:
            raise UsageError("local_addr has no meaning with uds=")
        return UnixConnector(os.fspath(uds))
    if local_addr is not None and (
        not isinstance(local_addr, tuple)
        or len(local_addr) != 2
        or not isinstance(local_addr[0], str)
        or isinstance(local_addr[1], bool)
        or not isinstance(local_addr[1], int)
        or not 0 <= local_addr[1] <= 65535
        or numeric_addrinfos(local_addr[0], local_addr[1]) is None
    ):
        raise UsageError(f"local_addr must be (ip address, port), not {local_addr!r}")
    return TCPConnector(
        resolver=resolver,
        happy_eyeballs_delay=happy_eyeballs_delay,
        local_addr=local_addr,
        proxy_ssl=ssl_setting,
        parser_limits=parser_limits,
    )


def _time_up(task: asyncio.Task[object], fired: list[bool]) -> None:
    """The connect timer: mark the cancellation as the timer's own, then cancel."""
    fired.append(True)
    task.cancel()


async def open_connection(
    connector: Connector,
    url: URL,
    ssl_context: ssl.SSLContext | None,
    proxy: Proxy | None,
    *,
    connect_timeout: float | None,
    deadline: float | None,
    tracer: Tracer | None,
    parser_limits: ParserLimits | None,
    body_buffer: int,
) -> HTTPConnection:
    """Open a connection through ``connector``, under the connect timeout.

    Errors are translated here, once, whatever connector opened it. Without a
    ``tracer`` of the client's own, the ``asyncnet`` logger's (if it is on).
    """
    loop = asyncio.get_running_loop()
    end = wait_end(connect_timeout, deadline, loop.time)
    tracer = tracer or debug_tracer()
    factory = connection_factory(tracer, parser_limits, body_buffer)
    # One timer handle that cancels this task, not asyncio.timeout_at: its
    # context manager costs two more coroutines and a state machine per
    # connect, about 2 us more than a bare call_at (4.1 us against 2.1 us per
    # use, process time, 100,000 uses), paid by every request that opens a
    # connection. What is kept is asyncio.timeout's contract: only a
    # cancellation this timer caused, with no other one pending, becomes the
    # timeout; a cancellation from the caller goes on as it came.
    timer: asyncio.TimerHandle | None = None
    fired: list[bool] = []
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    if end is not None:
        timer = loop.call_at(end[0], _time_up, task, fired)
    try:
        # SNI and the host name check always use the URL's host.
        conn = await connector.connect(url, ssl_context, proxy, factory, tracer)
    except asyncio.CancelledError as exc:
        if not fired:
            raise
        fired.clear()
        if task.uncancel() > cancelling:
            raise  # the caller cancelled too
        assert end is not None
        if end[1]:
            raise TotalTimeout(
                f"the request's total deadline passed while connecting to {url.host_header}"
            ) from exc
        raise ConnectTimeout(
            f"connecting to {url.host_header} took longer than {connect_timeout} seconds"
        ) from exc
    except AsyncNetError:
        raise  # already explained by the connector (a proxy's refusal...)
    except TimeoutError as exc:
        # The system's connect timeout (ETIMEDOUT), not ours.
        reason = describe_error(exc)
        raise ConnectError(f"cannot connect to {url.host_header}: {reason}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise ConnectError(
            f"TLS certificate of {url.host_header} failed verification: {exc.verify_message}"
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        reason = describe_error(exc)
        if is_plain_text_reply(exc):
            # OpenSSL's "wrong version number": the port speaks plain text.
            reason = f"{PLAIN_TEXT_MESSAGE}; for plain HTTP use http:// instead of https://"
        if ssl_context is not None and not str(exc):
            # Only a TLS handshake fails with a bare ConnectionResetError().
            reason = f"TLS handshake failed: {reason}"
        raise ConnectError(f"cannot connect to {url.host_header}: {reason}") from exc
    finally:
        if timer is not None:
            timer.cancel()
        if fired:
            # The timer fired as the connect ended some other way: withdraw
            # its cancellation request, as asyncio.timeout does.
            task.uncancel()
    if isinstance(conn, TracedConnection):
        conn.tracer.emit(
            ConnectionCreated(Tracer.now(), conn.connection_id, origin_name(url, proxy))
        )
    return conn
