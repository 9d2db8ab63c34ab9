"""HTTPClient: the public HTTP/1.1 client on the connection pool.

A request's life: its arguments are checked and prepared
(:mod:`~asyncnet._http._prepare`: payload, merged headers and params,
credentials), then the request loop here sends one hop after another through
the :class:`~asyncnet._http._dispatch.Dispatcher` (which takes a connection
from the pool, writes the request and waits for the response head), storing
cookies, answering one 401 and following redirects, and hands back a
:class:`~asyncnet.Response` whose body is read from the same connection.
Everything below the connection's ``data_received`` is the parser's business.
"""

from __future__ import annotations

import asyncio
import os
import ssl as _ssl
from collections.abc import Mapping
from http.cookiejar import CookieJar
from types import TracebackType
from typing import Any, Final, TypedDict, Unpack

from .._connect import DEFAULT_DNS_CACHE_TTL, DEFAULT_MAX_DNS_LOOKUPS, Resolver
from .._errors import (
    BodyNotReplayable,
    BodyTooLarge,
    ConnectionClosed,
    TooManyRedirects,
    UsageError,
)
from .._lifetime import caller_site, warn_unclosed
from .._version import __version__
from ._connection import DEFAULT_BODY_BUFFER
from ._connector import Connector, connector_for
from ._cookies import CookieStore, cookie_pairs, new_jar
from ._decoders import ACCEPT_ENCODING
from ._dispatch import Dispatcher
from ._hooks import EventHooks, check_event_hooks
from ._models import ClientStatistics, Limits, Response, Timeout
from ._multipart import FilesInput
from ._parser import ParserLimits
from ._prepare import (
    NO_BODY,
    AuthInput,
    Credentials,
    HeaderInput,
    check_expect,
    check_max_body,
    check_max_redirects,
    coerce_auth,
    merge_headers,
    merge_params,
    payload_of,
    wants_continue,
    with_credentials,
)
from ._proxy import proxy_selector
from ._query import QueryInput, query_pairs, with_params
from ._redirects import next_request
from ._request import BodyValue, validate_method
from ._trace import TraceCallback, Tracer
from ._url import URL, parse_url

__all__ = ["HTTPClient", "RequestOptions"]


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
_DEFAULT_TIMEOUT: Final = Timeout()
_DEFAULT_LIMITS: Final = Limits()


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
        check_max_redirects(max_redirects)
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
        self._max_redirects = max_redirects
        self._follow_redirects = follow_redirects
        self._resolver = Resolver(ttl=dns_cache_ttl, max_lookups=max_dns_lookups)
        if uds is not None and proxy is not None:
            raise UsageError("pass either uds= or proxy=, not both: the socket is the destination")
        # With a Unix socket every request goes to it: the environment's
        # proxies cannot apply.
        proxies = None if uds is not None else proxy_selector(proxy, trust_env, os.environ)
        connector = connector_for(
            transport, uds, local_addr, self._resolver, happy_eyeballs_delay, ssl, parser_limits
        )
        if trace is not None and not callable(trace):
            raise UsageError(f"trace must be callable, not {trace!r}")
        request_hooks, response_hooks = check_event_hooks(event_hooks)
        check_max_body(max_body)
        check_expect(expect_continue)
        if isinstance(continue_timeout, bool) or not isinstance(continue_timeout, (int, float)) or (
            not continue_timeout >= 0
        ):
            raise UsageError(f"continue_timeout must be a number >= 0, not {continue_timeout!r}")
        self._params = query_pairs(params)
        self._cookies: CookieStore | None
        if cookies is True:
            self._cookies = CookieStore(new_jar())
        elif cookies is False:
            self._cookies = None
        else:
            self._cookies = CookieStore(cookies)
        self._max_body = max_body
        self._expect_continue = expect_continue
        self._credentials = Credentials(None if auth is None else coerce_auth(auth), trust_env)
        defaults = [("User-Agent", f"asyncnet/{__version__}"), ("Accept", "*/*")]
        if decode_content:
            defaults.append(("Accept-Encoding", ACCEPT_ENCODING))
        self._headers = merge_headers(defaults, headers, None)
        self._closed = False
        self._dispatcher = Dispatcher(
            connector=connector,
            limits=limits,
            default_headers=self._headers,
            ssl=ssl,
            proxies=proxies,
            tracer=Tracer(trace) if trace is not None else None,
            parser_limits=parser_limits,
            body_buffer=body_buffer,
            decode_content=decode_content,
            continue_timeout=continue_timeout,
            request_hooks=request_hooks,
            response_hooks=response_hooks,
        )
        # The caller's line, for the ResourceWarning of a client never closed.
        self._created_at = caller_site()

    def __del__(self) -> None:
        # Only a client that opened something can leak it; one never used
        # holds nothing (its pool is made on the first request).
        dispatcher = getattr(self, "_dispatcher", None)
        if (
            not getattr(self, "_closed", True)
            and dispatcher is not None
            and dispatcher.pool is not None
        ):
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
        await self._dispatcher.aclose()
        await self._resolver.aclose()

    @property
    def cookies(self) -> CookieJar | None:
        """The client's cookie jar, or ``None`` when cookies are off."""
        return None if self._cookies is None else self._cookies.jar

    def statistics(self) -> ClientStatistics:
        """Counters and the pool's current state."""
        dispatcher = self._dispatcher
        pool = dispatcher.pool
        # After aclose() every connection has been closed; a TLS transport
        # may take a few more loop turns to report it, but none is open.
        live = pool if not self._closed else None
        return ClientStatistics(
            connections_open=live.connections_open if live else 0,
            connections_idle=live.connections_idle if live else 0,
            pool_waiters=live.waiters if live else 0,
            connections_opened=pool.connections_opened if pool else 0,
            requests_sent=dispatcher.requests_sent,
            requests_reused=dispatcher.requests_reused,
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
            check_max_redirects(max_redirects)
        method = validate_method(method)
        target = parse_url(url)
        if params is not None or self._params:
            target = with_params(target, merge_params(self._params, params))
        timeouts = self._timeout if timeout is None else Timeout.coerce(timeout)
        # Without a total deadline the loop is not needed: on Python 3.11
        # get_running_loop() costs a getpid() system call.
        deadline = (
            None
            if timeouts.total is None
            else asyncio.get_running_loop().time() + timeouts.total
        )
        if body is None and json is None and data is None and files is None:
            payload = NO_BODY
            header_list = (
                self._headers
                if headers is None
                else merge_headers(self._headers, headers, None)
            )
        else:
            payload, content_type = payload_of(body, json, data, files)
            header_list = merge_headers(self._headers, headers, content_type)
        if max_body is None:
            max_body = self._max_body
        else:
            check_max_body(max_body)
        if expect_continue is None:
            expect_continue = self._expect_continue
        else:
            check_expect(expect_continue)
        expect = wants_continue(expect_continue, payload)
        auth_obj = self._credentials.for_request(auth, header_list, target)
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
                hop_headers = with_credentials(
                    header_list, method, target, origin, auth_obj, answer, store, request_cookie
                )
            answer = None
            response = await self._dispatcher.send(
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
                        if payload is not NO_BODY and not payload.replayable:
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
                    has_body=payload is not NO_BODY,
                    body_replayable=payload.replayable,
                )
                if hop is None:  # pragma: no cover - is_redirect said otherwise
                    break
                method, target, header_list = hop.method, hop.url, hop.headers
                if not hop.keep_body:
                    payload = NO_BODY
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

    async def _drain(self, response: Response) -> None:
        """Read and drop a redirect's body (raw, undecoded) so its connection can be reused."""
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > _MAX_REDIRECT_DRAIN:
                break
        await response.aclose()
