"""TLS for the HTTP client: the context policy, and HTTPClient against TLS peers.

The first half checks the contexts that ``asyncnet._http._tls`` hands to the
client with plain ``asyncio.open_connection`` handshakes; the second half runs
:class:`~asyncnet.HTTPClient` itself. Peers are :class:`RawServer` and
:class:`HTTPServer` serving the committed test certificates (``tests/certs/``).
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

import asyncnet
from asyncnet import HTTPClient
from asyncnet._http._tls import (
    ALPN_PROTOCOLS,
    create_ssl_context,
    default_ssl_context,
    ssl_context_for,
    unverified_ssl_context,
)
from tests.support.servers import (
    CERTS,
    HTTPServer,
    RawServer,
    client_ssl_context,
    ipv6_available,
    pattern,
    response,
    server_ssl_context,
)

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
REPLY = response(200, b"tls ok")


def _test_ca_context() -> ssl.SSLContext:
    return create_ssl_context(cafile=str(CERTS / "ca.pem"))


async def _handshake(
    srv: RawServer, ctx: ssl.SSLContext, server_hostname: str, host: str = "127.0.0.1"
) -> str | None:
    """Connect, send one request, check the reply; return the negotiated ALPN protocol."""
    reader, writer = await asyncio.open_connection(
        host, srv.port, ssl=ctx, server_hostname=server_hostname
    )
    try:
        writer.write(GET)
        assert await reader.readexactly(len(REPLY)) == REPLY
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.server_hostname == server_hostname  # SNI sent
        return ssl_object.selected_alpn_protocol()  # type: ignore[no-any-return]
    finally:
        writer.transport.abort()


def _tls_server(cert: str = "server", host: str = "127.0.0.1") -> RawServer:
    return RawServer(responses=[REPLY], repeat=True, ssl=server_ssl_context(cert), host=host)


def test_default_context_policy() -> None:
    ctx = default_ssl_context()
    assert ctx is default_ssl_context()  # cached: built once per process
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.hostname_checks_common_name is False
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ALPN_PROTOCOLS == ("http/1.1",)


def test_unverified_context_policy() -> None:
    ctx = unverified_ssl_context()
    assert ctx is unverified_ssl_context()
    assert ctx is not default_ssl_context()
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_context_choice_per_setting() -> None:
    custom = ssl.create_default_context()
    assert ssl_context_for("http") is None
    assert ssl_context_for("http", custom) is None
    assert ssl_context_for("http", False) is None
    assert ssl_context_for("https") is default_ssl_context()
    assert ssl_context_for("https", True) is default_ssl_context()
    assert ssl_context_for("https", custom) is custom
    assert ssl_context_for("https", False) is unverified_ssl_context()
    with pytest.raises(TypeError, match=r"^ssl must be an ssl\.SSLContext, a bool or None"):
        ssl_context_for("https", "yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^no TLS rule for scheme 'ftp'"):
        ssl_context_for("ftp")


def test_caller_context_is_not_modified() -> None:
    custom = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    custom.minimum_version = ssl.TLSVersion.TLSv1_3
    before = (custom.minimum_version, custom.verify_mode, custom.check_hostname)
    assert ssl_context_for("https", custom) is custom
    assert (custom.minimum_version, custom.verify_mode, custom.check_hostname) == before


async def test_custom_context_with_test_ca_succeeds_and_offers_http11() -> None:
    async with _tls_server() as srv:
        assert await _handshake(srv, _test_ca_context(), "localhost") == "http/1.1"
        # The IP address is in the certificate's subjectAltName too.
        assert await _handshake(srv, _test_ca_context(), "127.0.0.1") == "http/1.1"


async def test_default_context_rejects_unknown_ca() -> None:
    async with _tls_server() as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await _handshake(srv, default_ssl_context(), "localhost")
    assert info.value.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


async def test_self_signed_certificate_is_rejected() -> None:
    async with _tls_server("self-signed") as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await _handshake(srv, _test_ca_context(), "localhost")
    assert info.value.verify_code == 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT


async def test_hostname_mismatch_is_rejected() -> None:
    async with _tls_server("wrong-host") as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await _handshake(srv, _test_ca_context(), "localhost")
    assert info.value.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH


async def test_common_name_is_never_used_as_host_name() -> None:
    async with _tls_server("common-name-only") as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await _handshake(srv, _test_ca_context(), "localhost")
    assert info.value.verify_code == 62


async def test_expired_certificate_is_rejected() -> None:
    async with _tls_server("expired") as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await _handshake(srv, _test_ca_context(), "localhost")
    assert info.value.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED


async def test_unverified_context_accepts_any_certificate_but_still_encrypts() -> None:
    for cert in ("self-signed", "wrong-host", "expired"):
        async with _tls_server(cert) as srv:
            assert await _handshake(srv, unverified_ssl_context(), "localhost") == "http/1.1"


async def test_tls_over_ipv6_loopback() -> None:
    if not ipv6_available():
        pytest.skip("::1 not available")
    async with _tls_server(host="::1") as srv:
        assert await _handshake(srv, _test_ca_context(), "::1", host="::1") == "http/1.1"


# -- HTTPClient over TLS ----------------------------------------------------------------


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError:
    """The certificate error behind a ConnectError (it is kept as the cause)."""
    assert isinstance(exc, asyncnet.ConnectError)
    cause = exc.__cause__
    assert isinstance(cause, ssl.SSLCertVerificationError), repr(cause)
    return cause


async def test_client_with_custom_context_succeeds_and_reuses() -> None:
    with HTTPServer(ssl=server_ssl_context()) as srv:
        async with HTTPClient(ssl=_test_ca_context()) as client:
            for host in ("localhost", "127.0.0.1", "localhost"):
                resp = await client.get(srv.url("/bytes/3000", host=host))
                assert resp.content == pattern(3000)
            assert resp.url.scheme == "https"
            # Different hosts are different pool keys: two connections, one reused.
            assert client.statistics().connections_opened == 2
    assert srv.connections == 2


async def test_client_default_context_rejects_the_unknown_ca() -> None:
    with HTTPServer(ssl=server_ssl_context()) as srv:
        async with HTTPClient() as client:
            with pytest.raises(asyncnet.ConnectError) as info:
                await client.get(srv.url("/bytes/1", host="localhost"))
        assert _verification_error(info.value).verify_code == 20
        assert isinstance(info.value, ConnectionError)
        # Never fell back to anything: the server got no request at all.
        assert srv.requests == 0


@pytest.mark.parametrize(
    ("cert", "code"),
    [("wrong-host", 62), ("common-name-only", 62), ("expired", 10), ("self-signed", 18)],
)
async def test_client_rejects_bad_certificates(cert: str, code: int) -> None:
    async with _tls_server(cert) as srv, HTTPClient(ssl=_test_ca_context()) as client:
        with pytest.raises(asyncnet.ConnectError) as info:
            await client.get(srv.url(host="localhost"))
        assert _verification_error(info.value).verify_code == code
        assert srv.requests == 0
        # The slot comes back once the failed transport is gone (a loop turn or two).
        for _ in range(100):
            if client.statistics().connections_open == 0:
                break
            await asyncio.sleep(0)
        assert client.statistics().connections_open == 0


async def test_client_sends_sni_and_offers_http11() -> None:
    seen: list[str | None] = []
    ctx = server_ssl_context()

    def record(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(name)

    ctx.sni_callback = record
    async with RawServer(responses=[REPLY], repeat=True, ssl=ctx) as srv, HTTPClient(
        ssl=_test_ca_context()
    ) as client:
        assert (await client.get(srv.url(host="localhost"))).content == b"tls ok"
    assert seen == ["localhost"]


async def test_client_ssl_false_encrypts_without_verifying() -> None:
    async with _tls_server("self-signed") as srv, HTTPClient(ssl=False) as client:
        assert (await client.get(srv.url(host="localhost"))).content == b"tls ok"
        assert (await client.get(srv.url())).content == b"tls ok"


async def test_plain_http_url_ignores_the_ssl_setting() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(ssl=_test_ca_context()) as client:
            assert (await client.get(srv.url("/bytes/5"))).content == pattern(5)


async def test_plain_http_server_on_an_https_url_is_a_connect_error() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(ssl=_test_ca_context()) as client:
            with pytest.raises(
                asyncnet.ConnectError, match="the server answered in plain text, not TLS"
            ):
                await client.get(srv.url("/bytes/5").replace("http://", "https://"))


async def test_client_over_tls_on_ipv6_loopback() -> None:
    if not ipv6_available():
        pytest.skip("::1 not available")
    with HTTPServer(host="::1", ssl=server_ssl_context()) as srv:
        async with HTTPClient(ssl=_test_ca_context()) as client:
            resp = await client.get(srv.url("/chunked/100000"))
    assert resp.content == pattern(100000)


async def test_test_ca_helper_context_works_with_the_client() -> None:
    # tests.support.servers.client_ssl_context() is what other test modules use.
    with HTTPServer(ssl=server_ssl_context()) as srv:
        async with HTTPClient(ssl=client_ssl_context()) as client:
            assert (await client.get(srv.url("/bytes/7", host="localhost"))).content == pattern(7)
