"""Mocking asyncnet in pytest: MockTransport answers in place of the network."""

import asyncio
import json

import pytest

import asyncnet
from asyncnet.testing import MockResponse, MockTransport


# The code under test takes its client as an argument, so a test can pass one in.
async def user_name(client: asyncnet.HTTPClient, user_id: int) -> str:
    resp = await client.get(f"https://api.example/users/{user_id}")
    resp.raise_for_status()
    return (await resp.json())["name"]


def api(request: asyncnet.Request) -> MockResponse:
    """A fake API: one user, 404 for everyone else."""
    if request.url.path == "/users/7":
        body = json.dumps({"id": 7, "name": "Ada"})
        return MockResponse(200, {"Content-Type": "application/json"}, body)
    return MockResponse(404, body=b"no such user")


@pytest.fixture
def client_factory():
    """HTTPClients whose requests go to ``api``; each test makes its own."""
    return lambda: asyncnet.HTTPClient(transport=MockTransport(api))


def test_user_name(client_factory) -> None:
    async def run() -> None:
        async with client_factory() as client:
            assert await user_name(client, 7) == "Ada"
            with pytest.raises(asyncnet.HTTPStatusError):
                await user_name(client, 8)

    asyncio.run(run())  # or an async test under pytest-asyncio or anyio


def test_what_the_code_sent() -> None:
    sent: list[asyncnet.Request] = []

    def recording(request: asyncnet.Request) -> MockResponse:
        sent.append(request)
        return api(request)

    async def run() -> None:
        async with asyncnet.HTTPClient(transport=MockTransport(recording)) as client:
            await user_name(client, 7)

    asyncio.run(run())
    assert [(r.method, str(r.url)) for r in sent] == [("GET", "https://api.example/users/7")]
    assert sent[0].headers["Accept"] == "*/*"
