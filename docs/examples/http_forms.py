"""Forms: data= sends a urlencoded form; files= a streamed multipart/form-data body."""

import asyncio
import email.parser
import email.policy
import io

from _http_server import Handler, serve

import asyncnet


class Upload(Handler):
    def do_POST(self) -> None:
        ctype, body = self.headers["Content-Type"], self.body()
        if ctype.startswith("multipart/"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body
            )
            parts = [
                f"{p.get_param('name', header='content-disposition')}"
                f"({p.get_filename() or 'field'}, {len(p.get_payload(decode=True))} bytes)"
                for p in message.iter_parts()
            ]
            self.reply(200, ", ".join(parts).encode())
        else:
            self.reply(200, ctype.encode() + b" " + body)


async def main(base: str) -> None:
    async with asyncnet.HTTPClient() as client:
        resp = await client.post(base + "/", data={"name": "Zoë", "tags": ["a", "b"]})
        print("form:     ", await resp.text())
        report = io.BytesIO(b"id,total\n1,42\n" * 1000)
        resp = await client.post(
            base + "/",
            data={"title": "Q3"},
            files={"report": ("report.csv", report, "text/csv"), "note": b"raw bytes"},
        )
        print("multipart:", await resp.text())


with serve(Upload) as base:
    asyncio.run(main(base))
