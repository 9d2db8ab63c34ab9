"""The ``demo`` subcommand: everything asyncnet is for, on loopback, in a few seconds.

Part one pushes a few MiB through the echo server to a client that reads
slowly on purpose and shows that the server paused instead of buffering.
Part two serves fast, slow, chunked, gzip, redirecting and failing endpoints
from an in-process :mod:`http.server` and fetches a few dozen URLs from it
under a concurrency limit, showing the overlap, the limit held (counted by the
server), and that a timeout and a dead port stayed local to their URLs.
Each claim printed is checked; the exit status is 1 if one does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._echo import start_echo_server
from .._errors import ConnectError, ConnectionClosed
from .._errors import TimeoutError as AsyncNetTimeoutError
from .._fetch import FetchResult, fetch_all
from .._flow import FlowControlProtocol
from .._http._models import Timeout
from ._demo_server import DemoHTTPServer

__all__ = ["add_parser", "run", "run_demo"]

# Part one: how much to push, the server's write high-water mark, and how the
# client reads: PAUSE_EVERY bytes, then a nap. The kernel's socket buffers on
# both ends are made small, as on a busy link, so that they cannot absorb the
# whole transfer and hide the backpressure from the server.
ECHO_TOTAL = 4 * 1024 * 1024
ECHO_HIGH_WATER = 64 * 1024
ECHO_CHUNK = 64 * 1024
ECHO_PAUSE_EVERY = 128 * 1024
ECHO_NAP = 0.004
ECHO_SOCKET_BUFFER = 32 * 1024

# Part two: the concurrency limit, and a per-request timeout that the slow
# endpoints stay under except for the one meant to hit it.
HTTP_CONCURRENCY = 8
HTTP_TIMEOUT = Timeout(connect=2.0, read=0.5, write=2.0, pool=5.0, total=None)
SLOW_DELAY = 0.2
STUCK_DELAY = 5.0


# Narrow terminals still get sentences, not a word per line; wide ones get
# lines short enough to read.
_MIN_WIDTH = 40
_MAX_WIDTH = 100


def terminal_width() -> int:
    """Columns to wrap the narration to: the terminal's (or $COLUMNS, or 80), within bounds."""
    columns = shutil.get_terminal_size((80, 24)).columns
    return max(_MIN_WIDTH, min(_MAX_WIDTH, columns - 1))


class _Printer:
    """Prints the demo's narration wrapped to ``width``; ``check`` records whether each claim held.

    A line wrapped under an indented item continues two columns deeper than
    the item, so a figure and its sentence still read as one item.
    """

    def __init__(self, out: TextIO, width: int = 80) -> None:
        self.out = out
        self.width = width
        self.failures: list[str] = []

    def say(self, text: str = "", *, wrap: bool = True) -> None:
        if not wrap:  # a table row: its columns only line up unbroken
            print(text, file=self.out, flush=True)
            return
        body = text.lstrip(" ")
        indent = text[: len(text) - len(body)]
        if body.startswith("["):  # "[ok] claim": continue under the claim
            hang = indent + " " * (body.index("]") + 2)
        else:
            hang = indent + ("  " if indent else "")
        wrapped = textwrap.fill(
            body,
            width=self.width,
            initial_indent=indent,
            subsequent_indent=hang,
            break_long_words=False,
            break_on_hyphens=False,
        )
        print(wrapped, file=self.out, flush=True)

    def check(self, claim: str, held: bool) -> None:
        self.say(f"  [{'ok' if held else 'FAILED'}] {claim}")
        if not held:
            self.failures.append(claim)


# -- part one: echo with a slow reader ----------------------------------------


class _SlowReader(FlowControlProtocol):
    """Sends ``total`` bytes, awaiting :meth:`drain`, and reads them back slowly.

    It counts the transport's pause/resume calls so the demo can show that
    backpressure reached the producer.
    """

    transport: asyncio.Transport | None

    def __init__(self, total: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.total = total
        self.loop = loop
        self.received = 0
        self.since_nap = 0
        self.pauses = 0
        self.resumes = 0
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)

    def pause_writing(self) -> None:
        self.pauses += 1
        super().pause_writing()

    def resume_writing(self) -> None:
        self.resumes += 1
        super().resume_writing()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.since_nap += len(data)
        assert self.transport is not None
        if self.received >= self.total:
            if not self.done.done():
                self.done.set_result(None)
        elif self.since_nap >= ECHO_PAUSE_EVERY:
            # The deliberately slow part: stop reading for a moment.
            self.since_nap = 0
            self.transport.pause_reading()
            self.loop.call_later(ECHO_NAP, self._wake)

    def _wake(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"echo connection lost: {exc}"))


@dataclass
class _EchoReport:
    seconds: float = 0.0
    bytes_back: int = 0
    client_pauses: int = 0
    client_resumes: int = 0
    server_pauses: int = 0
    peak_paused: int = 0
    max_write_buffer: int = 0


async def _echo_part(p: _Printer) -> _EchoReport:
    p.say("== 1. Flow control: the echo server and a slow reader ==")
    p.say(
        f"An echo server sends back what it receives. The client pushes "
        f"{ECHO_TOTAL // (1024 * 1024)} MiB but reads slowly (a nap every "
        f"{ECHO_PAUSE_EVERY // 1024} KiB). A naive server would buffer everything the "
        f"reader has not taken yet; asyncnet's stops reading from the client when its "
        f"write buffer passes the high-water mark ({ECHO_HIGH_WATER // 1024} KiB) and "
        f"resumes when it drains."
    )
    loop = asyncio.get_running_loop()
    report = _EchoReport()
    async with await start_echo_server("127.0.0.1", 0, high_water=ECHO_HIGH_WATER) as server:
        port = server.sockets[0].getsockname()[1]
        for listening in server.sockets:
            # Accepted sockets inherit the listening socket's buffer size.
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ECHO_SOCKET_BUFFER)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ECHO_SOCKET_BUFFER)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        transport, proto = await loop.create_connection(
            lambda: _SlowReader(ECHO_TOTAL, loop), sock=sock
        )
        watching = True

        async def watch() -> None:
            # Sample the server's counters while the transfer runs.
            while watching:
                stats = server.statistics()
                report.peak_paused = max(report.peak_paused, stats.paused_connections)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        try:
            chunk = b"x" * ECHO_CHUNK
            sent = 0
            while sent < ECHO_TOTAL:
                try:
                    await proto.drain()
                except ConnectionClosed:
                    break  # proto.done holds the error
                if transport.is_closing():
                    break
                transport.write(chunk)
                sent += len(chunk)
            async with asyncio.timeout(30):
                await proto.done
        finally:
            watching = False
            await watcher
            transport.close()
        report.seconds = time.perf_counter() - started
        stats = server.statistics()
    report.bytes_back = proto.received
    report.client_pauses = proto.pauses
    report.client_resumes = proto.resumes
    report.server_pauses = stats.write_pauses
    report.max_write_buffer = stats.max_write_buffer
    mib = report.bytes_back / (1024 * 1024)
    p.say(
        f"  echoed {mib:.1f} MiB in {report.seconds:.2f} s; the server paused reading "
        f"{report.server_pauses} times (at most {report.peak_paused} connection paused at "
        f"once); its largest write buffer was {report.max_write_buffer // 1024} KiB."
    )
    if report.client_pauses:
        p.say(
            f"  the client's own writes were paused {report.client_pauses} time(s) and "
            f"resumed {report.client_resumes} time(s): backpressure travelled all the "
            f"way back to the producer."
        )
    else:
        p.say("  the client's own writes never had to pause: its kernel buffer absorbed them.")
    p.check("every byte came back", report.bytes_back == ECHO_TOTAL)
    p.check("the server paused instead of buffering", report.server_pauses > 0)
    # One read can land on top of a buffer just under the mark, so the bound
    # is the high-water mark plus one read (asyncio reads up to 256 KiB).
    bound = ECHO_HIGH_WATER + 256 * 1024
    p.check(
        f"the server's buffer stayed bounded ({report.max_write_buffer // 1024} KiB "
        f"<= {bound // 1024} KiB, while {ECHO_TOTAL // 1024} KiB went through)",
        report.max_write_buffer <= bound,
    )
    p.say(
        f"  Why {bound // 1024} KiB: the server stops reading once its write buffer is above "
        f"the {ECHO_HIGH_WATER // 1024} KiB high-water mark, but the read that took it "
        f"there (up to {(bound - ECHO_HIGH_WATER) // 1024} KiB, asyncio's read size) is "
        f"already in. So one connection holds at most high water plus one read, however "
        f"much the client sends; a server without flow control would have held whatever "
        f"the reader had not taken yet, up to all {ECHO_TOTAL // 1024} KiB."
    )
    return report


# -- part two: many URLs under a concurrency limit -----------------------------


def _demo_urls(server: DemoHTTPServer, dead_port: int) -> list[tuple[str, str]]:
    """The URLs to fetch, each with a word on what it is."""
    urls: list[tuple[str, str]] = []
    for i in range(16):
        urls.append(("fast", server.url(f"/fast?size={1024 * (i + 1)}")))
    for _ in range(8):
        urls.append(("slow", server.url(f"/slow?delay={SLOW_DELAY}&size=2048")))
    for _ in range(3):
        urls.append(("chunked", server.url("/chunked?chunks=8&size=4096")))
    for _ in range(3):
        urls.append(("gzip", server.url("/gzip?size=65536")))
    for _ in range(3):
        urls.append(("redirect", server.url("/redirect?n=3")))
    urls.append(("stuck", server.url(f"/slow?delay={STUCK_DELAY}")))
    urls.append(("dead port", f"http://127.0.0.1:{dead_port}/"))
    return urls


def _free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _HTTPReport:
    results: list[FetchResult] = field(default_factory=list)
    wall: float = 0.0
    peak_in_flight: int = 0


def _describe(result: FetchResult) -> str:
    if result.error is not None:
        return f"{type(result.error).__name__}"
    return f"{result.status}, {len(result.body)} bytes"


async def _http_part(p: _Printer) -> _HTTPReport:
    p.say()
    p.say("== 2. Fetching many URLs at once, under a limit ==")
    report = _HTTPReport()
    with DemoHTTPServer() as server:
        named = _demo_urls(server, _free_port())
        kinds = sorted({kind for kind, _ in named})
        p.say(
            f"A local HTTP server (standard library, in a thread) serves "
            f"{', '.join(kinds)} endpoints. fetch_all() gets {len(named)} URLs with "
            f"concurrency={HTTP_CONCURRENCY} and a {HTTP_TIMEOUT.read} s read timeout; "
            f"the server counts how many requests it is serving at once."
        )
        started = time.perf_counter()
        report.results = await fetch_all(
            [url for _, url in named], concurrency=HTTP_CONCURRENCY, timeout=HTTP_TIMEOUT
        )
        report.wall = time.perf_counter() - started
        report.peak_in_flight = server.counters().peak_in_flight

    by_kind: dict[str, list[FetchResult]] = {}
    for (kind, _), result in zip(named, report.results, strict=True):
        by_kind.setdefault(kind, []).append(result)
    for kind in ("fast", "slow", "chunked", "gzip", "redirect", "stuck", "dead port"):
        results = by_kind[kind]
        ok = sum(r.ok for r in results)
        p.say(
            f"  {kind:<9} {len(results):>2} URLs, {ok:>2} ok   e.g. {_describe(results[0])}"
            f" in {results[0].elapsed:.3f} s",
            wrap=False,
        )

    total = sum(r.elapsed for r in report.results)
    p.say(
        f"  sum of the {len(report.results)} individual times: {total:.2f} s; wall time: "
        f"{report.wall:.2f} s ({total / report.wall:.1f}x overlap)."
    )
    p.check("the requests overlapped (wall time well under the sum)", report.wall < total / 2)
    p.check(
        f"the limit held: at most {report.peak_in_flight} requests in flight at the server "
        f"(limit {HTTP_CONCURRENCY})",
        report.peak_in_flight <= HTTP_CONCURRENCY,
    )
    stuck = by_kind["stuck"][0]
    p.check(
        f"the stuck URL hit its timeout after {stuck.elapsed:.2f} s "
        f"({type(stuck.error).__name__})",
        isinstance(stuck.error, AsyncNetTimeoutError),
    )
    dead = by_kind["dead port"][0]
    p.check(
        f"the dead port gave a connection error ({type(dead.error).__name__})",
        isinstance(dead.error, ConnectError),
    )
    others = [r for kind, rs in by_kind.items() if kind not in ("stuck", "dead port") for r in rs]
    p.check(
        f"nothing else was disturbed: {sum(r.ok for r in others)} of {len(others)} other "
        f"URLs ok",
        all(r.ok for r in others),
    )
    return report


async def run_demo(out: TextIO, width: int = 80) -> int:
    """Run both parts, narrating to ``out`` in lines of ``width``; 0 when every claim held."""
    p = _Printer(out, width)
    started = time.perf_counter()
    echo = await _echo_part(p)
    http = await _http_part(p)
    wall = time.perf_counter() - started
    p.say()
    p.say("== Summary ==")
    p.say(
        f"  echo: {echo.bytes_back / (1024 * 1024):.1f} MiB through a slow reader, "
        f"{echo.server_pauses} server pauses, buffer peak {echo.max_write_buffer // 1024} KiB."
    )
    ok = sum(r.ok for r in http.results)
    p.say(
        f"  http: {ok}/{len(http.results)} URLs ok in {http.wall:.2f} s at concurrency "
        f"{HTTP_CONCURRENCY} (peak {http.peak_in_flight} at the server); the two failures "
        f"were the ones meant to fail."
    )
    if p.failures:
        p.say(f"  {len(p.failures)} claim(s) did NOT hold: " + "; ".join(p.failures))
        return 1
    p.say(f"  every claim held; demo finished in {wall:.2f} s, all on 127.0.0.1.")
    _next_steps(p)
    return 0


def _next_steps(p: _Printer) -> None:
    p.say()
    p.say("== Where to go next ==")
    for command, what in (
        ("python -m asyncnet --help", "every command: fetch, echo-server, echo-client, demo"),
        ("python -m asyncnet fetch --help", "fetch your own URLs, as a table or JSON lines"),
        ("python -m asyncnet echo-server --help", "run the flow-controlled echo server"),
    ):
        p.say(f"  {command}", wrap=False)
        p.say(f"      {what}")
    p.say(
        "  The documentation (docs/ in the source tree; start with quickstart.rst) shows "
        "the same things as code: fetch_all() and HTTPClient, a protocol server in a few "
        "lines, and how the flow control above works."
    )


def run(args: argparse.Namespace) -> int:
    """Run ``demo``; returns its exit status."""
    return asyncio.run(run_demo(sys.stdout, terminal_width()))


def add_parser(subparsers: Any) -> None:
    """Register ``demo`` on the top-level parser's subcommands."""
    parser = subparsers.add_parser(
        "demo",
        help="run a self-explaining tour of asyncnet on loopback (no network)",
        description=(
            "Start an echo server and a local HTTP server on loopback (127.0.0.1; "
            "no network needed), push data "
            "through a slow reader, fetch a few dozen URLs under a concurrency "
            "limit, and explain what happened. Takes a few seconds; exits 0 when "
            "every claim it prints held."
        ),
    )
    parser.set_defaults(run=run)
