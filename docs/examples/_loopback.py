"""A tiny HTTP server on 127.0.0.1 for the guide's examples (standard library only).

``GET /slow?delay=S`` waits S seconds, then answers ``200 done``. The server
counts the requests it is serving at once, so an example can show what a
concurrency limit did from the only place that really knows: the server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Counter:
    """Requests in flight now and at most, shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter: Counter
    stop: threading.Event

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY the
        # second waits for the client's delayed ACK (about 40 ms on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the example's own output readable

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        delay = float(query.get("delay", ["0"])[0])
        with self.counter.lock:
            self.counter.now += 1
            self.counter.peak = max(self.counter.peak, self.counter.now)
        try:
            self.stop.wait(delay)
            body = b"done\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with self.counter.lock:
                self.counter.now -= 1


@contextmanager
def http_server() -> Iterator[tuple[str, Counter]]:
    """Serve on a free loopback port in a thread; yields (base URL, counter)."""
    counter, stop = Counter(), threading.Event()
    handler = type("Handler", (_Handler,), {"counter": counter, "stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        stop.set()
        server.shutdown()
        thread.join()
        server.server_close()
