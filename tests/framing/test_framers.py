"""The sans-IO framers, fed bytes: split invariance, exact limits, clean and unclean ends."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncnet
from asyncnet import Delimited, FixedSize, LengthPrefixed, Lines, Raw
from asyncnet._framing import LineEnding
from asyncnet.testing import check_framing


def decode(framing: asyncnet.Framing[bytes], *pieces: bytes) -> list[bytes]:
    decoder = framing.decoder()
    frames: list[bytes] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    frames += decoder.feed(b"")
    decoder.feed_eof()
    return frames


# -- each framer through the conformance kit ---------------------------------------------

CASES = [
    (Lines(8), [b"abc", b"", b"12345678", b"a\rb", b"\r\r"[:1] + b"x"]),
    (Lines(8, "crlf"), [b"abc", b"", b"12345678", b"a\nb", b"\n"]),
    (Lines(8, "lf"), [b"abc", b"", b"1234567\r", b"a\rb", b"\r"]),
    (Delimited(b"aab", 5), [b"xyz", b"", b"aaaa", b"ba", b"bbaa"[:3]]),
    (Delimited(b"\x00", 3), [b"xyz", b"", b"\xff"]),
    (LengthPrefixed(1, max_frame=10), [b"xyz", b"", b"a" * 10, b"\x00\x01"]),
    (LengthPrefixed(2, "little", max_frame=300), [b"xyz", b"", b"b" * 300]),
    (LengthPrefixed(8, max_frame=5), [b"", b"12345"]),
    (FixedSize(3), [b"xyz", b"aaa", b"\n\r\n"]),
    (FixedSize(1), [b"x", b"y"]),
    (Raw(), [b"xyz", b"aaa", b"\n"]),
]


@pytest.mark.parametrize(("framing", "frames"), CASES, ids=[repr(c[0]) for c in CASES])
def test_check_framing_passes_for_every_builtin_framer(
    framing: asyncnet.Framing[bytes], frames: list[bytes]
) -> None:
    check_framing(framing, frames)


def test_default_limits_hold_exactly_at_full_size() -> None:
    # 64 KiB lines and 1 MiB length-prefixed frames, boundary included.
    check_framing(Lines(), [b"hello"], examples=10)
    check_framing(Lines(ending="crlf"), [b"hello"], examples=10)
    check_framing(LengthPrefixed(), [b"hello"], examples=10)


# -- hypothesis: any frames, any split --------------------------------------------------

line_frames = st.lists(st.binary(max_size=20).filter(lambda b: b"\n" not in b and not
                                                      b.endswith(b"\r")), max_size=8)
blob_frames = st.lists(st.binary(max_size=40), max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


def pieces_of(data: bytes, points: list[int]) -> list[bytes]:
    out, start = [], 0
    for p in sorted({min(p, len(data)) for p in points}):
        out.append(data[start:p])
        start = p
    return [*out, data[start:]]


def encode_all(framing: asyncnet.Framing[bytes], frames: list[bytes]) -> bytes:
    out = b""
    for frame in frames:
        encoded = framing.encode(frame)
        out += b"".join(encoded) if isinstance(encoded, tuple) else bytes(encoded)
    return out


@given(line_frames, cuts, st.sampled_from(["lf", "any"]))
def test_lines_round_trip_under_any_split(frames: list[bytes], points: list[int],
                                          ending: LineEnding) -> None:
    framing = Lines(20, ending)
    assert decode(framing, *pieces_of(encode_all(framing, frames), points)) == frames


@given(st.lists(st.binary(max_size=20).filter(lambda b: b"\r\n" not in b and
                                              not b.endswith(b"\r")), max_size=8), cuts)
def test_crlf_lines_round_trip_under_any_split(frames: list[bytes], points: list[int]) -> None:
    framing = Lines(20, "crlf")
    assert decode(framing, *pieces_of(encode_all(framing, frames), points)) == frames


@given(st.binary(min_size=1, max_size=4), st.lists(st.binary(max_size=20), max_size=8), cuts)
def test_delimited_round_trip_or_refuse_under_any_split(
    delimiter: bytes, frames: list[bytes], points: list[int]
) -> None:
    framing = Delimited(delimiter, 20)
    try:
        data = encode_all(framing, frames)
    except asyncnet.LocalProtocolError:
        return  # a frame the receiver would cut differently is refused
    assert decode(framing, *pieces_of(data, points)) == frames


@given(blob_frames, cuts, st.sampled_from([1, 2, 4, 8]), st.sampled_from(["big", "little"]))
def test_length_prefixed_round_trip_under_any_split(
    frames: list[bytes], points: list[int], size: int, byteorder: str
) -> None:
    framing = LengthPrefixed(size, byteorder, max_frame=40)  # type: ignore[arg-type]
    assert decode(framing, *pieces_of(encode_all(framing, frames), points)) == frames


@given(st.integers(min_value=1, max_value=5), st.integers(min_value=0, max_value=8), cuts)
def test_fixed_size_round_trip_under_any_split(n: int, count: int, points: list[int]) -> None:
    framing = FixedSize(n)
    frames = [bytes([i]) * n for i in range(count)]
    assert decode(framing, *pieces_of(encode_all(framing, frames), points)) == frames


@given(st.binary(max_size=200), cuts, st.sampled_from([Lines(16), Lines(16, "crlf"),
                                                       Delimited(b"ab", 16),
                                                       LengthPrefixed(1, max_frame=16)]))
def test_garbage_gives_frames_or_our_protocol_error_the_same_under_any_split(
    data: bytes, points: list[int], framing: asyncnet.Framing[bytes]
) -> None:
    def outcome(*pieces: bytes) -> tuple[list[bytes], object]:
        decoder = framing.decoder()
        frames: list[bytes] = []
        try:
            for piece in pieces:
                frames += decoder.feed(piece)
                frames += decoder.feed(b"")
            decoder.feed_eof()
        except asyncnet.RemoteProtocolError as exc:
            return frames, (type(exc), getattr(exc, "limit", None))
        return frames, None

    assert outcome(*pieces_of(data, points)) == outcome(data)


# -- limits: exact and early ------------------------------------------------------------


@pytest.mark.parametrize("ending", ["any", "crlf"])
def test_line_of_exactly_max_length_with_cr_and_lf_in_different_reads(ending: str) -> None:
    # Twisted's LineReceiver rejects this line: it checks the length with the
    # CR still in its buffer.
    framing = Lines(4, ending)  # type: ignore[arg-type]
    assert decode(framing, b"abcd\r", b"\nxy\r\n") == [b"abcd", b"xy"]


@pytest.mark.parametrize(
    ("framing", "line", "delim"),
    [(Lines(16, "lf"), b"x", b"\n"), (Lines(16, "any"), b"x", b"\r\n"),
     (Lines(16, "crlf"), b"x", b"\r\n"), (Delimited(b"END", 16), b"x", b"END")],
)
def test_frame_too_large_is_raised_as_soon_as_certain(
    framing: asyncnet.Framing[bytes], line: bytes, delim: bytes
) -> None:
    decoder = framing.decoder()
    limit = 16
    # The longest the frame can be held without proof it is too long: the limit
    # plus a possible start of its ending.
    for _ in range(limit):
        assert decoder.feed(line) == []
    for byte in delim[:-1]:
        assert decoder.feed(bytes([byte])) == []
        assert decoder.buffered <= limit + len(delim) - 1
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"y")
    assert info.value.limit == limit
    assert info.value.size > limit
    assert decoder.buffered == 0
    # A failed decoder stays failed: the same error from every later call.
    with pytest.raises(asyncnet.FrameTooLarge) as again:
        decoder.feed(b"\n")
    assert again.value is info.value
    with pytest.raises(asyncnet.FrameTooLarge) as again:
        decoder.feed_eof()
    assert again.value is info.value


def test_one_big_read_without_delimiter_is_refused_without_being_buffered() -> None:
    decoder = Lines(10).decoder()
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"x" * 1_000_000)
    assert (info.value.limit, info.value.size) == (10, 1_000_000)
    assert decoder.buffered == 0


def test_length_prefix_over_the_limit_is_refused_from_the_header_alone() -> None:
    decoder = LengthPrefixed(4, max_frame=1000).decoder()
    assert decoder.feed(b"\xff\xff") == []
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"\xff\xff")
    assert (info.value.limit, info.value.size) == (1000, 0xFFFFFFFF)
    assert decoder.buffered == 0


def test_frames_before_an_error_are_returned_and_the_error_follows() -> None:
    decoder = Lines(3).decoder()
    assert decoder.feed(b"ab\ncd\nTOOLONG\nzz\n") == [b"ab", b"cd"]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"")
    assert (info.value.limit, info.value.size) == (3, 7)


@pytest.mark.parametrize(
    ("framing", "data", "received"),
    [(Lines(), b"ab\npartial", 7), (Lines(), b"ab\r", 3), (Delimited(b"--"), b"x-", 2),
     (LengthPrefixed(2), b"\x00", 1), (LengthPrefixed(2), b"\x00\x05ab", 2),
     (LengthPrefixed(2), b"\x00\x05", 0), (FixedSize(4), b"abcdef", 2)],
)
def test_eof_inside_a_frame_is_incomplete_frame(
    framing: asyncnet.Framing[bytes], data: bytes, received: int
) -> None:
    decoder = framing.decoder()
    decoder.feed(data)
    with pytest.raises(asyncnet.IncompleteFrame) as info:
        decoder.feed_eof()
    assert info.value.received == received


@pytest.mark.parametrize(
    "framing", [Lines(), Delimited(b"--"), LengthPrefixed(2), FixedSize(2), Raw()]
)
def test_eof_on_a_boundary_is_clean(framing: asyncnet.Framing[bytes]) -> None:
    decoder = framing.decoder()
    data = encode_all(framing, [b"ab", b"cd"])
    assert decoder.feed(data)
    decoder.feed_eof()  # no exception
    assert decoder.buffered == 0


# -- encoders ------------------------------------------------------------------------------


def test_encoders_return_pieces_without_copying_the_payload() -> None:
    payload = b"p" * 100_000
    for framing in (LengthPrefixed(), Lines(), Delimited(b"\0")):
        encoded = framing.encode(payload)
        assert isinstance(encoded, tuple)
        assert any(piece is payload for piece in encoded)
    assert Raw().encode(payload) is payload


@pytest.mark.parametrize(
    ("framing", "frame", "rule"),
    [(Lines(), b"a\nb", "cannot contain LF"),
     (Lines(ending="any"), b"ends with cr\r", "'any' line cannot end with CR"),
     (Lines(ending="crlf"), b"a\r\nb", "'crlf' line cannot contain CRLF"),
     (Lines(ending="lf"), b"\n", "cannot contain LF"),
     (Delimited(b"aa"), b"a", "contains the delimiter b'aa'"),
     (Delimited(b"ab"), b"xaby", "contains the delimiter b'ab'"),
     (LengthPrefixed(1), b"x" * 256, "256 bytes does not fit a 1-byte length field"),
     (LengthPrefixed(2), b"x" * 65536, "65536 bytes does not fit a 2-byte length field"),
     (FixedSize(3), b"ab", "2 bytes, FixedSize needs 3")],
)
def test_encode_refuses_frames_the_receiver_would_not_get_back(
    framing: asyncnet.Framing[bytes], frame: bytes, rule: str
) -> None:
    with pytest.raises(asyncnet.LocalProtocolError, match=re.escape(rule)):
        framing.encode(frame)


def test_encode_accepts_the_largest_frame_the_field_holds() -> None:
    header, _ = LengthPrefixed(1).encode(b"x" * 255)  # type: ignore[misc]
    assert header == b"\xff"


@pytest.mark.parametrize(
    ("make", "rule"),
    [(lambda: Lines(ending="cr"), "ending must be 'lf', 'crlf' or 'any'"),
     (lambda: Lines(-1), "max_length must be >= 0"),
     (lambda: Delimited(b""), "delimiter must be non-empty bytes"),
     (lambda: Delimited("x"), "delimiter must be non-empty bytes"),
     (lambda: LengthPrefixed(3), "size must be 1, 2, 4 or 8"),
     (lambda: LengthPrefixed(4, "middle"), "byteorder must be 'big' or 'little'"),
     (lambda: LengthPrefixed(max_frame=-1), "max_frame must be >= 0"),
     (lambda: FixedSize(0), "n must be >= 1")],
)
def test_invalid_framer_arguments_are_usage_errors(make: object, rule: str) -> None:
    with pytest.raises(asyncnet.UsageError, match=re.escape(rule)):
        make()  # type: ignore[operator]


def test_builtin_framers_satisfy_the_documented_protocols() -> None:
    for framing in (Lines(), Delimited(b"x"), LengthPrefixed(), FixedSize(1), Raw()):
        assert isinstance(framing, asyncnet.Framing)
        assert isinstance(framing.decoder(), asyncnet.FrameDecoder)
