"""Lesson 6: never block the event loop.

The event loop runs one callback at a time. A coroutine that calls
``time.sleep`` or a synchronous HTTP library holds the loop for the whole
call, so every other task (timers, sockets, other requests) stands still. A
"heartbeat" task that should tick every 10 ms shows it: its largest gap is
how long the loop was frozen. ``asyncio.to_thread`` runs the unavoidable
blocking call in a worker thread, and the heartbeat keeps ticking.

Run it with ``python -X dev`` and asyncio's debug mode also names the
culprit: ``Executing <Task ...> took 0.300 seconds``.
"""

import asyncio
import time
import urllib.request

from _loopback import http_server

TICK = 0.01  # the heartbeat's period
BLOCK = 0.3  # how long each blocking call takes


async def heartbeat(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def measure(label: str, action) -> None:  # type: ignore[no-untyped-def]
    gaps: list[float] = []
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(gaps, stop))
    await asyncio.sleep(3 * TICK)  # let it tick normally first
    await action()
    stop.set()
    await beat
    print(f"{label:<44} longest heartbeat gap: {max(gaps) * 1000:6.1f} ms")


def sync_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


async def main() -> None:
    with http_server() as (base, _):
        slow_url = f"{base}/slow?delay={BLOCK}"

        async def nothing() -> None:
            await asyncio.sleep(BLOCK)

        async def blocking_sleep() -> None:
            time.sleep(BLOCK)  # wrong: freezes the loop

        async def blocking_http() -> None:
            sync_get(slow_url)  # wrong: a synchronous HTTP call in a coroutine

        async def threaded_http() -> None:
            await asyncio.to_thread(sync_get, slow_url)  # right

        print(f"a heartbeat should tick every {TICK * 1000:.0f} ms; each action takes {BLOCK} s")
        await measure("await asyncio.sleep(0.3)", nothing)
        await measure("time.sleep(0.3) inside a coroutine", blocking_sleep)
        await measure("urllib.request.urlopen (0.3 s server)", blocking_http)
        await measure("await asyncio.to_thread(urlopen, ...)", threaded_http)


if __name__ == "__main__":
    asyncio.run(main())
