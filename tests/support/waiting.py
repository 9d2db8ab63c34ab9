"""Waiting in tests for a condition that a callback makes true, bounded in count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(cond: Callable[[], bool], what: str) -> None:
    """Wait for a condition that a callback will make true (bounded in count)."""
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")
