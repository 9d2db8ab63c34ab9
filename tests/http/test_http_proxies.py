"""The client through proxies: real squid, tinyproxy and microsocks, plus scripted hostile ones.

Origins are nginx (plain and TLS with the test CA) or our scripted servers;
every peer listens on 127.0.0.1 only. Real programs are skipped when not
installed (``.ci/run`` installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

import asyncnet
from asyncnet import HTTPClient
from tests.support.peers import (
    CERTS,
    Peer,
    free_port,
    microsocks,
    need,
    squid,
    tinyproxy,
    tmpdir,
)
from tests.support.servers import (
    NginxServer,
    RawServer,
    client_ssl_context,
    nginx_path,
    pattern,
    read_request,
    response,
    server_ssl_context,
)

needs_nginx = pytest.mark.skipif(nginx_path() is None, reason="nginx is not installed")


async def _open_after_failure(client: HTTPClient) -> int:
    """Connections open once the pool took back the slot of a failed connect.

    The pool frees that slot one loop turn later (see ConnectionPool.acquire).
    """
    await asyncio.sleep(0)
    return client.statistics().connections_open


@contextlib.contextmanager
def nginx_pair() -> Iterator[tuple[NginxServer, NginxServer]]:
    with NginxServer(sizes=(100, 70000)) as plain, NginxServer(sizes=(100, 70000), tls=True) as tls:
        yield plain, tls


# -- squid: forwarding and CONNECT -------------------------------------------------------


@needs_nginx
async def test_squid_forwards_http_and_tunnels_https_with_keep_alive() -> None:
    with squid() as proxy, nginx_pair() as (plain, tls):
        async with HTTPClient(proxy=proxy.url(), ssl=client_ssl_context()) as client:
            for _ in range(3):
                small = await client.get(plain.url("/bytes/100"))
                assert (small.status, small.content) == (200, pattern(100))
                big = await client.get(tls.url("/bytes/70000"))
                assert (big.status, big.content) == (200, pattern(70000))
            gz = await client.get(tls.url("/gzip/70000"))
            assert gz.content == pattern(70000)
            stats = client.statistics()
            # One connection to the proxy for the http origin, one tunnel for
            # the https origin, each reused: keyed by proxy + target.
            assert stats.connections_opened == 2
            assert stats.requests_reused == 5
    access = "\n".join(proxy.output)
    assert "FATAL" not in access


@needs_nginx
async def test_squid_tunnel_verifies_the_origin_certificate_not_the_proxy() -> None:
    with squid() as proxy, NginxServer(tls=True) as tls:
        # The origin's certificate is checked against the origin's name: the
        # test CA is not trusted by the default context, so this must fail...
        async with HTTPClient(proxy=proxy.url()) as client:
            with pytest.raises(asyncnet.ConnectError, match="failed verification"):
                await client.get(tls.url("/bytes/100"))
        # ...and "localhost" is in the certificate, so SNI/host check pass by name.
        async with HTTPClient(proxy=proxy.url(), ssl=client_ssl_context()) as client:
            resp = await client.get(tls.url("/bytes/100", host="localhost"))
            assert resp.content == pattern(100)


@needs_nginx
async def test_squid_refusing_connect_is_a_proxy_error_with_the_status() -> None:
    with squid() as proxy:
        async with HTTPClient(proxy=proxy.url(), ssl=client_ssl_context()) as client:
            # The configuration allows only loopback destinations; a name
            # that resolves nowhere gets squid's own error answer.
            with pytest.raises(asyncnet.ProxyError) as info:
                await client.get("https://no-such-host.invalid/")
            assert info.value.status is not None and info.value.status >= 400
            # For plain http the proxy's error answer is the response.
            resp = await client.get("http://no-such-host.invalid/")
            assert resp.status >= 400
            assert await _open_after_failure(client) <= 1


# -- tinyproxy: Basic proxy authentication -------------------------------------------------


@needs_nginx
async def test_tinyproxy_basic_auth() -> None:
    with tinyproxy("alice", "s3cret") as proxy, nginx_pair() as (plain, tls):
        url = proxy.url("http", "alice:s3cret@")
        async with HTTPClient(proxy=url, ssl=client_ssl_context()) as client:
            assert (await client.get(plain.url("/bytes/100"))).content == pattern(100)
            assert (await client.get(tls.url("/bytes/100"))).content == pattern(100)
        async with HTTPClient(proxy=proxy.url(), ssl=client_ssl_context()) as client:
            # Without credentials: the proxy's 407 is the response for http...
            resp = await client.get(plain.url("/bytes/100"))
            assert resp.status == 407
            # ...and a ProxyError carrying 407 for a tunnel.
            with pytest.raises(asyncnet.ProxyError) as info:
                await client.get(tls.url("/bytes/100"))
            assert info.value.status == 407
        async with HTTPClient(
            proxy=proxy.url("http", "alice:wrong@"), ssl=client_ssl_context()
        ) as client:
            with pytest.raises(asyncnet.ProxyError) as info:
                await client.get(tls.url("/bytes/100"))
            # tinyproxy answers wrong credentials with 401, missing ones with 407.
            assert info.value.status == 401


# -- microsocks: SOCKS5 ----------------------------------------------------------------


@needs_nginx
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_microsocks_without_credentials(scheme: str) -> None:
    with microsocks() as proxy, nginx_pair() as (plain, tls):
        async with HTTPClient(proxy=proxy.url(scheme), ssl=client_ssl_context()) as client:
            for _ in range(2):
                assert (await client.get(plain.url("/bytes/100"))).content == pattern(100)
                resp = await client.get(tls.url("/bytes/70000", host="localhost"))
                assert resp.content == pattern(70000)
            assert client.statistics().connections_opened == 2


@needs_nginx
async def test_microsocks_with_credentials() -> None:
    with microsocks("bob", "pw") as proxy, nginx_pair() as (plain, tls):
        good = proxy.url("socks5h", "bob:pw@")
        async with HTTPClient(proxy=good, ssl=client_ssl_context()) as client:
            assert (await client.get(tls.url("/bytes/100"))).content == pattern(100)
            assert (await client.get(plain.url("/bytes/100"))).content == pattern(100)
        for bad, rule in (
            (proxy.url("socks5h", "bob:nope@"), "rejected the user name and password"),
            (proxy.url("socks5h"), "requires credentials"),
        ):
            async with HTTPClient(proxy=bad, ssl=client_ssl_context()) as client:
                with pytest.raises(asyncnet.ProxyError, match=rf"^SOCKS5 proxy \S+ {rule}$"):
                    await client.get(plain.url("/bytes/100"))
                assert await _open_after_failure(client) == 0


# -- an https:// proxy: TLS to the proxy, TLS to the origin inside it -------------------


@needs_nginx
async def test_https_proxy_tls_inside_tls() -> None:
    socat = need("socat")
    with squid() as proxy, nginx_pair() as (plain, tls):
        port = free_port()
        # socat terminates TLS (the test certificate) in front of squid.
        front = Peer(
            [
                socat, "-d",
                f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,"
                f"cert={CERTS / 'server.pem'},key={CERTS / 'server.key'},verify=0",
                f"TCP:127.0.0.1:{proxy.port}",
            ],
            port=port,
            tmp=tmpdir("socat"),
        )
        with front:
            async with HTTPClient(
                proxy=f"https://localhost:{port}", ssl=client_ssl_context()
            ) as client:
                resp = await client.get(tls.url("/bytes/70000"))
                assert resp.content == pattern(70000)
                again = await client.get(tls.url("/bytes/100"))
                assert again.content == pattern(100)
                assert (await client.get(plain.url("/bytes/100"))).content == pattern(100)
                assert client.statistics().connections_opened == 2


# -- scripted proxies: what reaches whom ------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def connect_proxy(log: list[bytes]) -> AsyncIterator[RawServer]:
    """A transparent CONNECT proxy that records each CONNECT request head."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        log.append(head)
        authority = head.split(b" ")[1].decode()
        host, _, port = authority.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        there = asyncio.ensure_future(_pipe(reader, up_writer))
        back = asyncio.ensure_future(_pipe(up_reader, writer))
        try:
            await asyncio.gather(there, back)
        finally:
            there.cancel()
            back.cancel()
            await asyncio.gather(there, back, return_exceptions=True)
            up_writer.transport.abort()

    async with RawServer(handler) as srv:
        yield srv


async def test_proxy_authorization_goes_to_the_proxy_never_to_the_origin() -> None:
    log: list[bytes] = []
    async with (
        RawServer(responses=[response(200, b"origin")], repeat=True, ssl=server_ssl_context())
        as origin,
        connect_proxy(log) as proxy,
    ):
        proxy_url = f"http://alice:s3cret@127.0.0.1:{proxy.port}"
        async with HTTPClient(proxy=proxy_url, ssl=client_ssl_context()) as client:
            resp = await client.get(origin.url("/a"))
            assert resp.content == b"origin"
            resp = await client.get(origin.url("/b"))
            # A URL's own userinfo still authorizes at the origin.
            await client.get(origin.url("/c").replace("https://", "https://u:p@"))
        assert len(log) == 1
        assert log[0].startswith(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\n".encode())
        assert b"\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n" in log[0]
        seen = b"".join(origin.request_log)
        assert b"proxy-authorization" not in seen.lower()
        assert seen.startswith(b"GET /a HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Basic dTpw\r\n" in seen


async def test_forwarding_sends_absolute_form_and_credentials_to_the_proxy() -> None:
    async with RawServer(responses=[response(200, b"from proxy")], repeat=True) as proxy:
        url = f"http://alice:s3cret@127.0.0.1:{proxy.port}"
        async with HTTPClient(proxy=url) as client:
            resp = await client.get("http://origin.test:8080/path?q=1")
            assert resp.content == b"from proxy"
            await client.get("http://origin.test:8080/other")
        first, second = proxy.request_log
        assert first.startswith(b"GET http://origin.test:8080/path?q=1 HTTP/1.1\r\n")
        assert b"\r\nHost: origin.test:8080\r\n" in first
        assert b"\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n" in first
        assert second.startswith(b"GET http://origin.test:8080/other HTTP/1.1\r\n")
        assert proxy.connections == 1


async def test_redirects_reevaluate_the_proxy_per_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    async with RawServer(responses=[response(200, b"direct")], repeat=True) as direct:
        target = direct.url("/end", host="localhost")
        async with RawServer(
            responses=[response(302, headers=[("Location", target)])], repeat=True
        ) as proxy:
            monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
            monkeypatch.setenv("no_proxy", "localhost")
            async with HTTPClient(trust_env=True) as client:
                resp = await client.get("http://proxied.test/start")
                assert (resp.status, resp.content) == (200, b"direct")
                assert len(resp.history) == 1
            # The first hop went through the proxy, the second (NO_PROXY) direct.
            assert [r.split(b"\r\n")[0] for r in proxy.request_log] == [
                b"GET http://proxied.test/start HTTP/1.1"
            ]
            assert direct.request_log[0].startswith(b"GET /end HTTP/1.1\r\n")


# -- hostile proxies ---------------------------------------------------------------------


async def test_connect_answered_with_garbage_is_a_proxy_error_and_leaks_nothing() -> None:
    async with RawServer(responses=[b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n"], repeat=True) as proxy:
        async with HTTPClient(proxy=f"http://127.0.0.1:{proxy.port}") as client:
            with pytest.raises(asyncnet.ProxyError, match="malformed answer to CONNECT"):
                await client.get("https://origin.test/")
            assert await _open_after_failure(client) == 0
        await proxy.wait_until(lambda s: s.active_connections == 0)


async def test_connect_proxy_closing_before_answering() -> None:
    async with (
        RawServer(responses=[], repeat=False) as proxy,
        HTTPClient(proxy=f"http://127.0.0.1:{proxy.port}") as client,
    ):
        with pytest.raises(asyncnet.ProxyError, match="closed the connection"):
            await client.get("https://origin.test/")
        assert await _open_after_failure(client) == 0


@pytest.mark.parametrize("sent", [b"", b"\x05", b"\x05\x00", b"\x05\x00\x05\x00\x00"])
async def test_socks_proxy_closing_mid_handshake(sent: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)  # the greeting
        writer.write(sent)
        await writer.drain()
        # Close once the client has sent what comes next (or at once).
        if sent == b"\x05\x00":
            await reader.read(5)

    async with RawServer(handler) as proxy:
        async with HTTPClient(proxy=f"socks5h://127.0.0.1:{proxy.port}") as client:
            with pytest.raises(asyncnet.ProxyError, match=r"SOCKS5 proxy .* closed"):
                await client.get("http://origin.test/")
            assert await _open_after_failure(client) == 0
        await proxy.wait_until(lambda s: s.active_connections == 0)


async def test_socks_failure_reply_code() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"\x05\x00")
        await reader.readexactly(4 + 1 + len("origin.test") + 2)
        writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # connection refused
        await writer.drain()
        await reader.read()

    async with (
        RawServer(handler) as proxy,
        HTTPClient(proxy=f"socks5h://127.0.0.1:{proxy.port}") as client,
    ):
        with pytest.raises(asyncnet.ProxyError, match="connection refused") as info:
            await client.get("https://origin.test/")
        assert info.value.reply_code == 5


async def test_unreachable_proxy_is_a_connect_error_naming_the_proxy() -> None:
    port = free_port()
    async with HTTPClient(proxy=f"http://127.0.0.1:{port}") as client:
        with pytest.raises(asyncnet.ConnectError, match=f"proxy 127.0.0.1:{port}"):
            await client.get("https://origin.test/")


async def test_connect_timeout_covers_the_tunnel_handshake() -> None:
    silent = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await silent.wait()  # never answers CONNECT

    async with RawServer(handler) as proxy, HTTPClient(
        proxy=f"http://127.0.0.1:{proxy.port}", timeout=asyncnet.Timeout(connect=0.2)
    ) as client:
        with pytest.raises(asyncnet.ConnectTimeout):
            await client.get("https://origin.test/")
        assert await _open_after_failure(client) == 0


def test_uds_and_proxy_together_are_refused() -> None:
    with pytest.raises(asyncnet.UsageError, match=r"^pass either uds= or proxy=, not both"):
        HTTPClient(uds="/tmp/x.sock", proxy="http://p:1")

