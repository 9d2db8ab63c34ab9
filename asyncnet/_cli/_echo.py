"""The ``echo-server`` and ``echo-client`` subcommands of ``python -m asyncnet``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .._echo import EchoServer, open_echo_client, start_echo_server
from .._errors import AsyncNetError
from .._flow import DEFAULT_HIGH
from .._text import escape
from ._args import port_number, positive_float, positive_int
from ._progress import plural

__all__ = ["add_parser", "parse_size"]

DEFAULT_PORT = 7007
_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """Parse a byte count such as ``4096``, ``64K``, ``10M`` or ``1G`` (binary units)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = value[-1:] if value[-1:] in ("K", "M", "G") else ""
    number = value[: len(value) - len(suffix)]
    try:
        size = int(number) * _SUFFIXES[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a byte count: {text!r} (try 4096, 64K, 10M)"
        ) from None
    if size < 0:
        raise argparse.ArgumentTypeError(f"byte count must not be negative: {text!r}")
    return size


def add_parser(subparsers: Any) -> None:
    """Register ``echo-server`` and ``echo-client``."""
    server = subparsers.add_parser(
        "echo-server",
        help="run a flow-controlled echo server",
        description=(
            "Echo every byte back to its sender. A peer that stops reading is "
            "stopped from sending (the server stops reading from it), so memory "
            "stays bounded. Prints 'listening on HOST:PORT' once accepting; "
            "SIGINT or SIGTERM shuts down gracefully (exit status 0)."
        ),
    )
    server.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    server.add_argument("--unix", metavar="PATH", help="listen on this Unix socket instead")
    server.add_argument(
        "--high-water",
        type=parse_size,
        default=DEFAULT_HIGH,
        metavar="BYTES",
        help=(
            "per-connection write buffer above which reading from the peer pauses; "
            "accepts 64K, 1M... (default: %(default)s)"
        ),
    )
    server.add_argument(
        "--low-water",
        type=parse_size,
        default=None,
        metavar="BYTES",
        help="buffer size at which reading resumes (default: a quarter of --high-water)",
    )
    server.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="close peers that neither send nor read for this long (default: never)",
    )
    server.add_argument(
        "--max-connections",
        type=positive_int,
        default=None,
        metavar="N",
        help="refuse connections beyond this many (default: no limit)",
    )
    server.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="run N server processes sharing the port with SO_REUSEPORT, Linux (default: 1)",
    )
    server.add_argument(
        "--reuse-port",
        action="store_true",
        help="set SO_REUSEPORT so other processes may listen on the same port",
    )
    server.add_argument(
        "--grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on shutdown, how long open connections may take to finish echoing (default: 5)",
    )
    # Internal: set for --workers children, which watch the parent through stdin.
    server.add_argument("--stop-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    server.add_argument("--certfile", help="serve TLS with this certificate chain (PEM)")
    server.add_argument("--keyfile", help="private key for --certfile (PEM)")
    server.set_defaults(run=run_server)

    client = subparsers.add_parser(
        "echo-client",
        help="send data to an echo server and verify every byte comes back",
        description=(
            "Open --concurrency connections; on each, send --count messages of "
            "--size bytes one after another and check every echo. With --bulk, "
            "stream size*count bytes per connection while reading the echo, and "
            "compare byte count and SHA-256. Prints throughput; exits 1 if any "
            "byte differs or a connection fails."
        ),
    )
    client.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    client.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT,
        help="server TCP port (default: %(default)s)",
    )
    client.add_argument("--unix", metavar="PATH", help="connect to this Unix socket instead")
    client.add_argument(
        "--size",
        type=parse_size,
        default=1024,
        metavar="BYTES",
        help="bytes per message, e.g. 1024 or 64K (default: %(default)s)",
    )
    client.add_argument(
        "--count",
        type=positive_int,
        default=1000,
        metavar="N",
        help="messages per connection (default: %(default)s)",
    )
    client.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="C",
        help="parallel connections (default: %(default)s)",
    )
    client.add_argument(
        "--bulk", action="store_true", help="stream size*count bytes instead of round trips"
    )
    client.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting after this long (default: %(default)s)",
    )
    client.add_argument(
        "--tls", action="store_true",
        help="speak TLS, verifying the server's certificate (for echo-server --certfile)",
    )
    client.add_argument(
        "--cafile", metavar="PEM",
        help="trust the certificates in this file instead of the system's (implies --tls)",
    )
    client.add_argument(
        "--insecure", action="store_true",
        help="TLS without checking the certificate or host name: for testing only (implies --tls)",
    )
    client.set_defaults(run=run_client)


# -- TLS files ---------------------------------------------------------------------------


class _BadTLSFiles(Exception):
    """A certificate, key or CA file cannot be used; the message names the file and why."""


def _readable_file(option: str, path: str) -> None:
    if not os.path.exists(path):
        raise _BadTLSFiles(f"{option} {path}: no such file")
    if not os.path.isfile(path):
        raise _BadTLSFiles(f"{option} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise _BadTLSFiles(f"{option} {path}: not readable (permission denied)")


def _holds_private_key(path: str) -> bool:
    """Whether the PEM file at ``path`` contains a private key block (of any type)."""
    try:
        with open(path, "rb") as file:
            return b"PRIVATE KEY-----" in file.read()
    except OSError:
        return False


def _server_ssl_context(certfile: str, keyfile: str | None) -> ssl.SSLContext:
    """The server's TLS context; every failure names the file and says what is wrong with it.

    OpenSSL's own words for these mistakes are "[SSL] PEM lib" or a bare
    "No such file or directory" without the file's name.
    """
    _readable_file("--certfile", certfile)
    if keyfile is not None:
        _readable_file("--keyfile", keyfile)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        if keyfile is None and not _holds_private_key(certfile):
            raise _BadTLSFiles(
                f"--certfile {certfile} holds a certificate but no private key: "
                "give the key with --keyfile"
            ) from exc
        if keyfile is not None and not _holds_private_key(keyfile):
            raise _BadTLSFiles(f"--keyfile {keyfile}: holds no private key") from exc
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise _BadTLSFiles(
                f"--keyfile {keyfile or certfile}: not the private key of the certificate "
                f"in {certfile}"
            ) from exc
        raise _BadTLSFiles(
            f"--certfile {certfile}: cannot load it ({exc.reason or exc}); "
            "expected a PEM certificate chain"
        ) from exc
    return context


def _client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """TLS for ``echo-client`` when ``--tls``, ``--cafile`` or ``--insecure`` asks for it."""
    if not (args.tls or args.cafile or args.insecure):
        return None
    if args.cafile is not None:
        _readable_file("--cafile", args.cafile)
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except ssl.SSLError as exc:
        raise _BadTLSFiles(
            f"--cafile {args.cafile}: holds no usable certificate ({exc.reason or exc})"
        ) from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# -- server ------------------------------------------------------------------------------


class _PathTaken(Exception):
    """``--unix PATH`` belongs to something else: a live server or a file that is no socket."""


def _claim_unix_path(path: str) -> None:
    """Make ``path`` free for a new socket, or raise :class:`_PathTaken` and touch nothing.

    asyncio's ``create_unix_server`` unlinks any socket file at the path
    before binding, even one another server is listening on, which would
    silently steal that server's address. So the path is checked first:
    absent is fine; a socket file is removed only when a connection attempt
    is refused (ECONNREFUSED: a stale file left by a process that died);
    anything else (someone listening, a full backlog, no permission, a
    regular file or directory) is refused and never deleted. A server that
    starts between this check and asyncio's bind is a race this cannot
    close without binding the socket here; the window is one system call.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise _PathTaken(f"{path} exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        # Non-blocking: a listener with a full backlog answers EAGAIN at
        # once instead of making us wait, and it is alive all the same.
        probe.setblocking(False)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            pass  # stale: nobody listens
        except FileNotFoundError:
            return  # removed meanwhile: free
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS):
                raise _PathTaken(f"a server is already listening on {path}") from exc
            raise _PathTaken(f"cannot check the socket {path}: {exc.strerror or exc}") from exc
        else:
            raise _PathTaken(f"a server is already listening on {path}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _socket_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the socket file at ``path``; ``None`` if it is none."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def _release_unix_path(path: str, created: tuple[int, int] | None) -> None:
    """Unlink ``path`` only if it is still the socket file this process created.

    Another server may have replaced it since (after our file was removed by
    hand, say); its socket must survive our shutdown.
    """
    if created is not None and _socket_identity(path) == created:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _describe(server: EchoServer) -> str:
    name = server.sockets[0].getsockname()
    if isinstance(name, str):
        return name
    host, port = name[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.stop_on_stdin_eof:
        stdin_fd = sys.stdin.fileno()

        def on_stdin() -> None:
            if not os.read(stdin_fd, 4096):
                loop.remove_reader(stdin_fd)
                stop.set()

        loop.add_reader(stdin_fd, on_stdin)
    ssl_context = None
    if args.certfile:
        ssl_context = _server_ssl_context(args.certfile, args.keyfile)
    if args.unix:
        _claim_unix_path(args.unix)
        server = await start_echo_server(
            path=args.unix,
            high_water=args.high_water,
            low_water=args.low_water,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            ssl=ssl_context,
        )
    else:
        server = await start_echo_server(
            args.host,
            args.port,
            high_water=args.high_water,
            low_water=args.low_water,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            ssl=ssl_context,
            reuse_port=args.reuse_port,
        )
    # Taken right after binding, so shutdown can tell our file from a successor's.
    created = _socket_identity(args.unix) if args.unix else None
    print(f"listening on {escape(_describe(server))}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.shutdown(args.grace)
        if args.unix:
            # asyncio (before 3.13) leaves the socket file behind; it would
            # block a restart. Removed only while it is still ours.
            _release_unix_path(args.unix, created)
    stats = server.statistics()
    print(
        f"stopped: {stats.total_connections} connections, {stats.bytes_received} bytes "
        f"echoed, {stats.write_pauses} write pauses, {stats.refused_connections} refused, "
        f"{stats.idle_timeouts} idle timeouts",
        file=sys.stderr,
        flush=True,
    )
    return 0


def run_server(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 after a graceful shutdown, 1 if it cannot listen."""
    if args.keyfile and not args.certfile:
        print("echo-server: --keyfile needs --certfile (the certificate it belongs to)",
              file=sys.stderr)
        return 2
    if args.certfile:
        # Checked here, before any worker starts, so a bad file is one message.
        try:
            _server_ssl_context(args.certfile, args.keyfile)
        except _BadTLSFiles as exc:
            print(f"echo-server: {escape(str(exc))}", file=sys.stderr)
            return 2
    if args.workers > 1:
        return _run_workers(args)
    try:
        return asyncio.run(_serve(args))
    except (AsyncNetError, ValueError, OSError, _PathTaken, _BadTLSFiles) as exc:
        print(f"echo-server: {escape(str(exc))}", file=sys.stderr)
        return 1


def _worker_argv(args: argparse.Namespace, port: int) -> list[str]:
    argv = [
        sys.executable, "-m", "asyncnet", "echo-server",
        "--host", args.host, "--port", str(port), "--reuse-port", "--stop-on-stdin-eof",
        "--high-water", str(args.high_water), "--grace", str(args.grace),
    ]  # fmt: skip
    if args.low_water is not None:
        argv += ["--low-water", str(args.low_water)]
    if args.idle_timeout is not None:
        argv += ["--idle-timeout", str(args.idle_timeout)]
    if args.max_connections is not None:
        argv += ["--max-connections", str(args.max_connections)]
    if args.certfile:
        argv += ["--certfile", args.certfile]
    if args.keyfile:
        argv += ["--keyfile", args.keyfile]
    return argv


def _run_workers(args: argparse.Namespace) -> int:
    # Each worker is a whole server process with its own loop; the kernel
    # spreads incoming connections over their listening sockets.
    if args.unix:
        print("echo-server: --workers needs TCP (SO_REUSEPORT), not --unix", file=sys.stderr)
        return 2
    if not hasattr(socket, "SO_REUSEPORT"):
        print("echo-server: --workers needs SO_REUSEPORT, not available here", file=sys.stderr)
        return 2
    port = args.port
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    reservation = socket.socket(family, socket.SOCK_STREAM)
    workers: list[subprocess.Popen[str]] = []
    stopping = False
    signalled: set[int] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        # Exactly one SIGTERM per worker: a second one could land after the
        # worker's loop has removed its handler and kill it mid-exit.
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.pid not in signalled and worker.poll() is None:
                signalled.add(worker.pid)
                worker.send_signal(signal.SIGTERM)

    old_handlers = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Reserve the port (bound, never listening, so it takes no
        # connections) so that every worker binds the same one even for --port 0.
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            reservation.bind((args.host, port))
        except OSError as exc:
            print(f"echo-server: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
            return 1
        port = reservation.getsockname()[1]
        env = dict(os.environ)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    _worker_argv(args, port),
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                    # The worker stops when this pipe closes, so workers never
                    # outlive the parent, however it ends.
                    stdin=subprocess.PIPE,
                    # Own session: a terminal's Ctrl-C reaches only the parent,
                    # which forwards one SIGTERM to each worker.
                    start_new_session=True,
                )
            )
        address = None
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if not line.startswith("listening on "):
                forward(signal.SIGTERM, None)
                print("echo-server: a worker failed to start", file=sys.stderr)
                for w in workers:
                    w.wait()
                return 1
            address = line.removeprefix("listening on ").strip()
        print(f"listening on {address} ({args.workers} workers)", flush=True)
        while not stopping and all(w.poll() is None for w in workers):
            _pause_briefly()
        forward(signal.SIGTERM, None)
        codes = [w.wait() for w in workers]
        return 0 if stopping and all(code == 0 for code in codes) else 1
    finally:
        reservation.close()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    pipe.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def _pause_briefly() -> None:
    # signal.pause() would miss a worker that dies on its own; a short sleep
    # (interrupted early by our signal handlers) checks both.
    time.sleep(0.5)


# -- client ------------------------------------------------------------------------------


@dataclass
class _Progress:
    """What the client has done so far, shared by its connections: the Ctrl-C summary reads it."""

    messages: int = 0
    echoed: int = 0
    mismatches: int = 0


async def _client_connection(
    args: argparse.Namespace, index: int, progress: _Progress, ssl_context: ssl.SSLContext | None
) -> None:
    """Run one connection, counting every echo into ``progress`` as it comes back."""
    kwargs: dict[str, Any] = {"connect_timeout": args.connect_timeout, "ssl": ssl_context}
    if args.unix:
        kwargs["path"] = args.unix
        if ssl_context is not None:
            kwargs["server_hostname"] = args.host
    async with open_echo_client(args.host, args.port, **kwargs) as client:
        if args.bulk:
            result = await client.bulk(args.size * args.count)
            progress.messages += 1
            progress.echoed += result.bytes_received
            progress.mismatches += 0 if result.ok else 1
            return
        base = bytearray(os.urandom(args.size))
        for i in range(args.count):
            if args.size >= 12:
                # Distinct messages: a stale or reordered echo cannot pass as correct.
                base[:12] = index.to_bytes(4, "big") + i.to_bytes(8, "big")
            message = bytes(base)
            reply = await client.echo(message)
            progress.messages += 1
            progress.echoed += len(reply)
            if reply != message:
                progress.mismatches += 1


def _client_summary(
    args: argparse.Namespace, progress: _Progress, connections: int, elapsed: float
) -> str:
    mode = "bulk" if args.bulk else "round trips"
    rate = progress.messages / elapsed if elapsed > 0 else 0.0
    mib = progress.echoed / elapsed / 1024**2 if elapsed > 0 else 0.0
    return (
        f"{mode}: {connections}/{plural(args.concurrency, 'connection')}, "
        f"{plural(progress.messages, 'message')}, "
        f"{plural(progress.echoed, 'byte')} echoed in {elapsed:.3f} s: "
        f"{rate:.0f} msg/s, {mib:.1f} MiB/s"
    )


async def _client(args: argparse.Namespace, ssl_context: ssl.SSLContext | None) -> int:
    progress = _Progress()
    start = time.perf_counter()
    try:
        results = await asyncio.gather(
            *(
                _client_connection(args, i, progress, ssl_context)
                for i in range(args.concurrency)
            ),
            return_exceptions=True,
        )
    except asyncio.CancelledError:
        # Ctrl-C: asyncio.run cancels us, then raises KeyboardInterrupt; one
        # line says how far the run got, instead of a traceback.
        elapsed = time.perf_counter() - start
        print(
            f"echo-client: interrupted after {elapsed:.3f} s: "
            f"{plural(progress.messages, 'message')}, "
            f"{plural(progress.echoed, 'byte')} echoed on "
            f"{plural(args.concurrency, 'connection')}",
            file=sys.stderr,
            flush=True,
        )
        raise
    elapsed = time.perf_counter() - start
    failures = [r for r in results if isinstance(r, BaseException)]
    for exc in failures:
        if not isinstance(exc, Exception):
            raise exc
        print(f"echo-client: connection failed: {escape(str(exc))}", file=sys.stderr)
    print(_client_summary(args, progress, len(results) - len(failures), elapsed))
    if progress.mismatches:
        print(
            f"echo-client: MISMATCH: {progress.mismatches} "
            f"{'echo' if progress.mismatches == 1 else 'echoes'} differed from what was sent"
        )
        return 1
    if failures:
        return 1
    print("verified: every byte came back unchanged")
    return 0


def run_client(args: argparse.Namespace) -> int:
    """Run the client; 0 when every byte came back unchanged, 1 otherwise, 130 after Ctrl-C."""
    try:
        ssl_context = _client_ssl_context(args)
    except _BadTLSFiles as exc:
        print(f"echo-client: {escape(str(exc))}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_client(args, ssl_context))
    except KeyboardInterrupt:
        return 130
