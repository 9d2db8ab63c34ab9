"""Many URLs at once: asyncnet.fetch_all against aiohttp and httpx as users write them.

One invocation starts nginx (pinned to ``--server-cpus``), then for every
repetition runs each contestant in its own subprocess pinned to
``--client-cpus``: fetch ``--count`` distinct URLs (``/1k?i=0`` ...) at
``--concurrency``, each body read whole. asyncnet calls
``fetch_all(urls, concurrency=N)``; aiohttp and httpx use one session or
client with default settings, ``asyncio.gather`` and an ``asyncio.Semaphore(N)``
(the way their users typically write it). The order of contestants rotates
between repetitions. Prints the median wall time, requests per second and peak
RSS (``ru_maxrss`` of the subprocess, from ``os.wait4``), the RSS the process
had already reached after its imports, and the ratios of asyncnet to the
others. Prints numbers only: nothing here asserts.

    python benchmarks/fetch_many.py            # 10,000 URLs, 3 repetitions
    python benchmarks/fetch_many.py --quick    # 2,000 URLs, 1 repetition
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


def contestants(uvloop: bool) -> list[Contestant]:
    found = [
        Contestant("asyncnet", "asyncnet", env=asyncnet_env()),
        Contestant("aiohttp", "aiohttp", python=BENCHVENV_PYTHON),
        Contestant("httpx", "httpx", python=BENCHVENV_PYTHON),
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition of 2,000 URLs")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--count", type=int, default=10_000, help="URLs per run")
    parser.add_argument("--concurrency", type=int, default=100, help="requests in flight")
    parser.add_argument("--body", default="/1k", help="path of the body to fetch")
    parser.add_argument("--only", help="comma-separated contestant names to run")
    parser.add_argument("--uvloop", action="store_true", help="add contestants on uvloop")
    parser.add_argument("--client-cpus", default="0", help="taskset CPUs for clients")
    parser.add_argument("--server-cpus", default="1", help="taskset CPUs for nginx")
    parser.add_argument("--json-out", help="also write every raw result to this file")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    if args.quick:
        args.reps, args.count = 1, 2_000
    path = args.body if args.body.startswith("/") else "/" + args.body
    if path not in BODIES:
        parser.error(f"unknown body {path}; choose from {', '.join(BODIES)}")

    who = contestants(args.uvloop)
    if args.only:
        names = set(args.only.split(","))
        who = [c for c in who if c.name in names]
    runnable = []
    for c in who:
        reason = available(c)
        if reason:
            print(f"skipping {c.name}: {reason}", file=sys.stderr)
        else:
            runnable.append(c)

    facts = machine_facts()
    print("fetch-many benchmark (benchmarks/fetch_many.py)")
    print("command: python " + " ".join(sys.argv))
    for k, v in facts.items():
        print(f"  {k}: {v}")
    print(
        f"  urls={args.count} x GET {path} ({BODIES[path]} B) concurrency={args.concurrency}"
        f" reps={args.reps} client cpus={args.client_cpus} server cpus={args.server_cpus}"
    )

    results: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    with NginxServer(cpus=args.server_cpus) as server:
        server.check()
        for rep in range(args.reps):
            k = rep % len(runnable) if runnable else 0
            for c in runnable[k:] + runnable[:k]:
                if c.name in errors:
                    continue
                options = [
                    "--url",
                    server.url(path),
                    "--expect",
                    str(BODIES[path]),
                    "--count",
                    str(args.count),
                    "--concurrency",
                    str(args.concurrency),
                ]
                try:
                    r, rss = run_json(
                        pinned(c.argv("fetch", options), args.client_cpus),
                        env=c.env,
                        timeout=600,
                    )
                except ContestantFailed as exc:
                    errors[c.name] = str(exc)
                    print(f"  {c.name}: FAILED {exc}", file=sys.stderr)
                    continue
                r["maxrss_wait4_kib"] = rss
                results.setdefault(c.name, []).append(r)
                print(
                    f"  rep {rep + 1}/{args.reps} {c.name:<16} {r['wall']:7.2f}s"
                    f" {r['rps']:7.0f} req/s  ok={r['ok']}/{r['urls']}"
                    f"  peak RSS {rss / 1024:.1f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  elapsed: {time.monotonic() - started:.0f}s")
    print()
    print(
        f"   {'contestant':<17}{'wall s':>8}{'req/s':>8}{'peak RSS MiB':>14}"
        f"{'after imports':>15}{'growth':>8}{'ok':>8}"
    )
    summary: dict[str, dict[str, float]] = {}
    for c in runnable:
        runs = results.get(c.name, [])
        if not runs:
            print(f"   {c.name:<17}{'-':>8}   {errors.get(c.name, 'no result')}")
            continue
        wall = median([r["wall"] for r in runs])
        rps = median([r["rps"] for r in runs])
        peak = median([r["maxrss_wait4_kib"] for r in runs]) / 1024
        base = median([r["maxrss_before_kib"] for r in runs]) / 1024
        ok = min(r["ok"] for r in runs)
        summary[c.name] = {"wall": wall, "rps": rps, "peak": peak, "growth": peak - base}
        print(
            f"   {c.name:<17}{wall:8.2f}{rps:8.0f}{peak:14.1f}{base:15.1f}{peak - base:8.1f}{ok:>8}"
        )
    print()
    a = summary.get("asyncnet")
    for other in ("aiohttp", "httpx"):
        o = summary.get(other)
        print(
            f"   asyncnet / {other:<8} speed {fmt_ratio(a and a['rps'], o and o['rps'])}"
            f"   peak RSS {fmt_ratio(a and a['peak'], o and o['peak'])}"
            f"   RSS growth {fmt_ratio(a and a['growth'], o and o['growth'])}"
        )
    print("   target (issue 5): speed ratio > 1 and peak RSS ratio < 1 against both")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"facts": facts, "results": results, "errors": errors}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
