"""Line echo: messages per second and server CPU time per message, asyncnet's toolkit vs asyncio.

Closed loop, like ``echo_pingpong.py`` (whose machinery this reuses): the C
load generator ``echo_load.c`` (``cc -O2``, one epoll process) keeps one
line in flight on every connection (``SIZE - 1`` letters and ``\\n``), reads
the whole echo back, and repeats. Each server is its own process
(``_echo_servers.py KIND``), pinned with ``taskset`` to ``--server-cpu``,
the load generator to ``--client-cpu``. For each repetition, line size and
concurrency, every contestant is measured once, in an order that rotates
between repetitions.

Contestants (line echo servers, one write per line):

* ``await``: ``asyncnet.start_server`` + ``Lines()``, ``async for line in
  conn: await conn.send(line)``;
* ``callback``: ``asyncnet.FramedProtocol`` + ``Lines()``, ``send_nowait``
  from ``frame_received``;
* ``streams``: asyncio streams, ``readline`` + ``write`` + ``drain``;
* ``bare``: a hand-written ``asyncio.Protocol`` line splitter, no flow control;
* ``bare await``: the ceiling of the ``await`` style, hand-written: a bare
  ``asyncio.Protocol`` queues lines and wakes a task per connection through
  a Future per wait (as streams do), the task writes each line back, no flow
  control. ``await/bare await`` is what the toolkit adds to the task switch
  every ``await``-style server on asyncio pays;
* ``C ceiling``: ``echo_ceiling.c``, a byte echo in C. With one line in
  flight per connection, echoing bytes is echoing lines, so it is the most
  that the kernel, the loopback and the load client allow.

and, unless ``--no-raw``, the toolkit's ``Raw()`` echo in both styles
(``Raw await``, ``Raw callback``) against the echo server's
``EchoServerProtocol`` (``echo server``).

Reported: median messages per second and median server CPU time (user +
system) per message, then paired ratios (the median over repetitions of the
ratio within one repetition, whose runs are seconds apart) with the targets
of issue 15: ``await`` at least 1.3x streams' messages per second and at
most 0.75x its CPU per message; ``callback`` within 10% of the bare
Protocol's CPU per message; ``Raw()`` within 10% of ``EchoServerProtocol``'s.
Numbers only: nothing is asserted.

Also reported: the server's minor page faults per message. A server that
reads through ``data_received`` (streams, the bare servers) gets a fresh
256 KiB ``bytes`` per read from asyncio; whether glibc maps it (three system
calls and two faults per read, about twice the kernel time per message) or
takes it from the heap depends on the process's history, so such a server's
CPU per message can be either of two figures. To compare every contestant in
the heap regime, run with
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=8388608``
(the servers inherit the environment).

Run from the repository root (needs ``cc``)::

    python benchmarks/line_echo.py            # 3 repetitions, about 6 minutes
    python benchmarks/line_echo.py --quick    # 1 short repetition
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile

from echo_pingpong import CEILING_C, LOAD_C, Contestant, Server, build_c, fmt_size, measure_c

CEILING = "C ceiling"


def contestants(ceiling: str | None, with_raw: bool) -> list[Contestant]:
    found = [
        Contestant("await", "lines-await"),
        Contestant("callback", "lines-callback"),
        Contestant("streams", "lines-streams"),
        Contestant("bare", "lines-bare"),
        Contestant("bare await", "lines-bare-await"),
    ]
    if ceiling is not None:
        found.append(Contestant(CEILING, "c", exe=ceiling))
    if with_raw:
        found += [
            Contestant("Raw await", "raw-await"),
            Contestant("Raw callback", "raw-callback"),
            Contestant("echo server", "asyncnet"),
        ]
    return found


Result = tuple[float, float, float]  # messages/s, server CPU s/message, faults/message

# (contestant, against, what is compared, the target, whether higher is better)
TARGETS = [
    ("await", "streams", "msgs/s", 1.3, True),
    ("await", "streams", "CPU/msg", 0.75, False),
    ("callback", "bare", "CPU/msg", 1.10, False),
    ("Raw await", "echo server", "CPU/msg", 1.10, False),
    ("Raw callback", "echo server", "CPU/msg", 1.10, False),
]


def paired(runs_a: list[Result], runs_b: list[Result], index: int) -> float:
    """Median over repetitions of a/b within each repetition."""
    return statistics.median(a[index] / b[index] for a, b in zip(runs_a, runs_b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,1024", help="line sizes in bytes, newline included")
    parser.add_argument("--concurrency", default="1,10,100")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--no-ceiling", action="store_true", help="leave out echo_ceiling.c")
    parser.add_argument("--no-raw", action="store_true", help="leave out the Raw() contestants")
    parser.add_argument("--quick", action="store_true", help="1 repetition of 0.8 s")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.duration, args.warmup = 1, 0.8, 0.2
    sizes = [int(s) for s in args.sizes.split(",")]
    if min(sizes) < 2:
        raise SystemExit("a line needs at least one byte and its newline")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    tmpdir = tempfile.TemporaryDirectory(prefix="line_echo-")
    exe = build_c(tmpdir.name, LOAD_C)
    if exe is None:
        raise SystemExit("needs a working cc for the load generator (echo_load.c)")
    ceiling = None if args.no_ceiling else build_c(tmpdir.name, CEILING_C)
    field = contestants(ceiling, not args.no_raw)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}; load average {os.getloadavg()}")
    print("load generator: C client (echo_load.c ... lines), one process, epoll")
    print(
        f"server on CPU {args.server_cpu}, client on CPU {args.client_cpu}; "
        f"{args.reps} reps x {args.duration}s (+{args.warmup}s warm-up)"
    )
    servers = {c.name: Server(c, args.server_cpu) for c in field}
    results: dict[tuple[str, int, int], list[Result]] = {}
    try:
        for rep in range(args.reps):
            for size in sizes:
                for conc in concurrencies:
                    order = field[rep % len(field) :] + field[: rep % len(field)]
                    for c in order:
                        r = measure_c(
                            exe, servers[c.name], size, conc, args.warmup, args.duration,
                            args.client_cpu, lines=True,
                        )  # fmt: skip
                        results.setdefault((c.name, size, conc), []).append(r)
            print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        tmpdir.cleanup()
    print(f"load average at the end {os.getloadavg()}")

    names = [c.name for c in field]
    print()
    print("messages/s (median) | server CPU us/message (median)")
    print(f"{'line':>8} {'conc':>4}  " + "  ".join(f"{n:>20}" for n in names))
    for size in sizes:
        for conc in concurrencies:
            cells = []
            for n in names:
                runs = results[(n, size, conc)]
                rate = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs) * 1e6
                cells.append(f"{rate:>9.0f} | {cpu:>6.1f} us")
            print(f"{fmt_size(size):>8} {conc:>4}  " + "  ".join(f"{c:>20}" for c in cells))

    print()
    print("server minor page faults per message (median): 2 or more is a fresh 256 KiB")
    print("bytes mapped and unmapped per read (see 'The mmap lottery' in benchmarks/README.rst)")
    print(f"{'line':>8} {'conc':>4}  " + "  ".join(f"{n:>12}" for n in names))
    for size in sizes:
        for conc in concurrencies:
            faults = [statistics.median(r[2] for r in results[(n, size, conc)]) for n in names]
            print(f"{fmt_size(size):>8} {conc:>4}  " + "  ".join(f"{f:>12.2f}" for f in faults))

    print()
    print("paired ratios (median over repetitions of the ratio within one repetition)")
    for size in sizes:
        for conc in concurrencies:

            def runs(name: str, size: int = size, conc: int = conc) -> list[Result]:
                return results[(name, size, conc)]

            parts = [
                f"await/streams {paired(runs('await'), runs('streams'), 0):5.2f}x msgs/s "
                f"{paired(runs('await'), runs('streams'), 1):5.2f}x CPU/msg",
                f"callback/bare {paired(runs('callback'), runs('bare'), 1):5.2f}x CPU/msg",
                f"await/bare {paired(runs('await'), runs('bare'), 1):5.2f}x CPU/msg",
                f"await/bare await {paired(runs('await'), runs('bare await'), 1):5.2f}x CPU/msg",
            ]
            if CEILING in names:
                parts.append(
                    f"await/C {paired(runs('await'), runs(CEILING), 0):5.2f}x msgs/s, "
                    f"streams/C {paired(runs('streams'), runs(CEILING), 0):5.2f}x msgs/s"
                )
            if "echo server" in names:
                parts.append(
                    "Raw await/echo "
                    f"{paired(runs('Raw await'), runs('echo server'), 1):5.2f}x CPU/msg, "
                    "Raw callback/echo "
                    f"{paired(runs('Raw callback'), runs('echo server'), 1):5.2f}x CPU/msg"
                )
            print(f"{fmt_size(size):>8} {conc:>4}  " + "   ".join(parts))

    print()
    print("targets of issue 15 (paired ratios above; met or missed, per cell)")
    for a, b, what, target, higher in TARGETS:
        if a not in names or b not in names:
            continue
        index = 0 if what == "msgs/s" else 1
        cells = []
        for size in sizes:
            for conc in concurrencies:
                ratio = paired(results[(a, size, conc)], results[(b, size, conc)], index)
                met = ratio >= target if higher else ratio <= target
                cells.append(f"{fmt_size(size)}/c{conc} {ratio:.2f}x {'met' if met else 'MISSED'}")
        sign = ">=" if higher else "<="
        print(f"  {a}/{b} {what} {sign} {target}x: " + ", ".join(cells))


if __name__ == "__main__":
    main()
