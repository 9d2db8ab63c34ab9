"""Backpressure memory: a client sends 512 MiB to an echo server and never reads.

For each contestant a fresh server process starts (pinned to ``--server-cpu``);
this script connects once and sends as fast as the server lets it, never
reading a byte of the echo. It stops when everything is sent, or when the
server has accepted nothing more for ``--stall`` seconds (the backpressure
reached the client). Reported: how much the client managed to send, and the
server's peak RSS growth (``ru_maxrss`` after minus before the connection).

A server with flow control stops reading from a peer that does not read, so
its growth stays near its high-water mark plus one read; one without it
holds everything the peer sent in its write buffer.

Run from the repository root::

    python benchmarks/echo_backpressure.py             # about 1 minute
    python benchmarks/echo_backpressure.py --mib 128   # a smaller send
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_pingpong import Server, contestants


def flood(port: int, total: int, stall: float) -> tuple[int, float]:
    """Send up to ``total`` bytes without reading; return (bytes sent, seconds)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    chunk = memoryview(os.urandom(1024 * 1024))
    sent = 0
    start = time.perf_counter()
    try:
        while sent < total:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                break  # nothing accepted for `stall` seconds: the server pushed back
            try:
                sent += sock.send(chunk[: min(len(chunk), total - sent)])
            except BlockingIOError:
                continue
        elapsed = time.perf_counter() - start
    finally:
        sock.close()
    return sent, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="MiB to send (default 512)")
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    total = args.mib * 1024 * 1024
    field = contestants(not args.no_uvloop, None, False)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average {os.getloadavg()}")
    print(f"client sends up to {args.mib} MiB and never reads; stall limit {args.stall}s")
    print()
    print(f"{'server':>18} {'sent by client':>16} {'peak RSS growth':>16} {'seconds':>8}")
    for rep in range(args.reps):
        order = field[rep % len(field) :] + field[: rep % len(field)]
        for c in order:
            server = Server(c, args.server_cpu)
            try:
                before = server.stats()
                sent, elapsed = flood(server.port, total, args.stall)
                # Let the server finish reading what the kernel still holds.
                time.sleep(0.2)
                after = server.stats()
            finally:
                server.stop()
            growth_mib = (after["maxrss_kib"] - before["maxrss_kib"]) / 1024
            print(
                f"{c.name:>18} {sent / 1024**2:>12.1f} MiB {growth_mib:>12.1f} MiB {elapsed:>8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
