"""Writes coalesced across connections: ``FramedProtocol(coalesce_writes=True)``.

:class:`PassWriter` holds, for one event loop, the replies that framed
protocols sent while the loop's pass had other callbacks to run, and writes
them after the pass's last read. The decision to hold is made in
``FramedProtocol.send_nowait`` (which inlines :meth:`PassWriter.waiting`
and :meth:`PassWriter.hold` on its fast path) and ``FramedProtocol._end_cork``
(which calls them), in ``_framed.py``; this module keeps the held replies,
the flush and the per-loop registry.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from typing import Any

__all__ = ["PassWriter"]


class PassWriter:
    """The replies held by ``coalesce_writes`` in one event loop, written after its pass.

    asyncio runs a pass of its loop as: wait for events, queue a callback per
    ready socket (``loop._ready``), run the callbacks queued then. While a
    callback runs, ``loop._ready`` holds the ones after it. A protocol with
    ``coalesce_writes`` that sends a reply while that queue holds anything
    besides the writer's own flush appends ``(protocol, transport, reply)``
    to :attr:`held` instead of writing it. The first reply held schedules
    the flush (``call_soon``) unless it is still queued, so that whatever
    the rest of the pass does, the held replies are written at the start of
    the next pass at the latest. Usually the pass's last read sends its
    reply with nothing but the flush queued after it: :meth:`flush_now`
    writes every held reply, then the read writes its own.

    The flush stays queued when it has nothing left to do (a pass that ends
    with it costs the loop a poll that does not wait): taken off the queue,
    a flush that the loop had already counted into its pass (queued in an
    earlier one) would make the loop pop from an empty queue. While it is
    queued, :attr:`scheduled` is 1, so ``len(ready) > scheduled`` is "other
    callbacks wait".

    Why: redis-benchmark sends each of its 50 connections' requests as soon
    as the reply to the previous one arrives, from one thread. Written one
    at a time, between the parsing of the next requests, each reply woke the
    client anew (``perf``: the wake-up in ``sock_def_readable``, under our
    ``send``, was 15% of the server's CPU time); written together, they wake
    it once per pass. The RESP example under ``redis-benchmark -t get -c 50
    -P 1``: 97,000 -> 105,000 requests per second, 5.0-5.4 -> 4.2-4.6 us of
    system time per request (benchmarks/README.rst, "Coalesced writes").

    One writer per loop (:meth:`of`), made on first use; a loop without an
    ``asyncio``-style ``_ready`` deque (uvloop) gets none, and its
    protocols write at once. The writer holds no reference to its loop
    (which keys it weakly): it finds the loop running when it needs it.
    """

    __slots__ = ("held", "ready", "scheduled")

    def __init__(self, ready: collections.deque[Any]) -> None:
        self.ready = ready
        # (FramedProtocol, its transport, the reply)
        self.held: list[tuple[Any, asyncio.Transport, bytes]] = []
        self.scheduled = 0

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> PassWriter | None:
        """The writer of ``loop``, or None if its queue of callbacks cannot be seen."""
        try:
            return _WRITERS[loop]
        except KeyError:
            ready = getattr(loop, "_ready", None)
            writer = cls(ready) if isinstance(ready, collections.deque) else None
            _WRITERS[loop] = writer
            return writer

    def waiting(self) -> bool:
        """Whether other callbacks than the writer's flush wait in the loop's queue."""
        return len(self.ready) > self.scheduled

    def hold(self, protocol: Any, transport: asyncio.Transport, data: bytes) -> None:
        """Hold ``data``, ``protocol``'s reply (which holds no other), until the flush."""
        if not self.scheduled:
            self.schedule()
        self.held.append((protocol, transport, data))
        protocol._coalesced = True

    def schedule(self) -> None:
        """Queue the flush: the held replies are written from a callback of their own."""
        asyncio.get_running_loop().call_soon(self._scheduled_flush)
        self.scheduled = 1

    def _scheduled_flush(self) -> None:
        self.scheduled = 0
        self.flush_now()

    def flush_now(self) -> None:
        """Write every held reply, in the order sent; drop those of closing transports."""
        held = self.held
        if not held:
            return
        # A new list, so that a write that calls back into a protocol (it
        # cannot on asyncio's socket transport) would not change this one.
        self.held = []
        for protocol, transport, data in held:
            protocol._coalesced = False
            # As _flush_cork: a transport already closing drops writes; one
            # half-closed (write_eof) would raise, and send_eof flushed first.
            if not transport._closing and not transport._eof:  # type: ignore[attr-defined]
                try:
                    transport.write(data)
                except Exception as exc:  # reported; the other replies are still written
                    asyncio.get_running_loop().call_exception_handler(
                        {"message": "coalesced write failed", "exception": exc,
                         "protocol": protocol, "transport": transport}
                    )


# Each event loop's PassWriter (None: the loop's queue cannot be seen), for
# as long as the loop lives (the writer does not keep it alive).
_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PassWriter | None] = (
    weakref.WeakKeyDictionary()
)
