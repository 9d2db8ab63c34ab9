"""What a server writes in its status line reaches ``repr()`` and ``str()`` only escaped.

A reason phrase may hold HTAB and obs-text (RFC 9112 section 4), which
decodes to C1 controls such as U+009B, a one-byte CSI for terminals that
accept 8-bit controls: printing a response or its status error must not let
the server drive the terminal.
"""

from __future__ import annotations

import pickle

import pytest

import asyncnet
from asyncnet import HTTPClient
from asyncnet._text import is_terminal_safe
from tests.support.servers import RawServer

HOSTILE = b"HTTP/1.1 404 Gone\x9b2J\x85\tnow\xad\r\nContent-Length: 0\r\n\r\n"


async def test_repr_and_status_error_are_escaped() -> None:
    async with RawServer(responses=[HOSTILE]) as server, HTTPClient() as client:
        response = await client.get(server.url("/x"))
        assert response.reason == "Gone\x9b2J\x85\tnow\xad"  # kept as sent for callers
        text = repr(response)
        assert is_terminal_safe(text)
        assert text == "<Response [404 Gone\\x9b2J\\x85\\tnow\xad]>"
        with pytest.raises(asyncnet.HTTPStatusError) as info:
            response.raise_for_status()
    message = str(info.value)
    assert is_terminal_safe(message)
    assert "Gone\\x9b2J\\x85\\tnow" in message
    # Escaping is idempotent, so a pickled error reads the same.
    assert str(pickle.loads(pickle.dumps(info.value))) == message
