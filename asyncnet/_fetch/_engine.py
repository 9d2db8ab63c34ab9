"""Fetch many URLs at once under limits, with one result (or one clear error) per URL.

:func:`fetch_all` and :func:`fetch_iter` run a fixed pool of ``concurrency``
worker tasks that pull URLs from the caller's iterable one at a time, so
memory does not grow with the number of URLs: 100,000 URLs cost 100,000
results in the returned list (and nothing at all with :func:`fetch_iter`),
never 100,000 tasks. The URLs may also come from an async iterable (lines
arriving on a pipe), pulled as workers free up. Bodies are kept in
:attr:`FetchResult.body`, or with ``sink=`` streamed to where the caller says
(a file, a hash) or counted and dropped, so memory does not grow with body
size either. Every failure of one URL (bad URL, refused connection,
timeout, malformed response, redirect loop) is caught into that URL's
:class:`FetchResult`; only cancellation and the caller's own errors (an
``on_result`` callback or the URL iterable raising) leave the call.

The life of one call::

    start workers -> [worker: next URL -> host slot -> request -> body: keep | sink
                       (-> retry)* -> emit]*
                  -> input exhausted: workers return -> close own client -> return
    deadline      -> cancel requests in flight, each emits a TotalTimeout result;
                     URLs not yet started emit TotalTimeout without a request;
                     an async source is read no further (a pipe may never end)
    cancellation  -> cancel every worker, await them, close own client, re-raise
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sized,
)
from dataclasses import dataclass
from http.cookiejar import CookieJar

from .._errors import TotalTimeout, UsageError
from .._http._client import HTTPClient
from .._http._models import Limits, Timeout
from .._http._prepare import AuthInput
from .._http._rules import IDEMPOTENT_METHODS
from ._limits import HostSlots, connection_budget, host_key
from ._results import FetchResult, SinkFactory, read_capped, read_into
from ._retry import retry_wait

__all__ = ["DEFAULT_TIMEOUT", "fetch_all", "fetch_iter"]

#: Per-request timeouts used when the caller gives none: long enough for a
#: slow but working server, short enough that one dead host cannot hold a
#: worker for minutes.
DEFAULT_TIMEOUT = Timeout(connect=10.0, read=30.0, write=30.0, pool=30.0, total=None)

#: URLs as a plain iterable, or an async one whose items arrive over time.
URLSource = Iterable[str] | AsyncIterable[str]


OnResult = Callable[[FetchResult], Awaitable[None] | None]

#: How the engine hands a result over: ``None`` when that is done, or an
#: awaitable to wait on first (a consumer's queue is full, an ``on_result``
#: coroutine runs). Returning rather than awaiting spares two coroutines per
#: URL when nothing has to wait (see _Engine._worker).
Emit = Callable[[FetchResult], Awaitable[None] | None]


@dataclass(slots=True)
class _Work:
    """One URL being fetched: what a deadline needs to report it."""

    index: int
    url: str
    #: The ``per_host`` group (see :func:`host_key`), "" without ``per_host``.
    key: str
    started: float
    attempts: int = 0


def _failure(work: _Work, error: Exception) -> FetchResult:
    """The result of a URL that got no response: ``error`` says why."""
    return FetchResult(
        url=work.url,
        ok=False,
        status=None,
        reason="",
        headers=None,
        body=b"",
        elapsed=time.perf_counter() - work.started,
        attempts=work.attempts,
        error=error,
        index=work.index,
    )


class _Engine:
    """The worker pool behind :func:`fetch_all` and :func:`fetch_iter`."""

    def __init__(
        self,
        urls: URLSource,
        emit: Emit,
        *,
        client: HTTPClient | None,
        concurrency: int,
        per_host: int | None,
        timeout: Timeout | float | None,
        deadline: float | None,
        retries: int,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        max_body: int | None,
        retry_backoff: float,
        retry_after_max: float,
        sink: SinkFactory | None = None,
        size_hint: int | None = None,
        body: bytes | None = None,
        auth: AuthInput = None,
        cookies: bool | CookieJar = False,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        if per_host is not None and per_host < 1:
            raise UsageError(f"per_host must be at least 1 or None, not {per_host}")
        if retries < 0:
            raise UsageError(f"retries must be 0 or more, not {retries}")
        if deadline is not None and not deadline >= 0:  # NaN fails too
            raise UsageError(f"deadline must be 0 or more seconds, not {deadline}")
        if not 0 <= retry_backoff < math.inf:
            raise UsageError(f"retry_backoff must be a finite number >= 0, not {retry_backoff}")
        if not retry_after_max >= 0:
            raise UsageError(f"retry_after_max must be 0 or more seconds, not {retry_after_max}")
        if max_body is not None and max_body < 0:
            raise UsageError(f"max_body must be 0 or more, not {max_body}")
        if client is not None and cookies is not False:
            raise UsageError("cookies= configures the client fetch creates: with client=, "
                             "give that client cookies=")
        if body is not None and not isinstance(body, bytes):
            raise UsageError(f"body must be bytes or None, not {type(body).__name__}")
        self._body = body
        self._auth = auth
        self._cookies = cookies
        # Exactly one of the two is set: the caller's iterator, plain or async.
        self._items: Iterator[str] | None = None
        self._async_items: AsyncIterator[str] | None = None
        if isinstance(urls, AsyncIterable):
            self._async_items = aiter(urls)
        else:
            self._items = iter(urls)
        # An async iterator must not be advanced by two workers at once.
        self._pull_lock = asyncio.Lock()
        self._pulled = 0
        # No more workers than URLs when the input says how many there are.
        self._workers = concurrency if size_hint is None else max(1, min(concurrency, size_hint))
        self._emit = emit
        self._client = client
        self._concurrency = concurrency
        self._hosts = HostSlots(per_host) if per_host is not None else None
        self._per_host = per_host
        self._timeout = Timeout.coerce(timeout)
        self._deadline = deadline
        self._retries = retries
        self._method = method.upper()
        self._headers = headers
        self._max_body = max_body
        self._sink = sink
        self._retry_backoff = retry_backoff
        self._retry_after_max = retry_after_max
        self._expired = False
        self._closing = False
        # Workers currently inside a request (not emitting): the deadline
        # cancels exactly these.
        self._fetching: dict[asyncio.Task[None], _Work] = {}
        # Workers waiting on an async source for its next URL: the deadline
        # cancels these too.
        self._pulling: set[asyncio.Task[None]] = set()
        self._exhausted = False
        # URLs set aside because their host was at its per_host limit; bounded
        # so that a host-skewed input cannot make this grow with the input.
        self._parked: dict[str, collections.deque[tuple[int, str]]] = {}
        self._parked_count = 0
        self._park_limit = 4 * concurrency

    # -- the pool ---------------------------------------------------------------

    async def run(self) -> None:
        """Fetch every URL, emitting each result; returns when all are emitted."""
        client = self._client
        owned = client is None
        if client is None:
            client = HTTPClient(
                cookies=self._cookies,
                timeout=self._timeout,
                limits=Limits(
                    # Not the concurrency: requests in flight are bounded by
                    # the workers, connections kept open by descriptors.
                    max_connections=connection_budget(self._concurrency),
                    max_per_host=min(self._per_host or self._concurrency, self._concurrency),
                ),
            )
        self._client = client
        loop = asyncio.get_running_loop()
        workers = [
            asyncio.create_task(self._worker(), name=f"asyncnet-fetch-{i}")
            for i in range(self._workers)
        ]
        timer = (
            loop.call_later(self._deadline, self._expire) if self._deadline is not None else None
        )
        try:
            await asyncio.gather(*workers)
        finally:
            if timer is not None:
                timer.cancel()
            self._closing = True
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if owned:
                await client.aclose()

    async def _pull(self) -> tuple[int, str] | None:
        """The next URL (with its input position), or ``None`` once the input is exhausted.

        An async source is awaited under a lock: a worker waiting here for
        the next line of a pipe holds no request slot, and results already
        fetched keep flowing out meanwhile.
        """
        if self._items is not None:
            return self._pull_now()
        if self._exhausted:
            return None
        try:
            url = await self._pull_async()
        except StopAsyncIteration:
            self._exhausted = True
            return None
        index = self._pulled
        self._pulled += 1
        return index, url

    def _pull_now(self) -> tuple[int, str] | None:
        """:meth:`_pull` for a plain iterable: no coroutine, nothing to wait for."""
        if self._exhausted:
            return None
        assert self._items is not None
        try:
            url = next(self._items)
        except StopIteration:
            self._exhausted = True
            return None
        index = self._pulled
        self._pulled += 1
        return index, url

    async def _pull_async(self) -> str:
        """The next URL of the async source; StopAsyncIteration at its end or after the deadline.

        A pipe may stay open for ever without sending another line, so the
        deadline cancels the workers waiting here too; after it, the source
        is not read any further (its next items may never come).
        """
        assert self._async_items is not None
        task = asyncio.current_task()
        assert task is not None
        self._pulling.add(task)
        try:
            # Workers queued here after the end see StopAsyncIteration again.
            async with self._pull_lock:
                if self._deadline_passed():
                    raise StopAsyncIteration
                return await anext(self._async_items)
        except asyncio.CancelledError:
            # Only our own deadline's cancellation is absorbed, as in _worker.
            if self._closing or not self._deadline_passed() or task.uncancel() > 0:
                raise
            raise StopAsyncIteration from None
        finally:
            self._pulling.discard(task)

    async def _pick(self, last_key: str | None) -> tuple[int, str] | None:
        """Choose the next URL for a worker that just finished one on ``last_key``.

        With ``per_host``, a URL whose host is already at its limit is parked
        (up to a bound) instead of making a worker wait while other hosts have
        room; the workers that free a slot on that host take its parked URLs
        first. Without ``per_host`` this is just the next URL in input order.
        """
        if self._hosts is None:
            return await self._pull()
        if last_key is not None:
            parked = self._parked.get(last_key)
            if parked:
                return self._unpark(last_key)
        while (item := await self._pull()) is not None:
            key = host_key(item[1])
            if self._expired or not self._hosts.full(key) or self._parked_count >= self._park_limit:
                return item
            self._parked.setdefault(key, collections.deque()).append(item)
            self._parked_count += 1
        # Input exhausted: whatever is parked still has to be fetched.
        for key in self._parked:
            return self._unpark(key)
        return None

    def _unpark(self, key: str) -> tuple[int, str]:
        queue = self._parked[key]
        item = queue.popleft()
        if not queue:
            del self._parked[key]
        self._parked_count -= 1
        return item

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        # The common case (a plain list of URLs, no per_host, no retries)
        # takes its next URL and sends its one attempt without the coroutines
        # _pick and _fetch add for parking and retrying: about 9,000
        # instructions less per URL (callgrind, fetch_all of 100 B bodies).
        plain = self._hosts is None and self._items is not None
        once = self._hosts is None and (
            self._retries == 0 or self._method not in IDEMPOTENT_METHODS
        )
        last_key: str | None = None
        while (item := self._pull_now() if plain else await self._pick(last_key)) is not None:
            index, url = item
            key = host_key(url) if self._hosts is not None else ""
            last_key = key
            work = _Work(index, url, key, time.perf_counter())
            if self._expired:
                result = self._deadline_result(work)
            else:
                self._fetching[task] = work
                try:
                    if once:
                        work.attempts = 1
                        result = await self._attempt(work)
                    else:
                        result = await self._fetch(work)
                except asyncio.CancelledError:
                    # Only our own deadline's cancellation is absorbed; the
                    # caller's (closing, or a second pending cancel) goes on.
                    if self._closing or not self._deadline_passed() or task.uncancel() > 0:
                        raise
                    result = self._deadline_result(work)
                finally:
                    self._fetching.pop(task, None)
            pending = self._emit(result)
            if pending is not None:
                await pending

    def _deadline_passed(self) -> bool:
        """Whether the deadline fired; a call, so checkers do not assume it unchanged by awaits."""
        return self._expired

    def _expire(self) -> None:
        self._expired = True
        for task in [*self._fetching, *self._pulling]:
            task.cancel()

    def _deadline_result(self, work: _Work) -> FetchResult:
        error = TotalTimeout(f"the fetch deadline of {self._deadline} s passed first")
        return _failure(work, error)

    # -- one URL ----------------------------------------------------------------

    async def _fetch(self, work: _Work) -> FetchResult:
        key = work.key
        retryable = self._method in IDEMPOTENT_METHODS
        while True:
            work.attempts += 1
            if self._hosts is not None:
                await self._hosts.acquire(key)
            try:
                result = await self._attempt(work)
            finally:
                if self._hosts is not None:
                    self._hosts.release(key)
            if not retryable or work.attempts > self._retries:
                return result
            wait = retry_wait(result, work.attempts, self._retry_backoff, self._retry_after_max)
            if wait is None:
                return result
            await asyncio.sleep(wait)

    async def _attempt(self, work: _Work) -> FetchResult:
        assert self._client is not None
        truncated = False
        try:
            if self._max_body is None and self._sink is None:
                response = await self._client.request(
                    self._method, work.url, headers=self._headers, timeout=self._timeout,
                    body=self._body, auth=self._auth,
                )
                body = response.content
                size = len(body)
            else:
                async with self._client.stream(
                    self._method, work.url, headers=self._headers, timeout=self._timeout,
                    body=self._body, auth=self._auth,
                ) as response:
                    if self._sink is None:
                        assert self._max_body is not None
                        body, truncated = await read_capped(response, self._max_body)
                        size = len(body)
                    else:
                        target = self._sink(work.url, response)
                        size, truncated = await read_into(response, target, self._max_body)
                        body = b""
        except Exception as exc:
            return _failure(work, exc)
        status = response.status
        # Positional: keywords cost about 5,000 instructions more per call.
        return FetchResult(
            work.url,  # url
            status < 400,  # ok
            status,
            response.reason,
            response.headers,
            body,
            time.perf_counter() - work.started,  # elapsed
            work.attempts,
            None,  # error
            truncated,
            work.index,
            str(response.url),  # final_url
            size,
        )

def _call(on_result: OnResult | None, result: FetchResult) -> Awaitable[None] | None:
    """Give ``result`` to ``on_result``; return what it returned if that must be awaited."""
    if on_result is not None:
        ret = on_result(result)
        if inspect.isawaitable(ret):
            return ret
    return None


async def fetch_all(
    urls: URLSource,
    *,
    client: HTTPClient | None = None,
    concurrency: int = 10,
    per_host: int | None = None,
    timeout: Timeout | float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    deadline: float | None = None,
    retries: int = 0,
    method: str = "GET",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    max_body: int | None = None,
    on_result: OnResult | None = None,
    retry_backoff: float = 0.1,
    retry_after_max: float = 30.0,
    sink: SinkFactory | None = None,
    body: bytes | None = None,
    auth: AuthInput = None,
    cookies: bool | CookieJar = False,
) -> list[FetchResult]:
    """Fetch every URL with at most ``concurrency`` requests in flight; one result each, in order.

    No single URL's failure raises: it lands in that URL's
    :attr:`FetchResult.error`. ``per_host`` caps requests in flight per
    scheme/host/port; ``deadline`` (seconds) bounds the whole call, after
    which unfinished URLs get :class:`~asyncnet.TotalTimeout` and nothing is
    left running. ``retries`` re-sends idempotent requests after connection
    errors, timeouts, 429, 502, 503 and 504, waiting with exponential backoff
    from ``retry_backoff`` seconds (with jitter) or as ``Retry-After`` asks, up
    to ``retry_after_max`` seconds. ``max_body`` keeps at most that many bytes
    of each body. ``sink`` (see :class:`~asyncnet.BodySink`) streams each
    body elsewhere instead of keeping it, so memory does not depend on body
    sizes: ``sink=lambda url, response: None`` only counts the bytes
    (:attr:`FetchResult.size`). ``urls`` may be an async iterable; its URLs
    are pulled as workers free up. ``on_result`` (a function or coroutine function) sees each
    result as it lands. ``body`` (bytes) is sent with every request, ``auth``
    as :meth:`HTTPClient.request <asyncnet.HTTPClient.request>` takes it, and
    ``cookies`` (``True`` or a :class:`http.cookiejar.CookieJar`) gives the
    client it creates a jar shared by every URL, each redirect hop included.
    Without ``client``, one :class:`~asyncnet.HTTPClient` sized for the limits
    is created and closed; ``timeout`` applies to every request either way.
    """
    results: list[FetchResult | None] = []

    # Reserve each URL's slot as it is pulled, so the list keeps input order.
    def take(items: Iterable[str]) -> Iterator[str]:
        for url in items:
            results.append(None)
            yield url

    async def take_async(items: AsyncIterable[str]) -> AsyncIterator[str]:
        async for url in items:
            results.append(None)
            yield url

    source = take_async(urls) if isinstance(urls, AsyncIterable) else take(urls)

    def emit(result: FetchResult) -> Awaitable[None] | None:
        results[result.index] = result
        return _call(on_result, result)

    engine = _Engine(
        source,
        emit,
        size_hint=len(urls) if isinstance(urls, Sized) else None,
        client=client,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        deadline=deadline,
        retries=retries,
        method=method,
        headers=headers,
        max_body=max_body,
        retry_backoff=retry_backoff,
        retry_after_max=retry_after_max,
        sink=sink,
        body=body,
        auth=auth,
        cookies=cookies,
    )
    try:
        await engine.run()
    finally:
        # Finalize our wrapper now, not when the loop shuts down.
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
    done: list[FetchResult] = []
    for result in results:
        assert result is not None
        done.append(result)
    return done


async def fetch_iter(
    urls: URLSource,
    *,
    client: HTTPClient | None = None,
    concurrency: int = 10,
    per_host: int | None = None,
    timeout: Timeout | float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    deadline: float | None = None,
    retries: int = 0,
    method: str = "GET",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    max_body: int | None = None,
    on_result: OnResult | None = None,
    retry_backoff: float = 0.1,
    retry_after_max: float = 30.0,
    sink: SinkFactory | None = None,
    body: bytes | None = None,
    auth: AuthInput = None,
    cookies: bool | CookieJar = False,
) -> AsyncGenerator[FetchResult, None]:
    """Like :func:`fetch_all`, but yield each result as it finishes and keep none.

    Results come in completion order (:attr:`FetchResult.index` gives the
    input position). A slow consumer slows the fetching down instead of
    letting results pile up. Stopping early is safe when the iterator is
    closed: use ``async with contextlib.aclosing(fetch_iter(...)) as it``;
    closing it cancels what is in flight and closes the client it created.
    """
    # None marks the end; the bound makes a slow consumer slow the workers down.
    queue: asyncio.Queue[FetchResult | None] = asyncio.Queue(maxsize=concurrency)

    def emit(result: FetchResult) -> Awaitable[None] | None:
        pending = _call(on_result, result)
        if pending is None and not queue.full():
            queue.put_nowait(result)
            return None
        return emit_later(pending, result)

    async def emit_later(pending: Awaitable[None] | None, result: FetchResult) -> None:
        if pending is not None:
            await pending
        await queue.put(result)

    engine = _Engine(
        urls,
        emit,
        size_hint=len(urls) if isinstance(urls, Sized) else None,
        client=client,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        deadline=deadline,
        retries=retries,
        method=method,
        headers=headers,
        max_body=max_body,
        retry_backoff=retry_backoff,
        retry_after_max=retry_after_max,
        sink=sink,
        body=body,
        auth=auth,
        cookies=cookies,
    )

    async def run() -> None:
        try:
            await engine.run()
        finally:
            # Wake a consumer waiting on an empty queue. When the queue is
            # full the consumer is not waiting: it drains the queue, then sees
            # the runner done.
            if not queue.full():
                queue.put_nowait(None)

    runner = asyncio.create_task(run(), name="asyncnet-fetch-iter")
    try:
        while not (runner.done() and queue.empty()):
            result = await queue.get()
            if result is None:
                break
            yield result
        await runner
    finally:
        if not runner.done():
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
