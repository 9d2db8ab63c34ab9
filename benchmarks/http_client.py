"""Keep-alive GET throughput: asyncnet against aiohttp, httpx, http.client and wrk.

One invocation starts nginx (pinned to ``--server-cpus``), then for every
repetition, body and concurrency runs each contestant in its own subprocess
pinned to ``--client-cpus``: ``--concurrency`` workers sharing one client do
keep-alive GETs for ``--duration`` seconds after ``--warmup``, reading every
body whole. The order of contestants rotates from one repetition to the next,
so drifting machine load falls on all of them alike. Prints the median
requests per second of each contestant, the client CPU time per request, and
the ratios of asyncnet to the others against the targets of issue 4. Prints
numbers only: nothing here asserts.

    python benchmarks/http_client.py            # the full run (about 4 minutes)
    python benchmarks/http_client.py --quick    # a short run while developing

Contestants: asyncnet (this checkout, on the interpreter running this script),
aiohttp and httpx (on ``/opt/benchvenv/bin/python``), ``http.client`` with one
thread per connection, and ``wrk`` as the ceiling of the server and loopback.
``--uvloop`` adds asyncnet and aiohttp on uvloop. ``--keep-bodies`` makes every
contestant keep its last ``CONCURRENCY`` bodies alive instead of dropping each
one at once; for large bodies that changes how the C allocator reuses memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from _harness import (
    BENCHVENV_PYTHON,
    Contestant,
    ContestantFailed,
    asyncnet_env,
    available,
    fmt_ratio,
    machine_facts,
    median,
    pinned,
    run_json,
    stop_on_sigterm,
)
from _nginx import BODIES, NginxServer

# Bodies whose target is 1.5x aiohttp; the others are "large" (target: at least aiohttp).
SMALL_BODIES = {"/100b"}
DEFAULT_BODIES = ["/100b", "/64k", "/1m", "/chunked"]


def contestants(uvloop: bool) -> list[Contestant]:
    found = [
        Contestant("asyncnet", "asyncnet", env=asyncnet_env()),
        Contestant("aiohttp", "aiohttp", python=BENCHVENV_PYTHON),
        Contestant("httpx", "httpx", python=BENCHVENV_PYTHON),
        Contestant("http.client", "http.client"),
        Contestant("wrk", "wrk"),
    ]
    if uvloop:
        found += [
            Contestant(
                "asyncnet+uvloop",
                "asyncnet",
                python=BENCHVENV_PYTHON,
                uvloop=True,
                env=asyncnet_env(),
            ),
            Contestant("aiohttp+uvloop", "aiohttp", python=BENCHVENV_PYTHON, uvloop=True),
        ]
    return found


def run_wrk(url: str, concurrency: int, duration: float, cpus: str | None) -> dict[str, Any]:
    import subprocess

    seconds = max(1, round(duration))
    argv = pinned(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", url], cpus
    )
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise ContestantFailed(f"wrk exit {proc.returncode}: {proc.stderr.strip()}")
    rps = None
    for line in proc.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "Non-2xx" in line or "Socket errors" in line:
            raise ContestantFailed(f"wrk reported errors: {line.strip()}")
    if rps is None:
        raise ContestantFailed("wrk printed no Requests/sec")
    return {"rps": rps, "cpu_per_request_us": None}


def run_one(
    who: Contestant, url: str, size: int, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    if who.library == "wrk":
        return run_wrk(url, concurrency, args.warmup + args.duration, args.client_cpus)
    options = [
        "--url",
        url,
        "--expect",
        str(size),
        "--concurrency",
        str(concurrency),
        "--warmup",
        str(args.warmup),
        "--duration",
        str(args.duration),
        "--max-requests",
        str(args.max_requests),
    ]
    if args.keep_bodies:
        options.append("--keep-bodies")
    argv = pinned(who.argv("load", options), args.client_cpus)
    timeout = args.warmup + args.duration + 120
    result, _rss = run_json(argv, env=who.env, timeout=timeout)
    return result


def paired_ratio(
    results: dict[tuple[str, int, str], list[dict[str, Any]]],
    path: str,
    conc: int,
    name: str,
    other: str,
) -> float | None:
    """Median over repetitions of name's req/s divided by other's in the same repetition.

    Runs of one repetition are close in time, so pairing them cancels most of
    the drift in machine load that a ratio of medians would keep.
    """
    mine = {r["rep"]: r["rps"] for r in results.get((path, conc, name), [])}
    theirs = {r["rep"]: r["rps"] for r in results.get((path, conc, other), [])}
    ratios = [mine[k] / theirs[k] for k in mine if theirs.get(k)]
    return median(ratios) if ratios else None


def median_cpu(runs: list[dict[str, Any]]) -> float | None:
    cpu = [r["cpu_per_request_us"] for r in runs if r.get("cpu_per_request_us")]
    return median(cpu) if cpu else None


def report(
    results: dict[tuple[str, int, str], list[dict[str, Any]]],
    errors: dict[tuple[str, int, str], str],
    who: list[Contestant],
    bodies: list[str],
    concurrencies: list[int],
) -> None:
    names = {c.name for c in who}
    print()
    for path in bodies:
        for conc in concurrencies:
            print(f"== GET {path} ({BODIES[path]} B), concurrency {conc}")
            print(
                f"   {'contestant':<17}{'median req/s':>13}{'min':>9}{'max':>9}{'cpu us/req':>12}"
            )
            for c in who:
                key = (path, conc, c.name)
                runs = results.get(key, [])
                if not runs:
                    print(f"   {c.name:<17}{'-':>13}   {errors.get(key, 'no result')}")
                    continue
                rps = [r["rps"] for r in runs]
                cpu = median_cpu(runs)
                cpu_s = f"{cpu:12.0f}" if cpu else f"{'-':>12}"
                print(f"   {c.name:<17}{median(rps):13.0f}{min(rps):9.0f}{max(rps):9.0f}{cpu_s}")
            pairs = [("asyncnet", o) for o in ("aiohttp", "httpx", "http.client", "wrk")]
            pairs.append(("asyncnet+uvloop", "aiohttp+uvloop"))
            for mine, other in pairs:
                if mine not in names or other not in names:
                    continue
                ratio = paired_ratio(results, path, conc, mine, other)
                my_cpu = median_cpu(results.get((path, conc, mine), []))
                their_cpu = median_cpu(results.get((path, conc, other), []))
                line = f"   {mine} / {other}: req/s {fmt_ratio(ratio, 1.0)}"
                if my_cpu and their_cpu:
                    line += f"   CPU per request {fmt_ratio(my_cpu, their_cpu)}"
                print(line)
            print()

    print("== targets (issue 4): asyncnet's req/s over each contestant's,")
    print("   median of the per-repetition ratios")
    print(
        f"   {'body':<10}{'conc':>5}  {'vs aiohttp':>18}  {'vs httpx':>16}  {'vs http.client':>18}"
    )
    for path in bodies:
        for conc in concurrencies:
            goal = 1.5 if path in SMALL_BODIES else 1.0
            cells = []
            for name, target in (("aiohttp", goal), ("httpx", 4.0), ("http.client", 1.0)):
                ratio = paired_ratio(results, path, conc, "asyncnet", name)
                if ratio is None:
                    cells.append("n/a")
                    continue
                met = ratio > target if name == "http.client" else ratio >= target
                cells.append(f"{ratio:.2f}x {'met' if met else 'MISSED'}")
            print(f"   {path:<10}{conc:>5}  {cells[0]:>18}  {cells[1]:>16}  {cells[2]:>18}")
    print("   targets: >= 1.5x aiohttp on 100b, >= 1x on larger bodies, >= 4x httpx,")
    print("   > 1x http.client")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition of short runs")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--warmup", type=float, default=0.4, help="seconds before counting")
    parser.add_argument("--duration", type=float, default=1.5, help="seconds counted per run")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="cap per run")
    parser.add_argument("--bodies", default=",".join(DEFAULT_BODIES), help="paths to GET")
    parser.add_argument(
        "--keep-bodies",
        action="store_true",
        help="each client keeps its last CONCURRENCY bodies alive instead of dropping each at once",
    )
    parser.add_argument("--concurrency", default="1,64", help="comma-separated levels")
    parser.add_argument("--only", help="comma-separated contestant names to run")
    parser.add_argument("--uvloop", action="store_true", help="add contestants on uvloop")
    parser.add_argument("--client-cpus", default="0", help="taskset CPUs for clients")
    parser.add_argument("--server-cpus", default="1", help="taskset CPUs for nginx")
    parser.add_argument("--json-out", help="also write every raw result to this file")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    if args.quick:
        args.reps, args.warmup, args.duration = 1, 0.2, 0.6
    bodies = [b if b.startswith("/") else "/" + b for b in args.bodies.split(",")]
    for b in bodies:
        if b not in BODIES:
            parser.error(f"unknown body {b}; choose from {', '.join(BODIES)}")
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    who = contestants(args.uvloop)
    if args.only:
        names = set(args.only.split(","))
        who = [c for c in who if c.name in names]
    runnable: list[Contestant] = []
    for c in who:
        reason = available(c)
        if reason:
            print(f"skipping {c.name}: {reason}", file=sys.stderr)
        else:
            runnable.append(c)

    facts = machine_facts()
    print("keep-alive GET benchmark (benchmarks/http_client.py)")
    print("command: python " + " ".join(sys.argv))
    for k, v in facts.items():
        print(f"  {k}: {v}")
    print(
        f"  reps={args.reps} warmup={args.warmup}s duration={args.duration}s"
        f" client cpus={args.client_cpus} server cpus={args.server_cpus}"
        + (" bodies kept" if args.keep_bodies else "")
    )

    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, int, str], str] = {}
    started = time.monotonic()
    with NginxServer(cpus=args.server_cpus) as server:
        server.check()
        for rep in range(args.reps):
            for path in bodies:
                for conc in concurrencies:
                    k = rep % len(runnable) if runnable else 0
                    for c in runnable[k:] + runnable[:k]:
                        key = (path, conc, c.name)
                        if key in errors:
                            continue
                        try:
                            r = run_one(c, server.url(path), BODIES[path], conc, args)
                        except ContestantFailed as exc:
                            errors[key] = str(exc)
                            print(f"  {c.name} {path} c={conc}: FAILED {exc}", file=sys.stderr)
                            continue
                        r["rep"] = rep
                        r["loadavg"] = os.getloadavg()[0]
                        results.setdefault(key, []).append(r)
                        print(
                            f"  rep {rep + 1}/{args.reps} {path:<9} c={conc:<3}"
                            f" {c.name:<16} {r['rps']:9.0f} req/s",
                            file=sys.stderr,
                            flush=True,
                        )
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  elapsed: {time.monotonic() - started:.0f}s")
    report(results, errors, runnable, bodies, concurrencies)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(
                {
                    "facts": facts,
                    "results": [
                        {"path": p, "concurrency": c, "contestant": n, "runs": runs}
                        for (p, c, n), runs in results.items()
                    ],
                    "errors": [
                        {"path": p, "concurrency": c, "contestant": n, "error": e}
                        for (p, c, n), e in errors.items()
                    ],
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
