"""The exception hierarchy: every class catchable as the builtin a caller already knows."""

from __future__ import annotations

import builtins
import errno
import socket
import zlib

import pytest

import asyncnet
from asyncnet._http._decoders import make_decoder
from asyncnet._http._redirects import next_request
from asyncnet._http._url import parse_url

TIMEOUTS = [
    asyncnet.ConnectTimeout,
    asyncnet.ReadTimeout,
    asyncnet.WriteTimeout,
    asyncnet.PoolTimeout,
    asyncnet.TotalTimeout,
    asyncnet.IdleTimeout,
]
CONNECTION = [
    asyncnet.ConnectError,
    asyncnet.ProxyError,
    asyncnet.ReadError,
    asyncnet.WriteError,
    asyncnet.ConnectionClosed,
]
CALLER = [
    asyncnet.InvalidURL,
    asyncnet.InvalidHeader,
    asyncnet.InvalidMethod,
    asyncnet.BodyNotReplayable,
    asyncnet.LocalProtocolError,
]


@pytest.mark.parametrize("cls", TIMEOUTS)
def test_timeouts_are_builtin_timeouts(cls: type[Exception]) -> None:
    assert issubclass(cls, asyncnet.TimeoutError)
    assert issubclass(cls, builtins.TimeoutError)
    with pytest.raises(builtins.TimeoutError):
        raise cls("late")


@pytest.mark.parametrize("cls", CONNECTION)
def test_transport_errors_are_connection_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, asyncnet.TransportError)
    with pytest.raises(ConnectionError):
        raise cls("gone")


@pytest.mark.parametrize("cls", CALLER)
def test_caller_mistakes_are_value_errors(cls: type[Exception]) -> None:
    with pytest.raises(ValueError):
        raise cls("bad")


def test_everything_derives_from_the_base() -> None:
    for name in asyncnet._errors.__all__:
        cls = getattr(asyncnet, name)
        assert issubclass(cls, asyncnet.AsyncNetError), name


def test_remote_protocol_error_is_a_protocol_error_but_not_a_value_error() -> None:
    assert issubclass(asyncnet.RemoteProtocolError, asyncnet.ProtocolError)
    assert not issubclass(asyncnet.RemoteProtocolError, ValueError)


# asyncnet translates foreign errors at its boundaries with ``raise X from exc``;
# each case below drives one of those boundaries through asyncnet's own code
# and checks that the original error survives as ``__cause__``.


def test_corrupt_gzip_becomes_decode_error_with_the_zlib_error_as_cause() -> None:
    decoder = make_decoder("gzip")
    assert decoder is not None
    with pytest.raises(asyncnet.DecodeError, match="gzip") as info:
        decoder.decode(b"\x1f\x8b\x08\x00" + b"\xff" * 32)
    assert isinstance(info.value.__cause__, zlib.error)


def test_undecodable_userinfo_becomes_invalid_url_with_the_unicode_error_as_cause() -> None:
    with pytest.raises(asyncnet.InvalidURL, match="not UTF-8") as info:
        parse_url("http://%ff@example.com/")
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_bad_redirect_location_becomes_remote_error_with_the_url_error_as_cause() -> None:
    url = parse_url("http://example.com/a")
    with pytest.raises(asyncnet.RemoteProtocolError, match="not a valid URL") as info:
        next_request("GET", url, [], 302, "http://[zz/")
    assert isinstance(info.value.__cause__, asyncnet.InvalidURL)


async def test_refused_echo_connect_becomes_connect_error_with_the_os_error_as_cause() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # Bound but not listening: the connection is refused.
        with pytest.raises(asyncnet.ConnectError, match="cannot connect") as info:
            async with asyncnet.open_echo_client("127.0.0.1", port):
                pass
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_busy_port_becomes_connect_error_with_the_os_error_as_cause() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(asyncnet.ConnectError, match="cannot listen") as info:
            await asyncnet.start_echo_server("127.0.0.1", port)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.EADDRINUSE


def test_too_many_redirects_carries_history() -> None:
    err = asyncnet.TooManyRedirects("too many", history=[])
    assert err.history == []
