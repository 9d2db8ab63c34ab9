"""Lesson 2: waiting for many tasks: gather, wait, as_completed, TaskGroup, cancel.

* ``gather`` returns results in the order given; the first exception is
  raised to you (the other tasks keep running) unless ``return_exceptions=True``,
  which puts exceptions in the list instead.
* ``asyncio.wait(..., timeout=...)`` never raises on timeout: it returns the
  done and pending sets, and you decide what to do with the pending ones.
* ``as_completed`` hands results back in the order they finish.
* ``TaskGroup`` (Python 3.11) waits for all; if one fails it cancels the
  rest and raises an ``ExceptionGroup``.
* ``task.cancel()`` only asks; await the task to know it has really stopped.
"""

import asyncio
import contextlib
import time


async def sleeper(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def failer(seconds: float) -> float:
    await asyncio.sleep(seconds)
    raise ValueError(f"failed after {seconds} s")


async def main() -> None:
    start = time.perf_counter()

    # gather: results in argument order, not completion order.
    results = await asyncio.gather(sleeper(0.06), sleeper(0.02), sleeper(0.04))
    print(f"gather results, in argument order: {results}")

    # gather without return_exceptions: the exception propagates...
    try:
        await asyncio.gather(sleeper(0.02), failer(0.01))
    except ValueError as exc:
        print(f"gather raised the first exception: {exc!r}")
    # ...with it, every outcome comes back in the list.
    mixed = await asyncio.gather(sleeper(0.02), failer(0.01), return_exceptions=True)
    print(f"gather(return_exceptions=True) -> {mixed!r}")

    # asyncio.wait with a timeout: no exception, you get two sets back.
    tasks = [asyncio.create_task(sleeper(s)) for s in (0.01, 0.02, 5.0)]
    t0 = time.perf_counter()
    done, pending = await asyncio.wait(tasks, timeout=0.3)
    print(
        f"wait(timeout=0.3) returned after {time.perf_counter() - t0:.2f} s: "
        f"{len(done)} done, {len(pending)} pending"
    )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)  # let them finish cancelling

    # as_completed: the fastest result comes first.
    racers = [sleeper(0.05), sleeper(0.01), sleeper(0.03)]
    order = [await fut for fut in asyncio.as_completed(racers)]
    print(f"as_completed order: {order} (completion order)")

    # TaskGroup: one failure cancels its siblings.
    survivors: list[str] = []

    async def long_job() -> None:
        try:
            await asyncio.sleep(5)
            survivors.append("long job finished")
        except asyncio.CancelledError:
            survivors.append("long job was cancelled")
            raise

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(long_job())
            tg.create_task(failer(0.01))
    except* ValueError as group:
        print(f"TaskGroup raised {len(group.exceptions)} ValueError(s); sibling: {survivors}")

    # Cancelling: cancel() asks, awaiting the task waits until it has stopped.
    cleaned_up = asyncio.Event()

    async def worker() -> None:
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned_up.set()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)  # let it start
    task.cancel()
    print(f"right after cancel(): done={task.done()}, cleaned up={cleaned_up.is_set()}")
    with contextlib.suppress(asyncio.CancelledError):  # the expected outcome
        await task
    print(
        f"after awaiting it: done={task.done()}, cancelled={task.cancelled()}, "
        f"cleaned up={cleaned_up.is_set()}"
    )
    print(f"lesson 2 took {time.perf_counter() - start:.2f} s in total")


if __name__ == "__main__":
    asyncio.run(main())
