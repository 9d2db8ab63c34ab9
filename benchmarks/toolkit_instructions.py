"""The protocol toolkit's user-space instructions per message, counted by callgrind.

The line echo servers of ``line_echo.py`` and the ``Raw()`` echoes, counted
the way ``echo_instructions.py`` counts the echo servers (whose ``run_once``
this reuses): each server (``benchmarks/_echo_servers.py KIND``) runs under
``valgrind --tool=callgrind`` while the C load generator (``echo_load.c
... lines``) ping-pongs text lines through it, once for a short and once for
a long run; the difference in instructions divided by the difference in
messages is the cost of one message, start-up and shut-down cancelled out.

On a shared machine messages per second and CPU time per message move by tens
of percent between runs; instruction counts move by a few percent at most, so
they are what tells one change of the toolkit's receive and send paths from
another. They count user space only (system calls are invisible): read them
next to ``line_echo.py``'s CPU time per message, never alone.

Kinds (see ``_echo_servers.py``): ``lines-await``, ``lines-bare-await`` (the
ceiling of the ``await`` style: a bare Protocol, a Future per wait, a task per
connection), ``lines-callback``,
``lines-streams``, ``lines-bare``, ``raw-await``, ``raw-callback`` and the
echo server (``asyncnet``). Printed: instructions per message per kind, and
the ratios issue 15's targets are about: await/streams (target CPU <= 0.75x),
callback/bare (<= 1.10x), Raw await/echo and Raw callback/echo (<= 1.10x).

Run from the repository root (needs ``valgrind`` and ``cc``; about 2 minutes a cell)::

    python benchmarks/toolkit_instructions.py
    python benchmarks/toolkit_instructions.py --sizes 64 --concurrency 1 --root /path/to/other
"""

from __future__ import annotations

from echo_instructions import instruction_grid

KINDS = (
    "lines-await,lines-bare-await,lines-callback,lines-streams,lines-bare,raw-await,"
    "raw-callback,asyncnet"
)

# (numerator, denominator, target): the ratios issue 15 sets targets for.
RATIOS = [
    ("lines-await", "lines-streams", 0.75),
    ("lines-callback", "lines-bare", 1.10),
    ("lines-await", "lines-bare", None),
    ("lines-await", "lines-bare-await", None),
    ("raw-await", "asyncnet", 1.10),
    ("raw-callback", "asyncnet", 1.10),
]


def main() -> None:
    for size, conc, per in instruction_grid(
        __doc__.split("\n")[0], sizes="64,1024", concurrency="1,10,100", kinds=KINDS, lines=True
    ):
        row = " ".join(f"{v:14.0f}" for v in per.values())
        ratios = []
        for a, b, target in RATIOS:
            if a in per and b in per:
                goal = "" if target is None else f" (<= {target})"
                ratios.append(f"{a}/{b} {per[a] / per[b]:.3f}x{goal}")
        print(f"{size:>8} {conc:>5} {row}", flush=True)
        if ratios:
            print("             " + "  ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
