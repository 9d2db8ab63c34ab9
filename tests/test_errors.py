"""The exception hierarchy: every class catchable as the builtin a caller already knows."""

from __future__ import annotations

import builtins

import pytest

import asyncnet

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


def test_cause_is_kept() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as exc:
            raise asyncnet.ConnectError("cannot connect to 127.0.0.1:1") from exc
    except asyncnet.ConnectError as err:
        assert isinstance(err.__cause__, ConnectionRefusedError)


def test_too_many_redirects_carries_history() -> None:
    err = asyncnet.TooManyRedirects("too many", history=[])
    assert err.history == []
