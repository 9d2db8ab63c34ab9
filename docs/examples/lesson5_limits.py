"""Lesson 5: limiting concurrency: a semaphore by hand, then ``fetch_all`` doing it for you.

Starting a task per request is easy; starting 10,000 at once overwhelms the
server (and your file descriptors). An ``asyncio.Semaphore(n)`` lets at most
``n`` coroutines past ``async with sem:`` at a time. ``asyncnet.fetch_all``
has the limit built in: ``concurrency`` bounds requests in flight overall and
``per_host`` bounds them per host, using a fixed pool of worker tasks rather
than one task per URL. The servers below count how many requests they serve at
once, which is the honest measure of a limit.
"""

import asyncio
import time
import urllib.request

from _loopback import http_server

import asyncnet

DELAY = 0.05  # each request takes this long on the server


async def main() -> None:
    with http_server() as (base_a, count_a), http_server() as (base_b, count_b):
        # 1. A semaphore around a blocking call moved to threads (kept simple:
        # any awaitable works the same way).
        sem = asyncio.Semaphore(4)

        async def limited_get(url: str) -> bytes:
            async with sem:
                return await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())

        start = time.perf_counter()
        urls = [f"{base_a}/slow?delay={DELAY}" for _ in range(20)]
        bodies = await asyncio.gather(*(limited_get(u) for u in urls))
        print(
            f"Semaphore(4), 20 requests of {DELAY} s: {len(bodies)} done in "
            f"{time.perf_counter() - start:.2f} s; the server saw at most {count_a.peak} at once"
        )

        # 2. fetch_all: the same limit without writing it, plus one per host.
        count_a.peak = 0
        urls = []
        for i in range(20):
            urls.append(f"{base_a}/slow?delay={DELAY}&n={i}")
            urls.append(f"{base_b}/slow?delay={DELAY}&n={i}")
        start = time.perf_counter()
        results = await asyncnet.fetch_all(urls, concurrency=6, per_host=2)
        ok = sum(r.ok for r in results)
        print(
            f"fetch_all(concurrency=6, per_host=2), 40 URLs on 2 hosts: {ok} ok in "
            f"{time.perf_counter() - start:.2f} s; peak in flight per host: "
            f"{count_a.peak} and {count_b.peak} (limit 2 each, 4 in all under the 6 allowed)"
        )
        first = urls[:8]
        results = await asyncnet.fetch_all(first, concurrency=8)
        in_order = [r.url for r in results] == first
        print(f"results come back in input order, whatever finishes first: {in_order}")


if __name__ == "__main__":
    asyncio.run(main())
