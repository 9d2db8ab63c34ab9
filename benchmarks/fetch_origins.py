"""Scale: URLs over many origins, a new connection per request, 10,000 requests in flight.

Three suites (``--suite``, all by default), each contestant in its own
subprocess pinned to ``--client-cpus`` while the server runs pinned to
``--server-cpus``; the order of contestants rotates between repetitions, and
ratios are paired (asyncnet's figure over the other's in the same
repetition, then the median of those ratios). Prints numbers and ratios,
asserts nothing. The soft ``RLIMIT_NOFILE`` is raised to the hard limit in
this process and so in every child (contestants, nginx, the held server).

``origins``
    ``--count`` URLs (nginx ``/100b``) spread round-robin over 1, 10, 500
    and 5,000 origins (one nginx listening on that many ports of 127.0.0.1),
    at concurrency 100 and 1,000. Contestants: asyncnet ``fetch_all``, a
    bare ``HTTPClient`` loop (``asyncnet-loop``: ``max_connections`` set by
    the documented descriptor rule), aiohttp and httpx (one session or
    client, ``gather`` and a ``Semaphore``; see ``_contestants.py``), and
    ``aiohttp-keep``, aiohttp holding every status, headers and body until
    the end as ``fetch_all``'s results do (plain ``aiohttp`` keeps a status
    and a length).
    Columns: requests per second, CPU microseconds per request (getrusage of
    the contestant), connections nginx accepted per request (``stub_status``).
``newconn``
    Every request on a new connection: nginx with ``keepalive_requests 1``,
    one origin, ``--count`` requests at concurrency 100. Adds ``ab`` (Debian
    ``apache2-utils``), the C client and the ceiling; its CPU per request
    comes from ``wait4``.
``inflight``
    ``--inflight`` requests (10,000) at once, ``concurrency`` equal to that,
    against ``_hold_server.py`` holding each response 1 s, on 10 ports (the
    kernel's accept backlog is 4,096 per port here; one port would make
    connections wait for SYN retries, not for the client). Columns: wall
    time and its ratio to the 1 s floor, and memory per request in flight:
    peak RSS growth of the contestant over its RSS after imports, divided
    by the number of requests. The ceilings, for this suite only:
    ``asyncio-bare`` (a minimal ``asyncio.Protocol`` per request, see
    ``_contestants.py``; the least any asyncio client does per new
    connection), the same under uvloop (``asyncio-bare+uvloop``) and ``ab``
    (``--inflight / 10`` at once from each of 10 ``ab`` processes, one per
    port, all pinned to the client CPU; the held server then closes each
    connection after its response, since ``ab`` reads to the end of the
    connection). Columns add the CPU seconds of the held server (from
    ``/proc``), which bounds the wall of every contestant: with 10,000 new
    connections the server's accepts and answers are themselves most of a
    second of Python on its core.

::

    python benchmarks/fetch_origins.py                       # everything, 3 repetitions
    python benchmarks/fetch_origins.py --quick               # 2,000 URLs, 1 repetition
    python benchmarks/fetch_origins.py --suite origins --origins 500 --concurrency 100
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from _harness import (
    BENCHVENV_PYTHON,
    Contestant,
    ContestantFailed,
    asyncnet_env,
    available,
    machine_facts,
    median,
    pinned,
    run_json,
    stop_on_sigterm,
)
from _nginx import BODIES, NginxServer

HERE = os.path.dirname(os.path.abspath(__file__))
HOLD_SERVER_PY = os.path.join(HERE, "_hold_server.py")
# Bytes of one whole keep-alive response of _hold_server.py (head and body),
# which the bare client counts to.
HOLD_RESPONSE_SIZE = 166


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def contestants(names: str | None) -> list[Contestant]:
    found = [
        Contestant("asyncnet", "asyncnet", env=asyncnet_env()),
        Contestant("asyncnet-loop", "asyncnet-loop", env=asyncnet_env()),
        Contestant("aiohttp", "aiohttp", python=BENCHVENV_PYTHON),
        # aiohttp holding every status, headers and body, as fetch_all's results do.
        Contestant("aiohttp-keep", "aiohttp-keep", python=BENCHVENV_PYTHON),
        Contestant("httpx", "httpx", python=BENCHVENV_PYTHON),
    ]
    if names:
        wanted = set(names.split(","))
        found = [c for c in found if c.name in wanted]
    runnable = []
    for c in found:
        probe = Contestant(c.name, c.library.split("-")[0], python=c.python, env=c.env)
        reason = available(probe)
        if reason:
            print(f"skipping {c.name}: {reason}", file=sys.stderr)
        else:
            runnable.append(c)
    return runnable


def spread(
    c: Contestant,
    origins: list[str],
    count: int,
    concurrency: int,
    cpus: str,
    timeout: float,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="asyncnet-origins-") as f:
        f.write("\n".join(origins) + "\n")
        f.flush()
        options = [
            "--origins-file", f.name, "--url", "/100b", "--expect", str(BODIES["/100b"]),
            "--count", str(count), "--concurrency", str(concurrency), *extra,
        ]
        argv = c.argv("spread", options)
        result, rss = run_json(pinned(argv, cpus), env=c.env, timeout=timeout)
    result["maxrss_wait4_kib"] = rss
    return result


def run_ab(url: str, count: int, concurrency: int, cpus: str) -> dict[str, Any]:
    """``ab`` without keep-alive; requests per second and its CPU per request."""
    argv = pinned(["ab", "-q", "-n", str(count), "-c", str(concurrency), url], cpus)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise ContestantFailed("ab: " + " | ".join(text.strip().splitlines()[-3:]))
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "rps": rps,
        "wall": count / rps,
        "ok": count - failed,
        "urls": count,
        "errors": {"failed": failed} if failed else {},
        "cpu_per_request_us": cpu / count * 1e6,
    }


def run_ab_parallel(origins: list[str], count: int, cpus: str) -> dict[str, Any]:
    """``count / len(origins)`` requests at once from one ``ab`` per origin, started together."""
    each = count // len(origins)
    outs: list[Any] = []
    procs = []
    cpu = 0.0
    failed = 0
    complete = 0
    started = time.perf_counter()
    try:
        for origin in origins:
            outs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed in the finally
            argv = ["ab", "-q", "-s", "60", "-n", str(each), "-c", str(each), origin + "/x"]
            procs.append(
                subprocess.Popen(pinned(argv, cpus), stdout=outs[-1], stderr=subprocess.STDOUT)
            )
        for proc, out in zip(procs, outs, strict=True):
            _pid, status, usage = os.wait4(proc.pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
            out.seek(0)
            text = out.read().decode(errors="replace")
            if os.waitstatus_to_exitcode(status) != 0:
                raise ContestantFailed("ab: " + " | ".join(text.strip().splitlines()[-3:]))
            complete += int(re.search(r"Complete requests:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
            failed += int(re.search(r"Failed requests:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    finally:
        for out in outs:
            out.close()
    wall = time.perf_counter() - started
    return {
        "rps": count / wall,
        "wall": wall,
        "ok": complete - failed,
        "urls": each * len(origins),
        "errors": {"failed": failed} if failed else {},
        "cpu_per_request_us": cpu / count * 1e6,
    }


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process, from ``/proc``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HoldServer:
    """``_hold_server.py`` in a pinned subprocess."""

    def __init__(self, cpus: str, ports: int, hold: float, close_after: int = 0) -> None:
        argv = [sys.executable, HOLD_SERVER_PY, "--ports", str(ports), "--hold", str(hold)]
        if close_after:
            argv += ["--close-after", str(close_after)]
        self.proc = subprocess.Popen(
            pinned(argv, cpus), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ports "):
            self.stop()
            raise RuntimeError("the held server did not start")
        self.origins = [f"http://127.0.0.1:{p}" for p in line.split()[1:]]

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def show_row(name: str, runs: list[dict[str, Any]], extra: str = "") -> None:
    if not runs:
        print(f"     {name:<15} no result")
        return
    rps = median([r["rps"] for r in runs])
    cpu = median([r["cpu_per_request_us"] for r in runs])
    ok = min(r["ok"] for r in runs)
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r.get("errors", {}).items():
            errors[k] = max(errors.get(k, 0), v)
    line = f"     {name:<15}{rps:9.0f}{cpu:10.0f}"
    if "conns_per_request" in runs[0]:
        line += f"{median([r['conns_per_request'] for r in runs]):11.3f}"
    line += f"{extra}  ok {ok}/{runs[0]['urls']}"
    if errors:
        line += "  errors " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    print(line)


def paired(results: dict[str, list[dict[str, Any]]], a: str, b: str, key: str) -> str:
    ra, rb = results.get(a, []), results.get(b, [])
    ratios = [x[key] / y[key] for x, y in zip(ra, rb, strict=False) if x[key] and y[key]]
    return f"{median(ratios):5.2f}x" if ratios else "  n/a"


def rotate(who: list[Any], rep: int) -> list[Any]:
    k = rep % len(who) if who else 0
    return who[k:] + who[:k]


def suite_origins(args: argparse.Namespace, who: list[Contestant]) -> None:
    counts = [int(x) for x in args.origins.split(",")]
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    print(f"\n== origins: {args.count} URLs spread round-robin over N origins ==")
    # Room for every contestant's connections: at most one idle per origin
    # plus those in flight.
    clients = max(counts) + max(concurrencies) + 1024
    with NginxServer(cpus=args.server_cpus, ports=max(counts), max_clients=clients) as server:
        server.check()
        all_origins = [u[: -len("/100b")] for u in server.urls("/100b")]
        for n in counts:
            for conc in concurrencies:
                results: dict[str, list[dict[str, Any]]] = {}
                for rep in range(args.reps):
                    for c in rotate(who, rep):
                        before = server.accepted()
                        try:
                            r = spread(c, all_origins[:n], args.count, conc, args.client_cpus, 900)
                        except ContestantFailed as exc:
                            print(f"  {c.name}: FAILED {exc}", file=sys.stderr)
                            continue
                        r["conns_per_request"] = (server.accepted() - before) / r["urls"]
                        results.setdefault(c.name, []).append(r)
                        print(
                            f"  origins={n} c={conc} rep {rep + 1} {c.name:<14}"
                            f" {r['rps']:7.0f} req/s {r['cpu_per_request_us']:5.0f} us CPU/req"
                            f" {r['conns_per_request']:.3f} conn/req"
                            f"  wall {r['wall']:.2f} s = on CPU {r.get('ran_s', 0):.2f}"
                            f" + waiting for a CPU {r.get('runqueue_s', 0):.2f}"
                            f" + idle {r['wall'] - r.get('ran_s', 0) - r.get('runqueue_s', 0):.2f}",
                            file=sys.stderr,
                            flush=True,
                        )
                print(f"\n   origins={n} concurrency={conc}")
                print(f"     {'contestant':<15}{'req/s':>9}{'CPU us':>10}{'conn/req':>11}")
                for c in who:
                    show_row(c.name, results.get(c.name, []))
                for a in ("asyncnet", "asyncnet-loop"):
                    for b in ("aiohttp", "aiohttp-keep", "httpx"):
                        if a in results and b in results:
                            print(
                                f"     {a} / {b}: speed {paired(results, a, b, 'rps')}"
                                f"  CPU/request {paired(results, a, b, 'cpu_per_request_us')}"
                            )
    print("   targets (issue 19): fetch_all >= 1.5x aiohttp's speed at every origin count;")
    print("   fetch_all at 5,000 origins within 2x of itself at 1 origin after the connection")
    print("   setup the spread forces (compare CPU/request with the newconn suite's).")


def suite_newconn(args: argparse.Namespace, who: list[Contestant]) -> None:
    conc = 100
    print(f"\n== newconn: {args.count} requests, each on a new connection, concurrency {conc} ==")
    results: dict[str, list[dict[str, Any]]] = {}
    names = [c.name for c in who] + (["ab"] if shutil.which("ab") else [])
    if not shutil.which("ab"):
        print("skipping ab: not installed (Debian: apt-get install apache2-utils)", file=sys.stderr)
    by_name = {c.name: c for c in who}
    with NginxServer(cpus=args.server_cpus, keepalive_requests=1) as server:
        server.check()
        for rep in range(args.reps):
            for name in rotate(names, rep):
                before = server.accepted()
                try:
                    if name == "ab":
                        r = run_ab(server.url("/100b"), args.count, conc, args.client_cpus)
                    else:
                        r = spread(
                            by_name[name], [server.base_url], args.count, conc,
                            args.client_cpus, 900,
                        )
                except ContestantFailed as exc:
                    print(f"  {name}: FAILED {exc}", file=sys.stderr)
                    continue
                r["conns_per_request"] = (server.accepted() - before) / r["urls"]
                results.setdefault(name, []).append(r)
                print(
                    f"  newconn rep {rep + 1} {name:<14} {r['rps']:7.0f} req/s"
                    f" {r['cpu_per_request_us']:5.0f} us CPU/req",
                    file=sys.stderr,
                    flush=True,
                )
    print(f"     {'contestant':<15}{'req/s':>9}{'CPU us':>10}{'conn/req':>11}")
    for name in names:
        show_row(name, results.get(name, []))
    for b in ("aiohttp", "httpx", "ab"):
        if "asyncnet" in results and b in results:
            print(
                f"     asyncnet / {b}: speed {paired(results, 'asyncnet', b, 'rps')}"
                f"  CPU/request {paired(results, 'asyncnet', b, 'cpu_per_request_us')}"
            )
    print("   target (issue 19): asyncnet ahead of aiohttp")


def inflight_ceilings(names: str | None) -> list[Contestant]:
    """The floors of the in-flight suite: bare asyncio, bare asyncio on uvloop."""
    found = [
        Contestant("asyncio-bare", "asyncio-bare"),
        Contestant("asyncio-bare+uvloop", "asyncio-bare", python=BENCHVENV_PYTHON, uvloop=True),
    ]
    if names:
        found = [c for c in found if c.name in names.split(",")]
    runnable = []
    for c in found:
        probe = Contestant(c.name, "asyncio", python=c.python, uvloop=c.uvloop)
        reason = available(probe)
        if reason:
            print(f"skipping {c.name}: {reason}", file=sys.stderr)
        else:
            runnable.append(c)
    return runnable


def suite_inflight(args: argparse.Namespace, who: list[Contestant]) -> None:
    n = args.inflight
    print(f"\n== inflight: {n} requests at once, each response held 1 s ==")
    results: dict[str, list[dict[str, Any]]] = {}
    entrants: list[Contestant | str] = [*who, *inflight_ceilings(args.only)]
    if shutil.which("ab") and (args.only is None or "ab" in args.only.split(",")):
        entrants.append("ab")
    for rep in range(args.reps):
        for c in rotate(entrants, rep):
            name = c if isinstance(c, str) else c.name
            # A fresh server per run: no connection of a previous contestant
            # lingers. ab reads each response to the end of its connection.
            server = HoldServer(
                args.server_cpus, ports=10, hold=1.0, close_after=1 if c == "ab" else 0
            )
            try:
                cpu0 = proc_cpu_seconds(server.proc.pid)
                if isinstance(c, str):
                    r = run_ab_parallel(server.origins, n, args.client_cpus)
                else:
                    extra = ["--response-size", str(HOLD_RESPONSE_SIZE)]
                    r = spread(c, server.origins, n, n, args.client_cpus, 900, extra)
                r["server_cpu_s"] = proc_cpu_seconds(server.proc.pid) - cpu0
            except ContestantFailed as exc:
                print(f"  {name}: FAILED {exc}", file=sys.stderr)
                continue
            finally:
                server.stop()
            if "maxrss_wait4_kib" in r:
                r["kib_per_request"] = (r["maxrss_wait4_kib"] - r["maxrss_before_kib"]) / n
            results.setdefault(name, []).append(r)
            print(
                f"  inflight rep {rep + 1} {name:<20} wall {r['wall']:.2f}s"
                f" {r['cpu_per_request_us']:.0f} us CPU/req"
                f" server {r['server_cpu_s']:.2f} s CPU"
                f" {r.get('kib_per_request', 0):.2f} KiB/request ok {r['ok']}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"     {'contestant':<20}{'req/s':>9}{'CPU us':>10}"
        f"{'wall s':>8}{'vs 1 s':>8}{'KiB/req':>9}{'server CPU s':>14}"
    )
    for c in entrants:
        name = c if isinstance(c, str) else c.name
        runs = results.get(name, [])
        extra = ""
        if runs:
            wall = median([r["wall"] for r in runs])
            kib = median([r.get("kib_per_request", 0.0) for r in runs])
            server = median([r["server_cpu_s"] for r in runs])
            extra = f"{wall:8.2f}{wall / 1.0:7.2f}x{kib:9.2f}{server:14.2f}"
        show_row(f"{name:<20}", runs, extra)
    for b in ("aiohttp", "httpx", "asyncio-bare", "asyncio-bare+uvloop", "ab"):
        if "asyncnet" in results and b in results:
            line = f"     asyncnet / {b}: wall {paired(results, 'asyncnet', b, 'wall')}"
            line += f"  CPU/request {paired(results, 'asyncnet', b, 'cpu_per_request_us')}"
            if b in ("aiohttp", "httpx"):
                line += f"  memory per request {paired(results, 'asyncnet', b, 'kib_per_request')}"
            print(line)
    print("   targets (issue 19): less memory per request than aiohttp; wall within 1.2x of 1 s")
    print("   (the ceilings' walls are the floor this machine and this server allow)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", default="origins,newconn,inflight")
    parser.add_argument("--quick", action="store_true", help="2,000 URLs, 1 repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--count", type=int, default=10_000, help="URLs per run")
    parser.add_argument("--origins", default="1,10,500,5000", help="origin counts")
    parser.add_argument("--concurrency", default="100,1000", help="origins suite concurrencies")
    parser.add_argument("--inflight", type=int, default=10_000, help="requests held at once")
    parser.add_argument("--only", help="comma-separated contestant names")
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--server-cpus", default="1")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    raise_fd_limit()
    if args.quick:
        args.reps, args.count = 1, 2_000
    who = contestants(args.only)
    print("scale benchmark (benchmarks/fetch_origins.py)")
    print("command: python " + " ".join(sys.argv))
    for k, v in machine_facts().items():
        print(f"  {k}: {v}")
    print(f"  RLIMIT_NOFILE: {resource.getrlimit(resource.RLIMIT_NOFILE)}")
    started = time.monotonic()
    suites = args.suite.split(",")
    if "origins" in suites:
        suite_origins(args, who)
    if "newconn" in suites:
        suite_newconn(args, who)
    if "inflight" in suites:
        suite_inflight(args, [c for c in who if c.name != "httpx"] if args.only is None else who)
    print(f"\n  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  elapsed: {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
