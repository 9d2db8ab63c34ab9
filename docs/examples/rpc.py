"""Length-prefixed JSON RPC: many requests in flight on one connection, answered out of order.

Each message is a JSON object in a ``LengthPrefixed`` frame. The client tags
requests with an ``id`` and matches replies by it, so it need not wait for
one answer before asking the next question. The server runs each request in
its own task, at most ``MAX_IN_FLIGHT`` per connection: past that it stops
taking frames, its queue fills and reading pauses, so a client that floods it
is slowed down instead of growing its memory.

Run it to see 200 calls over one connection::

    python docs/examples/rpc.py
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from typing import Any

import asyncnet

MAX_IN_FLIGHT = 64
FRAMING = asyncnet.LengthPrefixed(size=4, max_frame=1 << 20)


async def slow_square(x: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return x * x


METHODS = {"slow_square": slow_square}


async def serve(conn: asyncnet.Connection[bytes]) -> None:
    """The server side of one connection."""
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def answer(request: dict[str, Any]) -> None:
        try:
            result = await METHODS[request["method"]](**request["params"])
            reply = {"id": request["id"], "result": result}
        except Exception as exc:  # the caller gets the error, the connection lives on
            reply = {"id": request.get("id"), "error": repr(exc)}
        finally:
            slots.release()
        await conn.send(json.dumps(reply).encode())

    async with asyncio.TaskGroup() as tasks:
        async for frame in conn:
            await slots.acquire()
            tasks.create_task(answer(json.loads(frame)))


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
                future.set_exception(RuntimeError(reply["error"]))
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
    async with asyncnet.start_server(serve, framing=FRAMING) as server:
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
