"""When a timed wait must end: its own timeout, or the total deadline if that comes first.

Every phase of a request (waiting for a pool slot, connecting, writing,
reading) is bounded twice: by the phase's own timeout and by the request's
total deadline. The earlier of the two decides, and the caller must know which
one it was to raise the right error (a phase timeout or
:class:`~asyncnet.TotalTimeout`). Pure: the caller passes its clock.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["wait_end"]


def wait_end(
    timeout: float | None, deadline: float | None, clock: Callable[[], float]
) -> tuple[float, bool] | None:
    """Return ``(when, is_total)`` for a wait of at most ``timeout`` seconds from now.

    ``when`` is on ``clock``'s time line (the loop's ``time``), ``is_total``
    says that the total ``deadline`` is what ends the wait; ``None`` when
    neither bounds it. On a tie the deadline wins, so the error names it. The
    clock is read only when ``timeout`` is given.
    """
    if timeout is None:
        return None if deadline is None else (deadline, True)
    when = clock() + timeout
    if deadline is not None and deadline <= when:
        return (deadline, True)
    return (when, False)
