"""Flow control: the water-mark rule, drain(), and the bounded receive buffer."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet._flow import (
    DEFAULT_HIGH,
    DEFAULT_RECEIVE_LIMIT,
    FlowControlProtocol,
    ReceiveBuffer,
    WaterMarks,
)

# -- WaterMarks (pure) ---------------------------------------------------------


def test_defaults() -> None:
    marks = WaterMarks()
    # The documented defaults: 64 KiB, and a low mark a quarter of it.
    assert marks.high == DEFAULT_HIGH == 64 * 1024
    assert marks.low == 16 * 1024
    assert not marks.paused
    assert WaterMarks(100).low == 25


@pytest.mark.parametrize(("high", "low"), [(10, 11), (-1, None), (5, -1), (-4, -4)])
def test_invalid_marks_rejected(high: int, low: int | None) -> None:
    with pytest.raises(asyncnet.UsageError):
        WaterMarks(high, low)
    with pytest.raises(ValueError):
        WaterMarks(high, low)


def test_no_pause_at_exactly_high_one_pause_above() -> None:
    marks = WaterMarks(100, 20)
    assert marks.update(100) is None
    assert not marks.paused
    assert marks.update(101) is True
    assert marks.paused
    assert marks.update(500) is None  # already paused: no second pause
    assert marks.update(21) is None  # above low: still paused
    assert marks.update(20) is False  # at low: resume
    assert not marks.paused
    assert marks.update(20) is None
    assert marks.update(0) is None


def test_resume_below_low() -> None:
    marks = WaterMarks(100, 20)
    assert marks.update(1000) is True
    assert marks.update(3) is False


def test_high_zero_pauses_on_any_byte_and_resumes_only_when_empty() -> None:
    marks = WaterMarks(0)
    assert marks.low == 0
    assert marks.update(0) is None
    assert marks.update(1) is True
    assert marks.update(1) is None
    assert marks.update(0) is False


def test_low_zero_resumes_only_when_empty() -> None:
    marks = WaterMarks(10, 0)
    assert marks.update(11) is True
    assert marks.update(1) is None
    assert marks.update(0) is False


def test_high_equal_low() -> None:
    marks = WaterMarks(10, 10)
    assert marks.update(11) is True
    assert marks.update(10) is False
    assert marks.update(11) is True


@settings(max_examples=200, deadline=None)
@given(
    high=st.integers(min_value=0, max_value=64),
    low_fraction=st.floats(min_value=0.0, max_value=1.0),
    sizes=st.lists(st.integers(min_value=0, max_value=100), max_size=60),
)
def test_property_decisions_alternate_and_follow_the_rule(
    high: int, low_fraction: float, sizes: list[int]
) -> None:
    low = int(high * low_fraction)
    marks = WaterMarks(high, low)
    paused = False
    decisions: list[bool] = []
    for size in sizes:
        decision = marks.update(size)
        if not paused and size > high:
            assert decision is True
            paused = True
        elif paused and size <= low:
            assert decision is False
            paused = False
        else:
            assert decision is None
        if decision is not None:
            decisions.append(decision)
        assert marks.paused is paused
    # Strict alternation, starting with a pause.
    assert decisions == [i % 2 == 0 for i in range(len(decisions))]


# -- a fake read transport that records what it was asked ----------------------


class RecordingTransport(asyncio.ReadTransport):
    """Records pause_reading/resume_reading calls (order is what the tests check)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.reading = True

    def pause_reading(self) -> None:
        self.calls.append("pause")
        self.reading = False

    def resume_reading(self) -> None:
        self.calls.append("resume")
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


def assert_alternating(calls: list[str]) -> None:
    expected = ["pause" if i % 2 == 0 else "resume" for i in range(len(calls))]
    assert calls == expected


async def test_receive_buffer_hysteresis_with_fake_transport() -> None:
    transport = RecordingTransport()
    buf = ReceiveBuffer(transport, limit=10, low=4)
    buf.feed(b"x" * 10)
    assert transport.calls == []  # exactly at the limit: no pause
    buf.feed(b"y")
    assert transport.calls == ["pause"]
    buf.feed(b"z" * 100)  # data arriving after the pause is buffered, no second pause
    assert transport.calls == ["pause"]
    assert buf.size == 111
    assert await buf.read(106) == b"x" * 10 + b"y" + b"z" * 95
    assert buf.size == 5
    assert transport.calls == ["pause"]  # above low
    assert await buf.read(1) == b"z"
    assert transport.calls == ["pause", "resume"]  # at low
    assert await buf.read() == b"zzzz"
    assert transport.calls == ["pause", "resume"]


async def test_receive_buffer_default_limit() -> None:
    buf = ReceiveBuffer()
    # The documented defaults: 64 KiB, and a low mark a quarter of it.
    assert buf.limit == DEFAULT_RECEIVE_LIMIT == 64 * 1024
    assert buf.low == 16 * 1024


async def test_receive_buffer_never_waits_while_paused() -> None:
    transport = RecordingTransport()
    # low=0 and a consumer that wants more than is buffered: it must resume the
    # transport before waiting, or the peer could never deliver the rest.
    buf = ReceiveBuffer(transport, limit=4, low=0)
    buf.feed(b"abcdef")
    assert transport.calls == ["pause"]
    task = asyncio.create_task(buf.readexactly(10))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    assert transport.calls == ["pause", "resume"]
    assert transport.reading
    buf.feed(b"ghij")
    assert await task == b"abcdefghij"
    assert_alternating(transport.calls)


async def test_readexactly_larger_than_limit_keeps_buffer_bounded() -> None:
    transport = RecordingTransport()
    buf = ReceiveBuffer(transport, limit=8, low=2)
    task = asyncio.create_task(buf.readexactly(100))
    peak = 0
    for i in range(25):
        buf.feed(bytes([i]) * 4)
        peak = max(peak, buf.size)
        await asyncio.sleep(0)
    result = await task
    assert result == b"".join(bytes([i]) * 4 for i in range(25))
    assert peak <= 8
    assert_alternating(transport.calls)


async def test_readexactly_incomplete_at_eof() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abc")
    buf.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await buf.readexactly(5)
    assert info.value.partial == b"abc"
    assert info.value.expected == 5
    assert buf.at_eof()
    assert await buf.read() == b""


async def test_read_chunk_returns_chunks_as_fed() -> None:
    buf = ReceiveBuffer()
    a, b = b"first", b"second"
    buf.feed(a)
    buf.feed(b)
    assert await buf.read_chunk() is a
    assert await buf.read_chunk() is b
    buf.feed_eof()
    assert await buf.read_chunk() == b""


async def test_read_waits_for_data_and_eof() -> None:
    buf = ReceiveBuffer()
    task = asyncio.create_task(buf.read())
    await asyncio.sleep(0)
    assert not task.done()
    buf.feed(b"hello")
    assert await task == b"hello"
    task = asyncio.create_task(buf.read())
    await asyncio.sleep(0)
    buf.feed_eof()
    assert await task == b""
    assert buf.at_eof()
    assert await buf.read(0) == b""


async def test_exception_after_buffered_data() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"kept")
    error = asyncnet.ReadError("lost")
    buf.set_exception(error)
    assert await buf.read() == b"kept"
    with pytest.raises(asyncnet.ReadError):
        await buf.read()
    with pytest.raises(asyncnet.ReadError):
        await buf.readexactly(3)


async def test_exception_wakes_waiting_reader() -> None:
    buf = ReceiveBuffer()
    task = asyncio.create_task(buf.read_chunk())
    await asyncio.sleep(0)
    buf.set_exception(asyncnet.ReadError("lost"))
    with pytest.raises(asyncnet.ReadError):
        await task


async def test_second_concurrent_reader_is_refused() -> None:
    buf = ReceiveBuffer()
    first = asyncio.create_task(buf.read())
    await asyncio.sleep(0)
    with pytest.raises(asyncnet.StreamError, match="while another task is waiting"):
        await buf.read()
    buf.feed(b"x")
    assert await first == b"x"


async def test_cancelled_reader_leaves_buffer_usable() -> None:
    buf = ReceiveBuffer()
    task = asyncio.create_task(buf.read())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    buf.feed(b"after")
    assert await buf.read() == b"after"


async def test_feed_after_eof_is_an_error() -> None:
    buf = ReceiveBuffer()
    buf.feed_eof()
    with pytest.raises(asyncnet.StreamError, match="after feed_eof"):
        buf.feed(b"late")


async def test_set_transport_carries_over_pause() -> None:
    buf = ReceiveBuffer(limit=2, low=0)
    buf.feed(b"abc")
    assert buf.reading_paused
    transport = RecordingTransport()
    buf.set_transport(transport)
    assert transport.calls == ["pause"]
    await buf.read()
    assert transport.calls == ["pause", "resume"]


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=32),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("feed"), st.integers(min_value=1, max_value=40)),
            st.tuples(st.just("read"), st.integers(min_value=1, max_value=40)),
        ),
        max_size=40,
    ),
)
def test_property_receive_buffer_pause_resume_alternate(
    limit: int, ops: list[tuple[str, int]]
) -> None:
    async def scenario() -> None:
        transport = RecordingTransport()
        low = limit // 3
        buf = ReceiveBuffer(transport, limit=limit, low=low)
        expected = bytearray()
        got = bytearray()
        for op, n in ops:
            before = len(transport.calls)
            if op == "feed":
                data = bytes((len(expected) + i) % 251 for i in range(n))
                expected += data
                buf.feed(data)
                new = transport.calls[before:]
                assert new == (["pause"] if buf.size > limit and before % 2 == 0 else [])
            elif buf.size:
                got += await buf.read(n)
                new = transport.calls[before:]
                assert new == (["resume"] if buf.size <= low and before % 2 == 1 else [])
            assert_alternating(transport.calls)
            # paused exactly when the rule says so
            assert transport.reading is not buf.reading_paused
        got += await buf.read() if buf.size else b""
        assert bytes(got) == bytes(expected)

    asyncio.run(scenario())


# -- FlowControlProtocol -------------------------------------------------------


class FakeWriteTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed


async def test_drain_returns_at_once_when_not_paused() -> None:
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    assert not proto.writing_paused
    await proto.drain()


async def test_many_drain_waiters_all_wake_on_resume() -> None:
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    proto.pause_writing()
    proto.pause_writing()  # idempotent
    tasks = [asyncio.create_task(proto.drain()) for _ in range(20)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    proto.resume_writing()
    await asyncio.gather(*tasks)
    proto.resume_writing()  # idempotent
    assert not proto.writing_paused
    assert not proto._drain_waiters


async def test_connection_lost_releases_every_waiter_with_the_error() -> None:
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    proto.pause_writing()
    tasks = [asyncio.create_task(proto.drain()) for _ in range(10)]
    await asyncio.sleep(0)
    cause = ConnectionResetError("reset by peer")
    proto.connection_lost(cause)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        assert isinstance(result, asyncnet.ConnectionClosed)
        assert result.__cause__ is cause
    assert proto.is_closed
    # Later calls fail the same way; pause/resume after close are harmless.
    proto.pause_writing()
    proto.resume_writing()
    assert not proto.writing_paused
    with pytest.raises(asyncnet.ConnectionClosed):
        await proto.drain()


async def test_waiters_dropped_without_awaiting_leave_no_noise() -> None:
    # Waiters that are never awaited again after connection_lost must not log
    # "exception was never retrieved" (the conftest fails the test if they do).
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    proto.pause_writing()
    tasks = [asyncio.create_task(proto.drain()) for _ in range(3)]
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    proto.connection_lost(None)
    await asyncio.gather(*tasks, return_exceptions=True)
    del tasks
    gc.collect()


async def test_connection_lost_without_error() -> None:
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    proto.pause_writing()
    task = asyncio.create_task(proto.drain())
    await asyncio.sleep(0)
    proto.connection_lost(None)
    with pytest.raises(asyncnet.ConnectionClosed) as info:
        await task
    assert info.value.__cause__ is None


async def test_no_waiter_queue_is_made_until_a_drain_waits() -> None:
    """A connection that never waits for a drain carries no queue (one object fewer each)."""
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    await proto.drain()
    proto.resume_writing()
    assert proto._drain_waiters is None
    proto.pause_writing()
    waiting = asyncio.create_task(proto.drain())
    await asyncio.sleep(0)
    assert proto._drain_waiters is not None and len(proto._drain_waiters) == 1
    proto.resume_writing()
    await waiting
    assert not proto._drain_waiters
    proto.connection_lost(None)
    assert proto.is_closed


async def test_cancelled_waiter_leaves_nothing_behind() -> None:
    proto = FlowControlProtocol()
    proto.connection_made(FakeWriteTransport())
    proto.pause_writing()
    cancelled = asyncio.create_task(proto.drain())
    kept = asyncio.create_task(proto.drain())
    await asyncio.sleep(0)
    assert len(proto._drain_waiters) == 2
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert len(proto._drain_waiters) == 1
    proto.resume_writing()
    await kept
    assert not proto._drain_waiters


async def test_pause_before_and_inside_connection_made_is_safe() -> None:
    proto = FlowControlProtocol()
    proto.pause_writing()  # a transport may pause very early
    proto.resume_writing()
    proto.connection_made(FakeWriteTransport())
    assert not proto.writing_paused


def _small_buffer_pair() -> tuple[socket.socket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        a = socket.socket()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.connect(listener.getsockname())
        b, _ = listener.accept()
    finally:
        listener.close()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class GreedyWriter(FlowControlProtocol):
    """Writes more than the high-water mark from inside connection_made."""

    def __init__(self, payload: bytes) -> None:
        super().__init__()
        self.payload = payload
        self.paused_during_connection_made = False
        self.events: list[str] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=1024, low=256)
        transport.write(self.payload)
        self.paused_during_connection_made = self.writing_paused

    def pause_writing(self) -> None:
        self.events.append("pause")
        super().pause_writing()

    def resume_writing(self) -> None:
        self.events.append("resume")
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(exc)


async def test_pause_inside_connection_made_on_a_real_socket() -> None:
    loop = asyncio.get_running_loop()
    reader_sock, writer_sock = _small_buffer_pair()
    payload = bytes(range(256)) * 4096  # 1 MiB: far beyond socket buffers
    with reader_sock:
        transport, proto = await loop.connect_accepted_socket(
            lambda: GreedyWriter(payload), writer_sock
        )
        try:
            assert proto.paused_during_connection_made
            drained = asyncio.create_task(proto.drain())
            received = bytearray()
            while len(received) < len(payload):
                received += await loop.sock_recv(reader_sock, 65536)
            await drained
            assert bytes(received) == payload
            assert proto.events[:2] == ["pause", "resume"]
            assert_alternating(["pause" if e == "pause" else "resume" for e in proto.events])
        finally:
            transport.close()
        await proto.lost


async def test_connection_lost_while_paused_on_a_real_socket() -> None:
    loop = asyncio.get_running_loop()
    reader_sock, writer_sock = _small_buffer_pair()
    payload = b"z" * (1 << 20)
    transport, proto = await loop.connect_accepted_socket(
        lambda: GreedyWriter(payload), writer_sock
    )
    waiters = [asyncio.create_task(proto.drain()) for _ in range(5)]
    await asyncio.sleep(0)
    assert proto.writing_paused
    # The peer goes away without reading: the write fails and the transport closes.
    reader_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reader_sock.close()
    await proto.lost
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncnet.ConnectionClosed) for r in results)
    transport.close()


# -- ReceiveBuffer read paths, through the public name -------------------------
#
# Each test below pins one behaviour a mutation run showed unguarded: a
# regression there (a flipped comparison, a dropped statement) used to pass.


async def test_readexactly_served_from_bytes_already_buffered() -> None:
    buf = asyncnet.ReceiveBuffer()
    buf.feed(b"abc")
    buf.feed(b"defg")
    assert await buf.readexactly(5) == b"abcde"
    assert buf.size == 2
    assert await buf.readexactly(2) == b"fg"
    assert buf.size == 0
    assert not buf.at_eof()


async def test_readexactly_zero_returns_at_once_and_negative_is_refused() -> None:
    buf = asyncnet.ReceiveBuffer()
    # Nothing buffered and no EOF: a zero-byte read must not wait for data.
    assert await buf.readexactly(0) == b""
    buf.feed(b"kept")
    assert await buf.readexactly(0) == b""
    assert buf.size == 4
    with pytest.raises(asyncnet.UsageError, match=r"readexactly\(\) needs n >= 0"):
        await buf.readexactly(-1)
    assert await buf.read() == b"kept"


async def test_read_zero_returns_at_once_and_keeps_the_buffer() -> None:
    buf = asyncnet.ReceiveBuffer()
    assert await buf.read(0) == b""  # empty, no EOF: returns, does not wait
    buf.feed(b"abc")
    assert await buf.read(0) == b""
    assert buf.size == 3
    assert await buf.read() == b"abc"


async def test_read_after_a_cancelled_read_with_nothing_fed_between() -> None:
    buf = asyncnet.ReceiveBuffer()
    for method in (buf.read, buf.read_chunk, lambda: buf.readexactly(2)):
        first = asyncio.create_task(method())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The cancelled reader is gone: a new one may wait, and gets the data.
        second = asyncio.create_task(method())
        await asyncio.sleep(0)
        assert not second.done()
        buf.feed(b"xy")
        assert await second == b"xy"


@pytest.mark.parametrize(
    ("method", "name"),
    [("read", "read"), ("read_chunk", "read_chunk"), ("readexactly", "readexactly")],
)
async def test_second_waiting_reader_is_refused_by_name(method: str, name: str) -> None:
    buf = asyncnet.ReceiveBuffer()
    first = asyncio.create_task(buf.read())
    await asyncio.sleep(0)
    call = getattr(buf, method)
    with pytest.raises(asyncnet.StreamError, match=rf"^{name}\(\) called while another task"):
        await (call(1) if method == "readexactly" else call())
    buf.feed(b"x")
    assert await first == b"x"


async def test_read_ending_on_a_chunk_boundary_leaves_the_next_chunk_whole() -> None:
    buf = asyncnet.ReceiveBuffer()
    second = b"defgh"
    buf.feed(b"abc")
    buf.feed(second)
    assert await buf.read(3) == b"abc"
    assert buf.size == 5
    assert await buf.read_chunk() == second
    # A read across a boundary leaves the rest of the cut chunk as the next one.
    buf.feed(b"ij")
    buf.feed(b"klm")
    assert await buf.read(3) == b"ijk"
    assert await buf.read_chunk() == b"lm"
    assert buf.size == 0


async def test_read_n_spanning_several_chunks() -> None:
    buf = asyncnet.ReceiveBuffer()
    for piece in (b"ab", b"cd", b"ef", b"gh"):
        buf.feed(piece)
    assert await buf.read(5) == b"abcde"
    assert buf.size == 3
    assert await buf.read(10) == b"fgh"


async def test_burst_larger_than_n_while_readexactly_waits() -> None:
    buf = asyncnet.ReceiveBuffer()
    task = asyncio.create_task(buf.readexactly(4))
    await asyncio.sleep(0)
    buf.feed(b"0123456789")  # everything at once, more than asked for
    assert await task == b"0123"
    assert buf.size == 6
    # The same when part of the answer was collected before the burst.
    task = asyncio.create_task(buf.readexactly(5))
    await asyncio.sleep(0)
    assert await task == b"45678"
    task = asyncio.create_task(buf.readexactly(4))
    await asyncio.sleep(0)
    assert not task.done()
    buf.feed(b"abcdefgh")
    assert await task == b"9abc"
    assert await buf.read() == b"defgh"


async def test_at_eof_only_once_eof_fed_and_buffer_empty() -> None:
    buf = asyncnet.ReceiveBuffer()
    assert not buf.at_eof()
    buf.feed(b"ab")
    assert not buf.at_eof()
    buf.feed_eof()
    assert not buf.at_eof()  # EOF seen but bytes still unread
    assert await buf.read(1) == b"a"
    assert not buf.at_eof()
    assert await buf.read() == b"b"
    assert buf.at_eof()
    assert await buf.read_chunk() == b""
    with pytest.raises(asyncio.IncompleteReadError):
        await buf.readexactly(1)


async def test_feeding_empty_bytes_changes_nothing() -> None:
    transport = RecordingTransport()
    buf = asyncnet.ReceiveBuffer(transport, limit=0)
    buf.feed(b"")
    assert buf.size == 0
    assert not buf.reading_paused
    assert transport.calls == []
    buf.feed(b"x")
    buf.feed(b"")
    buf.feed(b"y")
    # An empty chunk would read as EOF from read_chunk(): none is kept.
    assert await buf.read_chunk() == b"x"
    assert await buf.read_chunk() == b"y"
    assert transport.calls == ["pause", "resume"]
    # An empty feed does not end a pending read either.
    task = asyncio.create_task(buf.read_chunk())
    await asyncio.sleep(0)
    buf.feed(b"")
    await asyncio.sleep(0)
    assert not task.done()
    buf.feed(b"z")
    assert await task == b"z"


async def test_exception_raised_by_every_read_once_the_buffer_is_empty() -> None:
    buf = asyncnet.ReceiveBuffer()
    error = asyncnet.ReadError("lost")
    buf.feed(b"ab")
    buf.set_exception(error)
    assert await buf.read_chunk() == b"ab"
    for call in (buf.read, buf.read_chunk, lambda: buf.readexactly(1)):
        with pytest.raises(asyncnet.ReadError) as info:
            await call()
        assert info.value is error


async def test_readexactly_reports_the_exception_after_a_partial_read() -> None:
    buf = asyncnet.ReceiveBuffer()
    task = asyncio.create_task(buf.readexactly(4))
    await asyncio.sleep(0)
    buf.feed(b"ab")
    await asyncio.sleep(0)
    error = asyncnet.ReadError("reset")
    buf.set_exception(error)
    with pytest.raises(asyncnet.ReadError) as info:
        await task
    assert info.value is error


async def test_readexactly_incomplete_after_waiting() -> None:
    buf = asyncnet.ReceiveBuffer()
    task = asyncio.create_task(buf.readexactly(6))
    await asyncio.sleep(0)
    buf.feed(b"abc")
    await asyncio.sleep(0)
    buf.feed(b"d")
    await asyncio.sleep(0)
    buf.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await task
    assert info.value.partial == b"abcd"
    assert info.value.expected == 6


async def test_receive_buffer_repr_shows_state() -> None:
    transport = RecordingTransport()
    buf = asyncnet.ReceiveBuffer(transport, limit=2, low=1)
    assert repr(buf) == "<ReceiveBuffer size=0 limit=2 reading>"
    buf.feed(b"abc")
    buf.feed_eof()
    assert repr(buf) == "<ReceiveBuffer size=3 limit=2 paused eof>"
    assert repr(asyncnet.WaterMarks(10, 2)) == "<WaterMarks high=10 low=2 flowing>"
    marks = asyncnet.WaterMarks(10, 2)
    marks.update(11)
    assert repr(marks) == "<WaterMarks high=10 low=2 paused>"


async def test_wait_for_data_resumes_once_then_rule_continues() -> None:
    # A reader that waits while reading is paused resumes the transport; the
    # water-mark state must follow, so the next overflow pauses again.
    transport = RecordingTransport()
    buf = asyncnet.ReceiveBuffer(transport, limit=4, low=0)
    buf.feed(b"abcdef")
    task = asyncio.create_task(buf.readexactly(8))
    await asyncio.sleep(0)
    assert transport.calls == ["pause", "resume"]
    assert not buf.reading_paused
    buf.feed(b"g")
    await asyncio.sleep(0)
    buf.feed(b"h")
    assert await task == b"abcdefgh"
    buf.feed(b"12345")
    assert transport.calls == ["pause", "resume", "pause"]
    assert buf.reading_paused


def test_water_marks_default_values_are_pinned() -> None:
    # The documented defaults themselves, not the constants they come from.
    marks = asyncnet.WaterMarks()
    assert (marks.high, marks.low) == (65536, 16384)
    buf = asyncnet.ReceiveBuffer()
    assert (buf.limit, buf.low) == (65536, 16384)


# -- ReceiveBuffer and FlowControlProtocol over a real loopback connection -----


class BufferedReceiver(FlowControlProtocol):
    """A protocol that buffers what it receives in a ReceiveBuffer, as the echo client does."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.buffer = asyncnet.ReceiveBuffer(limit=limit)
        self.largest_chunk = 0
        self.paused = asyncio.Event()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.buffer.set_transport(transport)

    def data_received(self, data: bytes) -> None:
        self.largest_chunk = max(self.largest_chunk, len(data))
        self.buffer.feed(data)
        if self.buffer.reading_paused:
            self.paused.set()

    def eof_received(self) -> None:
        self.buffer.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if exc is not None:
            self.buffer.set_exception(asyncnet.ReadError("lost"))
        if not self.lost.done():
            self.lost.set_result(exc)


async def test_receive_buffer_on_a_real_socket_pauses_the_peer_and_delivers_every_byte() -> None:
    loop = asyncio.get_running_loop()
    ours, peer = _small_buffer_pair()
    limit = 16 * 1024
    payload = bytes(range(251)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the read size
    transport, proto = await loop.connect_accepted_socket(lambda: BufferedReceiver(limit), ours)
    buf = proto.buffer

    async def send() -> None:
        await loop.sock_sendall(peer, payload)
        peer.shutdown(socket.SHUT_WR)

    sender = asyncio.create_task(send())
    try:
        # Nobody reads yet: the buffer fills past its limit and reading stops.
        await proto.paused.wait()
        assert not transport.is_reading()
        assert limit < buf.size <= limit + proto.largest_chunk
        received = bytearray()
        while True:
            try:
                received += await buf.readexactly(1000)
            except asyncio.IncompleteReadError as exc:
                received += exc.partial
                break
            # The transport is paused exactly when the buffer says so, and the
            # buffer never holds more than one chunk past its limit.
            assert transport.is_reading() is not buf.reading_paused
            assert buf.size <= limit + proto.largest_chunk
        assert bytes(received) == payload
        assert buf.at_eof()
        await sender
    finally:
        transport.close()
        peer.close()
    assert await proto.lost is None


async def test_writing_not_paused_after_close_on_a_real_socket() -> None:
    loop = asyncio.get_running_loop()
    reader_sock, writer_sock = _small_buffer_pair()
    transport, proto = await loop.connect_accepted_socket(
        lambda: GreedyWriter(b"z" * (1 << 20)), writer_sock
    )
    assert proto.writing_paused
    reader_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reader_sock.close()
    await proto.lost
    transport.close()
    assert proto.is_closed
    assert not proto.writing_paused
    # A late pause (a transport may report one while tearing down) is ignored.
    proto.pause_writing()
    assert not proto.writing_paused
    with pytest.raises(asyncnet.ConnectionClosed, match="the connection is closed"):
        await proto.drain()
