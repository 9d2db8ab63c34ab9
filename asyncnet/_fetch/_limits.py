"""How many connections ``fetch_all``'s own client keeps, and the ``per_host`` groups.

Requests in flight are bounded by the workers (``concurrency``); connections
kept open are a budget of file descriptors (:func:`connection_budget`).
``per_host`` groups URLs by origin (:func:`host_key`) and caps each group
with a semaphore that exists only while the group has requests
(:class:`HostSlots`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Final

from .._errors import InvalidURL
from .._http._url import URL, parse_url

__all__ = ["HostSlots", "connection_budget", "host_key"]

# Most connections the client ``fetch_all`` creates keeps open (in use and
# idle, across all hosts) when the descriptor limit allows more: an idle
# keep-alive connection holds about 7 KiB of Python objects (tracemalloc,
# 3,000 idle connections), so 10,000 cost about 70 MiB; a crawl that visits
# more hosts than this gains little from keeping the oldest ones open.
_FETCH_MAX_CONNECTIONS: Final = 10_000

if sys.platform == "win32":  # pragma: no cover

    def _descriptor_limit() -> int:
        # No RLIMIT_NOFILE: assume the 512 sockets select() handles there.
        return 512

else:
    import resource

    def _descriptor_limit() -> int:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return 2 * _FETCH_MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else soft


def connection_budget(concurrency: int) -> int:
    """Connections the client ``fetch_all`` creates may keep open: its ``max_connections``.

    Requests in flight are bounded by ``concurrency`` (the workers); the
    connections kept open are a separate budget, of file descriptors: half
    the process's soft ``RLIMIT_NOFILE`` (the other half stays for the
    caller's files and sockets), at most 10,000, and never fewer than
    ``concurrency``. Idle connections to the hosts visited last are kept up
    to it, so URLs spread over more hosts than ``concurrency`` reuse their
    connections instead of each opening a new one; past it the least
    recently used idle connection is closed.
    """
    return max(concurrency, min(_descriptor_limit() // 2, _FETCH_MAX_CONNECTIONS))


def host_key(url: object) -> str:
    """Group URLs by origin (scheme, host, port) for ``per_host``; unparsable ones stand alone.

    The client's own parser decides, so a URL with its default port spelled
    out falls in the same group as one without. Anything that is not a URL
    (the request will fail with :class:`~asyncnet.InvalidURL`) gets a key of
    its own, without calling its ``__str__``.
    """
    if not isinstance(url, (str, URL)):
        return f"<{type(url).__name__} at {id(url):#x}>"
    try:
        scheme, host, port = parse_url(url).origin
    except InvalidURL:
        return str(url)
    return f"{scheme}://{host}:{port}"


class HostSlots:
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
