"""Where a request's time goes when URLs spread over many origins: waits, not speed.

Counts and per-request phases that do not depend on how busy the machine is:
nginx listens on ``--origins`` ports (pinned to ``--server-cpus``) and one
client process (pinned to ``--client-cpus``) fetches ``--count`` URLs
round-robin over them with ``--concurrency`` workers on one
:class:`asyncnet.HTTPClient` whose limits are the ones ``fetch_all`` sets
(``max_connections`` from the descriptor rule, ``max_per_host`` equal to the
concurrency), each worker calling ``client.request`` as ``fetch_all`` does.

From the trace events (``HTTPClient(trace=...)``, attributed to the worker
task that caused them) each request is split into: waiting for a pool slot
(request start to ``ConnectStart``, or to ``ConnectionReused``), the TCP
connect, the transport's creation, and the server's answer. Printed with
them: connections nginx accepted per request (``stub_status``), the
kernel's SYN retransmissions and listen-queue overflows during the run
(``nstat``; the whole network namespace, so another program's can show up),
the client's CPU time per request and the part of it spent in the cyclic
garbage collector (``gc.callbacks``, per generation), nginx's CPU time per
request (``/proc``), and the client's wall time split into running, waiting
for a CPU (``/proc/self/schedstat``: the machine's other load) and idle
(waiting for the server).

::

    python benchmarks/scale_waits.py --origins 5000 --concurrency 1000 --count 10000
    python benchmarks/scale_waits.py --origins 10 --concurrency 1000 --count 2000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from _harness import asyncnet_env, pinned, stop_on_sigterm
from _nginx import NginxServer

KERNEL = ["TcpExtTCPSynRetrans", "TcpExtListenOverflows", "TcpExtListenDrops", "TcpRetransSegs"]
PHASES = ["wait_new", "connect", "transport", "wait_reuse", "server", "total"]


def kernel_counters() -> dict[str, int]:
    try:
        out = subprocess.run(["nstat", "-az"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return {}
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in KERNEL:
            found[parts[0]] = int(parts[1])
    return found


def schedstat() -> tuple[float, float]:
    """Seconds this process ran on a CPU and waited in a run queue (``/proc/self/schedstat``)."""
    try:
        with open("/proc/self/schedstat") as f:
            ran, waited, _slices = f.read().split()
    except OSError:
        return 0.0, 0.0
    return int(ran) / 1e9, int(waited) / 1e9


def process_cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of another process (``/proc/PID/stat``), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def traced_fetch(urls: list[str], concurrency: int) -> tuple[list[dict[str, float]], Any]:
    import asyncnet
    from asyncnet._fetch._engine import DEFAULT_TIMEOUT
    from asyncnet._fetch._limits import connection_budget as _connection_budget

    current: dict[asyncio.Task[Any] | None, dict[str, float]] = {}
    records: list[dict[str, float]] = []

    def trace(event: Any) -> None:
        record = current.get(asyncio.current_task())
        if record is not None:
            record.setdefault(type(event).__name__, event.time)

    limits = asyncnet.Limits(
        max_connections=_connection_budget(concurrency), max_per_host=concurrency
    )
    todo = iter(urls)
    async with asyncnet.HTTPClient(limits=limits, timeout=DEFAULT_TIMEOUT, trace=trace) as client:

        async def worker() -> None:
            task = asyncio.current_task()
            for url in todo:
                record = current[task] = {"start": time.monotonic()}
                try:
                    response = await client.request("GET", url, timeout=DEFAULT_TIMEOUT)
                    record["ok"] = float(response.status == 200)
                except asyncnet.AsyncNetError:
                    record["ok"] = 0.0
                record["end"] = time.monotonic()
                records.append(record)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(urls)))))
        stats = client.statistics()
    return records, stats


def phases(records: list[dict[str, float]]) -> dict[str, list[float]]:
    def span(a: str, b: str) -> list[float]:
        return [r[b] - r[a] for r in records if a in r and b in r]

    return {
        "wait_new": span("start", "ConnectStart"),
        "connect": span("ConnectStart", "ConnectEnd"),
        "transport": span("ConnectEnd", "ConnectionCreated"),
        "wait_reuse": span("start", "ConnectionReused"),
        "server": span("RequestHeadSent", "ResponseHeadReceived"),
        "total": span("start", "end"),
    }


def child(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.origins_file) as f:
        origins = [line.strip() for line in f if line.strip()]
    urls = [f"{origins[i % len(origins)]}/100b?i={i}" for i in range(args.count)]
    import asyncnet  # noqa: F401 - imported before the clock starts

    gc_time = [0.0, 0.0, 0.0]
    gc_runs = [0, 0, 0]
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.process_time()
        else:
            gc_time[info["generation"]] += time.process_time() - began[0]
            gc_runs[info["generation"]] += 1

    gc.callbacks.append(on_gc)
    cpu0, t0, (ran0, waited0) = cpu_seconds(), time.perf_counter(), schedstat()
    records, stats = asyncio.run(traced_fetch(urls, args.concurrency))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    ran, waited = (b - a for a, b in zip((ran0, waited0), schedstat(), strict=True))
    gc.callbacks.remove(on_gc)
    n = len(urls)
    out = {
        "ok": int(sum(r.get("ok", 0) for r in records)),
        "wall": wall,
        "cpu_us": cpu / n * 1e6,
        "gc_us": sum(gc_time) / n * 1e6,
        "gc_runs": gc_runs,
        "opened": stats.connections_opened,
        # Wall time split: on a CPU, runnable but waiting for one, and idle
        # (waiting for the network or the server).
        "ran_s": ran,
        "runqueue_s": waited,
        "idle_s": max(0.0, wall - ran - waited),
        "phases": {k: sorted(v) for k, v in phases(records).items()},
    }
    print(json.dumps(out))


def show(result: dict[str, Any], count: int) -> None:
    print(
        f"   ok {result['ok']}/{count}  client CPU {result['cpu_us']:.0f} us/request,"
        f" of it GC {result['gc_us']:.0f} (collections per generation {result['gc_runs']})"
    )
    print(
        f"   wall {result['wall']:.2f} s: on CPU {result['ran_s']:.2f}, waiting for a CPU"
        f" {result['runqueue_s']:.2f}, idle {result['idle_s']:.2f};"
        f" nginx CPU {result['server_cpu_us']:.0f} us/request"
    )
    print(
        f"   connections: opened {result['opened']}, nginx accepted"
        f" {result['conns_per_request']:.3f} per request;"
        f" kernel during the run: {result['kernel'] or 'no retransmission or overflow'}"
    )
    print(f"     {'phase':<12}{'requests':>9}{'mean ms':>10}{'p50':>9}{'p99':>9}{'max':>9}")
    for name in PHASES:
        values = result["phases"][name]
        if not values:
            continue
        mean = sum(values) / len(values)
        p50 = values[len(values) // 2]
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        print(
            f"     {name:<12}{len(values):9d}{mean * 1e3:10.2f}{p50 * 1e3:9.2f}"
            f"{p99 * 1e3:9.2f}{values[-1] * 1e3:9.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--origins-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    stop_on_sigterm()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients = args.origins + args.concurrency + 1024
    print(f"scale_waits: {args.count} URLs over {args.origins} origins, concurrency "
          f"{args.concurrency}; load average {os.getloadavg()[0]:.2f}")
    with NginxServer(cpus=args.server_cpus, ports=args.origins, max_clients=clients) as server, \
            tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("".join(u[: -len("/100b")] + "\n" for u in server.urls("/100b")))
        f.flush()
        for rep in range(args.reps):
            argv = [sys.executable, os.path.abspath(__file__), "--child", "--origins-file",
                    f.name, "--count", str(args.count), "--concurrency", str(args.concurrency)]
            accepted, kernel = server.accepted(), kernel_counters()
            server_cpu = process_cpu_seconds(server.pid)
            proc = subprocess.run(
                pinned(argv, args.client_cpus), capture_output=True, text=True,
                env={**os.environ, **asyncnet_env()}, timeout=900, check=False,
            )
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            result["server_cpu_us"] = (
                (process_cpu_seconds(server.pid) - server_cpu) / args.count * 1e6
            )
            result["conns_per_request"] = (server.accepted() - accepted) / args.count
            after = kernel_counters()
            result["kernel"] = {k: after[k] - kernel[k] for k in after if after[k] != kernel[k]}
            print(f"  rep {rep + 1}:")
            show(result, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
