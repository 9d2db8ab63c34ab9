"""The framers' fast paths against a plain reference model, on bytes that stress them.

The delimited decoder cuts a read with ``bytes.split`` when no frame in it can
be over the limit, and the sized decoder checks lengths inline; both must give
exactly what a plain left-to-right scan of the whole stream gives, for any
split, with lone CRs, CRs before LFs and delimiters straddling reads.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncnet
from asyncnet import Delimited, LengthPrefixed, Lines

Outcome = tuple[list[bytes], type[Exception] | None]


def reference_delimited(data: bytes, delim: bytes, limit: int, strip_cr: bool,
                        tail: bytes) -> Outcome:
    """A plain scan of the whole stream: frames up to the first error, and the error."""
    frames: list[bytes] = []
    pos = 0
    while (i := data.find(delim, pos)) != -1:
        frame = data[pos:i]
        if strip_cr and frame.endswith(b"\r"):
            frame = frame[:-1]
        if len(frame) > limit:
            return frames, asyncnet.FrameTooLarge
        frames.append(frame)
        pos = i + len(delim)
    rest = data[pos:]
    if not rest:
        return frames, None
    # The shortest the unfinished frame can turn out: less a possible start of its ending.
    held = max((j for j in range(len(tail)) if j and rest.endswith(tail[:j])), default=0)
    if len(rest) - held > limit:
        return frames, asyncnet.FrameTooLarge
    return frames, asyncnet.IncompleteFrame


def decoded(framing: asyncnet.Framing[bytes], pieces: list[bytes]) -> Outcome:
    decoder = framing.decoder()
    frames: list[bytes] = []
    try:
        for piece in pieces:
            frames += decoder.feed(piece)
            frames += decoder.feed(b"")
        decoder.feed_eof()
    except (asyncnet.FrameTooLarge, asyncnet.IncompleteFrame) as exc:
        return frames, type(exc)
    return frames, None


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    out, start = [], 0
    for p in sorted({min(p, len(data)) for p in points}):
        out.append(data[start:p])
        start = p
    return [*out, data[start:]]


stream = st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"ab"]),
                  max_size=60).map(b"".join)
cuts = st.lists(st.integers(min_value=0, max_value=120), max_size=10)


@given(stream, cuts, st.integers(min_value=0, max_value=8), st.sampled_from(["lf", "crlf", "any"]))
def test_lines_match_a_plain_scan_under_any_split(
    data: bytes, points: list[int], limit: int, ending: str
) -> None:
    framing = Lines(limit, ending)  # type: ignore[arg-type]
    delim, strip, tail = {
        "lf": (b"\n", False, b"\n"),
        "crlf": (b"\r\n", False, b"\r\n"),
        "any": (b"\n", True, b"\r\n"),
    }[ending]
    expected = reference_delimited(data, delim, limit, strip, tail)
    assert decoded(framing, split_at(data, points)) == expected
    assert decoded(framing, [data]) == expected


@given(stream, cuts, st.integers(min_value=0, max_value=8),
       st.sampled_from([b"a", b"ab", b"aab", b"\r\n", b"abab"]))
def test_delimited_matches_a_plain_scan_under_any_split(
    data: bytes, points: list[int], limit: int, delim: bytes
) -> None:
    expected = reference_delimited(data, delim, limit, False, delim)
    assert decoded(Delimited(delim, limit), split_at(data, points)) == expected
    assert decoded(Delimited(delim, limit), [data]) == expected


@given(st.binary(max_size=80), cuts, st.sampled_from([1, 2]), st.integers(0, 40))
def test_length_prefixed_matches_a_plain_scan_under_any_split(
    data: bytes, points: list[int], size: int, limit: int
) -> None:
    frames: list[bytes] = []
    error: type[Exception] | None = None
    pos = 0
    while pos < len(data):
        if len(data) - pos < size:
            error = asyncnet.IncompleteFrame
            break
        length = int.from_bytes(data[pos:pos + size], "big")
        if length > limit:
            error = asyncnet.FrameTooLarge
            break
        if len(data) - pos - size < length:
            error = asyncnet.IncompleteFrame
            break
        frames.append(data[pos + size:pos + size + length])
        pos += size + length
    framing = LengthPrefixed(size, max_frame=limit)
    assert decoded(framing, split_at(data, points)) == (frames, error)


# Reads that each hold one whole line, delimiter last (the decoders' single-frame
# path), or a line's start only, after frames or not: each against the plain scan.
ONE_FRAME_READS = [
    [b"abc\n"],
    [b"\n"],
    [b"\r\n"],
    [b"ab\r\n"],
    [b"ab\r\r\n"],
    [b"\r\r\n"],
    [b"abcd\n"],
    [b"abcde\n"],
    [b"abcd\r\n"],
    [b"abcde\r\n"],
    [b"ab", b"c\nde\n"],
    [b"ab", b"c\nabcde\n"],
    [b"ab", b"c\r\nabcd\r\n"],
    [b"ab\n", b"cd\n", b"abcde"],
    [b"ab", b"\nabcde"],
    [b"ab", b"\nabcd"],
    [b"ab", b"\nabcd\r"],
    [b"abcde"],
    [b"abcd\r"],
    [b"ab\ncd\n"],
]


@pytest.mark.parametrize("ending", ["lf", "crlf", "any"])
@pytest.mark.parametrize("pieces", ONE_FRAME_READS)
def test_one_line_per_read_matches_a_plain_scan(pieces: list[bytes], ending: str) -> None:
    limit = 4
    delim, strip, tail = {
        "lf": (b"\n", False, b"\n"),
        "crlf": (b"\r\n", False, b"\r\n"),
        "any": (b"\n", True, b"\r\n"),
    }[ending]
    expected = reference_delimited(b"".join(pieces), delim, limit, strip, tail)
    assert decoded(Lines(limit, ending), pieces) == expected  # type: ignore[arg-type]


def test_a_single_line_over_the_limit_fails_in_the_read_that_completes_it() -> None:
    decoder = Lines(4).decoder()
    assert decoder.feed(b"abcd\r\n") == [b"abcd"]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"abcde\n")
    assert (info.value.limit, info.value.size) == (4, 5)
    # Frames completed before it in the same read come first; the error follows.
    decoder = Lines(4).decoder()
    assert decoder.feed(b"ab") == []
    assert decoder.feed(b"c\nabcde\n") == [b"abc"]
    with pytest.raises(asyncnet.FrameTooLarge):
        decoder.feed(b"")
