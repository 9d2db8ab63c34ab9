"""Echo servers' user-space instructions per message, counted by callgrind.

Messages per second and CPU time per message move by tens of percent between
runs on a shared machine; the number of instructions a server executes per
message does not. Each server (``benchmarks/_echo_servers.py``) runs under
``valgrind --tool=callgrind`` while the C load generator (``echo_load.c``)
ping-pongs messages of one size through it, once for a short and once for a
long run; the difference in instructions divided by the difference in
messages is the cost of one message, with start-up and shut-down cancelled
out. Only user space is counted: system calls, page faults and everything
else the kernel does are invisible to it, so a server that saves Python work
by making the kernel work harder looks better here than it is. Read these
counts next to CPU time (``echo_pingpong.py``) and system call counts
(``strace -c``), never alone.

Run from the repository root (needs ``valgrind`` and ``cc``; about 4 minutes)::

    python benchmarks/echo_instructions.py
    python benchmarks/echo_instructions.py --sizes 1024 --kinds asyncnet,bare

``--root DIR`` measures the asyncnet of another checkout. ``--kinds`` takes
any server kind of ``_echo_servers.py``, ``buffered`` (the floor of a
``BufferedProtocol`` echo) among them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
LOAD_C = os.path.join(HERE, "echo_load.c")


def run_once(
    root: str, kind: str, client: str, size: int, concurrency: int, seconds: float, out: str,
    *, lines: bool = False,
) -> tuple[int, int]:
    """Run one server under callgrind for ``seconds`` of load; return (instructions, messages).

    With ``lines`` each message is a text line (``echo_load.c``'s ``lines`` mode).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = root
    python = os.path.realpath(sys.executable)
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            python,
            os.path.join(root, "benchmarks", "_echo_servers.py"),
            kind,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"{kind} server did not start under valgrind")
        port = line.split()[1]
        load = subprocess.run(
            [client, port, str(size), str(concurrency), "0", str(seconds)]
            + (["lines"] if lines else []),
            input="go\n",
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        )
        fields = load.stdout.split()
        if fields[-4:-3] != ["messages"]:
            raise RuntimeError(f"unexpected load generator output {load.stdout!r}")
        messages = int(fields[-3])
        server.stdin.close()
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    with open(out) as f:
        for text in f:
            if text.startswith("summary:") or text.startswith("totals:"):
                return int(text.split()[1]), messages
    raise RuntimeError(f"no instruction total in {out}")


def instruction_grid(
    description: str,
    *,
    sizes: str,
    concurrency: str,
    kinds: str,
    lines: bool = False,
) -> Iterator[tuple[int, int, dict[str, float]]]:
    """Parse the common options, then yield ``(size, conc, {kind: instructions per message})``.

    Shared by this script and ``toolkit_instructions.py``: the options
    ``--sizes --concurrency --kinds --seconds --root`` (defaults given by the
    caller), the checkout's header line, the C load client built once, and
    for each cell the short run subtracted from the long one.
    """
    parser = argparse.ArgumentParser(description=description)
    unit = "line sizes, newline included" if lines else "message sizes"
    parser.add_argument("--sizes", default=sizes, help=unit)
    parser.add_argument("--concurrency", default=concurrency)
    parser.add_argument("--kinds", default=kinds)
    parser.add_argument("--seconds", default="2,6", help="short and long run, seconds of load")
    parser.add_argument("--root", default=REPO_ROOT, help="checkout whose asyncnet is measured")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("cc") is None:
        raise SystemExit("needs valgrind and cc")
    short, long = (float(s) for s in args.seconds.split(","))
    names = args.kinds.split(",")
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
        print(f"{'size':>8} {'conc':>5} " + " ".join(f"{k:>14}" for k in names), flush=True)
        for size in (int(s) for s in args.sizes.split(",")):
            for conc in (int(c) for c in args.concurrency.split(",")):
                per: dict[str, float] = {}
                for kind in names:
                    out = os.path.join(tmp, f"cg.{kind}")
                    i1, m1 = run_once(root, kind, client, size, conc, short, out, lines=lines)
                    i2, m2 = run_once(root, kind, client, size, conc, long, out, lines=lines)
                    per[kind] = (i2 - i1) / (m2 - m1) if m2 > m1 else float("nan")
                yield size, conc, per


def main() -> None:
    for size, conc, per in instruction_grid(
        __doc__.split("\n")[0],
        sizes="1024,10240,102400",
        concurrency="1,10",
        kinds="asyncnet,bare,streams",
    ):
        row = " ".join(f"{v:14.0f}" for v in per.values())
        ratios = ""
        if "asyncnet" in per:
            ratios = "   " + "  ".join(
                f"asyncnet/{k} {per['asyncnet'] / v:.3f}x"
                for k, v in per.items()
                if k != "asyncnet"
            )
        print(f"{size:>8} {conc:>5} {row}{ratios}", flush=True)


if __name__ == "__main__":
    main()
