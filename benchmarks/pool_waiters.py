"""Many requests waiting for one origin's connections: the pool's hand-off cost.

N ``client.get()`` calls start at once against one origin with the default
:class:`~asyncnet.Limits` (10 connections per host), so all but 10 of them wait
in the pool and are woken one by one as connections come free. The wall time
per request should not depend on N: a hand-off that scans every waiter makes it
grow linearly with N (the total quadratically).

The server is nginx from Debian (``benchmarks/_nginx.py``, ``/100b``) pinned
to ``--server-cpus``; the client runs in a subprocess pinned to
``--client-cpus``, with ``PYTHONPATH`` at this checkout, or at
``ASYNCNET_BENCH_ROOT`` to measure another checkout (the "before" run).
Prints one line per N: wall time, microseconds per request, and its ratio to
the smallest N. Prints numbers only: nothing here asserts.

    python benchmarks/pool_waiters.py                      # N = 1000 2000 4000 8000
    python benchmarks/pool_waiters.py --counts 1000 16000
    ASYNCNET_BENCH_ROOT=/path/to/other/checkout python benchmarks/pool_waiters.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence

from _harness import asyncnet_env, pinned, stop_on_sigterm
from _nginx import NginxServer

_CLIENT = r"""
import asyncio, json, sys, time
import asyncnet

async def main(url, n, rounds):
    best = None
    # The default pool and connect timeouts (10 s) would fail requests of a
    # slow pool; lift them so that a slow hand-off shows as time, not as errors.
    async with asyncnet.HTTPClient(timeout=None) as client:
        await client.get(url)  # connect once outside the measurement
        for _ in range(rounds):
            start = time.perf_counter()
            responses = await asyncio.gather(*(client.get(url) for _ in range(n)))
            elapsed = time.perf_counter() - start
            assert all(r.status == 200 and len(r.content) == 100 for r in responses)
            best = elapsed if best is None else min(best, elapsed)
        stats = client.statistics()
    print(json.dumps({"seconds": best, "opened": stats.connections_opened}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs per N")
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--client-cpus", default="0")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    env = {**os.environ, **asyncnet_env()}
    print(f"asyncnet from {env['PYTHONPATH']}")
    with NginxServer(cpus=args.server_cpus) as nginx:
        url = nginx.url("/100b")
        first: float | None = None
        print(f"{'N':>7} {'wall s':>8} {'us/request':>11} {'vs first':>9} {'connections':>12}")
        for n in args.counts:
            proc = subprocess.run(
                pinned([sys.executable, "-c", _CLIENT, url, str(n), str(args.rounds)],
                       args.client_cpus),
                # "-c" puts the working directory first on sys.path: run it
                # from the checkout under test.
                cwd=env["PYTHONPATH"], env=env, capture_output=True, text=True, timeout=1800,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                return 1
            result = json.loads(proc.stdout)
            per = result["seconds"] / n * 1e6
            first = per if first is None else first
            print(f"{n:>7} {result['seconds']:>8.3f} {per:>11.1f} {per / first:>8.2f}x"
                  f" {result['opened']:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
