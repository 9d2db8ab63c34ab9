"""Shared test machinery: run ``async def`` tests without plugins, and fail on leaks.

Each coroutine test runs in a fresh event loop under a hard time ceiling.
After it returns, any task still pending, any exception passed to the loop's
exception handler ("Task exception was never retrieved", errors in
callbacks) and, through ``filterwarnings = error``, any ResourceWarning for an
unclosed transport fails the test.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import settings

# No per-example deadline: the suite shares two cores with other work, and a
# slow example is not a wrong one. In CI the examples are derandomized so a
# run is reproducible; locally each run explores new inputs.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# A hung test must fail rather than hang CI; generous because CI runs on 2 cores.
TEST_CEILING_SECONDS = 60.0


def _run_async_test(func: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any]) -> None:
    loop_errors: list[dict[str, Any]] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop_errors.append(context)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(handler)
        async with asyncio.timeout(TEST_CEILING_SECONDS):
            await func(**kwargs)
        # Give callbacks scheduled by close() (connection_lost and friends) a turn.
        for _ in range(5):
            await asyncio.sleep(0)
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if pending:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise AssertionError(f"test left {len(pending)} task(s) pending: {pending!r}")

    runner = asyncio.Runner()
    try:
        runner.run(main())
    finally:
        runner.close()
        # Collect now so that ResourceWarnings from objects of this test are
        # raised here, attributed to it, instead of in some later test.
        gc.collect()
    if loop_errors:
        messages = [
            f"{ctx.get('message')}: {ctx.get('exception')!r}" for ctx in loop_errors
        ]
        raise AssertionError("event loop reported errors: " + "; ".join(messages))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run coroutine test functions in a fresh loop; leave the rest to pytest."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    _run_async_test(func, kwargs)
    return True
