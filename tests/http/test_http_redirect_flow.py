"""Redirects end to end through HTTPClient: every rule, against real loopback servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

import asyncnet
from asyncnet import HTTPClient, Timeout
from tests.support.servers import (
    HTTPServer,
    RawServer,
    client_ssl_context,
    response,
    server_ssl_context,
)

CREDENTIALS = {
    "Authorization": "Bearer secret",
    "Cookie": "session=1",
    "Proxy-Authorization": "Basic cHJveHk=",
    "X-Custom": "kept",
}


def _to(target: str, status: int = 302) -> str:
    return f"/redirect-to?url={quote(target, safe='')}&status={status}"


def _echo(resp: asyncnet.Response) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resp.content)
    doc["header_names"] = {name.lower() for name, _ in doc["headers"]}
    return doc


async def test_chain_followed_with_history() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/redirect/3"))
    assert (resp.status, resp.content) == (200, b"done")
    assert str(resp.url) == srv.url("/redirect/0")
    assert [r.status for r in resp.history] == [302, 302, 302]
    assert [str(r.url) for r in resp.history] == [
        srv.url("/redirect/3"), srv.url("/redirect/2"), srv.url("/redirect/1")
    ]
    assert all(r.history == [] for r in resp.history)
    # Redirect hops reused one keep-alive connection (their bodies were drained).
    assert srv.connections == 1


async def test_too_many_redirects() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(max_redirects=2) as client:
            with pytest.raises(asyncnet.TooManyRedirects) as info:
                await client.get(srv.url("/redirect/3"))
            assert len(info.value.history) == 3
            # Exactly max_redirects is fine.
            assert (await client.get(srv.url("/redirect/2"))).status == 200


async def test_max_redirects_zero_refuses_any_redirect() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(max_redirects=0) as client:
            with pytest.raises(asyncnet.TooManyRedirects):
                await client.get(srv.url("/redirect/1"))


async def test_max_redirects_per_request_overrides_the_client() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(max_redirects=10) as client:
            with pytest.raises(asyncnet.TooManyRedirects) as info:
                await client.get(srv.url("/redirect/2"), max_redirects=1)
            assert len(info.value.history) == 2
            async with client.stream("GET", srv.url("/redirect/2"), max_redirects=2) as resp:
                assert resp.status == 200 and len(resp.history) == 2
            with pytest.raises(ValueError, match=r"^max_redirects must be an int >= 0"):
                await client.get(srv.url("/redirect/1"), max_redirects=-1)
        async with HTTPClient(max_redirects=0) as client:
            resp = await client.get(srv.url("/redirect/1"), max_redirects=1)
            assert resp.status == 200


async def test_follow_redirects_false_per_request_and_per_client() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/redirect/2"), follow_redirects=False)
            assert resp.status == 302 and resp.history == []
            assert resp.headers["Location"] == "/redirect/1"
            assert resp.content == b"redirecting"
        async with HTTPClient(follow_redirects=False) as client:
            assert (await client.get(srv.url("/redirect/1"))).status == 302
            resp = await client.get(srv.url("/redirect/1"), follow_redirects=True)
            assert resp.status == 200
        assert srv.requests == 4


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "body_kept"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
        (307, "PUT", "PUT", True),
        (302, "PUT", "PUT", True),
    ],
)
async def test_method_and_body_after_redirect(
    status: int, method: str, expected_method: str, body_kept: bool
) -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.request(
                method, srv.url(_to("/echo", status)), body=b"payload",
                headers={"Content-Type": "text/plain", "X-Custom": "kept"},
            )
    doc = _echo(resp)
    assert doc["method"] == expected_method
    assert resp.history[0].status == status
    assert "x-custom" in doc["header_names"]
    if body_kept:
        assert doc["body"] == "payload"
        assert {"content-type", "content-length"} <= doc["header_names"]
    else:
        assert doc["body"] == ""
        assert not doc["header_names"] & {"content-type", "transfer-encoding"}
        assert dict((k.lower(), v) for k, v in doc["headers"]).get("content-length", "0") == "0"


async def test_303_keeps_head_as_head() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.head(srv.url(_to("/bytes/5", 303)))
    assert resp.status == 200 and resp.headers["Content-Length"] == "5"
    assert resp.content == b""


async def test_json_body_replayed_on_307() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.post(srv.url(_to("/echo", 307)), json={"a": 1})
    doc = _echo(resp)
    assert json.loads(doc["body"]) == {"a": 1}


@pytest.mark.parametrize("status", [307, 308])
async def test_one_shot_body_cannot_follow_307_308(status: int) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"shot"

    with HTTPServer() as srv:
        async with HTTPClient() as client:
            with pytest.raises(
                asyncnet.BodyNotReplayable,
                match=rf"^{status} redirect to \S+ needs the POST body again",
            ):
                await client.post(srv.url(_to("/echo", status)), body=once())
            # 303 drops the body, so a one-shot stream is fine there.
            resp = await client.post(srv.url(_to("/echo", 303)), body=once())
            assert _echo(resp)["method"] == "GET"


@pytest.mark.parametrize(
    ("location", "final_path"),
    [
        ("/echo?abs=1", "/echo?abs=1"),
        ("echo?rel=1", "/echo?rel=1"),
        ("./echo", "/echo"),
        ("../echo", "/echo"),
    ],
)
async def test_relative_location_resolved(location: str, final_path: str) -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url(_to(location)))
    assert _echo(resp)["path"] == final_path
    assert str(resp.url) == srv.url(final_path)


@pytest.mark.parametrize(
    "location", ["ftp://127.0.0.1/file", "file:///etc/passwd", "javascript:alert(1)"]
)
async def test_non_http_location_is_an_error(location: str) -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            with pytest.raises(
                asyncnet.RemoteProtocolError,
                match=rf"^redirect to a '{location.split(':')[0]}' URL is not followed",
            ):
                await client.get(srv.url(_to(location)))
            # The client still works (the redirect's connection was not left in use).
            assert (await client.get(srv.url("/bytes/1"))).status == 200
            assert client.statistics().connections_open <= 2


async def test_redirect_without_location_is_returned_as_is() -> None:
    async with RawServer(responses=[response(302, b"nowhere")]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url())
    assert (resp.status, resp.content, resp.history) == (302, b"nowhere", [])


async def test_credentials_kept_on_the_same_origin() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url(_to("/echo")), headers=CREDENTIALS)
    names = _echo(resp)["header_names"]
    assert {"authorization", "cookie", "proxy-authorization", "x-custom"} <= names


async def test_credentials_dropped_on_a_change_of_origin() -> None:
    with HTTPServer() as first, HTTPServer() as second:
        async with HTTPClient() as client:
            # Same host, other port: another origin.
            resp = await client.get(first.url(_to(second.url("/echo"))), headers=CREDENTIALS)
            names = _echo(resp)["header_names"]
            assert not names & {"authorization", "cookie", "proxy-authorization"}
            assert "x-custom" in names
            # And "localhost" is another origin than "127.0.0.1".
            other_host = second.url("/echo").replace("127.0.0.1", "localhost")
            resp = await client.get(first.url(_to(other_host)), headers=CREDENTIALS)
            assert not _echo(resp)["header_names"] & {"authorization", "cookie"}
            assert dict(_echo(resp)["headers"])["Host"] == f"localhost:{second.port}"


async def test_credentials_dropped_from_https_to_http() -> None:
    with HTTPServer(ssl=server_ssl_context()) as secure, HTTPServer() as plain:
        async with HTTPClient(ssl=client_ssl_context()) as client:
            start = secure.url(_to(plain.url("/echo"))).replace("127.0.0.1", "localhost")
            resp = await client.get(start, headers=CREDENTIALS)
    assert resp.history[0].url.scheme == "https" and resp.url.scheme == "http"
    names = _echo(resp)["header_names"]
    assert not names & {"authorization", "cookie", "proxy-authorization"}


async def test_userinfo_credentials_do_not_follow_to_another_origin() -> None:
    with HTTPServer() as first, HTTPServer() as second:
        async with HTTPClient() as client:
            url = first.url(_to(second.url("/echo"))).replace("http://", "http://user:pw@")
            resp = await client.get(url)
    assert "authorization" not in _echo(resp)["header_names"]


async def test_redirect_body_is_drained_without_decoding() -> None:
    # A redirect that claims gzip but carries garbage: following it must not decode it,
    # and the connection is reused for the next hop.
    bogus = response(
        302, b"this is not gzip", [("Location", "/final"), ("Content-Encoding", "gzip")]
    )
    async with RawServer(responses=[bogus, response(200, b"final")]) as srv, HTTPClient() as client:
        resp = await client.get(srv.url("/start"))
        assert (resp.status, resp.content) == (200, b"final")
        assert srv.connections == 1
        assert resp.history[0].status == 302


async def test_chunked_redirect_body_is_drained() -> None:
    chunked = (
        b"HTTP/1.1 301 Moved\r\nLocation: /final\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    async with RawServer(responses=[chunked, response(200, b"final")]) as srv:
        async with HTTPClient() as client:
            resp = await client.get(srv.url("/start"))
        assert resp.content == b"final" and srv.connections == 1


async def test_redirect_loop_is_stopped() -> None:
    loop_reply = response(302, b"", [("Location", "/loop")])
    async with RawServer(responses=[loop_reply], repeat=True) as srv, HTTPClient(
        max_redirects=5, timeout=Timeout(total=30)
    ) as client:
        with pytest.raises(asyncnet.TooManyRedirects):
            await client.get(srv.url("/loop"))
        assert srv.requests == 6


async def test_stream_follows_redirects_too() -> None:
    with HTTPServer() as srv:
        async with HTTPClient() as client, client.stream("GET", srv.url("/redirect/2")) as resp:
            assert resp.status == 200
            assert await resp.read() == b"done"
            assert len(resp.history) == 2


async def test_no_connection_is_left_checked_out_after_a_refused_redirect() -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"x"

    with HTTPServer() as srv:
        async with HTTPClient(max_redirects=1) as client:
            with pytest.raises(asyncnet.TooManyRedirects):
                await client.get(srv.url("/redirect/3"))
            with pytest.raises(
                asyncnet.RemoteProtocolError, match=r"^redirect to a 'ftp' URL is not followed"
            ):
                await client.get(srv.url(_to("ftp://127.0.0.1/")))
            with pytest.raises(
                asyncnet.BodyNotReplayable, match=r"^307 redirect to \S+ needs the POST body again"
            ):
                await client.post(srv.url(_to("/echo", 307)), body=once())
            for _ in range(100):  # a few loop turns for any closing transport
                stats = client.statistics()
                if stats.connections_open == stats.connections_idle:
                    break
                await asyncio.sleep(0)
            assert stats.connections_open == stats.connections_idle, stats
            assert stats.pool_waiters == 0
            # A refused redirect's connection is closed (its body unread), not kept.
            assert (await client.get(srv.url("/bytes/1"))).status == 200


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("a" * 64 + ".localhost", "label is longer than 63 octets"),
        (".".join(["b" * 60] * 5) + ".localhost", "host name is longer than 253 octets"),
    ],
)
async def test_a_location_host_dns_cannot_carry_is_a_remote_protocol_error(
    host: str, rule: str
) -> None:
    # The server chose the name, so it is the server's error; it used to reach
    # getaddrinfo and fail there with a bare UnicodeError.
    reply = response(302, b"", [("Location", f"http://{host}:1/")])
    async with RawServer(responses=[reply]) as srv, HTTPClient() as client:
        with pytest.raises(asyncnet.RemoteProtocolError, match=rule):
            await client.get(srv.url())
        assert client.statistics().connections_opened == 1
