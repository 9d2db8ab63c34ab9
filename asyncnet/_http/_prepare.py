"""Request preparation: what a request's arguments become before it is sent.

:class:`~asyncnet.HTTPClient` hands each request's arguments here and gets
back what the connection needs: the payload that ``body=``, ``json=``,
``data=`` or ``files=`` become (bytes or a stream, and its
``Content-Type``); the client's headers and params merged with the
request's own; the credentials each hop carries (``auth``, netrc, cookies);
and the route, i.e. the pool key (origin, TLS context, proxy) and the
serialized head. Nothing here does I/O except reading a netrc file once.
"""

from __future__ import annotations

import json as _json
import netrc
import os
import ssl as _ssl
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias

from .._errors import UsageError
from ._auth import Auth, BasicAuth
from ._cookies import CookieStore
from ._headers import Headers
from ._multipart import FilesInput, MultipartEncoder
from ._proxy import Proxy, ProxySelector
from ._query import QueryInput, encode_form, query_pairs
from ._request import (
    BodyValue,
    RequestBody,
    asks_to_close,
    basic_auth,
    serialize_head,
    validate_header_items,
)
from ._rules import METHODS_WITH_CONTENT
from ._tls import SSLSetting, ssl_context_for
from ._url import URL

__all__ = [
    "NO_BODY",
    "AuthInput",
    "Credentials",
    "HeaderInput",
    "Payload",
    "Route",
    "check_expect",
    "check_max_body",
    "check_max_redirects",
    "coerce_auth",
    "header_pairs",
    "merge_headers",
    "merge_params",
    "payload_of",
    "route_for",
    "wants_continue",
    "with_credentials",
]

# A request's pool key (scheme, host, port, TLS context, proxy), its serialized
# head, whether its body goes chunked, and whether its own headers say
# ``Connection: close``.
_Key: TypeAlias = tuple[str, str, int, "_ssl.SSLContext | None", Proxy | None]
Route: TypeAlias = tuple[_Key, bytes, bool, bool]
HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None
AuthInput: TypeAlias = Auth | tuple[str, str] | None


class Payload:
    """A request body in the form the connection sends it."""

    __slots__ = ("data", "length", "replayable", "stream")

    def __init__(self, data: bytes | None = None, stream: RequestBody | None = None) -> None:
        self.data = data
        self.stream = stream
        if stream is not None:
            self.length = stream.length
            self.replayable = stream.replayable
        else:
            self.length = None if data is None else len(data)
            self.replayable = True


#: The payload of a request without a body.
NO_BODY: Final = Payload()


def payload_of(
    body: BodyValue, json: Any, data: QueryInput = None, files: FilesInput | None = None
) -> tuple[Payload, str | None]:
    """Normalize ``body=``/``json=``/``data=``/``files=`` into a payload and its Content-Type."""
    if files is not None:
        if body is not None or json is not None:
            raise UsageError("files= goes with data= only, not with body= or json=")
        form = MultipartEncoder(data, files)
        return Payload(stream=form.body()), form.content_type
    if data is not None:
        if body is not None or json is not None:
            raise UsageError("pass only one of body=, json= and data=")
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            raise UsageError(
                "data= takes a mapping or pairs for a form; pass text or bytes as body="
            )
        return Payload(encode_form(data)), "application/x-www-form-urlencoded"
    if json is not None:
        if body is not None:
            raise UsageError("pass either body= or json=, not both")
        encoded = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return Payload(encoded), "application/json"
    if body is None:
        return NO_BODY, None
    if isinstance(body, bytes):
        return Payload(body), None
    if isinstance(body, (bytearray, memoryview)):
        return Payload(bytes(body)), None
    if isinstance(body, str):
        return Payload(body.encode("utf-8")), "text/plain; charset=utf-8"
    return Payload(stream=RequestBody.from_value(body)), None


def wants_continue(setting: bool | int, payload: Payload) -> bool:
    """Whether a request with ``payload`` goes with ``Expect: 100-continue``."""
    if payload is NO_BODY or setting is False:
        return False
    if setting is True:
        return payload.length != 0
    return payload.length is None or payload.length >= setting


# -- per-request settings ----------------------------------------------------------


def check_max_redirects(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"max_redirects must be an int >= 0, not {value!r}")


def check_max_body(value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UsageError(f"max_body must be an int >= 0 or None, not {value!r}")


def check_expect(value: object) -> None:
    if not isinstance(value, int) or (not isinstance(value, bool) and value < 0):
        raise UsageError(f"expect_continue must be a bool or a size >= 0, not {value!r}")


# -- headers and params --------------------------------------------------------------


def header_pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    """Validated header pairs from any of the forms ``headers=`` takes."""
    if headers is None:
        return []
    if isinstance(headers, Headers):
        return validate_header_items(headers.items())
    if isinstance(headers, Mapping):
        return validate_header_items(list(headers.items()))
    return validate_header_items(list(headers))


def merge_headers(
    defaults: list[tuple[str, str]], headers: HeaderInput, content_type: str | None
) -> list[tuple[str, str]]:
    """The client's headers, minus those the request names again, then the request's.

    With nothing to add, ``defaults`` itself is returned: the client relies on
    that identity to reuse the route of a request that has only its headers.
    """
    if headers is None and content_type is None:
        return defaults
    given = header_pairs(headers)
    names = {name.lower() for name, _ in given}
    merged = [item for item in defaults if item[0].lower() not in names]
    if content_type is not None and "content-type" not in names:
        merged.append(("Content-Type", content_type))
    merged.extend(given)
    return merged


def merge_params(defaults: list[tuple[str, str]], params: QueryInput) -> list[tuple[str, str]]:
    """The client's params, minus those the request names again, then the request's."""
    given = query_pairs(params)
    if not defaults:
        return given
    names = {name for name, _ in given}
    return [item for item in defaults if item[0] not in names] + given


# -- credentials -------------------------------------------------------------------


def coerce_auth(auth: object) -> Auth:
    """An :class:`~asyncnet.Auth` from ``auth=``: itself, or Basic from ``(user, password)``."""
    if isinstance(auth, Auth):
        return auth
    if (
        isinstance(auth, tuple)
        and len(auth) == 2
        and isinstance(auth[0], str)
        and isinstance(auth[1], str)
    ):
        return BasicAuth(auth[0], auth[1])
    raise UsageError(
        f"auth must be (user, password) or an asyncnet.Auth, not {type(auth).__name__}"
    )


class Credentials:
    """Which auth a request uses: its own, the client's, or (``trust_env``) netrc's."""

    __slots__ = ("_auth", "_netrc", "_trust_env")

    def __init__(self, auth: Auth | None, trust_env: bool) -> None:
        self._auth = auth
        self._trust_env = trust_env
        self._netrc: netrc.netrc | None = None

    def for_request(
        self, auth: AuthInput, headers: list[tuple[str, str]], url: URL
    ) -> Auth | None:
        """Which auth applies: the request's, else the client's unless an
        ``Authorization`` header was given, else (``trust_env``) netrc's."""
        if auth is not None:
            return coerce_auth(auth)
        if self._auth is None and not self._trust_env:
            return None
        if any(name.lower() == "authorization" for name, _ in headers):
            return None
        if self._auth is not None:
            return self._auth
        if url.username is not None:
            return None  # the URL's own credentials win over netrc's
        return self._netrc_auth(url.host)

    def _netrc_auth(self, host: str) -> Auth | None:
        """Basic credentials for ``host`` from ``$NETRC`` or ``~/.netrc``, read once."""
        if self._netrc is None:
            path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
            try:
                self._netrc = netrc.netrc(path)
            except FileNotFoundError:
                return None
            except (OSError, netrc.NetrcParseError) as exc:
                raise UsageError(f"cannot read netrc file {path}: {exc}") from exc
        entry = self._netrc.authenticators(host)
        if entry is None:
            return None
        login, _, password = entry
        return BasicAuth(login, password or "")


def with_credentials(
    headers: list[tuple[str, str]],
    method: str,
    url: URL,
    origin: tuple[str, str, int],
    auth: Auth | None,
    answer: str | None,
    store: CookieStore | None,
    request_cookie: str | None,
) -> list[tuple[str, str]]:
    """``headers`` plus this hop's ``Authorization`` and ``Cookie``.

    Credentials of the request (its auth, its ``cookies=``) go to the
    first request's origin only, like an ``Authorization`` header does
    (see :mod:`asyncnet._http._redirects`); the jar's cookies go wherever
    its rules allow. A caller's own ``Cookie`` header is kept, joined with
    the others into one field (RFC 6265 §5.4).
    """
    same_origin = url.origin == origin
    extra: list[tuple[str, str]] = []
    drop: set[str] = set()
    if auth is not None and same_origin:
        value = answer if answer is not None else auth.auth_header(method, url)
        if value is not None:
            drop.add("authorization")
            extra.append(("Authorization", value))
    jar_cookie = None if store is None else store.cookie_header(url)
    if jar_cookie is not None or (request_cookie is not None and same_origin):
        parts = [value for name, value in headers if name.lower() == "cookie"]
        if request_cookie is not None and same_origin:
            parts.append(request_cookie)
        if jar_cookie is not None:
            parts.append(jar_cookie)
        drop.add("cookie")
        extra.append(("Cookie", "; ".join(parts)))
    if not extra:
        return headers
    return [item for item in headers if item[0].lower() not in drop] + extra


# -- the route ---------------------------------------------------------------------


def route_for(
    method: str,
    url: URL,
    headers: list[tuple[str, str]],
    payload: Payload,
    ssl: SSLSetting,
    proxies: ProxySelector | None,
) -> Route:
    """Where a request goes (origin, TLS, proxy) and the head it starts with."""
    ssl_context = ssl_context_for(url.scheme, ssl)
    proxy = proxies.select(url) if proxies is not None else None
    key = (url.scheme, url.host, url.port, ssl_context, proxy)
    if url.username is not None and not any(n.lower() == "authorization" for n, _ in headers):
        headers = [*headers, ("Authorization", basic_auth(url.username, url.password or ""))]
    forward = proxy is not None and url.scheme == "http" and not proxy.is_socks
    if forward:
        assert proxy is not None
        authorization = proxy.authorization
        if authorization is not None:
            headers = [
                *(item for item in headers if item[0].lower() != "proxy-authorization"),
                ("Proxy-Authorization", authorization),
            ]
    length = payload.length
    if length is None and payload.stream is None and method in METHODS_WITH_CONTENT:
        length = 0
    chunked = payload.stream is not None and length is None
    head = serialize_head(method, url, headers, length, chunked=chunked)
    if forward:
        # Absolute form for the proxy (RFC 9112 section 3.2.2): the same
        # head with the origin in front of the target.
        origin_form = len(method) + 1 + len(url.target)
        absolute = f"{method} {url.scheme}://{url.host_header}{url.target}"
        head = absolute.encode("ascii") + head[origin_form:]
    return key, head, chunked, asks_to_close(headers)
