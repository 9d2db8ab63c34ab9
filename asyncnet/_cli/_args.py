"""Argument types shared by the subcommands.

argparse turns ``ArgumentTypeError`` into a usage error (exit status 2) that
quotes the message.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["non_negative_float", "non_negative_int", "positive_float", "positive_int"]


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
