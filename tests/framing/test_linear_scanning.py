"""Delimited framers search each received byte a bounded number of times, however split.

``asyncnet._framing`` promises that decoding is linear in the bytes received:
a decoder searches only bytes it has not searched before (plus the
``len(delimiter) - 1`` bytes before them, for a delimiter that straddles two
reads). Twisted's ``LineReceiver`` rescans its whole buffer on every read,
which is quadratic on a long line that arrives a byte at a time; the results
are the same, so only a count of the bytes looked at tells the two apart.

White-box, and what it relies on: a delimited decoder keeps the start of the
frame under construction in one ``bytearray`` attribute that it never rebinds
(``_DelimitedDecoder``'s docstring says so; the connection layer relies on it
too), and any look at those held bytes goes through that object (searching
it, slicing it, ``bytes()`` of it, concatenating it). The tests find the
attribute by its type, not its name, swap in a :class:`ScanCounter` holding
the same bytes, and add up the bytes each such look covers. A decoder that
read its held bytes through the buffer protocol alone (``memoryview``,
``b"".join``) would escape the count; the check that the count saw the frames
being copied out fails then, rather than letting the test pass vacuously.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex

import pytest

import asyncnet
from asyncnet import Delimited, Lines


class ScanCounter(bytearray):
    """A bytearray that adds up, in ``scanned``, the bytes each read of its contents covers."""

    scanned = 0

    def _region(self, start: SupportsIndex | None, end: SupportsIndex | None) -> int:
        return len(range(*slice(start, end).indices(len(self))))

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += self._region(start, end)
        return super().find(sub, start, end)

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += self._region(start, end)
        return super().rfind(sub, start, end)

    def index(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += self._region(start, end)
        return super().index(sub, start, end)

    def rindex(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += self._region(start, end)
        return super().rindex(sub, start, end)

    def count(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += self._region(start, end)
        return super().count(sub, start, end)

    def __contains__(self, item: Any) -> bool:
        self.scanned += len(self)
        return super().__contains__(item)

    def __getitem__(self, key: Any) -> Any:
        result = super().__getitem__(key)
        self.scanned += len(result) if isinstance(key, slice) else 1
        return result

    def __iter__(self) -> Iterator[int]:
        self.scanned += len(self)
        return super().__iter__()

    def __bytes__(self) -> bytes:
        self.scanned += len(self)
        with memoryview(self) as view:
            return view.tobytes()

    def __add__(self, other: Any) -> bytearray:
        self.scanned += len(self)
        return super().__add__(other)

    def __eq__(self, other: object) -> bool:
        self.scanned += len(self)
        return super().__eq__(other)

    __hash__ = None

    def copy(self) -> bytearray:
        self.scanned += len(self)
        return super().copy()

    def decode(self, *args: Any, **kwargs: Any) -> str:
        self.scanned += len(self)
        return super().decode(*args, **kwargs)


def _searching_everything(name: str) -> Callable[..., Any]:
    method = getattr(bytearray, name)

    def counted(self: ScanCounter, *args: Any, **kwargs: Any) -> Any:
        self.scanned += len(self)
        return method(self, *args, **kwargs)

    counted.__name__ = name
    return counted


for _name in ("split", "rsplit", "partition", "rpartition", "splitlines", "replace", "hex"):
    setattr(ScanCounter, _name, _searching_everything(_name))


def counted_decoder(framing: asyncnet.Framing[bytes]) -> tuple[Any, ScanCounter]:
    """Return a fresh decoder of ``framing`` whose held-bytes buffer is a :class:`ScanCounter`."""
    decoder = framing.decoder()
    held = [
        name
        for cls in type(decoder).__mro__
        for name in getattr(cls, "__slots__", ())
        if isinstance(getattr(decoder, name, None), bytearray)
    ]
    assert len(held) == 1, (
        f"{type(decoder).__name__} no longer keeps its held bytes in one bytearray "
        f"(found {held}): this test's instrumentation needs updating"
    )
    counter = ScanCounter(getattr(decoder, held[0]))
    setattr(decoder, held[0], counter)
    return decoder, counter


def _body(rng: random.Random, n: int, alphabet: bytes, delimiter: bytes) -> bytes:
    """``n``-ish random bytes from ``alphabet`` with no ``delimiter`` in them, ending in ``a``.

    The alphabet holds the delimiter's own bytes, so the frame is full of
    near misses: prefixes of the delimiter that the straddle check must look at.
    """
    body = bytes(rng.choice(alphabet) for _ in range(n))
    while delimiter in body:
        body = body.replace(delimiter, delimiter[:-1])
    # Ending on a byte outside every delimiter: the frame cannot run into its ending.
    return body + b"a"


# Each case: a framing, the bytes its frames may hold, and the endings the
# sender uses (Lines("any") takes LF and CRLF alike).
CASES = [
    pytest.param(Lines(1 << 20, "lf"), b"ab\r", [b"\n"], id="lines-lf"),
    pytest.param(Lines(1 << 20, "crlf"), b"ab\r\n", [b"\r\n"], id="lines-crlf"),
    pytest.param(Lines(1 << 20, "any"), b"ab\r", [b"\n", b"\r\n"], id="lines-any"),
    pytest.param(Delimited(b"\r\n\r\n", 1 << 20), b"ab\r\n", [b"\r\n\r\n"], id="delimited-4"),
    pytest.param(Delimited(b"<|>", 1 << 20), b"ab<|", [b"<|>"], id="delimited-3"),
]


def _stream(
    framing: Any, alphabet: bytes, endings: list[bytes], sizes: list[int], seed: int
) -> tuple[bytes, list[bytes]]:
    """The wire bytes of frames of the given sizes, and the frames they decode to."""
    rng = random.Random(seed)
    search = b"\n" if isinstance(framing, Lines) and framing.ending == "any" else endings[0]
    frames = [_body(rng, size, alphabet, search) for size in sizes]
    wire = b"".join(frame + endings[i % len(endings)] for i, frame in enumerate(frames))
    return wire, frames


def _feed_all(decoder: Any, pieces: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    decoder.feed_eof()
    return frames


def _check_linear(counter: ScanCounter, fed: int, delimiter_length: int) -> None:
    # Legitimate reads of the held bytes: each byte copied out once into its
    # frame, plus up to len(delimiter) - 1 bytes per read for a straddling
    # delimiter, so at most len(delimiter) per byte fed; twice that leaves
    # room for a harmless extra copy. A decoder that rescans what it holds
    # looks at O(n^2) bytes: thousands per byte fed here.
    assert counter.scanned > 0, "the count never saw the held bytes read: instrumentation broken"
    assert counter.scanned <= 2 * delimiter_length * fed, (
        f"{counter.scanned} bytes scanned for {fed} bytes fed: old bytes are searched again"
    )


@pytest.mark.parametrize(("framing", "alphabet", "endings"), CASES)
def test_a_long_frame_fed_one_byte_at_a_time_is_scanned_linearly(
    framing: Any, alphabet: bytes, endings: list[bytes]
) -> None:
    wire, frames = _stream(framing, alphabet, endings, [20_000, 3, 5_000], seed=1)
    decoder, counter = counted_decoder(framing)
    pieces = [wire[i : i + 1] for i in range(len(wire))]
    assert _feed_all(decoder, pieces) == frames
    _check_linear(counter, len(wire), max(map(len, endings)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("framing", "alphabet", "endings"), CASES)
def test_random_splits_are_scanned_linearly(
    framing: Any, alphabet: bytes, endings: list[bytes], seed: int
) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 2, 7, 100, 4_000, 12_000]) for _ in range(30)]
    wire, frames = _stream(framing, alphabet, endings, sizes, seed)
    pieces = []
    pos = 0
    while pos < len(wire):
        # Mostly small reads, so a long frame takes many of them.
        n = rng.choice([1, 1, 2, 3, 5, 8, 64, 700])
        pieces.append(wire[pos : pos + n])
        pos += n
    decoder, counter = counted_decoder(framing)
    assert _feed_all(decoder, pieces) == frames
    _check_linear(counter, len(wire), max(map(len, endings)))


@pytest.mark.parametrize(("framing", "alphabet", "endings"), CASES)
def test_a_delimiter_split_at_every_position_is_scanned_linearly(
    framing: Any, alphabet: bytes, endings: list[bytes]
) -> None:
    # A long frame in chunks, its ending cut at each position in turn: the
    # straddle check runs on every read and must look back a bounded amount.
    rng = random.Random(7)
    ending = endings[-1]
    frames = []
    pieces = []
    for cut in range(len(ending) + 1):
        for _ in range(3):
            search = b"\n" if isinstance(framing, Lines) and framing.ending == "any" else ending
            body = _body(rng, 3_000, alphabet, search)
            frames.append(body)
            wire = body + ending
            split = len(body) + cut
            pieces += [wire[i : min(i + 3, split)] for i in range(0, split, 3)]
            pieces += [wire[split:]] if split < len(wire) else []
    decoder, counter = counted_decoder(framing)
    assert _feed_all(decoder, pieces) == frames
    _check_linear(counter, sum(map(len, pieces)), len(ending))
