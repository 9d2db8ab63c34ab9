"""A scripted HTTP/1.1 server for the scale benchmarks, one process, controlled through stdin.

``python benchmarks/_hold_server.py [options]`` listens on ``--ports`` ports
of 127.0.0.1 (each port an origin to a client) and answers every request
(any method, no body expected) with a 100-byte ``200`` keep-alive response:

* ``--hold S`` holds each response ``S`` seconds before sending it (the
  in-flight benchmark: 10,000 requests waiting at once);
* ``--close-after K`` ends each connection after ``K`` responses (the
  last one says ``Connection: close``), so that connections keep being
  opened and closed over a long run;
* ``--reset-fraction F`` picks that fraction of connections, at random
  (``--seed``), to be reset (RST) in the middle of one of their responses,
  after its head and half its body: the soak's scripted failure.

It prints ``ports P1 P2 ...`` once it accepts. Each line ``stats`` on stdin
is answered with one JSON line (connections accepted, requests answered,
connections reset, peak RSS in KiB); EOF on stdin stops it. The soft
``RLIMIT_NOFILE`` is raised to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import socket
import struct
import sys

BODY = b"x" * 99 + b"\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n"
KEEP = HEAD + b"\r\n" + BODY
CLOSE = HEAD + b"Connection: close\r\n\r\n" + BODY
# The point at which a reset connection stops: the head and half the body.
CUT = len(HEAD) + 2 + len(BODY) // 2


class Counters:
    def __init__(self) -> None:
        self.accepted = 0
        self.requests = 0
        self.resets = 0


class Held(asyncio.Protocol):
    """One connection: a response per request head, held, closed or cut as scripted."""

    def __init__(self, args: argparse.Namespace, counters: Counters, rng: random.Random) -> None:
        self.args = args
        self.counters = counters
        self.loop = asyncio.get_running_loop()
        self.buffer = b""
        self.answered = 0
        self.transport: asyncio.Transport | None = None
        limit = args.close_after or 100
        # A connection picked for a reset is cut in one of its responses.
        self.reset_at = rng.randrange(1, limit + 1) if rng.random() < args.reset_fraction else 0
        self.timers: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.counters.accepted += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 4 :]
            self.answered += 1
            n = self.answered
            if self.args.hold > 0:
                self.timers.append(self.loop.call_later(self.args.hold, self.respond, n))
            else:
                self.respond(n)

    def respond(self, n: int) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.counters.requests += 1
        if n == self.reset_at:
            transport.write(KEEP[:CUT])
            self.counters.resets += 1
            # SO_LINGER 0 makes close() send an RST instead of a FIN.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.loop.call_soon(transport.abort)
            return
        last = self.args.close_after and n >= self.args.close_after
        transport.write(CLOSE if last else KEEP)
        if last:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for timer in self.timers:
            timer.cancel()


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    counters = Counters()
    rng = random.Random(args.seed)
    servers = []
    for _ in range(args.ports):
        server = await loop.create_server(
            lambda: Held(args, counters, rng), "127.0.0.1", 0, backlog=args.backlog
        )
        servers.append(server)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print("ports " + " ".join(map(str, ports)), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            stats = {
                "accepted": counters.accepted,
                "requests": counters.requests,
                "resets": counters.resets,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
            print(json.dumps(stats), flush=True)
    for server in servers:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=1)
    parser.add_argument("--hold", type=float, default=0.0, help="seconds each response waits")
    parser.add_argument("--close-after", type=int, default=0, help="responses per connection")
    parser.add_argument("--reset-fraction", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
