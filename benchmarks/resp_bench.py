"""The RESP example under ``redis-benchmark``: requests per second and server CPU per request.

Contestants, each a server process pinned with ``taskset`` to
``--server-cpu`` and running for the whole invocation:

* ``asyncnet``: ``docs/examples/resp_server.py`` (its custom RESP framer
  under a callback-style ``FramedProtocol``);
* ``asyncnet-await``: the same example with ``--await-style``
  (``start_server``, ``async for`` and ``send``);
* ``streams``: the same server written with asyncio streams
  (``benchmarks/_resp_streams.py``: the example's commands and replies,
  streams' ``readline`` / ``readexactly`` / ``drain``);
* ``bare``: a hand-written ``asyncio.Protocol`` with no library
  (``benchmarks/_resp_bare.py``: the same commands and replies, a minimal
  parser, one write per read, no limits and no flow control), the least a
  Python asyncio server does per request: the Python ceiling;
* ``redis-server``: Redis itself (no persistence), the C ceiling.

The load generator is Debian's ``redis-benchmark -t set,get -n N -c 50 -P
P --csv``, pinned to ``--client-cpu``, for ``P`` = 1 (one request in flight
per connection) and 16 (pipelined). For each repetition and pipeline depth
every contestant runs once, in an order that rotates between repetitions.
Reported: median requests per second for SET and GET, the server's CPU time
(from ``/proc/PID/schedstat``) per request, and the load
generator's CPU use over the run (near 100% means it, not the server, set
the pace: "where the load generator bounds both"); then paired ratios (the
median over repetitions of the ratio within one repetition) with issue
15's targets: at least 2x streams pipelined, at least 0.9x redis-server
unpipelined. Nothing is asserted.

Run from the repository root (needs ``redis-benchmark`` and ``redis-server``,
Debian's ``redis-tools`` and ``redis-server``)::

    python benchmarks/resp_bench.py            # -n 200000, 3 repetitions, about 10 minutes
    python benchmarks/resp_bench.py --quick    # -n 20000, 1 repetition
"""

from __future__ import annotations

import argparse
import csv
import io
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
EXAMPLE = os.path.join(REPO_ROOT, "docs", "examples", "resp_server.py")
SCRIPTS = {
    "asyncnet": (EXAMPLE,),
    "asyncnet-await": (EXAMPLE, "--await-style"),
    "streams": (os.path.join(HERE, "_resp_streams.py"),),
    "bare": (os.path.join(HERE, "_resp_bare.py"),),
}
CONTESTANTS = (*SCRIPTS, "redis-server")
TESTS = ("SET", "GET")
TICK = os.sysconf("SC_CLK_TCK")


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpu, *argv]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu(pid: int) -> float:
    """CPU seconds a running server has used (``taskset`` execs, so ``pid`` is the server's).

    From ``/proc/PID/schedstat`` (nanoseconds, of the main thread, which does
    all the work in every contestant), finer than ``/proc/PID/stat``'s clock
    ticks, which are too coarse for a quick run.
    """
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start(name: str, cpu: str | None, workdir: str) -> Server:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    if name == "redis-server":
        port = free_port()
        argv = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, "--logfile", "",
        ]  # fmt: skip
        proc = subprocess.Popen(pinned(cpu, argv), stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        return Server(name, proc, port)
    proc = subprocess.Popen(
        pinned(cpu, [sys.executable, *SCRIPTS[name], "--port", "0"]),
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"{name} did not start")
    return Server(name, proc, int(line.rsplit(":", 1)[1]))


def run_benchmark(
    server: Server, requests: int, pipeline: int, clients: int, cpu: str | None
) -> dict[str, float]:
    """One redis-benchmark run: requests/s per test, server and client CPU per request."""
    argv = [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-t", "set,get",
        "-n", str(requests), "-c", str(clients), "-P", str(pipeline), "--csv",
    ]  # fmt: skip
    server_cpu = process_cpu(server.proc.pid)
    start_time = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(pinned(cpu, argv), stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    wall = time.perf_counter() - start_time
    server_cpu = process_cpu(server.proc.pid) - server_cpu
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"redis-benchmark failed against {server.name}: {errors.strip()}")
    result: dict[str, float] = {}
    for row in csv.reader(io.StringIO(text)):
        if row and row[0] in TESTS:
            result[row[0]] = float(row[1])
    if set(result) != set(TESTS):
        raise RuntimeError(f"unexpected redis-benchmark output against {server.name}: {text!r}")
    total = requests * len(TESTS)
    result["server_cpu"] = server_cpu / total
    result["client_load"] = (usage.ru_utime + usage.ru_stime) / wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=200_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument(
        "--servers", default=",".join(CONTESTANTS),
        help=f"contestants, asyncnet first (default: {','.join(CONTESTANTS)})",
    )  # fmt: skip
    parser.add_argument("--no-redis", action="store_true", help="leave out redis-server")
    parser.add_argument("--quick", action="store_true", help="1 repetition of -n 20000")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.requests = 1, 20_000
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("needs redis-benchmark (Debian: redis-tools)")
    names = args.servers.split(",")
    unknown = set(names) - set(CONTESTANTS)
    if unknown or names[0] != "asyncnet":
        parser.error(f"--servers: asyncnet first, then any of {', '.join(CONTESTANTS[1:])}")
    if "redis-server" in names and (args.no_redis or shutil.which("redis-server") is None):
        if not args.no_redis:
            print("redis-server not installed: no C ceiling")
        names.remove("redis-server")
    pipelines = [int(p) for p in args.pipelines.split(",")]
    version = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; {version.stdout.strip()}")
    print(f"load average {os.getloadavg()}")
    print(
        f"redis-benchmark -t set,get -n {args.requests} -c {args.clients} -P {pipelines}; "
        f"servers on CPU {args.server_cpu}, redis-benchmark on CPU {args.client_cpu}; "
        f"{args.reps} repetitions"
    )
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="resp_bench-") as workdir:
        servers: dict[str, Server] = {}
        try:
            for name in names:
                servers[name] = start(name, args.server_cpu, workdir)
            for rep in range(args.reps):
                for pipeline in pipelines:
                    order = names[rep % len(names) :] + names[: rep % len(names)]
                    for name in order:
                        r = run_benchmark(
                            servers[name], args.requests, pipeline, args.clients,
                            args.client_cpu,
                        )  # fmt: skip
                        results.setdefault((name, pipeline), []).append(r)
                print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    print(f"load average at the end {os.getloadavg()}")

    print()
    print("requests/s SET, GET (median) | server CPU us/request | redis-benchmark CPU use")
    print(f"{'-P':>3}  " + "  ".join(f"{n:>42}" for n in names))
    for pipeline in pipelines:
        cells = []
        for name in names:
            runs = results[(name, pipeline)]
            rates = [statistics.median(r[t] for r in runs) for t in TESTS]
            cpu = statistics.median(r["server_cpu"] for r in runs) * 1e6
            load = statistics.median(r["client_load"] for r in runs)
            cells.append(f"{rates[0]:>8.0f} {rates[1]:>8.0f} | {cpu:>6.2f} us | {load:>4.0%}")
        print(f"{pipeline:>3}  " + "  ".join(f"{c:>42}" for c in cells))

    print()
    print("paired ratios of asyncnet (median over repetitions of the ratio within one)")
    for pipeline in pipelines:
        parts = []
        for other in names[1:]:
            a, b = results[("asyncnet", pipeline)], results[(other, pipeline)]
            rates = [
                statistics.median(x[t] / y[t] for x, y in zip(a, b, strict=True)) for t in TESTS
            ]
            cpu = statistics.median(
                x["server_cpu"] / y["server_cpu"] for x, y in zip(a, b, strict=True)
            )
            target = ""
            if other == "streams" and pipeline > 1:
                met = min(rates) >= 2
                target = f" (target >= 2x: {'met' if met else 'MISSED'})"
            if other == "redis-server" and pipeline == 1:
                met = min(rates) >= 0.9
                target = f" (target >= 0.9x: {'met' if met else 'MISSED'})"
            parts.append(
                f"/{other}: SET {rates[0]:.2f}x GET {rates[1]:.2f}x, CPU/request {cpu:.2f}x"
                + target
            )
        print(f"-P {pipeline:<3} " + "   ".join(parts))


if __name__ == "__main__":
    main()
