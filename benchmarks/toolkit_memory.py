"""Memory of a framed server under 1,000 hostile clients, against the documented bound.

``docs/protocols.rst`` states what one connection of ``asyncnet.start_server``
may hold in user space::

    receive_limit + one step's frames + max_frame + one read
        + high_water + one frame being sent

This script measures it in the two ways a peer can make a server hold bytes.
For each scenario a fresh server process (``start_server`` with
``Lines()``, default limits, pinned to ``--server-cpu``) is started, and
this process (pinned to ``--client-cpu``) opens ``--clients`` connections
and sends 1 KiB lines on all of them as fast as the server takes them,
never reading a byte:

* ``never read``: the handler echoes every line (``await conn.send(line)``),
  and the clients never read the echoes, so both directions fill: ``send``
  waits on drain, the handler stops taking lines, the queue fills and
  reading pauses;
* ``stuck handler``: the handler never takes a frame (it waits on an event
  that is set only at shutdown), so the receive queue fills and reading
  pauses.

The server's listening socket and the clients use small kernel buffers
(``--sockbuf``), so backpressure reaches user space after kilobytes instead
of the megabytes loopback buffers can hold. Sending stops when no
connection has taken a byte for ``--stall`` seconds. Reported per
scenario: the server's RSS (peak and current) growth over the whole run
and per connection, compared with the bound, the idle cost of a connection
(RSS after connecting, before sending), how many connections had their
reading paused, and the most and the mean bytes a connection held by its
own count (queued frames + partial frame + write buffer).

Run from the repository root::

    python benchmarks/toolkit_memory.py                  # 1,000 clients, about 1 minute
    python benchmarks/toolkit_memory.py --quick          # 100 clients
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import selectors
import socket
import subprocess
import sys
import time

from _echo_servers import answer_stats, process_stats
from echo_pingpong import Server, pinned

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
# The "one read" of the bound: the size of the shared buffer connections read
# into; "one step's frames": a decoding step's wire bytes, and FRAME_COST for
# each of its frames.
sys.path.insert(0, REPO_ROOT)
from asyncnet._connection import DECODE_STEP, FRAME_COST  # noqa: E402
from asyncnet._framed import READ_SIZE  # noqa: E402

LINE = 1024
SCENARIOS = ("never read", "stuck handler")


async def serve(scenario: str, sockbuf: int, receive_limit: int, high_water: int) -> None:
    """The server process: start, print the port and limits, answer ``stats`` lines on stdin."""
    import asyncnet

    connections: list[asyncnet.Connection[bytes]] = []
    release = asyncio.Event()

    async def handler(conn: asyncnet.Connection[bytes]) -> None:
        connections.append(conn)
        try:
            if scenario == "stuck handler":
                await release.wait()
                return
            async for line in conn:
                await conn.send(line)
        finally:
            connections.remove(conn)

    framing = asyncnet.Lines()
    server = await asyncnet.start_server(
        handler,
        framing=framing,
        receive_limit=receive_limit,
        high_water=high_water,
        backlog=4096,
    )
    for sock in server.sockets:
        # Accepted sockets inherit these from the listening socket on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sockbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sockbuf)
    # A line's frame: max_length plus its ending (CRLF at most).
    max_frame = framing.max_length + 2
    step = DECODE_STEP + (DECODE_STEP // (LINE + 1) + 1) * FRAME_COST
    bound = receive_limit + step + max_frame + READ_SIZE + high_water + max_frame
    print(
        json.dumps(
            {
                "port": server.sockets[0].getsockname()[1],
                "receive_limit": receive_limit,
                "step": step,
                "max_frame": max_frame,
                "read": READ_SIZE,
                "high_water": high_water,
                "bound": bound,
            }
        ),
        flush=True,
    )
    def stats() -> dict[str, float]:
        held = []
        paused = 0
        for conn in connections:
            s = conn.statistics()
            held.append(s.queued_bytes + s.partial_bytes + s.write_buffer_size)
            paused += s.reading_paused
        return {
            **process_stats(),
            "connections": len(connections),
            "paused": paused,
            "held_max": max(held, default=0),
            "held_mean": sum(held) / len(held) if held else 0,
            "bytes_received": server.statistics().bytes_received,
        }

    await answer_stats(stats)
    release.set()
    await server.shutdown(0)


class ServerProcess(Server):
    """A server process of this script, driven like ``echo_pingpong.py``'s (``stats``, EOF)."""

    def __init__(self, scenario: str, cpu: str | None, *limits: int) -> None:
        argv = [sys.executable, os.path.abspath(__file__), "_server", scenario]
        argv += [str(n) for n in limits]
        self.proc = subprocess.Popen(
            pinned(cpu, argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": REPO_ROOT},
        )
        assert self.proc.stdout is not None
        self.info: dict[str, int] = json.loads(self.proc.stdout.readline())


def connect_all(port: int, count: int, sockbuf: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sockbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sockbuf)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    return socks


def flood(socks: list[socket.socket], stall: float, limit: float) -> tuple[int, float]:
    """Send lines on every socket until none takes a byte for ``stall`` s; never read."""
    block = (b"x" * (LINE - 1) + b"\n") * 64
    offsets = {sock.fileno(): 0 for sock in socks}
    sent = 0
    start = time.perf_counter()
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_WRITE)
        while time.perf_counter() - start < limit:
            ready = selector.select(stall)
            if not ready:
                break  # nothing taken for `stall` seconds: backpressure everywhere
            for key, _events in ready:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                offset = offsets[key.fd]
                try:
                    n = sock.send(block[offset:])
                except BlockingIOError:
                    continue
                sent += n
                # Keep the stream whole lines: continue where this send stopped.
                offsets[key.fd] = (offset + n) % len(block)
    return sent, time.perf_counter() - start


def kib(n: float) -> str:
    return f"{n / 1024:8.1f} MiB" if n >= 10 * 1024 else f"{n:8.0f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sockbuf", type=int, default=4096, help="SO_SNDBUF/SO_RCVBUF, bytes")
    # The defaults of start_server (docs/protocols.rst), passed explicitly.
    parser.add_argument("--receive-limit", type=int, default=64 * 1024)
    parser.add_argument("--high-water", type=int, default=64 * 1024)
    parser.add_argument("--stall", type=float, default=3.0)
    parser.add_argument("--limit", type=float, default=120.0, help="longest flood, seconds")
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--quick", action="store_true", help="100 clients")
    args = parser.parse_args()
    if args.quick:
        args.clients = 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.clients + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.clients + 100), hard))
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average {os.getloadavg()}")
    print(
        f"{args.clients} clients sending {LINE} B lines, never reading; socket buffers "
        f"{args.sockbuf} B; stall {args.stall}s; server on CPU {args.server_cpu}"
    )
    for scenario in SCENARIOS:
        server = ServerProcess(
            scenario, args.server_cpu, args.sockbuf, args.receive_limit, args.high_water
        )
        socks: list[socket.socket] = []
        try:
            info = server.info
            start = server.stats()
            socks = connect_all(info["port"], args.clients, args.sockbuf)
            deadline = time.monotonic() + 30
            idle = server.stats()
            while idle["connections"] < args.clients and time.monotonic() < deadline:
                time.sleep(0.05)
                idle = server.stats()
            sent, seconds = flood(socks, args.stall, args.limit)
            full = server.stats()
        finally:
            for sock in socks:
                sock.close()
            server.stop()
        n = args.clients
        peak = (full["maxrss_kib"] - start["maxrss_kib"]) * 1024
        now = (full["rss_kib"] - start["rss_kib"]) * 1024
        idle_cost = (idle["rss_kib"] - start["rss_kib"]) * 1024
        bound = info["bound"]
        print()
        print(f"{scenario}: {n} connections")
        print(
            f"  the bound per connection: receive_limit {info['receive_limit']} + one step "
            f"{info['step']} + max_frame {info['max_frame']} + one read {info['read']} "
            f"+ high_water {info['high_water']} "
            f"+ one frame {info['max_frame']} = {bound} B ({bound / 1024:.0f} KiB)"
        )
        print(
            f"  sent by the clients {sent / 1024**2:.1f} MiB in {seconds:.1f}s; "
            f"received by the server {full['bytes_received'] / 1024**2:.1f} MiB; "
            f"reading paused on {int(full['paused'])} of {int(full['connections'])}"
        )
        print(
            f"  RSS growth, peak {kib(peak / 1024)} = {peak / n / 1024:6.1f} KiB a connection "
            f"({peak / n / bound:.2f}x the bound); now {kib(now / 1024)} = "
            f"{now / n / 1024:6.1f} KiB a connection ({now / n / bound:.2f}x)"
        )
        print(f"  idle connections (connected, nothing sent): {idle_cost / n / 1024:.1f} KiB each")
        print(
            f"  bytes a connection holds by its own count: max {full['held_max'] / 1024:.1f} KiB, "
            f"mean {full['held_mean'] / 1024:.1f} KiB"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        asyncio.run(serve(sys.argv[2], *(int(n) for n in sys.argv[3:6])))
    else:
        main()
