"""A response size cap: over max_body fails with BodyTooLarge, decompressed bytes included."""

import asyncio
import gzip

from _http_server import Handler, serve

import asyncnet


class Big(Handler):
    def do_GET(self) -> None:
        if self.path == "/bomb":  # 10 MB of zeros in about 10 KB of gzip
            self.reply(200, gzip.compress(bytes(10_000_000)), [("Content-Encoding", "gzip")])
        else:
            self.reply(200, b"x" * 5_000_000)


async def main(base: str) -> None:
    async with asyncnet.HTTPClient(max_body=1_000_000) as client:
        for path in ("/big", "/bomb"):
            try:
                await client.get(base + path)
            except asyncnet.BodyTooLarge as exc:
                print(f"{path}: BodyTooLarge (limit {exc.limit} bytes)")
        resp = await client.get(base + "/big", max_body=10_000_000)
        print("/big with max_body=10_000_000:", len(resp.content), "bytes")


with serve(Big) as base:
    asyncio.run(main(base))
