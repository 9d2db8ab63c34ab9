"""Real third-party programs as test peers: proxies (squid, tinyproxy, microsocks) and servers.

Each runs in the foreground with a private configuration in a temporary
directory, listens only on 127.0.0.1 (a free port picked here), and is
stopped by its PID on exit. Tests skip when a binary is missing
(:func:`binary`). Readiness is a condition, never a sleep: a line the
program prints when it listens, or, for programs that print nothing, the
port accepting a connection (polled a bounded number of times).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CERTS",
    "Peer",
    "binary",
    "free_port",
    "microsocks",
    "need",
    "squid",
    "tinyproxy",
    "tmpdir",
]

CERTS = Path(__file__).resolve().parent.parent / "certs"

# How long a program may take to start listening (squid is the slowest,
# about a second on an idle machine; CI shares two cores).
_START_SECONDS = 30.0

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def binary(name: str) -> str | None:
    """The program's path, looking in the sbin directories too (they are not on every PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None


def need(name: str) -> str:
    """The program's path, or skip the test (it is an optional peer, see .ci/run)."""
    path = binary(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def free_port() -> int:
    """A port free on 127.0.0.1 now (the program binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


class Peer:
    """A program started in the foreground: ``with Peer(argv, ...) as peer``.

    ``ready`` is a regular expression the program prints (on stdout or
    stderr) once it listens; without it the port is polled. ``port`` is
    where it listens, ``tmp`` its private directory (world-writable, since
    some programs drop root privileges and must still write there).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        tmp: tempfile.TemporaryDirectory[str],
        ready: str | None = None,
        stop_signal: int = signal.SIGTERM,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.host = "127.0.0.1"
        self._tmp = tmp
        self.tmp = Path(tmp.name)
        self._ready = re.compile(ready) if ready else None
        self._stop_signal = stop_signal
        self._env = env
        self._proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._seen = threading.Event()
        self._reader: threading.Thread | None = None

    def url(self, scheme: str = "http", userinfo: str = "") -> str:
        """The peer's URL, e.g. a proxy URL ``http://user:pw@127.0.0.1:PORT``."""
        return f"{scheme}://{userinfo}{self.host}:{self.port}"

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            if len(self.output) < 10_000:
                self.output.append(line.rstrip("\n"))
            if self._ready is not None and self._ready.search(line):
                self._seen.set()
        self._seen.set()  # the program ended: stop waiting

    def __enter__(self) -> Peer:
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                cwd=self.tmp,
                env=None if self._env is None else {**os.environ, **self._env},
                # Its own process group (numbered by its PID), so that children it
                # forks (socat's per-connection processes, squid's helpers) are
                # stopped with it and cannot hold its output pipe open.
                start_new_session=True,
            )
        except BaseException:
            self._tmp.cleanup()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait_ready()
        except BaseException:
            try:
                self._stop()
            finally:
                self._tmp.cleanup()
            raise
        return self

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + _START_SECONDS
        if self._ready is not None:
            if not self._seen.wait(_START_SECONDS) or proc.poll() is not None:
                raise RuntimeError(self._failure("never said it was ready"))
            # Printed just before the listen() call in some programs.
            while not _port_open(self.port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self._failure("is not listening"))
                self._seen.wait(0.05)
            return
        for _ in range(int(_START_SECONDS / 0.05)):
            if proc.poll() is not None:
                raise RuntimeError(self._failure("exited"))
            if _port_open(self.port):
                return
            # Bounded poll of a condition nothing can signal to us.
            self._seen.wait(0.05)
        raise RuntimeError(self._failure("did not listen in time"))

    def _failure(self, what: str) -> str:
        return f"{self.argv[0]} {what}: " + "\n".join(self.output[-30:])

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(self._stop_signal)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            # What it forked and left behind: its group is ours (see __enter__).
            os.killpg(proc.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(10)
            if self._reader.is_alive():
                raise RuntimeError(f"{self.argv[0]}'s output pipe is still open")
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None

    def __exit__(self, *exc: Any) -> None:
        try:
            self._stop()
        finally:
            self._tmp.cleanup()


def tmpdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A private directory for a program's configuration and files."""
    tmp = tempfile.TemporaryDirectory(prefix=f"asyncnet-{prefix}-")
    # Programs started as root drop to an unprivileged user and still write here.
    os.chmod(tmp.name, 0o777)
    return tmp


def squid() -> Peer:
    """squid as a forward and CONNECT proxy for 127.0.0.1 clients, any port, no cache.

    Debian's default configuration refuses CONNECT to ports but 443 and binds
    3128 on every interface: this one listens on loopback only and allows
    any port, since the test origins are on random ports.
    """
    path = need("squid")
    tmp = tmpdir("squid")
    port = free_port()
    root = Path(tmp.name)
    user = "cache_effective_user proxy\n" if os.geteuid() == 0 else ""
    (root / "squid.conf").write_text(
        f"""http_port 127.0.0.1:{port}
{user}pid_filename {root / "squid.pid"}
cache_log stdio:/dev/stderr
access_log stdio:{root / "access.log"}
cache deny all
cache_mem 4 MB
coredump_dir {root}
netdb_filename none
pinger_enable off
visible_hostname asyncnet-test
shutdown_lifetime 0 seconds
dns_v4_first on
acl to_loopback dst 127.0.0.0/8 ::1
acl CONNECT method CONNECT
http_access allow localhost to_loopback
http_access deny all
"""
    )
    # -N: foreground; -d1: the cache log (to stderr here) at level 1.
    return Peer(
        [path, "-N", "-d", "1", "-f", str(root / "squid.conf")],
        port=port,
        tmp=tmp,
        ready=r"Accepting HTTP Socket connections",
    )


def tinyproxy(user: str = "alice", password: str = "s3cret") -> Peer:
    """tinyproxy on loopback requiring HTTP Basic proxy credentials ``user:password``."""
    path = need("tinyproxy")
    tmp = tmpdir("tinyproxy")
    port = free_port()
    root = Path(tmp.name)
    drop = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    (root / "tinyproxy.conf").write_text(
        f"""Port {port}
Listen 127.0.0.1
{drop}Timeout 30
MaxClients 20
Allow 127.0.0.1
BasicAuth {user} {password}
LogLevel Info
PidFile "{root / "tinyproxy.pid"}"
"""
    )
    return Peer([path, "-d", "-c", str(root / "tinyproxy.conf")], port=port, tmp=tmp)


def microsocks(user: str | None = None, password: str | None = None) -> Peer:
    """microsocks (SOCKS5) on loopback, with user/password authentication when given."""
    path = need("microsocks")
    tmp = tmpdir("microsocks")
    port = free_port()
    argv = [path, "-i", "127.0.0.1", "-p", str(port)]
    if user is not None:
        argv += ["-u", user, "-P", password or ""]
    return Peer(argv, port=port, tmp=tmp)


PeerFactory = Callable[[], Peer]
