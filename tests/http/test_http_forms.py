"""data= and files= over loopback: parsed back by http.server, the email parser and Node."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest

from asyncnet import HTTPClient, UsageError
from tests.support.forms import NODE, node_form_data, parse_form
from tests.support.servers import HTTPServer, RawServer, read_request, response

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


async def _post_and_capture(**options: Any) -> tuple[str, bytes, bytes]:
    """POST to a scripted server; return the Content-Type, the raw request and the body."""
    captured: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        captured.append(await read_request(reader))
        writer.write(response(200, b"ok"))
        await writer.drain()

    async with RawServer(handler) as srv, HTTPClient() as client:
        resp = await client.post(srv.url("/upload"), **options)
        assert resp.status == 200
    raw = captured[0]
    head, _, body = raw.partition(b"\r\n\r\n")
    fields = dict(
        line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:]
    )
    lower = {k.lower(): v for k, v in fields.items()}
    if lower.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    else:
        assert int(lower["content-length"]) == len(body)
    return lower["content-type"], raw, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


async def test_data_sends_an_urlencoded_form() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.post(srv.url("/echo"), data={"q": "a b&c", "n": [1, 2], "x": None})
            doc = await resp.json()
    headers = {k.lower(): v for k, v in doc["headers"]}
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(doc["body"]) == [("q", "a b&c"), ("n", "1"), ("n", "2")]


NAMES = ['plain', 'quo"te', "cr\rlf\nname", "back\\slash", "ünïcödé ✓"]


@needs_node
async def test_node_reads_back_fields_files_and_escaped_names() -> None:
    files = {
        name: (f"{name}.txt", io.BytesIO(f"content of {name}\r\n--not a boundary".encode()))
        for name in NAMES
    }
    files["raw"] = b"\x00\xff" * 1000  # type: ignore[assignment]
    ctype, _, body = await _post_and_capture(
        data=[(name, f"value {name}") for name in NAMES], files=files
    )
    assert ctype.startswith("multipart/form-data; boundary=")
    entries = await asyncio.to_thread(node_form_data, ctype, body)
    expected: list[list[Any]] = [[name, None, None, f"value {name}"] for name in NAMES]
    expected += [
        [name, f"{name}.txt", "text/plain",
         base64.b64encode(f"content of {name}\r\n--not a boundary".encode()).decode()]
        for name in NAMES
    ]
    expected.append(["raw", "raw", "application/octet-stream",
                     base64.b64encode(b"\x00\xff" * 1000).decode()])
    assert entries == expected


class _Pipe:
    """A non-seekable reader (size unknown): the form goes chunked."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


async def test_unknown_size_goes_chunked_and_parses_back() -> None:
    data = bytes(range(256)) * 2000
    ctype, raw, body = await _post_and_capture(
        data={"a": "1"}, files={"f": ("blob.bin", _Pipe(data), "application/x-blob")}
    )
    assert b"\r\ntransfer-encoding: chunked\r\n" in raw.lower()
    assert parse_form(ctype, body) == [
        ("a", None, None, b"1"), ("f", "blob.bin", "application/x-blob", data),
    ]
    if NODE is not None:
        entries = await asyncio.to_thread(node_form_data, ctype, body)
        assert entries[1][:3] == ["f", "blob.bin", "application/x-blob"]
        assert base64.b64decode(entries[1][3]) == data


async def test_stdlib_server_receives_the_whole_multipart_body() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.post(srv.url("/echo"), files={"f": ("a.json", b'{"x": 1}')})
            doc = await resp.json()
    ctype = dict((k.lower(), v) for k, v in doc["headers"])["content-type"]
    assert parse_form(ctype, doc["body"].encode("latin-1")) == [
        ("f", "a.json", "application/json", b'{"x": 1}')
    ]


async def test_bad_body_combinations_raise_before_connecting() -> None:
    async with RawServer(responses=[]) as srv, HTTPClient() as client:
        for options, rule in (
            ({"data": {"a": "1"}, "body": b"x"}, "pass only one of body=, json= and data="),
            ({"data": {"a": "1"}, "json": {}}, "pass only one of body=, json= and data="),
            ({"files": {"f": b"x"}, "json": {}}, "files= goes with data= only"),
            ({"data": "a=1"}, "data= takes a mapping or pairs for a form"),
            ({"files": {"f": 42}}, "files['f'] must be bytes, str or a binary file, not int"),
            ({"params": {"a": object()}}, "value of 'a' must be str, int, float, bool or None"),
        ):
            with pytest.raises(UsageError, match="^" + re.escape(rule)):
                await client.post(srv.url("/"), **options)  # type: ignore[arg-type]
        assert srv.connections == 0


class _CountingSource(io.RawIOBase):
    """A large seekable file that makes its bytes up on read and records each read's offset."""

    def __init__(self, size: int, server_received: list[int]) -> None:
        self._size = size
        self._pos = 0
        self._server_received = server_received
        #: Most bytes read from this file beyond what the server had received.
        self.max_ahead = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        return self._pos

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        size = self._size - self._pos if size < 0 else min(size, self._size - self._pos)
        self._pos += size
        self.max_ahead = max(self.max_ahead, self._pos - self._server_received[0])
        return b"x" * size


async def test_a_large_file_is_sent_with_backpressure() -> None:
    # The server counts bytes as its loop delivers them; without backpressure the
    # client would read the whole file in one go, long before the server ran.
    received = [0]
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    size = 64 * 1024 * 1024

    class Counter(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            received[0] += len(data)
            if received[0] >= size and not finished.done():
                finished.set_result(None)
                assert isinstance(self.transport, asyncio.Transport)
                self.transport.write(response(200, b"ok", [("Connection", "close")]))

    server = await loop.create_server(Counter, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = _CountingSource(size, received)
    try:
        async with HTTPClient() as client:
            resp = await client.post(f"http://127.0.0.1:{port}/", files={"f": source})
            assert resp.status == 200
    finally:
        server.close()
        await server.wait_closed()
    assert received[0] > size
    # What the client holds back is its write buffer plus the kernel's socket
    # buffers (a few MiB on loopback), never the file.
    assert source.max_ahead < 24 * 1024 * 1024
