"""One request on one pooled connection: the step under the client's request loop.

The client's loop (redirects, 401 answers, cookies) hands each hop here,
prepared (:mod:`asyncnet._http._prepare`): method, URL, header fields and
payload. The dispatcher finds its route (kept in a small cache when the
headers are the client's own), takes an idle connection from the pool or
opens one through the connector, lets the request hooks see the request,
writes it (waiting for ``100 Continue`` when asked), waits for the response
head, and returns the :class:`~asyncnet.Response` whose body is read from
the same connection, after the response hooks have seen it. A reused
keep-alive connection that fails before a byte of response arrived was stale
(the server had closed it): the request is sent once more, on another
connection, when its method is idempotent and its body can be sent again.
"""

from __future__ import annotations

import functools
from typing import Final

from .._errors import ReadError, RemoteProtocolError, WriteError
from ._connector import Connector, open_connection
from ._headers import Headers
from ._hooks import Hook, Request, call_hooks
from ._models import Limits, Response, Timeout
from ._parser import ParserLimits
from ._pool import ConnectionPool
from ._prepare import Payload, Route, header_pairs, route_for
from ._proxy import ProxySelector
from ._rules import IDEMPOTENT_METHODS
from ._tls import SSLSetting
from ._trace import ConnectionReused, TracedConnection, Tracer, origin_name
from ._url import URL

__all__ = ["Dispatcher"]

# Routes (pool key, serialized head) kept per client (see Dispatcher.send);
# small, and emptied when full, so memory stays bounded whatever the URLs.
_ROUTE_CACHE_SIZE: Final = 256


class Dispatcher:
    """Sends a client's prepared requests on its pool, one connection each.

    It owns what a client's requests share below the request loop: the pool
    (made on first use, inside the running loop), the connector, the route
    cache and the counters :meth:`~asyncnet.HTTPClient.statistics` reports.
    """

    def __init__(
        self,
        *,
        connector: Connector,
        limits: Limits,
        default_headers: list[tuple[str, str]],
        ssl: SSLSetting,
        proxies: ProxySelector | None,
        tracer: Tracer | None,
        parser_limits: ParserLimits | None,
        body_buffer: int,
        decode_content: bool,
        continue_timeout: float,
        request_hooks: tuple[Hook, ...],
        response_hooks: tuple[Hook, ...],
    ) -> None:
        self._connector = connector
        self._limits = limits
        # The client's own header list: a request that carries exactly this
        # object (not a copy) has no headers of its own, so its route may be kept.
        self._headers = default_headers
        self._ssl = ssl
        self._proxies = proxies
        self._tracer = tracer
        self._parser_limits = parser_limits
        self._body_buffer = body_buffer
        self._decode_content = decode_content
        self._continue_timeout = continue_timeout
        self._request_hooks = request_hooks
        self._response_hooks = response_hooks
        #: The keep-alive pool, made by the first request.
        self.pool: ConnectionPool | None = None
        #: Routes by (method, URL, body length, body is bytes); see send.
        self.routes: dict[tuple[str, URL, int | None, bool], Route] = {}
        #: Requests written, and those of them on a reused connection.
        self.requests_sent = 0
        self.requests_reused = 0

    async def aclose(self) -> None:
        """Close every connection of the pool, then the connector."""
        if self.pool is not None:
            await self.pool.aclose()
        await self._connector.aclose()

    async def send(
        self,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        payload: Payload,
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
        pool = self.pool
        if pool is None:
            pool = self.pool = ConnectionPool(self._limits)
        if expect:
            headers = [*headers, ("Expect", "100-continue")]
        request_hooks = self._request_hooks
        route: Route | None
        if request_hooks:
            route = await self._hooked_route(method, url, headers, payload)
        elif headers is self._headers and url.username is None:
            # Requests with only the client's headers repeat the same route for
            # the same URL, method and kind of body: keep it (the headers are
            # validated, URL and method are immutable, and these four decide
            # every part of the route). A URL with userinfo is not kept: its
            # route holds the Authorization field built from the password.
            cache_key = (method, url, payload.length, payload.stream is None)
            route = self.routes.get(cache_key)
            if route is None:
                route = route_for(method, url, headers, payload, self._ssl, self._proxies)
                if len(self.routes) >= _ROUTE_CACHE_SIZE:
                    self.routes.clear()
                self.routes[cache_key] = route
        else:
            route = route_for(method, url, headers, payload, self._ssl, self._proxies)
        key, head, chunked, close = route

        # range, not a tuple: its iterator, alive while the request waits, is
        # not an object the cyclic garbage collector has to track.
        for attempt in range(2):
            if attempt and request_hooks:
                # A retry is a request of its own: the hooks see it too.
                key, head, chunked, close = await self._hooked_route(
                    method, url, headers, payload
                )
            conn = pool.take_idle(key)
            if conn is None:
                # The opener is passed, not kept in a local: a partial held
                # for the whole exchange is two more objects per request in
                # flight for the cyclic garbage collector to walk.
                conn = await pool.acquire(
                    key,
                    functools.partial(
                        open_connection,
                        self._connector,
                        url,
                        key[3],
                        key[4],
                        connect_timeout=timeouts.connect,
                        deadline=deadline,
                        tracer=self._tracer,
                        parser_limits=self._parser_limits,
                        body_buffer=self._body_buffer,
                    ),
                    pool_timeout=timeouts.pool,
                    deadline=deadline,
                )
            reused = conn.requests > 0
            self.requests_sent += 1
            if reused:
                self.requests_reused += 1
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
                None,  # history: the client fills it in
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
        self, method: str, url: URL, headers: list[tuple[str, str]], payload: Payload
    ) -> Route:
        """The route after the request hooks have seen (and maybe changed) the headers."""
        request = Request(method, url, Headers(headers), payload.data)
        await call_hooks(self._request_hooks, request)
        return route_for(
            method, url, header_pairs(request.headers), payload, self._ssl, self._proxies
        )
