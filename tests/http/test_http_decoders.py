"""Content decoding: every coding, any split of the input, corrupt data, and bombs."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import itertools
import random
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncnet import DecodeError
from asyncnet._http._decoders import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_RATIO,
    DEFAULT_RATIO_FLOOR,
    DEFAULT_STEP,
    SUPPORTED_ENCODINGS,
    ContentDecoder,
    make_decoder,
)

SAMPLE = b"".join(
    b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(3000)
)


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def deflate_zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def gzip_members(data: bytes) -> bytes:
    third = len(data) // 3
    return (
        gzip.compress(data[:third])
        + gzip.compress(data[third : 2 * third])
        + gzip.compress(data[2 * third :])
    )


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": deflate_zlib,
    "deflate-raw": deflate_raw,
    "gzip-members": gzip_members,
}
CODING_OF = {"deflate-raw": "deflate", "gzip-members": "gzip"}


def decoder(coding: str, **kwargs: object) -> ContentDecoder:
    d = make_decoder(coding, **kwargs)  # type: ignore[arg-type]
    assert d is not None
    return d


def decode_all(coding: str, pieces: list[bytes], **kwargs: object) -> bytes:
    d = decoder(coding, **kwargs)
    out = [p for piece in pieces for p in d.decode(piece)]
    out.append(d.flush())
    return b"".join(out)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_whole_body(name: str) -> None:
    encoded = ENCODERS[name](SAMPLE)
    assert decode_all(CODING_OF.get(name, name), [encoded]) == SAMPLE


@pytest.mark.parametrize("name", list(ENCODERS))
def test_split_at_every_position(name: str) -> None:
    data = b"hello, hello, hello world! " * 5 + bytes(range(256))
    encoded = ENCODERS[name](data)
    coding = CODING_OF.get(name, name)
    for i in range(len(encoded) + 1):
        assert decode_all(coding, [encoded[:i], encoded[i:]]) == data, i
    assert decode_all(coding, [encoded[i : i + 1] for i in range(len(encoded))]) == data


@pytest.mark.parametrize("name", list(ENCODERS))
def test_small_steps_give_bounded_pieces(name: str) -> None:
    encoded = ENCODERS[name](SAMPLE)
    d = decoder(CODING_OF.get(name, name), step=100)
    pieces = d.decode(encoded)
    assert max(map(len, pieces)) <= 100
    assert b"".join(pieces) + d.flush() == SAMPLE


def test_no_decoder_needed() -> None:
    for value in (None, "", "identity", " Identity , identity", ","):
        assert make_decoder(value) is None


def test_case_and_whitespace_in_header() -> None:
    assert decode_all(" GZIP ", [gzip.compress(b"x")]) == b"x"


def test_chained_codings_decoded_in_reverse_order() -> None:
    # "Content-Encoding: deflate, gzip" means deflate was applied first.
    encoded = gzip.compress(deflate_zlib(SAMPLE))
    assert decode_all("deflate, gzip", [encoded]) == SAMPLE
    assert decode_all("deflate, identity, gzip", [encoded]) == SAMPLE
    with pytest.raises(DecodeError):
        decode_all("gzip, deflate", [encoded])
    triple = gzip.compress(gzip.compress(gzip.compress(SAMPLE)))
    assert (
        decode_all("gzip, gzip, gzip", [triple[i : i + 10] for i in range(0, len(triple), 10)])
        == SAMPLE
    )


def test_too_many_codings() -> None:
    with pytest.raises(DecodeError):
        make_decoder("gzip, gzip, gzip, gzip")
    assert make_decoder("gzip, gzip", max_codings=2) is not None


@pytest.mark.parametrize(
    "coding", ["compress", "x-compress", "bzip2", "gzip, foo", "exi", "pack200-gzip"]
)
def test_unknown_coding(coding: str) -> None:
    with pytest.raises(DecodeError):
        make_decoder(coding)


def test_accept_encoding_lists_what_we_decode() -> None:
    assert ACCEPT_ENCODING.startswith("gzip, deflate")
    for coding in ACCEPT_ENCODING.split(", "):
        assert coding in SUPPORTED_ENCODINGS
        assert make_decoder(coding) is not None


def test_empty_body_with_a_coding() -> None:
    for coding in ("gzip", "deflate"):
        d = decoder(coding)
        assert d.decode(b"") == []
        assert d.flush() == b""


@pytest.mark.parametrize("name", ["gzip", "deflate", "deflate-raw", "gzip-members"])
def test_truncated_at_flush(name: str) -> None:
    encoded = ENCODERS[name](SAMPLE)
    coding = CODING_OF.get(name, name)
    for cut in (1, 5, 11, len(encoded) // 2, len(encoded) - 4, len(encoded) - 1):
        d = decoder(coding)
        with pytest.raises(DecodeError):
            d.decode(encoded[:cut])
            d.flush()


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", b"not gzip at all"),
        ("gzip", b"\x1f\x8b\x08\x00garbage garbage garbage"),
        ("deflate", b"\xff\xff\xff\xff\xff\xff"),
        ("deflate", zlib.compress(SAMPLE)[:-4] + b"\x00\x00\x00\x00"),  # bad adler32
        ("gzip", gzip.compress(SAMPLE)[:-8] + b"\x00" * 8),  # bad crc and length
        # a second gzip member that is corrupt
        ("gzip", gzip.compress(SAMPLE) + b"\x1f\x8b\x08\x00garbage garbage garbage"),
        ("gzip", gzip.compress(SAMPLE) + gzip.compress(b"x")[:-8] + b"\x00" * 8),
    ],
)
def test_corrupt(coding: str, body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_all(coding, [body])
    with pytest.raises(DecodeError):
        decode_all(coding, [body[i : i + 3] for i in range(0, len(body), 3)])


@pytest.mark.parametrize(
    ("name", "trailer"),
    [
        ("gzip", b"\x00" * 10),
        ("gzip", b"junk"),
        ("gzip", b"\x00\x00junk\x1f\x8b"),
        ("deflate", b"x"),
        ("deflate", zlib.compress(b"another stream")),
        ("deflate-raw", b"\x1f\x8b junk"),
    ],
)
def test_bytes_after_the_end_are_ignored(name: str, trailer: bytes) -> None:
    # As in urllib3, httpx, aiohttp and browsers: the content before them is
    # complete and its checksum verified.
    encoded = ENCODERS[name](SAMPLE) + trailer
    coding = CODING_OF.get(name, name)
    assert decode_all(coding, [encoded]) == SAMPLE
    assert decode_all(coding, [encoded[:-3], encoded[-3:]]) == SAMPLE
    assert decode_all(coding, [encoded[i : i + 5] for i in range(0, len(encoded), 5)]) == SAMPLE


def test_decode_error_keeps_the_zlib_cause() -> None:
    with pytest.raises(DecodeError) as info:
        decode_all("gzip", [b"\x1f\x8b\x08\x00" + b"\xff" * 20])
    assert isinstance(info.value.__cause__, zlib.error)


# -- bombs -----------------------------------------------------------------------

GIB = 1 << 30


def gzip_of_zeros(size_mib: int) -> bytes:
    """A valid gzip stream of ``size_mib`` MiB of zeros (~1 KiB per MiB), built quickly.

    Each 1 MiB block is compressed once after a full flush, which makes blocks
    independent, so repeating the block's bytes gives a valid deflate stream.
    """
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush()
    crc = 0
    for _ in range(size_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (size_mib << 20) & 0xFFFFFFFF)
    return header + block * size_mib + end + trailer


def test_zero_gzip_helper_is_valid() -> None:
    assert gzip.decompress(gzip_of_zeros(3)) == bytes(3 << 20)


def feed_in_pieces(d: ContentDecoder, data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield from d.iter_decode(data[i : i + size])
    yield d.flush()


def test_gzip_bomb_raises_with_memory_flat() -> None:
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 2 << 20
    d = decoder("gzip")
    produced = 0
    largest = 0
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="bomb"):
            for piece in feed_in_pieces(d, bomb):
                produced += len(piece)
                largest = max(largest, len(piece))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Stopped just past the documented 8 MiB ratio floor (not before it), in
    # steps of at most the documented 64 KiB...
    assert (DEFAULT_RATIO_FLOOR, DEFAULT_STEP) == (8 * 1024 * 1024, 64 * 1024)
    assert 8 * 1024 * 1024 - 64 * 1024 <= produced <= 8 * 1024 * 1024 + 64 * 1024
    assert largest == 64 * 1024
    # ...and at most a few steps were ever alive at once.
    assert peak < 8 * DEFAULT_STEP, peak


def test_gzip_bomb_whole_input_at_once_with_decode() -> None:
    bomb = gzip_of_zeros(1024)
    d = decoder("gzip")
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            d.decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # decode() returns a list, so its peak is bounded by the floor, not the bomb.
    assert peak < DEFAULT_RATIO_FLOOR + 8 * DEFAULT_STEP, peak


def test_nested_gzip_bomb() -> None:
    inner = gzip_of_zeros(256)
    bomb = gzip.compress(gzip.compress(inner))
    assert len(bomb) < 16 * 1024
    d = decoder("gzip, gzip, gzip")
    with pytest.raises(DecodeError, match="bomb"):
        for _ in feed_in_pieces(d, bomb):
            pass


def test_absolute_size_cap() -> None:
    d = decoder("gzip", max_size=1000)
    with pytest.raises(DecodeError, match="limit"):
        for _ in feed_in_pieces(d, gzip.compress(bytes(5000))):
            pass
    assert decode_all("gzip", [gzip.compress(bytes(1000))], max_size=1000) == bytes(1000)


def test_small_bodies_may_compress_extremely() -> None:
    # Below the floor, any ratio is fine: 4 MiB of zeros from a few KiB.
    encoded = gzip_of_zeros(4)
    assert decode_all("gzip", [encoded]) == bytes(4 << 20)


def test_ratio_can_be_turned_off() -> None:
    bomb = gzip_of_zeros(16)
    d = decoder("gzip", max_ratio=None)
    assert sum(map(len, feed_in_pieces(d, bomb))) == 16 << 20


def text_like(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(5000)
    ]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=200)) + b"\n"
    return bytes(out[:size])


def test_large_ordinary_body_is_not_a_bomb() -> None:
    # Past the ratio floor with ordinary (text-like) data: nothing is refused.
    block = text_like(1 << 20)
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    encoded = b"".join(c.compress(block) for _ in range(24)) + c.flush()
    d = decoder("gzip")
    total = sum(map(len, feed_in_pieces(d, encoded)))
    assert total == 24 * len(block)


# -- properties -------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=2000),
    name=st.sampled_from(list(ENCODERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
    step=st.integers(min_value=1, max_value=5000),
)
def test_any_split_gives_the_same_output(
    data: bytes, name: str, cuts: list[int], step: int
) -> None:
    encoded = ENCODERS[name](data)
    bounds = sorted({0, len(encoded), *(c for c in cuts if c <= len(encoded))})
    pieces = [encoded[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode_all(CODING_OF.get(name, name), pieces, step=step) == data


@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=200), coding=st.sampled_from(["gzip", "deflate"]))
def test_garbage_gives_only_decode_error(garbage: bytes, coding: str) -> None:
    with contextlib.suppress(DecodeError):
        decode_all(coding, [garbage])


# -- optional codings: br and zstd ------------------------------------------------


def _optional(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


BROTLI = _optional("brotli", "brotlicffi")
ZSTD = _optional("compression.zstd", "zstandard")
OPTIONAL: dict[str, Callable[[bytes], bytes]] = {}
if BROTLI is not None:
    OPTIONAL["br"] = lambda data: bytes(BROTLI.compress(data))
if ZSTD is not None:
    if hasattr(ZSTD, "ZstdCompressor") and hasattr(ZSTD, "train_dict"):  # zstandard
        OPTIONAL["zstd"] = lambda data: bytes(ZSTD.ZstdCompressor().compress(data))
    else:
        OPTIONAL["zstd"] = lambda data: bytes(ZSTD.compress(data))
optional_codings = pytest.mark.parametrize(
    "coding",
    [
        pytest.param(c, marks=pytest.mark.skipif(c not in OPTIONAL, reason=f"no {c} module"))
        for c in ("br", "zstd")
    ],
)


def test_optional_codings_advertised_only_when_available() -> None:
    for coding in ("br", "zstd"):
        assert (coding in SUPPORTED_ENCODINGS) == (coding in OPTIONAL)
        assert (coding in ACCEPT_ENCODING.split(", ")) == (coding in OPTIONAL)


@optional_codings
def test_optional_whole_and_split(coding: str) -> None:
    encoded = OPTIONAL[coding](SAMPLE)
    assert decode_all(coding, [encoded]) == SAMPLE
    assert decode_all(coding, [encoded], step=100) == SAMPLE
    small = b"hello, hello, hello world! " * 5 + bytes(range(256))
    encoded = OPTIONAL[coding](small)
    for i in range(len(encoded) + 1):
        assert decode_all(coding, [encoded[:i], encoded[i:]]) == small, i


@optional_codings
def test_optional_truncated_and_corrupt(coding: str) -> None:
    encoded = OPTIONAL[coding](SAMPLE)
    for cut in (1, len(encoded) // 2, len(encoded) - 1):
        with pytest.raises(DecodeError):
            decode_all(coding, [encoded[:cut]])
    with pytest.raises(DecodeError):
        decode_all(coding, [b"\xff" * 64])


@optional_codings
def test_optional_chained_with_gzip(coding: str) -> None:
    encoded = gzip.compress(OPTIONAL[coding](SAMPLE))
    assert decode_all(f"{coding}, gzip", [encoded]) == SAMPLE


def test_zstd_several_frames() -> None:
    if "zstd" not in OPTIONAL:
        pytest.skip("no zstd module")
    encoded = OPTIONAL["zstd"](SAMPLE[:1000]) + OPTIONAL["zstd"](SAMPLE[1000:])
    assert decode_all("zstd", [encoded]) == SAMPLE
    assert decode_all("zstd", [encoded[i : i + 7] for i in range(0, len(encoded), 7)]) == SAMPLE


@optional_codings
def test_optional_bomb(coding: str) -> None:
    zeros = bytes(256 << 20)
    bomb = bytes(BROTLI.compress(zeros, quality=1)) if coding == "br" else OPTIONAL[coding](zeros)
    del zeros
    assert len(bomb) < 1 << 20
    d = decoder(coding)
    produced = 0
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="bomb"):
            for piece in feed_in_pieces(d, bomb):
                produced += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Bindings that buffer input internally count a piece as consumed when it
    # is handed over, so the limit can allow up to ratio x one 64 KiB piece.
    assert produced <= max(DEFAULT_RATIO_FLOOR, DEFAULT_MAX_RATIO * 65536) + 4 * DEFAULT_STEP
    # A binding without an output limit gets input in slices of at least 16
    # bytes, which can expand to a few codec blocks: more headroom than zlib.
    assert peak < 2 << 20, peak
