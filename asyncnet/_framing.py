"""Sans-IO framers: cut a byte stream into frames, and frames back into bytes.

A *framing* is a small, immutable description of how a protocol delimits its
messages (:class:`Lines`, :class:`Delimited`, :class:`LengthPrefixed`,
:class:`FixedSize`, :class:`Raw`, or your own class). It has two methods:

* ``framing.decoder()`` returns fresh per-connection state, a *decoder*, whose
  ``feed(data)`` returns the frames ``data`` completed (a list, often empty)
  and whose ``feed_eof()`` says the stream ended. ``decoder.buffered`` is the
  number of bytes it holds for a frame not yet complete; the connection layer
  counts them against its receive limit.
* ``framing.encode(frame)`` returns the bytes to send: one ``bytes``, or a
  tuple of pieces so that a large payload is handed to the transport without
  being copied.

Nothing here touches a socket, a loop or a clock, so every framer is tested by
feeding it bytes split at every position (see :mod:`asyncnet.testing`).

Errors are the peer's fault and are raised as soon as they are certain:
:class:`~asyncnet.FrameTooLarge` the moment the bytes held prove that the frame
under construction is over the limit (a delimited framer never holds more than
``max_length + len(delimiter) - 1`` bytes of one frame), and
:class:`~asyncnet.IncompleteFrame` from ``feed_eof()`` when the stream ends
inside a frame. EOF on a frame boundary is a clean end.

Frames completed by a ``feed()`` before an error in the same call are returned
by that call; the error is then raised by the next call to ``feed()``
(``feed(b"")`` included) or ``feed_eof()``, and by every call after it: a
decoder that failed stays failed. Callers that want the error at once call
``feed(b"")`` after a ``feed()`` that returned frames.

Every decoder searches only bytes it has not searched before, so the cost of
decoding is linear in the bytes received however the stream is split (Twisted's
``LineReceiver`` rescans its whole buffer on every read, quadratic on a long
line that arrives a byte at a time).
"""

from __future__ import annotations

import struct
from typing import Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from ._errors import FrameTooLarge, IncompleteFrame, LocalProtocolError, UsageError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_LINE",
    "BuiltinDecoder",
    "Delimited",
    "FixedSize",
    "FrameDecoder",
    "Framing",
    "JOIN_MAX",
    "LengthPrefixed",
    "Lines",
    "Raw",
]

# 64 KiB for a line or a delimited record: far above any sane text protocol's
# line (SMTP allows 1000 bytes, IRC 512, Redis inline commands 64 KiB), and the
# same as asyncio's StreamReader limit, so one connection's partial line costs
# no more than one default receive buffer.
DEFAULT_MAX_LINE: Final = 64 * 1024

# 1 MiB for a length-prefixed frame: room for real RPC payloads, while a peer
# that announces 4 GiB is refused from its header alone, before one byte of the
# body is buffered (``readexactly(n)`` would allocate whatever it announced).
DEFAULT_MAX_FRAME: Final = 1 << 20

F = TypeVar("F")

# Up to this size Lines and Delimited return a frame joined to its delimiter
# (one copy, one write), and the framed layer (``_framed.py``) joins the pieces
# other framings return; above it pieces are written as they are, so a large
# payload is never copied just to glue a small header to it.
JOIN_MAX: Final = 16 * 1024

#: What ``encode`` may return: the bytes, or pieces written one after another.
Encoded = bytes | bytearray | memoryview | tuple[bytes | bytearray | memoryview, ...]


@runtime_checkable
class FrameDecoder(Protocol[F]):
    """Per-connection decoding state returned by ``framing.decoder()``.

    Implement these three members to write your own framer's decoder.
    """

    @property
    def buffered(self) -> int:
        """Bytes held for the frame not yet complete (counted against receive limits)."""
        ...

    def feed(self, data: bytes) -> list[F]:
        """Take the next received bytes; return the frames they completed, in order."""
        ...

    def feed_eof(self) -> None:
        """The stream ended: raise :class:`~asyncnet.IncompleteFrame` if inside a frame."""
        ...


@runtime_checkable
class Framing(Protocol[F]):
    """How a protocol cuts its byte stream into frames: a factory of decoders plus an encoder.

    Framings are immutable and may be shared by any number of connections;
    all per-connection state lives in the decoder. An optional attribute
    ``preserves_boundaries`` (default true) tells :mod:`asyncnet.testing`
    whether frames must come back exactly as sent (false for :class:`Raw`,
    whose frames are whatever each read returned).
    """

    def decoder(self) -> FrameDecoder[F]:
        """Return fresh decoding state for one connection."""
        ...

    def encode(self, frame: F) -> Encoded:
        """Return the bytes that send ``frame`` (or a tuple of pieces, to avoid a copy)."""
        ...


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


class BuiltinDecoder:
    """Base of the built-in decoders: the failure ``feed`` found is kept in ``_error``.

    A decoder that finds an error after some frames returns the frames and
    raises the error from its next call. The framed layer (``_framed.py``)
    reads ``_error`` of these decoders after a read that gave frames, rather
    than calling ``feed(b"")`` for every such read as it must for other
    decoders: one Python call less per read (about 1,500 instructions, 4% of
    a 64-byte line echo's). ``_error`` is set once and never cleared.
    """

    __slots__ = ("_error",)

    _error: Exception | None


# -- delimited records and lines ----------------------------------------------------------


class _DelimitedDecoder(BuiltinDecoder):
    """Decoder for :class:`Delimited` and :class:`Lines`.

    State: ``_buf`` holds the start of the frame under construction, never the
    delimiter and never more than ``max_length + len(tail) - 1`` bytes, where
    ``tail`` is the longest ending the frame could still turn out to have.
    Each ``feed`` searches the new bytes, plus the ``len(delimiter) - 1`` bytes
    before them for a delimiter that straddles two reads. ``_buf`` is never
    rebound: the ``await`` style reads its length instead of ``buffered``
    (``_connection.py``).
    """

    __slots__ = ("_buf", "_delim", "_max", "_strip_cr", "_tail")

    def __init__(self, delimiter: bytes, max_length: int, strip_cr: bool, tail: bytes) -> None:
        self._buf = bytearray()
        self._delim = delimiter
        self._max = max_length
        # Lines(ending="any"): split on LF and drop one CR before it.
        self._strip_cr = strip_cr
        # The longest ending a frame may have: what can be held past max_length
        # (for "any" that is CRLF although the search is for LF alone).
        self._tail = tail
        self._error: Exception | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _too_large(self, size: int) -> FrameTooLarge:
        return FrameTooLarge(
            f"frame of {size} bytes or more is over the limit of {self._max}",
            limit=self._max,
            size=size,
        )

    def _min_length(self, pending: int, last: bytes) -> int:
        # The shortest the frame under construction can end up: its bytes,
        # less a trailing part that may yet prove to be the start of the ending.
        tail = self._tail
        for j in range(min(len(tail) - 1, len(last)), 0, -1):
            if last.endswith(tail[:j]):
                return pending - j
        return pending

    def _fail(self, exc: Exception, frames: list[bytes]) -> list[bytes]:
        self._error = exc
        self._buf.clear()
        if frames:
            return frames
        raise exc

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        if type(data) is not bytes:
            data = bytes(data)
        if not self._buf:
            # The usual read of a request/response peer: one whole frame, its
            # delimiter last. One partition (a memchr for a one-byte
            # delimiter) finds the delimiter and cuts the frame; bytes.split
            # with a one-byte separator compares byte by byte in C (3.11).
            # Measured per read (callgrind, the operation alone): a 1 KiB
            # line, split 6,400 instructions, partition 1,400; a 64-byte line,
            # 1,200 and 800. toolkit_instructions.py, 1 KiB lines, concurrency
            # 10: callback 31,900 -> 26,600 instructions per message, await
            # 48,900 -> 44,100 (benchmarks/README.rst, "Hot paths of the
            # toolkit"). A read without a delimiter is held without a split
            # too. Anything else takes _feed.
            frame, found, rest = data.partition(self._delim)
            if not rest:
                if found:
                    if self._strip_cr and frame[-1:] == b"\r":
                        frame = frame[:-1]
                    if len(frame) <= self._max:
                        return [frame]
                elif len(data) <= self._max:
                    # No delimiter: the start of a frame, held (it cannot be over the limit yet).
                    self._buf += data
                    return []
        return self._feed(data)

    def _feed(self, data: bytes) -> list[bytes]:
        # Every read but a single frame: finish the pending frame, then cut the rest.
        limit = self._max
        buf = self._buf
        frames: list[bytes] | None = None
        if buf:
            if not data:
                return []
            frames = []
            # Finish the pending frame first: its delimiter may straddle the reads.
            delim = self._delim
            k = len(delim)
            start = -1
            if k > 1:
                held = bytes(buf[-(k - 1):])
                j = (held + data[: k - 1]).find(delim)
                if j != -1 and j < len(held):
                    del buf[len(buf) - len(held) + j:]
                    start = j + k - len(held)
            if start == -1:
                i = data.find(delim)
                if i == -1:
                    pending = len(buf) + len(data)
                    if pending > limit:
                        last = bytes(buf[-(k + 1):]) + data if len(data) < k + 1 else data
                        size = self._min_length(pending, last)
                        if size > limit:
                            return self._fail(self._too_large(size), frames)
                    buf += data
                    return frames
                buf += data[:i]
                start = i + k
            frame = bytes(buf)
            buf.clear()
            if self._strip_cr and frame[-1:] == b"\r":
                frame = frame[:-1]
            if len(frame) > limit:
                return self._fail(self._too_large(len(frame)), frames)
            frames.append(frame)
            data = data[start:]
        # The rest of the read is cut in C: one split (for "any" with CRs, two
        # splits and a count at most), instead of a find, a slice and checks
        # per frame in Python. Measured: framing_decode.py alone, 32-byte
        # lines, about 3x the frames/s of the per-frame loop (_scan); one
        # 64-byte line per read, 5,700 -> 2,900 instructions. Membership is
        # tested with an int (13 in data): "b'\r' in data" first tries the
        # bytes as an integer and clears the TypeError (2,000 instructions).
        if self._strip_cr and 13 in data:
            parts = data.split(b"\r\n")
            if data.count(10) != len(parts) - 1:
                # Some LF without a CR before it: split on LF, then strip one
                # CR from each line that has it.
                parts = data.split(b"\n")
                last = parts.pop()
                parts = [p[:-1] if p[-1:] == b"\r" else p for p in parts]
                parts.append(last)
        else:
            parts = data.split(self._delim)
        if len(data) > limit and max(map(len, parts)) > limit:
            # Some frame, or the unfinished rest, may be over the limit: the
            # per-frame scan finds which, and when it is certain.
            return self._scan(data, frames or [])
        rest = parts.pop()
        if rest:
            buf += rest
        if frames:
            frames += parts
            return frames
        return parts

    def _scan(self, data: bytes, frames: list[bytes]) -> list[bytes]:
        # The careful path: frame by frame, failing at the first one over the
        # limit (after returning those before it), and on an unfinished rest
        # that is certainly over it. self._buf is empty here.
        delim = self._delim
        k = len(delim)
        limit = self._max
        strip = self._strip_cr
        find = data.find
        start = 0
        while True:
            i = find(delim, start)
            if i == -1:
                break
            frame = data[start:i]
            start = i + k
            if strip and frame[-1:] == b"\r":
                frame = frame[:-1]
            if len(frame) > limit:
                return self._fail(self._too_large(len(frame)), frames)
            frames.append(frame)
        rest = len(data) - start
        if rest:
            if rest > limit:
                size = self._min_length(rest, data[-k - 1:])
                if size > limit:
                    return self._fail(self._too_large(size), frames)
            self._buf += data[start:]
        return frames

    def feed_eof(self) -> None:
        if self._error is not None:
            raise self._error
        if self._buf:
            size = len(self._buf)
            self._error = IncompleteFrame(
                f"the stream ended inside a frame, {size} bytes into it", received=size
            )
            self._buf.clear()
            raise self._error


class Delimited:
    """Frames separated by ``delimiter`` (the delimiter is not part of the frame).

    ``max_length`` bounds one frame, delimiter excluded; a longer frame raises
    :class:`~asyncnet.FrameTooLarge` as soon as the bytes held prove it.
    """

    __slots__ = ("delimiter", "max_length")

    def __init__(self, delimiter: bytes, max_length: int = DEFAULT_MAX_LINE) -> None:
        if not isinstance(delimiter, bytes) or not delimiter:
            raise UsageError(f"delimiter must be non-empty bytes, got {delimiter!r}")
        if max_length < 0:
            raise UsageError(f"max_length must be >= 0, got {max_length}")
        self.delimiter = delimiter
        self.max_length = max_length

    def decoder(self) -> FrameDecoder[bytes]:
        """Return fresh decoding state for one connection."""
        return _DelimitedDecoder(self.delimiter, self.max_length, False, self.delimiter)

    def encode(self, frame: bytes) -> Encoded:
        """Return the frame and its delimiter; refuse one the receiver would cut differently."""
        delim = self.delimiter
        # The first delimiter found in frame + delimiter must be the one we add:
        # "a" with delimiter "aa" would decode as an empty frame.
        k = len(delim)
        held = bytes(frame[max(0, len(frame) - (k - 1)):]) if k > 1 else b""
        if frame.find(delim) != -1 or (held + delim).find(delim) != len(held):
            raise LocalProtocolError(f"frame contains the delimiter {delim!r}")
        if type(frame) is bytes and len(frame) <= JOIN_MAX:
            return frame + delim
        return (frame, delim)

    def __repr__(self) -> str:
        return f"Delimited({self.delimiter!r}, max_length={self.max_length})"


LineEnding = Literal["lf", "crlf", "any"]


class Lines:
    """Text-protocol lines: frames end with LF (``"lf"``), CRLF (``"crlf"``) or either (``"any"``).

    Frames come without their ending. ``max_length`` bounds one line, ending
    excluded: a line of exactly ``max_length`` bytes is accepted however its
    CR and LF are split across reads. ``encode`` appends ``\\n`` (``\\r\\n`` for
    ``"crlf"``) and refuses a frame that contains a line ending.
    """

    __slots__ = ("ending", "max_length")

    def __init__(self, max_length: int = DEFAULT_MAX_LINE, ending: LineEnding = "any") -> None:
        if ending not in ("lf", "crlf", "any"):
            raise UsageError(f"ending must be 'lf', 'crlf' or 'any', got {ending!r}")
        if max_length < 0:
            raise UsageError(f"max_length must be >= 0, got {max_length}")
        self.max_length = max_length
        self.ending: LineEnding = ending

    def decoder(self) -> FrameDecoder[bytes]:
        """Return fresh decoding state for one connection."""
        if self.ending == "lf":
            return _DelimitedDecoder(b"\n", self.max_length, False, b"\n")
        if self.ending == "crlf":
            return _DelimitedDecoder(b"\r\n", self.max_length, False, b"\r\n")
        return _DelimitedDecoder(b"\n", self.max_length, True, b"\r\n")

    def encode(self, frame: bytes) -> Encoded:
        """Return the line with its ending; refuse one the receiver would split or shorten."""
        # Bytes are looked for as ints (10 in frame): "b'\n' in frame" first
        # tries b'\n' as an integer and clears the TypeError, which costs
        # more than the search (2,000 instructions of a 64-byte echo's 30,000).
        if self.ending == "crlf":
            if 13 in frame and (frame.find(b"\r\n") != -1 or frame[-1:] == b"\r"):
                raise LocalProtocolError("a 'crlf' line cannot contain CRLF or end with CR")
            if type(frame) is bytes and len(frame) <= JOIN_MAX:
                return frame + b"\r\n"
            return (frame, b"\r\n")
        if 10 in frame:
            raise LocalProtocolError("a line cannot contain LF")
        if self.ending == "any" and frame[-1:] == b"\r":
            # The receiver would take that CR for half of a CRLF and drop it.
            raise LocalProtocolError("an 'any' line cannot end with CR")
        # A short line is returned joined (so are Delimited's frames): the
        # framed layer writes it as it is, where a tuple costs it a loop over
        # the pieces and a join (toolkit_instructions.py, 64-byte lines:
        # callback 34,250 -> 33,330 instructions at concurrency 1, 26,470 ->
        # 25,430 at 10; await 48,110 -> 47,610 and 43,070 -> 42,670).
        if type(frame) is bytes and len(frame) <= JOIN_MAX:
            return frame + b"\n"
        return (frame, b"\n")

    def __repr__(self) -> str:
        return f"Lines(max_length={self.max_length}, ending={self.ending!r})"


# -- sized frames -----------------------------------------------------------------------------

_STRUCT_FORMATS: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _struct(size: int, byteorder: str) -> struct.Struct:
    return struct.Struct((">" if byteorder == "big" else "<") + _STRUCT_FORMATS[size])


class _SizedDecoder(BuiltinDecoder):
    """Decoder for :class:`LengthPrefixed` (``header > 0``) and :class:`FixedSize` (``0``).

    States: *header* (``_length < 0``; ``_head`` holds up to ``header - 1``
    bytes of the length field) and *body* (``_length`` known; ``_parts`` hold
    ``_have`` bytes of it). The body is kept as the received pieces and joined
    once, so a large frame is copied once, not once per read.
    """

    __slots__ = ("_fixed", "_have", "_head", "_header", "_length", "_max", "_parts", "_unpack")

    def __init__(self, header: int, byteorder: str, max_frame: int) -> None:
        self._header = header
        # FixedSize: the size of every frame, which is also its limit (unused
        # with a length field).
        self._fixed = max_frame
        self._max = max_frame
        self._unpack = _struct(header, byteorder).unpack_from if header else None
        self._head = bytearray()
        self._length = -1 if header else max_frame
        self._parts: list[bytes] = []
        self._have = 0
        self._error: Exception | None = None

    @property
    def buffered(self) -> int:
        return len(self._head) + self._have

    def _check(self, length: int) -> None:
        if length > self._max:
            raise FrameTooLarge(
                f"peer announced a frame of {length} bytes, over the limit of {self._max}",
                limit=self._max,
                size=length,
            )

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        if not data:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        frames: list[bytes] = []
        try:
            self._feed(data, frames)
        except FrameTooLarge as exc:
            # Nothing is held to free: a length is checked only in the header
            # state, once its field has been taken out of ``_head``.
            self._error = exc
            if not frames:
                raise
        return frames

    def _feed(self, data: bytes, frames: list[bytes]) -> None:
        n = len(data)
        pos = 0
        header = self._header
        if self._head:
            # Only the header state holds bytes in _head.
            need = header - len(self._head)
            self._head += data[:need]
            pos = min(need, n)
            if len(self._head) < header:
                return
            assert self._unpack is not None
            (length,) = self._unpack(self._head)
            self._head.clear()
            self._check(length)
            self._length = length
        if self._length >= 0 if header else self._have:
            need = self._length - self._have
            if n - pos < need:
                # An empty piece (the read ended with the header) joins to nothing.
                self._parts.append(data[pos:])
                self._have += n - pos
                return
            self._parts.append(data[pos:pos + need])
            frames.append(b"".join(self._parts))
            self._parts.clear()
            self._have = 0
            pos += need
            self._length = -1 if header else self._fixed
        unpack = self._unpack
        if unpack is None:
            fixed = self._fixed
            while n - pos >= fixed:
                frames.append(data[pos:pos + fixed])
                pos += fixed
        else:
            # The per-frame loop, kept to the fewest operations (the length
            # checked inline, locals only): framing_decode.py alone, 4-byte
            # prefixes, 28-byte frames, about 1.3x the frames/s of the loop
            # with a call to _check per frame.
            limit = self._max
            last = n - header
            append = frames.append
            while pos <= last:
                (length,) = unpack(data, pos)
                if length > limit:
                    self._check(length)  # raises
                start = pos + header
                pos = start + length
                if pos > n:
                    self._length = length
                    pos = start
                    break
                append(data[start:pos])
            else:
                if pos < n:
                    self._head += data[pos:]
                return
        if pos < n:
            self._parts.append(data[pos:])
            self._have = n - pos

    def feed_eof(self) -> None:
        if self._error is not None:
            raise self._error
        held = self.buffered
        # Inside a frame: bytes held, or a length read and no body byte yet
        # (-1 marks the header state; a zero length is never left pending).
        if held or (self._header and self._length != -1):
            self._error = IncompleteFrame(
                f"the stream ended inside a frame, {held} bytes into it", received=held
            )
            raise self._error


class LengthPrefixed:
    """Frames preceded by their length in a ``size``-byte unsigned integer field.

    ``size`` is 1, 2, 4 or 8; ``byteorder`` ``"big"`` (network order) or
    ``"little"``. A header announcing more than ``max_frame`` bytes raises
    :class:`~asyncnet.FrameTooLarge` before any of the body is buffered.
    ``encode`` returns ``(header, frame)`` and refuses a frame too long for the field.
    """

    __slots__ = ("_pack", "byteorder", "max_frame", "size")

    def __init__(
        self,
        size: int = 4,
        byteorder: Literal["big", "little"] = "big",
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        if size not in _STRUCT_FORMATS:
            raise UsageError(f"size must be 1, 2, 4 or 8, got {size!r}")
        if byteorder not in ("big", "little"):
            raise UsageError(f"byteorder must be 'big' or 'little', got {byteorder!r}")
        if max_frame < 0:
            raise UsageError(f"max_frame must be >= 0, got {max_frame}")
        self.size = size
        self.byteorder: Literal["big", "little"] = byteorder
        self.max_frame = max_frame
        self._pack = _struct(size, byteorder).pack

    def decoder(self) -> FrameDecoder[bytes]:
        """Return fresh decoding state for one connection."""
        return _SizedDecoder(self.size, self.byteorder, self.max_frame)

    def encode(self, frame: bytes) -> Encoded:
        """Return ``(header, frame)``: the payload is not copied."""
        try:
            header = self._pack(len(frame))
        except struct.error as exc:
            raise LocalProtocolError(
                f"a frame of {len(frame)} bytes does not fit a {self.size}-byte length field"
            ) from exc
        return (header, frame)

    def __repr__(self) -> str:
        return (f"LengthPrefixed(size={self.size}, byteorder={self.byteorder!r}, "
                f"max_frame={self.max_frame})")


class FixedSize:
    """Frames of exactly ``n`` bytes each; ``encode`` refuses any other length."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        if n < 1:
            raise UsageError(f"n must be >= 1, got {n}")
        self.n = n

    def decoder(self) -> FrameDecoder[bytes]:
        """Return fresh decoding state for one connection."""
        return _SizedDecoder(0, "big", self.n)

    def encode(self, frame: bytes) -> Encoded:
        """Return the frame itself after checking its length."""
        if len(frame) != self.n:
            raise LocalProtocolError(f"frame of {len(frame)} bytes, FixedSize needs {self.n}")
        return frame

    def __repr__(self) -> str:
        return f"FixedSize({self.n})"


# -- no framing -----------------------------------------------------------------------------


class _RawDecoder(BuiltinDecoder):
    __slots__ = ()

    def __init__(self) -> None:
        self._error = None

    @property
    def buffered(self) -> int:
        return 0

    def feed(self, data: bytes) -> list[bytes]:
        return [_as_bytes(data)] if data else []

    def feed_eof(self) -> None:
        return None


_RAW_DECODER: Final = _RawDecoder()


class Raw:
    """No framing: each frame is a chunk exactly as a read returned it (the echo server's view).

    Boundaries are not preserved (two sends may arrive as one chunk), so only
    the concatenation of the frames is meaningful. Nothing is ever buffered.
    """

    __slots__ = ()

    #: Frames are chunks of the stream; their boundaries carry no meaning.
    preserves_boundaries: Final = False

    def decoder(self) -> FrameDecoder[bytes]:
        """Return the (stateless, shared) decoder."""
        return _RAW_DECODER

    def encode(self, frame: bytes) -> Encoded:
        """Return the bytes themselves."""
        return frame

    def __repr__(self) -> str:
        return "Raw()"


def preserves_boundaries(framing: Any) -> bool:
    """Tell whether ``framing`` promises that frames come back exactly as encoded."""
    return bool(getattr(framing, "preserves_boundaries", True))
