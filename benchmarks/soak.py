"""Soak: a million keep-alive requests over 100 origins, 1% of connections reset mid-response.

The server is ``_hold_server.py`` in its own process (pinned to
``--server-cpu``): 100 ports of 127.0.0.1, each connection closed after
``--close-after`` responses (so connections keep being replaced over the
run) and a random ``--reset-fraction`` of connections (1%) reset with an RST
after the head and half the body of one of their responses. The client is
this process (pinned to ``--client-cpu``): ``fetch_iter`` over ``--requests``
URLs (a generator, ``http://127.0.0.1:PORT/?i=N``, round-robin over the
origins) at ``--concurrency``, default ``Timeout``, no retries.

Every second it samples its own RSS (``/proc/self/statm``) and its open
descriptors (``/proc/self/fd``). At the end it prints: every URL's outcome
(ok, or the error type; an error that is not an ``asyncnet`` exception or a
URL with no result is counted as unclear), the descriptors before and after,
and the RSS over time: after ``--warmup`` seconds, the first, highest and last
sample and the least-squares slope in KiB per minute (flat memory: a slope
near 0 and a last sample near the first). Beside the RSS it samples what
Python itself holds, ``sys.getallocatedblocks()`` (objects and buffers
allocated through Python's allocator, cheap to count), and prints its trend
too: RSS that creeps while the blocks stay flat is the allocator's
fragmentation, not objects kept alive. ``--trace-memory`` runs under
``tracemalloc`` (25 frames; many times slower, so use fewer requests), samples
the bytes it traces and prints the allocation sites, in asyncnet and asyncio,
that hold more at the end than after the warm-up. Prints numbers, asserts
nothing.

::

    python benchmarks/soak.py                       # 1,000,000 requests
    python benchmarks/soak.py --requests 50000      # a short run
    python benchmarks/soak.py --requests 300000 --trace-memory --warmup 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.environ.get("ASYNCNET_BENCH_ROOT", os.path.dirname(HERE)))

from _harness import pinned  # noqa: E402

import asyncnet  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y)."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


async def soak(args: argparse.Namespace, origins: list[str]) -> dict[str, object]:
    # (t, rss KiB, fds, results so far, Python's allocated blocks, bytes traced)
    samples: list[tuple[float, int, int, int, int, int]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    done = 0
    ok = 0
    errors: dict[str, int] = {}
    unclear = 0
    seen = bytearray(args.requests)
    start = time.monotonic()

    async def sample() -> None:
        while True:
            t = time.monotonic() - start
            samples.append((t, rss_kib(), open_fds(), done, *python_memory()))
            if tracemalloc.is_tracing() and not snapshots and t >= args.warmup:
                # Without garbage in cycles, so that only what is reachable compares.
                gc.collect()
                snapshots.append(tracemalloc.take_snapshot())
            if len(samples) % 10 == 0:
                print(f"  {t:6.0f}s {done:>9} results  RSS {samples[-1][1] / 1024:7.1f} MiB"
                      f"  fds {samples[-1][2]}", file=sys.stderr, flush=True)
            await asyncio.sleep(1.0)

    def urls() -> Iterator[str]:
        n = len(origins)
        for i in range(args.requests):
            yield f"{origins[i % n]}/?i={i}"

    sampler = asyncio.create_task(sample())
    try:
        async with contextlib.aclosing(
            asyncnet.fetch_iter(urls(), concurrency=args.concurrency)
        ) as results:
            async for result in results:
                done += 1
                seen[result.index] = 1
                if result.ok and result.size == 100:
                    ok += 1
                elif result.error is None:
                    errors[f"status {result.status}"] = errors.get(f"status {result.status}", 0) + 1
                else:
                    name = type(result.error).__name__
                    errors[name] = errors.get(name, 0) + 1
                    if not isinstance(result.error, asyncnet.AsyncNetError):
                        unclear += 1
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    samples.append((time.monotonic() - start, rss_kib(), open_fds(), done, *python_memory()))
    if snapshots:
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot())
    unclear += args.requests - sum(seen)
    return {"samples": samples, "done": done, "ok": ok, "errors": errors, "unclear": unclear,
            "wall": time.monotonic() - start, "snapshots": snapshots}


def python_memory() -> tuple[int, int]:
    """Python's allocated blocks, and the bytes tracemalloc traces (0 when off)."""
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return sys.getallocatedblocks(), traced


def print_growth(snapshots: list[tracemalloc.Snapshot], top: int = 10) -> None:
    """The allocation sites in asyncnet or asyncio holding more at the end than after warm-up."""
    keep = [tracemalloc.Filter(True, "*/asyncnet/*"), tracemalloc.Filter(True, "*/asyncio/*")]
    first, last = (s.filter_traces(keep) for s in snapshots)
    grown = [d for d in last.compare_to(first, "traceback") if d.size_diff > 0][:top]
    print(f"  tracemalloc: the {len(grown)} sites in asyncnet or asyncio that grew most"
          " from warm-up to the end (innermost frames first)")
    for diff in grown:
        print(f"    {diff.size_diff:+} B, {diff.count_diff:+} blocks (now {diff.size} B)")
        for line in diff.traceback.format(limit=4, most_recent_first=True):
            print(f"      {line}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--origins", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--close-after", type=int, default=100)
    parser.add_argument("--reset-fraction", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the trend")
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--trace-memory", action="store_true",
                        help="run under tracemalloc and print the sites that grew")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server_argv = [
        sys.executable, os.path.join(HERE, "_hold_server.py"), "--ports", str(args.origins),
        "--close-after", str(args.close_after), "--reset-fraction", str(args.reset_fraction),
    ]
    server = subprocess.Popen(
        pinned(server_argv, args.server_cpu), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        line = server.stdout.readline()
        if not line.startswith("ports "):
            raise RuntimeError("the scripted server did not start")
        origins = [f"http://127.0.0.1:{p}" for p in line.split()[1:]]
        if args.client_cpu and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
        print("soak benchmark (benchmarks/soak.py)")
        print("command: python " + " ".join(sys.argv))
        print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        fds_before = open_fds()
        if args.trace_memory:
            tracemalloc.start(25)
        out = asyncio.run(soak(args, origins))
        tracemalloc.stop()
        fds_after = open_fds()
        server.stdin.write("stats\n")
        server.stdin.flush()
        stats = json.loads(server.stdout.readline())
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    samples = out["samples"]
    assert isinstance(samples, list)
    wall = out["wall"]
    assert isinstance(wall, float)
    print(f"\n  {out['done']} results in {wall:.0f} s ({args.requests / wall:.0f} req/s)")
    print(f"  ok {out['ok']}, errors {json.dumps(out['errors'])}, unclear or missing"
          f" {out['unclear']}")
    print(f"  server: {stats['accepted']} connections accepted, {stats['requests']} responses,"
          f" {stats['resets']} connections reset mid-response")
    print(f"  descriptors open: {fds_before} before, {fds_after} after,"
          f" at most {max(s[2] for s in samples)} during")
    steady = [s for s in samples if s[0] >= args.warmup] or samples
    first, last = steady[0][1], steady[-1][1]
    peak = max(s[1] for s in steady)
    per_min = slope([(s[0], float(s[1])) for s in steady]) * 60
    print(f"  RSS after {args.warmup:.0f} s warm-up: first {first / 1024:.1f} MiB,"
          f" peak {peak / 1024:.1f} MiB, last {last / 1024:.1f} MiB"
          f" ({(last - first) / 1024:+.1f} MiB over {steady[-1][0] - steady[0][0]:.0f} s);"
          f" trend {per_min:+.1f} KiB/min over {len(steady)} samples")
    blocks = slope([(s[0], float(s[4])) for s in steady]) * 60
    print(f"  Python's allocated blocks: first {steady[0][4]}, last {steady[-1][4]};"
          f" trend {blocks:+.0f} blocks/min")
    if args.trace_memory:
        traced = slope([(s[0], s[5] / 1024) for s in steady]) * 60
        print(f"  traced by tracemalloc: first {steady[0][5] / 1024:.0f} KiB,"
              f" last {steady[-1][5] / 1024:.0f} KiB; trend {traced:+.1f} KiB/min")
        snapshots = out["snapshots"]
        assert isinstance(snapshots, list)
        if len(snapshots) == 2:
            print_growth(snapshots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
