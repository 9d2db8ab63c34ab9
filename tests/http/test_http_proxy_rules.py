"""Proxy rules without sockets: proxy URLs, NO_PROXY, the environment, CONNECT and SOCKS5 bytes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncnet
from asyncnet._http._proxy import (
    NoProxy,
    ProxySelector,
    Socks5Handshake,
    TunnelReply,
    connect_request,
    parse_proxy_url,
    proxies_from_env,
)
from asyncnet._http._url import parse_url

# -- proxy URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "user", "password"),
    [
        ("http://proxy.example:3128", "http", "proxy.example", 3128, None, None),
        ("http://proxy.example", "http", "proxy.example", 80, None, None),
        ("https://proxy.example/", "https", "proxy.example", 443, None, None),
        ("socks5://127.0.0.1", "socks5", "127.0.0.1", 1080, None, None),
        ("SOCKS5H://[::1]:9050", "socks5h", "::1", 9050, None, None),
        ("proxy.example:8080", "http", "proxy.example", 8080, None, None),
        ("http://al%40ice:p%3Ass@proxy:1", "http", "proxy", 1, "al@ice", "p:ss"),
        ("http://bob@proxy:1", "http", "proxy", 1, "bob", ""),
    ],
)
def test_proxy_urls_parse(
    text: str, scheme: str, host: str, port: int, user: str | None, password: str | None
) -> None:
    proxy = parse_proxy_url(text)
    assert (proxy.scheme, proxy.host, proxy.port) == (scheme, host, port)
    assert (proxy.username, proxy.password) == (user, password)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("http://proxy:3128\r\nX-Injected: 1", "proxy URL contains forbidden character '\\r'"),
        ("http://pro\nxy:3128", "proxy URL contains forbidden character '\\n'"),
        ("http://user:pa\rss@proxy:3128", "proxy URL contains forbidden character '\\r'"),
        ("http://proxy:3128/path", "a proxy URL has no path, query or fragment"),
        ("http://proxy:3128?q", "a proxy URL has no path, query or fragment"),
        ("ftp://proxy:21", "proxy scheme must be http, https, socks5 or socks5h, not 'ftp'"),
        ("socks4://proxy:1080", "proxy scheme must be http, https, socks5 or socks5h, not"),
        ("http://:3128", "proxy URL has no host"),
        ("http://proxy:99999", "invalid proxy URL 'http://proxy:99999': invalid port '99999'"),
        ("http://", "proxy URL has no host"),
        ("http://proxy bad:1", "proxy URL contains forbidden character ' '"),
    ],
)
def test_bad_proxy_urls_are_invalid_url(text: str, rule: str) -> None:
    with pytest.raises(asyncnet.InvalidURL, match="^" + re.escape(rule)):
        parse_proxy_url(text)


def test_crlf_in_a_proxy_url_is_refused_by_the_client_before_anything_is_sent() -> None:
    with pytest.raises(asyncnet.InvalidURL, match="forbidden character"):
        asyncnet.HTTPClient(proxy="http://proxy:3128\r\nHost: evil")


def test_proxy_errors_never_repeat_the_password() -> None:
    for text in ("http://user:hunter2@proxy:99999", "http://user:hunter2@pro xy:1",
                 "http://user:hunter2@proxy:1/path"):
        with pytest.raises(asyncnet.InvalidURL) as info:
            parse_proxy_url(text)
        assert "hunter2" not in str(info.value)
    proxy = parse_proxy_url("http://user:hunter2@proxy:1")
    assert "hunter2" not in repr(proxy) and "hunter2" not in str(proxy)


def test_proxy_authorization_is_basic_for_http_proxies_only() -> None:
    assert parse_proxy_url("http://alice:s3cret@p:1").authorization == "Basic YWxpY2U6czNjcmV0"
    assert parse_proxy_url("http://p:1").authorization is None
    assert parse_proxy_url("socks5://alice:s3cret@p:1").authorization is None


# -- NO_PROXY ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "expected"),
    [
        ("example.com", "example.com", 80, True),
        ("example.com", "www.example.com", 80, True),
        ("example.com", "badexample.com", 80, False),
        (".example.com", "example.com", 80, True),
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "a.example.com", 443, True),
        ("EXAMPLE.com.", "example.com", 80, True),
        ("example.com", "example.com.", 80, True),
        ("*", "anything.at.all", 1, True),
        ("127.0.0.1", "127.0.0.1", 80, True),
        ("127.0.0.1", "127.0.0.2", 80, False),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]", "::1", 80, True),
        ("fd00::/8", "fd12::1", 80, True),
        ("fd00::/8", "fe80::1", 80, False),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 80, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("a.test, b.test ,,c.test", "b.test", 80, True),
        ("a.test b.test", "b.test", 80, True),
        ("", "example.com", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),  # names are never resolved
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert NoProxy(no_proxy).matches(host, port) is expected


# -- the environment -----------------------------------------------------------------


def test_environment_lower_case_wins_and_all_proxy_fills_in() -> None:
    http, https, no_proxy = proxies_from_env({
        "http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1",
        "ALL_PROXY": "socks5h://every:1080", "NO_PROXY": "internal.test",
    })
    assert http is not None and http.host == "lower"
    assert https is not None and (https.scheme, https.host) == ("socks5h", "every")
    assert no_proxy is not None and no_proxy.matches("x.internal.test", 80)


def test_environment_upper_case_is_read_and_empty_values_are_unset() -> None:
    http, https, no_proxy = proxies_from_env(
        {"HTTP_PROXY": "http://upper:1", "https_proxy": "", "HTTPS_PROXY": "http://s:2"}
    )
    assert http is not None and http.host == "upper"
    assert https is not None and https.host == "s"
    assert no_proxy is None


def test_environment_http_proxy_upper_case_is_ignored_under_cgi() -> None:
    # httpoxy: a CGI request's "Proxy:" header becomes HTTP_PROXY.
    http, _, _ = proxies_from_env({"HTTP_PROXY": "http://attacker:1", "REQUEST_METHOD": "GET"})
    assert http is None


def test_environment_bad_proxy_names_the_variable() -> None:
    with pytest.raises(asyncnet.InvalidURL, match="HTTPS_PROXY"):
        proxies_from_env({"HTTPS_PROXY": "http://bad\r\n:1"})


def test_selector_per_scheme_and_no_proxy() -> None:
    http, https, no_proxy = proxies_from_env(
        {"http_proxy": "http://p:1", "no_proxy": "direct.test"}
    )
    selector = ProxySelector(http=http, https=https, no_proxy=no_proxy)
    assert selector.select(parse_url("http://a.test/")) is http
    assert selector.select(parse_url("https://a.test/")) is None
    assert selector.select(parse_url("http://www.direct.test/")) is None


def test_client_reads_the_environment_only_with_trust_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://bad\n:1")
    asyncnet.HTTPClient()  # trust_env=False: the environment is not even read
    with pytest.raises(
        asyncnet.InvalidURL,
        match=r"^environment variable HTTP_PROXY: proxy URL contains forbidden character",
    ):
        asyncnet.HTTPClient(trust_env=True)


# -- CONNECT -------------------------------------------------------------------------


def test_connect_request_bytes() -> None:
    assert connect_request("example.com", 443, None) == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    assert connect_request("::1", 8443, "Basic eA==") == (
        b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"
        b"Proxy-Authorization: Basic eA==\r\n\r\n"
    )


PROXY = parse_proxy_url("http://127.0.0.1:3128")


@given(st.integers(min_value=1, max_value=60))
def test_tunnel_reply_any_split(split: int) -> None:
    raw = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n"
    reply = TunnelReply(PROXY)
    first, second = raw[:split], raw[split:]
    head = reply.receive(first)
    if head is None:
        head = reply.receive(second)
    assert head is not None and head.status == 200


@pytest.mark.parametrize("status", [403, 407, 502])
def test_tunnel_refusal_carries_the_status(status: int) -> None:
    reply = TunnelReply(PROXY)
    with pytest.raises(asyncnet.ProxyError) as info:
        reply.receive(f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n".encode())
    assert info.value.status == status
    assert isinstance(info.value, asyncnet.ConnectError)


def test_tunnel_interim_responses_are_skipped() -> None:
    head = TunnelReply(PROXY).receive(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
    assert head is not None and head.status == 200


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
    ],
)
def test_tunnel_garbage_is_a_proxy_error(garbage: bytes) -> None:
    with pytest.raises(asyncnet.ProxyError, match="malformed"):
        TunnelReply(PROXY).receive(garbage)


def test_tunnel_data_after_the_reply_is_refused() -> None:
    with pytest.raises(asyncnet.ProxyError, match="after its answer"):
        TunnelReply(PROXY).receive(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK from origin")


def test_tunnel_reason_is_escaped() -> None:
    with pytest.raises(asyncnet.ProxyError) as info:
        TunnelReply(PROXY).receive(b"HTTP/1.1 403 \x1b[31mred\r\nContent-Length: 0\r\n\r\n")
    assert "\x1b" not in str(info.value)


# -- SOCKS5 --------------------------------------------------------------------------

SOCKS = parse_proxy_url("socks5h://127.0.0.1:1080")
SOCKS_AUTH = parse_proxy_url("socks5://alice:pw@127.0.0.1:1080")
SUCCESS_V4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"


def _run(hs: Socks5Handshake, replies: bytes, split: int) -> list[bytes]:
    sent = [hs.start()]
    for piece in (replies[:split], replies[split:]):
        if piece:
            out = hs.receive(piece)
            if out:
                sent.append(out)
    return sent


@given(st.integers(min_value=0, max_value=12))
def test_socks5_without_auth_any_split(split: int) -> None:
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    sent = _run(hs, b"\x05\x00" + SUCCESS_V4, split)
    assert hs.done
    assert sent == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"]


@given(st.integers(min_value=0, max_value=14))
def test_socks5_with_user_password_any_split(split: int) -> None:
    hs = Socks5Handshake(SOCKS_AUTH, "10.1.2.3", 80)
    sent = _run(hs, b"\x05\x02" + b"\x01\x00" + SUCCESS_V4, split)
    assert hs.done
    assert sent[0] == b"\x05\x02\x00\x02"
    auth = b"\x01\x05alice\x02pw"
    assert b"".join(sent[1:]) == auth + b"\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50"


def test_socks5_ipv6_target_and_name_reply() -> None:
    hs = Socks5Handshake(SOCKS, "::1", 8080)
    hs.start()
    assert hs.receive(b"\x05\x00") == b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x1f\x90"
    assert hs.receive(b"\x05\x00\x00\x03\x04host\x00\x50") == b""
    assert hs.done


@pytest.mark.parametrize("code", range(1, 10))
def test_socks5_failure_replies_carry_the_code(code: int) -> None:
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    hs.start()
    hs.receive(b"\x05\x00")
    with pytest.raises(asyncnet.ProxyError) as info:
        hs.receive(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
    assert info.value.reply_code == code


def test_socks5_bad_credentials() -> None:
    hs = Socks5Handshake(SOCKS_AUTH, "example.com", 443)
    hs.start()
    hs.receive(b"\x05\x02")
    with pytest.raises(asyncnet.ProxyError, match="rejected the user name and password"):
        hs.receive(b"\x01\x01")


def test_socks5_credentials_required_but_none_given() -> None:
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    hs.start()
    with pytest.raises(asyncnet.ProxyError, match="requires credentials"):
        hs.receive(b"\x05\xff")


@pytest.mark.parametrize(
    ("replies", "rule"),
    [
        (b"\x04\x00", "is not a SOCKS5 proxy (version byte 4)"),
        (b"\x05\x09", "chose a method we did not offer (9)"),
        (b"\x05\x00\x04\x00\x00\x01\x00", "sent a reply with version byte 4"),
        (b"\x05\x00\x05\x00\x00\x07\x00", "sent an unknown address type (7)"),
    ],
)
def test_socks5_garbage_is_a_proxy_error(replies: bytes, rule: str) -> None:
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    hs.start()
    with pytest.raises(asyncnet.ProxyError, match=re.escape(rule) + "$"):
        hs.receive(replies)


def test_socks5_eof_mid_handshake_and_bytes_after_it() -> None:
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    hs.start()
    hs.receive(b"\x05")
    with pytest.raises(asyncnet.ProxyError, match="mid-handshake"):
        hs.receive_eof()
    hs = Socks5Handshake(SOCKS, "example.com", 443)
    hs.start()
    with pytest.raises(asyncnet.ProxyError, match="after the tunnel opened"):
        hs.receive(b"\x05\x00" + SUCCESS_V4 + b"early")
