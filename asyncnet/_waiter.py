"""The future-like object a receiving task waits on, and the test for a running task.

``_FrameWaiter`` is the one reusable waiter of each await-style connection
(see ``_connection.py``'s docstring for how it is woken); kept apart so
that the connection's module stays about the queue and its rules.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable
from typing import Any, Final

from ._errors import UsageError

__all__ = ["_FrameWaiter", "_running_task"]


# Whether a task is running on a loop (see data_received). On 3.11,
# asyncio.current_task is a Python function around this dict; reading the
# dict directly spares a Python call per wake-up (about 1,200 instructions).
# From 3.12 on, asyncio.current_task is written in C.
_current_tasks: Any = getattr(asyncio.tasks, "_current_tasks", None)
if sys.version_info < (3, 12) and isinstance(_current_tasks, dict):
    _running_task: Callable[[asyncio.AbstractEventLoop], object] = _current_tasks.get
else:
    _running_task = asyncio.current_task

# What _FrameWaiter.result is until a wait is cancelled: a C callable that
# returns None, so the task's wake-up (which calls result()) makes no Python
# call (about 1,000 instructions a frame).
_NO_RESULT: Final = type(None)


class _FrameWaiter:
    """What a task that receives on an empty queue awaits: a reusable, future-like wake-up.

    asyncio's tasks can wait on any object with ``_asyncio_future_blocking``,
    ``_loop`` (or ``get_loop()``), ``add_done_callback()``, ``result()`` and
    ``cancel()`` (the duck type ``asyncio.isfuture`` recognises). This one
    differs from a Future in one way: :meth:`wake` can run the task's wake-up
    at once, from a callback outside any task, where a Future always
    schedules it. ``ConnectionProtocol._run_receiver`` uses that to let the
    receiver take its frame and reply within the read's own pass of the
    event loop when the loop is otherwise idle, and to hold the replies to
    several frames and write them together. It also replaces a Future per
    wait with one object per connection.

    A cancelled wait schedules its wake-up, as a cancelled Future does, and
    makes :meth:`result` raise :class:`asyncio.CancelledError`.

    States: idle (``_callback`` None) -> armed (a task waits: ``_callback``
    is its wake-up) -> idle (woken, or cancelled: the wake-up was run or
    scheduled, exactly once). The awaiting side is
    :meth:`ConnectionProtocol._next_frame`, which yields this object.
    """

    __slots__ = (
        "_asyncio_future_blocking",
        "_callback",
        "_cancel_message",
        "_context",
        "_loop",
        "result",
    )

    result: Callable[[], None]

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._asyncio_future_blocking = False
        self._callback: Callable[[Any], object] | None = None
        self._context: contextvars.Context | None = None
        self._cancel_message: Any = None
        self.result = _NO_RESULT

    # -- what asyncio's Task calls -------------------------------------------------------

    # No get_loop(): a task reads _loop when a future has no get_loop (both
    # asyncio.futures._get_loop and the C Task do), which spares a Python
    # call per wait.

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        if self._callback is not None:
            raise UsageError("one task at a time may wait for a frame")
        self._callback = fn
        self._context = context
        self.result = _NO_RESULT

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        if self._callback is None or self._callback != fn:
            return 0
        self._callback = self._context = None
        return 1

    def cancel(self, msg: Any = None) -> bool:
        callback = self._callback
        if callback is None:
            return False
        self._cancel_message = msg
        self.result = self._raise_cancelled
        self._callback = None
        self._loop.call_soon(callback, self, context=self._context)
        self._context = None
        return True

    def cancelled(self) -> bool:
        return self.result is not _NO_RESULT

    def done(self) -> bool:
        return self._callback is None

    def _raise_cancelled(self) -> None:
        msg = self._cancel_message
        raise asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)

    # -- what the protocol calls --------------------------------------------------------------

    def wake(self, now: bool) -> None:
        """Resume the waiting task, if any: ``now`` (no task may be running), or soon.

        ``ConnectionProtocol._run_receiver`` does what ``wake(True)`` does, inlined.
        """
        callback = self._callback
        if callback is None:
            return
        context = self._context
        self._callback = self._context = None
        if now:
            if context is None:
                callback(self)
            else:
                context.run(callback, self)
        else:
            self._loop.call_soon(callback, self, context=context)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled() else "armed" if self._callback else "idle"
        return f"<frame waiter {state}>"
