"""Echo servers for the echo benchmarks, one per process, controlled through stdin.

Run as ``python benchmarks/_echo_servers.py KIND [--uvloop]`` with KIND one of:

* ``asyncnet``: ``asyncnet.start_echo_server`` with its default water marks;
* ``bare``: the smallest possible ``asyncio.Protocol`` echo
  (``data_received -> transport.write``), with no flow control at all;
* ``buffered``: the least a correct ``asyncio.BufferedProtocol`` echo does
  (``get_buffer`` returns one preallocated buffer, ``buffer_updated`` writes
  a view of it back and takes a new buffer if the transport kept any bytes),
  with no flow control and no counters: the floor of asyncnet's design;
* ``streams``: ``asyncio.start_server`` with ``reader.read`` / ``writer.write`` /
  ``await writer.drain()``, the way the asyncio documentation writes an echo.

Line echo servers (``benchmarks/line_echo.py``), each sending back every line
it receives as one write, and the toolkit's ``Raw()`` echoes:

* ``lines-await``: ``asyncnet.start_server`` with ``framing=Lines()`` and
  ``async for line in conn: await conn.send(line)``;
* ``lines-callback``: an ``asyncnet.FramedProtocol`` with ``Lines()`` whose
  ``frame_received`` calls ``send_nowait``, under ``loop.create_server``;
* ``lines-streams``: ``asyncio.start_server`` with ``readline`` / ``write`` /
  ``await writer.drain()``;
* ``lines-bare``: a hand-written ``asyncio.Protocol`` line splitter (a
  ``bytearray`` buffer, each read searched once, each line written back), no
  flow control;
* ``lines-bare-await``: the least an ``await``-style line echo on asyncio
  does, hand-written: a bare ``asyncio.Protocol`` splits lines into a deque
  and wakes its connection's task through a plain Future (one per wait, as
  asyncio streams do), and the task runs ``line = await next_line();
  transport.write(line + b"\n")``, no flow control: the ceiling of the
  ``await`` style, what asyncio's task switch costs whoever writes it;
* ``raw-await`` / ``raw-callback``: the two styles above with ``Raw()``, the
  framing the echo server would use (compare with ``asyncnet``).

The server prints ``port N`` once it accepts on 127.0.0.1. Each line
``stats`` on stdin is answered with one JSON line: the process's CPU time
(user + system, seconds), its minor page faults so far, its peak RSS
(``ru_maxrss``) and current RSS, both in KiB. EOF on stdin stops the server.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def process_stats() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "minflt": usage.ru_minflt,
        "maxrss_kib": usage.ru_maxrss,
        "rss_kib": rss_pages * PAGE_KIB,
    }


class BareEcho(asyncio.Protocol):
    """The baseline: write back whatever arrives, no flow control."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class BufferedEcho(asyncio.BufferedProtocol):
    """The floor for a BufferedProtocol echo: receive in place, write a view back."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.view = memoryview(bytearray(256 * 1024))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        transport = self.transport
        transport.write(self.view[:nbytes])
        if transport.get_write_buffer_size():
            # Some bytes were not sent, and the transport may hold a view of
            # them (asyncio 3.12+, uvloop): leave it this buffer.
            self.view = memoryview(bytearray(256 * 1024))


class BareLines(asyncio.Protocol):
    """The baseline line echo: split by hand, write each line back, no flow control."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        # Search only the new bytes: what was buffered before has no newline.
        start = len(buffer)
        buffer += data
        write = self.transport.write
        begin = 0
        end = buffer.find(b"\n", start)
        while end >= 0:
            write(buffer[begin : end + 1])
            begin = end + 1
            end = buffer.find(b"\n", begin)
        if begin:
            del buffer[:begin]


class BareAwaitLines(asyncio.Protocol):
    """The ceiling of the ``await`` style: a protocol queues lines, a task per connection echoes.

    What every ``await``-style server on asyncio pays and nothing more: a
    Future per wait, set by ``data_received`` (as asyncio streams'
    ``_wakeup_waiter``), and the task's resumption by the loop. No flow
    control, no limits, no counters.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        self.partial = bytearray()
        self.lines: collections.deque[bytes] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.ended = False
        self.task = self.loop.create_task(self.run())

    def data_received(self, data: bytes) -> None:
        partial = self.partial
        if 10 not in data:
            partial += data
            return
        if partial:
            data = bytes(partial) + data
            partial.clear()
        *lines, rest = data.split(b"\n")
        if rest:
            partial += rest
        self.lines.extend(lines)
        self.wake()

    def eof_received(self) -> None:
        self.ended = True
        self.wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def next_line(self) -> bytes:
        lines = self.lines
        while not lines:
            if self.ended:
                raise EOFError
            self.waiter = self.loop.create_future()
            await self.waiter
        return lines.popleft()

    async def run(self) -> None:
        write = self.transport.write
        try:
            while True:
                line = await self.next_line()
                write(line + b"\n")
        except EOFError:
            pass
        finally:
            self.transport.close()


def _streams_echo(lines: bool) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    """The streams echo of the asyncio documentation: by chunks, or by lines (``readline``)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await (reader.readline() if lines else reader.read(65536)):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handler


async def _toolkit_server(kind: str) -> object:
    import asyncnet

    # Lines() frames come without their ending; encoding puts it back.
    framing = asyncnet.Lines() if kind.startswith("lines-") else asyncnet.Raw()
    if kind.endswith("-await"):

        async def handler(conn: asyncnet.Connection[bytes]) -> None:
            async for frame in conn:
                await conn.send(frame)

        return await asyncnet.start_server(handler, "127.0.0.1", 0, framing=framing, backlog=1024)

    class Echo(asyncnet.FramedProtocol[bytes]):
        def frame_received(self, frame: bytes) -> None:
            self.send_nowait(frame)

    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Echo(framing), "127.0.0.1", 0, backlog=1024)


async def answer_stats(stats: Callable[[], dict[str, Any]]) -> None:
    """Answer each ``stats`` line on stdin with ``stats()`` as one JSON line; return at EOF."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    pending = b""

    def on_stdin() -> None:
        nonlocal pending
        data = os.read(0, 4096)
        if not data:
            loop.remove_reader(0)
            done.set()
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip() == b"stats":
                sys.stdout.write(json.dumps(stats()) + "\n")
                sys.stdout.flush()

    loop.add_reader(0, on_stdin)
    await done.wait()


# Servers that are a bare protocol class under loop.create_server.
PROTOCOLS: dict[str, Callable[[], asyncio.BaseProtocol]] = {
    "bare": BareEcho,
    "buffered": BufferedEcho,
    "lines-bare": BareLines,
    "lines-bare-await": BareAwaitLines,
}


async def main(kind: str) -> None:
    loop = asyncio.get_running_loop()
    server: Any
    if kind in ("lines-await", "lines-callback", "raw-await", "raw-callback"):
        server = await _toolkit_server(kind)
    elif kind in PROTOCOLS:
        server = await loop.create_server(PROTOCOLS[kind], "127.0.0.1", 0, backlog=1024)
    elif kind in ("streams", "lines-streams"):
        handler = _streams_echo(lines=kind == "lines-streams")
        server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)
    elif kind == "asyncnet":
        import asyncnet

        server = await asyncnet.start_echo_server("127.0.0.1", 0, backlog=1024)
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    sockets = server.sockets
    print(f"port {sockets[0].getsockname()[1]}", flush=True)
    await answer_stats(process_stats)
    shutdown = getattr(server, "shutdown", None)
    if shutdown is not None:
        await shutdown(0)
    else:
        server.close()


if __name__ == "__main__":
    kind = sys.argv[1]
    if "--uvloop" in sys.argv[2:]:
        import uvloop

        uvloop.install()
    asyncio.run(main(kind))
