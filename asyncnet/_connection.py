"""Framed connections, ``await`` style: the receive queue, its wake-ups, :class:`Connection`.

:class:`ConnectionProtocol` is a :class:`~asyncnet.FramedProtocol` that
queues decoded frames, bounded in bytes by the rule below, for one task that
awaits them through :class:`Connection` (what :func:`~asyncnet.start_server`
hands to a handler and :func:`~asyncnet.open_connection` returns).

The receive rule, which bounds its memory:

* reading pauses when ``queued + partial > receive_limit`` while at least one
  frame is queued (``queued``: wire bytes of decoded frames not yet taken,
  plus ``FRAME_COST``, 56, for each, about what a short frame costs as an
  object; ``partial``: the decoder's bytes of the frame under construction);
* it resumes when a frame is taken and ``queued + partial <= receive_low``, or
  the queue is empty, so reading is always flowing before anyone waits;
* with nothing queued it never pauses: the consumer needs the rest of the frame,
  and the framer's own limit (``max_length``/``max_frame``) bounds it.

A read is decoded ``DECODE_STEP`` (8 KiB) at a time, and no further than
the step that fills the queue: the rest of it waits, undecoded, for the
queue to fall to its low mark. So, per connection, the receive side holds
at most ``receive_limit + one step's frames + max_frame + one read``, where
one step's frames count as in the queue (8 KiB, plus ``FRAME_COST`` for
each), and the send side ``high_water`` plus the last frame written before
``send`` waited. (The peer's EOF, which asyncio's TLS transport reports
even while reading is paused, has the rest decoded at once, before the end.)

How a task waiting on an empty queue is woken is where the ``await`` style's
speed is won or lost, so it is written down here, once:

* the task waits on ``_FrameWaiter``, one reusable future-like object per
  connection, through ``ConnectionProtocol._next_frame``, one generator per
  frame (also the ``async for`` iterator);
* a read that finds it waiting runs its wake-up from the read's own callback
  when the loop has nothing else ready, else from the next pass, one
  callback for all of a server's connections (``_run_receivers``);
* replies to several frames of one read are held and written together
  (``ConnectionProtocol._run_receiver``), and so are the replies of all the
  receivers one pass wakes, after the last of them (``_run_receivers``).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import types
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, Final, Generic, TypeVar, cast

from ._errors import ConnectionClosed, EndOfStream, ReadError, UsageError
from ._flow import DEFAULT_HIGH, DEFAULT_RECEIVE_LIMIT, WaterMarks
from ._framed import _QUEUE_FULL, _STOPPED, ConnectionStatistics, FramedProtocol
from ._framing import Framing
from ._lifetime import Site, warn_unclosed
from ._waiter import _FrameWaiter, _running_task

__all__ = ["DECODE_STEP", "FRAME_COST", "Connection", "ConnectionProtocol", "connection_factory"]

F = TypeVar("F")

# What a queued frame counts against the receive limit beside its wire bytes:
# about what it costs as an object (a short bytes object and its two queue
# slots take 50 bytes; tracemalloc, CPython 3.11), so that the limit bounds
# memory, not only bytes, when frames are tiny.
FRAME_COST: Final = 56

# A read larger than this is decoded a step of this size at a time, and no
# further than the step that fills the queue (see _receive_in_steps).
DECODE_STEP: Final = 8 * 1024


class ConnectionProtocol(FramedProtocol[F]):
    """The protocol under a :class:`Connection`: frames wait in a queue bounded in bytes.

    See the module docstring for the receive rule.
    """

    # See FramedProtocol.__slots__.
    __slots__ = (
        "_costs",
        "_end",
        "_frames",
        "_held",
        "_loop",
        "_loop_ready",
        "_partial",
        "_queued",
        "_receiving",
        "_unfed",
        "_waiter",
        "_wake_batch",
        "_wake_pending",
        "closed",
        "receive_limit",
        "receive_low",
    )

    _couple_directions = False

    def __init__(
        self,
        framing: Framing[F] | None = None,
        *,
        high_water: int = DEFAULT_HIGH,
        low_water: int | None = None,
        receive_limit: int = DEFAULT_RECEIVE_LIMIT,
        receive_low: int | None = None,
    ) -> None:
        super().__init__(framing, high_water=high_water, low_water=low_water)
        marks = WaterMarks(receive_limit, receive_low)
        self.receive_limit = marks.high
        self.receive_low = marks.low
        self._frames: collections.deque[F] = collections.deque()
        self._costs: collections.deque[int] = collections.deque()
        self._queued = 0
        # decoder.buffered as of the last feed (only feeding changes it).
        self._partial = 0
        # The delimited decoders' buffered is the length of their bytearray
        # _buf (never rebound): len() of it is a C call, where the property
        # is a Python call per read (toolkit_instructions.py, 64-byte lines,
        # await: 48,600 -> 48,100 instructions at concurrency 1, 43,440 -> 43,070 at 10).
        held = getattr(self._decoder, "_buf", None) if self._builtin_decoder else None
        self._held: bytearray | None = held if type(held) is bytearray else None
        # Why no more frames will come, once known: raised after the queue drains.
        self._end: Exception | None = None
        # The rest of a large read, left undecoded when the queue filled (see
        # _receive_in_steps); None: nothing.
        self._unfed: bytes | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._waiter = _FrameWaiter(loop)
        self._receiving = False
        self._wake_pending = False
        # Set by a server to the list its connections share (see _run_receivers).
        self._wake_batch: list[ConnectionProtocol[Any]] | None = None
        # The loop's queue of ready callbacks, to tell whether it has anything
        # else to do (see _run_receiver); None for loops that do not show it
        # (uvloop): then wake-ups always go to the next pass, as a Future's.
        ready = getattr(loop, "_ready", None)
        self._loop_ready: collections.deque[Any] | None = (
            ready if isinstance(ready, collections.deque) else None
        )
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        """Decode ``data``; queue the frames; pause reading if the queue is over its limit."""
        size = len(data)
        if size > DECODE_STEP and not self._raw:
            self.bytes_received += size
            self._receive_in_steps(data)
            return
        self.bytes_received += size
        if self._raw:
            # Raw(): the read is the frame (see FramedProtocol.__init__).
            if not size:
                return
            self._frames.append(data if type(data) is bytes else bytes(data))  # type: ignore[arg-type]
            size += FRAME_COST
            self._costs.append(size)
            self._queued += size
            self.frames_received += 1
            partial = 0
        else:
            decoder = self._decoder
            before = self._partial
            try:
                frames = decoder.feed(data)
            except Exception as exc:
                self._partial = decoder.buffered
                self._decode_failed(exc)
                return
            # Kept rather than asked for again (a property call) before the next read.
            held = self._held
            partial = self._partial = len(held) if held is not None else decoder.buffered
            if not frames:
                # Only the partial frame grew: the rule holds it against the
                # limit too, while frames are queued.
                if self._frames and self._queued + partial > self.receive_limit:
                    self._pause_reading(_QUEUE_FULL)
                return
            count = len(frames)
            # The wire bytes these frames took, and FRAME_COST each; shared
            # out so that taking a frame releases its part of the receive limit.
            consumed = size + before - partial
            if consumed < 0:
                consumed = 0
            consumed += count * FRAME_COST
            if count == 1:
                self._frames.append(frames[0])
                self._costs.append(consumed)
            else:
                share, extra = divmod(consumed, count)
                self._frames.extend(frames)
                costs = self._costs
                costs.extend(itertools.repeat(share, count))
                costs[-1] += extra
            self._queued += consumed
            self.frames_received += count
            if not self._builtin_decoder:
                self._check_pending_error()
            elif decoder._error is not None:  # type: ignore[attr-defined]
                self._decode_failed(decoder._error)  # type: ignore[attr-defined]
        if self._waiter._callback is not None and not self._wake_pending:
            # A receiver waits: run it now when the loop has nothing else to
            # do, else from the next pass (see _run_receiver). It cannot feed
            # the decoder, so partial stays what it is.
            ready = self._loop_ready
            if ready is not None and not ready and _running_task(self._loop) is None:
                self._run_receiver()
            else:
                self._wake_pending = True
                batch = self._wake_batch
                if batch is None:
                    self._loop.call_soon(self._run_receiver)
                else:
                    # A server's connections share one callback per pass
                    # (see _run_receivers).
                    if not batch:
                        self._loop.call_soon(_run_receivers, batch)
                    batch.append(self)
        # Only while frames are queued (the rule in the module docstring): the receiver
        # just run may have taken them all and be waiting for the rest of the
        # partial frame, which a pause would hold back for good.
        if self._queued + partial > self.receive_limit and self._frames:
            self._pause_reading(_QUEUE_FULL)

    def _receive_in_steps(self, data: bytes) -> None:
        """Receive a large read as reads of ``DECODE_STEP`` bytes, up to one that fills the queue.

        The bytes after it wait undecoded (``_unfed``) until the queue falls
        to its low mark (``_queue_drained``). So the frames decoded at once
        are those of one step, not of a whole read: a read of 124 KiB of
        two-byte lines would otherwise be some 40,000 frames at once, about
        2 MiB of objects.
        """
        for start in range(0, len(data), DECODE_STEP):
            piece = data[start : start + DECODE_STEP]
            # Counted when read (data_received): not again for each step.
            self.bytes_received -= len(piece)
            self.data_received(piece)
            if self._pause_reasons:
                # The queue is full (else decoding failed: nothing more is wanted).
                rest = data[start + DECODE_STEP :]
                if rest and self._pause_reasons == _QUEUE_FULL:
                    self._unfed = rest
                return

    def _queue_drained(self) -> None:
        """The queue fell to its low mark: decode what a read left, and read again."""
        self._resume_reading(_QUEUE_FULL)
        unfed = self._unfed
        if unfed is not None:
            self._unfed = None
            self._receive_in_steps(unfed)

    def _take_everything(self) -> None:
        """Decode what a read left undecoded: the peer's EOF came while reading was paused.

        Asyncio's TLS transport (and the testing kit's memory transport)
        report the EOF even while reading is paused; the rest of the last
        read is then decoded at once, before the decoder is told of the end.
        """
        while self._unfed is not None:
            unfed, self._unfed = self._unfed, None
            # Each round decodes at least one step, though the queue is full.
            self._pause_reasons &= ~_QUEUE_FULL
            self._receive_in_steps(unfed)

    def frame_error(self, exc: Exception) -> None:
        """Deliver the error to the consumer after the frames queued before it."""
        if self._end is None:
            self._end = exc
        self._wake()

    def end_received(self) -> bool:
        """The peer finished sending: the consumer sees the end once the queue drains."""
        if self._end is None:
            self._end = EndOfStream("the peer finished sending")
        self._pause_reading(_STOPPED)
        self._wake()
        # Keep the transport open: the handler may still reply (half-close;
        # not over TLS, see FramedProtocol.eof_received).
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake the consumer with the end of the stream or the transport's error."""
        super().connection_lost(exc)
        self._unfed = None
        if self._end is None:
            if exc is not None:
                error: Exception = ReadError(f"connection lost: {exc}")
                error.__cause__ = exc
            else:
                error = ConnectionClosed("the connection was closed")
            self._end = error
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        # The end of the stream, or an error: the receiver runs on the next pass.
        self._waiter.wake(False)

    def _run_receiver(self, hold: bool = False) -> None:
        """Run the waiting receiver's wake-up, holding its replies if several frames wait.

        Called by data_received, either at once or from the next pass of the
        loop. At once only when the loop has nothing else ready (its ready
        queue is empty: one connection active, typically): then a scheduled
        wake-up would cost a whole extra pass, an ``epoll_wait`` included,
        for nothing. With other callbacks ready (many active connections)
        the wake-ups go to the next pass, so that all reads of one pass are
        done before the replies to them are sent: replies interleaved with
        reads cost the peers more wake-ups and us more kernel time
        (redis-benchmark -c 50 -P 1: 18.0 against 13.6 us of server CPU per
        request). Measured on the 64-byte line echo, one connection: about
        a quarter less user CPU per message than with every wake-up
        scheduled (14-15.6 against 19.8-20.3 us on the shared test machine).

        Several frames at once (a pipelining peer): the replies the receiver
        sends meanwhile are held and written together when it waits again,
        one send() system call instead of one per reply (redis-benchmark
        -P 16, resp_server.py: 8.8 -> 5.4 us of server CPU per request,
        1.3x -> 2.1x the streams version's requests per second). They are
        written as soon as they and the transport's buffer pass high_water,
        so the send side's bound stays high_water plus the last frame;
        close, abort and send_eof write them first, so nothing is reordered
        or lost.

        With ``hold`` (``_run_receivers``, several receivers in one pass) the
        replies are held whatever the number of frames, and left held: the
        caller writes them once every receiver of the pass has run.
        """
        # Never inside a task: data_received calls this only when no task is
        # running, and the loop runs its callbacks outside tasks.
        self._wake_pending = False
        waiter = self._waiter
        callback = waiter._callback
        if callback is None:
            return  # cancelled meanwhile: the frames wait for the next receive
        # waiter.wake(True), inlined: a Python call less per wake-up
        # (toolkit_instructions.py, 64-byte lines, await: 47,610 -> 47,180
        # instructions at concurrency 1, 42,670 -> 41,610-41,830 at 10).
        context = waiter._context
        waiter._callback = waiter._context = None
        if not hold and len(self._frames) <= 1:
            if context is None:
                callback(waiter)
            else:
                context.run(callback, waiter)
            return
        self._cork = []
        self._direct = False
        transport = self._transport
        self._cork_room = self.high_water - (
            transport.get_write_buffer_size() if transport is not None else 0
        )
        try:
            if context is None:
                callback(waiter)
            else:
                context.run(callback, waiter)
        finally:
            if not hold:
                self._flush_cork()
                self._cork = None
                self._direct = self._writer is None

    def receive_nowait(self) -> F:
        """Take the next queued frame; raise ``IndexError`` if none is queued (``_end`` aside)."""
        frame = self._frames.popleft()
        self._queued -= self._costs.popleft()
        if self._pause_reasons & _QUEUE_FULL and (
            not self._frames or self._queued + self._partial <= self.receive_low
        ):
            self._queue_drained()
        return frame

    @types.coroutine
    def _next_frame(self, iterating: bool = True) -> Generator[Any, None, F]:
        """Return the next frame, waiting for one; raise the end of the stream after the last.

        With ``iterating`` (``async for``), the end on a frame boundary is
        ``StopAsyncIteration`` rather than :class:`~asyncnet.EndOfStream`.
        A generator-based coroutine that yields the waiter itself: for each
        frame, one generator is made and resumed instead of a coroutine
        awaiting an ``__await__`` generator (about 2,500 instructions less).
        """
        frames = self._frames
        while not frames:
            end = self._end
            if end is not None:
                if isinstance(end, EndOfStream):
                    if iterating:
                        raise StopAsyncIteration
                    raise EndOfStream(str(end))
                raise end
            if self._receiving:
                raise UsageError("receive() called while another task is receiving")
            # The queue is empty, so reading is flowing (the pop that emptied
            # it resumed it): waiting can never wait on a paused peer.
            self._receiving = True
            waiter = self._waiter
            waiter._asyncio_future_blocking = True
            try:
                yield waiter
            finally:
                self._receiving = False
        # receive_nowait(), inlined: a Python call less per frame.
        frame = frames.popleft()
        self._queued -= self._costs.popleft()
        if self._pause_reasons & _QUEUE_FULL and (
            not frames or self._queued + self._partial <= self.receive_low
        ):
            self._queue_drained()
        return frame

    async def receive(self) -> F:
        """Return the next frame, waiting for one; raise the end of the stream after the last."""
        return await self._next_frame(False)

    # ``async for frame in conn`` iterates over the protocol itself (see
    # Connection.__aiter__): __anext__ is then _next_frame, with no call
    # between (about 800 instructions a frame; framing_decode.py, socket:
    # with the other changes, 532 -> 317 ns of CPU per 4-byte-prefixed frame).
    def __aiter__(self) -> ConnectionProtocol[F]:
        return self

    __anext__ = _next_frame

    def statistics(self) -> ConnectionStatistics:
        """Return a frozen snapshot of this connection's counters."""
        return self._snapshot(len(self._frames), self._queued)


def _run_receivers(batch: list[ConnectionProtocol[Any]]) -> None:
    """Run the receivers that reads of one pass woke, from one callback for all of them.

    A server's connections put themselves in the list the server shares
    with them, and the first one of a pass schedules this: one Handle per
    pass instead of one per connection (an asyncio Handle is made and run
    in Python: about 6,000 instructions each). Connections that are added
    while it runs wait for the callback they schedule.

    With several receivers, the replies each sends are held and written
    after the last one has run, one connection after the other with no
    handler step between the writes. Written as each receiver ran, they
    were spread over the pass, and the peers, woken by one reply, had gone
    back to sleep before the next: measured on the 64-byte line echo at
    concurrency 10 (C load generator, /proc/PID/status of the client),
    0.33-0.35 sleeps of the client per message against 0.19-0.21 held
    (the bare ``await`` server: 0.21-0.23), each sleep a wake-up our
    ``send()`` pays for in the kernel; server CPU per message 16.6-17.7
    against 14.4-15.1 us, paired runs on the shared machine. Each
    connection's replies keep their order and their high_water bound (see
    ``_run_receiver``); a handler that stops to wait for something else has
    its held replies written at the end of the pass all the same.
    """
    todo = batch[:]
    batch.clear()
    if len(todo) == 1:
        todo[0]._run_receiver()
        return
    try:
        for i, protocol in enumerate(todo):
            try:
                protocol._run_receiver(True)
            except BaseException:
                # Never leave the others waiting for a wake-up that is not coming.
                rest = todo[i + 1:]
                if rest:
                    if not batch:
                        protocol._loop.call_soon(_run_receivers, batch)
                    batch[:0] = rest
                raise
    finally:
        for protocol in todo:
            if protocol._cork is not None:
                protocol._flush_cork()
                protocol._cork = None
                protocol._direct = protocol._writer is None


class Connection(Generic[F]):
    """One framed connection, ``await`` style: iterate or ``receive()`` frames, ``send()`` them.

    Handed to a server's handler, or returned by :func:`~asyncnet.open_connection`.
    ``async for frame in conn`` ends when the peer finishes sending on a frame
    boundary; a framing error (:class:`~asyncnet.FrameTooLarge`,
    :class:`~asyncnet.IncompleteFrame`) is raised from it after the frames
    that came before it. One task may receive at a time; any number may send.
    ``receive()`` and ``anext(conn)`` are coroutines; the iterator that
    ``aiter(conn)`` returns gives, as an async generator does, awaitables
    that are not (await them, or wrap them in a coroutine to make a task).
    """

    __slots__ = ("_created_at", "_protocol", "_transport")

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        protocol: ConnectionProtocol[F],
        *,
        created_at: Site | None = None,
    ) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._protocol = protocol
        # Set for connections the caller opened (open_connection), which the
        # caller must close; a server's connections are closed by the server.
        self._created_at = created_at

    def __del__(self) -> None:
        if getattr(self, "_created_at", None) is not None and not self._transport.is_closing():
            warn_unclosed("asyncnet.Connection", self._created_at, self)

    # -- receiving ------------------------------------------------------------------------

    async def receive(self) -> F:
        """Return the next frame.

        Raises :class:`~asyncnet.EndOfStream` when the peer finished on a frame
        boundary, the framing's error (:class:`~asyncnet.FrameTooLarge`,
        :class:`~asyncnet.IncompleteFrame`), :class:`~asyncnet.ReadError` if
        the connection broke, or :class:`~asyncnet.ConnectionClosed` after close.
        """
        return await self._protocol._next_frame(False)

    def __aiter__(self) -> AsyncIterator[F]:
        # The protocol is the iterator: one Python call less per frame.
        return self._protocol

    async def __anext__(self) -> F:
        # Only anext(conn) comes here (async for iterates over the protocol),
        # so this is a coroutine, which asyncio.create_task(anext(conn))
        # needs from 3.12 on; the protocol's generator-based one is not.
        return await self._protocol._next_frame(True)

    # -- sending ----------------------------------------------------------------------------

    def send_nowait(self, frame: F) -> None:
        """Write ``frame`` without waiting (see :meth:`FramedProtocol.send_nowait`)."""
        self._protocol.send_nowait(frame)

    async def send(self, frame: F) -> None:
        """Write ``frame``, then wait until the transport's buffer is at or below high water.

        Raises :class:`~asyncnet.ConnectionClosed` if the connection closes first.
        """
        protocol = self._protocol
        protocol.send_nowait(frame)
        # drain() returns at once unless writing is paused or the connection
        # is lost: call it only then, which spares a coroutine per frame.
        if protocol._writing_paused or protocol._closed:
            await protocol.drain()

    async def drain(self) -> None:
        """Wait until the transport accepts more (after :meth:`send_nowait` calls)."""
        await self._protocol.drain()

    def send_eof(self) -> None:
        """Half-close: the peer sees the end of our frames; we can still receive."""
        self._protocol.send_eof()

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and close once everything written has been sent. Idempotent."""
        self._protocol._flush_cork()
        # Closed once only: a second close() of asyncio's TLS transport drops
        # its protocol, after which abort() (idle timeout, shutdown) does
        # nothing and get_write_buffer_size() raises.
        if not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent bytes (the peer may see a reset). Idempotent."""
        # Held replies are handed over first, as they would have been without
        # the cork: what the socket takes at once still reaches the peer.
        self._protocol._flush_cork()
        self._transport.abort()

    @property
    def is_closing(self) -> bool:
        """Whether :meth:`close` or :meth:`abort` was called or the connection was lost."""
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone (``connection_lost`` ran)."""
        await asyncio.shield(self._protocol.closed)

    async def aclose(self) -> None:
        """Close gracefully and wait until the connection is gone; abort if cancelled."""
        self.close()
        try:
            await asyncio.shield(self._protocol.closed)
        except asyncio.CancelledError:
            self._transport.abort()
            raise

    async def __aenter__(self) -> Connection[F]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- information ------------------------------------------------------------------------

    @property
    def framing(self) -> Framing[F]:
        """The framing this connection decodes and encodes with."""
        return self._protocol.framing

    @property
    def peername(self) -> Any:
        """The peer's address (as the socket module reports it)."""
        return self._transport.get_extra_info("peername")

    @property
    def sockname(self) -> Any:
        """Our own address."""
        return self._transport.get_extra_info("sockname")

    def extra(self, name: str, default: Any = None) -> Any:
        """Transport information: ``"ssl_object"``, ``"peercert"``, ``"socket"``..."""
        return self._transport.get_extra_info(name, default)

    def statistics(self) -> ConnectionStatistics:
        """Return a frozen snapshot of this connection's counters."""
        return self._protocol.statistics()

    def __repr__(self) -> str:
        state = "closing" if self._transport.is_closing() else "open"
        return f"<Connection {self.peername!r} {self._protocol.framing!r} {state}>"


def connection_factory(
    framing: Framing[F],
    *,
    high_water: int,
    low_water: int | None,
    receive_limit: int,
    receive_low: int | None = None,
) -> Callable[[], ConnectionProtocol[F]]:
    """Return a protocol factory for ``loop.create_connection`` (validates the limits now)."""
    WaterMarks(high_water, low_water)
    WaterMarks(receive_limit, receive_low)

    def factory() -> ConnectionProtocol[F]:
        return ConnectionProtocol(
            framing,
            high_water=high_water,
            low_water=low_water,
            receive_limit=receive_limit,
            receive_low=receive_low,
        )

    return factory
