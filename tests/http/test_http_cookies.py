"""The cookie store, sans-IO: stdlib rules through our URL type, and the memory limits."""

from __future__ import annotations

import http.cookiejar
import re

import pytest

from asyncnet import UsageError
from asyncnet._http._cookies import CookieStore, cookie_pairs, new_jar
from asyncnet._http._url import parse_url


def test_domain_path_secure_and_host_only_rules() -> None:
    store = CookieStore(new_jar())
    store.extract(parse_url("http://www.example.com/app/page"), [
        "host=1",  # host-only, default path /app
        "wide=2; Domain=example.com; Path=/",
        "sec=3; Secure; Path=/",
        "tld=4; Domain=com; Path=/",  # refused: a bare top-level domain
        "gone=5; Path=/; Max-Age=0",
    ])
    assert store.cookie_header(parse_url("http://www.example.com/app/x")) == "host=1; wide=2"
    assert store.cookie_header(parse_url("https://www.example.com/")) == "sec=3; wide=2"
    assert store.cookie_header(parse_url("http://other.example.com/app/")) == "wide=2"
    assert store.cookie_header(parse_url("http://example.org/")) is None


def test_expired_cookies_are_removed_by_a_later_set_cookie() -> None:
    store = CookieStore(new_jar())
    url = parse_url("http://h.test/")
    store.extract(url, ["a=1; Path=/"])
    assert store.cookie_header(url) == "a=1"
    store.extract(url, ["a=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"])
    assert store.cookie_header(url) is None


def test_a_hostile_server_cannot_grow_the_jar() -> None:
    store = CookieStore(new_jar(), max_per_domain=5, max_cookie_size=100, max_cookies=8)
    url = parse_url("http://h.test/")
    for batch in range(10):
        store.extract(url, [f"c{batch}_{i}=v; Path=/" for i in range(50)])
    assert len(store.jar) == 5
    store.extract(url, ["big=" + "x" * 200 + "; Path=/"])
    assert "big" not in {c.name for c in store.jar}
    # Replacing a kept cookie is always allowed.
    store.extract(url, ["c0_0=new; Path=/"])
    assert {c.name: c.value for c in store.jar}["c0_0"] == "new"
    # The total across domains is bounded too.
    for n in range(5):
        store.extract(parse_url(f"http://h{n}.test/"), [f"x{i}=1; Path=/" for i in range(5)])
    assert len(store.jar) == 8


def test_garbage_set_cookie_values_are_skipped_quietly() -> None:
    store = CookieStore(new_jar())
    url = parse_url("http://h.test/")
    store.extract(url, ["", ";;;", "=", "a=1; Expires=not a date; Max-Age=abc", "\x7f=\x01"])
    assert all(isinstance(c, http.cookiejar.Cookie) for c in store.jar)


def test_per_request_cookies_are_validated() -> None:
    assert cookie_pairs({"a": "1", "b": "x y"}) == "a=1; b=x y"
    for bad, rule in (
        ({"a b": "1"}, "invalid cookie name 'a b'"),
        ({"a": "1;2"}, "invalid value for cookie 'a'"),
        ({"a": "\r\n"}, "invalid value for cookie 'a'"),
        ({"a": 1}, "invalid value for cookie 'a'"),
    ):
        with pytest.raises(UsageError, match="^" + re.escape(rule)):
            cookie_pairs(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^cookies must be True, False or a CookieJar"):
        CookieStore("jar")  # type: ignore[arg-type]
