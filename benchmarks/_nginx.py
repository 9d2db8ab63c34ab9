"""A throw-away nginx on 127.0.0.1 serving the fixed bodies the benchmarks fetch.

The HTTP benchmarks measure clients against a server that is not ours, so that a
fast result cannot come from a server tuned for our own client. This module
starts ``nginx`` from Debian with a private prefix and configuration in a
temporary directory (nothing under ``/etc`` is read or written), on a free port,
in the foreground (``daemon off``) with a single worker and no master process,
optionally pinned to one CPU with ``taskset``, and stops it on exit.

Endpoints (every response is ``200``, keep-alive, no compression):

``/100b``, ``/1k``, ``/64k``, ``/1m``
    static files of 100 B, 1 KiB, 64 KiB and 1 MiB, sent with ``Content-Length``.
``/status``
    nginx's ``stub_status`` counters; :meth:`NginxServer.accepted` reads the
    number of connections accepted so far (on every port).
``/chunked``
    the 64 KiB file sent with ``Transfer-Encoding: chunked``, as 16 chunks of
    4 KiB. nginx has no switch that forces chunked framing for a static file;
    appending an (empty) subrequest with ``add_after_body`` makes the length
    unknown when the head is sent, so nginx drops ``Content-Length`` and, for an
    HTTP/1.1 client, frames the body as chunks. The body bytes are unchanged.
    (A ``sub_filter`` does the same but scans every byte, making nginx the
    bottleneck at under half the rate.)

``ports=N`` makes the one server listen on N ports of 127.0.0.1 (each port is
an origin to a client: the many-origins benchmarks); ``keepalive_requests=1``
makes nginx close every connection after one response (the new-connection
benchmarks). nginx's descriptor limit and ``worker_connections`` are sized
for the listening sockets plus ``max_clients`` connections.

Run ``python benchmarks/_nginx.py`` to start one by hand and print its URLs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from types import TracebackType

__all__ = ["BODIES", "NginxServer", "nginx_available"]

# Path -> size of the body nginx serves there.
BODIES: dict[str, int] = {
    "/100b": 100,
    "/1k": 1024,
    "/64k": 64 * 1024,
    "/1m": 1024 * 1024,
    "/chunked": 64 * 1024,
}

_FILES: dict[str, int] = {"empty": 0, "100b": 100, "1k": 1024, "64k": 64 * 1024, "1m": 1024 * 1024}

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

worker_rlimit_nofile {rlimit};

events {{
    worker_connections {worker_connections};
    multi_accept on;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    gzip off;
    etag off;
    server_tokens off;
    # Benchmarks run many requests on one connection: never make a client
    # reconnect (unless a benchmark asks for a new connection per request).
    keepalive_requests {keepalive_requests};
    keepalive_timeout 300s;

    server {{
{listen}
        root {prefix}/www;

        # Server-side counters (connections accepted, requests), for
        # benchmarks that count connections opened by a contestant.
        location = /status {{
            stub_status;
        }}

        location = /chunked {{
            alias {prefix}/www/64k;
            # Appending an empty subrequest makes the length unknown in advance,
            # so nginx drops Content-Length and frames the body as chunked.
            add_after_body /empty;
            addition_types *;
            # Read the file in 4 KiB pieces: the body goes out as 16 chunks.
            sendfile off;
            output_buffers 2 4k;
        }}
    }}
}}
"""


def nginx_available() -> bool:
    """Return True when an ``nginx`` binary is on PATH."""
    return shutil.which("nginx") is not None


def _free_ports(n: int) -> list[int]:
    # Held open together so that the n ports are distinct.
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _body(size: int) -> bytes:
    # Printable, non-repeating at short range: a body that looks like data, not padding.
    line = b"".join(
        b"%05d abcdefghijklmnopqrstuvwxyz0123456789\n" % i for i in range(size // 40 + 2)
    )
    return line[:size]


class NginxServer:
    """Start nginx on 127.0.0.1 with a temporary prefix; stop it on exit.

    ``cpus`` pins the server with ``taskset -c`` (for example ``"1"``) so that
    it does not compete with the client under test for the same core.
    """

    def __init__(
        self,
        *,
        cpus: str | None = None,
        startup_timeout: float = 10.0,
        ports: int = 1,
        keepalive_requests: int = 100_000_000,
        max_clients: int = 4096,
    ) -> None:
        self.cpus = cpus
        self.startup_timeout = startup_timeout
        self.n_ports = ports
        self.keepalive_requests = keepalive_requests
        self.max_clients = max_clients
        self.port = 0
        self.ports: list[int] = []
        self.prefix = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def urls(self, path: str) -> list[str]:
        """``path`` at every port: one URL per origin."""
        return [f"http://127.0.0.1:{port}{path}" for port in self.ports]

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> NginxServer:
        nginx = shutil.which("nginx")
        if nginx is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self._tmp = tempfile.TemporaryDirectory(prefix="asyncnet-bench-nginx-")
        self.prefix = self._tmp.name
        os.makedirs(os.path.join(self.prefix, "www"))
        os.makedirs(os.path.join(self.prefix, "tmp"))
        for name, size in _FILES.items():
            with open(os.path.join(self.prefix, "www", name), "wb") as f:
                f.write(_body(size))
        conf = os.path.join(self.prefix, "nginx.conf")
        # A port picked as free can be taken before nginx binds it: retry a few times.
        for _attempt in range(5):
            self.ports = _free_ports(self.n_ports)
            self.port = self.ports[0]
            # Every listening socket takes a connection slot and a descriptor.
            slots = self.n_ports + self.max_clients + 64
            listen = "\n".join(
                f"        listen 127.0.0.1:{port} reuseport backlog=4096;" for port in self.ports
            )
            with open(conf, "w") as f:
                f.write(
                    _CONFIG.format(
                        prefix=self.prefix,
                        listen=listen,
                        worker_connections=slots,
                        rlimit=2 * slots,
                        keepalive_requests=self.keepalive_requests,
                    )
                )
            argv: list[str] = [nginx, "-p", self.prefix, "-c", conf, "-e", "stderr"]
            if self.cpus is not None and shutil.which("taskset"):
                argv = ["taskset", "-c", self.cpus, *argv]
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if self._wait_ready():
                return self
            self._kill()
        self.stop()
        raise RuntimeError("nginx did not start; see its error output above")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read() if self._proc.stderr else b""
                sys.stderr.write(err.decode(errors="replace"))
                return False
            try:
                with urllib.request.urlopen(self.url("/100b"), timeout=1.0) as resp:
                    if resp.read() == _body(100):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def check(self) -> None:
        """Fetch every endpoint once and check the bodies and framing."""
        for path, size in BODIES.items():
            with urllib.request.urlopen(self.url(path), timeout=5.0) as resp:
                body = resp.read()
                chunked = resp.headers.get("Transfer-Encoding", "") == "chunked"
            if len(body) != size or body != _body(size):
                raise RuntimeError(f"nginx served {len(body)} bytes at {path}, expected {size}")
            if chunked != (path == "/chunked"):
                raise RuntimeError(f"unexpected framing at {path}: chunked={chunked}")

    def accepted(self) -> int:
        """Connections nginx has accepted so far, on all ports (this query's excluded)."""
        with urllib.request.urlopen(self.url("/status"), timeout=5.0) as resp:
            lines = resp.read().decode().splitlines()
        # "Active connections: N", "server accepts handled requests", "A H R", ...
        return int(lines[2].split()[0]) - 1

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def stop(self) -> None:
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", help="pin nginx with taskset -c CPUS")
    parser.add_argument("--ports", type=int, default=1, help="listen on this many ports")
    args = parser.parse_args(argv)
    with NginxServer(cpus=args.cpus, ports=args.ports) as server:
        server.check()
        for path, size in BODIES.items():
            print(f"{server.url(path)}  ({size} bytes)")
        print("Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
