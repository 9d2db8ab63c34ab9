"""When a URL is fetched again: which failures are retried, and after how long.

Connection errors, timeouts and the statuses that mean "try again later"
(429, 502, 503, 504) are retried (for idempotent methods only: the engine
decides that), after exponential backoff with jitter from the caller's base,
or as the server's ``Retry-After`` asks, up to the caller's cap.
``Retry-After`` is text the server controls: anything that is not a usable
wait counts as no ``Retry-After`` at all.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time

from .._errors import TimeoutError as AsyncNetTimeoutError
from .._errors import TransportError
from ._results import FetchResult

__all__ = ["retry_wait"]

# Statuses that mean "try again later" rather than "this is wrong".
_RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Backoff doubles from this base up to _BACKOFF_MAX seconds.
_BACKOFF_MAX = 10.0
# Doublings beyond this change nothing for any base above 1e-300 s (2 ** 1023
# is the largest power of two a float holds).
_BACKOFF_MAX_DOUBLINGS = 1000

# Retry-After in delay-seconds: ASCII digits only (str.isdigit() also accepts
# "²" and "٣", which float() refuses or misreads), and few enough of them to
# stay a real number of seconds.
_DELAY_SECONDS = re.compile(r"[0-9]{1,10}")
# A Retry-After asking for more than a year is not a wait anyone means; it is
# treated as no Retry-After at all (backoff), like garbage.
_RETRY_AFTER_ABSURD = 366 * 24 * 3600.0


def retry_wait(
    result: FetchResult, attempt: int, retry_backoff: float, retry_after_max: float
) -> float | None:
    """Seconds to wait before retrying ``result``, or ``None`` not to retry."""
    if result.error is not None:
        if isinstance(result.error, (TransportError, AsyncNetTimeoutError)):
            return _backoff(attempt, retry_backoff)
        return None
    if result.status in _RETRY_STATUSES:
        assert result.headers is not None
        asked = _retry_after(result.headers.get("Retry-After"))
        if asked is not None:
            return min(asked, retry_after_max)
        return _backoff(attempt, retry_backoff)
    return None


def _retry_after(value: str | None) -> float | None:
    """Parse a Retry-After value (seconds or an HTTP date) into seconds from now.

    The server controls this text, so anything that is not a usable wait
    gives ``None`` ("no Retry-After", the caller backs off instead), never
    an exception: non-ASCII digits such as "²" (``str.isdigit`` accepts them,
    ``float`` does not), dates whose year overflows, negative, non-finite or
    absurdly long waits.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)  # a few ASCII digits: cannot fail or overflow
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                return None
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        # A date in the past means "now" (RFC 9110 section 10.2.3).
        seconds = max(0.0, seconds)
    if not math.isfinite(seconds) or seconds > _RETRY_AFTER_ABSURD:
        return None
    return seconds


def _backoff(attempt: int, base: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    # The exponent is capped before it is used: 2.0 ** 1100 overflows, and a
    # caller may well allow that many retries.
    delay = min(_BACKOFF_MAX, base * 2.0 ** min(attempt - 1, _BACKOFF_MAX_DOUBLINGS))
    return delay / 2 + random.uniform(0, delay / 2)
