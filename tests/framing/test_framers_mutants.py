"""The framers at the boundaries mutation testing found unpinned (docs/development.rst).

Public API only: each test builds a framer from ``asyncnet``, feeds its
decoder bytes and checks the frames or the error.
"""

from __future__ import annotations

import pytest

import asyncnet
from asyncnet import Delimited, FixedSize, LengthPrefixed, Lines
from asyncnet.testing import check_framing


def test_default_limits_are_64_kib_lines_and_1_mib_frames() -> None:
    assert Lines().max_length == 65536
    assert Delimited(b";").max_length == 65536
    assert LengthPrefixed().max_frame == 1048576
    decoder = Lines().decoder()
    assert decoder.feed(b"a" * 65536 + b"\n") == [b"a" * 65536]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"b" * 65537 + b"\n")
    assert info.value.limit == 65536


def test_default_length_prefixed_limit_is_one_mib() -> None:
    decoder = LengthPrefixed().decoder()
    assert decoder.feed(b"\x00\x10\x00\x00") == []  # exactly 1 MiB announced
    assert decoder.buffered == 0
    frames = decoder.feed(b"z" * 1048576)
    assert [len(f) for f in frames] == [1048576]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"\x00\x10\x00\x01")
    assert (info.value.limit, info.value.size) == (1048576, 1048577)


@pytest.mark.parametrize(
    "framing", [Delimited(b";", 0), Lines(0, "lf"), Lines(0, "crlf"), Lines(0)],
    ids=repr,
)
def test_a_limit_of_zero_allows_only_empty_frames(framing: asyncnet.Framing[bytes]) -> None:
    ending = b";" if isinstance(framing, Delimited) else b"\r\n" if "crlf" in repr(framing) \
        else b"\n"
    decoder = framing.decoder()
    assert decoder.feed(ending * 2) == [b"", b""]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"x" + ending)
    assert (info.value.limit, info.value.size) == (0, 1)


def test_a_length_prefixed_limit_of_zero_allows_only_empty_frames() -> None:
    decoder = LengthPrefixed(1, max_frame=0).decoder()
    assert decoder.feed(b"\x00\x00") == [b"", b""]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"\x01")
    assert (info.value.limit, info.value.size) == (0, 1)


def test_a_crlf_line_may_hold_a_lone_cr_but_not_end_with_one() -> None:
    crlf = Lines(ending="crlf")
    assert crlf.encode(b"a\rb") == b"a\rb\r\n"
    assert crlf.encode(b"\rx") == b"\rx\r\n"
    with pytest.raises(asyncnet.LocalProtocolError, match="cannot contain CRLF or end with CR"):
        crlf.encode(b"ends with cr\r")
    check_framing(crlf, [b"a\rb", b"\rx", b"plain"], examples=10)


def test_any_lines_in_one_read_with_more_bare_lfs_than_crlfs() -> None:
    # One CRLF and two bare LFs: the read is cut on LF and each CR before an LF dropped.
    assert Lines().decoder().feed(b"a\r\nb\nc\n") == [b"a", b"b", b"c"]
    assert Lines().decoder().feed(b"a\nb\r\nc\r\nd\ne\n") == [b"a", b"b", b"c", b"d", b"e"]
    # A lone CR inside a line stays; only the one before the LF goes.
    assert Lines().decoder().feed(b"x\ry\r\nz\n") == [b"x\ry", b"z"]


def test_crlf_lines_before_a_line_over_the_limit_in_one_read() -> None:
    # Over the limit somewhere in the read: the careful per-frame path, which
    # must drop the CR of each CRLF as the fast path does.
    decoder = Lines(3).decoder()
    assert decoder.feed(b"ab\r\ncd\r\nTOOLONG\r\nzz\r\n") == [b"ab", b"cd"]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"")
    assert (info.value.limit, info.value.size) == (3, 7)
    decoder = Lines(3).decoder()
    assert decoder.feed(b"abc\r\nTOOLONG") == [b"abc"]


@pytest.mark.parametrize("delimiter", [b"END", b"<END>"])
def test_a_long_delimiter_split_at_every_point_of_a_read(delimiter: bytes) -> None:
    check_framing(Delimited(delimiter, 12), [b"x", b"", b"<EN", b"ab" * 6], examples=10)


def test_an_empty_length_prefixed_frame_whose_header_is_split() -> None:
    decoder = LengthPrefixed(2).decoder()
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x00") == [b""]
    assert decoder.buffered == 0
    decoder.feed_eof()  # on a boundary: a clean end
    decoder = LengthPrefixed(2).decoder()
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x00\x00\x01z\x00") == [b"", b"z"]
    assert decoder.feed(b"\x00") == [b""]


def test_an_empty_length_prefixed_frame_ending_a_read() -> None:
    decoder = LengthPrefixed(2).decoder()
    assert decoder.feed(b"\x00\x00") == [b""]
    assert decoder.feed(b"\x00\x01a\x00\x00") == [b"a", b""]
    decoder.feed_eof()


def test_a_body_split_right_after_its_header() -> None:
    decoder = LengthPrefixed(2).decoder()
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x03") == []  # the header completes; no body byte yet
    assert decoder.buffered == 0
    assert decoder.feed(b"ab") == []
    assert decoder.buffered == 2
    assert decoder.feed(b"c\x00") == [b"abc"]
    with pytest.raises(asyncnet.IncompleteFrame) as info:
        decoder.feed_eof()
    assert info.value.received == 1


@pytest.mark.parametrize(
    ("framing", "frames", "held"),
    [(Lines(), [b"ab"], 9), (Lines(ending="crlf"), [], 12), (Delimited(b"--"), [], 12)],
    ids=repr,
)
def test_a_delimited_decoder_drops_what_it_held_when_the_stream_ends_inside_a_frame(
    framing: asyncnet.Framing[bytes], frames: list[bytes], held: int
) -> None:
    decoder = framing.decoder()
    assert decoder.feed(b"ab\npartial\r-") == frames
    assert decoder.buffered == held
    with pytest.raises(asyncnet.IncompleteFrame) as info:
        decoder.feed_eof()
    assert info.value.received == held
    assert decoder.buffered == 0
    with pytest.raises(asyncnet.IncompleteFrame) as again:
        decoder.feed(b"\n")
    assert again.value is info.value


@pytest.mark.parametrize(
    ("framing", "data", "rest"),
    [(Lines(), b"ab\r\ncd\nef", b"\n"), (Delimited(b"--"), b"ab--cd--ef", b"--"),
     (LengthPrefixed(1), b"\x02ab\x02cd\x02e", b"f"), (FixedSize(2), b"abcde", b"f")],
    ids=repr,
)
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_frames_are_bytes_when_a_decoder_is_fed_a_bytearray_or_memoryview(
    framing: asyncnet.Framing[bytes], data: bytes, rest: bytes, kind: type
) -> None:
    decoder = framing.decoder()
    first = decoder.feed(kind(data))
    second = decoder.feed(kind(rest))
    assert (first, second) == ([b"ab", b"cd"], [b"ef"])
    assert all(type(frame) is bytes for frame in first + second)


def test_a_failed_length_prefixed_decoder_stays_failed() -> None:
    decoder = LengthPrefixed(2, max_frame=4).decoder()
    assert decoder.feed(b"\x00\x01a\x00\x09") == [b"a"]
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"")
    assert (info.value.limit, info.value.size) == (4, 9)
    for call in (lambda: decoder.feed(b"\x00\x00"), decoder.feed_eof):
        with pytest.raises(asyncnet.FrameTooLarge) as again:
            call()
        assert again.value is info.value


def test_delimited_encode_refuses_a_short_frame_that_starts_the_delimiter_early() -> None:
    # b"ab" + b"abab" holds the delimiter at offset 0: the receiver would see an empty frame.
    with pytest.raises(asyncnet.LocalProtocolError, match="contains the delimiter"):
        Delimited(b"abab").encode(b"ab")
    assert Delimited(b"abab").encode(b"b") == b"babab"


def test_a_header_split_across_reads_then_part_of_the_body() -> None:
    decoder = LengthPrefixed(2).decoder()
    assert decoder.feed(b"\x00") == []
    assert decoder.feed(b"\x04ab") == []
    assert decoder.buffered == 2
    assert decoder.feed(b"cd") == [b"abcd"]


@pytest.mark.parametrize("framing", [Lines(), Lines(ending="crlf"), Delimited(b"\0")])
def test_frames_up_to_16_kib_encode_joined_and_longer_ones_as_pieces_without_a_copy(
    framing: Lines | Delimited,
) -> None:
    # One write of one small bytes object; a large payload is handed over
    # as it is, the ending beside it (what send_nowait writes without a copy).
    small = b"x" * (16 * 1024)
    assert framing.encode(small) == small + framing.encode(b"")
    large = b"x" * (16 * 1024 + 1)
    pieces = framing.encode(large)
    assert isinstance(pieces, tuple)
    assert pieces[0] is large
    assert b"".join(pieces) == large + framing.encode(b"")


@pytest.mark.parametrize("data", [bytearray(b"chunk"), memoryview(b"chunk")])
def test_raw_hands_out_bytes_whatever_the_transport_passes(data: bytearray | memoryview) -> None:
    (frame,) = asyncnet.Raw().decoder().feed(data)
    assert type(frame) is bytes
    assert frame == b"chunk"
