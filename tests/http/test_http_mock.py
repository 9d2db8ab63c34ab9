"""asyncnet.testing.MockTransport: handlers answer through the client's real parser and pipeline."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import asyncnet
from asyncnet import HTTPClient, Request, Timeout
from asyncnet.testing import MockResponse, MockTransport


async def test_handler_sees_method_url_headers_and_full_body() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return MockResponse(201, {"X-Reply": "yes"}, b"created")

    async def upload() -> AsyncIterator[bytes]:
        for piece in (b"ab", b"", b"cd"):
            yield piece

    async with HTTPClient(transport=MockTransport(handler)) as client:
        resp = await client.post("https://api.test/items?x=1", body=b"payload",
                                 headers={"X-Token": "t"})
        assert (resp.status, resp.reason, resp.content) == (201, "Created", b"created")
        assert resp.headers["X-Reply"] == "yes"
        streamed = await client.put("https://api.test/stream", body=upload())
        assert streamed.status == 201
    first, second = seen
    assert (first.method, str(first.url), first.content) == (
        "POST", "https://api.test/items?x=1", b"payload"
    )
    assert first.headers["X-Token"] == "t" and first.headers["Host"] == "api.test"
    assert (second.method, second.content) == ("PUT", b"abcd")
    assert second.headers["Transfer-Encoding"] == "chunked"


async def test_async_handler_redirects_and_decoding_run_for_real() -> None:
    body = b"hello " * 1000

    async def handler(request: Request) -> MockResponse:
        await asyncio.sleep(0)
        if request.url.path == "/old":
            return MockResponse(301, {"Location": "/new"})
        return MockResponse(200, {"Content-Encoding": "gzip"}, gzip.compress(body))

    mock = MockTransport(handler)
    async with HTTPClient(transport=mock) as client:
        resp = await client.get("http://site.test/old")
        assert resp.status == 200 and resp.content == body
        assert [r.status for r in resp.history] == [301]
        assert str(resp.url) == "http://site.test/new"
        raw = await client.get("http://site.test/new")
        assert raw.headers["Content-Encoding"] == "gzip"
    assert mock.requests == 3 and mock.connections == 1  # keep-alive across the redirect


async def test_streamed_response_body_arrives_chunked_with_backpressure() -> None:
    produced = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(64):
            produced += 65536
            yield b"z" * 65536

    mock = MockTransport(lambda request: MockResponse(body=body()))
    async with (
        HTTPClient(transport=mock, body_buffer=128 * 1024) as client,
        client.stream("GET", "http://big.test/") as resp,
    ):
        assert resp.headers["Transfer-Encoding"] == "chunked"
        chunks = resp.aiter_bytes()
        total = len(await anext(chunks))
        # A consumer that stops reading: everything in memory runs in
        # loop callbacks, so a bounded number of loop turns lets the
        # producer go as far as the buffers allow, and no further.
        for _ in range(200):
            await asyncio.sleep(0)
        assert client.statistics().read_pauses == 1
        assert produced <= 16 * 65536
        async for chunk in chunks:
            total += len(chunk)
        assert total == produced == 64 * 65536


async def test_a_handler_that_never_answers_hits_the_read_timeout() -> None:
    never = asyncio.Event()

    async def handler(request: Request) -> MockResponse:
        await never.wait()
        raise AssertionError("unreachable")

    async with HTTPClient(transport=MockTransport(handler), timeout=Timeout(read=0.1)) as client:
        with pytest.raises(asyncnet.ReadTimeout):
            await client.get("http://slow.test/")


async def test_a_handler_error_is_the_cause_of_a_read_error() -> None:
    def handler(request: Request) -> MockResponse:
        raise LookupError("no route for " + request.url.path)

    async with HTTPClient(transport=MockTransport(handler)) as client:
        with pytest.raises(asyncnet.ReadError) as info:
            await client.get("http://x.test/missing")
        assert isinstance(info.value.__cause__, LookupError)


async def test_head_204_304_and_connection_close() -> None:
    def handler(request: Request) -> MockResponse:
        if request.url.path == "/close":
            return MockResponse(200, {"Connection": "close"}, b"bye")
        if request.url.path == "/empty":
            return MockResponse(204)
        if request.url.path == "/cached":
            return MockResponse(304, {"ETag": '"v1"'})
        return MockResponse(200, body="héllo")

    mock = MockTransport(handler)
    async with HTTPClient(transport=mock) as client:
        head = await client.head("http://m.test/")
        assert head.headers["Content-Length"] == "6" and head.content == b""
        assert (await client.get("http://m.test/")).text is not None
        assert (await client.get("http://m.test/empty")).status == 204
        assert (await client.get("http://m.test/cached")).status == 304
        assert (await client.get("http://m.test/close")).content == b"bye"
        assert (await client.get("http://m.test/")).content == "héllo".encode()
    assert mock.connections == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "rule"),
    [
        ((99,), {}, "status must be an int from 100 to 999"),
        ((200, {"X": "a\r\nb"}), {}, "header 'X' has a control or non-latin-1 character"),
        ((200, None, 5), {}, "body must be bytes, str or an async iterable"),
        ((), {"reason": "a\nb"}, "reason must not contain CR or LF"),
    ],
)
def test_bad_mock_responses_are_usage_errors(
    args: tuple[object, ...], kwargs: dict[str, object], rule: str
) -> None:
    with pytest.raises(asyncnet.UsageError, match="^" + re.escape(rule)):
        MockResponse(*args, **kwargs)  # type: ignore[arg-type]


def test_the_pytest_recipe_in_the_docs_passes() -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(root / "docs" / "examples" / "test_mock_recipe.py")],
        capture_output=True, text=True, timeout=120, cwd=root, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
