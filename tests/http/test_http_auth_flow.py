"""params= and auth= over loopback: Basic, Bearer, Digest (scripted RFC 7616 server), netrc."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from asyncnet import (
    BasicAuth,
    BearerAuth,
    BodyNotReplayable,
    DigestAuth,
    HTTPClient,
    UsageError,
)
from tests.support.apache import ApacheDigestServer, apache_path
from tests.support.servers import HTTPServer, RawServer, read_request, response


async def _echo(client: HTTPClient, url: str, **options: Any) -> dict[str, Any]:
    resp = await client.get(url, **options)
    doc: dict[str, Any] = await resp.json()
    doc["headers"] = {k.lower(): v for k, v in doc["headers"]}
    return doc


async def test_params_merge_with_the_url_query_and_client_params() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(params={"key": "k", "lang": "en"}) as client:
            doc = await _echo(
                client, srv.url("/echo?own=1&own=2"),
                params=[("lang", "fr"), ("q", "a b/ü&"), ("skip", None)],
            )
    path, _, query = doc["path"].partition("?")
    assert path == "/echo"
    assert parse_qsl(query) == [("own", "1"), ("own", "2"), ("key", "k"), ("lang", "fr"),
                                ("q", "a b/ü&")]
    assert "q=a%20b%2F%C3%BC%26" in query


async def test_basic_and_bearer_auth_per_client_and_per_request() -> None:
    with HTTPServer() as srv:
        async with HTTPClient(auth=("user", "pässword")) as client:
            doc = await _echo(client, srv.url("/echo"))
            assert doc["headers"]["authorization"] == "Basic dXNlcjpww6Rzc3dvcmQ="
            doc = await _echo(client, srv.url("/echo"), auth=BearerAuth("t0ken"))
            assert doc["headers"]["authorization"] == "Bearer t0ken"
            # An explicit header beats the client's auth.
            doc = await _echo(client, srv.url("/echo"), headers={"Authorization": "Custom x"})
            assert doc["headers"]["authorization"] == "Custom x"
            with pytest.raises(
                UsageError, match=r"^auth must be \(user, password\) or an asyncnet\.Auth"
            ):
                await client.get(srv.url("/echo"), auth="user:pass")  # type: ignore[arg-type]


async def test_auth_and_request_cookies_are_dropped_on_cross_origin_redirects() -> None:
    with HTTPServer() as a, HTTPServer() as b:
        async with HTTPClient(auth=BasicAuth("u", "p")) as client:
            # Same origin: kept.
            same = await _echo(
                client, a.url("/redirect-to?url=" + quote("/echo")), cookies={"sid": "1"}
            )
            assert same["headers"]["authorization"].startswith("Basic ")
            assert same["headers"]["cookie"] == "sid=1"
            # Another origin (another port): dropped, however the credentials came.
            for options in ({}, {"auth": BearerAuth("t")}, {"cookies": {"sid": "1"}}):
                other = await _echo(
                    client, a.url("/redirect-to?url=" + quote(b.url("/echo"))), **options
                )
                assert "authorization" not in other["headers"]
                assert "cookie" not in other["headers"]


# -- Digest: a scripted server implementing RFC 7616's side -----------------------


class DigestServer:
    """Challenges with a fresh nonce, checks each answer's hash and nonce count.

    ``algorithm`` is offered; ``stale_after`` turns a nonce stale after that
    many uses, as Apache's ``AuthDigestNonceLifetime`` does with time.
    """

    def __init__(self, user: str, password: str, algorithm: str = "SHA-256",
                 stale_after: int | None = None, always_401: bool = False) -> None:
        self.user, self.password, self.algorithm = user, password, algorithm
        self.stale_after = stale_after
        self.always_401 = always_401
        self.nonces: dict[str, int] = {}  # nonce -> last nc seen
        self.log: list[tuple[str, int]] = []  # (method target, status)
        self.bodies: list[bytes] = []

    def _h(self, text: str) -> str:
        name = "md5" if self.algorithm.startswith("MD5") else "sha256"
        return hashlib.new(name, text.encode()).hexdigest()

    def _challenge(self, stale: bool = False) -> str:
        nonce = secrets.token_urlsafe(16)
        self.nonces[nonce] = 0
        return (f'Digest realm="test realm", qop="auth", algorithm={self.algorithm}, '
                f'nonce="{nonce}", opaque="opq"' + (", stale=true" if stale else ""))

    def _check(self, method: str, header: str) -> tuple[bool, bool]:
        """(valid, stale) for an Authorization header."""
        params = {m[0]: m[1] or m[2] for m in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header)}
        nonce = params.get("nonce", "")
        if nonce not in self.nonces or params.get("opaque") != "opq":
            return False, False
        nc = int(params["nc"], 16)
        if nc <= self.nonces[nonce]:
            return False, False  # a replayed count
        self.nonces[nonce] = nc
        ha1 = self._h(f"{self.user}:test realm:{self.password}")
        if self.algorithm.endswith("-sess"):
            ha1 = self._h(f"{ha1}:{nonce}:{params['cnonce']}")
        ha2 = self._h(f"{method}:{params['uri']}")
        expected = self._h(f"{ha1}:{nonce}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        if params.get("response") != expected or params.get("username") != self.user:
            return False, False
        if self.stale_after is not None and nc > self.stale_after:
            return False, True
        return True, False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            head, _, body = request.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
            auth = fields.get("authorization", "")
            valid, stale = self._check(method, auth) if auth.startswith("Digest ") else (False,
                                                                                         False)
            if valid and not self.always_401:
                self.bodies.append(body)
                self.log.append((f"{method} {target}", 200))
                writer.write(response(200, b"secret"))
            else:
                self.log.append((f"{method} {target}", 401))
                writer.write(response(401, b"who?", [
                    ("WWW-Authenticate", 'Basic realm="fallback"'),
                    ("WWW-Authenticate", self._challenge(stale)),
                ]))
            await writer.drain()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
async def test_digest_answers_once_then_counts_nonces(algorithm: str) -> None:
    server = DigestServer("Mufasa", "Circle of Life", algorithm)
    async with RawServer(server.handle) as srv, HTTPClient(
        auth=DigestAuth("Mufasa", "Circle of Life")
    ) as client:
        resp = await client.post(srv.url("/a"), body=b"payload")
        assert resp.status == 200 and resp.content == b"secret"
        # The next requests answer the known challenge at once, nc 2 and 3.
        assert (await client.get(srv.url("/b?x=1"))).status == 200
        assert (await client.get(srv.url("/c"))).status == 200
    assert server.log == [("POST /a", 401), ("POST /a", 200), ("GET /b?x=1", 200),
                          ("GET /c", 200)]
    assert server.bodies[0] == b"payload"  # the body was sent again
    assert list(server.nonces.values()) == [3]
    assert srv.connections == 1  # the 401's connection was reused


async def test_digest_answers_a_stale_nonce_and_gives_up_after_one_try() -> None:
    server = DigestServer("u", "p", stale_after=1)
    async with RawServer(server.handle) as srv, HTTPClient() as client:
        auth = DigestAuth("u", "p")
        assert (await client.get(srv.url("/1"), auth=auth)).status == 200
        assert (await client.get(srv.url("/2"), auth=auth)).status == 200  # stale, answered
        assert [s for _, s in server.log] == [401, 200, 401, 200]
        # Wrong password: one answer, then the 401 is the caller's.
        resp = await client.get(srv.url("/3"), auth=DigestAuth("u", "wrong"))
        assert resp.status == 401
        assert [s for _, s in server.log][4:] == [401, 401]


async def test_digest_with_a_one_shot_body_raises_a_clear_error() -> None:
    server = DigestServer("u", "p")

    async def once() -> Any:
        yield b"streamed"

    async with RawServer(server.handle) as srv, HTTPClient(auth=DigestAuth("u", "p")) as client:
        with pytest.raises(BodyNotReplayable, match="401 challenge"):
            await client.post(srv.url("/"), body=once())
        # A seekable file can be sent again.
        resp = await client.post(srv.url("/"), body=io.BytesIO(b"file body"))
        assert resp.status == 200
    assert server.bodies == [b"file body"]


async def test_hostile_challenges_return_the_401() -> None:
    challenges = [
        'Digest realm="r", nonce="a\\"b\r\nX-Injected: 1"',
        "Digest " + "realm=x, " * 5000,
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="unterminated',
        "\xff garbage ,,, = \"",
        'Digest realm="r", nonce="n\xe9\xff"',  # obs-text would go back into our head
    ]
    replies = [response(401, b"no", [("WWW-Authenticate", c[:8000])]) for c in challenges]
    async with RawServer(responses=replies) as srv, HTTPClient(
        auth=DigestAuth("u", "p")
    ) as client:
        for _ in challenges:
            assert (await client.get(srv.url("/"))).status == 401
    assert srv.requests == len(challenges)
    assert all(b"X-Injected" not in bytes(r) for r in srv.received)


async def test_netrc_only_with_trust_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HTTPServer() as srv:
        netrc_file = tmp_path / "netrc"
        netrc_file.write_text(f"machine {srv.host} login alice password s3cret\n")
        netrc_file.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc_file))
        async with HTTPClient() as client:
            assert "authorization" not in (await _echo(client, srv.url("/echo")))["headers"]
        async with HTTPClient(trust_env=True) as client:
            doc = await _echo(client, srv.url("/echo"))
            assert doc["headers"]["authorization"] == "Basic YWxpY2U6czNjcmV0"
            # The URL's own credentials win.
            doc = await _echo(client, srv.url("/echo").replace("://", "://bob:pw@"))
            assert doc["headers"]["authorization"] == "Basic Ym9iOnB3"


# -- Digest against Apache httpd's mod_auth_digest ----------------------------------

needs_apache = pytest.mark.skipif(apache_path() is None, reason="apache2 is not installed")


@needs_apache
async def test_digest_against_apache_mod_auth_digest() -> None:
    with ApacheDigestServer("Mufasa", "Circle of Life") as apache:
        async with HTTPClient(auth=DigestAuth("Mufasa", "Circle of Life")) as client:
            resp = await client.get(apache.url("/secret.txt"))
            assert resp.status == 200 and resp.content == ApacheDigestServer.BODY
            # The known challenge is answered at once, with the next nonce count.
            for _ in range(3):
                assert (await client.get(apache.url("/secret.txt?again"))).status == 200
            wrong = await client.get(apache.url("/secret.txt"), auth=DigestAuth("Mufasa", "x"))
            assert wrong.status == 401
        async with HTTPClient() as client:
            assert (await client.get(apache.url("/secret.txt"))).status == 401
        # The log is written by the server process: wait for its last line, bounded.
        for _ in range(100):
            if len(apache.access_log()) >= 8:
                break
            await asyncio.sleep(0.05)
        statuses = [line.rsplit(" ", 1)[1] for line in apache.access_log()]
    assert statuses == ["401", "200", "200", "200", "200", "401", "401", "401"]
