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

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from echo_instructions import LOAD_C, REPO_ROOT, run_once

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,1024", help="line sizes, newline included")
    parser.add_argument("--concurrency", default="1,10,100")
    parser.add_argument("--kinds", default=KINDS)
    parser.add_argument("--seconds", default="2,6", help="short and long run, seconds of load")
    parser.add_argument("--root", default=REPO_ROOT, help="checkout whose asyncnet is measured")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("cc") is None:
        raise SystemExit("needs valgrind and cc")
    short, long = (float(s) for s in args.seconds.split(","))
    kinds = args.kinds.split(",")
    root = os.path.abspath(args.root)
    rev = subprocess.run(
        ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", root, "status", "--porcelain", "asyncnet"], capture_output=True, text=True
    ).stdout.strip()
    print(f"asyncnet: {root} at {rev}{' (modified)' if dirty else ''}")
    print(f"python: {os.path.realpath(sys.executable)}; runs of {short:g} s and {long:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        client = os.path.join(tmp, "echo_load")
        subprocess.run(["cc", "-O2", "-o", client, LOAD_C], check=True)
        print("user-space instructions per message (callgrind)")
        print(f"{'line':>6} {'conc':>5} " + " ".join(f"{k:>14}" for k in kinds), flush=True)
        for size in (int(s) for s in args.sizes.split(",")):
            for conc in (int(c) for c in args.concurrency.split(",")):
                per: dict[str, float] = {}
                for kind in kinds:
                    out = os.path.join(tmp, f"cg.{kind}")
                    i1, m1 = run_once(root, kind, client, size, conc, short, out, lines=True)
                    i2, m2 = run_once(root, kind, client, size, conc, long, out, lines=True)
                    per[kind] = (i2 - i1) / (m2 - m1) if m2 > m1 else float("nan")
                row = " ".join(f"{per[k]:14.0f}" for k in kinds)
                ratios = []
                for a, b, target in RATIOS:
                    if a in per and b in per:
                        goal = "" if target is None else f" (<= {target})"
                        ratios.append(f"{a}/{b} {per[a] / per[b]:.3f}x{goal}")
                print(f"{size:>6} {conc:>5} {row}", flush=True)
                if ratios:
                    print("             " + "  ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
