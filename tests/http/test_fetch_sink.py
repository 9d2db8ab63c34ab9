"""``fetch_all`` and ``fetch_iter`` with ``sink=`` (bodies streamed, not kept) and async sources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

import asyncnet
from asyncnet import BodySink, Response, fetch_all, fetch_iter
from asyncnet._cli._demo_server import DemoHTTPServer, body_of
from tests.support.servers import RawServer


class Recorder:
    """A BodySink that records what it was given and how it ended."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        self.data = bytearray()
        self.ends: list[BaseException | None] = []

    def write(self, data: bytes) -> None:
        assert not self.ends, "write after finish"
        self.data += data

    def finish(self, error: BaseException | None) -> None:
        self.ends.append(error)


async def test_sink_gets_every_body_and_nothing_is_kept() -> None:
    sinks: list[Recorder] = []

    def sink(url: str, response: Response) -> BodySink:
        sinks.append(Recorder(url, response.status))
        return sinks[-1]

    with DemoHTTPServer() as server:
        urls = [server.url("/fast?size=100000"), server.url("/chunked?chunks=5&size=1000")]
        urls.append(server.url("/gzip?size=5000"))
        results = await fetch_all(urls, sink=sink)
    assert [r.body for r in results] == [b""] * 3
    assert [r.size for r in results] == [100000, 5000, 5000]
    assert all(r.ok and not r.truncated for r in results)
    by_url = {s.url: s for s in sinks}
    assert bytes(by_url[urls[0]].data) == body_of(100000)
    assert bytes(by_url[urls[1]].data) == body_of(1000) * 5
    assert bytes(by_url[urls[2]].data) == body_of(5000)  # content-decoded
    assert all(s.ends == [None] for s in sinks)


async def test_sink_returning_none_only_counts_and_max_body_still_caps() -> None:
    with DemoHTTPServer() as server:
        urls = [server.url("/fast?size=70000"), server.url("/status?code=404")]
        counted = await fetch_all(urls, sink=lambda url, response: None)
        capped = await fetch_all(urls[:1], sink=lambda url, response: None, max_body=1000)
    assert [(r.status, r.size, r.body) for r in counted] == [(200, 70000, b""), (404, 0, b"")]
    assert (capped[0].size, capped[0].truncated) == (1000, True)
    # Without a sink the size is the kept body's length.
    with DemoHTTPServer() as server:
        kept = await fetch_all([server.url("/fast?size=10")])
    assert (kept[0].body, kept[0].size) == (body_of(10), 10)


async def test_a_body_cut_short_finishes_the_sink_with_the_error() -> None:
    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader, writer)
        await server.send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)
        # The handler ends here, so the server closes the connection 60 bytes early.

    sinks: list[Recorder] = []

    def sink(url: str, response: Response) -> BodySink:
        sinks.append(Recorder(url, response.status))
        return sinks[-1]

    async with RawServer(cut_short) as server:
        results = await fetch_all([server.url("/")], sink=sink)
    error = results[0].error
    assert error is not None and results[0].status is None
    assert len(sinks) == 1 and bytes(sinks[0].data) == b"x" * 40
    assert sinks[0].ends == [error]


async def test_a_failing_sink_is_that_urls_error_only() -> None:
    class Full:
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        def finish(self, error: BaseException | None) -> None:
            pass

    with DemoHTTPServer() as server:
        urls = [server.url("/fast?size=10"), server.url("/status?code=404")]
        results = await fetch_all(
            urls, sink=lambda url, response: Full() if response.status == 200 else None
        )
    assert isinstance(results[0].error, OSError)
    assert results[1].status == 404 and results[1].error is None


async def test_async_url_source_is_pulled_lazily() -> None:
    # The second URL is only produced after the first result was seen:
    # an eager reader of the source would wait for ever (bounded below).
    first_seen = asyncio.Event()
    with DemoHTTPServer() as server:

        async def source() -> AsyncIterator[str]:
            yield server.url("/fast?size=1")
            await first_seen.wait()
            yield server.url("/fast?size=2")

        seen = []
        async with asyncio.timeout(30):
            gen = fetch_iter(source(), concurrency=4)
            async with contextlib.aclosing(gen) as results:
                async for result in results:
                    seen.append(result.size)
                    first_seen.set()
        assert seen == [1, 2]
        ordered = await fetch_all(_listed([server.url(f"/fast?size={n}") for n in range(5)]))
    assert [r.size for r in ordered] == list(range(5))
    assert [r.index for r in ordered] == list(range(5))


async def _listed(urls: list[str]) -> AsyncIterator[str]:
    for url in urls:
        await asyncio.sleep(0)
        yield url


@pytest.mark.parametrize("collect", ["fetch_all", "fetch_iter"])
async def test_deadline_bounds_a_source_that_never_ends(collect: str) -> None:
    # A pipe that stays open and silent after its first URL: the deadline must
    # still end the run, with the workers that wait on the source cancelled.
    never = asyncio.Event()
    with DemoHTTPServer() as server:

        async def source() -> AsyncIterator[str]:
            yield server.url("/fast?size=3")
            await never.wait()
            yield server.url("/fast?size=4")  # pragma: no cover - never reached

        # The bound only turns a regression into a failure instead of a hang.
        async with asyncio.timeout(30):
            if collect == "fetch_all":
                results = await fetch_all(source(), concurrency=3, deadline=1.0)
            else:
                results = [r async for r in fetch_iter(source(), concurrency=3, deadline=1.0)]
    # One result, for the one URL that came; on a slow machine it may be
    # the deadline's own TotalTimeout, which is a result all the same.
    assert len(results) == 1 and results[0].url.endswith("size=3")
    assert results[0].ok or isinstance(results[0].error, asyncnet.TotalTimeout)
