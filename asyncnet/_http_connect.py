"""Open a TCP socket to a host: DNS, IPv6/IPv4 happy eyeballs, and no leak on cancellation.

``loop.create_connection(happy_eyeballs_delay=...)`` races the addresses in
tasks of its own, and on Python 3.11 a race cancelled from outside (a timeout,
a cancelled request) can lose an already connected socket to the garbage
collector. The race here owns every socket it creates and closes all of them
except the winner on every way out, so the caller's cancellation is always
safe; the winning socket is then handed to ``create_connection(sock=...)``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

__all__ = ["connect_socket"]

_AddrInfo = tuple[Any, ...]


def _interleave(infos: list[_AddrInfo]) -> list[_AddrInfo]:
    """Alternate address families, first family first (RFC 8305 section 4)."""
    if not infos:
        return infos
    first = infos[0][0]
    a = [i for i in infos if i[0] == first]
    b = [i for i in infos if i[0] != first]
    out: list[_AddrInfo] = []
    for pair in zip(a, b, strict=False):
        out.extend(pair)
    longer = a if len(a) > len(b) else b
    out.extend(longer[min(len(a), len(b)) :])
    return out


async def _connect_one(loop: asyncio.AbstractEventLoop, info: _AddrInfo) -> socket.socket:
    family, type_, proto, _, address = info
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def _literal_info(host: str, port: int) -> _AddrInfo | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


async def connect_socket(
    host: str, port: int, *, happy_eyeballs_delay: float | None
) -> socket.socket:
    """Return a connected non-blocking TCP socket to ``host``:``port``.

    With several addresses and a delay, a new attempt starts every
    ``happy_eyeballs_delay`` seconds (or as soon as one fails) until one
    connects; the first to connect wins. Raises OSError when every attempt failed.
    """
    loop = asyncio.get_running_loop()
    literal = _literal_info(host, port)
    if literal is not None:
        infos = [literal]
    else:
        infos = _interleave(
            await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        )
        if not infos:
            raise OSError(f"no address found for {host!r}")
    if len(infos) == 1 or happy_eyeballs_delay is None:
        errors: list[OSError] = []
        for info in infos:
            try:
                return await _connect_one(loop, info)
            except OSError as exc:
                errors.append(exc)
        raise _combined(host, port, errors)
    return await _race(loop, host, port, infos, happy_eyeballs_delay)


async def _race(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    infos: list[_AddrInfo],
    delay: float,
) -> socket.socket:
    tasks: list[asyncio.Task[socket.socket]] = []
    errors: list[OSError] = []
    winner: socket.socket | None = None
    pending: set[asyncio.Task[socket.socket]] = set()
    try:
        queue = list(infos)
        while queue or pending:
            if queue:
                task = loop.create_task(_connect_one(loop, queue.pop(0)))
                tasks.append(task)
                pending.add(task)
            done, pending = await asyncio.wait(
                pending,
                timeout=delay if queue else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                exc = task.exception()
                if exc is None:
                    if winner is None:
                        winner = task.result()
                elif isinstance(exc, OSError):
                    errors.append(exc)
                else:
                    raise exc
            if winner is not None:
                return winner
        raise _combined(host, port, errors)
    finally:
        for task in tasks:
            if not task.done():
                # The task closes its own socket when the cancellation lands.
                task.cancel()
            elif not task.cancelled() and task.exception() is None:
                sock = task.result()
                if sock is not winner:
                    sock.close()


def _combined(host: str, port: int, errors: list[OSError]) -> OSError:
    if len(errors) == 1:
        return errors[0]
    text = "; ".join(str(e) for e in errors)
    err = OSError(f"all connection attempts to {host}:{port} failed: {text}")
    if errors:
        err.__cause__ = errors[0]
    return err
