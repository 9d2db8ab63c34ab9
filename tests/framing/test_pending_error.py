"""A custom decoder's optional ``pending_error``: read by the framed layer, checked by the kit.

A decoder that finds an error after frames returns the frames and raises the
error from its next call. The framed layer asks with ``feed(b"")`` after each
read that gave frames, unless the decoder keeps that error in a
``pending_error`` attribute, which it then reads instead (docs/protocols.rst).
"""

from __future__ import annotations

import asyncio

import pytest

import asyncnet
from asyncnet.testing import check_framing

LIMIT = 8


class _Decoder:
    """LF-separated lines of at most ``LIMIT`` bytes; counts the ``feed(b"")`` probes.

    ``mode`` says what its ``pending_error`` shows: ``"right"`` the error its
    next call raises, ``"hidden"`` always None, ``"stale"`` always an error;
    ``"absent"``: no such attribute (the two-method framer protocol).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.buf = b""
        self.error: Exception | None = None
        self.probes = 0
        if mode != "absent":
            self.pending_error: Exception | None = (
                asyncnet.RemoteProtocolError("stale") if mode == "stale" else None
            )

    @property
    def buffered(self) -> int:
        return len(self.buf)

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            self.probes += 1
        if self.error is not None:
            raise self.error
        *lines, rest = (self.buf + data).split(b"\n")
        self.buf = rest
        frames: list[bytes] = []
        for line in lines:
            if len(line) > LIMIT:
                return self._fail(frames, len(line))
            frames.append(line)
        if len(rest) > LIMIT:
            return self._fail(frames, len(rest))
        return frames

    def _fail(self, frames: list[bytes], size: int) -> list[bytes]:
        self.error = asyncnet.FrameTooLarge("line too long", limit=LIMIT, size=size)
        self.buf = b""
        if self.mode == "right":
            self.pending_error = self.error
        if not frames:
            raise self.error
        return frames

    def feed_eof(self) -> None:
        if self.error is not None:
            raise self.error
        if self.buf:
            raise asyncnet.IncompleteFrame("inside a line", received=len(self.buf))


class ReportingLines:
    """The framing of ``_Decoder``; keeps every decoder it made."""

    max_length = LIMIT

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.decoders: list[_Decoder] = []

    def decoder(self) -> _Decoder:
        self.decoders.append(_Decoder(self.mode))
        return self.decoders[-1]

    def encode(self, frame: bytes) -> bytes:
        return frame + b"\n"

    def __repr__(self) -> str:
        return f"ReportingLines({self.mode!r})"


# -- the conformance kit ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["right", "absent"])
def test_kit_passes_a_decoder_whose_pending_error_is_right_or_absent(mode: str) -> None:
    # The limit check makes the decoder fail after a frame: pending_error is compared there.
    check_framing(ReportingLines(mode), [b"ab", b"", b"x" * LIMIT], examples=10)


def test_kit_catches_a_pending_error_that_misses_the_error() -> None:
    with pytest.raises(AssertionError, match="pending_error was None"):
        check_framing(ReportingLines("hidden"), [b"ab"], examples=10)


def test_kit_catches_a_pending_error_set_while_feed_raises_nothing() -> None:
    with pytest.raises(AssertionError, match=r"but feed\(b''\) raised nothing"):
        check_framing(ReportingLines("stale"), [b"ab"], examples=10)


# -- the framed layer, over loopback ---------------------------------------------------

FRAME_THEN_ERROR = b"ab\n" + b"x" * (LIMIT + 4) + b"\n"


class Recorder(asyncnet.FramedProtocol[bytes]):
    def __init__(self, framing: ReportingLines, failed: asyncio.Event) -> None:
        super().__init__(framing)
        self.frames: list[bytes] = []
        self.errors: list[Exception] = []
        self._failed = failed

    def frame_received(self, frame: bytes) -> None:
        self.frames.append(frame)

    def frame_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self._failed.set()
        super().frame_error(exc)


@pytest.mark.parametrize(("mode", "probes"), [("right", 0), ("absent", 1)])
async def test_callback_style_delivers_the_error_after_the_frames(mode: str, probes: int) -> None:
    framing = ReportingLines(mode)
    failed = asyncio.Event()
    protocols: list[Recorder] = []

    def factory() -> Recorder:
        protocols.append(Recorder(framing, failed))
        return protocols[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port) as conn:
            # One write: the frame and the error after it arrive in one read,
            # and the error must be found without waiting for more bytes.
            conn.send_nowait(FRAME_THEN_ERROR)
            await asyncio.wait_for(failed.wait(), 30)
        (protocol,) = protocols
        assert protocol.frames == [b"ab"]
        assert [type(e) for e in protocol.errors] == [asyncnet.FrameTooLarge]
        # Read from pending_error, not asked for with feed(b"").
        assert framing.decoders[0].probes == probes
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("mode", "probes"), [("right", 0), ("absent", 1)])
async def test_await_style_delivers_the_error_after_the_frames(mode: str, probes: int) -> None:
    framing = ReportingLines(mode)
    got: list[object] = []
    done = asyncio.Event()

    async def handler(conn: asyncnet.Connection[bytes]) -> None:
        try:
            async for frame in conn:
                got.append(frame)
        except asyncnet.FrameTooLarge as exc:
            got.append(exc)
        finally:
            done.set()

    async with asyncnet.start_server(handler, "127.0.0.1", 0, framing=framing) as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port) as conn:
            conn.send_nowait(FRAME_THEN_ERROR)
            await asyncio.wait_for(done.wait(), 30)
    assert got[0] == b"ab"
    assert isinstance(got[1], asyncnet.FrameTooLarge)
    assert framing.decoders[0].probes == probes
