"""HTTP clients' user-space instructions per keep-alive request, counted by callgrind.

Requests per second and CPU time per request move by several percent between
runs on a shared machine; the number of instructions a client executes per
request does not. Each client runs under ``valgrind --tool=callgrind`` and
sends sequential keep-alive GETs to nginx on 127.0.0.1, once a short and once
a long series; the difference in instructions divided by the difference in
requests is the cost of one request, with start-up, connecting and shut-down
cancelled out. Only user space is counted: system calls and everything else
the kernel does are invisible here, so read these counts next to CPU time
(``http_client.py``), never alone.

Run from the repository root (needs ``valgrind`` and nginx; about a minute
per client and path)::

    python benchmarks/http_instructions.py
    python benchmarks/http_instructions.py --paths /100b,/chunked --kinds asyncnet,aiohttp
    python benchmarks/http_instructions.py --root /path/to/old/checkout --root .
    python benchmarks/http_instructions.py --new-connections --kinds asyncnet,fetch_all,aiohttp

``--new-connections`` runs nginx with ``keepalive_requests 1``: every request
then opens its own connection, so the count is the cost of one request with
its connect, TLS-less handshake and close (the many-origins case, where most
requests open a connection). Kind ``fetch_all`` sends the same requests
through :func:`asyncnet.fetch_all` at concurrency 1 (over 16 nginx ports
with ``--new-connections``).

Each ``--root`` measures the asyncnet of that checkout (default: this one).
aiohttp runs on ``/opt/benchvenv/bin/python`` (or ``$ASYNCNET_BENCH_VENV_PYTHON``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _harness import BENCHVENV_PYTHON  # noqa: E402
from _nginx import NginxServer, nginx_available  # noqa: E402

# One script per client: N sequential GETs, each body read whole. The URLs
# (comma-separated) are taken in turn: one URL on one keep-alive connection,
# or with --new-connections one per nginx port, so that a port's previous
# connection is gone before it is asked again (fetch_all at concurrency 1
# allows one connection per origin and would otherwise wait for the close).
_CLIENTS = {
    "asyncnet": """
import asyncio, sys
import asyncnet
async def main(urls, n, size):
    async with asyncnet.HTTPClient() as client:
        for i in range(n):
            response = await client.get(urls[i % len(urls)])
            assert len(response.content) == size
asyncio.run(main(sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])))
""",
    # fetch_all one URL at a time: its engine and results on top of the client.
    "fetch_all": """
import asyncio, sys
import asyncnet
async def main(urls, n, size):
    results = await asyncnet.fetch_all([urls[i % len(urls)] for i in range(n)], concurrency=1)
    assert all(len(r.body) == size for r in results)
asyncio.run(main(sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])))
""",
    "aiohttp": """
import asyncio, sys
import aiohttp
async def main(urls, n, size):
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            async with session.get(urls[i % len(urls)]) as response:
                assert len(await response.read()) == size
asyncio.run(main(sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])))
""",
}

_SIZES = {"/100b": 100, "/1k": 1024, "/64k": 65536, "/1m": 1048576, "/chunked": 65536}


def _real_python(python: str) -> str:
    """The interpreter itself, not a pyenv shim: callgrind does not follow the shim's exec.

    Not resolved further: a virtual environment's ``python`` link is what
    makes its packages visible.
    """
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.executable)"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def count(python: str, script: str, env: dict[str, str], urls: str, n: int, size: int) -> int:
    """Instructions callgrind counted for one run of ``script`` with ``n`` requests."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             python, "-c", script, urls, str(n), str(size)],
            capture_output=True, text=True, env=env, timeout=600,
            cwd=tmp,  # not the repository: "-c" puts the working directory first on sys.path
        )
        if proc.returncode != 0:
            raise RuntimeError(f"client failed:\n{proc.stderr[-2000:]}")
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if match is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
        return int(match.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default="/100b", help="comma-separated nginx paths")
    parser.add_argument("--kinds", default="asyncnet,aiohttp", help="asyncnet,fetch_all,aiohttp")
    parser.add_argument("--root", action="append", default=None,
                        help="asyncnet checkout to measure (repeatable)")
    parser.add_argument("--short", type=int, default=500, help="requests in the short run")
    parser.add_argument("--long", type=int, default=2500, help="requests in the long run")
    parser.add_argument("--new-connections", action="store_true",
                        help="nginx closes every connection after one response")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 1
    if not nginx_available():
        print("nginx is not installed (apt-get install nginx)")
        return 1
    roots = [os.path.abspath(r) for r in (args.root or [REPO_ROOT])]
    kinds = [k for k in args.kinds.split(",") if k]
    runs: list[tuple[str, str, dict[str, str]]] = []
    for kind in kinds:
        if kind in ("asyncnet", "fetch_all"):
            for root in roots:
                env = dict(os.environ, PYTHONPATH=root)
                runs.append((f"{kind} ({root})", _real_python(sys.executable),
                             env))
        elif kind == "aiohttp":
            if not os.path.exists(BENCHVENV_PYTHON):
                print(f"skipping aiohttp: {BENCHVENV_PYTHON} not found")
                continue
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            runs.append(("aiohttp", _real_python(BENCHVENV_PYTHON), env))
        else:
            parser.error(f"unknown kind {kind!r}")
    each = "a new connection each" if args.new_connections else "keep-alive"
    print(f"instructions per request (callgrind, user space; {args.long} minus "
          f"{args.short} requests, {each})")
    keepalive, ports = (1, 16) if args.new_connections else (100_000_000, 1)
    with NginxServer(keepalive_requests=keepalive, ports=ports) as nginx:
        for path in args.paths.split(","):
            size = _SIZES[path]
            for name, python, env in runs:
                script = _CLIENTS[name.split()[0]]
                urls = ",".join(nginx.urls(path))
                short = count(python, script, env, urls, args.short, size)
                long = count(python, script, env, urls, args.long, size)
                per = (long - short) / (args.long - args.short)
                print(f"  {path:9s} {name:40s} {per:12,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
