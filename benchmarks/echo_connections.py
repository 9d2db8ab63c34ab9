"""Echo server at scale: memory per idle connection, and 1,000 peers that never read.

Each part starts a fresh asyncnet echo server (``_echo_servers.py asyncnet``,
default water marks, pinned to ``--server-cpu``); this script is the client,
pinned to ``--client-cpu``. The soft ``RLIMIT_NOFILE`` is raised to the hard
limit here (the server inherits it). Prints numbers, asserts nothing.

``idle``
    ``--idle`` connections (10,000) opened one after another, each echoing
    one byte once (so the server has surely accepted it and made its
    protocol), then left idle. Memory per connection: the server's RSS
    growth (current RSS, ``/proc/self/statm``) divided by their number.
``flood``
    ``--flooders`` connections (1,000) that all send as fast as the server
    lets them and never read a byte, until for ``--stall`` seconds no
    connection could send anything (the backpressure reached every one).
    Prints the server's RSS growth against the bound the design states
    (docs/flow-control.rst, "The memory bound"): per connection, the write
    buffer holds at most ``high_water`` plus one read (256 KiB), and a
    paused connection may leave one more 256 KiB read buffer with its
    transport; so ``N x (high_water + 2 x 256 KiB)`` in all, and the
    issue's stricter ``N x (high_water + one read)`` is printed too.

::

    python benchmarks/echo_connections.py               # both parts, about 1 minute
    python benchmarks/echo_connections.py --idle 2000 --flooders 200
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from echo_pingpong import Contestant, Server

from asyncnet._echo import READ_SIZE
from asyncnet._flow import DEFAULT_HIGH


def idle_part(args: argparse.Namespace) -> None:
    server = Server(Contestant("asyncnet", "asyncnet"), args.server_cpu)
    socks: list[socket.socket] = []
    try:
        before = server.stats()
        for _ in range(args.idle):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"x")
            if sock.recv(1) != b"x":
                raise RuntimeError("no echo")
            socks.append(sock)
        after = server.stats()
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    growth = after["rss_kib"] - before["rss_kib"]
    print(f"\n== idle: {args.idle} idle connections to the asyncnet echo server ==")
    print(f"   server RSS before {before['rss_kib'] / 1024:.1f} MiB,"
          f" after {after['rss_kib'] / 1024:.1f} MiB")
    print(f"   growth {growth / 1024:.1f} MiB = {growth / args.idle:.2f} KiB per connection")


def flood_part(args: argparse.Namespace) -> None:
    server = Server(Contestant("asyncnet", "asyncnet"), args.server_cpu)
    chunk = memoryview(os.urandom(256 * 1024))
    socks: list[socket.socket] = []
    sent = 0
    try:
        before = server.stats()
        for _ in range(args.flooders):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.setblocking(False)
            socks.append(sock)
        start = time.monotonic()
        last_progress = start
        # Every connection sends whenever it can; bounded by --max-seconds.
        while time.monotonic() - last_progress < args.stall:
            if time.monotonic() - start > args.max_seconds:
                print("   stopped at --max-seconds while still sending", file=sys.stderr)
                break
            progressed = False
            for sock in socks:
                try:
                    n = sock.send(chunk)
                except BlockingIOError:
                    continue
                sent += n
                progressed = progressed or n > 0
            if progressed:
                last_progress = time.monotonic()
            else:
                time.sleep(0.05)
        after = server.stats()
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    n = args.flooders
    growth = after["rss_kib"] - before["rss_kib"]
    peak_growth = after["maxrss_kib"] - before["rss_kib"]
    design = n * (DEFAULT_HIGH + 2 * READ_SIZE) / 1024
    strict = n * (DEFAULT_HIGH + READ_SIZE) / 1024
    print(f"\n== flood: {n} connections that send and never read ==")
    print(f"   sent {sent / 2**20:.0f} MiB in all before every connection stalled")
    print(f"   server RSS growth {growth / 1024:.1f} MiB now, peak {peak_growth / 1024:.1f} MiB")
    print(f"   design bound N x (high {DEFAULT_HIGH // 1024} KiB + 2 reads of"
          f" {READ_SIZE // 1024} KiB) = {design / 1024:.1f} MiB: peak is"
          f" {peak_growth / design:.2f}x of it")
    print(f"   issue's bound N x (high + one read) = {strict / 1024:.1f} MiB: peak is"
          f" {peak_growth / strict:.2f}x of it")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", default="idle,flood")
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--flooders", type=int, default=1_000)
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.client_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    print("echo connections benchmark (benchmarks/echo_connections.py)")
    print("command: python " + " ".join(sys.argv))
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "idle" in args.part:
        idle_part(args)
    if "flood" in args.part:
        flood_part(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
