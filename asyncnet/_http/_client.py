"""HTTPClient: the public HTTP/1.1 client on the connection pool.

A request's life: validate and serialize it (sans-IO), take a connection from
the pool (opening one under the connect timeout when a slot is free), write
the head and small bodies in one ``transport.write``, wait for the response
head, and hand back a :class:`~asyncnet.Response` whose body is read from the
same connection. Redirects loop here; everything below the connection's
``data_received`` is the parser's business.
"""

from __future__ import annotations

import asyncio
import functools
import json as _json
import netrc
import os
import ssl as _ssl
from collections.abc import Iterable, Mapping
from http.cookiejar import CookieJar
from types import TracebackType
from typing import Any, Final, TypeAlias, TypedDict, Unpack

from .._connect import (
    DEFAULT_DNS_CACHE_TTL,
    DEFAULT_MAX_DNS_LOOKUPS,
    PLAIN_TEXT_MESSAGE,
    Resolver,
    is_plain_text_reply,
)
from .._deadline import wait_end
from .._errors import (
    AsyncNetError,
    BodyNotReplayable,
    BodyTooLarge,
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    ReadError,
    RemoteProtocolError,
    TooManyRedirects,
    TotalTimeout,
    UsageError,
    WriteError,
)
from .._lifetime import caller_site, warn_unclosed
from .._text import describe_error
from .._version import __version__
from ._auth import Auth, BasicAuth
from ._connection import DEFAULT_BODY_BUFFER, HTTPConnection
from ._connector import Connector, connector_for
from ._cookies import CookieStore, cookie_pairs, new_jar
from ._decoders import ACCEPT_ENCODING
from ._headers import Headers
from ._hooks import EventHooks, Request, call_hooks, check_event_hooks
from ._models import ClientStatistics, Limits, Response, Timeout
from ._multipart import FilesInput, MultipartEncoder
from ._parser import ParserLimits
from ._pool import ConnectionPool
from ._proxy import Proxy, proxy_selector
from ._query import QueryInput, encode_form, query_pairs, with_params
from ._redirects import next_request
from ._request import (
    BodyValue,
    RequestBody,
    asks_to_close,
    basic_auth,
    serialize_head,
    validate_header_items,
    validate_method,
)
from ._rules import IDEMPOTENT_METHODS, METHODS_WITH_CONTENT
from ._tls import ssl_context_for
from ._trace import (
    ConnectionCreated,
    ConnectionReused,
    TraceCallback,
    TracedConnection,
    Tracer,
    connection_factory,
    debug_tracer,
    origin_name,
)
from ._url import URL, parse_url

__all__ = ["HTTPClient", "RequestOptions"]

# A request's pool key (scheme, host, port, TLS context, proxy), its serialized
# head, whether its body goes chunked, and whether its own headers say
# ``Connection: close``.
_Key: TypeAlias = tuple[str, str, int, "_ssl.SSLContext | None", Proxy | None]
_Route: TypeAlias = tuple[_Key, bytes, bool, bool]
HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None
AuthInput: TypeAlias = Auth | tuple[str, str] | None


class RequestOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`HTTPClient.request`, for the method helpers.

    ``headers``, ``body``, ``json``, ``data``, ``files``, ``params``,
    ``auth``, ``cookies``, ``timeout``, ``follow_redirects``,
    ``max_redirects``, ``max_body`` and ``expect_continue``, all optional; a
    wrapper can type its own ``**options`` as ``Unpack[RequestOptions]`` and
    pass them on.
    """

    headers: HeaderInput
    body: BodyValue
    json: Any
    data: QueryInput
    files: FilesInput | None
    params: QueryInput
    auth: AuthInput
    cookies: Mapping[str, str] | None
    timeout: Timeout | float | None
    follow_redirects: bool | None
    max_redirects: int | None
    max_body: int | None
    expect_continue: bool | int | None

# A redirect's body is read and dropped so that its connection can be reused;
# past this many bytes closing the connection is cheaper than reading on.
_MAX_REDIRECT_DRAIN: Final = 64 * 1024
# How long a head sent with "Expect: 100-continue" waits for the server's
# verdict before the body follows anyway: curl's default, long enough for a
# server on another continent, short enough that one ignoring Expect costs little.
_CONTINUE_TIMEOUT: Final = 1.0
# Routes (pool key, serialized head) kept per client (see _send_one); small,
# and emptied when full, so memory stays bounded whatever the URLs.
_ROUTE_CACHE_SIZE: Final = 256
_DEFAULT_TIMEOUT: Final = Timeout()
_DEFAULT_LIMITS: Final = Limits()


class _Payload:
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


_NO_BODY: Final = _Payload()


def _payload(
    body: BodyValue, json: Any, data: QueryInput = None, files: FilesInput | None = None
) -> tuple[_Payload, str | None]:
    """Normalize ``body=``/``json=``/``data=``/``files=`` into a payload and its Content-Type."""
    if files is not None:
        if body is not None or json is not None:
            raise UsageError("files= goes with data= only, not with body= or json=")
        form = MultipartEncoder(data, files)
        return _Payload(stream=form.body()), form.content_type
    if data is not None:
        if body is not None or json is not None:
            raise UsageError("pass only one of body=, json= and data=")
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            raise UsageError(
                "data= takes a mapping or pairs for a form; pass text or bytes as body="
            )
        return _Payload(encode_form(data)), "application/x-www-form-urlencoded"
    if json is not None:
        if body is not None:
            raise UsageError("pass either body= or json=, not both")
        encoded = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return _Payload(encoded), "application/json"
    if body is None:
        return _NO_BODY, None
    if isinstance(body, bytes):
        return _Payload(body), None
    if isinstance(body, (bytearray, memoryview)):
        return _Payload(bytes(body)), None
    if isinstance(body, str):
        return _Payload(body.encode("utf-8")), "text/plain; charset=utf-8"
    return _Payload(stream=RequestBody.from_value(body)), None


def _check_max_redirects(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"max_redirects must be an int >= 0, not {value!r}")


def _check_max_body(value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UsageError(f"max_body must be an int >= 0 or None, not {value!r}")


def _check_expect(value: object) -> None:
    if not isinstance(value, int) or (not isinstance(value, bool) and value < 0):
        raise UsageError(f"expect_continue must be a bool or a size >= 0, not {value!r}")


def _coerce_auth(auth: object) -> Auth:
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


def _wants_continue(setting: bool | int, payload: _Payload) -> bool:
    """Whether a request with ``payload`` goes with ``Expect: 100-continue``."""
    if payload is _NO_BODY or setting is False:
        return False
    if setting is True:
        return payload.length != 0
    return payload.length is None or payload.length >= setting


def _header_list(headers: HeaderInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Headers):
        return validate_header_items(headers.items())
    if isinstance(headers, Mapping):
        return validate_header_items(list(headers.items()))
    return validate_header_items(list(headers))


class _StreamContext:
    """``async with client.stream(...) as response``: the body is read inside the block."""

    __slots__ = ("_client", "_method", "_options", "_response", "_url")

    def __init__(
        self, client: HTTPClient, method: str, url: str | URL, options: dict[str, Any]
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._options = options
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._client._send(
            self._method, self._url, read_whole=False, **self._options
        )
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            await self._response.aclose()


class HTTPClient:
    """An HTTP/1.1 client with a keep-alive pool, timeouts, redirects and TLS.

    Use it as ``async with HTTPClient() as client:`` so that its connections
    are closed at the end. ``timeout`` and ``follow_redirects`` can also be
    given per request.

    :param timeout: a :class:`~asyncnet.Timeout`, a number of seconds for
        connect, read, write and pool alike, or ``None`` for no limits.
    :param limits: pool bounds, see :class:`~asyncnet.Limits`.
    :param max_redirects: redirects followed before
        :class:`~asyncnet.TooManyRedirects`.
    :param follow_redirects: whether redirects are followed by default.
    :param ssl: ``None``/``True`` for the shared verifying context, an
        :class:`ssl.SSLContext` to use as given, ``False`` for encryption
        without verification (test servers only).
    :param headers: headers sent with every request (a mapping or pairs);
        per-request headers of the same name replace them.
    :param decode_content: undo ``Content-Encoding`` in ``read()`` and
        ``aiter_bytes()`` and advertise what can be undone in ``Accept-Encoding``.
    :param happy_eyeballs_delay: seconds before the next address is tried
        while one is still connecting; ``None`` tries addresses one by one.
    :param parser_limits: limits of the response parser
        (:class:`~asyncnet.ParserLimits`).
    :param body_buffer: response body bytes a connection buffers for a slow
        consumer before it pauses reading from the socket.
    :param dns_cache_ttl: seconds a host name's addresses are reused before it
        is looked up again (like aiohttp's ``ttl_dns_cache``); ``None`` or
        ``0`` looks names up for every new connection. IP literals are never
        looked up.
    :param max_dns_lookups: host name lookups running at once. Each runs in
        a thread of the loop's default executor and holds it until the system
        resolver answers, however long the connect timeout: this bounds how
        many threads names that never resolve can take.
    :param params: query parameters added to every request's URL (a mapping
        or pairs); a request's own ``params`` replace those of the same name.
    :param auth: credentials for every request: ``(user, password)`` for
        Basic, or an :class:`~asyncnet.Auth` such as
        :class:`~asyncnet.DigestAuth`. Sent only to the origin of each
        request's URL, never after a redirect to another one.
    :param cookies: ``False`` (default) keeps no cookies; ``True`` keeps them
        in a new :class:`http.cookiejar.CookieJar`; a jar of your own is used
        as given. Cookies are stored and sent on every redirect hop.
    :param max_body: largest response body, in bytes after content decoding,
        that a response will read; more raises :class:`~asyncnet.BodyTooLarge`.
    :param expect_continue: send ``Expect: 100-continue`` and the body only
        after the server's ``100 Continue``: ``True`` for every body, a number
        for bodies at least that large (or of unknown size), ``False`` never.
    :param continue_timeout: seconds to wait for ``100 Continue`` before the
        body is sent anyway.
    :param trust_env: read credentials for hosts from ``$NETRC`` or
        ``~/.netrc`` when a request has none, and the proxies from
        ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``
        (upper or lower case, read once, now). Off by default: a library's
        behaviour should not change with its host's environment. With
        ``proxy=`` too, ``proxy`` wins and ``NO_PROXY`` still applies.
    :param proxy: a proxy URL for every request (``http://``, ``https://``,
        ``socks5://`` or ``socks5h://``, with optional ``user:password@``);
        see :ref:`proxies`.
    :param uds: path of a Unix-domain socket every connection goes to; the
        ``Host`` header and the request target still come from the URL.
    :param transport: how connections are obtained, e.g.
        :class:`asyncnet.testing.MockTransport` for tests; ``None`` for TCP
        (or ``uds``).
    :param event_hooks: ``{"request": [...], "response": [...]}``: functions
        or coroutine functions called with every request sent and every
        response head received, redirect hops and retries included.
    :param trace: called with a :class:`asyncnet.tracing.TraceEvent` for
        each step of each request (DNS, connect, TLS, tunnel, head sent,
        head received, body complete, release or close).
    :param local_addr: ``(ip, port)`` to bind outgoing sockets to (port 0:
        any); only addresses of that IP's family are connected to.
    """

    def __init__(
        self,
        *,
        timeout: Timeout | float | None = _DEFAULT_TIMEOUT,
        limits: Limits = _DEFAULT_LIMITS,
        max_redirects: int = 10,
        follow_redirects: bool = True,
        ssl: _ssl.SSLContext | bool | None = None,
        headers: HeaderInput = None,
        decode_content: bool = True,
        happy_eyeballs_delay: float | None = 0.25,
        parser_limits: ParserLimits | None = None,
        body_buffer: int = DEFAULT_BODY_BUFFER,
        dns_cache_ttl: float | None = DEFAULT_DNS_CACHE_TTL,
        max_dns_lookups: int = DEFAULT_MAX_DNS_LOOKUPS,
        params: QueryInput = None,
        auth: AuthInput = None,
        cookies: bool | CookieJar = False,
        max_body: int | None = None,
        expect_continue: bool | int = False,
        continue_timeout: float = _CONTINUE_TIMEOUT,
        trust_env: bool = False,
        proxy: str | None = None,
        uds: str | None = None,
        transport: Connector | None = None,
        event_hooks: EventHooks | None = None,
        trace: TraceCallback | None = None,
        local_addr: tuple[str, int] | None = None,
    ) -> None:
        _check_max_redirects(max_redirects)
        if dns_cache_ttl is not None and (
            isinstance(dns_cache_ttl, bool)
            or not isinstance(dns_cache_ttl, (int, float))
            or not dns_cache_ttl >= 0
            or dns_cache_ttl == float("inf")
        ):
            raise UsageError(f"dns_cache_ttl must be a finite number >= 0 or None, "
                             f"not {dns_cache_ttl!r}")
        if isinstance(max_dns_lookups, bool) or not isinstance(max_dns_lookups, int) or (
            max_dns_lookups < 1
        ):
            raise UsageError(f"max_dns_lookups must be an int >= 1, not {max_dns_lookups!r}")
        if not (ssl is None or isinstance(ssl, (bool, _ssl.SSLContext))):
            raise UsageError(f"ssl must be an ssl.SSLContext, a bool or None, not {ssl!r}")
        if not isinstance(body_buffer, int) or body_buffer < 1:
            raise UsageError("body_buffer must be an int >= 1")
        self._timeout = Timeout.coerce(timeout)
        self._limits = limits
        self._max_redirects = max_redirects
        self._follow_redirects = follow_redirects
        self._ssl = ssl
        self._decode_content = decode_content
        self._happy_eyeballs_delay = happy_eyeballs_delay
        self._parser_limits = parser_limits
        self._body_buffer = body_buffer
        self._resolver = Resolver(ttl=dns_cache_ttl, max_lookups=max_dns_lookups)
        if uds is not None and proxy is not None:
            raise UsageError("pass either uds= or proxy=, not both: the socket is the destination")
        # With a Unix socket every request goes to it: the environment's
        # proxies cannot apply.
        self._proxies = None if uds is not None else proxy_selector(proxy, trust_env, os.environ)
        self._connector = connector_for(
            transport, uds, local_addr, self._resolver, happy_eyeballs_delay, ssl, parser_limits
        )
        if trace is not None and not callable(trace):
            raise UsageError(f"trace must be callable, not {trace!r}")
        self._tracer = Tracer(trace) if trace is not None else None
        self._request_hooks, self._response_hooks = check_event_hooks(event_hooks)
        _check_max_body(max_body)
        _check_expect(expect_continue)
        if isinstance(continue_timeout, bool) or not isinstance(continue_timeout, (int, float)) or (
            not continue_timeout >= 0
        ):
            raise UsageError(f"continue_timeout must be a number >= 0, not {continue_timeout!r}")
        self._params = query_pairs(params)
        self._auth = None if auth is None else _coerce_auth(auth)
        self._cookies: CookieStore | None
        if cookies is True:
            self._cookies = CookieStore(new_jar())
        elif cookies is False:
            self._cookies = None
        else:
            self._cookies = CookieStore(cookies)
        self._max_body = max_body
        self._expect_continue = expect_continue
        self._continue_timeout = continue_timeout
        self._trust_env = trust_env
        self._netrc: netrc.netrc | None = None
        defaults = [("User-Agent", f"asyncnet/{__version__}"), ("Accept", "*/*")]
        if decode_content:
            defaults.append(("Accept-Encoding", ACCEPT_ENCODING))
        given = _header_list(headers)
        given_names = {name.lower() for name, _ in given}
        self._headers: list[tuple[str, str]] = [
            item for item in defaults if item[0].lower() not in given_names
        ] + given
        self._pool: ConnectionPool | None = None
        self._closed = False
        self._requests_sent = 0
        self._requests_reused = 0
        self._routes: dict[tuple[str, URL, int | None, bool], _Route] = {}
        # The caller's line, for the ResourceWarning of a client never closed.
        self._created_at = caller_site()

    def __del__(self) -> None:
        # Only a client that opened something can leak it; one never used
        # holds nothing (its pool is made on the first request).
        if not getattr(self, "_closed", True) and self._pool is not None:
            warn_unclosed("asyncnet.HTTPClient", self._created_at, self)

    # -- lifetime -----------------------------------------------------------------

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; requests in flight fail, later ones raise ConnectionClosed."""
        self._closed = True
        if self._pool is not None:
            await self._pool.aclose()
        await self._connector.aclose()
        await self._resolver.aclose()

    @property
    def cookies(self) -> CookieJar | None:
        """The client's cookie jar, or ``None`` when cookies are off."""
        return None if self._cookies is None else self._cookies.jar

    def statistics(self) -> ClientStatistics:
        """Counters and the pool's current state."""
        pool = self._pool
        # After aclose() every connection has been closed; a TLS transport
        # may take a few more loop turns to report it, but none is open.
        live = pool if not self._closed else None
        return ClientStatistics(
            connections_open=live.connections_open if live else 0,
            connections_idle=live.connections_idle if live else 0,
            pool_waiters=live.waiters if live else 0,
            connections_opened=pool.connections_opened if pool else 0,
            requests_sent=self._requests_sent,
            requests_reused=self._requests_reused,
            read_pauses=pool.read_pauses if pool else 0,
            peak_body_buffered=pool.peak_buffered if pool else 0,
        )

    # -- public requests ----------------------------------------------------------
    #
    # Each method calls _send itself: one coroutine fewer per request than
    # delegating to request().

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: HeaderInput = None,
        body: BodyValue = None,
        json: Any = None,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109 - per-phase timeouts
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
        data: QueryInput = None,
        files: FilesInput | None = None,
        params: QueryInput = None,
        auth: AuthInput = None,
        cookies: Mapping[str, str] | None = None,
        max_body: int | None = None,
        expect_continue: bool | int | None = None,
    ) -> Response:
        """Send a request and return the response with its body already read.

        ``timeout=None`` means the client's timeout; pass ``Timeout(None, None,
        None, None)`` to lift every limit for one request. ``follow_redirects``,
        ``max_redirects``, ``max_body`` and ``expect_continue`` likewise default
        to the client's settings. ``data`` sends a form
        (``application/x-www-form-urlencoded``), or with ``files`` a streamed
        ``multipart/form-data`` body; ``params`` extend the URL's query;
        ``auth`` replaces the client's for this request; ``cookies`` (a
        mapping) are sent with this request, to its own origin only.
        """
        return await self._send(
            method, url, headers, body, json, timeout, follow_redirects, max_redirects, True,
            data=data, files=files, params=params, auth=auth, cookies=cookies,
            max_body=max_body, expect_continue=expect_continue,
        )

    def stream(
        self,
        method: str,
        url: str | URL,
        **options: Unpack[RequestOptions],
    ) -> _StreamContext:
        """``async with client.stream(...) as response``: the body is read only when asked.

        ``options`` are those of :meth:`request`.
        """
        return _StreamContext(self, method, url, dict(options))

    async def get(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a GET request; ``options`` are those of :meth:`request`."""
        return await self._send("GET", url, **options)

    async def head(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a HEAD request; ``options`` are those of :meth:`request`."""
        return await self._send("HEAD", url, **options)

    async def options(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send an OPTIONS request; ``options`` are those of :meth:`request`."""
        return await self._send("OPTIONS", url, **options)

    async def post(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a POST request; ``options`` are those of :meth:`request`."""
        return await self._send("POST", url, **options)

    async def put(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a PUT request; ``options`` are those of :meth:`request`."""
        return await self._send("PUT", url, **options)

    async def patch(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a PATCH request; ``options`` are those of :meth:`request`."""
        return await self._send("PATCH", url, **options)

    async def delete(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a DELETE request; ``options`` are those of :meth:`request`."""
        return await self._send("DELETE", url, **options)

    # -- the request loop -----------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str | URL,
        headers: HeaderInput = None,
        body: BodyValue = None,
        json: Any = None,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
        read_whole: bool = True,
        *,
        data: QueryInput = None,
        files: FilesInput | None = None,
        params: QueryInput = None,
        auth: AuthInput = None,
        cookies: Mapping[str, str] | None = None,
        max_body: int | None = None,
        expect_continue: bool | int | None = None,
    ) -> Response:
        """Send a request, following redirects; with ``read_whole`` also read the final body.

        Per hop, credentials (``auth``, per-request ``cookies``) go only to the
        first request's origin; the cookie jar's rules decide for the jar's
        cookies; Set-Cookie of every response is stored before the next hop.
        A 401 is answered once, when the auth object can answer it.
        """
        if self._closed:
            raise ConnectionClosed("the client is closed")
        if max_redirects is None:
            max_redirects = self._max_redirects
        else:
            _check_max_redirects(max_redirects)
        method = validate_method(method)
        target = parse_url(url)
        if params is not None or self._params:
            target = with_params(target, self._merge_params(params))
        timeouts = self._timeout if timeout is None else Timeout.coerce(timeout)
        # Without a total deadline the loop is not needed: on Python 3.11
        # get_running_loop() costs a getpid() system call.
        deadline = (
            None
            if timeouts.total is None
            else asyncio.get_running_loop().time() + timeouts.total
        )
        if body is None and json is None and data is None and files is None:
            payload = _NO_BODY
            header_list = (
                self._headers
                if headers is None
                else self._merge_headers(headers, content_type=None)
            )
        else:
            payload, content_type = _payload(body, json, data, files)
            header_list = self._merge_headers(headers, content_type)
        if max_body is None:
            max_body = self._max_body
        else:
            _check_max_body(max_body)
        if expect_continue is None:
            expect_continue = self._expect_continue
        else:
            _check_expect(expect_continue)
        expect = _wants_continue(expect_continue, payload)
        auth_obj = self._auth_for(auth, header_list, target)
        request_cookie = None if cookies is None else cookie_pairs(cookies)
        store = self._cookies
        origin = target.origin
        # The Authorization that answers a 401, for the one retry it allows.
        answer: str | None = None
        answered = False
        follow = self._follow_redirects if follow_redirects is None else follow_redirects
        history: list[Response] = []
        while True:
            hop_headers = header_list
            if auth_obj is not None or store is not None or request_cookie is not None:
                hop_headers = self._hop_headers(
                    header_list, method, target, origin, auth_obj, answer, store, request_cookie
                )
            answer = None
            response = await self._send_one(
                method, target, hop_headers, payload, timeouts, deadline, read_whole, expect
            )
            if store is not None:
                set_cookie = response.headers.get_all("set-cookie")
                if set_cookie:
                    store.extract(target, set_cookie)
            if (
                response.status == 401
                and auth_obj is not None
                and not answered
                and target.origin == origin
            ):
                answered = True
                challenges = response.headers.get_all("www-authenticate")
                answer = auth_obj.answer_challenge(method, target, challenges)
                if answer is not None:
                    try:
                        if payload is not _NO_BODY and not payload.replayable:
                            raise BodyNotReplayable(
                                f"the 401 challenge from {target.host_header} needs the "
                                f"{method} body again, but it was a one-shot stream; pass "
                                "bytes or a seekable file to allow it"
                            )
                        await self._drain(response)
                    except BaseException:
                        await response.aclose()
                        raise
                    continue
            if not follow or not response.is_redirect:
                break
            if len(history) >= max_redirects:
                await response.aclose()
                raise TooManyRedirects(
                    f"more than {max_redirects} redirects (last: {target})",
                    history=[*history, response],
                )
            try:
                hop = next_request(
                    method,
                    target,
                    header_list,
                    response.status,
                    response.headers.get("location"),
                    has_body=payload is not _NO_BODY,
                    body_replayable=payload.replayable,
                )
                if hop is None:  # pragma: no cover - is_redirect said otherwise
                    break
                method, target, header_list = hop.method, hop.url, hop.headers
                if not hop.keep_body:
                    payload = _NO_BODY
                await self._drain(response)
            except BaseException:
                await response.aclose()
                raise
            history.append(response)
        response.history = history
        if max_body is not None:
            response._max_body = max_body
            try:
                response.check_declared_length(max_body)
            except BodyTooLarge:
                await response.aclose()
                raise
        if read_whole:
            try:
                await response.read()
            except BaseException:
                await response.aclose()
                raise
        return response

    def _merge_params(self, params: QueryInput) -> list[tuple[str, str]]:
        """The client's params, minus those the request names again, then the request's."""
        given = query_pairs(params)
        if not self._params:
            return given
        names = {name for name, _ in given}
        return [item for item in self._params if item[0] not in names] + given

    def _auth_for(self, auth: AuthInput, headers: list[tuple[str, str]], url: URL) -> Auth | None:
        """Which auth applies: the request's, else the client's unless an
        ``Authorization`` header was given, else (``trust_env``) netrc's."""
        if auth is not None:
            return _coerce_auth(auth)
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

    def _hop_headers(
        self,
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

    def _merge_headers(
        self, headers: HeaderInput, content_type: str | None
    ) -> list[tuple[str, str]]:
        if headers is None and content_type is None:
            return self._headers
        given = _header_list(headers)
        names = {name.lower() for name, _ in given}
        merged = [item for item in self._headers if item[0].lower() not in names]
        if content_type is not None and "content-type" not in names:
            merged.append(("Content-Type", content_type))
        merged.extend(given)
        return merged

    async def _drain(self, response: Response) -> None:
        """Read and drop a redirect's body (raw, undecoded) so its connection can be reused."""
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > _MAX_REDIRECT_DRAIN:
                break
        await response.aclose()

    async def _send_one(
        self,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        payload: _Payload,
        timeouts: Timeout,
        deadline: float | None,
        read_whole: bool = False,
        expect: bool = False,
    ) -> Response:
        """One request on one connection, retried once on a stale keep-alive connection.

        ``read_whole``: the response's body will be read with ``read()`` (unless
        it is a redirect to follow), which lets a long one be received straight
        into the object ``read()`` returns.
        """
        pool = self._pool
        if pool is None:
            pool = self._pool = ConnectionPool(self._limits)
        if expect:
            headers = [*headers, ("Expect", "100-continue")]
        request_hooks = self._request_hooks
        route: _Route | None
        if request_hooks:
            route = await self._hooked_route(method, url, headers, payload)
        elif headers is self._headers and url.username is None:
            # Requests with only the client's headers repeat the same route for
            # the same URL, method and kind of body: keep it (the headers are
            # validated, URL and method are immutable, and these four decide
            # every part of the route). A URL with userinfo is not kept: its
            # route holds the Authorization field built from the password.
            cache_key = (method, url, payload.length, payload.stream is None)
            route = self._routes.get(cache_key)
            if route is None:
                route = self._route(method, url, headers, payload)
                if len(self._routes) >= _ROUTE_CACHE_SIZE:
                    self._routes.clear()
                self._routes[cache_key] = route
        else:
            route = self._route(method, url, headers, payload)
        key, head, chunked, close = route

        for attempt in (0, 1):
            if attempt and request_hooks:
                # A retry is a request of its own: the hooks see it too.
                key, head, chunked, close = await self._hooked_route(
                    method, url, headers, payload
                )
            conn = pool.take_idle(key)
            if conn is None:
                conn = await pool.acquire(
                    key,
                    functools.partial(self._open, url, key[3], key[4], timeouts, deadline),
                    pool_timeout=timeouts.pool,
                    deadline=deadline,
                )
            reused = conn.requests > 0
            self._requests_sent += 1
            if reused:
                self._requests_reused += 1
                if isinstance(conn, TracedConnection):
                    conn.tracer.emit(
                        ConnectionReused(Tracer.now(), conn.connection_id, origin_name(url, key[4]))
                    )
            try:
                conn.begin(
                    method, timeouts.read, timeouts.write, deadline, read_whole, close_after=close
                )
                if not expect:
                    if payload.stream is None:
                        conn.write_head(head, payload.data)
                    else:
                        conn.write_head(head, body_follows=True)
                        await conn.send_body(payload.stream, chunked=chunked)
                else:
                    conn.write_head(head, body_follows=True)
                    if await conn.wait_continue(self._continue_timeout):
                        if payload.stream is not None:
                            await conn.send_body(payload.stream, chunked=chunked)
                        else:
                            conn.write_body(payload.data or b"")
                response_head = await conn.receive_head()
            except (ReadError, WriteError, RemoteProtocolError):
                stale = not conn.received_any
                conn.release()
                if (
                    attempt == 0
                    and reused
                    and stale
                    and method in IDEMPOTENT_METHODS
                    and payload.replayable
                ):
                    continue
                raise
            except BaseException:
                conn.release()
                raise
            # By position on purpose: this runs once per request, and passing
            # the last two by keyword costs about 1,500 instructions (callgrind),
            # 0.8% of a small keep-alive request.
            response = Response(
                response_head.status,
                response_head.reason,
                response_head.http_version,
                response_head.headers,
                url,
                method,
                conn,  # source: the body is read from this connection
                None,  # history: _send fills it in
                # decode_content: without a Content-Encoding field there is nothing to decode.
                self._decode_content and response_head.content_encoded,
            )
            if self._response_hooks:
                try:
                    await call_hooks(self._response_hooks, response)
                except BaseException:
                    await response.aclose()
                    raise
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _hooked_route(
        self, method: str, url: URL, headers: list[tuple[str, str]], payload: _Payload
    ) -> _Route:
        """The route after the request hooks have seen (and maybe changed) the headers."""
        request = Request(method, url, Headers(headers), payload.data)
        await call_hooks(self._request_hooks, request)
        return self._route(method, url, _header_list(request.headers), payload)

    def _route(
        self, method: str, url: URL, headers: list[tuple[str, str]], payload: _Payload
    ) -> _Route:
        """Where a request goes (origin, TLS, proxy) and the head it starts with."""
        ssl_context = ssl_context_for(url.scheme, self._ssl)
        proxy = self._proxies.select(url) if self._proxies is not None else None
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

    async def _open(
        self,
        url: URL,
        ssl_context: _ssl.SSLContext | None,
        proxy: Proxy | None,
        timeouts: Timeout,
        deadline: float | None,
    ) -> HTTPConnection:
        """Open a connection through the connector, under the connect timeout.

        Errors are translated here, once, whatever connector opened it.
        """
        end = wait_end(timeouts.connect, deadline, asyncio.get_running_loop().time)
        when, is_total = (None, False) if end is None else end
        tracer = self._tracer or debug_tracer()
        factory = connection_factory(tracer, self._parser_limits, self._body_buffer)
        cm = asyncio.timeout_at(when)
        try:
            async with cm:
                # SNI and the host name check always use the URL's host.
                conn = await self._connector.connect(url, ssl_context, proxy, factory, tracer)
        except AsyncNetError:
            raise  # already explained by the connector (a proxy's refusal...)
        except TimeoutError as exc:
            if cm.expired():
                if is_total:
                    raise TotalTimeout(
                        f"the request's total deadline passed while connecting to {url.host_header}"
                    ) from exc
                raise ConnectTimeout(
                    f"connecting to {url.host_header} took longer than {timeouts.connect} seconds"
                ) from exc
            reason = describe_error(exc)
            raise ConnectError(f"cannot connect to {url.host_header}: {reason}") from exc
        except _ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"TLS certificate of {url.host_header} failed verification: {exc.verify_message}"
            ) from exc
        except (OSError, _ssl.SSLError) as exc:
            reason = describe_error(exc)
            if is_plain_text_reply(exc):
                # OpenSSL's "wrong version number": the port speaks plain text.
                reason = f"{PLAIN_TEXT_MESSAGE}; for plain HTTP use http:// instead of https://"
            if ssl_context is not None and not str(exc):
                # Only a TLS handshake fails with a bare ConnectionResetError().
                reason = f"TLS handshake failed: {reason}"
            raise ConnectError(f"cannot connect to {url.host_header}: {reason}") from exc
        if isinstance(conn, TracedConnection):
            conn.tracer.emit(
                ConnectionCreated(Tracer.now(), conn.connection_id, origin_name(url, proxy))
            )
        return conn
