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
    with pytest.raises(DecodeError, match=r"^corrupt deflate content"):
        decode_all("gzip, deflate", [encoded])
    triple = gzip.compress(gzip.compress(gzip.compress(SAMPLE)))
    assert (
        decode_all("gzip, gzip, gzip", [triple[i : i + 10] for i in range(0, len(triple), 10)])
        == SAMPLE
    )


def test_too_many_codings() -> None:
    with pytest.raises(DecodeError, match=r"^too many content codings \(4 > 3\)"):
        make_decoder("gzip, gzip, gzip, gzip")
    assert make_decoder("gzip, gzip", max_codings=2) is not None


@pytest.mark.parametrize(
    "coding", ["compress", "x-compress", "bzip2", "gzip, foo", "exi", "pack200-gzip"]
)
def test_unknown_coding(coding: str) -> None:
    with pytest.raises(DecodeError, match=r"^unsupported content coding"):
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
        with pytest.raises(
            DecodeError, match=rf"^truncated {coding} content: the stream did not end$"
        ):
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
    with pytest.raises(DecodeError, match=rf"^corrupt {coding} content: "):
        decode_all(coding, [body])
    with pytest.raises(DecodeError, match=rf"^corrupt {coding} content: "):
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
        with pytest.raises(DecodeError, match=r"^decompression bomb: "):
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
        with pytest.raises(
            DecodeError, match=rf"^truncated {coding} content: the stream did not end$"
        ):
            decode_all(coding, [encoded[:cut]])
    with pytest.raises(DecodeError, match=rf"^corrupt {coding} content: "):
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


# -- the ratio limit: what it is measured against, where it starts ----------------


def gzip_of_zero_blocks(size_mib: int, block_size: int) -> bytes:
    """gzip of ``size_mib`` MiB of zeros, compressed in independent ``block_size`` blocks.

    Small blocks compress far less than one long run (about 93x for 2 KiB
    blocks), and the result is one short block repeated, which an outer gzip
    squeezes again by orders of magnitude.
    """
    size = size_mib << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = c.compress(bytes(block_size)) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(bytes(size)), size & 0xFFFFFFFF)
    return header + block * (size // block_size) + end + trailer


def test_stacked_bomb_ratio_is_measured_against_the_bytes_received() -> None:
    inner = gzip_of_zero_blocks(15, 2048)
    body = gzip.compress(inner, 9)
    assert len(body) < 2048
    assert (15 << 20) / len(body) > 7500
    # Each layer alone passes: the outer one yields less than the floor, the
    # inner one expands under 200x, so a ratio taken against the inner
    # layer's input would let this through.
    assert len(inner) < DEFAULT_RATIO_FLOOR
    assert (15 << 20) / len(inner) < DEFAULT_MAX_RATIO
    assert sum(map(len, feed_in_pieces(decoder("gzip"), inner))) == 15 << 20
    d = decoder("gzip, gzip")
    produced = 0
    with pytest.raises(DecodeError, match="decompression bomb"):
        for piece in feed_in_pieces(d, body, size=len(body)):
            produced += len(piece)
    assert DEFAULT_RATIO_FLOOR - DEFAULT_STEP <= produced <= DEFAULT_RATIO_FLOOR


def test_ratio_floor_is_eight_mib() -> None:
    floor = 8 * 1024 * 1024
    assert floor == DEFAULT_RATIO_FLOOR
    # Exactly the floor, at a ratio far past the limit: allowed.
    at_floor = gzip_of_zeros(8)
    assert len(at_floor) * DEFAULT_MAX_RATIO < floor
    assert sum(map(len, feed_in_pieces(decoder("gzip"), at_floor))) == floor
    # One byte more is refused, and only once past the floor.
    d = decoder("gzip")
    produced = 0
    with pytest.raises(DecodeError, match="decompression bomb") as info:
        for piece in feed_in_pieces(d, gzip.compress(bytes(floor + 1))):
            produced += len(piece)
    assert produced == floor
    assert f"more than {floor + 1} bytes" in str(info.value)
    assert f"limit: {DEFAULT_MAX_RATIO}x past {floor} bytes" in str(info.value)


def test_documented_defaults_are_pinned() -> None:
    assert DEFAULT_MAX_RATIO == 200
    assert DEFAULT_STEP == 64 * 1024
    # Decoded output comes in steps of exactly 64 KiB when there is enough of it.
    pieces = decoder("gzip").decode(gzip.compress(bytes(200_000)))
    assert [len(p) for p in pieces[:3]] == [65536, 65536, 65536]
    # Three stacked codings are accepted, a fourth refused.
    assert make_decoder("gzip, deflate, gzip") is not None
    with pytest.raises(DecodeError, match=r"too many content codings \(4 > 3\)"):
        make_decoder("gzip, deflate, gzip, gzip")


def _stored_zlib(data: bytes) -> bytes:
    encoded = zlib.compress(data, 0)
    assert len(encoded) == len(data) + 11  # 2 header + 5 block header + 4 adler32
    return encoded


def test_ratio_limit_is_strictly_greater_than() -> None:
    # A stored (level 0) zlib stream of 117 bytes is 128 bytes long: at a limit
    # of exactly 117/128 the output equals the limit and is allowed; any lower
    # limit refuses it.
    encoded = _stored_zlib(bytes(range(117)))
    allowed = decoder("deflate", max_ratio=117 / 128, ratio_floor=0)
    assert b"".join(allowed.decode(encoded)) + allowed.flush() == bytes(range(117))
    refused = decoder("deflate", max_ratio=116 / 128, ratio_floor=0)
    with pytest.raises(DecodeError, match="decompression bomb: 128 bytes decoded to more than 117"):
        refused.decode(encoded)
    # The floor is strict too: output of exactly ratio_floor bytes is never refused.
    at_floor = decoder("deflate", max_ratio=0.01, ratio_floor=117)
    assert b"".join(at_floor.decode(encoded)) == bytes(range(117))


def test_ratio_counts_the_bytes_received_so_far() -> None:
    # Fed in pieces, the limit is checked against the input consumed up to the
    # output produced, so the refusal comes on the piece that breaks it.
    body = gzip.compress(bytes(1 << 20))
    d = decoder("gzip", max_ratio=50, ratio_floor=0)
    with pytest.raises(DecodeError, match=r"decompression bomb: \d+ bytes decoded") as info:
        for i in range(0, len(body), 16):
            d.decode(body[i : i + 16])
    consumed = int(str(info.value).split(": ")[1].split()[0])
    produced = int(str(info.value).split("more than ")[1].split()[0])
    assert 0 < consumed <= len(body)
    assert produced > 50 * consumed


def test_max_size_is_inclusive() -> None:
    d = decoder("gzip", max_size=1000)
    assert b"".join(d.decode(gzip.compress(bytes(1000)))) + d.flush() == bytes(1000)
    d = decoder("gzip", max_size=999)
    with pytest.raises(DecodeError, match="exceeds the limit of 999 bytes"):
        d.decode(gzip.compress(bytes(1000)))


def test_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="step must be at least 1"):
        make_decoder("gzip", step=0)
    d = decoder("gzip", step=1)
    pieces = d.decode(gzip.compress(b"abc"))
    assert pieces == [b"a", b"b", b"c"]


def test_errors_name_the_coding_and_the_rule() -> None:
    with pytest.raises(DecodeError, match="unsupported content coding 'compress'"):
        make_decoder("compress")
    with pytest.raises(DecodeError, match="truncated gzip content"):
        decode_all("gzip", [gzip.compress(SAMPLE)[:-1]])
    with pytest.raises(DecodeError, match="truncated x-gzip content"):
        decode_all("x-gzip", [gzip.compress(SAMPLE)[:-1]])
    with pytest.raises(DecodeError, match="truncated deflate content"):
        decode_all("deflate", [deflate_zlib(SAMPLE)[:-1]])
    with pytest.raises(DecodeError, match="truncated deflate content"):
        decode_all("deflate", [b"x"])  # one byte: the format is not even known
    with pytest.raises(DecodeError, match="corrupt gzip content"):
        decode_all("gzip", [b"not gzip at all"])
    with pytest.raises(DecodeError, match="corrupt deflate content"):
        decode_all("deflate", [b"\xff" * 6])


# -- bytes after the end, at every split --------------------------------------------


@pytest.mark.parametrize(
    ("name", "trailer"),
    [
        ("gzip", b"\x00" * 10),
        ("gzip", b"junk\x1f\x8b\x08\x00more"),  # a gzip magic after junk is junk too
        ("gzip", b"\x00\x1f"),
        ("gzip-members", b"\x00\x00junk"),
        ("x-gzip", b"x"),
        ("deflate", b"\x1f\x8b\x08\x00"),  # deflate has no members: all junk
        ("deflate", zlib.compress(b"another stream")),
        ("deflate-raw", b"\x1f\x8b junk"),
    ],
)
def test_bytes_after_the_end_ignored_at_every_split(name: str, trailer: bytes) -> None:
    data = b"hello, hello, hello world! " * 5 + bytes(range(256))
    encoded = ENCODERS[name](data) + trailer
    coding = CODING_OF.get(name, name)
    for i in range(len(encoded) + 1):
        assert decode_all(coding, [encoded[:i], encoded[i:]]) == data, i
        for j in range(i, min(i + 12, len(encoded) + 1)):
            assert decode_all(coding, [encoded[:i], encoded[i:j], encoded[j:]]) == data, (i, j)


def test_a_second_gzip_member_at_every_split() -> None:
    first, second = b"first member " * 20, b"second member " * 20
    encoded = gzip.compress(first) + gzip.compress(second)
    for i in range(len(encoded) + 1):
        assert decode_all("gzip", [encoded[:i], encoded[i:]]) == first + second, i
    # A member cut short is truncated content, wherever the cut falls.
    for cut in range(len(gzip.compress(first)) + 1, len(encoded)):
        with pytest.raises(DecodeError, match="truncated gzip"):
            decode_all("gzip", [encoded[:cut]])


def test_deflate_format_detected_whatever_the_first_piece() -> None:
    # Wrapped and raw deflate told apart by the first two bytes, even when
    # they arrive one at a time or with empty pieces between them.
    for encoded in (deflate_zlib(SAMPLE), deflate_raw(SAMPLE)):
        assert decode_all("deflate", [b"", encoded[:1], b"", encoded[1:2], encoded[2:]]) == SAMPLE


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, deflate"])
def test_empty_body_and_empty_pieces(coding: str) -> None:
    if any(c.strip() not in SUPPORTED_ENCODINGS for c in coding.split(",")):
        pytest.skip(f"no module for {coding}")
    d = decoder(coding)
    assert d.decode(b"") == []
    assert list(d.iter_decode(b"")) == []
    assert d.flush() == b""


@optional_codings
def test_optional_ordinary_body_is_measured_against_its_input(coding: str) -> None:
    # Text compresses a few times over: with the ratio checked from the first
    # byte (no floor) at 20x, it must still decode, fed in any piece size.
    data = text_like(1 << 20)
    encoded = OPTIONAL[coding](data)
    assert len(data) < 8 * len(encoded)
    for size in (7, 4096, len(encoded)):
        d = decoder(coding, max_ratio=20, ratio_floor=0)
        assert b"".join(feed_in_pieces(d, encoded, size=size)) == data
    # The same body against a limit it does break is refused.
    d = decoder(coding, max_ratio=1, ratio_floor=0)
    with pytest.raises(DecodeError, match="decompression bomb"):
        b"".join(feed_in_pieces(d, encoded))


@optional_codings
def test_optional_errors_name_the_coding_and_the_rule(coding: str) -> None:
    encoded = OPTIONAL[coding](SAMPLE)
    with pytest.raises(DecodeError, match=f"truncated {coding} content"):
        decode_all(coding, [encoded[: len(encoded) // 2]])
    with pytest.raises(DecodeError, match=f"corrupt {coding} content"):
        decode_all(coding, [b"\xff" * 64])


@optional_codings
def test_optional_bounded_steps_at_every_split(coding: str) -> None:
    data = SAMPLE[:20_000]
    encoded = OPTIONAL[coding](data)
    for i in range(0, len(encoded) + 1, 7):
        d = decoder(coding, step=500)
        pieces = [*d.decode(encoded[:i]), *d.decode(encoded[i:])]
        pieces.append(d.flush())
        assert b"".join(pieces) == data, i
        if coding == "br" and hasattr(BROTLI.Decompressor(), "can_accept_more_data"):
            # brotli >= 1.2 limits its output; older bindings and zstd are
            # bounded only by slicing their input.
            assert max(map(len, pieces)) <= 500


@pytest.mark.parametrize(
    "encoded",
    [
        # Final stored block: its first byte has the zlib method nibble 9, not 8,
        # and the two bytes pass the zlib header checksum.
        bytes([0x09, 21, 0, 0xEA, 0xFF]) + bytes(range(21)),
        # Stored block then final empty one: method nibble 8 and a valid
        # checksum, but a window nibble of 8, which zlib does not allow.
        bytes([0x88, 28, 0, 0xE3, 0xFF]) + bytes(range(28)) + bytes([0x01, 0, 0, 0xFF, 0xFF]),
    ],
)
def test_raw_deflate_that_nearly_looks_wrapped_is_read_as_raw(encoded: bytes) -> None:
    expected = zlib.decompress(encoded, -zlib.MAX_WBITS)
    assert (encoded[0] << 8 | encoded[1]) % 31 == 0
    assert decode_all("deflate", [encoded]) == expected
    assert decode_all("deflate", [encoded[:1], encoded[1:]]) == expected


def test_gzip_member_ending_exactly_on_an_input_slice() -> None:
    # zlib is handed input in 16 KiB slices; a member that ends exactly at the
    # end of one, with the next member in the same piece, must go on from there.
    first = random.Random(5).randbytes(16384 - 23)
    member = gzip.compress(first, compresslevel=0)  # stored: 23 bytes of framing
    assert len(member) == 16384
    second = b"second member " * 100
    encoded = member + gzip.compress(second) + b"\x00junk"
    assert decode_all("gzip", [encoded]) == first + second
    assert decode_all("gzip", [encoded], step=1000) == first + second


def test_every_gzip_member_gets_the_full_32_kib_window() -> None:
    # Matches reaching back 30 KB need deflate's whole 32 KiB window, in the
    # first member and in every member after it.
    block = random.Random(7).randbytes(30_000)
    data = block + block
    member = gzip.compress(data)
    assert len(member) < len(data) * 3 // 4  # the long-distance matches were used
    encoded = member + member
    assert decode_all("gzip", [encoded]) == data + data
    assert decode_all("deflate", [deflate_zlib(data)]) == data
    assert decode_all("deflate", [deflate_raw(data)]) == data


@optional_codings
def test_optional_ratio_counts_every_byte_received(coding: str) -> None:
    # Handed over in one piece, the whole body counts as received.
    encoded = OPTIONAL[coding](bytes(100_000))
    d = decoder(coding, max_ratio=1, ratio_floor=0)
    with pytest.raises(DecodeError, match=r"^decompression bomb: (\d+) bytes") as info:
        d.decode(encoded)
    consumed = int(str(info.value).split()[2])
    if coding == "br":  # brotli takes all input at once
        assert consumed == len(encoded)
    else:  # zstandard is fed in slices: what it was given so far
        assert 0 < consumed <= len(encoded)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_ratio_is_checked_against_exactly_the_bytes_fed_so_far(coding: str) -> None:
    if coding not in SUPPORTED_ENCODINGS:
        pytest.skip(f"no module for {coding}")
    encoders = {"gzip": gzip.compress, "deflate": deflate_zlib, **OPTIONAL}
    encoded = encoders[coding](bytes(100_000))
    d = decoder(coding, max_ratio=2, ratio_floor=0)
    fed = 0
    with pytest.raises(DecodeError, match=r"^decompression bomb: \d+ bytes") as info:
        for byte in encoded:
            fed += 1
            d.decode(bytes([byte]))
    assert fed <= len(encoded)
    assert str(info.value).split()[2] == str(fed)


def test_zstd_bytes_of_the_next_frame_are_counted_once() -> None:
    if "zstd" not in OPTIONAL:
        pytest.skip("no zstd module")
    # A first frame of incompressible bytes, then a second of zeros: what the
    # ratio is measured against is the body's length, never more.
    body = OPTIONAL["zstd"](random.Random(3).randbytes(40)) + OPTIONAL["zstd"](bytes(5000))
    d = decoder("zstd", max_ratio=2, ratio_floor=0)
    with pytest.raises(DecodeError, match=rf"^decompression bomb: {len(body)} bytes decoded"):
        d.decode(body)
