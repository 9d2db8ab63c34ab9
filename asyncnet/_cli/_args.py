"""Argument types shared by the subcommands.

argparse turns ``ArgumentTypeError`` into a usage error (exit status 2) that
quotes the message.
"""

from __future__ import annotations

import argparse

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


def positive_int(text: str) -> int:
    """Parse an integer of at least 1 for ``type=``; counts and limits must not be 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer of 0 or more for ``type=``; 0 means "none" (e.g. no retries)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def positive_float(text: str) -> float:
    """Parse a number of seconds above 0 for ``type=``; NaN is refused too."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """Parse a number of seconds of 0 or more for ``type=``; 0 means "no limit"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value
