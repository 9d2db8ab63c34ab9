"""Argument types shared by the subcommands.

argparse turns ``ArgumentTypeError`` into a usage error (exit status 2) that
quotes the message.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "non_negative_float",
    "non_negative_int",
    "port_number",
    "positive_float",
    "positive_int",
]

# TCP and UDP port numbers are 16 bits (RFC 793); 0 asks the system for a free one.
_MAX_PORT = 65535


def port_number(text: str) -> int:
    """Parse a port number, 0 to 65535, for ``type=``; anything else is a usage error.

    Without this, ``--port 70000`` reaches the socket layer and comes back
    as a traceback ("port must be 0-65535") instead of a one-line message.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"a port is 0 to {_MAX_PORT}, not {text}")
    return value


_N = TypeVar("_N", int, float)


def _number(
    text: str, kind: Callable[[str], _N], noun: str, ok: Callable[[_N], bool], rule: str
) -> _N:
    """Parse ``text`` with ``kind``; refuse it unless ``ok(value)``, saying ``rule``."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}: {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse an integer of at least 1 for ``type=``; counts and limits must not be 0."""
    return _number(text, int, "an integer", lambda value: value >= 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    """Parse an integer of 0 or more for ``type=``; 0 means "none" (e.g. no retries)."""
    return _number(text, int, "an integer", lambda value: value >= 0, "must be 0 or more")


def positive_float(text: str) -> float:
    """Parse a number of seconds above 0 for ``type=``; NaN is refused too."""
    return _number(text, float, "a number", lambda value: value > 0, "must be positive")


def non_negative_float(text: str) -> float:
    """Parse a number of seconds of 0 or more for ``type=``; 0 means "no limit"."""
    return _number(
        text, float, "a number", lambda value: 0 <= value < math.inf, "must be 0 or more seconds"
    )
