"""Opening TCP sockets: name resolution and Happy Eyeballs that leak nothing when cancelled.

Resolution (:class:`Resolver`) costs as little as it can and is bounded:

* an IP literal never reaches the resolver or a thread: it is turned into
  its socket address right here (:func:`numeric_addrinfos`);
* a name is looked up once per TTL window (a small bounded cache, like
  aiohttp's ``ttl_dns_cache``), and concurrent lookups of one name share one
  ``getaddrinfo`` call, whatever the port;
* lookups run in the loop's default executor, at most ``max_lookups`` at
  once per resolver. A ``getaddrinfo`` call cannot be interrupted, so a slot
  stays taken until the thread really returns, not when its caller gives up
  (the caller's connect timeout bounds only the wait). A few names whose
  lookups hang therefore hold at most that many threads: the executor stays
  usable by everyone else, and this resolver's other names still resolve
  while fewer than ``max_lookups`` names hang. A lookup nobody waits for any
  more is dropped before it starts.

``loop.create_connection(happy_eyeballs_delay=...)`` races its attempts with
``asyncio.staggered.staggered_race``, which (in CPython 3.11, 3.12.1 and
3.13.0 at least) loses an already connected socket when the caller is
cancelled at the wrong moment: the peer keeps seeing an open connection and
a ResourceWarning follows at garbage collection. A client that promises
"cancel anywhere, leak nothing" cannot use it, so the race lives here,
with one rule: every socket this module creates is either returned to the
caller or closed, whatever happens (failure, losing the race, cancellation,
a timeout around it).

The caller then hands the socket to ``loop.create_connection(sock=...)`` for
the transport and TLS (see :func:`open_connection`).

Happy Eyeballs (RFC 8305 §5), as asyncio does it: addresses interleaved by
family, the next attempt started when the previous one fails or after
``delay`` seconds without an answer, the first connected socket wins and
every other attempt is cancelled and its socket closed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from ._errors import ConnectError, ConnectTimeout
from ._text import describe_error

__all__ = [
    "DEFAULT_DNS_CACHE_TTL",
    "DEFAULT_MAX_DNS_LOOKUPS",
    "PLAIN_TEXT_MESSAGE",
    "AddrInfo",
    "PlainTextReply",
    "Resolver",
    "interleave_addrinfos",
    "is_plain_text_reply",
    "numeric_addrinfos",
    "open_connection",
    "open_stream",
    "open_tcp_socket",
    "race_connect",
]

#: One ``getaddrinfo`` result: (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

_P = TypeVar("_P", bound=asyncio.BaseProtocol)

# What OpenSSL says when the first bytes back from the server are not a TLS
# record: "HTTP/1.1 400 ..." or "SSH-2.0-..." read as a record header gives
# a version of 0x5454 or 0x5348. 3.0 says "wrong version number", 3.2 and
# later "record layer failure"; a big first "length" gives "packet length
# too long", OpenSSL 1.0 said "unknown protocol".
_PLAIN_TEXT_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)
PLAIN_TEXT_MESSAGE = (
    "the server answered in plain text, not TLS: it does not speak TLS on this port"
)


class PlainTextReply(ssl.SSLError):
    """The TLS handshake got plain text back: the port serves something without TLS.

    Raised by :func:`open_connection` in place of OpenSSL's "wrong version
    number", which tells a newcomer nothing; the original is its cause.
    """


def is_plain_text_reply(exc: BaseException) -> bool:
    """Whether ``exc`` is OpenSSL's way of saying the server's first bytes were not TLS."""
    return isinstance(exc, PlainTextReply) or (
        isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _PLAIN_TEXT_REASONS
    )


#: Seconds a resolved name is reused: aiohttp's ``ttl_dns_cache`` default. Short
#: enough that a changed DNS record is picked up quickly, long enough that a
#: burst of connections to one name costs one lookup.
DEFAULT_DNS_CACHE_TTL: Final = 10.0
#: Lookups one resolver runs at once. The default executor has
#: ``min(32, cpus + 4)`` threads (6 on 2 cores): 4 leaves some for everyone
#: else even if all 4 hang, and is about what aiohttp gets on such a machine.
DEFAULT_MAX_DNS_LOOKUPS: Final = 4
# Names the cache keeps (each a few addresses, well under 1 KiB): bounded
# memory whatever the number of names; the least recently stored goes first.
_DNS_CACHE_ENTRIES: Final = 1024
_DIGITS: Final = frozenset("0123456789")


def numeric_addrinfos(host: str, port: int) -> list[AddrInfo] | None:
    """The address of an IP literal ``host`` without any lookup, or None for a name."""
    try:
        socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    else:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    if ":" in host:
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            pass
        else:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                     (host, port, 0, 0))]
    if ":" in host or (host and host[-1] in _DIGITS):
        # Other numeric forms (a zone id, "127.1"): AI_NUMERICHOST parses
        # them without touching DNS, so it runs here instead of in a thread.
        try:
            found: list[AddrInfo] = [*socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )]
        except (socket.gaierror, UnicodeError):
            return None
        return found
    return None


def _with_port(infos: list[AddrInfo], port: int) -> list[AddrInfo]:
    return [(f, t, p, c, (addr[0], port, *addr[2:])) for f, t, p, c, addr in infos]


class _Lookup:
    """One ``getaddrinfo`` call shared by every caller that wants the same name."""

    __slots__ = ("callers", "started", "task")

    def __init__(self) -> None:
        self.callers = 0
        self.started = False
        self.task: asyncio.Task[list[AddrInfo]] | None = None


class Resolver:
    """Name resolution for one client: literals without lookups, shared and cached lookups.

    :param ttl: seconds a name's addresses are reused; ``None`` or ``0``
        turns the cache off (concurrent lookups are still shared).
    :param max_lookups: ``getaddrinfo`` calls running at once (see the module
        docstring for why a slot is held until the thread returns).
    """

    def __init__(
        self,
        *,
        ttl: float | None = DEFAULT_DNS_CACHE_TTL,
        max_lookups: int = DEFAULT_MAX_DNS_LOOKUPS,
        max_entries: int = _DNS_CACHE_ENTRIES,
    ) -> None:
        self._ttl = ttl or None
        self._max_entries = max_entries
        self._slots = asyncio.Semaphore(max_lookups)
        # Name -> (loop time it expires, addresses with port 0), oldest first.
        self._cache: OrderedDict[str, tuple[float, list[AddrInfo]]] = OrderedDict()
        self._lookups: dict[str, _Lookup] = {}
        #: ``getaddrinfo`` calls made (for tests and statistics).
        self.lookups = 0

    @property
    def cached(self) -> int:
        """Names in the cache now (expired ones included until they are dropped)."""
        return len(self._cache)

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """Return the TCP addresses of ``host`` at ``port`` (raises OSError when none)."""
        infos = numeric_addrinfos(host, port)
        if infos is not None:
            return infos
        loop = asyncio.get_running_loop()
        entry = self._cache.get(host)
        if entry is not None:
            if loop.time() < entry[0]:
                return _with_port(entry[1], port)
            del self._cache[host]
        lookup = self._lookups.get(host)
        if lookup is None:
            lookup = self._lookups[host] = _Lookup()
            task = lookup.task = loop.create_task(self._look_up(host, lookup))
            task.add_done_callback(lambda t: self._lookup_done(host, lookup, t))
        assert lookup.task is not None
        lookup.callers += 1
        try:
            # Shielded: one caller timing out must not cancel the lookup
            # that the others (and the cache) are waiting for.
            found = await asyncio.shield(lookup.task)
        finally:
            lookup.callers -= 1
            if not lookup.callers and not lookup.started and not lookup.task.done():
                # Nobody wants it any more and it never reached a thread.
                lookup.task.cancel()
                if self._lookups.get(host) is lookup:
                    del self._lookups[host]
        return _with_port(found, port)

    async def _look_up(self, host: str, lookup: _Lookup) -> list[AddrInfo]:
        loop = asyncio.get_running_loop()
        async with self._slots:
            lookup.started = True
            self.lookups += 1
            infos: list[AddrInfo] = [*await loop.getaddrinfo(
                host, 0, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )]
        if self._ttl is not None and infos:
            cache = self._cache
            now = loop.time()
            # Entries share one TTL, so the oldest are the first to expire.
            while cache and next(iter(cache.values()))[0] <= now:
                cache.popitem(last=False)
            while len(cache) >= self._max_entries:
                cache.popitem(last=False)
            cache[host] = (now + self._ttl, infos)
        return infos

    def _lookup_done(self, host: str, lookup: _Lookup, task: asyncio.Task[list[AddrInfo]]) -> None:
        if self._lookups.get(host) is lookup:
            del self._lookups[host]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waits for any more is not logged

    async def aclose(self) -> None:
        """Drop the cache and cancel lookups in flight (their threads finish on their own)."""
        self._cache.clear()
        tasks = [lookup.task for lookup in self._lookups.values() if lookup.task is not None]
        self._lookups.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def interleave_addrinfos(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """Order addresses by alternating family, starting with the resolver's first choice.

    Duplicates (same family and address) are dropped.
    """
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        key = (info[0], info[4])
        if key in seen:
            continue
        seen.add(key)
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    ordered: list[AddrInfo] = []
    while queues:
        for queue in list(queues):
            ordered.append(queue.pop(0))
            if not queue:
                queues.remove(queue)
    return ordered


async def _connect_one(
    loop: asyncio.AbstractEventLoop, info: AddrInfo, local_addr: tuple[Any, ...] | None = None
) -> socket.socket:
    """Connect one socket to one address; on any failure or cancellation it is closed."""
    family, type_, proto, _, address = info
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        if local_addr is not None:
            sock.bind(local_addr)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def _discard(task: asyncio.Task[socket.socket]) -> None:
    """Done-callback for an attempt that lost: close its socket, consume its error."""
    if task.cancelled():
        return
    if task.exception() is None:
        task.result().close()


def _combined_error(errors: list[BaseException], where: str) -> OSError:
    if not errors:
        return OSError(f"no address to connect to for {where}")
    first = errors[0]
    if all(str(e) == str(first) for e in errors) and isinstance(first, OSError):
        return first
    return OSError(f"Multiple exceptions connecting to {where}: "
                   + ", ".join(str(e) for e in errors))


async def race_connect(
    infos: Sequence[AddrInfo],
    *,
    delay: float | None,
    where: str = "the host",
    local_addr: tuple[str, int] | None = None,
) -> socket.socket:
    """Connect to the first address that answers and return its socket.

    With ``delay=None`` the addresses are tried one after another. Otherwise a
    new attempt starts every ``delay`` seconds, or at once when one fails.
    Raises the OSError of the attempts if all fail; on cancellation every
    socket is closed before the CancelledError propagates. ``local_addr``
    (an IP literal and a port) binds each socket first; only addresses of
    its family are tried.
    """
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    bind_to: tuple[Any, ...] | None = None
    if local_addr is not None:
        local = numeric_addrinfos(*local_addr)
        if local is None:
            raise OSError(f"local_addr must be an IP address, not {local_addr[0]!r}")
        family = local[0][0]
        infos = [info for info in infos if info[0] == family]
        if not infos:
            raise OSError(f"{where} has no address of the family of {local_addr[0]}")
        bind_to = local[0][4]
    if delay is None or len(infos) <= 1:
        for info in infos:
            try:
                return await _connect_one(loop, info, bind_to)
            except OSError as exc:
                errors.append(exc)
        raise _combined_error(errors, where)

    started: list[asyncio.Task[socket.socket]] = []
    pending: set[asyncio.Task[socket.socket]] = set()
    winner: socket.socket | None = None
    remaining = list(infos)
    try:
        while remaining or pending:
            if remaining:
                task = loop.create_task(_connect_one(loop, remaining.pop(0), bind_to))
                started.append(task)
                pending.add(task)
            done, pending = await asyncio.wait(
                pending,
                timeout=delay if remaining else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            # Look at finished attempts in the order they were started, so
            # that of two simultaneous winners the earlier address is kept.
            for task in started:
                if task not in done:
                    continue
                error = task.exception()
                if error is None:
                    if winner is None:
                        winner = task.result()
                else:
                    errors.append(error)
            if winner is not None:
                return winner
        raise _combined_error(errors, where)
    finally:
        for task in started:
            if task.done():
                # A second winner finished in the same turn: close it.
                if not task.cancelled() and task.exception() is None:
                    sock = task.result()
                    if sock is not winner:
                        sock.close()
            else:
                task.cancel()
                task.add_done_callback(_discard)


async def open_tcp_socket(
    host: str,
    port: int,
    *,
    happy_eyeballs_delay: float | None = 0.25,
    resolver: Resolver | None = None,
) -> socket.socket:
    """Resolve ``host`` and connect a TCP socket to it (see :func:`race_connect`).

    ``resolver`` caches and shares lookups; without one, an IP literal is
    still connected to without a lookup and a name is looked up every time.
    """
    infos = numeric_addrinfos(host, port)
    if infos is None:
        if resolver is not None:
            infos = await resolver.resolve(host, port)
        else:
            infos = [*await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )]
    if len(infos) > 1:
        infos = interleave_addrinfos(infos)
    return await race_connect(infos, delay=happy_eyeballs_delay, where=f"{host}:{port}")


async def open_connection(
    protocol_factory: Callable[[], _P],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    happy_eyeballs_delay: float | None = 0.25,
    resolver: Resolver | None = None,
) -> tuple[asyncio.Transport, _P]:
    """Open a connection (TCP, then TLS if ``ssl_context``) and return transport and protocol.

    Like ``loop.create_connection`` with ``happy_eyeballs_delay``, except
    that nothing leaks when it is cancelled. SNI and the host name check use
    ``server_hostname`` (default: ``host``); ``resolver`` is passed to
    :func:`open_tcp_socket`. A server that answers the TLS handshake in plain
    text raises :class:`PlainTextReply`.
    """
    loop = asyncio.get_running_loop()
    sock = await open_tcp_socket(
        host, port, happy_eyeballs_delay=happy_eyeballs_delay, resolver=resolver
    )
    try:
        transport, protocol = await loop.create_connection(
            protocol_factory,
            sock=sock,
            ssl=ssl_context,
            server_hostname=(server_hostname or host) if ssl_context is not None else None,
        )
    except ssl.SSLError as exc:
        # The transport closed the socket when the handshake failed.
        if is_plain_text_reply(exc):
            raise PlainTextReply(PLAIN_TEXT_MESSAGE) from exc
        raise
    except (ValueError, TypeError):
        # Rejected before a transport took the socket: it is still ours to close.
        # Past that point the transport owns it (it closes the socket itself
        # when it is closed, also on cancellation), and closing it here would
        # free the descriptor number while the loop still maps it to the
        # transport.
        sock.close()
        raise
    return transport, protocol


async def open_stream(
    protocol_factory: Callable[[], _P],
    host: str | None,
    port: int | None,
    *,
    path: str | None,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    connect_timeout: float | None,
    hello_echoed: str | None = None,
) -> tuple[asyncio.BaseTransport, _P]:
    """Connect ``protocol_factory``'s protocol to ``host:port`` or the Unix socket ``path``.

    What the echo client and :func:`asyncnet.open_connection` share: TCP
    through :func:`open_connection` (nothing leaks if cancelled), the whole
    connect (TLS included) under ``connect_timeout``, and failures raised as
    :class:`~asyncnet.ConnectTimeout` or :class:`~asyncnet.ConnectError`
    with a reason that is never empty. ``hello_echoed`` is the reason given
    when the server sent our own TLS hello back (OpenSSL's "unexpected
    message"), which a server that echoes in plain text does.
    """
    loop = asyncio.get_running_loop()
    where = path if path is not None else f"{host}:{port}"
    try:
        async with asyncio.timeout(connect_timeout):
            if path is not None:
                return await loop.create_unix_connection(
                    protocol_factory, path, ssl=ssl_context, server_hostname=server_hostname
                )
            assert host is not None and port is not None
            return await open_connection(
                protocol_factory,
                host,
                port,
                ssl_context=ssl_context,
                server_hostname=server_hostname,
            )
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {where} took longer than {connect_timeout}s") from exc
    except OSError as exc:
        reason = PLAIN_TEXT_MESSAGE if is_plain_text_reply(exc) else describe_error(exc)
        if hello_echoed is not None and getattr(exc, "reason", None) == "UNEXPECTED_MESSAGE":
            reason = hello_echoed
        if ssl_context is not None and not str(exc):
            # Only a TLS handshake fails with a bare ConnectionResetError().
            reason = f"TLS handshake failed: {reason}"
        raise ConnectError(f"cannot connect to {where}: {reason}") from exc
