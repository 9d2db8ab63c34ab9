"""cookies= over loopback: a jar used on every redirect hop, per-request cookies, limits."""

from __future__ import annotations

import asyncio
import http.cookiejar

import pytest

from asyncnet import HTTPClient, TooManyRedirects
from tests.support.servers import RawServer, read_request, response
from tests.support.sites import cookie_of as _cookie
from tests.support.sites import login_site


async def test_a_site_that_sets_a_cookie_and_redirects_to_itself_works() -> None:
    async with RawServer(login_site) as srv:
        async with HTTPClient(cookies=True) as client:
            resp = await client.get(srv.url("/login"))
            assert resp.status == 200 and resp.content == b"welcome"
            assert [r.status for r in resp.history] == [302]
            assert [c.name for c in client.cookies or []] == ["sid"]
            # Later requests carry it too.
            assert (await client.get(srv.url("/home"))).content == b"welcome"
        # Cookies are off by default: the same site loops.
        async with HTTPClient(max_redirects=5) as client:
            assert client.cookies is None
            with pytest.raises(TooManyRedirects):
                await client.get(srv.url("/login"))


async def test_a_jar_of_the_callers_choice_and_per_request_cookies() -> None:
    seen: list[str | None] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            seen.append(_cookie(request))
            writer.write(response(200, b"ok", [("Set-Cookie", "jar=1; Path=/")]))
            await writer.drain()

    jar = http.cookiejar.CookieJar()
    async with RawServer(handler) as srv, HTTPClient(cookies=jar) as client:
        await client.get(srv.url("/"), headers={"Cookie": "own=0"})
        await client.get(srv.url("/"), cookies={"extra": "2"}, headers={"Cookie": "own=0"})
        await client.get(srv.url("/"))
    assert [c.name for c in jar] == ["jar"]
    assert seen == ["own=0", "own=0; extra=2; jar=1", "jar=1"]


async def test_the_jar_follows_host_path_and_secure_rules_across_hops() -> None:
    seen: dict[bytes, str | None] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            target = request.split(b" ", 2)[1]
            seen[target] = _cookie(request)
            if target == b"/start":
                reply = response(302, b"", [
                    ("Location", f"http://localhost:{srv.port}/other"),
                    ("Set-Cookie", "host=1; Path=/"),
                    ("Set-Cookie", "sec=1; Path=/; Secure"),
                    ("Set-Cookie", "narrow=1; Path=/start"),
                ])
            elif target == b"/other":
                reply = response(302, b"", [("Location", f"http://127.0.0.1:{srv.port}/back")])
            else:
                reply = response(200, b"done")
            writer.write(reply)
            await writer.drain()

    async with RawServer(handler) as srv, HTTPClient(cookies=True) as client:
        resp = await client.get(srv.url("/start"))
        assert resp.status == 200
    # Another host gets nothing; back on the first host only what matches the path;
    # the Secure cookie never goes over http.
    assert seen == {b"/start": None, b"/other": None, b"/back": "host=1"}


async def test_a_hostile_server_cannot_grow_the_jar() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while await read_request(reader):
            fields = [("Set-Cookie", f"c{n}_{i}={'v' * 100}; Path=/") for i in range(90)]
            fields.append(("Set-Cookie", "huge=" + "x" * 5000 + "; Path=/"))
            n += 1
            writer.write(response(200, b"ok", fields))
            await writer.drain()

    async with RawServer(handler) as srv, HTTPClient(cookies=True) as client:
        for _ in range(20):
            assert (await client.get(srv.url("/"))).status == 200
        jar = client.cookies
        assert jar is not None
        assert len(jar) == 50
        assert "huge" not in {c.name for c in jar}
