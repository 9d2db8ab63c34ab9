"""The framers at the boundaries mutation testing found unpinned (docs/development.rst).

Public API only: each test builds a framer from ``asyncnet``, feeds its
decoder bytes and checks the frames or the error.
"""

from __future__ import annotations

import pytest

import asyncnet
from asyncnet import Delimited, LengthPrefixed, Lines


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
