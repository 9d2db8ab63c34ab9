"""Undo ``Content-Encoding`` on response bodies, in bounded steps, bomb-proof.

Sans-IO: a decoder is fed the body's bytes as they arrive and returns decoded
bytes. Output is produced at most :data:`DEFAULT_STEP` bytes at a time (zlib's
``max_length`` and ``unconsumed_tail``), so no single step allocates more than
that, and the total is checked against a ratio to the input: a small body that
would inflate to gigabytes raises :class:`~asyncnet.DecodeError` after a few
megabytes instead of exhausting memory.

Supported: ``gzip`` and ``x-gzip`` (several members allowed), ``deflate`` (the
zlib-wrapped form RFC 9110 specifies and the raw form some servers send,
told apart by the first two bytes), ``identity``; ``br`` when the ``brotli``
or ``brotlicffi`` module is importable and ``zstd`` when
``compression.zstd`` (Python 3.14+) or ``zstandard`` is.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from .._errors import DecodeError

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MAX_CODINGS",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_RATIO_FLOOR",
    "DEFAULT_STEP",
    "SUPPORTED_ENCODINGS",
    "ContentDecoder",
    "make_decoder",
]

#: Largest piece of output one decompression step produces.
DEFAULT_STEP: Final = 64 * 1024
#: Decoded output may exceed the encoded input by at most this factor (once
#: past :data:`DEFAULT_RATIO_FLOOR`). Text, JSON and logs compress 3-20x, very
#: repetitive data a few hundred times; a deflate stream of one repeated byte
#: reaches ~1030x, and stacked codings millions: that is what a bomb uses.
DEFAULT_MAX_RATIO: Final = 200
#: Output up to this size is always allowed whatever the ratio, so small,
#: highly compressible bodies (an empty JSON list padded with spaces, a page
#: of zeros) always decode.
DEFAULT_RATIO_FLOOR: Final = 8 * 1024 * 1024
#: More stacked codings than this are refused: real servers use one, and each
#: layer multiplies what a bomb can do.
DEFAULT_MAX_CODINGS: Final = 3


class _Stage(Protocol):
    # Input bytes actually consumed so far: the ratio limit is measured
    # against it, so a bomb is stopped by its output, not its input size.
    consumed: int

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


# -- zlib: gzip and deflate -------------------------------------------------------

# Largest slice of input handed to zlib at once (see _ZlibStage.feed).
_INPUT_SLICE: Final = 16 * 1024


def _zlib_error(name: str, exc: zlib.error) -> DecodeError:
    err = DecodeError(f"corrupt {name} content: {exc}")
    err.__cause__ = exc
    return err


class _ZlibStage:
    """gzip (several members), or deflate (zlib-wrapped or raw, detected)."""

    __slots__ = (
        "_d",
        "_gzip",
        "_head",
        "_name",
        "_seen",
        "_step",
        "_trailing",
        "consumed",
    )

    def __init__(self, name: str, step: int) -> None:
        self._name = name
        self._gzip = name != "deflate"
        self._step = step
        # The decompressor is created once the first bytes show which format
        # a deflate stream uses (or, for gzip, when a member starts).
        self._d: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if self._gzip else None
        self._head = b""  # deflate: bytes held until the format is known
        self._trailing = False  # past the end: the rest is ignored
        self._seen = False  # any input at all
        self.consumed = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._seen = True
        if self._d is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._head = b""
            cmf, flg = data[0], data[1]
            # RFC 1950: a zlib stream starts with CM=8, a window of at most
            # 32 KiB and a header checksum; raw deflate data practically never
            # looks like that.
            wrapped = cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        step = self._step
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._d.eof:  # a member or stream ended: what follows?
                rest = self._after_end(bytes(view[pos:]))
                if not rest:
                    return
                view = memoryview(rest)
                pos = 0
            # Input goes in slices: zlib copies the unconsumed remainder on
            # every bounded step, so a large input would be copied many times.
            piece = view[pos : pos + _INPUT_SLICE]
            pos += len(piece)
            d = self._d
            try:
                out = d.decompress(piece, step)
                while True:
                    tail = d.unconsumed_tail
                    self.consumed += len(piece) - len(tail) - (len(d.unused_data) if d.eof else 0)
                    if out:
                        yield out
                    if d.eof or (len(out) < step and not tail):
                        break
                    piece = tail
                    out = d.decompress(piece, step)
            except zlib.error as exc:
                raise _zlib_error(self._name, exc) from exc
            if d.unused_data:  # only ever set at the end of a stream
                view = memoryview(d.unused_data + bytes(view[pos:]))
                pos = 0

    def _after_end(self, data: bytes) -> bytes:
        """Handle bytes after a complete stream; return those that start a new gzip member.

        Anything else after the end is ignored, as urllib3, httpx, aiohttp and
        browsers do (servers pad with NUL bytes or append junk): the content
        before it is complete and was verified by its checksum. A new gzip
        member is decoded, and is an error if corrupt.
        """
        if self._trailing or not self._gzip or data[0] != 0x1F:
            self._trailing = True
            self.consumed += len(data)
            return b""
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return data

    def finish(self) -> Iterator[bytes]:
        # An empty body labelled with a coding has nothing to decode.
        if self._seen and (self._d is None or not self._d.eof):
            raise DecodeError(f"truncated {self._name} content: the stream did not end")
        return iter(())


# -- brotli ------------------------------------------------------------------------


def _find_module(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli: Any = _find_module("brotli", "brotlicffi")
_zstd: Any = _find_module("compression.zstd")
_zstandard: Any = None if _zstd is not None else _find_module("zstandard")


class _BrotliStage:
    __slots__ = ("_d", "_limit_arg", "_seen", "_slicer", "_step", "consumed")

    def __init__(self, step: int) -> None:
        self.consumed = 0
        self._d = _brotli.Decompressor()
        self._step = step
        self._seen = False
        # brotli >= 1.2 accepts output_buffer_limit; older bindings and
        # brotlicffi do not, and get their input in adaptive slices instead.
        self._limit_arg = hasattr(self._d, "can_accept_more_data")
        self._slicer = _Slicer(step)

    def _process(self, data: bytes) -> bytes:
        try:
            if self._limit_arg:
                return bytes(self._d.process(data, output_buffer_limit=self._step))
            return bytes(self._d.process(data))
        except Exception as exc:  # the bindings raise their own error classes
            raise DecodeError(f"corrupt br content: {exc}") from exc

    def _drain(self, out: bytes) -> Iterator[bytes]:
        # With an output limit, the decoder keeps what did not fit and hands
        # it out on calls with empty input. The limit is soft: brotli stops
        # growing its buffer once it reaches the limit, in blocks of about
        # 32 KiB, so a call can return up to a block more; cut it to steps.
        step = self._step
        while True:
            if out:
                for start in range(0, len(out), step):
                    yield out[start : start + step]
            elif self._d.can_accept_more_data():
                return
            out = self._process(b"")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._seen = True
        if self._limit_arg:
            self.consumed += len(data)
            yield from self._drain(self._process(data))
            return
        for piece in self._slicer.slices(data):
            self.consumed += len(piece)
            out = self._process(piece)
            self._slicer.observe(len(piece), len(out))
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        if self._limit_arg:
            yield from self._drain(b"")
        if self._seen and not self._d.is_finished():
            raise DecodeError("truncated br content: the stream did not end")


class _Slicer:
    """Cuts input for a decompressor that has no output limit.

    Each slice is sized from the ratio seen so far to yield about one step of
    output, between 16 bytes and 16 KiB; a slice of a few bytes can still
    expand to one codec block (128 KiB for zstd), so steps stay bounded.
    """

    __slots__ = ("_size", "_step")

    def __init__(self, step: int) -> None:
        self._step = step
        self._size = 16

    def slices(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            piece = bytes(view[pos : pos + self._size])
            pos += len(piece)
            yield piece

    def observe(self, consumed: int, produced: int) -> None:
        if produced:
            self._size = max(16, min(_INPUT_SLICE, consumed * self._step // produced))
        else:
            self._size = min(_INPUT_SLICE, self._size * 2)


# -- zstandard -----------------------------------------------------------------------


class _ZstdFrames:
    """What both zstd stages share: the stream must end where a frame ends."""

    __slots__ = ()
    _d: Any  # the current frame's decompressor, None between frames

    def finish(self) -> Iterator[bytes]:
        if self._d is not None:
            raise DecodeError("truncated zstd content: the stream did not end")
        return iter(())


class _ZstdStage(_ZstdFrames):
    """zstd frames (several allowed) via compression.zstd (3.14+), with an output limit."""

    __slots__ = ("_d", "_step", "consumed")

    def __init__(self, step: int) -> None:
        self.consumed = 0
        self._step = step
        self._d: Any = None  # the current frame's decompressor

    def feed(self, data: bytes) -> Iterator[bytes]:
        step = self._step
        # The decompressor keeps input it has not used yet: count it all now.
        self.consumed += len(data)
        try:
            while data:
                if self._d is None:
                    self._d = _zstd.ZstdDecompressor()
                d = self._d
                out = d.decompress(data, step)
                while True:
                    if out:
                        yield out
                    if d.eof or d.needs_input:
                        break
                    out = d.decompress(b"", step)
                if not d.eof:
                    return
                data = d.unused_data
                self.consumed -= len(data)
                self._d = None
        except _zstd.ZstdError as exc:
            raise DecodeError(f"corrupt zstd content: {exc}") from exc


class _ZstandardStage(_ZstdFrames):
    """zstd frames (several allowed) via the zstandard module, in adaptive slices."""

    __slots__ = ("_d", "_slicer", "consumed")

    def __init__(self, step: int) -> None:
        self.consumed = 0
        self._d: Any = None  # the current frame's decompressor
        self._slicer = _Slicer(step)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            for piece in self._slicer.slices(data):
                while piece:
                    if self._d is None:
                        self._d = _zstandard.ZstdDecompressor().decompressobj()
                    d = self._d
                    out = d.decompress(piece)
                    self._slicer.observe(len(piece), len(out))
                    # Bytes past the end of a frame start the next one.
                    rest = bytes(d.unused_data) if d.eof else b""
                    self.consumed += len(piece) - len(rest)
                    if out:
                        yield out
                    if d.eof:
                        self._d = None
                    piece = rest
        except _zstandard.ZstdError as exc:
            raise DecodeError(f"corrupt zstd content: {exc}") from exc


# -- registry -----------------------------------------------------------------------

_FACTORIES: dict[str, Callable[[int], _Stage]] = {
    "gzip": lambda step: _ZlibStage("gzip", step),
    "x-gzip": lambda step: _ZlibStage("x-gzip", step),
    "deflate": lambda step: _ZlibStage("deflate", step),
}
if _brotli is not None:
    _FACTORIES["br"] = _BrotliStage
if _zstd is not None:
    _FACTORIES["zstd"] = _ZstdStage
elif _zstandard is not None:
    _FACTORIES["zstd"] = _ZstandardStage

#: Content codings this installation can decode (``identity`` aside).
SUPPORTED_ENCODINGS: Final[tuple[str, ...]] = tuple(_FACTORIES)
#: The default ``Accept-Encoding`` request header: every coding we can decode.
ACCEPT_ENCODING: Final = ", ".join(c for c in SUPPORTED_ENCODINGS if c != "x-gzip")


class ContentDecoder:
    """Decodes one response body: feed every piece to :meth:`decode`, then :meth:`flush` once.

    Made by :func:`make_decoder`. :meth:`iter_decode` is the memory-flat form
    of :meth:`decode`: it yields one bounded step of output at a time.
    """

    __slots__ = ("_floor", "_max_ratio", "_max_size", "_out", "_stages")

    def __init__(
        self, stages: list[_Stage], max_ratio: float | None, ratio_floor: int, max_size: int | None
    ) -> None:
        self._stages = stages
        self._max_ratio = max_ratio
        self._floor = ratio_floor
        self._max_size = max_size
        self._out = 0

    def _through(self, pieces: Iterator[bytes], index: int) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from pieces
            return
        stage = self._stages[index]
        for piece in pieces:
            yield from self._through(stage.feed(piece), index + 1)

    def _checked(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self._out += len(piece)
            self._check()
            yield piece

    def _check(self) -> None:
        out = self._out
        if self._max_size is not None and out > self._max_size:
            raise DecodeError(f"decoded content exceeds the limit of {self._max_size} bytes")
        if self._max_ratio is not None and out > self._floor:
            consumed = self._stages[0].consumed
            if out > self._max_ratio * consumed:
                raise DecodeError(
                    f"decompression bomb: {consumed} bytes decoded to more than {out} bytes "
                    f"(limit: {self._max_ratio}x past {self._floor} bytes)"
                )

    def iter_decode(self, data: bytes) -> Iterator[bytes]:
        """Yield decoded pieces one bounded step at a time, checking limits as they come.

        Pulling the pieces lazily keeps at most one step of output alive.
        """
        return self._checked(self._through(iter((data,)), 0))

    def decode(self, data: bytes) -> list[bytes]:
        """Return the decoded pieces (possibly none) that ``data`` produces."""
        return list(self.iter_decode(data))

    def iter_flush(self) -> Iterator[bytes]:
        """Yield the last pieces and check that every coding's stream ended."""
        return self._checked(self._finish(0))

    def _finish(self, index: int) -> Iterator[bytes]:
        for i in range(index, len(self._stages)):
            yield from self._through(self._stages[i].finish(), i + 1)

    def flush(self) -> bytes:
        """Return what remains; :class:`~asyncnet.DecodeError` if a stream was truncated."""
        return b"".join(self.iter_flush())


def make_decoder(
    content_encoding: str | None,
    *,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    ratio_floor: int = DEFAULT_RATIO_FLOOR,
    max_size: int | None = None,
    max_codings: int = DEFAULT_MAX_CODINGS,
    step: int = DEFAULT_STEP,
) -> ContentDecoder | None:
    """Return a decoder for a ``Content-Encoding`` value, or ``None`` if there is nothing to undo.

    Codings are listed in the order they were applied and are undone in
    reverse. Unknown codings, more than ``max_codings`` of them, corrupt or
    truncated data, output beyond ``max_ratio`` times the input once past
    ``ratio_floor`` bytes, or beyond ``max_size`` bytes, raise
    :class:`~asyncnet.DecodeError`. ``max_ratio=None`` turns the ratio check off.
    """
    if not content_encoding:
        return None
    if step < 1:
        raise ValueError("step must be at least 1")
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > max_codings:
        raise DecodeError(
            f"too many content codings ({len(codings)} > {max_codings}): {content_encoding!r}"
        )
    stages: list[_Stage] = []
    for coding in reversed(codings):
        factory = _FACTORIES.get(coding)
        if factory is None:
            raise DecodeError(
                f"unsupported content coding {coding!r} (supported: {', '.join(_FACTORIES)})"
            )
        stages.append(factory(step))
    return ContentDecoder(stages, max_ratio, ratio_floor, max_size)
