"""A key-value server speaking a subset of the Redis protocol (RESP2), with a custom framer.

Run it, then use the real Redis tools against it::

    python docs/examples/resp_server.py --port 6380
    redis-cli -p 6380 SET greeting hello
    redis-benchmark -p 6380 -t set,get -n 100000 -P 16

Commands: PING, ECHO, SET, GET, DEL, EXISTS, INCR; CONFIG and COMMAND get an
empty reply (so redis-benchmark starts). The framer is the point: a class
with ``decoder()`` and ``encode()`` is all asyncnet needs, and its limits
bound what a client's unfinished command makes the server hold: at most
``max_command`` bytes of arguments (4 MiB by default, however many of the
``max_args`` arguments of up to ``max_bulk`` bytes it announces), plus one
header line of up to ``MAX_LINE`` bytes and a few dozen bytes of bookkeeping
per argument. (The store itself grows with what clients SET, as a Redis
without ``maxmemory`` does.) The server runs in the callback style
(``asyncnet.FramedProtocol``, no task per client: the fastest, as nothing
here waits), or with ``--await-style`` under ``asyncnet.start_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
from typing import Any

import asyncnet

Command = list[bytes]


# A header line ("*3", "$5", or an inline command) longer than this is refused:
# Redis's own limit for inline commands.
MAX_LINE = 64 * 1024
# The range of INCR's values: Redis's are signed 64-bit integers.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class RESPDecoder:
    """Cuts RESP arrays of bulk strings (and inline commands) into commands.

    ``feed`` parses each read where it lies, by positions, a command's
    arguments in one inner loop, and slices out only the arguments. State
    between reads: ``_count``, the number of arguments the array under
    construction announced (-1: no array header yet), ``_args`` the ones
    complete and ``_size`` their bytes; ``_rest`` holds the bytes of the
    element that is not complete (a header line, or a bulk string from its
    ``$`` header on), and ``_need`` how many it must hold before parsing can
    go on (0: a header line, which needs a newline). Bytes that cannot
    complete the element are appended, not parsed again, so decoding is
    linear however the input is split. A bulk header whose length would take
    the command's arguments past ``max_command`` bytes is refused at once,
    before those bytes arrive.

    Most reads hold whole commands whose arguments contain no CRLF: for
    them ``_whole_commands`` cuts the read with one ``split`` and checks the
    headers against tables of the short ones (``known``), and the general
    parse runs only for reads it does not recognise, from the same start.

    ``pending_error`` (optional for a decoder, see docs/protocols.rst) is
    the error ``feed`` found after the commands it returned, raised by its
    next call: asyncnet reads it instead of calling ``feed(b"")`` to ask.
    """

    def __init__(self, max_bulk: int, max_args: int, max_command: int,
                 known: tuple[dict[bytes, int], list[bytes]] | None = None) -> None:
        self._max_bulk = max_bulk
        self._max_args = max_args
        self._max_command = max_command
        self._arrays, self._bulks = known or known_headers(max_bulk, max_args, max_command)
        self._args: Command = []
        self._size = 0
        self._count = -1
        self._rest = bytearray()
        self._need = 0
        self.pending_error: Exception | None = None

    @property
    def buffered(self) -> int:
        return len(self._rest) + self._size

    def feed(self, data: bytes) -> list[Command]:
        if self.pending_error is not None:
            raise self.pending_error
        if type(data) is not bytes:
            data = bytes(data)
        rest = self._rest
        if not rest and self._count < 0:  # on a command boundary
            whole = self._whole_commands(data)
            if whole is not None:
                return whole
        if rest:
            # The element begun in an earlier read: parse again only once it can be complete.
            rest += data
            if self._need:  # a bulk string: its header, bytes and CRLF
                if len(rest) < self._need:
                    return []
            elif 10 not in data:  # a header line: its LF
                if len(rest) > MAX_LINE:
                    raise self._fail(asyncnet.FrameTooLarge("header line too long",
                                                            limit=MAX_LINE, size=len(rest)))
                return []
            data = bytes(rest)
            rest.clear()
        commands: list[Command] = []
        args, count, need, used = self._args, self._count, 0, self._size
        max_command = self._max_command
        pos, size = 0, len(data)
        try:
            while pos < size:
                if count < 0:  # "*<count>", or an inline command (telnet, nc), up to LF
                    end = data.find(b"\n", pos)
                    if end == -1:
                        if size - pos > MAX_LINE:
                            raise asyncnet.FrameTooLarge("header line too long", limit=MAX_LINE,
                                                         size=size - pos)
                        break
                    start, pos = pos, end + 1
                    if data[start] != 42:  # no "*": an inline command
                        if end - start > MAX_LINE:
                            raise asyncnet.FrameTooLarge("inline command too long",
                                                         limit=MAX_LINE, size=end - start)
                        if inline := data[start:end].split():
                            commands.append(inline)
                        continue
                    count = header_number(data[start:end])
                    if not 0 <= count <= self._max_args:
                        raise self._bad_header(data[start:end], self._max_args, "array")
                # The arguments: "$<length>" CRLF, that many bytes, CRLF.
                while len(args) < count:
                    end = data.find(b"\n", pos)
                    if end == -1:
                        if size - pos > MAX_LINE:
                            raise asyncnet.FrameTooLarge("header line too long", limit=MAX_LINE,
                                                         size=size - pos)
                        break
                    length = header_number(data[pos:end])
                    if data[pos] != 36 or not 0 <= length <= self._max_bulk:  # "$"
                        raise self._bad_header(data[pos:end], self._max_bulk, "bulk string")
                    if used + length > max_command:
                        raise asyncnet.FrameTooLarge(f"command of over {used + length} bytes",
                                                     limit=max_command, size=used + length)
                    stop = end + 1 + length
                    if stop + 2 > size:
                        need = stop + 2 - pos  # kept from its header: parsed again when complete
                        break
                    # Two indexes, not data[stop:stop + 2] != b"\r\n": no bytes object
                    # made per argument (resp_instructions.py -P 1: 800 instructions
                    # less per request).
                    if data[stop] != 13 or data[stop + 1] != 10:  # CR LF
                        raise asyncnet.RemoteProtocolError("bulk string not followed by CRLF")
                    args.append(data[end + 1:stop])
                    used += length
                    pos = stop + 2
                if len(args) < count:
                    break  # wait for more bytes
                commands.append(args)
                args, count, used = [], -1, 0
        except asyncnet.RemoteProtocolError as exc:
            self._fail(exc)
            if not commands:
                raise
            return commands
        self._args, self._count, self._need, self._size = args, count, need, used
        if pos < size:
            rest += memoryview(data)[pos:]
        return commands

    def _whole_commands(self, data: bytes) -> list[Command] | None:
        """The commands of a read of whole commands, each argument free of CRLF; else None.

        Split at every CRLF, such a read is an array header, then a bulk
        header and its argument per argument, for each command. Each header
        must be one of the tables' (canonical, within the limits) and each
        argument as long as announced (its header the table's for its
        length), which also proves that it contains no CRLF and is followed
        by one; anything else is left to the general parse.

        Why: a ``find``, a slice and an ``int()`` per header line cost more
        than all else the general parse does; one ``split`` per read and a
        table lookup per header took ``feed`` from 21,700 to 14,200
        instructions per redis-benchmark request (SET and GET, one a read),
        and the server from 45,400 to 36,500 with the replies below
        (resp_instructions.py -P 1; benchmarks/README.rst).
        """
        pieces = data.split(b"\r\n")
        if pieces[-1]:  # not ending in CRLF: something incomplete
            return None
        arrays, bulks = self._arrays, self._bulks
        commands = []
        pos, last = 0, len(pieces) - 1
        while pos < last:
            count = arrays.get(pieces[pos])
            if count is None:
                return None
            start, pos = pos + 1, pos + 1 + 2 * count
            if pos > last:
                return None
            args = pieces[start + 1:pos:2]
            # The headers the arguments' lengths call for, against those sent:
            # one list fewer than looking each header up (timeit: 610 -> 500
            # ns for a GET). An argument longer than the table is left to the
            # general parse (IndexError).
            try:
                if pieces[start:pos:2] != list(map(bulks.__getitem__, map(len, args))):
                    return None
            except IndexError:
                return None
            commands.append(args)
        return commands

    @staticmethod
    def _bad_header(line: bytes, limit: int, what: str) -> Exception:
        if len(line) > MAX_LINE:  # as when it comes in pieces (no valid header is this long)
            return asyncnet.FrameTooLarge("header line too long", limit=MAX_LINE, size=len(line))
        line = line.removesuffix(b"\r")
        if what == "bulk string" and line[:1] != b"$":
            return asyncnet.RemoteProtocolError(f"expected a bulk string, got {line[:20]!r}")
        value = header_number(line)
        if value > limit:
            return asyncnet.FrameTooLarge(f"{what} of {value}", limit=limit, size=value)
        return asyncnet.RemoteProtocolError(f"bad {what} header {line[:20]!r}")

    def _fail(self, exc: Exception) -> Exception:
        # A decoder that failed stays failed, and holds nothing more.
        self.pending_error = exc
        self._rest.clear()
        self._args = []
        self._size = 0
        return exc

    def feed_eof(self) -> None:
        if self.pending_error is not None:
            raise self.pending_error
        if self._rest or self._count >= 0:
            raise asyncnet.IncompleteFrame("connection closed inside a command",
                                           received=self.buffered)


def header_number(line: bytes) -> int:
    """The length or count of a header line (``$5``, ``*3``, with or without its CR); -1 if bad.

    Only ASCII digits make a number: ``int()`` would also take ``1_0``,
    `` 4`` and ``+2``, which Redis refuses.
    """
    digits = line[1:].removesuffix(b"\r")
    if not digits.isdigit():
        return -1
    try:
        return int(digits)
    except ValueError:  # more digits than int() converts: no length within a limit
        return -1


class Status:
    """A status reply, such as ``+OK``: encoded once, where it is defined."""

    __slots__ = ("encoded",)

    def __init__(self, text: str) -> None:
        self.encoded = b"+%b\r\n" % text.encode()


OK = Status("OK")
PONG = Status("PONG")
# The header of each short bulk string reply, by its length.
BULK_HEADERS = [b"$%d\r\n" % n for n in range(1025)]


@functools.cache
def known_headers(max_bulk: int, max_args: int,
                  max_command: int) -> tuple[dict[bytes, int], list[bytes]]:
    """Tables of the array headers (``*3``: 3) and bulk headers (``[3]``: ``$3``) within the limits.

    Checking a header by table costs about half of ``int()`` on its slice,
    and short ones are what clients send (up to 64 arguments, 1 KiB values).
    Made once per set of limits (``functools.cache``) and shared by every
    decoder: about 100 KiB of tables and keys. Made per connection (as the
    callback style's ``RESP()`` per protocol once did), 200 clients held
    20 MiB of them, each lookup went to a table out of the CPU's caches,
    and the server spent 7.3 us of user CPU per request instead of 5.8
    (redis-benchmark -c 200 -P 1, paired runs). The longest argument times
    the most arguments stays within ``max_command``: a command the tables
    accept is within every limit.
    """
    longest = min(max_bulk, 1024, max_command)
    most = min(max_args, 64, max_command // longest if longest else max_args)
    arrays = {b"*%d" % n: n for n in range(most + 1)}
    bulks = [b"$%d" % n for n in range(longest + 1)]
    return arrays, bulks


class RESP:
    """The framing: commands in, replies out (bytes: bulk string, Status, int, list...).

    ``max_bulk`` bounds one argument, ``max_args`` their number and
    ``max_command`` (default ``4 * max_bulk``: a SET of a value of
    ``max_bulk`` bytes, with room to spare) the bytes of all of them.
    """

    def __init__(self, max_bulk: int = 1 << 20, max_args: int = 1024,
                 max_command: int | None = None) -> None:
        self.max_bulk = max_bulk
        self.max_args = max_args
        self.max_command = 4 * max_bulk if max_command is None else max_command
        # Shared by every decoder.
        self._known = known_headers(max_bulk, max_args, self.max_command)

    def decoder(self) -> RESPDecoder:
        return RESPDecoder(self.max_bulk, self.max_args, self.max_command, self._known)

    def encode(self, reply: Any) -> bytes:
        # Exact types, GET's and SET's replies first; a status reply is
        # encoded once (Status): an isinstance chain made SET's "OK" pass
        # two tests and a str.encode (about 600 instructions a request).
        kind = type(reply)
        if kind is bytes:
            # A header from the table where there is one: a join of three
            # pieces costs less than a formatting (timeit: 124 -> 79 ns).
            size = len(reply)
            if size < len(BULK_HEADERS):
                return b"".join((BULK_HEADERS[size], reply, b"\r\n"))
            return b"$%d\r\n%b\r\n" % (size, reply)
        if kind is Status:
            return reply.encoded
        if reply is None:
            return b"$-1\r\n"
        if isinstance(reply, int):
            return b":%d\r\n" % reply
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
        name = command[0].upper()
        data = self.data
        # The commonest commands first (each test is a comparison per
        # command), indexing into the command rather than slicing its
        # arguments out (a list per request: about 750 instructions).
        if name == b"GET" and len(command) == 2:
            return data.get(command[1])
        if name == b"SET" and len(command) >= 3:
            data[command[1]] = command[2]
            return OK
        args = command[1:]
        if name == b"PING":
            return args[0] if args else PONG
        if name == b"ECHO" and len(args) == 1:
            return args[0]
        if name == b"DEL" and args:
            return sum(data.pop(key, None) is not None for key in args)
        if name == b"EXISTS" and args:
            return sum(key in data for key in args)
        if name == b"INCR" and len(args) == 1:
            value = int64(data.get(args[0], b"0"))
            if value is None:
                return ValueError("value is not an integer or out of range")
            if value == INT64_MAX:
                return ValueError("increment or decrement would overflow")
            value += 1
            data[args[0]] = b"%d" % value
            return value
        if name in (b"CONFIG", b"COMMAND"):
            return []
        return ValueError(f"unknown command or wrong arguments {name[:32]!r}")


def int64(text: bytes) -> int | None:
    """``text`` as Redis reads an integer: a signed 64-bit one, written as ``%d`` would; else None.

    ``int()`` alone would take `` 7``, ``+7``, ``0_7`` and numbers of any size.
    """
    if len(text) > 20 or not text.removeprefix(b"-").isdigit():
        return None
    value = int(text)
    if b"%d" % value != text or not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


class RESPProtocol(asyncnet.FramedProtocol[Command]):
    """One client, callback style: each command is answered as soon as it is decoded.

    A store never waits for anything, so it needs no task per client. While
    the client does not read its replies, reading its commands pauses. Its
    replies are coalesced across clients (written after the event loop's
    pass, as Redis does): a client that runs many connections from one
    thread, as redis-benchmark does, then wakes once per burst of replies.
    """

    def __init__(self, store: Store, framing: RESP | None = None) -> None:
        super().__init__(framing if framing is not None else RESP(), coalesce_writes=True)
        self.execute = store.execute

    def frame_received(self, command: Command) -> None:
        self.send_nowait(self.execute(command))

    def frame_error(self, exc: Exception) -> None:
        self.send_nowait(ValueError(f"Protocol error: {exc}"))
        self.close()


async def handle(conn: asyncnet.Connection[Command], store: Store) -> None:
    """The same server in the await style: one task per client (``--await-style``)."""
    try:
        async for command in conn:
            await conn.send(store.execute(command))  # waits only while the client does not read
    except asyncnet.RemoteProtocolError as exc:
        await conn.send(ValueError(f"Protocol error: {exc}"))


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6380)
    parser.add_argument("--await-style", action="store_true", help="asyncnet.start_server")
    args = parser.parse_args(argv)
    store = Store()
    framing = RESP()  # one for every connection
    if args.await_style:
        server: Any = asyncnet.start_server(functools.partial(handle, store=store),
                                            args.host, args.port, framing=framing)
    else:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RESPProtocol(store, framing), args.host,
                                          args.port)
    async with server as serving:
        host, port = serving.sockets[0].getsockname()[:2]
        print(f"RESP server listening on {host}:{port}", flush=True)
        await serving.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
