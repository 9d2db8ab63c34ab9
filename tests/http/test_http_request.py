"""Request building: method and header validation, the head's bytes, body framing."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncnet import (
    BodyNotReplayable,
    Headers,
    InvalidHeader,
    InvalidMethod,
    LocalProtocolError,
    UsageError,
)
from asyncnet._http._request import (
    FILE_READ_SIZE,
    LAST_CHUNK,
    RequestBody,
    basic_auth,
    encode_chunk,
    serialize_head,
    validate_header_items,
    validate_method,
)
from asyncnet._http._url import parse_url

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# -- method --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "expected"), [("GET", "GET"), ("get", "GET"), ("M-SEARCH", "M-SEARCH")]
)
def test_method_accepted(given_: str, expected: str) -> None:
    assert validate_method(given_) == expected


@pytest.mark.parametrize(
    "method", ["", "GET ", " GET", "G ET", "GET\r\n", "GET\x00", "GE\tT", "GET/", "GÉT", "(GET)"]
)
def test_method_rejected(method: str) -> None:
    with pytest.raises(InvalidMethod, match="method must be a token"):
        validate_method(method)


@pytest.mark.parametrize("method", [None, b"GET", ["GET"], 1])
def test_method_of_wrong_type_rejected(method: object) -> None:
    with pytest.raises(InvalidMethod, match="method must be a token"):
        validate_method(method)  # type: ignore[arg-type]


def test_method_rejected_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^method must be a token"):
        validate_method("GET /evil HTTP/1.1\r\n")


# -- headers -------------------------------------------------------------------


def test_header_items_from_every_shape() -> None:
    expected = [("Accept", "*/*"), ("X-A", "1")]
    assert validate_header_items({"Accept": "*/*", "X-A": "1"}) == expected
    assert validate_header_items([("Accept", "*/*"), ("X-A", "1")]) == expected
    assert validate_header_items(Headers(expected)) == expected
    assert validate_header_items([(b"Accept", b"*/*"), ("X-A", "1")]) == expected
    assert validate_header_items(None) == []


def test_credentials_are_not_kept_in_the_field_cache() -> None:
    from asyncnet._http._request import _FIELD_CACHE

    secret = "Bearer s3cret-token-for-cache-test"
    validate_header_items([("Authorization", secret), ("Cookie", secret), ("X-Plain", secret)])
    serialize_head("GET", parse_url("http://h/"), [("authorization", secret)], None, chunked=False)
    cached_values = [key[1] for key in _FIELD_CACHE]
    assert cached_values.count(secret) == 1  # only X-Plain's


def test_header_value_whitespace() -> None:
    assert validate_header_items([("A", "  x y\t")]) == [("A", "x y")]
    assert validate_header_items([("A", "")]) == [("A", "")]
    assert validate_header_items([("A", "caf\xe9")]) == [("A", "caf\xe9")]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X", "a\r\nInjected: 1"),
        ("X", "a\nb"),
        ("X", "a\rb"),
        ("X", "a\x00b"),
        ("X", "a\x7fb"),
        ("X", "a\x1bb"),
        ("X", "\u20ac"),  # no latin-1 byte for it
        ("", "x"),
        ("X Y", "x"),
        ("X:", "x"),
        ("X\r\n", "x"),
        (":authority", "x"),
        ("Ünicode", "x"),
        ("X\t", "x"),
    ],
)
def test_header_rejected(name: str, value: str) -> None:
    # The cases named "X" have a bad value; the others a bad name.
    rule = "character in its value" if name == "X" else "name must be a token"
    with pytest.raises(InvalidHeader, match=rule):
        validate_header_items([(name, value)])
    with pytest.raises(InvalidHeader, match=rule):
        serialize_head("GET", parse_url("http://h/"), [(name, value)], None, chunked=False)


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("x", "not a string"),
        ([("only-one",)], "must be a \\(name, value\\) pair"),
        ([("A", 1)], "header value must be str or bytes, not int"),
        ([(1, "a")], "header name must be str or bytes, not int"),
    ],
)
def test_header_shapes_rejected(bad: object, rule: str) -> None:
    with pytest.raises(InvalidHeader, match=rule):
        validate_header_items(bad)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet=TCHARS, min_size=1, max_size=20),
    before=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=10),
    control=st.sampled_from([chr(c) for c in range(0x20) if c != 0x09] + ["\x7f"]),
    after=st.text(max_size=10),
)
def test_any_control_char_in_value_rejected(
    name: str, before: str, control: str, after: str
) -> None:
    with pytest.raises(InvalidHeader, match="character in its value"):
        validate_header_items([(name, before + control + after)])


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet=TCHARS, min_size=1, max_size=30),
    value=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, blacklist_characters="\x7f"),
        max_size=30,
    ),
)
def test_any_token_name_accepted(name: str, value: str) -> None:
    assert validate_header_items([(name, value)]) == [(name, value)]
    if name.lower() in ("content-length", "transfer-encoding"):
        return  # framing fields must agree with the body: see the framing tests
    head = serialize_head("GET", parse_url("http://h/"), [(name, value)], None, chunked=False)
    if name.lower() != "host":
        assert f"\r\n{name}: {value}\r\n".encode("latin-1") in head


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=10).filter(lambda n: any(c not in TCHARS for c in n)))
def test_any_non_token_name_rejected(name: str) -> None:
    with pytest.raises(InvalidHeader, match="name must be a token"):
        validate_header_items([(name, "v")])


# -- head ----------------------------------------------------------------------


def test_head_bytes_exact() -> None:
    url = parse_url("http://example.com:8080/p?q=1")
    head = serialize_head(
        "GET", url, [("Accept", "*/*"), ("X-Two", "a"), ("x-two", "b")], 0, chunked=False
    )
    assert head == (
        b"GET /p?q=1 HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"Accept: */*\r\n"
        b"X-Two: a\r\n"
        b"x-two: b\r\n"
        b"\r\n"
    )


def test_head_with_body_length() -> None:
    head = serialize_head("post", parse_url("https://h/x"), [("A", "1")], 5, chunked=False)
    assert head == b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nA: 1\r\n\r\n"


def test_head_post_without_body_says_zero() -> None:
    head = serialize_head("POST", parse_url("http://h/"), [], 0, chunked=False)
    assert b"\r\nContent-Length: 0\r\n" in head
    head = serialize_head("PUT", parse_url("http://h/"), [], None, chunked=False)
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head


def test_head_chunked() -> None:
    head = serialize_head("POST", parse_url("http://h/"), [], None, chunked=True)
    assert head == b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_head_ipv6_host() -> None:
    head = serialize_head("GET", parse_url("http://[::1]:81/"), [], None, chunked=False)
    assert head.startswith(b"GET / HTTP/1.1\r\nHost: [::1]:81\r\n")


def test_callers_host_goes_first_and_replaces_ours() -> None:
    head = serialize_head(
        "GET", parse_url("http://h/"), [("A", "1"), ("host", " other ")], None, chunked=False
    )
    assert head == b"GET / HTTP/1.1\r\nhost: other\r\nA: 1\r\n\r\n"


@pytest.mark.parametrize(
    ("headers", "length", "chunked", "rule"),
    [
        ([("Host", "a"), ("Host", "b")], None, False, "more than one Host"),
        ([("Host", "")], None, False, "empty Host"),
        ([("Content-Length", "4")], 5, False, "does not match"),
        ([("Content-Length", "+5")], 5, False, "does not match"),
        ([("Content-Length", "0x5")], 5, False, "does not match"),
        # superscript one: isdigit() is True
        ([("Content-Length", "\u00b9")], 1, False, "does not match"),
        # past int()'s digit limit
        ([("Content-Length", "5" * 5000)], 5, False, "does not match"),
        ([("Content-Length", "5")], None, True, "unknown length sent chunked"),
        ([("Content-Length", "5")], None, False, "without a body"),
        ([("Transfer-Encoding", "chunked")], 5, False, "chunked given for a body of known length"),
        ([("Transfer-Encoding", "gzip, chunked")], None, True, "unsupported request Transfer-Enc"),
        ([("Transfer-Encoding", "identity")], None, True, "unsupported request Transfer-Enc"),
    ],
)
def test_callers_framing_headers_checked(
    headers: list[tuple[str, str]], length: int | None, chunked: bool, rule: str
) -> None:
    with pytest.raises(InvalidHeader, match=rule):
        serialize_head("POST", parse_url("http://h/"), headers, length, chunked=chunked)


def test_callers_framing_headers_that_agree_are_sent_once() -> None:
    url = parse_url("http://h/")
    head = serialize_head("POST", url, [("content-length", "5")], 5, chunked=False)
    assert head.count(b"ontent-") == 1 and b"Content-Length: 5\r\n" in head
    head = serialize_head("POST", url, [("Transfer-Encoding", "Chunked")], None, chunked=True)
    assert head.count(b"ransfer-") == 1 and b"Content-Length" not in head


def test_head_never_has_both_framing_headers() -> None:
    with pytest.raises(LocalProtocolError, match="a chunked body has no length"):
        serialize_head("POST", parse_url("http://h/"), [], 5, chunked=True)
    with pytest.raises(LocalProtocolError, match="negative body length -1"):
        serialize_head("POST", parse_url("http://h/"), [], -1, chunked=False)


def test_head_validates_method() -> None:
    with pytest.raises(InvalidMethod, match="method must be a token"):
        serialize_head("GET / HTTP/1.1\r\nX:", parse_url("http://h/"), [], None, chunked=False)


# -- chunks and auth -------------------------------------------------------------


def test_encode_chunk() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert encode_chunk(b"") == b""
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_basic_auth() -> None:
    assert basic_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert base64.b64decode(basic_auth("ü", None)[6:]) == "ü:".encode()
    with pytest.raises(InvalidHeader, match="cannot contain ':'"):
        basic_auth("a:b", "c")


# -- bodies --------------------------------------------------------------------


async def collect(body: RequestBody) -> list[bytes]:
    return [piece async for piece in body.chunks()]


async def test_body_bytes_like() -> None:
    for value, data in [
        (b"abc", b"abc"),
        ("é", "é".encode()),
        (bytearray(b"xy"), b"xy"),
        (memoryview(b"xyz"), b"xyz"),
        ([b"a", b"", bytearray(b"b")], b"ab"),
        ((b"a", b"b"), b"ab"),
    ]:
        body = RequestBody.from_value(value)  # type: ignore[arg-type]
        assert body.length == len(data) and body.replayable
        assert b"".join(await collect(body)) == data
        assert b"".join(await collect(body)) == data  # replayable
        assert b"" not in await collect(body)


async def test_body_none_and_empty() -> None:
    for value in (None, b"", ""):
        body = RequestBody.from_value(value)
        assert body.length == 0 and body.replayable
        assert await collect(body) == []


async def test_bytearray_is_copied() -> None:
    data = bytearray(b"abc")
    body = RequestBody.from_value(data)
    data[0] = ord("z")
    assert await collect(body) == [b"abc"]


async def test_body_sync_iterator_one_shot() -> None:
    def gen() -> Iterator[bytes]:
        yield b"a"
        yield b""
        yield b"b"

    body = RequestBody.from_value(gen())
    assert body.length is None and not body.replayable
    assert await collect(body) == [b"a", b"b"]
    with pytest.raises(BodyNotReplayable, match="one-shot stream, already sent"):
        await collect(body)


async def test_body_async_iterator() -> None:
    async def agen() -> AsyncIterator[bytes]:
        for piece in (b"x", b"", b"yz"):
            await asyncio.sleep(0)
            yield piece

    body = RequestBody.from_value(agen())
    assert body.length is None and not body.replayable
    assert await collect(body) == [b"x", b"yz"]


async def test_body_bad_pieces() -> None:
    with pytest.raises(UsageError, match="body pieces must be bytes, not str"):
        await collect(RequestBody.from_value(iter(["text"])))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="body pieces must be bytes, not int"):
        RequestBody.from_value([1, 2])  # type: ignore[list-item]
    with pytest.raises(UsageError, match="a mapping is not a body"):
        RequestBody.from_value({"a": "b"})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unsupported body type int"):
        RequestBody.from_value(42)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="binary mode"):
        RequestBody.from_value(io.StringIO("x"))  # type: ignore[arg-type]


async def test_body_real_file_in_bounded_reads() -> None:
    data = os.urandom(FILE_READ_SIZE * 2 + 123)
    with tempfile.TemporaryFile() as f:
        f.write(b"skip" + data)
        f.seek(4)
        body = RequestBody.from_value(f)
        assert body.length == len(data) and body.replayable
        pieces = await collect(body)
        assert b"".join(pieces) == data
        assert max(map(len, pieces)) <= FILE_READ_SIZE
        # Replay starts again from where the body began.
        assert b"".join(await collect(body)) == data


async def test_body_bytesio_is_sized_and_replayable() -> None:
    buf = io.BytesIO(b"0123456789")
    buf.seek(2)
    body = RequestBody.from_value(buf)
    assert body.length == 8 and body.replayable
    assert b"".join(await collect(body)) == b"23456789"


async def test_body_file_that_shrinks_is_an_error() -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 100)
        f.seek(0)
        body = RequestBody.from_value(f)
        f.truncate(10)
        with pytest.raises(LocalProtocolError, match="bytes short of its length"):
            await collect(body)


async def test_body_file_that_grows_sends_declared_length() -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 10)
        f.seek(0)
        body = RequestBody.from_value(f)
        f.seek(0, os.SEEK_END)
        f.write(b"y" * 10)
        assert b"".join(await collect(body)) == b"x" * 10


class Unseekable:
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)
        self.sizes: list[int] = []

    def read(self, n: int = -1) -> bytes:
        self.sizes.append(n)
        return self._buf.read(n)


class AsyncReader:
    """Shaped like aiofiles: every method is a coroutine function."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        return self._buf.read(n)

    async def seekable(self) -> bool:
        return True

    async def seek(self, pos: int, whence: int = 0) -> int:
        return self._buf.seek(pos, whence)

    async def tell(self) -> int:
        return self._buf.tell()


async def test_body_unseekable_file_is_streamed() -> None:
    data = b"z" * (FILE_READ_SIZE + 1)
    reader = Unseekable(data)
    body = RequestBody.from_value(reader)  # type: ignore[arg-type]
    assert body.length is None and not body.replayable
    assert b"".join(await collect(body)) == data
    assert all(0 < n <= FILE_READ_SIZE for n in reader.sizes)
    with pytest.raises(BodyNotReplayable, match="one-shot stream, already sent"):
        await collect(body)


async def test_body_async_read_file() -> None:
    body = RequestBody.from_value(AsyncReader(b"abc" * 50_000))  # type: ignore[arg-type]
    assert body.length is None
    assert b"".join(await collect(body)) == b"abc" * 50_000


async def test_body_pipe_is_not_sized() -> None:
    r, w = os.pipe()
    with open(r, "rb") as reader, open(w, "wb") as writer:
        writer.write(b"piped")
        writer.close()
        body = RequestBody.from_value(reader)
        assert body.length is None and not body.replayable
        assert b"".join(await collect(body)) == b"piped"


_framing_names = st.sampled_from(
    ["Content-Length", "content-length", "Transfer-Encoding", "HOST", "X-A", "Connection"]
)
_framing_values = st.sampled_from(["0", "5", "chunked", "gzip", "h", "", " 5 ", "a\r\nb"])


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.tuples(_framing_names, _framing_values), max_size=4),
    body_length=st.one_of(st.none(), st.sampled_from([0, 5])),
    chunked=st.booleans(),
    method=st.sampled_from(["GET", "POST", "HEAD"]),
)
def test_head_is_well_formed_or_refused(
    headers: list[tuple[str, str]], body_length: int | None, chunked: bool, method: str
) -> None:
    url = parse_url("http://h:8080/p")
    try:
        head = serialize_head(method, url, headers, body_length, chunked=chunked)
    except (InvalidHeader, LocalProtocolError):
        return
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    assert lines[0] == f"{method} /p HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in lines[1:]]
    assert names[0] == "host" and names.count("host") == 1
    assert names.count("content-length") + names.count("transfer-encoding") <= 1
    if chunked:
        assert "transfer-encoding: chunked" in head.decode("latin-1").lower()
    elif body_length:
        assert f"content-length: {body_length}\r\n" in head.decode("latin-1").lower()
    else:
        assert "transfer-encoding" not in names
    for line in lines[1:]:
        name, sep, value = line.partition(": ")
        assert sep and name and "\r" not in value and "\n" not in value
