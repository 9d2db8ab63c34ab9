"""Echo ping-pong: messages per second and server CPU time per message.

Closed loop: every connection sends a message, reads the whole echo back, and
repeats. The load generator is ``echo_load.c`` (one C process driving all
connections with epoll), compiled here with ``cc -O2`` into a temporary
directory, when ``cc`` exists; otherwise (or with ``--client python``) each
connection is a Python process with a blocking socket. Servers and clients
are separate processes pinned with ``taskset`` to different CPUs (server on
``--server-cpu``, every client on ``--client-cpu``). Every server runs for
the whole invocation; for each repetition, message size and concurrency,
each contestant is measured once, in an order that rotates between
repetitions, so slow drifts in machine load hit all contestants alike.

Reported per contestant: median messages per second over the repetitions,
the server's CPU time (user + system) per message, which is less sensitive
to other load on the machine, and the server's minor page faults per message.
The faults matter: for a plain ``asyncio.Protocol`` asyncio allocates 256 KiB
per ``recv``, which glibc maps and unmaps (faulting in every touched page)
until an earlier large free raises its mmap threshold in that process, so
a long-lived server's cost per message can change in the middle of a run.
``--fresh`` starts a new server process for every measurement, so that every
one starts from the same allocator state. The ratios compare asyncnet with the
bare ``asyncio.Protocol`` echo and with the asyncio streams echo, first as
ratios of the medians, then paired: the median over repetitions of the ratio
within one repetition, whose two runs are seconds apart.

When ``cc`` exists, ``echo_ceiling.c`` joins as the ``C ceiling``: an echo
server with no Python in it, one epoll loop and no allocation per message.
What it reaches is what the kernel, the loopback and the load client allow,
which bounds every ratio a Python server can reach (``--no-ceiling`` leaves
it out). ``--floor`` adds the least a correct ``asyncio.BufferedProtocol``
echo does (``_echo_servers.py buffered``): what asyncnet's way of reading
costs before any flow control or counting. With ``--client python`` the load
clients are Python too; at small sizes they can be the bottleneck, which caps
messages per second for every contestant alike (CPU per message still
separates the servers); the C client does not have that limit.

Run from the repository root::

    python benchmarks/echo_pingpong.py            # about 7 minutes
    python benchmarks/echo_pingpong.py --quick    # one short repetition
    python benchmarks/echo_pingpong.py --fresh    # a new server for every measurement
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
SERVERS_PY = os.path.join(HERE, "_echo_servers.py")
LOAD_C = os.path.join(HERE, "echo_load.c")
CEILING_C = os.path.join(HERE, "echo_ceiling.c")
CEILING = "C ceiling"
FLOOR = "buffered floor"
SHORT = {CEILING: "C", FLOOR: "floor"}
BENCHVENV_PYTHON = os.environ.get("ASYNCNET_BENCH_VENV_PYTHON", "/opt/benchvenv/bin/python")


@dataclass(frozen=True)
class Contestant:
    name: str
    kind: str
    python: str = sys.executable
    uvloop: bool = False
    #: A compiled server to run instead of ``_echo_servers.py KIND``.
    exe: str | None = None


def contestants(with_uvloop: bool, ceiling: str | None, with_floor: bool) -> list[Contestant]:
    found = [
        Contestant("asyncnet", "asyncnet"),
        Contestant("bare Protocol", "bare"),
        Contestant("streams", "streams"),
    ]
    if with_floor:
        found.insert(2, Contestant(FLOOR, "buffered"))
    if ceiling is not None:
        found.append(Contestant(CEILING, "c", exe=ceiling))
    if with_uvloop and os.access(BENCHVENV_PYTHON, os.X_OK):
        probe = subprocess.run(
            [BENCHVENV_PYTHON, "-c", "import uvloop"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            found += [
                Contestant("asyncnet+uvloop", "asyncnet", BENCHVENV_PYTHON, True),
                Contestant("bare+uvloop", "bare", BENCHVENV_PYTHON, True),
            ]
    return found


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpu, *argv]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, e.get("PYTHONPATH")]))
    return e


class Server:
    def __init__(self, contestant: Contestant, cpu: str | None) -> None:
        argv = [contestant.python, SERVERS_PY, contestant.kind]
        if contestant.exe is not None:
            argv = [contestant.exe]
        if contestant.uvloop:
            argv.append("--uvloop")
        self.proc = subprocess.Popen(
            pinned(cpu, argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"{contestant.name} server did not start")
        self.port = int(line.split()[1])

    def stats(self) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        result: dict[str, float] = json.loads(self.proc.stdout.readline())
        return result

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- the load client (a separate process per connection) ----------------------------


def client_main(port: int, size: int, warmup: float, duration: float) -> None:
    """Connect, wait for "go" on stdin, ping-pong; print the count for the window."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(20)
    message = os.urandom(size)
    view = memoryview(bytearray(size))
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration
    counted = 0
    while True:
        sock.sendall(message)
        got = 0
        while got < size:
            n = sock.recv_into(view[got:])
            if not n:
                raise SystemExit("server closed the connection")
            got += n
        now = time.perf_counter()
        if now >= end:
            break
        if now >= measure_from:
            counted += 1
    if bytes(view) != message:
        raise SystemExit("echo mismatch")
    sock.close()
    print(counted, flush=True)


def build_c(directory: str, source: str) -> str | None:
    """Compile *source* with ``cc -O2`` into *directory*; None without a working compiler."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    exe = os.path.join(directory, os.path.splitext(os.path.basename(source))[0])
    done = subprocess.run(
        [cc, "-O2", "-o", exe, source], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"cc failed on {os.path.basename(source)}:\n{done.stderr}", file=sys.stderr)
        return None
    return exe


def build_c_client(directory: str) -> str | None:
    """Compile ``echo_load.c`` into *directory*; None without a working compiler."""
    return build_c(directory, LOAD_C)


def measure_c(
    exe: str, server: Server, size: int, concurrency: int, warmup: float, duration: float,
    cpu: str | None, *, lines: bool = False,
) -> tuple[float, float, float]:  # fmt: skip
    """Like measure(), with one C process driving every connection through epoll.

    With ``lines`` every message is a text line ending in ``\\n`` (for line echoes).
    """
    argv = [exe, str(server.port), str(size), str(concurrency), str(warmup), str(duration)]
    if lines:
        argv.append("lines")
    client = subprocess.Popen(
        pinned(cpu, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            raise RuntimeError("C client failed to start")
        client.stdin.write("go\n")
        client.stdin.flush()
        time.sleep(warmup)
        before = server.stats()
        time.sleep(duration)
        after = server.stats()
        out, _ = client.communicate(timeout=60)
        if client.returncode != 0:
            raise RuntimeError("C client failed")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    fields = out.split()
    if len(fields) != 4 or fields[0] != "messages":
        raise RuntimeError(f"unexpected C client output {out!r}")
    return _result(int(fields[1]), duration, before, after)


def measure(
    server: Server, size: int, concurrency: int, warmup: float, duration: float, cpu: str | None
) -> tuple[float, float, float]:
    """Return (messages per second, server CPU seconds and page faults per message)."""
    clients = [
        subprocess.Popen(
            pinned(
                cpu,
                [
                    sys.executable,
                    __file__,
                    "_client",
                    str(server.port),
                    str(size),
                    str(warmup),
                    str(duration),
                ],
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(concurrency)
    ]
    try:
        for c in clients:
            assert c.stdout is not None
            if c.stdout.readline().strip() != "ready":
                raise RuntimeError("client failed to start")
        for c in clients:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        time.sleep(warmup)
        before = server.stats()
        time.sleep(duration)
        after = server.stats()
        total = 0
        for c in clients:
            out, _ = c.communicate(timeout=60)
            if c.returncode != 0:
                raise RuntimeError("client failed")
            total += int(out.strip())
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    return _result(total, duration, before, after)


def _result(
    total: int, duration: float, before: dict[str, float], after: dict[str, float]
) -> tuple[float, float, float]:
    """(messages per second, server CPU seconds per message, server page faults per message)."""
    if not total:
        return 0.0, float("nan"), float("nan")
    cpu = (after["cpu"] - before["cpu"]) / total
    faults = (after["minflt"] - before["minflt"]) / total
    return total / duration, cpu, faults


def fmt_size(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1024,10240,102400")
    parser.add_argument("--concurrency", default="1,10")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument(
        "--no-ceiling", action="store_true", help="leave out the C echo server (echo_ceiling.c)"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="add the least a correct BufferedProtocol echo does (_echo_servers.py buffered)",
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition of 0.8 s")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start a new server process for every measurement instead of one per "
        "contestant for the whole run",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "c", "python"),
        default="auto",
        help="load generator: the C epoll client (compiled with cc; the default when cc "
        "exists) or one Python blocking-socket process per connection",
    )
    args = parser.parse_args()
    if args.quick:
        args.reps, args.duration, args.warmup = 1, 0.8, 0.2
    sizes = [int(s) for s in args.sizes.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    tmpdir = tempfile.TemporaryDirectory(prefix="echo_load-")
    exe = None if args.client == "python" else build_c_client(tmpdir.name)
    ceiling = None if args.no_ceiling else build_c(tmpdir.name, CEILING_C)
    field = contestants(not args.no_uvloop, ceiling, args.floor)
    if args.client == "c" and exe is None:
        raise SystemExit("--client c needs a working cc")

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average {os.getloadavg()}")
    if exe is not None:
        print("load generator: C client (echo_load.c, cc -O2), one process, epoll, all connections")
    else:
        print("load generator: Python clients, one blocking-socket process per connection")
    print(
        f"server on CPU {args.server_cpu}, clients on CPU {args.client_cpu}; "
        f"{args.reps} reps x {args.duration}s (+{args.warmup}s warm-up)"
    )
    if args.fresh:
        print("a fresh server process for every measurement")
    servers = {} if args.fresh else {c.name: Server(c, args.server_cpu) for c in field}
    results: dict[tuple[str, int, int], list[tuple[float, float, float]]] = {}
    try:
        for rep in range(args.reps):
            for size in sizes:
                for conc in concurrencies:
                    order = field[rep % len(field) :] + field[: rep % len(field)]
                    for c in order:
                        server = Server(c, args.server_cpu) if args.fresh else servers[c.name]
                        try:
                            if exe is not None:
                                r = measure_c(
                                    exe, server, size, conc, args.warmup, args.duration,
                                    args.client_cpu,
                                )  # fmt: skip
                            else:
                                r = measure(
                                    server, size, conc, args.warmup, args.duration,
                                    args.client_cpu,
                                )  # fmt: skip
                        finally:
                            if args.fresh:
                                server.stop()
                        results.setdefault((c.name, size, conc), []).append(r)
            print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        tmpdir.cleanup()
    print(f"load average at the end {os.getloadavg()}")

    names = [c.name for c in field]
    print()
    header = f"{'size':>8} {'conc':>4}  " + "  ".join(f"{n:>22}" for n in names)
    print("messages/s (median) | server CPU us/message (median)")
    print(header)
    for size in sizes:
        for conc in concurrencies:
            cells = []
            for n in names:
                runs = results[(n, size, conc)]
                rate = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs) * 1e6
                cells.append(f"{rate:>10.0f} | {cpu:>7.1f} us")
            print(f"{fmt_size(size):>8} {conc:>4}  " + "  ".join(f"{c:>22}" for c in cells))
    print()
    print("server page faults per message (median)")
    print(f"{'size':>8} {'conc':>4}  " + "  ".join(f"{n:>16}" for n in names))
    for size in sizes:
        for conc in concurrencies:
            faults = [statistics.median(r[2] for r in results[(n, size, conc)]) for n in names]
            print(f"{fmt_size(size):>8} {conc:>4}  " + "  ".join(f"{f:>16.2f}" for f in faults))
    print()
    print(
        "ratios of asyncnet to bare Protocol and to streams: msgs/s (median), "
        "CPU/msg (median; best of reps in brackets, the least disturbed by other load)"
    )
    for size in sizes:
        for conc in concurrencies:

            def med(name: str, i: int, size: int = size, conc: int = conc) -> float:
                return statistics.median(r[i] for r in results[(name, size, conc)])

            def best_cpu(name: str, size: int = size, conc: int = conc) -> float:
                return min(r[1] for r in results[(name, size, conc)])

            a_rate, a_cpu, a_best = med("asyncnet", 0), med("asyncnet", 1), best_cpu("asyncnet")
            parts = []
            for other, label in (("bare Protocol", "bare"), ("streams", "streams")):
                parts.append(
                    f"vs {label}: {a_rate / med(other, 0):5.2f}x msgs/s, "
                    f"{a_cpu / med(other, 1):5.2f}x CPU/msg [{a_best / best_cpu(other):5.2f}x]"
                )
            line = f"{fmt_size(size):>8} {conc:>4}  " + "   ".join(parts)
            if "asyncnet+uvloop" in names:
                u_rate = med("asyncnet+uvloop", 0) / med("bare+uvloop", 0)
                u_cpu = med("asyncnet+uvloop", 1) / med("bare+uvloop", 1)
                line += f"   uvloop asyncnet/bare: {u_rate:5.2f}x msgs/s, {u_cpu:5.2f}x CPU/msg"
            print(line)
    print()
    print(
        "paired ratios (median over repetitions of the ratio within one repetition, "
        "the figure least moved by drifting machine load): msgs/s, CPU/msg"
    )
    for size in sizes:
        for conc in concurrencies:
            parts = []
            pairs = [("asyncnet", "bare Protocol"), ("asyncnet", "streams")]
            if FLOOR in names:
                pairs.insert(1, (FLOOR, "bare Protocol"))
            if CEILING in names:
                pairs.append((CEILING, "streams"))
            for a, b in pairs:
                runs_a, runs_b = results[(a, size, conc)], results[(b, size, conc)]
                rate = statistics.median(x[0] / y[0] for x, y in zip(runs_a, runs_b, strict=True))
                cpu = statistics.median(x[1] / y[1] for x, y in zip(runs_a, runs_b, strict=True))
                label = f"{SHORT.get(a, a)}/{b.split()[0]}"
                parts.append(f"{label}: {rate:5.2f}x msgs/s, {cpu:5.2f}x CPU/msg")
            print(f"{fmt_size(size):>8} {conc:>4}  " + "   ".join(parts))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        client_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
