"""Scripted sites for RawServer that need more than canned replies."""

from __future__ import annotations

import asyncio

from tests.support.servers import read_request, response

__all__ = ["cookie_of", "login_site"]


def cookie_of(request: bytes) -> str | None:
    """The Cookie field of a raw request, if any."""
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b": ")
        if name.lower() == b"cookie":
            return value.decode("latin-1")
    return None


async def login_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """/login sets a session cookie and redirects to /home, which wants it or sends you back."""
    while request := await read_request(reader):
        target = request.split(b" ", 2)[1]
        if target == b"/login":
            reply = response(302, b"", [("Location", "/home"),
                                        ("Set-Cookie", "sid=s3ss10n; Path=/; HttpOnly")])
        elif cookie_of(request) == "sid=s3ss10n":
            reply = response(200, b"welcome")
        else:
            reply = response(302, b"", [("Location", "/login")])
        writer.write(reply)
        await writer.drain()
