"""Interop: the client's ordinary behaviours against real servers, not only our scripted ones.

nginx, Apache httpd, lighttpd, Caddy and Node's ``http`` module serve the
same site (tests/support/interop.py); each behaviour runs against each
server that is installed (the others skip). Strictness is proven on what
real servers send: every response goes through the same strict parser.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator, Iterator

import pytest

from asyncnet import HTTPClient
from tests.support.interop import FILE, SITES, TEXT, Site
from tests.support.peers import Peer


@pytest.fixture(scope="module", params=SITES, ids=[site.name for site in SITES])
def site(request: pytest.FixtureRequest) -> Iterator[tuple[Site, Peer]]:
    chosen: Site = request.param
    if not chosen.available():
        pytest.skip(f"{chosen.binary} is not installed")
    with chosen.start() as peer:
        yield chosen, peer


def _url(peer: Peer, path: str) -> str:
    return f"http://127.0.0.1:{peer.port}{path}"


async def test_keep_alive(site: tuple[Site, Peer]) -> None:
    _, peer = site
    async with HTTPClient() as client:
        for _ in range(5):
            resp = await client.get(_url(peer, "/file.bin"))
            assert (resp.status, resp.content) == (200, FILE)
        stats = client.statistics()
        assert (stats.connections_opened, stats.requests_reused) == (1, 4)


async def test_head(site: tuple[Site, Peer]) -> None:
    _, peer = site
    async with HTTPClient() as client:
        head = await client.head(_url(peer, "/file.bin"))
        assert head.status == 200
        assert head.headers["Content-Length"] == str(len(FILE))
        assert head.content == b""
        # The body-less answer left the connection in step.
        assert (await client.get(_url(peer, "/file.bin"))).content == FILE
        assert client.statistics().connections_opened == 1


async def test_not_modified(site: tuple[Site, Peer]) -> None:
    _, peer = site
    async with HTTPClient() as client:
        first = await client.get(_url(peer, "/file.bin"))
        etag = first.headers["ETag"]
        again = await client.get(_url(peer, "/file.bin"), headers={"If-None-Match": etag})
        assert (again.status, again.content) == (304, b"")
        assert (await client.get(_url(peer, "/file.bin"))).content == FILE
        assert client.statistics().connections_opened == 1


async def test_range(site: tuple[Site, Peer]) -> None:
    _, peer = site
    async with HTTPClient() as client:
        part = await client.get(_url(peer, "/file.bin"), headers={"Range": "bytes=1000-1999"})
        assert part.status == 206
        assert part.content == FILE[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(FILE)}"


async def test_gzip_and_chunked(site: tuple[Site, Peer]) -> None:
    chosen, peer = site
    async with HTTPClient() as client:
        resp = await client.get(_url(peer, "/big.txt"))
        assert resp.status == 200 and resp.content == TEXT
        assert resp.headers["Content-Encoding"] == "gzip"
        if chosen.gzip_chunked:
            assert resp.headers["Transfer-Encoding"] == "chunked"
        async with client.stream("GET", _url(peer, "/big.txt")) as streamed:
            raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        assert gzip.decompress(raw) == TEXT
        assert client.statistics().connections_opened == 1


async def test_redirect(site: tuple[Site, Peer]) -> None:
    _, peer = site
    async with HTTPClient() as client:
        resp = await client.get(_url(peer, "/redirect"))
        assert resp.status == 200 and resp.content == FILE
        assert [r.status for r in resp.history] == [301]
        assert str(resp.url) == _url(peer, "/file.bin")


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_upload(site: tuple[Site, Peer], framing: str) -> None:
    chosen, peer = site
    data = FILE[:70_000]
    body = data if framing == "length" else _pieces(data, 8192)
    async with HTTPClient() as client:
        if chosen.upload == "store":
            name = f"/upload/{framing}.bin"
            put = await client.put(_url(peer, name), body=body)
            assert put.status in (200, 201, 204), put.status
            back = await client.get(_url(peer, name))
            assert back.content == data
        elif chosen.upload == "echo":
            resp = await client.post(_url(peer, "/echo.cgi"), body=body)
            assert resp.status == 200
            assert resp.content.strip() == hashlib.sha256(data).hexdigest().encode()
        else:
            resp = await client.post(_url(peer, "/upload/x"), body=body)
            assert (resp.status, resp.content) == (200, b"ok")
        # The connection (or its replacement) still works after the upload.
        assert (await client.get(_url(peer, "/file.bin"))).content == FILE
