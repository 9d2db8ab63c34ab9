"""Loopback servers for the tests: a scripted raw server, an ``http.server``, TLS.

Everything here listens on 127.0.0.1 (or ``::1`` when asked) on a free port and
is used as a context manager, so every connection it opened is closed on exit:

* :class:`RawServer` is an asyncio server that either runs a coroutine per
  connection (``handler(reader, writer)``) or answers each request with canned
  bytes. It counts connections, the peak of concurrent connections and of
  requests in flight, and records every byte it received.
* :class:`HTTPServer` runs the standard library's ``ThreadingHTTPServer``
  (HTTP/1.1, keep-alive) in a background thread with a fixed set of handlers
  (bodies, chunked, gzip, redirects, status codes, echo, slow drip...).
* :class:`NginxServer` runs a private nginx in the foreground (tests skip
  when :func:`nginx_path` finds none).
* :func:`server_ssl_context` and :func:`client_ssl_context` build TLS contexts
  from the committed test certificates in ``tests/certs/``; both servers take
  ``ssl=`` to serve TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CERTS",
    "DROP",
    "HTTPServer",
    "NginxServer",
    "RawServer",
    "client_ssl_context",
    "ipv6_available",
    "nginx_path",
    "pattern",
    "read_request",
    "response",
    "server_ssl_context",
]

CERTS = Path(__file__).resolve().parent.parent / "certs"

# Upper bound on one request head read by the raw server; scripts that need
# more read the stream themselves.
MAX_HEAD = 256 * 1024


def pattern(n: int) -> bytes:
    """Return ``n`` bytes of a fixed repeating pattern (what ``/bytes/N`` serves)."""
    unit = bytes(range(32, 127))
    reps, rest = divmod(n, len(unit))
    return unit * reps + unit[:rest]


def ipv6_available() -> bool:
    """Tell whether a socket can bind to ``::1`` on this machine."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def black_hole_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener never accepts and whose backlog is full.

    Linux then drops new SYNs, so connecting neither succeeds nor fails: a
    connect timeout without any other host.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):  # the kernel queues backlog + 1 or so: fill it
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- TLS -------------------------------------------------------------------------


def server_ssl_context(cert: str = "server") -> ssl.SSLContext:
    """Build a server context presenting ``tests/certs/<cert>.pem`` (key: server.key).

    ``cert`` is one of ``server`` (localhost, 127.0.0.1, ::1, signed by the test
    CA), ``wrong-host``, ``expired`` or ``self-signed``.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERTS / f"{cert}.pem", CERTS / "server.key")
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_ssl_context() -> ssl.SSLContext:
    """Build a verifying client context that trusts only the test CA."""
    ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    return ctx


# -- raw asyncio server -----------------------------------------------------------


class _Drop:
    """Canned-response marker: read the request, then close without answering."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def response(
    status: int = 200,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    *,
    reason: str = "OK",
    content_length: bool = True,
) -> bytes:
    """Build the bytes of a simple HTTP/1.1 response (Content-Length added unless told)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head and body by Content-Length or chunked) and return its bytes.

    Returns ``b""`` if the peer closed before sending anything.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return b""
    lower = head.lower()
    raw = bytearray(head)
    if b"transfer-encoding: chunked" in lower:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # Trailers, then the empty line.
                while True:
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        return bytes(raw)
            raw += await reader.readexactly(size + 2)
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            raw += await reader.readexactly(int(line.split(b":", 1)[1].strip()))
            break
    return bytes(raw)


class _RecordingProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that also keeps a copy of every byte received."""

    def __init__(self, server: RawServer) -> None:
        self._server = server
        self.record = bytearray()
        self.ended = False
        reader = asyncio.StreamReader(limit=MAX_HEAD)
        super().__init__(reader, self._connected)

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._server._start_connection(reader, writer, self.record)

    def data_received(self, data: bytes) -> None:
        self.record += data
        super().data_received(data)

    def eof_received(self) -> bool:
        # The peer closed its side: for counting, the connection is over now,
        # even if the script has not read that far yet.
        self._server._connection_ended(self)
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._server._connection_ended(self)


class RawServer:
    """A scripted asyncio server on loopback, used as ``async with RawServer(...) as srv``.

    Give either ``handler``, a coroutine run once per connection with
    ``(reader, writer)``, or ``responses``: canned replies handed out one per
    request in arrival order across all connections; an item is the bytes to
    send, or :data:`DROP` to close the connection right after reading the
    request. Once the list is used up the server closes connections on their
    next request; ``repeat=True`` instead keeps answering with the last item.
    A canned reply whose head says ``Connection: close`` (or an HTTP/1.0 reply
    without ``Connection: keep-alive``) closes the connection after it is
    sent, as a real server does.

    Counters (``connections``, ``active_connections``, ``peak_connections``,
    ``requests``, ``active_requests``, ``peak_requests``) and the bytes each
    connection received (``received``) can be read at any time; a connection
    counts as active from ``connection_made`` until the server's loop sees the
    peer close it (EOF or reset) or the connection is lost, whichever is first,
    so the counts reflect what the client holds open, not how long a script
    takes to notice;
    :meth:`wait_until` waits for a condition on them without polling.
    Handlers mark requests with :meth:`read_request` / :meth:`send`.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        responses: Sequence[bytes] | None = None,
        repeat: bool = False,
        host: str = "127.0.0.1",
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        if (handler is None) == (responses is None):
            raise ValueError("give exactly one of handler or responses")
        self._handler = handler
        self._responses = list(responses or [])
        self._repeat = repeat
        self._next_response = 0
        self.host = host
        self.port = 0
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._in_request: set[asyncio.StreamWriter] = set()
        self._waiters: list[tuple[Callable[[RawServer], bool], asyncio.Future[None]]] = []
        self.connections = 0
        self.active_connections = 0
        self.peak_connections = 0
        self.requests = 0
        self.active_requests = 0
        self.peak_requests = 0
        #: Every byte received, one bytearray per connection in accept order.
        self.received: list[bytearray] = []
        #: Each request read through :meth:`read_request`, in order.
        self.request_log: list[bytes] = []
        #: Unexpected exceptions from handlers (re-raised on exit).
        self.errors: list[BaseException] = []

    # -- URLs ------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Return an absolute URL for ``path`` on this server."""
        return f"{self.scheme}://{_url_host(host or self.host)}:{self.port}{path}"

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> RawServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _RecordingProtocol(self), self.host, 0, ssl=self._ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        if exc is None and self.errors:
            raise AssertionError(f"server script failed: {self.errors!r}") from self.errors[0]

    async def aclose(self) -> None:
        """Stop listening, end every handler and close every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # Let connection_lost callbacks of the aborted transports run.
        for _ in range(3):
            await asyncio.sleep(0)

    # -- counters ----------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[RawServer], bool]) -> None:
        """Wait until ``predicate(self)`` is true; it is re-checked on every counter change."""
        if predicate(self):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        finally:
            self._waiters.remove(entry)

    def _notify(self) -> None:
        for predicate, waiter in self._waiters:
            if not waiter.done() and predicate(self):
                waiter.set_result(None)

    def _request_started(self, writer: asyncio.StreamWriter) -> None:
        if writer in self._in_request:
            return
        self._in_request.add(writer)
        self.requests += 1
        self.active_requests += 1
        self.peak_requests = max(self.peak_requests, self.active_requests)
        self._notify()

    def _request_finished(self, writer: asyncio.StreamWriter) -> None:
        if writer in self._in_request:
            self._in_request.discard(writer)
            self.active_requests -= 1
            self._notify()

    async def read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        """Read one request on a connection and count it as in flight until :meth:`send`."""
        data = await read_request(reader)
        if data:
            self.request_log.append(data)
            self._request_started(writer)
        return data

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Send a reply and count the connection's current request as answered."""
        writer.write(data)
        await writer.drain()
        self._request_finished(writer)

    # -- connections ----------------------------------------------------------------

    def _start_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray
    ) -> None:
        self.connections += 1
        self.active_connections += 1
        self.peak_connections = max(self.peak_connections, self.active_connections)
        self.received.append(record)
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._run_connection(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._notify()

    def _connection_ended(self, protocol: _RecordingProtocol) -> None:
        if protocol.ended:
            return
        protocol.ended = True
        self.active_connections -= 1
        self._notify()

    async def _run_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if self._handler is not None:
                await self._handler(reader, writer)
            else:
                await self._serve_canned(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent nothing useful: normal in tests
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self._request_finished(writer)
            # A graceful close, so buffered replies still go out; aclose()
            # aborts whatever is still closing (a TLS peer may never answer
            # our close_notify).
            writer.close()
            self._notify()

    async def _serve_canned(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request = await self.read_request(reader, writer)
            if not request:
                return
            if self._next_response < len(self._responses):
                reply = self._responses[self._next_response]
                self._next_response += 1
            elif self._repeat and self._responses:
                reply = self._responses[-1]
            else:
                return
            if reply is DROP:
                return
            await self.send(writer, reply)
            head = reply.split(b"\r\n\r\n", 1)[0].lower()
            http10 = head.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in head
            if http10 or b"\r\nconnection: close" in head:
                # Send FIN after the reply, as a real server does.
                if writer.can_write_eof():
                    writer.write_eof()
                await reader.read()
                return


# -- stdlib http.server in a thread ----------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Handlers of :class:`HTTPServer`, dispatched on the first path segment."""

    protocol_version = "HTTP/1.1"
    server: _ThreadingServer

    # Quiet: the tests read counters, not logs.
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        content_length: bool = True,
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _dispatch(self) -> None:
        owner = self.server.owner
        owner._request_started()
        try:
            self._route()
        finally:
            owner._request_finished()

    def _route(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        parts = split.path.strip("/").split("/")
        name, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if name == "bytes":
            self._reply(200, pattern(int(arg)), [("Content-Type", "application/octet-stream")])
        elif name == "chunked":
            self._send_chunked(pattern(int(arg)), int(query.get("chunk", "4096")))
        elif name == "gzip":
            self._reply(200, gzip.compress(pattern(int(arg))), [("Content-Encoding", "gzip")])
        elif name == "deflate":
            self._reply(200, zlib.compress(pattern(int(arg))), [("Content-Encoding", "deflate")])
        elif name == "status":
            code = int(arg)
            no_body = code < 200 or code in (204, 304)
            self._reply(code, b"" if no_body else f"status {code}".encode(),
                        content_length=not no_body)
        elif name == "redirect":
            hops = int(arg)
            if hops > 0:
                self._reply(int(query.get("status", "302")), b"redirecting",
                            [("Location", f"/redirect/{hops - 1}")])
            else:
                self._reply(200, b"done")
        elif name == "redirect-to":
            self._reply(int(query.get("status", "302")), b"redirecting",
                        [("Location", query["url"])])
        elif name == "echo":
            doc = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
            }
            self._reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        elif name == "slow-drip":
            self._slow_drip(float(query.get("interval", "0.05")), int(query.get("count", "100")))
        elif name == "headers":
            self._reply(200, b"headers", [
                ("X-Dup", "one"), ("X-Dup", "two"),
                ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
            ])
        elif name == "close":
            self.close_connection = True
            self._reply(200, b"closing", [("Connection", "close")])
        else:
            self._reply(404, b"not found")

    def _send_chunked(self, data: bytes, chunk: int) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(0, len(data), chunk):
            piece = data[i : i + chunk]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _slow_drip(self, interval: float, count: int) -> None:
        # The server's own timer paces the bytes; a stop of the server ends it at once.
        self.send_response(200)
        self.send_header("Content-Length", str(count))
        self.end_headers()
        self.wfile.flush()
        stop = self.server.owner._stop
        for _ in range(count):
            if stop.wait(interval):
                break
            self.wfile.write(b"x")
            self.wfile.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _ThreadingServer(http.server.ThreadingHTTPServer):
    # Non-daemon threads are joined by server_close(): nothing outlives the server.
    daemon_threads = False
    # The default backlog of 5 drops SYNs when many clients connect at once,
    # and each drop costs the client a one-second retransmission.
    request_queue_size = 128
    owner: HTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # broken pipes and failed handshakes are expected in tests

    # Counted here, in the accepting thread and in the connection thread's
    # last step, so that a connection is known before its handshake and
    # forgotten even when the handshake fails.
    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.owner._connection_closed(request)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class HTTPServer:
    """The stdlib ``ThreadingHTTPServer`` on loopback in a thread: ``with HTTPServer() as srv``.

    Paths: ``/bytes/N``, ``/chunked/N?chunk=K``, ``/gzip/N``, ``/deflate/N``
    (bodies are :func:`pattern` ``(N)``), ``/status/CODE``, ``/redirect/N``
    (N hops, then 200 "done"; ``?status=`` picks the code),
    ``/redirect-to?url=..&status=..``, ``/echo`` (JSON with method, path, headers
    as pairs and body as latin-1 text), ``/slow-drip?interval=S&count=N`` (one
    byte per interval), ``/headers`` (``X-Dup`` and ``Set-Cookie`` twice each),
    ``/close`` (answers with ``Connection: close``). Counts connections and
    requests with their peaks; with ``ssl=`` serves TLS.
    """

    def __init__(self, *, host: str = "127.0.0.1", ssl: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = 0
        self._ssl = ssl
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.active_connections = 0
        self.peak_connections = 0
        self.requests = 0
        self.active_requests = 0
        self.peak_requests = 0

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Return an absolute URL for ``path`` on this server."""
        return f"{self.scheme}://{_url_host(host or self.host)}:{self.port}{path}"

    def __enter__(self) -> HTTPServer:
        server_cls = _ThreadingServer6 if ":" in self.host else _ThreadingServer
        server = server_cls((self.host, 0), _Handler)
        server.owner = self
        if self._ssl is not None:
            # The handshake runs in the connection's thread (see _Handler.setup),
            # so a client that fails verification blocks nobody.
            server.socket = self._ssl.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, close every connection and join the threads."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()  # joins the connection threads
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.connections += 1
            self.active_connections += 1
            self.peak_connections = max(self.peak_connections, self.active_connections)

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self.active_connections -= 1

    def _request_started(self) -> None:
        with self._lock:
            self.requests += 1
            self.active_requests += 1
            self.peak_requests = max(self.peak_requests, self.active_requests)

    def _request_finished(self) -> None:
        with self._lock:
            self.active_requests -= 1


# -- nginx as a real third-party peer -----------------------------------------------------


def nginx_path() -> str | None:
    """Return the nginx binary, or ``None`` when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


class NginxServer:
    """A private nginx on 127.0.0.1 in the foreground: ``with NginxServer() as srv``.

    Serves ``/bytes/N`` files of :func:`pattern` bytes for the sizes given,
    ``/gzip/N`` (the same file, gzip-compressed on the fly: chunked), and
    ``/redirect`` (301 to ``/bytes/<first size>``); every request is logged as
    ``<connection serial> <requests on it> <uri>`` so a test can count the
    connections nginx saw (:meth:`access_log`). ``keepalive_requests`` is
    nginx's cap on requests per connection (it answers the last one with
    ``Connection: close``); ``tls=True`` serves https with the test
    certificate (``tests/certs/server.pem``). Ready when nginx reports its
    workers started; stopped with SIGTERM on exit. Raises RuntimeError if
    nginx fails to start; callers skip when :func:`nginx_path` is None.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (100, 65536),
        *,
        keepalive_requests: int = 10000,
        tls: bool = False,
    ) -> None:
        self.sizes = list(sizes)
        self.keepalive_requests = keepalive_requests
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log: list[str] = []
        self.startup_log: list[str] = []

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Return an absolute URL for ``path`` on this server."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def access_log(self) -> list[tuple[int, int, str]]:
        """Return ``(connection serial, request number on it, uri)`` per request.

        Only complete once nginx has stopped (after the ``with`` block): a worker
        writes a request's line after sending its response.
        """
        if self._tmp is not None:
            raise RuntimeError("read the access log after nginx has stopped")
        return [(int(c), int(n), uri) for c, n, uri in (ln.split(" ", 2) for ln in self._log)]

    def __enter__(self) -> NginxServer:
        binary = nginx_path()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self._tmp = tempfile.TemporaryDirectory(prefix="asyncnet-nginx-")
        root = Path(self._tmp.name)
        # Workers may run as another user: everything they read must be world-readable.
        root.chmod(0o755)
        (root / "html" / "bytes").mkdir(parents=True)
        (root / "html" / "gzip").mkdir()
        for size in self.sizes:
            (root / "html" / "bytes" / str(size)).write_bytes(pattern(size))
            (root / "html" / "gzip" / str(size)).write_bytes(pattern(size))
        with socket.socket() as probe:
            # A free port; nginx binds it a moment later (nothing else here races for it).
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        temp_paths = "\n".join(
            f"    {kind}_temp_path {root / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        first = self.sizes[0]
        tls_lines = (
            f"        ssl_certificate {CERTS / 'server.pem'};\n"
            f"        ssl_certificate_key {CERTS / 'server.key'};"
            if self.tls else ""
        )
        config = f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    log_format counts '$connection $connection_requests $request_uri';
{temp_paths}
    keepalive_requests {self.keepalive_requests};
    keepalive_timeout 60s;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port}{" ssl" if self.tls else ""};
{tls_lines}
        root {root / "html"};
        access_log {root / "access.log"} counts;
        location /gzip/ {{
            gzip on;
            gzip_min_length 0;
            gzip_types *;
        }}
        location = /redirect {{ return 301 /bytes/{first}; }}
    }}
}}
"""
        (root / "nginx.conf").write_text(config)
        self._proc = subprocess.Popen(
            [binary, "-p", str(root), "-c", str(root / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stderr is not None
        # nginx binds its sockets before it starts workers; the notice is the signal.
        # The loop ends at that notice or at EOF (nginx exited); both are bounded.
        for line in self._proc.stderr:
            self.startup_log.append(line.rstrip())
            if "start worker process" in line:
                break
        else:
            self.close()
            raise RuntimeError("nginx did not start:\n" + "\n".join(self.startup_log))
        # Keep reading stderr so that nginx never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        return self

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.startup_log.append(line.rstrip())

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop nginx (fast shutdown) and remove its directory."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
            self._proc.wait(timeout=30)
            drain = getattr(self, "_drain", None)
            if drain is not None:
                drain.join(timeout=30)
            assert self._proc.stderr is not None
            self._proc.stderr.close()
            self._proc = None
        if self._tmp is not None:
            log = Path(self._tmp.name) / "access.log"
            if log.exists():
                self._log = log.read_text().splitlines()
            self._tmp.cleanup()
            self._tmp = None
