"""A mock transport for tests of code that uses :class:`~asyncnet.HTTPClient`.

``HTTPClient(transport=MockTransport(handler))`` sends every request to
``handler(request)`` instead of the network. The handler (a function or a
coroutine function) gets a :class:`~asyncnet.Request` with the method, URL,
headers and full body, and returns a :class:`MockResponse`.

Nothing about the client is bypassed: each connection is an in-memory
transport pair (:class:`~asyncnet.testing.MemoryTransport`), the request
is serialized as for a socket, and the response is written as HTTP/1.1
bytes that go through the client's real parser, body pipeline, decoders,
redirects, timeouts, pool and hooks. So a handler that never returns makes
the client's read timeout fire, a gzip body with ``Content-Encoding: gzip``
is decoded, a 302 is followed, and an async-iterator body arrives chunked
with backpressure.

A handler that raises aborts the connection: the client raises
:class:`~asyncnet.ReadError` whose ``__cause__`` is the handler's exception.

The server side of each connection, per request::

    reading head -> reading body -> handler -> writing response -> (next request | close)
"""

from __future__ import annotations

import asyncio
import http
import inspect
import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Final

from .._errors import RemoteProtocolError, UsageError
from .._flow import FlowControlProtocol
from .._http._connection import HTTPConnection
from .._http._connector import Connector, ProtocolFactory
from .._http._headers import Headers
from .._http._hooks import Request
from .._http._proxy import Proxy
from .._http._request import encode_chunk, validate_header_items
from .._http._trace import ConnectEnd, ConnectStart, Tracer
from .._http._url import URL, parse_url
from ._memory import MemoryTransport

__all__ = ["MockHandler", "MockResponse", "MockTransport"]

# A request head larger than this is refused (as a server's 431 would be):
# the client writes what its caller gives it, and a mock must stay bounded.
_MAX_REQUEST_HEAD: Final = 64 * 1024
# A request body larger than this is refused: the handler gets it whole.
_MAX_REQUEST_BODY: Final = 64 * 1024 * 1024
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class MockResponse:
    """What a mock handler answers: status, headers and a body.

    ``body`` is bytes (or str, sent as UTF-8), or an async iterable of bytes
    that is sent chunked as it is produced. ``Content-Length`` is added for
    bytes unless the headers frame the body themselves; ``reason`` defaults
    to the standard phrase. Headers are validated like a request's (no CR,
    LF or NUL): a mock cannot produce what the parser would refuse for
    that reason; send raw bytes over a real socket to test that.
    """

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str | AsyncIterable[bytes] = b"",
        *,
        reason: str | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
            raise UsageError(f"status must be an int from 100 to 999, not {status!r}")
        if status < 200:
            raise UsageError("a mock answers with a final response (status 200 or more)")
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        self.status = status
        self.headers = validate_header_items(items)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, (bytes, bytearray, memoryview, AsyncIterable)):
            raise UsageError(f"body must be bytes, str or an async iterable, not {body!r}")
        self.body: bytes | AsyncIterable[bytes] = (
            bytes(body) if isinstance(body, (bytearray, memoryview)) else body
        )
        if reason is None:
            try:
                reason = http.HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        if "\r" in reason or "\n" in reason:
            raise UsageError("reason must not contain CR or LF")
        self.reason = reason


MockHandler = Callable[[Request], MockResponse | Awaitable[MockResponse]]


class _RequestReader:
    """Sans-IO: bytes of requests in, ``(method, target, headers, body)`` tuples out.

    Reads what the client writes: Content-Length or chunked bodies, no
    pipelining beyond buffering the next request's bytes.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._head: tuple[str, str, list[tuple[str, str]]] | None = None
        self._length: int | None = None  # None: chunked
        self._body = bytearray()
        self._chunk_left = -1  # -1: expecting a size line; -2: expecting trailers

    def feed(self, data: bytes) -> list[tuple[str, str, list[tuple[str, str]], bytes]]:
        self._buf += data
        out: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        while True:
            request = self._next()
            if request is None:
                return out
            out.append(request)

    def _next(self) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_REQUEST_HEAD:
                    raise RemoteProtocolError("request head too large for the mock")
                return None
            text = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            line, *lines = text.split("\r\n")
            method, target, _version = line.split(" ", 2)
            fields = (ln.partition(":") for ln in lines)
            headers = [(name.strip(), value.strip(" \t")) for name, _, value in fields]
            self._head = (method, target, headers)
            names = {n.lower(): v for n, v in headers}
            if names.get("transfer-encoding", "").lower() == "chunked":
                self._length = None
                self._chunk_left = -1
            else:
                self._length = int(names.get("content-length", "0"))
            self._body = bytearray()
        if self._length is not None:
            if len(buf) < self._length:
                return None
            self._body += buf[: self._length]
            del buf[: self._length]
            return self._finish()
        while True:
            if self._chunk_left == -1:
                end = buf.find(b"\r\n")
                if end < 0:
                    return None
                m = _CHUNK_SIZE.fullmatch(bytes(buf[:end]))
                if m is None:
                    raise RemoteProtocolError("bad chunk size line in the request")
                del buf[: end + 2]
                size = int(m.group(1), 16)
                self._chunk_left = size if size else -2
            elif self._chunk_left == -2:
                end = buf.find(b"\r\n")
                if end < 0:
                    return None
                del buf[: end + 2]
                if end == 0:
                    return self._finish()
            else:
                if len(buf) < self._chunk_left + 2:
                    return None
                self._body += buf[: self._chunk_left]
                if len(self._body) > _MAX_REQUEST_BODY:
                    raise RemoteProtocolError("request body too large for the mock")
                del buf[: self._chunk_left + 2]
                self._chunk_left = -1

    def _finish(self) -> tuple[str, str, list[tuple[str, str]], bytes]:
        assert self._head is not None
        method, target, headers = self._head
        self._head = None
        return method, target, headers, bytes(self._body)


class _AbortableTransport(MemoryTransport):
    """A memory transport whose abort can hand the peer a chosen error."""

    def abort_with(self, exc: Exception) -> None:
        self._abort_with(exc)


class _MockServer(FlowControlProtocol):
    """The server end of one mock connection: parse requests, call the handler, answer."""

    def __init__(self, mock: MockTransport, scheme: str) -> None:
        super().__init__()
        self._mock = mock
        self._scheme = scheme
        self._reader = _RequestReader()
        self._queue: asyncio.Queue[tuple[str, str, list[tuple[str, str]], bytes]] = (
            asyncio.Queue()
        )
        self._transport: _AbortableTransport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, _AbortableTransport)
        self._transport = transport
        self._task = asyncio.get_running_loop().create_task(self._serve())
        self._mock._tasks.add(self._task)
        self._task.add_done_callback(self._mock._tasks.discard)

    def data_received(self, data: bytes) -> None:
        try:
            requests = self._reader.feed(data)
        except (RemoteProtocolError, ValueError) as exc:
            self._abort(exc)
            return
        for request in requests:
            self._queue.put_nowait(request)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _abort(self, exc: Exception) -> None:
        if self._transport is not None:
            self._transport.abort_with(exc)

    async def _serve(self) -> None:
        while True:
            method, target, headers, body = await self._queue.get()
            header_map = Headers(headers)
            try:
                if target.startswith("/"):
                    host = header_map.get("host", "localhost")
                    url = parse_url(f"{self._scheme}://{host}{target}")
                else:
                    url = parse_url(target)  # absolute form, as sent to a proxy
                request = Request(method, url, header_map, body)
                self._mock.requests += 1
                result = self._mock._handler(request)
                if inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, MockResponse):
                    raise TypeError(
                        f"a mock handler must return a MockResponse, not {type(result).__name__}"
                    )
                close = await self._write_response(method, result)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._abort(exc)
                return
            if close:
                assert self._transport is not None
                self._transport.close()
                return

    async def _write_response(self, method: str, response: MockResponse) -> bool:
        """Write one response; True if the connection ends after it."""
        transport = self._transport
        assert transport is not None
        names = {name.lower() for name, _ in response.headers}
        no_body = method == "HEAD" or response.status in _NO_BODY_STATUSES
        lines = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in response.headers]
        body = response.body
        chunked = False
        # A HEAD answer announces the framing the body would have had.
        if (
            not ({"content-length", "transfer-encoding"} & names)
            and response.status not in _NO_BODY_STATUSES
        ):
            if isinstance(body, bytes):
                lines.append(f"Content-Length: {len(body)}\r\n")
            else:
                lines.append("Transfer-Encoding: chunked\r\n")
                chunked = True
        elif "transfer-encoding" in names:
            chunked = True
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        close = any(
            name.lower() == "connection" and "close" in value.lower()
            for name, value in response.headers
        )
        if no_body:
            transport.write(head)
            return close
        if isinstance(body, bytes):
            transport.write(head + (encode_chunk(body) + b"0\r\n\r\n" if chunked else body))
            return close
        transport.write(head)
        async for piece in body:
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise TypeError(f"mock body pieces must be bytes, not {type(piece).__name__}")
            if piece:
                transport.write(encode_chunk(bytes(piece)) if chunked else bytes(piece))
                if self.writing_paused:
                    await self.drain()
        if chunked:
            transport.write(b"0\r\n\r\n")
        return close


class MockTransport(Connector):
    """Answer every request of an :class:`~asyncnet.HTTPClient` with ``handler``; see the module.

    One instance may serve several clients. :attr:`requests` counts the
    requests handled, :attr:`connections` the connections opened.
    """

    def __init__(self, handler: MockHandler) -> None:
        if not callable(handler):
            raise UsageError(f"handler must be callable, not {handler!r}")
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        #: Connections opened so far.
        self.connections = 0
        #: Requests handed to the handler so far.
        self.requests = 0

    async def connect(
        self,
        url: URL,
        ssl_context: object,
        proxy: Proxy | None,
        factory: ProtocolFactory,
        tracer: Tracer | None,
    ) -> HTTPConnection:
        loop = asyncio.get_running_loop()
        if tracer is not None:
            tracer.emit(ConnectStart(Tracer.now(), url.host, url.port))
        client = _AbortableTransport(loop, "mock-client")
        server = _AbortableTransport(loop, "mock-server")
        client.peer, server.peer = server, client
        self.connections += 1
        protocol = _MockServer(self, url.scheme)
        server.set_protocol(protocol)
        protocol.connection_made(server)
        conn = factory()
        client.set_protocol(conn)
        conn.connection_made(client)
        if tracer is not None:
            tracer.emit(ConnectEnd(Tracer.now(), ("mock", url.host_header)))
        return conn

    async def aclose(self) -> None:
        """Stop serving: cancel what the handler is still doing."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
