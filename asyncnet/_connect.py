"""Opening TCP sockets: name resolution and Happy Eyeballs that leak nothing when cancelled.

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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = [
    "PLAIN_TEXT_MESSAGE",
    "AddrInfo",
    "PlainTextReply",
    "interleave_addrinfos",
    "is_plain_text_reply",
    "open_connection",
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


async def _connect_one(loop: asyncio.AbstractEventLoop, info: AddrInfo) -> socket.socket:
    """Connect one socket to one address; on any failure or cancellation it is closed."""
    family, type_, proto, _, address = info
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
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
    infos: Sequence[AddrInfo], *, delay: float | None, where: str = "the host"
) -> socket.socket:
    """Connect to the first address that answers and return its socket.

    With ``delay=None`` the addresses are tried one after another. Otherwise a
    new attempt starts every ``delay`` seconds, or at once when one fails.
    Raises the OSError of the attempts if all fail; on cancellation every
    socket is closed before the CancelledError propagates.
    """
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    if delay is None or len(infos) <= 1:
        for info in infos:
            try:
                return await _connect_one(loop, info)
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
                task = loop.create_task(_connect_one(loop, remaining.pop(0)))
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
    host: str, port: int, *, happy_eyeballs_delay: float | None = 0.25
) -> socket.socket:
    """Resolve ``host`` and connect a TCP socket to it (see :func:`race_connect`)."""
    loop = asyncio.get_running_loop()
    try:
        # An IP literal needs no resolver: AI_NUMERICHOST never touches DNS, so
        # it is answered at once here instead of in the executor's threads.
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
            flags=socket.AI_NUMERICHOST,
        )
    except socket.gaierror:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    ordered = interleave_addrinfos(infos)
    return await race_connect(ordered, delay=happy_eyeballs_delay, where=f"{host}:{port}")


async def open_connection(
    protocol_factory: Callable[[], _P],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    happy_eyeballs_delay: float | None = 0.25,
) -> tuple[asyncio.Transport, _P]:
    """Open a connection (TCP, then TLS if ``ssl_context``) and return transport and protocol.

    Like ``loop.create_connection`` with ``happy_eyeballs_delay``, except
    that nothing leaks when it is cancelled. SNI and the host name check use
    ``server_hostname`` (default: ``host``). A server that answers the TLS
    handshake in plain text raises :class:`PlainTextReply`.
    """
    loop = asyncio.get_running_loop()
    sock = await open_tcp_socket(host, port, happy_eyeballs_delay=happy_eyeballs_delay)
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
