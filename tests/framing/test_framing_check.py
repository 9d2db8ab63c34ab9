"""asyncnet.testing.check_framing: passes good framers, and catches the classic framing bugs."""

from __future__ import annotations

import sys

import pytest

import asyncnet
from asyncnet.testing import check_framing


class TwistedLines:
    """A line framer with Twisted's bug: it checks the length with the CR still held."""

    max_length = 8
    ending = "any"

    class _Decoder:
        def __init__(self) -> None:
            self.buf = b""
            self.error: Exception | None = None

        @property
        def buffered(self) -> int:
            return len(self.buf)

        def feed(self, data: bytes) -> list[bytes]:
            if self.error:
                raise self.error
            self.buf += data
            frames = []
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.removesuffix(b"\r")
                if len(line) > TwistedLines.max_length:
                    self.error = asyncnet.FrameTooLarge("too long", limit=8, size=len(line))
                    break
                frames.append(line)
            # The bug: the CR of a CRLF still to complete counts against the limit.
            if len(self.buf) > TwistedLines.max_length:
                self.error = asyncnet.FrameTooLarge("too long", limit=8, size=len(self.buf))
            if self.error and not frames:
                raise self.error
            return frames

        def feed_eof(self) -> None:
            if self.buf:
                raise asyncnet.IncompleteFrame("eof", received=len(self.buf))

    def decoder(self) -> TwistedLines._Decoder:
        return self._Decoder()

    def encode(self, frame: bytes) -> bytes:
        return frame + b"\n"


class LosesStraddlingDelimiter:
    """A CRLF framer that only searches each read on its own: misses a split CRLF."""

    class _Decoder:
        def __init__(self) -> None:
            self.buf = b""

        @property
        def buffered(self) -> int:
            return len(self.buf)

        def feed(self, data: bytes) -> list[bytes]:
            *frames, rest = data.split(b"\r\n")
            if frames:
                frames[0] = self.buf + frames[0]
                self.buf = rest
            else:
                self.buf += rest
            return frames

        def feed_eof(self) -> None:
            if self.buf:
                raise asyncnet.IncompleteFrame("eof", received=len(self.buf))

    def decoder(self) -> LosesStraddlingDelimiter._Decoder:
        return self._Decoder()

    def encode(self, frame: bytes) -> tuple[bytes, bytes]:
        return (frame, b"\r\n")


def test_catches_twisteds_max_length_line_with_split_crlf() -> None:
    with pytest.raises(AssertionError, match="CRLF"):
        check_framing(TwistedLines(), [b"hello"], examples=5)


def test_catches_a_delimiter_split_across_reads() -> None:
    with pytest.raises(AssertionError, match=r"split at|one byte at a time"):
        check_framing(LosesStraddlingDelimiter(), [b"one", b"two"], examples=5)


def test_catches_frames_that_do_not_round_trip() -> None:
    class Truncating(asyncnet.Lines):
        def encode(self, frame: bytes) -> bytes:  # type: ignore[override]
            return frame[:1] + b"\n"

    with pytest.raises(AssertionError, match="decoding it whole"):
        check_framing(Truncating(), [b"abc"])


def test_works_without_hypothesis_with_a_seeded_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import hypothesis` raise ImportError.
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    check_framing(asyncnet.Lines(8), [b"abc", b""], examples=20)
    with pytest.raises(AssertionError, match=r"split at|one byte at a time"):
        check_framing(LosesStraddlingDelimiter(), [b"one", b"two"], examples=20)


def test_custom_frames_that_are_not_bytes_can_skip_the_limit_check() -> None:
    class Numbers:
        max_length = 3

        def decoder(self) -> asyncnet.FrameDecoder[int]:
            inner = asyncnet.Lines(3).decoder()

            class Decoder:
                buffered = property(lambda self: inner.buffered)

                def feed(self, data: bytes) -> list[int]:
                    return [int(line) for line in inner.feed(data)]

                def feed_eof(self) -> None:
                    inner.feed_eof()

            return Decoder()

        def encode(self, frame: int) -> bytes:
            return b"%d\n" % frame

    check_framing(Numbers(), [1, 22, 333], check_limit=False)
