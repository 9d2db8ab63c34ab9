"""Event hooks of the HTTP client, and the :class:`Request` they (and mock handlers) see.

``HTTPClient(event_hooks={"request": [...], "response": [...]})``: each hook
is a function or a coroutine function. Request hooks run before every
request is written (each redirect hop and each retry is a request of its
own) and may change ``request.headers``; response hooks run when each
response head has arrived (redirect hops included), before its body is
read. A hook that raises aborts the request: the exception reaches the
caller unchanged, and the response (if any) is closed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from .._errors import UsageError
from ._headers import Headers
from ._url import URL

__all__ = ["EventHooks", "Hook", "Request", "call_hooks", "check_event_hooks"]

Hook = Callable[[Any], Awaitable[object] | object]
EventHooks = Mapping[str, Iterable[Hook]]

_KINDS: Final = ("request", "response")


class Request:
    """An HTTP request as a hook or a mock handler sees it.

    :attr:`headers` is the complete set the client is about to send (defaults,
    client headers, per-request headers, ``Authorization`` from the URL), not
    ``Host`` and the framing fields, which are written from the URL and the
    body. Request hooks may change :attr:`headers`. :attr:`content` is the
    body when it is bytes (``None`` for a streamed body in a hook); a mock
    handler always gets the full body as received.
    """

    __slots__ = ("content", "headers", "method", "url")

    def __init__(self, method: str, url: URL, headers: Headers, content: bytes | None) -> None:
        #: The method, upper-case.
        self.method = method
        #: The target :class:`~asyncnet.URL`.
        self.url = url
        #: The header fields (mutable in request hooks).
        self.headers = headers
        #: The body bytes, or ``None``.
        self.content = content

    def __repr__(self) -> str:
        return f"<Request [{self.method} {self.url}]>"


def check_event_hooks(event_hooks: EventHooks | None) -> tuple[tuple[Hook, ...], tuple[Hook, ...]]:
    """Validate ``event_hooks`` and return the request and response hooks as tuples."""
    if event_hooks is None:
        return (), ()
    if not isinstance(event_hooks, Mapping):
        raise UsageError("event_hooks must be a mapping of 'request'/'response' to lists")
    unknown = set(event_hooks) - set(_KINDS)
    if unknown:
        raise UsageError(f"unknown event hook kinds {sorted(unknown)!r}: use 'request', 'response'")
    found: list[tuple[Hook, ...]] = []
    for kind in _KINDS:
        hooks = tuple(event_hooks.get(kind, ()))
        for hook in hooks:
            if not callable(hook):
                raise UsageError(f"{kind} hook {hook!r} is not callable")
        found.append(hooks)
    return found[0], found[1]


async def call_hooks(hooks: Sequence[Hook], subject: object) -> None:
    """Call each hook with ``subject``, awaiting those that return an awaitable."""
    for hook in hooks:
        result = hook(subject)
        if inspect.isawaitable(result):
            await result
