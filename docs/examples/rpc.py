"""Length-prefixed JSON RPC: many requests in flight on one connection, answered out of order.

Each message is a JSON object in a ``LengthPrefixed`` frame. The client tags
requests with an ``id`` and matches replies by it, so it need not wait for
one answer before asking the next question. The server runs each request in
its own task, at most ``MAX_IN_FLIGHT`` per connection: past that it stops
taking frames, its queue fills and reading pauses, so a client that floods it
is slowed down instead of growing its memory.

Every request gets a reply: its ``result``, or an ``error`` object with a
JSON-RPC 2.0 code and a message (a frame that is not JSON, not a request
object, a method that does not exist, bad parameters, a result JSON cannot
hold), and the connection and the other calls on it go on; only a frame over
``max_frame`` ends the connection, once the calls in flight are answered. The
server serves at most ``MAX_CONNECTIONS`` clients and closes a connection on
which nothing moved for ``IDLE_TIMEOUT`` seconds.

Run it to see 200 calls over one connection::

    python docs/examples/rpc.py
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncnet

MAX_IN_FLIGHT = 64
FRAMING = asyncnet.LengthPrefixed(size=4, max_frame=1 << 20)
# The client chooses how long slow_square sleeps, so a call can hold a task
# (and its connection) for at most this long.
MAX_DELAY = 10.0
# Well above MAX_DELAY: a client waiting for its slowest answer is not idle.
IDLE_TIMEOUT = 60.0
MAX_CONNECTIONS = 1000

# JSON-RPC 2.0's error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603)

RequestId = int | str | None
Method = Callable[..., Awaitable[Any]]


class RPCError(Exception):
    """A request that cannot be served: its error reply's code and message."""

    def __init__(self, code: int, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


async def slow_square(x: float, delay: float = 0.0) -> float:
    """``x * x`` after ``delay`` seconds, both numbers chosen by the client."""
    if not all(type(value) in (int, float) for value in (x, delay)):
        raise RPCError(INVALID_PARAMS, "x and delay must be numbers")
    if not 0 <= delay <= MAX_DELAY:  # NaN fails both comparisons
        raise RPCError(INVALID_PARAMS, f"delay must be from 0 to {MAX_DELAY} seconds")
    await asyncio.sleep(delay)
    return x * x


METHODS: dict[str, Method] = {"slow_square": slow_square}


def parse(frame: bytes) -> tuple[int | str, Method, dict[str, Any]]:
    """A request's id, method and parameters; RPCError if the frame is not a valid request."""
    try:
        request = json.loads(frame.decode())
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
        raise RPCError(PARSE_ERROR, f"not UTF-8 JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("id"), int | str):
        raise RPCError(INVALID_REQUEST, 'a request is an object with an "id" (number or string)')
    request_id, name, params = request["id"], request.get("method"), request.get("params", {})
    if not isinstance(name, str) or name not in METHODS:
        raise RPCError(METHOD_NOT_FOUND, "no such method", request_id)
    if not isinstance(params, dict):
        raise RPCError(INVALID_PARAMS, '"params" must be an object', request_id)
    return request_id, METHODS[name], params


def error_reply(request_id: RequestId, code: int, message: str) -> bytes:
    """A JSON-RPC error reply (``request_id`` None: the request's id could not be read)."""
    return json.dumps({"id": request_id, "error": {"code": code, "message": message}}).encode()


async def serve(conn: asyncnet.Connection[bytes]) -> None:
    """The server side of one connection."""
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def answer(request_id: int | str, method: Method, params: dict[str, Any]) -> None:
        try:
            result = await method(**params)
            reply = json.dumps({"id": request_id, "result": result}, allow_nan=False).encode()
        except RPCError as exc:
            reply = error_reply(request_id, exc.code, str(exc))
        except TypeError as exc:  # parameters the method does not take
            reply = error_reply(request_id, INVALID_PARAMS, str(exc))
        except Exception as exc:  # the caller gets the error, the connection lives on
            reply = error_reply(request_id, INTERNAL_ERROR, repr(exc))
        finally:
            slots.release()
        await conn.send(reply)

    try:
        async with asyncio.TaskGroup() as tasks:
            try:
                async for frame in conn:
                    try:
                        request_id, method, params = parse(frame)
                    except RPCError as exc:
                        await conn.send(error_reply(exc.request_id, exc.code, str(exc)))
                    else:
                        await slots.acquire()
                        tasks.create_task(answer(request_id, method, params))
            except asyncnet.RemoteProtocolError as exc:  # over max_frame, or cut by EOF: no more
                await conn.send(error_reply(None, INVALID_REQUEST, str(exc)))
    except* asyncnet.TransportError:
        pass  # the client left (or was idle too long): no one to answer


@contextlib.asynccontextmanager
async def rpc_server(port: int = 0, *, idle_timeout: float = IDLE_TIMEOUT,
                     max_connections: int = MAX_CONNECTIONS) -> AsyncIterator[asyncnet.Server]:
    """The server on 127.0.0.1, with the limits that protect it from its clients."""
    async with asyncnet.start_server(serve, "127.0.0.1", port, framing=FRAMING,
                                     idle_timeout=idle_timeout,
                                     max_connections=max_connections) as server:
        yield server


class Client:
    """Calls on one connection; a reader task hands each reply to its caller."""

    def __init__(self, conn: asyncnet.Connection[bytes]) -> None:
        self.conn = conn
        self.ids = itertools.count()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.create_task(self._read())
        self.order: list[int] = []

    async def _read(self) -> None:
        async for frame in self.conn:
            reply = json.loads(frame)
            self.order.append(reply["id"])
            future = self.pending.pop(reply["id"])
            if "error" in reply:
                future.set_exception(RPCError(reply["error"]["code"], reply["error"]["message"]))
            else:
                future.set_result(reply["result"])

    async def call(self, method: str, **params: Any) -> Any:
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self.conn.send(json.dumps(
            {"id": request_id, "method": method, "params": params}).encode())
        return await future

    async def aclose(self) -> None:
        self.conn.send_eof()
        await self.reader
        await self.conn.aclose()


async def main() -> None:
    rng = random.Random(15)
    async with rpc_server() as server:
        port = server.sockets[0].getsockname()[1]
        client = Client(await asyncnet.open_connection("127.0.0.1", port, framing=FRAMING))
        calls = [client.call("slow_square", x=i, delay=rng.uniform(0, 0.05)) for i in range(200)]
        results = await asyncio.gather(*calls)
        await client.aclose()
        stats = server.statistics()
    print(f"{len(results)} calls on {stats.total_connections} connection: "
          f"results correct: {results == [i * i for i in range(200)]}")
    print(f"replies arrived out of order: {client.order != sorted(client.order)}")


if __name__ == "__main__":
    asyncio.run(main())
