"""Redirect rules, sans-IO: from a request and its 3xx response to the next request.

Pure functions over values: the client asks :func:`next_request` what to send
next and carries the answer out (drains the redirect body, counts hops,
records history). Nothing here opens a connection.

The rules (RFC 9110 §15.4, with what browsers, httpx and urllib3 do where the
RFC leaves a choice):

* Only 301, 302, 303, 307 and 308 redirect; any other status, or one of these
  without a ``Location``, is a final response.
* 303 turns every method except HEAD into GET; 301 and 302 turn POST into
  GET. A request whose method changes this way loses its body; 307 and 308
  (and 301/302 of other methods) keep method and body, which must then be
  replayable (:class:`~asyncnet.BodyNotReplayable` otherwise).
* ``Location`` is resolved against the current URL (RFC 3986 §5); a
  malformed one, or one with a scheme other than http or https, is
  :class:`~asyncnet.RemoteProtocolError`: the server sent it, so it is not
  reported as a caller mistake.
* Credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie``) are
  dropped when the origin (scheme, host, port) changes, which includes any
  move from https to http; a caller's ``Host`` header goes too.
* Headers that describe a body (``Content-Length``, ``Content-Type``,
  ``Transfer-Encoding``, ``Content-Encoding``) are dropped when no body is
  sent on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import BodyNotReplayable, InvalidURL, RemoteProtocolError
from ._rules import CREDENTIAL_HEADERS, REDIRECT_STATUSES
from ._url import URL

__all__ = [
    "BODY_HEADERS",
    "CREDENTIAL_HEADERS",
    "REDIRECT_STATUSES",
    "Redirect",
    "next_request",
    "redirect_method",
]

#: Request headers that describe the body; dropped with it.
BODY_HEADERS: frozenset[str] = frozenset(
    {"content-length", "content-type", "transfer-encoding", "content-encoding"}
)

# RFC 3986 §3.1: a reference that starts with "scheme:" is absolute.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


@dataclass(frozen=True, slots=True)
class Redirect:
    """The request to send after a redirect."""

    method: str
    url: URL
    #: The headers to send, in their original order, minus what the rules removed.
    headers: list[tuple[str, str]]
    #: True if the original body is sent again (the caller must replay it).
    keep_body: bool


def redirect_method(method: str, status: int) -> str:
    """Return the method of the request that follows a ``status`` redirect of ``method``."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def next_request(
    method: str,
    url: URL,
    headers: Iterable[tuple[str, str]],
    status: int,
    location: str | None,
    *,
    has_body: bool = False,
    body_replayable: bool = True,
) -> Redirect | None:
    """Decide the request that follows a response, or ``None`` if it is final.

    ``method``, ``url`` and ``headers`` describe the request just sent,
    ``has_body`` whether it carried a body and ``body_replayable`` whether
    that body can be sent again. Raises :class:`~asyncnet.RemoteProtocolError`
    for a ``Location`` that is malformed or not http(s), and
    :class:`~asyncnet.BodyNotReplayable` when the body must be resent but
    cannot be.
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    match = _SCHEME.match(location)
    if match is not None and match.group(1).lower() not in ("http", "https"):
        raise RemoteProtocolError(
            f"redirect to a {match.group(1)!r} URL is not followed: {location!r}"
        )
    try:
        new_url = url.join(location)
    except InvalidURL as exc:
        raise RemoteProtocolError(f"redirect Location is not a valid URL: {exc}") from exc

    new_method = redirect_method(method, status)
    keep_body = has_body and new_method == method and status != 303
    if keep_body and not body_replayable:
        raise BodyNotReplayable(
            f"{status} redirect to {new_url} needs the {method} body again, "
            "but it was a one-shot stream; pass bytes or a seekable file to allow it"
        )

    dropped: set[str] = set()
    if new_url.origin != url.origin:
        dropped |= CREDENTIAL_HEADERS
        dropped.add("host")
    if not keep_body:
        dropped |= BODY_HEADERS
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    return Redirect(method=new_method, url=new_url, headers=kept, keep_body=keep_body)
