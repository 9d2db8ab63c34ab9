"""The whole exception hierarchy of asyncnet, in one place.

Every exception asyncnet raises on purpose derives from :class:`AsyncNetError`.
Each also derives from the builtin that a caller already knows how to catch:
timeouts are :class:`TimeoutError`, lost or refused connections are
:class:`ConnectionError`, caller mistakes are :class:`ValueError`::

    AsyncNetError
    ├── UsageError (ValueError)              the caller asked for something invalid
    │   ├── InvalidURL                       bad scheme, host, port or characters
    │   ├── InvalidHeader                    bad header name or value (CR, LF, NUL...)
    │   ├── InvalidMethod                    method is not a token
    │   └── BodyNotReplayable                a one-shot body needed again (307/308, Digest 401)
    ├── ProtocolError                        the conversation broke its protocol's rules
    │   ├── RemoteProtocolError              the peer sent malformed or forbidden data
    │   │   ├── FrameTooLarge                a frame over the framer's size limit
    │   │   └── IncompleteFrame              the stream ended inside a frame
    │   └── LocalProtocolError (ValueError)  we were asked to send something illegal
    ├── TransportError (ConnectionError)     the connection itself failed
    │   ├── ConnectError                     could not connect (refused, DNS, TLS)
    │   │   └── ProxyError                   the proxy refused or botched the tunnel
    │   ├── ReadError                        connection lost while receiving
    │   ├── WriteError                       connection lost while sending
    │   └── ConnectionClosed                 used after close, or closed by shutdown
    │       └── EndOfStream                  the peer finished sending, on a frame boundary
    ├── TimeoutError (builtins.TimeoutError)
    │   ├── ConnectTimeout
    │   ├── ReadTimeout
    │   ├── WriteTimeout
    │   ├── PoolTimeout
    │   ├── TotalTimeout                     the request's whole deadline passed
    │   └── IdleTimeout                      a peer neither sent nor read for too long
    ├── DecodeError                          corrupt or oversized content encoding
    ├── BodyTooLarge                         a response body over the caller's max_body
    ├── TooManyRedirects
    ├── HTTPStatusError                      raised by Response.raise_for_status()
    └── StreamError (RuntimeError)           a body used in the wrong way
        ├── StreamConsumed                   body iterated or read twice
        └── StreamClosed                     body read after its response was closed
"""

from __future__ import annotations

import builtins
from typing import Any

from ._text import escape

__all__ = [
    "AsyncNetError",
    "UsageError",
    "InvalidURL",
    "InvalidHeader",
    "InvalidMethod",
    "BodyNotReplayable",
    "ProtocolError",
    "RemoteProtocolError",
    "FrameTooLarge",
    "IncompleteFrame",
    "LocalProtocolError",
    "TransportError",
    "ConnectError",
    "ProxyError",
    "ReadError",
    "WriteError",
    "ConnectionClosed",
    "EndOfStream",
    "TimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "TotalTimeout",
    "IdleTimeout",
    "DecodeError",
    "BodyTooLarge",
    "TooManyRedirects",
    "HTTPStatusError",
    "StreamError",
    "StreamConsumed",
    "StreamClosed",
]


class AsyncNetError(Exception):
    """Base class of every exception asyncnet raises deliberately.

    ``except asyncnet.AsyncNetError`` catches all of them; the more specific
    classes below also inherit the builtin that describes them best.
    """


# -- caller mistakes -----------------------------------------------------------


class UsageError(AsyncNetError, ValueError):
    """The caller passed an invalid argument; nothing was sent."""


class InvalidURL(UsageError):
    """The URL is malformed, has a scheme other than http/https, or unsafe characters."""


class InvalidHeader(UsageError):
    """A header name is not a token, or a name or value holds a control character."""


class InvalidMethod(UsageError):
    """The request method is not an RFC 9110 token."""


class BodyNotReplayable(UsageError):
    """A redirect or an auth challenge needs the request body again; it was a one-shot stream."""


# -- protocol ------------------------------------------------------------------


class ProtocolError(AsyncNetError):
    """The exchange broke its protocol's rules (RFC 9112 for HTTP); the connection is discarded."""


class RemoteProtocolError(ProtocolError):
    """The peer sent malformed, oversized or forbidden data.

    The connection it came on is discarded; no other request is affected.
    """


class FrameTooLarge(RemoteProtocolError):
    """The peer sent (or announced) a frame over the framer's limit.

    Raised as soon as the bytes received prove the limit is exceeded, so the
    oversized frame is never buffered whole. ``limit`` is the framer's limit;
    ``size`` the frame's size, or the lower bound known when it was refused.
    """

    def __init__(self, message: str, *, limit: int, size: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_frame_too_large, (str(self), self.limit, self.size))


def _rebuild_frame_too_large(message: str, limit: int, size: int) -> FrameTooLarge:
    return FrameTooLarge(message, limit=limit, size=size)


class IncompleteFrame(RemoteProtocolError):
    """The stream ended inside a frame; ``received`` is how many of its bytes had arrived."""

    def __init__(self, message: str, *, received: int) -> None:
        super().__init__(message)
        self.received = received

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_incomplete_frame, (str(self), self.received))


def _rebuild_incomplete_frame(message: str, received: int) -> IncompleteFrame:
    return IncompleteFrame(message, received=received)


class LocalProtocolError(ProtocolError, ValueError):
    """We were asked to send something the protocol forbids in the current state."""


# -- transport -----------------------------------------------------------------


class TransportError(AsyncNetError, ConnectionError):
    """The connection failed underneath the protocol; ``__cause__`` holds the OSError."""


class ConnectError(TransportError):
    """Opening the connection failed: refused, unreachable, DNS or TLS handshake."""


class ProxyError(ConnectError):
    """A proxy refused to open the tunnel, or answered in a way that cannot be trusted.

    Raised for a non-2xx answer to ``CONNECT`` (``status`` holds it, 407 when
    the proxy wants credentials), a SOCKS5 failure reply (``reply_code``, RFC
    1928 section 6), refused SOCKS credentials, and a proxy that sends garbage
    or closes during the handshake. The connection to the proxy is closed.
    """

    def __init__(
        self, message: str, *, status: int | None = None, reply_code: int | None = None
    ) -> None:
        super().__init__(message)
        #: The proxy's HTTP status for a refused ``CONNECT``, else ``None``.
        self.status = status
        #: The SOCKS5 reply code (1-8) of a failure reply, else ``None``.
        self.reply_code = reply_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_proxy_error, (str(self), self.status, self.reply_code))


def _rebuild_proxy_error(message: str, status: int | None, reply_code: int | None) -> ProxyError:
    return ProxyError(message, status=status, reply_code=reply_code)


class ReadError(TransportError):
    """The connection was lost while a response was being received."""


class WriteError(TransportError):
    """The connection was lost while a request was being sent."""


class ConnectionClosed(TransportError):
    """The connection or server was already closed, or was closed by a shutdown."""


class EndOfStream(ConnectionClosed):
    """The peer finished sending cleanly, on a frame boundary: no more frames will come."""


# -- timeouts ------------------------------------------------------------------


class TimeoutError(AsyncNetError, builtins.TimeoutError):
    """Base class of asyncnet's timeouts; also a builtin :class:`TimeoutError`."""


class ConnectTimeout(TimeoutError):
    """Establishing the connection (including the TLS handshake) took too long."""


class ReadTimeout(TimeoutError):
    """No data arrived from the peer within the read timeout."""


class WriteTimeout(TimeoutError):
    """The peer did not accept our data within the write timeout."""


class PoolTimeout(TimeoutError):
    """No connection slot became free within the pool timeout."""


class TotalTimeout(TimeoutError):
    """The whole operation ran past its deadline, however busy the peer kept it."""


class IdleTimeout(TimeoutError):
    """The peer neither sent nor accepted data for the idle timeout."""


# -- content and redirects -----------------------------------------------------


class DecodeError(AsyncNetError):
    """A Content-Encoding could not be decoded: corrupt, unknown, or a decompression bomb."""


class BodyTooLarge(AsyncNetError):
    """A response body is larger than the ``max_body`` the caller allowed.

    Raised before reading when ``Content-Length`` already says so, else as
    soon as the body (after content decoding) grows past the limit; the
    connection it came on is closed.
    """

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        #: The ``max_body`` that was exceeded.
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), {"limit": self.limit})


class TooManyRedirects(AsyncNetError):
    """The redirect chain was longer than ``max_redirects``."""

    def __init__(self, message: str, *, history: list[Any] | None = None) -> None:
        super().__init__(message)
        #: The responses of the chain, oldest first.
        self.history: list[Any] = list(history or [])


class HTTPStatusError(AsyncNetError):
    """The response had a 4xx or 5xx status; raised by ``Response.raise_for_status()``."""

    def __init__(
        self, message: str, *, request: Any = None, response: Any = None
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response

    def __str__(self) -> str:
        # The message quotes the server's reason phrase: shown escaped, so
        # printing the exception cannot drive the terminal.
        return escape(super().__str__())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),))


# -- misuse of a response body -------------------------------------------------


class StreamError(AsyncNetError, RuntimeError):
    """A response body was used in a way that cannot work."""


class StreamConsumed(StreamError):
    """The body was already read or iterated; a stream can be consumed once."""


class StreamClosed(StreamError):
    """The response was closed before its body was read."""
