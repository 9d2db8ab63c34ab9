"""fetch_all(cookies=, auth=, body=) over loopback."""

from __future__ import annotations

import http.cookiejar
import json

import pytest

from asyncnet import BearerAuth, HTTPClient, UsageError, fetch_all
from tests.support.servers import HTTPServer, RawServer
from tests.support.sites import login_site


async def test_cookies_make_a_login_redirect_work_for_every_url() -> None:
    async with RawServer(login_site) as srv:
        jar = http.cookiejar.CookieJar()
        results = await fetch_all([srv.url("/login")] * 3, cookies=jar, max_body=100)
        assert [(r.status, r.body) for r in results] == [(200, b"welcome")] * 3
        assert [c.name for c in jar] == ["sid"]
        failed = await fetch_all([srv.url("/login")])
        assert type(failed[0].error).__name__ == "TooManyRedirects"


async def test_body_and_auth_go_with_every_request() -> None:
    with HTTPServer() as srv:
        results = await fetch_all(
            [srv.url("/echo"), srv.url("/echo?2")], method="PUT", body=b"payload",
            auth=BearerAuth("t"),
        )
    for result in results:
        assert result.ok, result.error
        doc = json.loads(result.body)
        headers = {k.lower(): v for k, v in doc["headers"]}
        assert doc["method"] == "PUT" and doc["body"] == "payload"
        assert headers["authorization"] == "Bearer t"


async def test_cookies_with_a_given_client_is_refused() -> None:
    async with HTTPClient() as client:
        with pytest.raises(UsageError, match="cookies"):
            await fetch_all(["http://127.0.0.1:9/"], client=client, cookies=True)
