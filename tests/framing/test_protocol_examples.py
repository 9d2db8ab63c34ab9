"""The protocol examples in docs/examples/ run; real clients (socat, redis-cli) talk to them."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import asyncnet
from asyncnet.testing import check_framing

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
ROOT = EXAMPLES.parent.parent


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")


class Running:
    """An example server in its own process, on a free port; killed by its PID."""

    def __init__(self, script: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "dev", str(EXAMPLES / script), *options, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "... listening on HOST:PORT"
        assert "listening on" in line, line + (self.proc.stderr.read() if self.proc.stderr else "")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture(params=["callback", "await"])
def resp_server(request: pytest.FixtureRequest) -> Iterator[Running]:
    # The example runs in the callback style, or in the await style on request.
    server = Running("resp_server.py", *(["--await-style"] if request.param == "await" else []))
    try:
        yield server
    finally:
        err = server.stop()
        assert "Traceback" not in err, err


@pytest.fixture
def chat_server() -> Iterator[Running]:
    server = Running("chat_server.py")
    try:
        yield server
    finally:
        err = server.stop()
        assert "Traceback" not in err, err


# -- rpc.py -------------------------------------------------------------------------------


def test_rpc_example_runs_many_calls_on_one_connection() -> None:
    result = subprocess.run([sys.executable, "-X", "dev", str(EXAMPLES / "rpc.py")],
                            capture_output=True, text=True, timeout=60, env=env(), check=False)
    assert result.returncode == 0, result.stderr
    assert "200 calls on 1 connection: results correct: True" in result.stdout
    assert "replies arrived out of order: True" in result.stdout


def request(request_id: Any, x: Any, delay: Any = 0) -> bytes:
    return json.dumps({"id": request_id, "method": "slow_square",
                       "params": {"x": x, "delay": delay}}).encode()


def rpc_with_a_waiting_method() -> tuple[Any, asyncio.Event]:
    """The rpc example with one more method, ``wait``, that answers "done" once released."""
    module = load("rpc")
    release = asyncio.Event()

    async def wait() -> str:
        await release.wait()
        return "done"

    module.METHODS["wait"] = wait
    return module, release


async def test_rpc_server_answers_each_bad_request_with_an_error_and_serves_on() -> None:
    module, release = rpc_with_a_waiting_method()
    bad = {  # frame: (the reply's id, its error code)
        b"{not json": (None, -32700),
        b"\xff\xfe\x00": (None, -32700),
        '{"id": 1, "method": "slow_square"}'.encode("utf-16"): (None, -32700),  # JSON, not UTF-8
        b"[" * 100_000: (None, -32700),  # nested past the recursion limit
        b"[1,2]": (None, -32600),
        b"5": (None, -32600),
        b'{"method": "slow_square"}': (None, -32600),
        b'{"id": [1], "method": "slow_square"}': (None, -32600),
        b'{"id": 1}': (1, -32601),
        b'{"id": 2, "method": ["slow_square"]}': (2, -32601),
        b'{"id": 3, "method": "slow_square", "params": [1]}': (3, -32602),
        b'{"id": 4, "method": "slow_square", "params": {"x": 2, "delay": NaN}}': (4, -32602),
        request(5, 2, float("inf")): (5, -32602),
        request(6, 2, -1): (6, -32602),
        request(7, 2, 1e9): (7, -32602),
        request(8, "2"): (8, -32602),
        b'{"id": 9, "method": "slow_square", "params": {"y": 2}}': (9, -32602),
        request(10, int("9" * 4000)): (10, -32603),  # a square JSON cannot hold
        request(11, 1e200): (11, -32603),  # its square is infinite
    }
    async with module.rpc_server() as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port, framing=module.FRAMING) as conn:
            # A call in flight while the bad requests come, and a good one after them.
            await conn.send(b'{"id": "w", "method": "wait"}')
            for frame in bad:
                await conn.send(frame)
            await conn.send(request("good", 4))
            replies = [json.loads(await conn.receive()) for _ in range(len(bad) + 1)]
            release.set()
            replies.append(json.loads(await conn.receive()))
        stats = server.statistics()
    errors = sorted(((r["id"], r["error"]["code"]) for r in replies if "error" in r), key=repr)
    assert errors == sorted(bad.values(), key=repr)
    assert all(r["error"]["message"] for r in replies if "error" in r)
    assert [r for r in replies if "result" in r] == [{"id": "good", "result": 16},
                                                     {"id": "w", "result": "done"}]
    assert stats.handler_errors == stats.protocol_errors == 0


async def test_rpc_server_answers_an_oversized_frame_and_the_calls_in_flight() -> None:
    module, release = rpc_with_a_waiting_method()
    call = b'{"id": "w", "method": "wait"}'
    decoder = module.FRAMING.decoder()
    async with module.rpc_server() as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port) as conn:
            # The call, then the header of a frame one byte over max_frame.
            await conn.send(struct.pack(">I", len(call)) + call + struct.pack(">I", (1 << 20) + 1))
            replies: list[Any] = []
            async for chunk in conn:
                replies += map(json.loads, decoder.feed(chunk))
                if len(replies) == 1:
                    release.set()
        stats = server.statistics()
    assert replies[0]["id"] is None and replies[0]["error"]["code"] == -32600
    assert replies[1:] == [{"id": "w", "result": "done"}]
    assert stats.handler_errors == 0


async def test_rpc_server_closes_connections_its_clients_abandon() -> None:
    module = load("rpc")
    # A client waiting for its slowest call is not idle.
    assert 0 < module.MAX_DELAY < module.IDLE_TIMEOUT < float("inf")
    async with module.rpc_server(idle_timeout=0.2) as server:
        port = server.sockets[0].getsockname()[1]
        async with (
            asyncnet.open_connection("127.0.0.1", port) as silent,
            asyncnet.open_connection("127.0.0.1", port) as partial,
        ):
            await partial.send(b"\x00\x00\x01\x00{")  # the start of a frame, never finished
            for conn in (silent, partial):
                with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                    await conn.receive()  # until the server closes it
        assert server.statistics().idle_timeouts == 2


async def test_rpc_server_refuses_connections_past_max_connections() -> None:
    module = load("rpc")
    assert module.MAX_CONNECTIONS > 0
    async with module.rpc_server(max_connections=1) as server:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port, framing=module.FRAMING) as first:
            await first.send(request(1, 3))
            assert json.loads(await first.receive()) == {"id": 1, "result": 9}  # admitted
            async with asyncnet.open_connection("127.0.0.1", port) as second:
                with pytest.raises((asyncnet.EndOfStream, asyncnet.ReadError)):
                    await second.receive()
        assert server.statistics().refused_connections == 1


# -- resp_server.py -------------------------------------------------------------------


def test_resp_framer_passes_the_conformance_kit() -> None:
    resp = load("resp_server").RESP(max_bulk=64)
    commands = [[b"SET", b"key", b"value"], [b"GET", b"key"], [b""], [b"x" * 64], [],
                [b"a\r\nb", b"\r\n"], [b"\r"], [b"\n"]]
    check_framing(resp, commands, check_limit=False)


def test_resp_framer_passes_the_conformance_kit_past_its_header_tables() -> None:
    # Lengths and counts beyond the tables the one-split path looks headers up in.
    resp = load("resp_server").RESP(max_bulk=4096, max_args=100)
    commands = [[b"x" * 1025], [b"y" * 4096], [b"z"] * 65, [b"SET", b"k", b"v" * 2000]]
    check_framing(resp, commands, check_limit=False)


def test_resp_header_tables_are_shared_by_every_connection() -> None:
    # About 100 KiB of tables: made per connection, 1,000 clients would hold 100 MiB.
    module = load("resp_server")
    store = module.Store()
    first, second = module.RESPProtocol(store), module.RESPProtocol(store)
    for table in ("_arrays", "_bulks"):
        assert getattr(first._decoder, table) is getattr(second._decoder, table)
    assert module.RESP().decoder()._bulks is first._decoder._bulks
    assert module.RESP(max_bulk=10).decoder()._bulks is not first._decoder._bulks


def test_resp_decoder_cuts_whole_commands_with_one_split() -> None:
    # The common read (what redis-benchmark sends) takes the one-split path...
    decoder = load("resp_server").RESP().decoder()
    read = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nxxx\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    assert decoder._whole_commands(read) == [[b"SET", b"key", b"xxx"], [b"GET", b"key"]]
    # ...and every read it does not recognise is left to the general parse.
    for other in [read[:-1], read[:-2], read + b"*1\r\n", b"*1\r\n$4\r\na\r\nb\r\n",
                  b"*1\r\n$03\r\nabc\r\n", b"*01\r\n$3\r\nabc\r\n", b"PING\r\n",
                  b"*1\r\n$2\r\nabc\r\n", b"*1\r\n:3\r\nabc\r\n", b"*1\r\n$3\r\nab\r\n",
                  b"*-1\r\n", b"*1\r\n$-1\r\n\r\n", b"*1\n$3\nabc\r\n",
                  b"*2\r\n$1\r\na\r\n$0\r\n"]:  # an empty argument's CRLF to come
        assert decoder._whole_commands(other) is None, other
    assert decoder.feed(b"*1\r\n$03\r\nabc\r\n*01\r\n$3\r\nabc\r\n") == [[b"abc"]] * 2


def test_resp_decoder_header_tables_stop_at_the_limits() -> None:
    decoder = load("resp_server").RESP(max_bulk=3, max_args=2).decoder()
    assert decoder._whole_commands(b"*2\r\n$3\r\nabc\r\n$0\r\n\r\n") == [[b"abc", b""]]
    assert decoder._whole_commands(b"*1\r\n$4\r\nabcd\r\n") is None
    assert decoder._whole_commands(b"*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n") is None
    with pytest.raises(asyncnet.FrameTooLarge):
        decoder.feed(b"*1\r\n$4\r\nabcd\r\n")


def test_resp_framer_refuses_an_oversized_bulk_from_its_header() -> None:
    decoder = load("resp_server").RESP(max_bulk=100).decoder()
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"*1\r\n$1000000000\r\n")
    assert info.value.limit == 100
    assert decoder.buffered == 0


def resp_decode(pieces: list[bytes], max_bulk: int = 100) -> tuple[list[Any], Any]:
    """Commands decoded from ``pieces``, then the error's type (None: clean end), as the
    framed layer reads them: ``pending_error`` after each read."""
    decoder = load("resp_server").RESP(max_bulk=max_bulk, max_args=4, max_command=250).decoder()
    commands: list[Any] = []
    try:
        for piece in pieces:
            commands += decoder.feed(piece)
            if decoder.pending_error is not None:
                return commands, type(decoder.pending_error)
        decoder.feed_eof()
    except asyncnet.RemoteProtocolError as exc:
        return commands, type(exc)
    return commands, None


SET = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n"


@pytest.mark.parametrize(("stream", "expected"), [
    (SET + b"*1\r\n$4\r\nPING\r\n", ([[b"SET", b"k", b"vv"], [b"PING"]], None)),
    (b"PING\r\n" + SET, ([[b"PING"], [b"SET", b"k", b"vv"]], None)),
    (b"*0\r\n", ([[]], None)),
    (SET + b"*1\r\n$4\r\nPINGxx", ([[b"SET", b"k", b"vv"]], asyncnet.RemoteProtocolError)),
    (SET + b"*1\r\n:4\r\n", ([[b"SET", b"k", b"vv"]], asyncnet.RemoteProtocolError)),
    (SET + b"*1\r\n$x\r\n", ([[b"SET", b"k", b"vv"]], asyncnet.RemoteProtocolError)),
    (SET + b"*1\r\n$101\r\n", ([[b"SET", b"k", b"vv"]], asyncnet.FrameTooLarge)),
    (SET + b"*5\r\n", ([[b"SET", b"k", b"vv"]], asyncnet.FrameTooLarge)),
    (SET + b"*1\r\n$100\r\n" + b"v" * 50, ([[b"SET", b"k", b"vv"]], asyncnet.IncompleteFrame)),
    (SET + b"*2\r\n$1\r\nk\r\n$1", ([[b"SET", b"k", b"vv"]], asyncnet.IncompleteFrame)),
    # Lengths and counts are ASCII digits only: int() would take all of these.
    (SET + b"*1\r\n$1_0\r\n0123456789\r\n",
     ([[b"SET", b"k", b"vv"]], asyncnet.RemoteProtocolError)),
    (b"*2\r\n$ 4\r\nPING\r\n$+2\r\nhi\r\n", ([], asyncnet.RemoteProtocolError)),
    (b"*1\r\n$4 \r\nPING\r\n", ([], asyncnet.RemoteProtocolError)),
    (b"*+1\r\n$4\r\nPING\r\n", ([], asyncnet.RemoteProtocolError)),
    (b"* 1\r\n$4\r\nPING\r\n", ([], asyncnet.RemoteProtocolError)),
    (b"*-1\r\n", ([], asyncnet.RemoteProtocolError)),
    # max_command (250 here) bounds the arguments' bytes, refused from the header on.
    (b"*3\r\n$100\r\n" + b"a" * 100 + b"\r\n$100\r\n" + b"b" * 100 + b"\r\n$50\r\n" + b"c" * 50
     + b"\r\n", ([[b"a" * 100, b"b" * 100, b"c" * 50]], None)),
    (b"*3\r\n$100\r\n" + b"a" * 100 + b"\r\n$100\r\n" + b"b" * 100 + b"\r\n$51\r\n",
     ([], asyncnet.FrameTooLarge)),
])
def test_resp_decoder_gives_the_same_commands_and_error_however_split(
    stream: bytes, expected: tuple[list[Any], Any]
) -> None:
    assert resp_decode([stream]) == expected
    assert resp_decode([stream[i:i + 1] for i in range(len(stream))]) == expected
    for i in range(len(stream) + 1):
        assert resp_decode([stream[:i], stream[i:]]) == expected, i


@pytest.mark.parametrize("header", [b"*1\r\n", b""])
def test_resp_decoder_refuses_a_header_line_without_end(header: bytes) -> None:
    # In an array (a "$" header) and at a command's start (an inline command).
    from_example = load("resp_server")
    line = header + b"$" + b"1" * from_example.MAX_LINE + b"1"
    assert resp_decode([line]) == ([], asyncnet.FrameTooLarge)
    assert resp_decode([line[:10], line[10:]]) == ([], asyncnet.FrameTooLarge)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_resp_decoder_refuses_an_inline_command_over_max_line_even_in_one_read(
    ending: bytes,
) -> None:
    max_line = load("resp_server").MAX_LINE
    longest = b"A" * (max_line - len(ending) + 1)  # MAX_LINE bytes before the LF
    assert resp_decode([longest + ending]) == ([[longest]], None)
    assert resp_decode([longest[:10], longest[10:] + ending]) == ([[longest]], None)
    line = b"A" + longest + ending
    assert resp_decode([line]) == ([], asyncnet.FrameTooLarge)
    assert resp_decode([line[:10], line[10:]]) == ([], asyncnet.FrameTooLarge)


def test_resp_decoder_holds_at_most_max_command_bytes_of_one_command() -> None:
    # A command may announce max_args arguments of max_bulk bytes each; the
    # decoder refuses it once what it announced passes max_command.
    decoder = load("resp_server").RESP(max_bulk=1000, max_args=1024, max_command=3000).decoder()
    bulk = b"$1000\r\n" + b"v" * 1000 + b"\r\n"
    assert decoder.feed(b"*1024\r\n" + bulk * 3) == []
    assert decoder.buffered == 3000
    with pytest.raises(asyncnet.FrameTooLarge) as info:
        decoder.feed(b"$1\r\n")  # one byte more than max_command, announced
    assert (info.value.limit, info.value.size) == (3000, 3001)
    assert decoder.buffered == 0


def test_resp_default_max_command_takes_a_set_of_the_largest_value() -> None:
    resp = load("resp_server").RESP()
    assert resp.max_command == 4 * resp.max_bulk
    value = b"v" * resp.max_bulk
    command = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$%d\r\n%b\r\n" % (len(value), value)
    assert resp.decoder().feed(command) == [[b"SET", b"key", value]]


def test_resp_header_tables_accept_no_command_over_max_command() -> None:
    # The one-split path takes only what its tables know: within max_command too.
    decoder = load("resp_server").RESP(max_bulk=64, max_args=8, max_command=100).decoder()
    assert decoder._whole_commands(b"*1\r\n$64\r\n" + b"x" * 64 + b"\r\n") == [[b"x" * 64]]
    two = b"*2\r\n$60\r\n" + b"x" * 60 + b"\r\n$60\r\n" + b"y" * 60 + b"\r\n"
    assert decoder._whole_commands(two) is None
    with pytest.raises(asyncnet.FrameTooLarge):
        decoder.feed(two)


def test_resp_decoder_holds_an_incomplete_bulk_string_from_its_header() -> None:
    decoder = load("resp_server").RESP(max_bulk=100).decoder()
    assert decoder.feed(b"*2\r\n$3\r\nGET\r\n$10\r\nabc") == []
    # The complete argument and the incomplete one from its "$" header on.
    assert decoder.buffered == 3 + len(b"$10\r\nabc")
    assert decoder.feed(b"defghij") == []
    assert decoder.feed(b"\r\n") == [[b"GET", b"abcdefghij"]]
    assert decoder.buffered == 0


def test_resp_encode_gives_each_kind_of_reply_its_wire_form() -> None:
    module = load("resp_server")
    encode = module.RESP().encode
    assert encode(b"v\r\n") == b"$3\r\nv\r\n\r\n"
    assert encode(module.OK) == b"+OK\r\n"
    assert encode(module.Status("QUEUED")) == b"+QUEUED\r\n"
    assert encode(None) == b"$-1\r\n"
    assert encode(-7) == b":-7\r\n"
    assert encode(ValueError("bad")) == b"-ERR bad\r\n"
    assert encode([b"a", 1, None, []]) == b"*4\r\n$1\r\na\r\n:1\r\n$-1\r\n*0\r\n"


def test_resp_store_answers_every_command() -> None:
    module = load("resp_server")
    store = module.Store()
    execute = store.execute
    assert execute([b"set", b"k", b"1"]) is module.OK
    assert execute([b"GET", b"k"]) == b"1"
    assert execute([b"GET", b"k", b"x"]).args == ("unknown command or wrong arguments b'GET'",)
    assert execute([b"SET", b"k"]).args == ("unknown command or wrong arguments b'SET'",)
    assert execute([b"INCR", b"k"]) == 2
    assert execute([b"PING"]) is module.PONG
    assert execute([b"PING", b"hi"]) == execute([b"ECHO", b"hi"]) == b"hi"
    assert execute([b"EXISTS", b"k", b"nope"]) == 1
    assert execute([b"DEL", b"k", b"k"]) == 1
    assert execute([b"GET", b"k"]) is None
    assert execute([b"COMMAND"]) == []
    assert isinstance(execute([]), ValueError)


def test_resp_incr_keeps_to_signed_64_bit_integers_as_redis_does() -> None:
    execute = load("resp_server").Store().execute
    assert execute([b"INCR", b"n"]) == 1
    execute([b"SET", b"n", b"%d" % (2**63 - 2)])
    assert execute([b"INCR", b"n"]) == 2**63 - 1
    assert execute([b"INCR", b"n"]).args == ("increment or decrement would overflow",)
    assert execute([b"GET", b"n"]) == b"%d" % (2**63 - 1)
    execute([b"SET", b"n", b"%d" % -(2**63)])
    assert execute([b"INCR", b"n"]) == -(2**63) + 1
    # Only what Redis reads as an integer: no sign but "-", no spaces, no leading zeros.
    for stored in [b"%d" % 2**63, b"9" * 30, b"+7", b" 7", b"7 ", b"0_7", b"07", b"-0", b"",
                   b"-", b"1e3", "\u0663".encode()]:
        execute([b"SET", b"n", stored])
        reply = execute([b"INCR", b"n"])
        assert reply.args == ("value is not an integer or out of range",), stored
        assert execute([b"GET", b"n"]) == stored


def resp_exchange(port: int, data: bytes, *, until: int | None = None) -> bytes:
    """What the server replies to ``data``: up to its close, or its first ``until`` bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        while until is None or len(received) < until:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_resp_server_refuses_bad_headers_and_oversized_commands(resp_server: Running) -> None:
    port = resp_server.port
    for data, reply in [
        (b"*1\r\n$1_0\r\n0123456789\r\n", b"bad bulk string header b'$1_0'"),
        (b"*2\r\n$ 4\r\nPING\r\n$+2\r\nhi\r\n", b"bad bulk string header b'$ 4'"),
        (b"*+1\r\n$4\r\nPING\r\n", b"bad array header b'*+1'"),
        # Four arguments of max_bulk (1 MiB) fill max_command (4 MiB): the fifth's
        # header is refused, not buffered.
        (b"*5\r\n" + (b"$1048576\r\n" + b"v" * (1 << 20) + b"\r\n") * 4 + b"$1\r\n",
         b"command of over 4194305 bytes"),
    ]:
        assert resp_exchange(port, data) == b"-ERR Protocol error: " + reply + b"\r\n"
    # Over MAX_LINE: "inline command too long" when read whole, else "header line too long".
    reply = resp_exchange(port, b"A" * (64 * 1024 + 1) + b"\n")
    assert reply.startswith(b"-ERR Protocol error: ") and reply.endswith(b" too long\r\n")


def test_resp_server_answers_incr_overflow_and_config(resp_server: Running) -> None:
    expected = (b"+OK\r\n:9223372036854775807\r\n-ERR increment or decrement would overflow\r\n"
                b"*0\r\n*0\r\n")
    data = (b"*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$19\r\n9223372036854775806\r\n"
            + b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n" * 2
            + b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n*1\r\n$7\r\nCOMMAND\r\n")
    assert resp_exchange(resp_server.port, data, until=len(expected)) == expected


def redis_cli(port: int, *args: str) -> str:
    result = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) missing")
def test_redis_cli_talks_to_the_resp_server(resp_server: Running) -> None:
    port = resp_server.port
    assert redis_cli(port, "PING") == "PONG"
    assert redis_cli(port, "SET", "counter", "41") == "OK"
    assert redis_cli(port, "INCR", "counter") == "42"
    assert redis_cli(port, "GET", "counter") == "42"
    assert redis_cli(port, "ECHO", "hello world") == "hello world"
    assert redis_cli(port, "EXISTS", "counter", "nope") == "1"
    assert redis_cli(port, "DEL", "counter") == "1"
    assert redis_cli(port, "GET", "counter") == ""
    assert "ERR" in redis_cli(port, "NOSUCHCOMMAND")


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) missing")
def test_redis_cli_pipelined_commands(resp_server: Running) -> None:
    script = "".join(f"SET key{i} value{i}\nGET key{i}\n" for i in range(500))
    result = subprocess.run(["redis-cli", "-p", str(resp_server.port), "--pipe"],
                            input=script, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "errors: 0, replies: 1000" in result.stdout


async def test_protocol_error_gets_an_error_reply_and_the_connection_closes() -> None:
    module = load("resp_server")
    store = module.Store()
    handler = functools.partial(module.handle, store=store)
    async with (
        asyncnet.start_server(handler, framing=module.RESP(max_bulk=16)) as server,
        asyncnet.open_connection("127.0.0.1", server.sockets[0].getsockname()[1]) as conn,
    ):
        conn.send_nowait(b"*1\r\n$4\r\nPING\r\n*1\r\n$99\r\n")
        replies = b""
        async for chunk in conn:
            replies += chunk
    assert replies.startswith(b"+PONG\r\n-ERR Protocol error")


async def test_callback_style_protocol_error_after_pipelined_commands() -> None:
    module = load("resp_server")
    store = module.Store()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: module.RESPProtocol(store), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with asyncnet.open_connection("127.0.0.1", port) as conn:
            # Two commands and a malformed header in one read: both replies,
            # then the error reply, then the server closes.
            conn.send_nowait(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                             b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*x\r\n")
            replies = b""
            async for chunk in conn:
                replies += chunk
        assert replies == b"+OK\r\n$1\r\nv\r\n-ERR Protocol error: bad array header b'*x'\r\n"
    finally:
        server.close()
        await server.wait_closed()


# -- chat_server.py ----------------------------------------------------------------------


class LineReader:
    """Lines from a child's stdout, read by a thread, so every wait has a bound."""

    def __init__(self, stream: Any) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the pump to see end of file (call after the child ended)."""
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the child's stdout never ended"

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)

    def next(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, wanted: Any, what: str) -> str:
        """The first line ``wanted(line)`` accepts; fail after 30 s without one."""
        for _ in range(300):
            line = self.next(0.1)
            if line is not None and wanted(line.rstrip()):
                return line
        pytest.fail(f"no {what} line within 30 s")


def wait_until_in_the_room(heard: LineReader, port: int, client: str) -> None:
    """Wait until a client program that listens is in the room.

    It connects on its own time: it is in once it hears a line a probe keeps
    sending (a bounded number of times).
    """
    with socket.create_connection(("127.0.0.1", port)) as probe:
        for _ in range(300):
            probe.sendall(b"probe\n")
            line = heard.next(0.1)
            if line is not None and line.rstrip().endswith(": probe"):
                return
    pytest.fail(f"the {client} listener never joined the room")


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat missing")
def test_socat_clients_chat_through_the_server(chat_server: Running) -> None:
    address = f"TCP:127.0.0.1:{chat_server.port}"
    with subprocess.Popen(["socat", "-u", address, "STDOUT"], stdout=subprocess.PIPE,
                          text=True) as listener:
        assert listener.stdout is not None
        heard = LineReader(listener.stdout)
        try:
            wait_until_in_the_room(heard, chat_server.port, "socat")
            with subprocess.Popen(["socat", "-", address], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True) as talker:
                try:
                    assert talker.stdin is not None
                    # The talker's join line proves the room knows both clients.
                    joined = heard.wait_for(lambda s: s.endswith("joined"), "join")
                    assert joined.startswith("* 127.0.0.1:"), joined
                    talker.stdin.write("hello, room\n")
                    talker.stdin.flush()
                    heard.wait_for(lambda s: s.endswith(": hello, room"), "message")
                finally:
                    talker.terminate()
        finally:
            listener.terminate()
            listener.wait(timeout=30)
            heard.join()


@pytest.mark.skipif(shutil.which("nc") is None, reason="nc (netcat) missing")
def test_nc_clients_chat_through_the_server_and_see_control_characters_escaped(
    chat_server: Running,
) -> None:
    # Two netcat clients, each with its stdin held open: one listens, one
    # talks, and what the talker sends reaches the listener's terminal as
    # text (an ESC as the four characters \x1b), never as a terminal command.
    command = ["nc", "127.0.0.1", str(chat_server.port)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as listener:
        assert listener.stdout is not None
        heard = LineReader(listener.stdout)
        try:
            wait_until_in_the_room(heard, chat_server.port, "nc")
            with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  text=True) as talker:
                try:
                    assert talker.stdin is not None
                    heard.wait_for(lambda s: s.endswith("joined"), "join")
                    talker.stdin.write("hello \x1b[2J room\n")
                    talker.stdin.flush()
                    said = heard.wait_for(lambda s: "hello" in s, "message")
                    assert said.rstrip().endswith(": hello \\x1b[2J room"), repr(said)
                    assert "\x1b" not in said
                finally:
                    talker.terminate()
        finally:
            listener.terminate()
            listener.wait(timeout=30)
            heard.join()


async def test_a_member_that_does_not_read_is_dropped_and_the_room_stays_bounded() -> None:
    module = load("chat_server")
    room = module.ChatRoom(max_backlog=64 * 1024)
    peaks: list[int] = []
    original = room.broadcast

    def broadcast(sender: Any, line: bytes) -> None:
        original(sender, line)
        peaks.extend(m.statistics().write_buffer_size for m in room.members)

    room.broadcast = broadcast
    framing = asyncnet.Lines(max_length=4096)
    async with asyncnet.start_server(room.handle, framing=framing) as server:
        port = server.sockets[0].getsockname()[1]
        # A member that never reads, with small kernel buffers so it clogs fast.
        sleeper = socket.create_connection(("127.0.0.1", port))
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            async with asyncnet.open_connection("127.0.0.1", port, framing=framing) as talker:
                for _ in range(200):
                    if len(room.members) == 2:
                        break
                    await asyncio.sleep(0.01)
                line = b"x" * 1000
                for _ in range(20_000):
                    await talker.send(line)
                    if room.dropped:
                        break
                assert room.dropped == 1
                assert len(room.members) == 1
        finally:
            sleeper.close()
    # Never more than the backlog limit plus the line that crossed it.
    assert max(peaks) <= 64 * 1024 + 1100


async def test_chat_relays_control_characters_escaped() -> None:
    module = load("chat_server")
    room = module.ChatRoom()
    framing = asyncnet.Lines(max_length=module.MAX_LINE)
    # LF only, so that a CR the server let through would show in the frame.
    lf = asyncnet.Lines(ending="lf")
    async with asyncnet.start_server(room.handle, framing=framing) as server:
        port = server.sockets[0].getsockname()[1]
        async with (
            asyncnet.open_connection("127.0.0.1", port, framing=lf) as listener,
            asyncnet.open_connection("127.0.0.1", port, framing=lf) as talker,
        ):
            # The listener joined first: it hears the talker join.
            host, talker_port = talker.sockname[:2]
            assert await listener.receive() == b"* %s:%d joined" % (host.encode(), talker_port)
            await talker.send("\x1b]0;pwned\x07\x1b[2Jhi\tthere\rX\x7f\u009b\u00e9".encode()
                              + b"\xff")
            line = await listener.receive()
    assert line == b"%s:%d: " % (host.encode(), talker_port) + (
        b"\\x1b]0;pwned\\x07\\x1b[2Jhi\tthere\\x0dX\\x7f\\x9b" + "\u00e9\ufffd".encode())
    assert not any((byte < 0x20 and byte != 9) or byte == 0x7f for byte in line)
