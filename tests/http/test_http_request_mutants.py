"""The request writer at the boundaries mutation testing found unpinned (docs/development.rst).

Sans-IO: each test turns headers and bodies into what would go on the wire,
through the functions the client calls, and checks the bytes or the refusal.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from asyncnet import InvalidHeader, UsageError
from asyncnet._http._request import (
    RequestBody,
    asks_to_close,
    serialize_head,
    validate_header_items,
)
from asyncnet._http._url import parse_url


async def collect(body: RequestBody) -> list[bytes]:
    return [piece async for piece in body.chunks()]


# -- headers ------------------------------------------------------------------------


def test_header_pairs_given_as_lists_are_checked_the_same_every_time() -> None:
    # Lists cannot be looked up as they are; the second call takes the path
    # that finds the already-checked field by name and value.
    pairs = [["X-Mutant-List", " one "], ["X-Mutant-List-2", "two"]]
    first = validate_header_items(pairs)  # type: ignore[arg-type]
    again = validate_header_items(pairs)  # type: ignore[arg-type]
    assert first == again == [("X-Mutant-List", "one"), ("X-Mutant-List-2", "two")]


@pytest.mark.parametrize(
    ("headers", "closes"),
    [
        ([("Connection", "close")], True),
        ([("connection", "Keep-Alive, CLOSE ")], True),
        ([("Accept", "*/*"), ("Connection", "upgrade,\tclose")], True),
        ([("Connection", "keep-alive")], False),
        ([("Connection", "closed")], False),
        ([("X-Connection", "close")], False),
        ([("Via", "close")], False),
        ([], False),
    ],
)
def test_a_request_asks_to_close_only_with_a_close_token_in_connection(
    headers: list[tuple[str, str]], closes: bool
) -> None:
    assert asks_to_close(headers) is closes


def test_content_length_of_twenty_digits_matching_the_body_is_accepted() -> None:
    url = parse_url("http://example.test/")
    length = 10**19  # twenty digits: the most the writer reads as a number
    head = serialize_head("PUT", url, [("Content-Length", str(length))], length, chunked=False)
    assert b"\r\nContent-Length: 10000000000000000000\r\n" in head
    with pytest.raises(InvalidHeader, match="does not match"):
        serialize_head("PUT", url, [("Content-Length", "0" + str(length))], length,
                       chunked=False)


# -- bodies -------------------------------------------------------------------------


async def test_a_file_body_is_read_64_kib_at_a_time() -> None:
    data = bytes(range(256)) * 1024  # 256 KiB
    sizes = [len(p) for p in await collect(RequestBody.from_value(io.BytesIO(data + b"x")))]
    assert sizes == [65536, 65536, 65536, 65536, 1]


class _ShortReads(io.RawIOBase):
    """A seekable binary file whose reads return at most one byte."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(min(size, 1) if size >= 0 else 1)


async def test_a_file_with_short_reads_is_sent_to_its_last_byte() -> None:
    body = RequestBody.from_value(_ShortReads(b"abc"))
    assert body.length == 3
    assert await collect(body) == [b"a", b"b", b"c"]


class _TextReads:
    """A file-like object that is not an io.TextIOBase but reads str."""

    def read(self, size: int = -1) -> str:
        return "text"


async def test_a_file_body_that_reads_text_is_refused_as_not_binary() -> None:
    body = RequestBody.from_value(_TextReads())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="a file body must be opened in binary mode"):
        await collect(body)


async def test_a_generated_body_is_produced_afresh_by_its_source_each_time() -> None:
    calls = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal calls
        calls += 1
        yield b"ab"
        yield b""
        yield b"c"

    body = RequestBody.from_source(source, 3, True)
    assert (body.length, body.replayable) == (3, True)
    assert await collect(body) == [b"ab", b"c"]
    assert await collect(body) == [b"ab", b"c"]
    assert calls == 2
