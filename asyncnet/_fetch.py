"""Fetch many URLs at once under limits, with one result (or one clear error) per URL.

:func:`fetch_all` and :func:`fetch_iter` run a fixed pool of ``concurrency``
worker tasks that pull URLs from the caller's iterable one at a time, so
memory does not grow with the number of URLs: 100,000 URLs cost 100,000
results in the returned list (and nothing at all with :func:`fetch_iter`),
never 100,000 tasks. Every failure of one URL (bad URL, refused connection,
timeout, malformed response, redirect loop) is caught into that URL's
:class:`FetchResult`; only cancellation and the caller's own errors (an
``on_result`` callback or the URL iterable raising) leave the call.

The life of one call::

    start workers -> [worker: next URL -> host slot -> request (-> retry)* -> emit]*
                  -> input exhausted: workers return -> close own client -> return
    deadline      -> cancel requests in flight, each emits a TotalTimeout result;
                     URLs not yet started emit TotalTimeout without a request
    cancellation  -> cancel every worker, await them, close own client, re-raise
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import inspect
import random
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sized,
)
from dataclasses import dataclass, field

from ._errors import InvalidURL, TotalTimeout, TransportError, UsageError
from ._errors import TimeoutError as AsyncNetTimeoutError
from ._http._client import HTTPClient
from ._http._headers import Headers
from ._http._models import Limits, Response, Timeout
from ._http._rules import IDEMPOTENT_METHODS
from ._http._url import parse_url

__all__ = ["DEFAULT_TIMEOUT", "FetchResult", "fetch_all", "fetch_iter"]

#: Per-request timeouts used when the caller gives none: long enough for a
#: slow but working server, short enough that one dead host cannot hold a
#: worker for minutes.
DEFAULT_TIMEOUT = Timeout(connect=10.0, read=30.0, write=30.0, pool=30.0, total=None)

# Statuses that mean "try again later" rather than "this is wrong".
_RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Backoff doubles from this base up to _BACKOFF_MAX seconds.
_BACKOFF_MAX = 10.0


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What happened to one URL: its response, or the error that stopped it.

    ``ok`` is true for a final status below 400 (after redirects) with no
    error; a 4xx or 5xx answer has ``ok`` false, its ``status`` set and
    ``error`` ``None``, because the server did answer.
    """

    #: The URL exactly as it was given.
    url: str
    #: True when a final response with status < 400 arrived and no error occurred.
    ok: bool
    #: The final status code, or ``None`` when no response arrived.
    status: int | None
    #: The final reason phrase ("" when no response arrived).
    reason: str
    #: The final response headers, or ``None`` when no response arrived.
    headers: Headers | None
    #: The body (content-decoded), possibly cut at ``max_body`` bytes.
    body: bytes
    #: Seconds from the first attempt's start to the end, retries included.
    elapsed: float
    #: Requests made for this URL (0 if the deadline passed before it started).
    attempts: int
    #: The exception that ended the last attempt, or ``None``.
    error: Exception | None
    #: True when the body was longer than ``max_body`` and the rest was discarded.
    truncated: bool = False
    #: Position of the URL in the input (useful with :func:`fetch_iter`).
    index: int = 0
    #: The URL of the final response after redirects, or ``None``.
    final_url: str | None = field(default=None)


OnResult = Callable[[FetchResult], Awaitable[None] | None]


def _host_key(url: str) -> str:
    """Group URLs by origin (scheme, host, port) for ``per_host``; unparsable ones stand alone.

    The client's own parser decides, so a URL with its default port spelled
    out falls in the same group as one without.
    """
    try:
        scheme, host, port = parse_url(str(url)).origin
    except InvalidURL:
        return str(url)
    return f"{scheme}://{host}:{port}"


def _retry_after(value: str | None) -> float | None:
    """Parse a Retry-After value (seconds or an HTTP date) into seconds from now."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int, base: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    delay = min(_BACKOFF_MAX, base * 2.0 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


class _HostSlots:
    """A semaphore per host key, dropped again when no request uses it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    async def acquire(self, key: str) -> None:
        entry = self._slots.get(key)
        if entry is None:
            entry = self._slots[key] = (asyncio.Semaphore(self._limit), [0])
        entry[1][0] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._drop(key)
            raise

    def full(self, key: str) -> bool:
        """True when every slot of ``key`` is taken (a new request would wait)."""
        entry = self._slots.get(key)
        return entry is not None and entry[0].locked()

    def release(self, key: str) -> None:
        self._slots[key][0].release()
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._slots[key]
        entry[1][0] -= 1
        if entry[1][0] == 0:
            del self._slots[key]


@dataclass(slots=True)
class _Work:
    """One URL being fetched: what a deadline needs to report it."""

    index: int
    url: str
    #: The ``per_host`` group (see :func:`_host_key`), "" without ``per_host``.
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
        urls: Iterable[str],
        emit: Callable[[FetchResult], Awaitable[None]],
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
        size_hint: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        if per_host is not None and per_host < 1:
            raise UsageError(f"per_host must be at least 1 or None, not {per_host}")
        if retries < 0:
            raise UsageError(f"retries must be 0 or more, not {retries}")
        if deadline is not None and deadline < 0:
            raise UsageError(f"deadline must be 0 or more seconds, not {deadline}")
        if max_body is not None and max_body < 0:
            raise UsageError(f"max_body must be 0 or more, not {max_body}")
        self._items: Iterator[tuple[int, str]] = enumerate(urls)
        # No more workers than URLs when the input says how many there are.
        self._workers = concurrency if size_hint is None else max(1, min(concurrency, size_hint))
        self._emit = emit
        self._client = client
        self._concurrency = concurrency
        self._hosts = _HostSlots(per_host) if per_host is not None else None
        self._per_host = per_host
        self._timeout = Timeout.coerce(timeout)
        self._deadline = deadline
        self._retries = retries
        self._method = method.upper()
        self._headers = headers
        self._max_body = max_body
        self._retry_backoff = retry_backoff
        self._retry_after_max = retry_after_max
        self._expired = False
        self._closing = False
        # Workers currently inside a request (not emitting): the deadline
        # cancels exactly these.
        self._fetching: dict[asyncio.Task[None], _Work] = {}
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
                timeout=self._timeout,
                limits=Limits(
                    max_connections=self._concurrency,
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

    def _pull(self) -> tuple[int, str] | None:
        """The next URL from the caller's iterable, or ``None`` once it is exhausted."""
        if self._exhausted:
            return None
        try:
            return next(self._items)
        except StopIteration:
            self._exhausted = True
            return None

    def _pick(self, last_key: str | None) -> tuple[int, str] | None:
        """Choose the next URL for a worker that just finished one on ``last_key``.

        With ``per_host``, a URL whose host is already at its limit is parked
        (up to a bound) instead of making a worker wait while other hosts have
        room; the workers that free a slot on that host take its parked URLs
        first. Without ``per_host`` this is just the next URL in input order.
        """
        if self._hosts is None:
            return self._pull()
        if last_key is not None:
            parked = self._parked.get(last_key)
            if parked:
                return self._unpark(last_key)
        while (item := self._pull()) is not None:
            key = _host_key(item[1])
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
        last_key: str | None = None
        while (item := self._pick(last_key)) is not None:
            index, url = item
            key = _host_key(url) if self._hosts is not None else ""
            last_key = key
            work = _Work(index, url, key, time.perf_counter())
            if self._expired:
                result = self._deadline_result(work)
            else:
                self._fetching[task] = work
                try:
                    result = await self._fetch(work)
                except asyncio.CancelledError:
                    # Only our own deadline's cancellation is absorbed; the
                    # caller's (closing, or a second pending cancel) goes on.
                    if self._closing or not self._deadline_passed() or task.uncancel() > 0:
                        raise
                    result = self._deadline_result(work)
                finally:
                    self._fetching.pop(task, None)
            await self._emit(result)

    def _deadline_passed(self) -> bool:
        """Whether the deadline fired; a call, so checkers do not assume it unchanged by awaits."""
        return self._expired

    def _expire(self) -> None:
        self._expired = True
        for task in list(self._fetching):
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
            wait = self._retry_wait(result, work.attempts)
            if wait is None:
                return result
            await asyncio.sleep(wait)

    def _retry_wait(self, result: FetchResult, attempt: int) -> float | None:
        """Seconds to wait before retrying ``result``, or ``None`` not to retry."""
        if result.error is not None:
            if isinstance(result.error, (TransportError, AsyncNetTimeoutError)):
                return _backoff(attempt, self._retry_backoff)
            return None
        if result.status in _RETRY_STATUSES:
            assert result.headers is not None
            asked = _retry_after(result.headers.get("Retry-After"))
            if asked is not None:
                return min(asked, self._retry_after_max)
            return _backoff(attempt, self._retry_backoff)
        return None

    async def _attempt(self, work: _Work) -> FetchResult:
        assert self._client is not None
        truncated = False
        try:
            if self._max_body is None:
                response = await self._client.request(
                    self._method, work.url, headers=self._headers, timeout=self._timeout
                )
                body = response.content
            else:
                async with self._client.stream(
                    self._method, work.url, headers=self._headers, timeout=self._timeout
                ) as response:
                    body, truncated = await self._read_capped(response, self._max_body)
        except Exception as exc:
            return _failure(work, exc)
        return FetchResult(
            url=work.url,
            ok=response.status < 400,
            status=response.status,
            reason=response.reason,
            headers=response.headers,
            body=body,
            elapsed=time.perf_counter() - work.started,
            attempts=work.attempts,
            error=None,
            truncated=truncated,
            index=work.index,
            final_url=str(response.url),
        )

    @staticmethod
    async def _read_capped(response: Response, limit: int) -> tuple[bytes, bool]:
        """Keep at most ``limit`` body bytes; stop reading (and drop the rest) past it."""
        kept = bytearray()
        chunks = response.aiter_bytes()
        try:
            async for chunk in chunks:
                room = limit - len(kept)
                if len(chunk) > room:
                    kept += chunk[:room]
                    return bytes(kept), True
                kept += chunk
            return bytes(kept), False
        finally:
            # Leaving early must finalize the iterator now, not whenever the
            # garbage collector gets to it.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()


async def _call(on_result: OnResult | None, result: FetchResult) -> None:
    if on_result is not None:
        ret = on_result(result)
        if inspect.isawaitable(ret):
            await ret


async def fetch_all(
    urls: Iterable[str],
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
    of each body. ``on_result`` (a function or coroutine function) sees each
    result as it lands. Without ``client``, one :class:`~asyncnet.HTTPClient`
    sized for the limits is created and closed; ``timeout`` applies to every
    request either way.
    """
    results: list[FetchResult | None] = []

    def take(items: Iterable[str]) -> Iterator[str]:
        # Reserve each URL's slot as it is pulled, so the list keeps input order.
        for url in items:
            results.append(None)
            yield url

    async def emit(result: FetchResult) -> None:
        results[result.index] = result
        await _call(on_result, result)

    engine = _Engine(
        take(urls),
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
    )
    await engine.run()
    done: list[FetchResult] = []
    for result in results:
        assert result is not None
        done.append(result)
    return done


async def fetch_iter(
    urls: Iterable[str],
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

    async def emit(result: FetchResult) -> None:
        await _call(on_result, result)
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
