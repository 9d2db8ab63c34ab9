"""The code each benchmark contestant runs, one contestant per subprocess.

``http_client.py`` and ``fetch_many.py`` start this file with the right
interpreter (the default Python with ``PYTHONPATH`` at the repository for
asyncnet; ``/opt/benchvenv/bin/python`` for aiohttp, httpx and uvloop), pinned
to one CPU, and read one JSON object from its standard output. Only the
standard library is imported at module level, so every interpreter can load it;
each contestant imports its own library.

Two jobs:

``load``
    keep-alive GETs of one URL by ``--concurrency`` workers sharing one client,
    reading every body whole. After ``--warmup`` seconds the completed requests
    are counted for ``--duration`` seconds (and at most ``--max-requests``).
    Prints requests per second and the CPU seconds the process used per request.
    Each body is dropped as soon as it is counted, unless ``--keep-bodies``
    keeps the last ``--concurrency`` of them (as a program that works on each
    body while the next request runs would), which changes how the C
    allocator reuses their memory.
``fetch``
    ``--count`` distinct URLs (``?i=N`` appended to ``--url``) fetched at
    ``--concurrency``, as a user of each library would write it. Prints the
    wall time and the peak RSS seen before and after the fetch.
``spread``
    ``--count`` URLs spread round-robin over the origins listed in
    ``--origins-file`` (URL ``i`` goes to origin ``i % N``, path ``--url``
    with ``?i=N``), fetched at ``--concurrency`` (``fetch_origins.py``,
    ``soak.py``). Libraries: ``asyncnet`` (``fetch_all``), ``asyncnet-loop``
    (a bare ``HTTPClient`` loop of ``--concurrency`` workers), ``aiohttp``
    and ``httpx`` (one session or client, ``gather`` and a ``Semaphore``),
    and ``asyncio-bare``: the floor of any asyncio HTTP client, a minimal
    ``asyncio.Protocol`` per URL on a new connection (``create_connection``,
    one write of a fixed request, bytes counted up to the expected response
    length, close; no parsing, no pool, no timeouts), also under
    ``--uvloop``. Prints the wall time, the CPU time per request, the failures by
    exception type, and peak RSS before and after. The soft ``RLIMIT_NOFILE``
    is raised to the hard one first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["ASYNC_LOADERS", "FETCHERS", "SPREADERS", "main"]

BodyGetter = Callable[[], Awaitable[bytes]]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _schedstat() -> tuple[float, float]:
    """Seconds on a CPU and waiting in a run queue for one (Linux; zeros elsewhere)."""
    try:
        with open("/proc/self/schedstat") as f:
            ran, waited, _slices = f.read().split()
    except OSError:
        return 0.0, 0.0
    return int(ran) / 1e9, int(waited) / 1e9


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _Window:
    """Counts completed requests and measures a steady-state window of them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.done = 0
        self.stop = False
        self.kept: deque[bytes] = deque(maxlen=args.concurrency if args.keep_bodies else 0)

    def tick(self, body: bytes) -> None:
        if len(body) != self.args.expect:
            raise RuntimeError(f"got a {len(body)}-byte body, expected {self.args.expect}")
        self.done += 1
        self.kept.append(body)
        if self.done >= self.args.max_requests:
            self.stop = True

    async def measure_async(self) -> dict[str, Any]:
        await asyncio.sleep(self.args.warmup)
        start = self._snapshot()
        await asyncio.sleep(self.args.duration)
        return self._result(start)

    def measure_sync(self) -> dict[str, Any]:
        time.sleep(self.args.warmup)
        start = self._snapshot()
        time.sleep(self.args.duration)
        return self._result(start)

    def _snapshot(self) -> tuple[int, float, float]:
        return self.done, _cpu(), time.perf_counter()

    def _result(self, start: tuple[int, float, float]) -> dict[str, Any]:
        n1, c1, t1 = self._snapshot()
        self.stop = True
        n0, c0, t0 = start
        n = n1 - n0
        return {
            "requests": n,
            "seconds": t1 - t0,
            "rps": n / (t1 - t0),
            "cpu_per_request_us": (c1 - c0) / n * 1e6 if n else None,
        }


async def _run_async_load(args: argparse.Namespace, get: BodyGetter) -> dict[str, Any]:
    window = _Window(args)
    # One request first: fails fast, with the library's own error, on a broken setup.
    window.tick(await get())

    async def worker() -> None:
        while not window.stop:
            window.tick(await get())

    tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    try:
        result = await window.measure_async()
    finally:
        window.stop = True
    await asyncio.gather(*tasks)
    return result


async def _load_asyncnet(args: argparse.Namespace) -> dict[str, Any]:
    import asyncnet

    limits = asyncnet.Limits(max_connections=args.concurrency, max_per_host=args.concurrency)
    async with asyncnet.HTTPClient(limits=limits, proxy=args.proxy) as client:
        url = args.url

        async def get() -> bytes:
            resp = await client.get(url)
            return await resp.read()

        return await _run_async_load(args, get)


async def _load_aiohttp(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = args.url
        proxy = args.proxy

        async def get() -> bytes:
            async with session.get(url, proxy=proxy) as resp:
                return await resp.read()

        return await _run_async_load(args, get)


async def _load_httpx(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    # Keep every connection alive: httpx's default keeps only 20 idle ones.
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(limits=limits) as client:
        url = args.url

        async def get() -> bytes:
            resp = await client.get(url)
            return resp.content

        return await _run_async_load(args, get)


def _load_http_client(args: argparse.Namespace) -> dict[str, Any]:
    import http.client

    parts = urllib.parse.urlsplit(args.url)
    target = parts.path or "/"
    window = _Window(args)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            while not window.stop:
                conn.request("GET", target)
                body = conn.getresponse().read()
                with lock:
                    window.tick(body)
        except BaseException as exc:
            errors.append(exc)
            window.stop = True
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    try:
        result = window.measure_sync()
    finally:
        window.stop = True
        for t in threads:
            t.join(timeout=30)
    if errors:
        raise errors[0]
    return result


async def _fetch_asyncnet(urls: list[str], concurrency: int) -> list[tuple[int, int]]:
    import asyncnet

    results = await asyncnet.fetch_all(urls, concurrency=concurrency)
    return [(r.status or 0, len(r.body or b"")) for r in results]


async def _fetch_aiohttp(urls: list[str], concurrency: int) -> list[tuple[int, int]]:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def fetch(url: str) -> tuple[int, bytes]:
            async with sem, session.get(url) as resp:
                return resp.status, await resp.read()

        # Every body stays in memory until the end, as fetch_all's results keep them.
        results = await asyncio.gather(*(fetch(u) for u in urls))
    return [(status, len(body)) for status, body in results]


async def _fetch_httpx(urls: list[str], concurrency: int) -> list[tuple[int, int]]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:

        async def fetch(url: str) -> tuple[int, bytes]:
            async with sem:
                resp = await client.get(url)
                return resp.status_code, resp.content

        results = await asyncio.gather(*(fetch(u) for u in urls))
    return [(status, len(body)) for status, body in results]


def _fd_budget(concurrency: int) -> int:
    # The rule docs/http-client.rst gives for max_connections (and fetch_all
    # applies): half the descriptor limit, at most 10,000, at least the concurrency.
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(concurrency, min(soft // 2, 10_000))


Outcome = tuple[int, int, str]  # status (0: none), body size, error type ("" if none)


async def _spread_asyncnet(urls: list[str], concurrency: int) -> list[Outcome]:
    import asyncnet

    results = await asyncnet.fetch_all(urls, concurrency=concurrency)
    return [
        (r.status or 0, r.size, "" if r.error is None else type(r.error).__name__)
        for r in results
    ]


async def _spread_asyncnet_loop(urls: list[str], concurrency: int) -> list[Outcome]:
    import asyncnet

    limits = asyncnet.Limits(max_connections=_fd_budget(concurrency), max_per_host=concurrency)
    outcomes: list[Outcome] = [(0, 0, "")] * len(urls)
    todo = iter(enumerate(urls))
    async with asyncnet.HTTPClient(limits=limits) as client:

        async def worker() -> None:
            for i, url in todo:
                try:
                    resp = await client.get(url)
                    body = await resp.read()
                except asyncnet.AsyncNetError as exc:
                    outcomes[i] = (0, 0, type(exc).__name__)
                else:
                    outcomes[i] = (resp.status, len(body), "")

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(urls)))))
    return outcomes


async def _spread_aiohttp(urls: list[str], concurrency: int) -> list[Outcome]:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    # aiohttp's limit counts connections in use only (idle ones are kept
    # apart, unbounded): its default of 100 is raised to the concurrency.
    connector = aiohttp.TCPConnector(limit=max(100, concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> Outcome:
            try:
                async with sem, session.get(url) as resp:
                    return resp.status, len(await resp.read()), ""
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                return 0, 0, type(exc).__name__

        return list(await asyncio.gather(*(fetch(u) for u in urls)))


async def _spread_aiohttp_keep(urls: list[str], concurrency: int) -> list[Outcome]:
    """aiohttp keeping what ``fetch_all``'s results keep: status, reason, headers, body.

    ``_spread_aiohttp`` keeps a status and a length per URL; ``fetch_all``
    returns every response's headers and body, which the process holds (and
    its garbage collector walks) until the end. This one does the same work.
    """
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=max(100, concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> tuple[int, str, Any, bytes] | str:
            try:
                async with sem, session.get(url) as resp:
                    return resp.status, resp.reason or "", resp.headers, await resp.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                return type(exc).__name__

        kept = await asyncio.gather(*(fetch(u) for u in urls))
    return [(0, 0, r) if isinstance(r, str) else (r[0], len(r[3]), "") for r in kept]


async def _spread_httpx(urls: list[str], concurrency: int) -> list[Outcome]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    # httpx's max_connections counts idle ones too; keep every one it may open.
    n = max(100, concurrency)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits) as client:

        async def fetch(url: str) -> Outcome:
            try:
                async with sem:
                    resp = await client.get(url)
                    return resp.status_code, len(resp.content), ""
            except httpx.HTTPError as exc:
                return 0, 0, type(exc).__name__

        return list(await asyncio.gather(*(fetch(u) for u in urls)))


class _BareProtocol(asyncio.Protocol):
    """One request on its own connection: write it, count the answer's bytes, close."""

    def __init__(self, request: bytes, need: int, done: asyncio.Future[int]) -> None:
        self.request = request
        self.need = need
        self.got = 0
        self.done = done
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= self.need and self.transport is not None:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(self.got)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.got)


# Bytes of a whole response the bare client counts to: set from --response-size.
_BARE_RESPONSE_SIZE = [0]


async def _spread_asyncio_bare(urls: list[str], concurrency: int) -> list[Outcome]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    need = _BARE_RESPONSE_SIZE[0]

    async def fetch(url: str) -> Outcome:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = parts.path + ("?" + parts.query if parts.query else "")
        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        done: asyncio.Future[int] = loop.create_future()
        try:
            async with sem:
                await loop.create_connection(
                    lambda: _BareProtocol(request, need, done), host, port
                )
                got = await done
        except OSError as exc:
            return 0, 0, type(exc).__name__
        # No parsing: a whole response of the expected size counts as a 200 with its body.
        return (200, -1, "") if got == need else (0, got, "short response")

    return list(await asyncio.gather(*(fetch(u) for u in urls)))


SPREADERS: dict[str, Callable[[list[str], int], Awaitable[list[Outcome]]]] = {
    "asyncnet": _spread_asyncnet,
    "asyncnet-loop": _spread_asyncnet_loop,
    "aiohttp": _spread_aiohttp,
    "aiohttp-keep": _spread_aiohttp_keep,
    "httpx": _spread_httpx,
    "asyncio-bare": _spread_asyncio_bare,
}


def _run_spread(args: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.origins_file) as f:
        origins = [line.strip() for line in f if line.strip()]
    path = args.url
    n = len(origins)
    urls = [f"{origins[i % n]}{path}?i={i}" for i in range(args.count)]
    spreader = SPREADERS[args.library]
    _BARE_RESPONSE_SIZE[0] = args.response_size
    importlib.import_module(args.library.split("-")[0])
    rss_before = _maxrss_kib()
    c0 = _cpu()
    ran0, waited0 = _schedstat()
    t0 = time.perf_counter()
    outcomes = asyncio.run(spreader(urls, args.concurrency))
    wall = time.perf_counter() - t0
    cpu = _cpu() - c0
    ran1, waited1 = _schedstat()
    # The bare client does not parse: a whole response stands for a right body.
    outcomes = [(s, args.expect if n == -1 else n, e) for s, n, e in outcomes]
    ok = sum(1 for status, size, _ in outcomes if status == 200 and size == args.expect)
    errors: dict[str, int] = {}
    for status, size, error in outcomes:
        if not (status == 200 and size == args.expect):
            what = error or f"status {status} size {size}"
            errors[what] = errors.get(what, 0) + 1
    return {
        "urls": len(urls),
        "origins": n,
        "ok": ok,
        "errors": errors,
        "wall": wall,
        "rps": len(urls) / wall,
        "cpu_per_request_us": cpu / len(urls) * 1e6,
        # The wall split: running, runnable but waiting for a CPU (the
        # machine's other load), and the rest: idle, waiting for the server.
        "ran_s": ran1 - ran0,
        "runqueue_s": waited1 - waited0,
        "maxrss_before_kib": rss_before,
        "maxrss_kib": _maxrss_kib(),
    }


ASYNC_LOADERS: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "asyncnet": _load_asyncnet,
    "aiohttp": _load_aiohttp,
    "httpx": _load_httpx,
}

FETCHERS: dict[str, Callable[[list[str], int], Awaitable[list[tuple[int, int]]]]] = {
    "asyncnet": _fetch_asyncnet,
    "aiohttp": _fetch_aiohttp,
    "httpx": _fetch_httpx,
}


def _install_uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _run_load(args: argparse.Namespace) -> dict[str, Any]:
    if args.library == "http.client":
        return _load_http_client(args)
    return asyncio.run(ASYNC_LOADERS[args.library](args))


def _run_fetch(args: argparse.Namespace) -> dict[str, Any]:
    sep = "&" if "?" in args.url else "?"
    urls = [f"{args.url}{sep}i={i}" for i in range(args.count)]
    fetcher = FETCHERS[args.library]
    # Import the library first: the baseline RSS includes what merely importing costs.
    importlib.import_module(args.library)
    rss_before = _maxrss_kib()
    t0 = time.perf_counter()
    outcomes = asyncio.run(fetcher(urls, args.concurrency))
    wall = time.perf_counter() - t0
    ok = sum(1 for status, size in outcomes if status == 200 and size == args.expect)
    return {
        "urls": len(urls),
        "ok": ok,
        "wall": wall,
        "rps": len(urls) / wall,
        "maxrss_before_kib": rss_before,
        "maxrss_kib": _maxrss_kib(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark contestant (internal)")
    parser.add_argument("job", choices=["load", "fetch", "spread"])
    parser.add_argument(
        "library",
        choices=[
            "asyncnet", "asyncnet-loop", "aiohttp", "aiohttp-keep", "httpx", "http.client",
            "asyncio-bare",
        ],
    )
    parser.add_argument("--url", required=True, help="the URL (spread: the path)")
    parser.add_argument("--origins-file", help="spread: origin URLs, one a line")
    parser.add_argument("--expect", type=int, required=True, help="expected body size")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=5_000_000)
    parser.add_argument(
        "--keep-bodies", action="store_true", help="keep the last --concurrency bodies alive"
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument(
        "--response-size", type=int, default=0,
        help="spread, asyncio-bare: bytes of one whole response (head and body)",
    )
    parser.add_argument(
        "--proxy", default=None, help="proxy URL (load job, asyncnet and aiohttp only)"
    )
    args = parser.parse_args(argv)
    if args.job == "spread":
        if not args.origins_file:
            parser.error("spread needs --origins-file")
        with open(args.origins_file) as f:
            hosts = {urllib.parse.urlsplit(line.strip()).hostname for line in f if line.strip()}
    else:
        hosts = {urllib.parse.urlsplit(args.url).hostname}
    if args.proxy:
        hosts.add(urllib.parse.urlsplit(args.proxy).hostname)
    if not hosts <= {"127.0.0.1", "::1", "localhost"}:
        parser.error("benchmarks talk to loopback only")
    if args.uvloop:
        _install_uvloop()
    if args.job == "spread":
        result = _run_spread(args)
    else:
        result = _run_load(args) if args.job == "load" else _run_fetch(args)
    result["pid"] = os.getpid()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
