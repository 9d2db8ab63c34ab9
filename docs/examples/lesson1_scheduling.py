"""Lesson 1: a coroutine does not run until it is scheduled.

Calling an ``async def`` function only creates a coroutine object; nothing in
its body runs. ``await`` runs it to completion before the next line, so two
awaits in a row take the sum of their times. ``asyncio.create_task`` hands
each coroutine to the event loop at once, so they wait side by side and take
the time of the longest.
"""

import asyncio
import time

DELAY = 0.2  # seconds each job "waits on the network"


async def job(name: str, log: list[str]) -> str:
    log.append(f"{name} started")
    await asyncio.sleep(DELAY)  # stands in for waiting on a socket
    log.append(f"{name} finished")
    return name


async def main() -> None:
    log: list[str] = []

    # 1. Calling the function does not run it.
    coro = job("never-awaited", log)
    await asyncio.sleep(0.05)  # give the loop every chance to run it
    print(f"after calling job() and waiting 50 ms, the log is {log}: the body never ran")
    coro.close()  # discard it cleanly (otherwise: "coroutine was never awaited")

    # 2. Awaiting one after another is sequential.
    start = time.perf_counter()
    await job("a", log)
    await job("b", log)
    sequential = time.perf_counter() - start
    print(f"await a; await b          -> {sequential:.3f} s (about 2 x {DELAY} s)")

    # 3. create_task schedules both now; awaiting them just collects results.
    start = time.perf_counter()
    task_a = asyncio.create_task(job("a", log))
    task_b = asyncio.create_task(job("b", log))
    print(f"tasks created; running yet? a.done()={task_a.done()} (they start at the next await)")
    await task_a
    await task_b
    concurrent = time.perf_counter() - start
    print(f"create_task(a), create_task(b) -> {concurrent:.3f} s (about 1 x {DELAY} s)")
    print(f"speed-up from scheduling both at once: {sequential / concurrent:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
