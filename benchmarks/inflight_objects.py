"""Objects the cyclic garbage collector tracks per request in flight, by client.

With 10,000 requests in flight, every full collection walks every tracked
object of every open connection, and full collections come more often the
more objects survive: so this count, not speed, is what the in-flight GC
cost grows with. It does not depend on the machine's load.

One client process (``--client``: ``asyncnet`` for ``fetch_all``,
``aiohttp`` for one ``ClientSession`` and ``gather``, ``asyncio-bare`` for
the minimal Protocol client of ``_contestants.py``) sends ``--count``
requests at once to ``_hold_server.py`` on 10 ports, which holds each
response ``--hold`` seconds. Once the server has accepted every connection
and a moment later (the requests go out right after connecting), the client
collects (removing cyclic garbage so far), counts ``gc.get_objects()``
against the count before the run and prints the difference per request, with
the types that make it up. Runs with ``gc.disable()`` so that nothing is
collected while the requests are set up. aiohttp runs on
``/opt/benchvenv/bin/python``.

::

    python benchmarks/inflight_objects.py --client asyncnet
    python benchmarks/inflight_objects.py --client aiohttp
    python benchmarks/inflight_objects.py --client asyncio-bare
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import subprocess
import sys
from typing import Any

from _harness import BENCHVENV_PYTHON, asyncnet_env, pinned

HERE = os.path.dirname(os.path.abspath(__file__))


def child(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = subprocess.Popen(
        pinned([sys.executable, os.path.join(HERE, "_hold_server.py"), "--ports", "10",
                "--hold", str(args.hold)], args.server_cpus),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    ports = server.stdout.readline().split()[1:]
    urls = [f"http://127.0.0.1:{ports[i % 10]}/100b?i={i}" for i in range(args.count)]

    def server_stats() -> dict[str, Any]:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write("stats\n")
        server.stdin.flush()
        result: dict[str, Any] = json.loads(server.stdout.readline())
        return result

    async def work() -> int:
        if args.client == "asyncnet":
            import asyncnet

            results = await asyncnet.fetch_all(urls, concurrency=len(urls))
            return sum(r.ok for r in results)
        if args.client == "aiohttp":
            import aiohttp

            connector = aiohttp.TCPConnector(limit=len(urls))
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(url: str) -> bool:
                    async with session.get(url) as response:
                        await response.read()
                        return response.status == 200

                return sum(await asyncio.gather(*(one(u) for u in urls)))
        import _contestants

        _contestants._BARE_RESPONSE_SIZE[0] = 166
        outcomes = await _contestants._spread_asyncio_bare(urls, len(urls))
        return sum(1 for status, _, _ in outcomes if status == 200)

    async def main() -> tuple[int, int, collections.Counter[str]]:
        __import__(args.client.split("-")[0])
        gc.collect()
        before_objects = gc.get_objects()
        before = len(before_objects)
        types = collections.Counter(type(o).__name__ for o in before_objects)
        del before_objects
        gc.disable()
        task = asyncio.create_task(work())
        loop = asyncio.get_running_loop()
        for _ in range(int(60 / 0.05)):
            if (await loop.run_in_executor(None, server_stats))["accepted"] >= args.count:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        if task.done():
            raise SystemExit("the requests ended before they were counted: raise --hold")
        gc.collect()
        objects = gc.get_objects()
        live = len(objects) - before
        by_type = collections.Counter(type(o).__name__ for o in objects)
        del objects
        by_type.subtract(types)
        ok = await task
        gc.enable()
        return ok, live, by_type

    try:
        ok, live, by_type = asyncio.run(main())
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    n = args.count
    print(f"{args.client}: {ok}/{n} ok; tracked objects per request in flight: {live / n:.1f}")
    print("   " + ", ".join(f"{k} {v / n:.2f}" for k, v in by_type.most_common(16) if v / n >= 0.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["asyncnet", "aiohttp", "asyncio-bare"],
                        default="asyncnet")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    python = BENCHVENV_PYTHON if args.client == "aiohttp" else sys.executable
    argv = [python, os.path.abspath(__file__), "--child", *sys.argv[1:]]
    env = {**os.environ, **asyncnet_env()}
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + HERE
    return subprocess.run(pinned(argv, args.client_cpus), env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
