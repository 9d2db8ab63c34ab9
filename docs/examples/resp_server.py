"""A key-value server speaking a subset of the Redis protocol (RESP2), with a custom framer.

Run it, then use the real Redis tools against it::

    python docs/examples/resp_server.py --port 6380
    redis-cli -p 6380 SET greeting hello
    redis-benchmark -p 6380 -t set,get -n 100000 -P 16

Commands: PING, ECHO, SET, GET, DEL, EXISTS, INCR; CONFIG and COMMAND get an
empty reply (so redis-benchmark starts). The framer below is the point: a
class with ``decoder()`` and ``encode()`` is all asyncnet needs, and its
limits make a hostile client cost at most ``max_bulk`` bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import asyncnet

Command = list[bytes]


class RESPDecoder:
    """Cuts RESP arrays of bulk strings (and inline commands) into commands.

    State: ``_buf`` holds unparsed bytes; ``_args`` the arguments of the
    command under construction, ``_count`` how many it announced (-1: no
    array header yet), ``_bulk`` the length of the bulk string being read
    (-1: its header not read yet). Each byte is looked at a bounded number of
    times, so decoding is linear however the input is split.
    """

    def __init__(self, max_bulk: int, max_args: int) -> None:
        self._buf = bytearray()
        self._args: Command = []
        self._count = -1
        self._bulk = -1
        self._scan = 0
        self._max_bulk = max_bulk
        self._max_args = max_args
        self._held = 0
        self._error: Exception | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._held

    def _line(self) -> bytes | None:
        # One header line, searched from where the last search stopped.
        # LF ends a line; a CR before it is dropped (inline commands may omit it).
        end = self._buf.find(b"\n", self._scan)
        if end == -1:
            self._scan = len(self._buf)
            if len(self._buf) > 64 * 1024:
                raise asyncnet.FrameTooLarge("header line too long", limit=64 * 1024,
                                             size=len(self._buf))
            return None
        line = bytes(self._buf[:end]).removesuffix(b"\r")
        del self._buf[:end + 1]
        self._scan = 0
        return line

    def _number(self, line: bytes, limit: int, what: str) -> int:
        try:
            value = int(line[1:])
        except ValueError:
            raise asyncnet.RemoteProtocolError(f"bad {what} header {line[:20]!r}") from None
        if value > limit:
            raise asyncnet.FrameTooLarge(f"{what} of {value}", limit=limit, size=value)
        if value < 0:
            raise asyncnet.RemoteProtocolError(f"negative {what} {value}")
        return value

    def feed(self, data: bytes) -> list[Command]:
        if self._error is not None:
            raise self._error
        self._buf += data
        commands: list[Command] = []
        try:
            while self._step(commands):
                pass
        except asyncnet.RemoteProtocolError as exc:
            self._error = exc
            self._buf.clear()
            if not commands:
                raise
        return commands

    def _step(self, commands: list[Command]) -> bool:
        if self._count < 0:
            if not self._buf:
                return False
            line = self._line()
            if line is None:
                return False
            if not line.startswith(b"*"):
                if line.strip():
                    commands.append(line.split())  # an inline command (telnet, nc)
                return True
            self._count = self._number(line, self._max_args, "array")
        while len(self._args) < self._count:
            if self._bulk < 0:
                line = self._line()
                if line is None:
                    return False
                if not line.startswith(b"$"):
                    raise asyncnet.RemoteProtocolError(f"expected a bulk string, got {line[:20]!r}")
                self._bulk = self._number(line, self._max_bulk, "bulk string")
            if len(self._buf) < self._bulk + 2:
                return False
            if self._buf[self._bulk:self._bulk + 2] != b"\r\n":
                raise asyncnet.RemoteProtocolError("bulk string not followed by CRLF")
            self._args.append(bytes(self._buf[:self._bulk]))
            self._held += self._bulk
            del self._buf[:self._bulk + 2]
            self._bulk = -1
        commands.append(self._args)
        self._args, self._count, self._held = [], -1, 0
        return True

    def feed_eof(self) -> None:
        if self._error is not None:
            raise self._error
        if self._buf or self._count >= 0:
            raise asyncnet.IncompleteFrame("connection closed inside a command",
                                           received=self.buffered)


class RESP:
    """The framing: commands in, replies out (bytes: bulk string, str: status, int, list...)."""

    def __init__(self, max_bulk: int = 1 << 20, max_args: int = 1024) -> None:
        self.max_bulk = max_bulk
        self.max_args = max_args

    def decoder(self) -> RESPDecoder:
        return RESPDecoder(self.max_bulk, self.max_args)

    def encode(self, reply: Any) -> bytes:
        if isinstance(reply, bytes):
            return b"$%d\r\n%b\r\n" % (len(reply), reply)
        if isinstance(reply, str):
            return b"+%b\r\n" % reply.encode()
        if isinstance(reply, int):
            return b":%d\r\n" % reply
        if reply is None:
            return b"$-1\r\n"
        if isinstance(reply, Exception):
            return b"-ERR %b\r\n" % str(reply).encode()
        return b"*%d\r\n" % len(reply) + b"".join(self.encode(item) for item in reply)


class Store:
    """The key space and the commands (one store shared by every connection)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def execute(self, command: Command) -> Any:
        if not command:
            return ValueError("empty command")
        name, args = command[0].upper(), command[1:]
        data = self.data
        if name == b"PING":
            return args[0] if args else "PONG"
        if name == b"ECHO" and len(args) == 1:
            return args[0]
        if name == b"SET" and len(args) >= 2:
            data[args[0]] = args[1]
            return "OK"
        if name == b"GET" and len(args) == 1:
            return data.get(args[0])
        if name == b"DEL" and args:
            return sum(data.pop(key, None) is not None for key in args)
        if name == b"EXISTS" and args:
            return sum(key in data for key in args)
        if name == b"INCR" and len(args) == 1:
            try:
                value = int(data.get(args[0], b"0")) + 1
            except ValueError:
                return ValueError("value is not an integer or out of range")
            data[args[0]] = b"%d" % value
            return value
        if name in (b"CONFIG", b"COMMAND"):
            return []
        return ValueError(f"unknown command or wrong arguments {name[:32]!r}")

    async def handle(self, conn: asyncnet.Connection[Any]) -> None:
        try:
            async for command in conn:
                # send() returns at once unless the client stopped reading:
                # pipelined replies go out as fast as the commands come in.
                await conn.send(self.execute(command))
        except asyncnet.RemoteProtocolError as exc:
            await conn.send(ValueError(f"Protocol error: {exc}"))


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6380)
    args = parser.parse_args(argv)
    store = Store()
    async with asyncnet.start_server(store.handle, args.host, args.port, framing=RESP()) as server:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"RESP server listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
