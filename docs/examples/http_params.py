"""Query parameters: merged with the URL's own query, RFC 3986-encoded, None dropped."""

import asyncio

from _http_server import Handler, serve

import asyncnet


class Echo(Handler):
    def do_GET(self) -> None:
        self.reply(200, self.path.encode())


async def main(base: str) -> None:
    async with asyncnet.HTTPClient(params={"api_key": "k1"}) as client:
        resp = await client.get(
            base + "/search?lang=en",
            params={"q": "café & tea", "tag": ["a", "b"], "page": 2, "debug": None},
        )
        print("the server saw:", await resp.text())


with serve(Echo) as base:
    asyncio.run(main(base))
