"""A line-based chat room: every line a client sends goes to every other client.

Run it, then talk to it with any line client::

    python docs/examples/chat_server.py --port 7000
    socat - TCP:127.0.0.1:7000

Broadcasting never waits for the slowest member: each member is sent lines
with ``send_nowait`` while its unsent backlog is under ``max_backlog``; a
member whose backlog is over it (it stopped reading) is dropped. So the room's
memory per member is bounded by ``max_backlog`` plus one line, whatever the
members do, and one stalled member never slows the others.

A line reaches the other members' terminals as text they can read, never as
commands to the terminal: control characters (ESC, BEL, CR...; tab is kept)
arrive written as escapes such as ``\\x1b``, and bytes that are not UTF-8 as
U+FFFD.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re

import asyncnet

# 256 KiB of unread chat is minutes of a busy room for a human reader; a
# client that falls that far behind is not reading at all.
MAX_BACKLOG = 256 * 1024
MAX_LINE = 4096
# C0 controls but tab, DEL and C1 controls: what a terminal obeys rather than shows.
CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(line: bytes) -> bytes:
    """``line`` as UTF-8 a terminal shows as it is: each control character as ``\\xNN``."""
    text = line.decode("utf-8", errors="replace")
    return CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text).encode()


class ChatRoom:
    """The members, and the broadcast that protects the room from slow ones."""

    def __init__(self, max_backlog: int = MAX_BACKLOG) -> None:
        self.max_backlog = max_backlog
        self.members: dict[asyncnet.Connection[bytes], bytes] = {}
        self.dropped = 0

    def broadcast(self, sender: asyncnet.Connection[bytes] | None, line: bytes) -> None:
        for member in list(self.members):
            if member is sender:
                continue
            if member.statistics().write_buffer_size > self.max_backlog:
                # Not reading: drop it rather than queue lines for it forever.
                del self.members[member]
                self.dropped += 1
                member.abort()
                continue
            try:
                member.send_nowait(line)
            except asyncnet.ConnectionClosed:
                self.members.pop(member, None)

    async def handle(self, conn: asyncnet.Connection[bytes]) -> None:
        host, port = conn.peername[:2]
        name = f"{host}:{port}".encode()
        self.members[conn] = name
        self.broadcast(conn, b"* " + name + b" joined")
        try:
            async for line in conn:
                if conn not in self.members:
                    break  # dropped as too slow
                self.broadcast(conn, name + b": " + printable(line))
        except asyncnet.FrameTooLarge:
            await conn.send(b"* line too long, bye")
        finally:
            if self.members.pop(conn, None) is not None:
                self.broadcast(conn, b"* " + name + b" left")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7000)
    args = parser.parse_args(argv)
    room = ChatRoom()
    framing = asyncnet.Lines(max_length=MAX_LINE)
    async with asyncnet.start_server(room.handle, args.host, args.port, framing=framing) as server:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"chat server listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
