"""Client memory while a slow consumer streams a large body: asyncnet vs aiohttp vs httpx.

A server in its own process sends ``--size`` bytes (1 GiB by default) as one
``Content-Length`` response, as fast as loopback allows. Each client library
runs in its own process and reads the body through its streaming API,
consuming at most ``--rate`` MB/s (it sleeps whenever it is ahead of that
rate), which is far slower than the server sends: without backpressure the
unread bytes pile up in the client. Printed per library: the growth of the
client process's resident memory over the download (sampled current RSS, and
``ru_maxrss``), the throughput, and the ratio of the growth to asyncnet's.

* asyncnet (this checkout, default Python): ``client.stream("GET", url)`` and
  ``aiter_bytes()``.
* aiohttp (``/opt/benchvenv/bin/python``): ``session.get(url)`` and
  ``resp.content.iter_any()``.
* httpx (same interpreter): ``client.stream("GET", url)`` and ``aiter_bytes()``.

Run from the repository root::

    python benchmarks/http_stream_memory.py                 # 1 GiB at 100 MB/s
    python benchmarks/http_stream_memory.py --size 256M --only asyncnet

Numbers only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
BENCHVENV_PYTHON = os.environ.get("ASYNCNET_BENCH_VENV_PYTHON", "/opt/benchvenv/bin/python")
# A request for this many bytes first loads every lazily imported module, so
# the baseline is taken with the client fully warmed up.
WARMUP_SIZE = 256 * 1024
BLOCK = 256 * 1024


# -- server (its own process) ------------------------------------------------------------


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    block = bytes(range(256)) * (BLOCK // 256)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            size = int(head.split(b" ", 2)[1].lstrip(b"/"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            left = size
            while left > 0:
                piece = block if left >= BLOCK else block[:left]
                writer.write(piece)
                left -= len(piece)
                await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _server_main() -> None:
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    # The parent closes our stdin to stop us (or dies, which closes it too).
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    async with server:
        await asyncio.wait_for(stop, 3600)


# -- clients (one process each) --------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class _Consumer:
    """Takes the body piece by piece at no more than ``rate`` bytes per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.received = 0
        self.chunks = 0
        self.peak_rss = 0
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.peak_rss = _rss_kib()

    async def take(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.chunks += 1
        rss = _rss_kib()
        if rss > self.peak_rss:
            self.peak_rss = rss
        ahead = self.received / self.rate - (time.perf_counter() - self.started)
        if ahead > 0:
            await asyncio.sleep(ahead)


async def _client_asyncnet(url: str, warmup: str, consumer: _Consumer) -> dict[str, Any]:
    import asyncnet

    async with asyncnet.HTTPClient(timeout=None) as client:
        async with client.stream("GET", warmup) as resp:
            async for _ in resp.aiter_bytes():
                pass
        _baseline(consumer)
        async with client.stream("GET", url) as resp:
            async for chunk in resp.aiter_bytes():
                await consumer.take(chunk)
        stats = client.statistics()
    return {
        "version": "this checkout",
        "read_pauses": stats.read_pauses,
        "peak_body_buffered": stats.peak_body_buffered,
    }


async def _client_aiohttp(url: str, warmup: str, consumer: _Consumer) -> dict[str, Any]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(warmup) as resp:
            async for _ in resp.content.iter_any():
                pass
        _baseline(consumer)
        async with session.get(url) as resp:
            async for chunk in resp.content.iter_any():
                await consumer.take(chunk)
    return {"version": aiohttp.__version__}


async def _client_httpx(url: str, warmup: str, consumer: _Consumer) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("GET", warmup) as resp:
            async for _ in resp.aiter_bytes():
                pass
        _baseline(consumer)
        async with client.stream("GET", url) as resp:
            async for chunk in resp.aiter_bytes():
                await consumer.take(chunk)
    return {"version": httpx.__version__}


CLIENTS = {"asyncnet": _client_asyncnet, "aiohttp": _client_aiohttp, "httpx": _client_httpx}
_BASE: dict[str, int] = {}


def _baseline(consumer: _Consumer) -> None:
    gc.collect()
    _BASE["rss"] = _rss_kib()
    _BASE["maxrss"] = _maxrss_kib()
    consumer.start()


async def _client_main(library: str, port: int, size: int, rate: float) -> None:
    consumer = _Consumer(rate)
    url = f"http://127.0.0.1:{port}/{size}"
    warmup = f"http://127.0.0.1:{port}/{WARMUP_SIZE}"
    extra = await CLIENTS[library](url, warmup, consumer)
    elapsed = time.perf_counter() - consumer.started
    print(json.dumps({
        "library": library,
        "python": sys.version.split()[0],
        "received": consumer.received,
        "chunks": consumer.chunks,
        "seconds": elapsed,
        "rss_base_kib": _BASE["rss"],
        "rss_peak_kib": consumer.peak_rss,
        "maxrss_growth_kib": _maxrss_kib() - _BASE["maxrss"],
        **extra,
    }))


# -- driver ----------------------------------------------------------------------------------


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _interpreter(library: str) -> tuple[str, dict[str, str]]:
    if library == "asyncnet":
        # This checkout's asyncnet, never an installed copy.
        return sys.executable, {"PYTHONPATH": REPO_ROOT}
    return BENCHVENV_PYTHON, {}


def _run_client(library: str, port: int, size: int, rate: float, timeout: float) -> dict[str, Any]:
    python, env = _interpreter(library)
    argv = [python, os.path.abspath(__file__), "--client", library, "--port", str(port),
            "--size", str(size), "--rate", str(rate)]
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{library} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _available(library: str) -> str | None:
    python, env = _interpreter(library)
    if not os.path.exists(python):
        return f"{python} not found"
    proc = subprocess.run([python, "-c", f"import {library}"], env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else f"cannot import {library} with {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="body size, e.g. 1G, 256M (default 1G)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="most MB/s (10**6 bytes) the consumer takes (default 100)")
    parser.add_argument("--only", default="asyncnet,aiohttp,httpx",
                        help="comma-separated libraries (default: all three)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = _parse_size(args.size)
    if args.server:
        asyncio.run(_server_main())
        return
    if args.client:
        asyncio.run(_client_main(args.client, args.port, size, args.rate * 1e6))
        return

    libraries = [name.strip() for name in args.only.split(",") if name.strip()]
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--server"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    results: list[dict[str, Any]] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        # The slowest allowed pace, plus room for a loaded machine.
        timeout = 120 + 3 * size / (args.rate * 1e6)
        for library in libraries:
            reason = _available(library)
            if reason is not None:
                print(f"{library}: skipped ({reason})")
                continue
            results.append(_run_client(library, port, size, args.rate, timeout))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)

    print(f"body {size} bytes ({size / 2**20:.0f} MiB), consumer capped at {args.rate:g} MB/s, "
          f"server on 127.0.0.1 in another process")
    header = (f"{'library':<10} {'python':<8} {'version':<14} {'MB/s':>6} "
              f"{'RSS base':>9} {'RSS growth':>11} {'maxrss growth':>14} {'vs asyncnet':>12}")
    print(header)
    print("-" * len(header))
    ours = next((r for r in results if r["library"] == "asyncnet"), None)
    for r in results:
        growth = r["rss_peak_kib"] - r["rss_base_kib"]
        ratio = ""
        if ours is not None:
            base = max(1, ours["rss_peak_kib"] - ours["rss_base_kib"])
            ratio = f"{growth / base:.2f}x"
        ok = "" if r["received"] == size else f"  (received {r['received']} bytes!)"
        print(f"{r['library']:<10} {r['python']:<8} {r['version']:<14} "
              f"{r['received'] / r['seconds'] / 1e6:>6.0f} "
              f"{r['rss_base_kib'] / 1024:>7.1f}Mi {growth / 1024:>9.1f}Mi "
              f"{r['maxrss_growth_kib'] / 1024:>12.1f}Mi {ratio:>12}{ok}")
    if ours is not None:
        print(f"asyncnet: {ours['read_pauses']} read pauses, at most "
              f"{ours['peak_body_buffered'] / 1024:.0f} KiB of body buffered at once")


if __name__ == "__main__":
    main()
