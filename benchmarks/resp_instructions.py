"""The RESP servers' user-space instructions per request, counted by callgrind.

Each contestant of ``resp_bench.py`` written in Python (``asyncnet``: the
example, ``docs/examples/resp_server.py``; ``asyncnet-await``: the same
example run with ``--await-style``; ``streams``; ``bare``) runs under
``valgrind --tool=callgrind`` while ``redis-benchmark -t set,get -c C -P P``
sends it a short and a long run of requests; the difference in instructions
divided by the difference in requests is the cost of one request, start-up,
the benchmark's own ``CONFIG GET`` and shut-down cancelled out. The server
is stopped with SIGINT, which every contestant turns into a clean exit, so
callgrind writes its totals.

Unlike requests or CPU time per second, instruction counts barely move with
the machine's load, so they tell one version of the example (or of the
toolkit under it) from another on a busy machine. They count user space
only (system calls are invisible): read them next to ``resp_bench.py``'s CPU
time per request, never alone.

Run from the repository root (needs ``valgrind`` and ``redis-benchmark``;
about a minute a cell)::

    python benchmarks/resp_instructions.py
    python benchmarks/resp_instructions.py --pipelines 1 --servers asyncnet,bare
    python benchmarks/resp_instructions.py --pipelines 1 --servers asyncnet --root /path/to/other

``--root DIR`` measures another checkout: its example and its asyncnet (the
"before" of ``benchmarks/README.rst`` is a ``git archive`` of it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from resp_bench import REPO_ROOT, SCRIPTS

KINDS = ",".join(SCRIPTS)


def run_once(root: str, name: str, requests: int, clients: int, pipeline: int, out: str) -> int:
    """Serve ``2 * requests`` requests under callgrind; return the instructions counted."""
    script, *extra = SCRIPTS[name]
    # The same script in the checkout measured (``--root``).
    script = os.path.join(root, os.path.relpath(script, REPO_ROOT))
    env = {**os.environ, "PYTHONPATH": root}
    server = subprocess.Popen(
        [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            os.path.realpath(sys.executable), script, *extra, "--port", "0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"{name} did not start under valgrind")
        port = line.rsplit(":", 1)[1].strip()
        subprocess.run(
            [
                "redis-benchmark", "-h", "127.0.0.1", "-p", port, "-t", "set,get",
                "-n", str(requests), "-c", str(clients), "-P", str(pipeline), "-q",
            ],
            capture_output=True, timeout=600, check=True,
        )  # fmt: skip
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()  # type: ignore[union-attr]
    with open(out) as f:
        for text in f:
            if text.startswith(("summary:", "totals:")):
                return int(text.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=KINDS)
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-n", "--requests", default="2000,6000", help="short and long run")
    parser.add_argument("--root", default=REPO_ROOT, help="checkout whose example is measured")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    if shutil.which("valgrind") is None or shutil.which("redis-benchmark") is None:
        raise SystemExit("needs valgrind and redis-benchmark")
    short, long = (int(n) for n in args.requests.split(","))
    names = args.servers.split(",")
    rev = subprocess.run(
        ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", root, "status", "--porcelain", "asyncnet", "docs/examples"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    print(
        f"{root} at {rev or '?'}{' (modified)' if dirty else ''}; "
        f"python {os.path.realpath(sys.executable)}"
    )
    print(f"redis-benchmark -t set,get -c {args.clients}, runs of -n {short} and -n {long}")
    print("user-space instructions per request (callgrind)")
    print(f"{'-P':>3} " + " ".join(f"{n:>15}" for n in names), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline in (int(p) for p in args.pipelines.split(",")):
            per = {}
            for name in names:
                out = os.path.join(tmp, f"cg.{name}")
                i1 = run_once(root, name, short, args.clients, pipeline, out)
                i2 = run_once(root, name, long, args.clients, pipeline, out)
                per[name] = (i2 - i1) / (2 * (long - short))
            print(f"{pipeline:>3} " + " ".join(f"{per[n]:15.0f}" for n in names), flush=True)


if __name__ == "__main__":
    main()
