"""``fetch --proxy / --no-proxy / --unix-socket`` and the proxy environment, end to end."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with which server it is and the request line it got."""

    protocol_version = "HTTP/1.1"
    lines: list[str]
    name: str

    def do_GET(self) -> None:
        self.lines.append(self.requestline)
        body = f"{self.name}: {self.requestline} Host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def recorder(name: str, unix_path: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """A threaded HTTP server on 127.0.0.1 (or a Unix socket) recording request lines."""
    lines: list[str] = []
    handler = type("Handler", (_Recorder,), {"lines": lines, "name": name})
    server: socketserver.BaseServer
    if unix_path is None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        where = f"127.0.0.1:{server.server_address[1]}"
    else:
        server = socketserver.ThreadingUnixStreamServer(unix_path, handler)
        where = unix_path
    server.daemon_threads = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield where, lines
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def fetch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    base.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "asyncnet", "fetch", "--json", *args],
        capture_output=True, text=True, timeout=60, env=base, check=False,
    )


def test_the_environment_proxy_is_honoured_by_default_and_no_proxy_turns_it_off() -> None:
    with recorder("proxy") as (proxy, via_proxy), recorder("origin") as (origin, direct):
        url = f"http://{origin}/page"
        proc = fetch(url, env={"http_proxy": f"http://{proxy}"})
        assert proc.returncode == 0, proc.stderr
        assert via_proxy == [f"GET {url} HTTP/1.1"] and direct == []
        proc = fetch("--no-proxy", url, env={"http_proxy": f"http://{proxy}"})
        assert proc.returncode == 0, proc.stderr
        assert direct == ["GET /page HTTP/1.1"] and len(via_proxy) == 1
        proc = fetch(url, env={"HTTP_PROXY": f"http://{proxy}", "NO_PROXY": "127.0.0.1"})
        assert proc.returncode == 0, proc.stderr
        assert len(direct) == 2 and len(via_proxy) == 1


def test_proxy_option_wins_over_the_environment() -> None:
    with recorder("proxy") as (proxy, via_proxy), recorder("origin") as (origin, direct):
        proc = fetch("--proxy", f"http://{proxy}", f"http://{origin}/x",
                     env={"http_proxy": "http://127.0.0.1:9"})
        assert proc.returncode == 0, proc.stderr
        assert via_proxy == [f"GET http://{origin}/x HTTP/1.1"] and direct == []


def test_a_bad_proxy_is_a_usage_error_naming_it() -> None:
    proc = fetch("--proxy", "http://proxy:3128\r\nX: y", "http://127.0.0.1:9/")
    assert proc.returncode == 2
    assert "forbidden character" in proc.stderr and "\r" not in proc.stderr
    proc = fetch("http://127.0.0.1:9/", env={"https_proxy": "ftp://proxy"})
    assert proc.returncode == 2 and "https_proxy" in proc.stderr


def test_unix_socket() -> None:
    with tempfile.TemporaryDirectory(prefix="asyncnet-cli-uds-") as tmp:
        path = os.path.join(tmp, "api.sock")
        with recorder("unix", unix_path=path) as (_, lines):
            proc = fetch("--unix-socket", path, "http://localhost/v1.43/info",
                         env={"http_proxy": "http://127.0.0.1:9"})
        assert proc.returncode == 0, proc.stderr
        assert lines == ["GET /v1.43/info HTTP/1.1"]
        assert '"status": 200' in proc.stdout
