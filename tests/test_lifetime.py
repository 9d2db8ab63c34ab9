"""Opening things two ways, noticing the ones left open, and the public names' module.

``start_*``/``open_*`` work both awaited and as ``async with``; a client or
connection garbage-collected while open warns with the line that made it;
statistics taken after close show nothing open; tracebacks and reprs name
``asyncnet.X``, not the private module that defines it.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import asyncnet
from asyncnet import (
    HTTPClient,
    Raw,
    open_connection,
    open_echo_client,
    start_echo_server,
    start_server,
)
from asyncnet._cli._demo_server import DemoHTTPServer
from tests.support.servers import RawServer, response

ROOT = Path(__file__).resolve().parents[1]


def here() -> int:
    """The line number of the caller: where the next statement makes the object."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


# -- await or async with ---------------------------------------------------------------


async def test_start_echo_server_and_open_echo_client_work_both_ways() -> None:
    async with start_echo_server() as server:
        port = server.sockets[0].getsockname()[1]
        async with open_echo_client(port=port) as client:
            assert await client.echo(b"with") == b"with"
            kept = client
        assert kept.transport.is_closing()
        client = await open_echo_client(port=port)
        try:
            assert await client.echo(b"await") == b"await"
        finally:
            await client.aclose()
    assert not server.is_serving()
    awaited = await start_echo_server()
    try:
        assert awaited.is_serving()
    finally:
        await awaited.shutdown(0)


async def test_the_toolkit_and_echo_share_one_opening_helper() -> None:
    from asyncnet._lifetime import Opening

    with pytest.raises(asyncnet.UsageError, match="either host/port or path"):
        start_echo_server(path="/x", port=1)  # refused at the call, before any await
    for opening in (start_echo_server(), start_server(lambda conn: asyncio.sleep(0))):
        assert isinstance(opening, Opening)
        server = await opening
        await server.shutdown(0)


# -- left open: a ResourceWarning naming the line ------------------------------------------


async def test_an_echo_client_left_open_warns_with_its_creation_line() -> None:
    async with start_echo_server() as server:
        port = server.sockets[0].getsockname()[1]
        line = here()
        client = await open_echo_client(port=port)
        transport, protocol = client.transport, client.protocol
        where = rf"EchoClient created at .*test_lifetime\.py:{line}"
        with pytest.warns(ResourceWarning, match=where):
            del client
            gc.collect()
        transport.close()
        await protocol.closed


async def test_a_connection_left_open_warns_with_its_creation_line() -> None:
    async def handler(conn: asyncnet.Connection[bytes]) -> None:
        async for _ in conn:
            pass

    async with start_server(handler, framing=Raw()) as server:
        port = server.sockets[0].getsockname()[1]
        line = here()
        conn = await open_connection(port=port)
        transport = conn._transport
        where = rf"Connection created at .*test_lifetime\.py:{line}"
        with pytest.warns(ResourceWarning, match=where):
            del conn
            gc.collect()
        transport.close()


async def test_an_http_client_left_open_warns_and_a_closed_one_is_silent() -> None:
    async with RawServer(responses=[response(body=b"hi")], repeat=True) as server:
        line = here()
        client = HTTPClient()
        assert (await client.get(server.url("/"))).content == b"hi"
        pool = client._dispatcher.pool
        assert pool is not None
        where = rf"HTTPClient created at .*test_lifetime\.py:{line}"
        with pytest.warns(ResourceWarning, match=where):
            del client
            gc.collect()
        await pool.aclose()

        closed = HTTPClient()
        await closed.get(server.url("/"))
        await closed.aclose()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            del closed
            gc.collect()
        # Made and dropped without a request: it never held anything.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            HTTPClient()
            gc.collect()


async def test_statistics_after_close_show_nothing_open() -> None:
    from tests.support.servers import client_ssl_context, server_ssl_context

    async with RawServer(
        responses=[response(body=b"x" * 100)], repeat=True, ssl=server_ssl_context()
    ) as server:
        client = HTTPClient(ssl=client_ssl_context())
        await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(6)))
        assert client.statistics().connections_open >= 1
        await client.aclose()
        stats = client.statistics()
        assert (stats.connections_open, stats.connections_idle, stats.pool_waiters) == (0, 0, 0)
        assert stats.connections_opened >= 1  # the history is kept
    async with start_echo_server() as echo:
        port = echo.sockets[0].getsockname()[1]
        async with open_echo_client(port=port) as client2:
            await client2.echo(b"x")
        await echo.shutdown(0)
        assert echo.statistics().current_connections == 0


# -- public names read asyncnet.X --------------------------------------------------------


def test_public_names_belong_to_asyncnet() -> None:
    for name in asyncnet.__all__:
        obj = getattr(asyncnet, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "asyncnet", name
    assert repr(asyncnet.ConnectError) == "<class 'asyncnet.ConnectError'>"
    # Pickling finds the class where it says it lives.
    import pickle

    error = pickle.loads(pickle.dumps(asyncnet.ConnectError("refused")))
    assert type(error) is asyncnet.ConnectError


def test_a_traceback_names_asyncnet_connecterror() -> None:
    code = "import asyncnet\nraise asyncnet.ConnectError('cannot connect')\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "asyncnet.ConnectError: cannot connect"


# -- https:// to a port that speaks plain text ------------------------------------------


async def test_https_to_plain_http_says_so_and_suggests_http() -> None:
    # http.server answers a TLS ClientHello with a plain "400 Bad Request",
    # as most plain HTTP servers do.
    with DemoHTTPServer() as server:
        url = server.url("/fast").replace("http://", "https://")
        async with HTTPClient() as client:
            with pytest.raises(asyncnet.ConnectError) as info:
                await client.get(url)
    message = str(info.value)
    assert "answered in plain text, not TLS" in message
    assert "use http:// instead of https://" in message
    assert "WRONG_VERSION_NUMBER" not in message
    assert isinstance(info.value.__cause__, ssl.SSLError)  # OpenSSL's words kept as the cause


async def test_tls_echo_and_toolkit_clients_to_a_plain_text_server_say_so() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello; answer as a plain-text server would
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    async with RawServer(greet) as server:
        context = ssl.create_default_context()
        with pytest.raises(asyncnet.ConnectError, match="answered in plain text, not TLS"):
            async with open_echo_client(port=server.port, ssl=context):
                pass  # pragma: no cover - the handshake fails first
        with pytest.raises(asyncnet.ConnectError, match="answered in plain text, not TLS"):
            async with open_connection(port=server.port, ssl=context):
                pass  # pragma: no cover
