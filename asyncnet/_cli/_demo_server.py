"""A small HTTP/1.1 server on loopback, in a thread, with endpoints that misbehave on purpose.

The demo, the fetch tests and the command-line tests need a real peer that
is fast, slow, chunked, compressed, redirecting or broken on request, and
that counts how many requests it is serving at once (the only honest place to
measure a concurrency limit is the server). It is built on the standard
library's :mod:`http.server`, so it shares no code with the client it checks.

Endpoints (every query parameter is optional)::

    /fast?size=N              200 with N bytes (default 64)
    /slow?delay=S&size=N      waits S seconds (default 1.0), then like /fast
    /chunked?chunks=N&size=M  Transfer-Encoding: chunked, N chunks of M bytes
    /gzip?size=N              a gzip-encoded body that decodes to N bytes
    /redirect?n=K             302 chain of K hops ending at /fast
    /loop                     302 to itself, forever
    /status?code=C            an empty response with status C
    /flaky?key=K&fails=F&code=C&retry_after=R
                              the first F requests for K answer C (with
                              Retry-After: R when given), later ones 200
    /malformed                a response line that is not HTTP
    /hangup                   closes the connection without answering
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["DemoHTTPServer", "ServerCounters"]

# Bodies are made from this pattern so a reader can check them byte by byte.
_PATTERN = b"0123456789abcdef" * 4096

# Handler threads give up on an idle keep-alive connection after this long, so
# a client that forgets to close cannot keep a thread alive for ever.
_IDLE_SECONDS = 5.0

# Upper bound on any requested body or delay: this is a test peer, not a
# load generator, and a typo must not make it allocate gigabytes.
_MAX_SIZE = 64 * 1024 * 1024
_MAX_DELAY = 30.0


def body_of(size: int) -> bytes:
    """Return the deterministic body that ``/fast?size=N`` serves."""
    size = max(0, min(size, _MAX_SIZE))
    reps, rest = divmod(size, len(_PATTERN))
    return _PATTERN * reps + _PATTERN[:rest]


@dataclass(frozen=True)
class ServerCounters:
    """A snapshot of what the server has seen, for checks and for the demo's report."""

    requests: int
    in_flight: int
    peak_in_flight: int
    paths: dict[str, int]


class _State:
    """Counters shared by the handler threads, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self.paths: Counter[str] = Counter()
        self.flaky: Counter[str] = Counter()

    def enter(self, path: str) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.paths[path] += 1
            self.changed.notify_all()

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "asyncnet-demo"
    sys_version = ""
    timeout = _IDLE_SECONDS
    state: _State  # set on the subclass made per server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY the
        # second waits for the client's delayed ACK (about 40 ms on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: the demo and the tests print what matters themselves."""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, _MAX_SIZE))
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = _ROUTES.get(parts.path)
        self.state.enter(parts.path)
        try:
            if route is None:
                self._reply(404, b"not found\n", send_body=send_body)
            else:
                route(self, query, send_body)
        except (OSError, ValueError):
            # The client went away (a timeout on its side) or sent a bad
            # query; either way this connection is finished.
            self.close_connection = True
        finally:
            self.state.leave()

    def _reply(
        self,
        status: int,
        body: bytes,
        *,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


def _int(query: dict[str, str], name: str, default: int) -> int:
    return int(query.get(name, default))


def _fast(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    h._reply(200, body_of(_int(q, "size", 64)), send_body=send_body)


def _slow(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    delay = min(float(q.get("delay", 1.0)), _MAX_DELAY)
    # Waiting on the stop event lets the server shut down without waiting
    # out every slow request.
    h.state.stop.wait(delay)
    h._reply(200, body_of(_int(q, "size", 64)), send_body=send_body)


def _chunked(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    chunks = min(_int(q, "chunks", 4), 10_000)
    size = max(1, min(_int(q, "size", 1024), 1024 * 1024))
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    if not send_body:
        return
    piece = body_of(size)
    for _ in range(chunks):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    h.wfile.write(b"0\r\n\r\n")


def _gzip(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    body = gzip.compress(body_of(_int(q, "size", 4096)), mtime=0)
    h._reply(200, body, send_body=send_body, headers={"Content-Encoding": "gzip"})


def _redirect(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    hops = _int(q, "n", 1)
    target = f"/redirect?n={hops - 1}" if hops > 1 else "/fast"
    h._reply(302, b"", send_body=send_body, headers={"Location": target})


def _loop(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    h._reply(302, b"", send_body=send_body, headers={"Location": "/loop"})


def _status(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    h._reply(_int(q, "code", 500), b"", send_body=send_body)


def _flaky(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    key = q.get("key", "")
    with h.state.lock:
        h.state.flaky[key] += 1
        seen = h.state.flaky[key]
    if seen <= _int(q, "fails", 1):
        headers = {}
        if "retry_after" in q:
            headers["Retry-After"] = q["retry_after"]
        h._reply(_int(q, "code", 503), b"", send_body=send_body, headers=headers)
    else:
        h._reply(200, b"ok after %d\n" % seen, send_body=send_body)


def _malformed(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    h.close_connection = True
    h.wfile.write(b"this is not HTTP at all\r\n\r\n")


def _hangup(h: _Handler, q: dict[str, str], send_body: bool) -> None:
    h.close_connection = True


_ROUTES: dict[str, Callable[[_Handler, dict[str, str], bool], None]] = {
    "/fast": _fast,
    "/slow": _slow,
    "/chunked": _chunked,
    "/gzip": _gzip,
    "/redirect": _redirect,
    "/loop": _loop,
    "/status": _status,
    "/flaky": _flaky,
    "/malformed": _malformed,
    "/hangup": _hangup,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many concurrent clients connect at once in the demo; the default
    # backlog of 5 would make some of them wait for a SYN retry.
    request_queue_size = 128


class DemoHTTPServer:
    """A threaded :mod:`http.server` on 127.0.0.1 with the endpoints listed above.

    Use it as a (blocking) context manager; it binds an ephemeral port, so
    many can run at once, and stops promptly even while slow requests wait.
    """

    def __init__(self) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def url(self, path: str = "/fast") -> str:
        """Return the absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> DemoHTTPServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"demo-http-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake slow handlers, and close the listening socket."""
        state = self._state
        state.stop.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        # The handlers the stop event woke run on threads of their own (daemon
        # threads, not joined): let them finish, so that the counters read
        # after stop() are final. Bounded: a handler stuck writing to a peer
        # that does not read is left behind.
        with state.lock:
            state.changed.wait_for(lambda: state.in_flight == 0, timeout=5.0)

    def counters(self) -> ServerCounters:
        """Return a snapshot of the request counters."""
        s = self._state
        with s.lock:
            return ServerCounters(s.requests, s.in_flight, s.peak, dict(s.paths))

    def wait_in_flight(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests are being served; False on timeout.

        Blocking: from a coroutine, call it through :func:`asyncio.to_thread`.
        """
        s = self._state
        with s.changed:
            return s.changed.wait_for(lambda: s.in_flight >= count, timeout)

    def __enter__(self) -> DemoHTTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
