"""Profile asyncnet's request path: ``client.get()`` to the returned body.

Starts nginx (pinned to ``--server-cpus``), pins this process to
``--client-cpus``, warms up, then runs ``--requests`` keep-alive GETs of one
body at ``--concurrency`` through one ``HTTPClient`` and prints where the time
went. By default under ``cProfile`` (deterministic, but it inflates the cost of
each Python call); ``--plain`` runs the same loop without a profiler, for a
sampling profiler attached from outside, for example::

    python benchmarks/profile_http.py --body 100b --concurrency 64
    py-spy record -r 2000 -f speedscope -o /tmp/asyncnet.json -- \\
        python benchmarks/profile_http.py --plain --requests 100000

Run it from the repository root: it imports this checkout's asyncnet.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Sequence

# This checkout's asyncnet (or ASYNCNET_BENCH_ROOT's), never an installed copy.
sys.path.insert(
    0,
    os.environ.get("ASYNCNET_BENCH_ROOT")
    or os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)

from _nginx import BODIES, NginxServer

import asyncnet


async def load(
    url: str, size: int, requests: int, concurrency: int, warmup: int
) -> tuple[float, float]:
    limits = asyncnet.Limits(max_connections=concurrency, max_per_host=concurrency)
    async with asyncnet.HTTPClient(limits=limits) as client:

        async def worker(n: int) -> None:
            for _ in range(n):
                resp = await client.get(url)
                body = await resp.read()
                if len(body) != size:
                    raise RuntimeError(f"got {len(body)} bytes, expected {size}")

        async def run(total: int) -> None:
            share, extra = divmod(total, concurrency)
            await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))

        await run(warmup)
        t0, c0 = time.perf_counter(), time.process_time()
        await run(requests)
        return time.perf_counter() - t0, time.process_time() - c0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--body", default="100b", help="path to GET (default 100b)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--top", type=int, default=30, help="rows of each table")
    parser.add_argument("--plain", action="store_true", help="no cProfile")
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--save", help="also save the raw cProfile stats here")
    args = parser.parse_args(argv)
    path = args.body if args.body.startswith("/") else "/" + args.body
    if args.client_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    with NginxServer(cpus=args.server_cpus) as server:
        url = server.url(path)
        coro = load(url, BODIES[path], args.requests, args.concurrency, args.warmup)
        if args.plain:
            elapsed, cpu = asyncio.run(coro)
        else:
            prof = cProfile.Profile()
            prof.enable()
            elapsed, cpu = asyncio.run(coro)
            prof.disable()
    print(
        f"{args.requests} GET {path} at concurrency {args.concurrency}: {elapsed:.2f}s,"
        f" {args.requests / elapsed:.0f} req/s, {cpu / args.requests * 1e6:.0f} us CPU/request"
        + ("" if args.plain else " (under cProfile: slower than without)")
    )
    if not args.plain:
        if args.save:
            prof.dump_stats(args.save)
        for key in (args.sort, "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats(key).print_stats(args.top)
            text = out.getvalue()
            print(text[text.index("   ncalls") :] if "   ncalls" in text else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
