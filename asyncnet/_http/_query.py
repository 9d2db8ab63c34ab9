"""Query strings and urlencoded forms, sans-IO: from ``params=``/``data=`` to text.

Both take a mapping or a sequence of pairs; a mapping's value may be a list or
tuple, which repeats the key. ``None`` values are dropped (so an optional
parameter can be passed unconditionally); ``str``, ``int``, ``float`` and
``bool`` (``"true"``/``"false"``, as httpx does) are accepted, anything else
is :class:`~asyncnet.UsageError` before a byte is sent.

The encoding is the standard library's :func:`urllib.parse.urlencode`:
queries with :func:`urllib.parse.quote` (RFC 3986: everything but the
unreserved set is percent-encoded, spaces as ``%20``), forms with
:func:`urllib.parse.quote_plus` (the HTML standard's
``application/x-www-form-urlencoded``, spaces as ``+``). Either reads back
exactly with :func:`urllib.parse.parse_qsl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias
from urllib.parse import quote, quote_plus, urlencode

from .._errors import UsageError
from ._url import URL

__all__ = ["QueryInput", "QueryValue", "encode_form", "encode_query", "query_pairs", "with_params"]

QueryValue: TypeAlias = str | int | float | bool | None
QueryInput: TypeAlias = (
    Mapping[str, QueryValue | Sequence[QueryValue]] | Iterable[tuple[str, QueryValue]] | None
)


def _text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise UsageError(
        f"value of {name!r} must be str, int, float, bool or None, not {type(value).__name__}"
    )


def query_pairs(params: QueryInput, *, what: str = "params") -> list[tuple[str, str]]:
    """Normalize ``params`` into ``(name, value)`` text pairs, ``None`` values dropped."""
    if params is None:
        return []
    if isinstance(params, (str, bytes, bytearray, memoryview)):
        raise UsageError(f"{what} must be a mapping or pairs, not {type(params).__name__}")
    pairs: list[tuple[str, str]] = []
    if isinstance(params, Mapping):
        for name, value in params.items():
            if not isinstance(name, str):
                raise UsageError(f"{what} names must be str, not {type(name).__name__}")
            values = value if isinstance(value, (list, tuple)) else (value,)
            pairs.extend((name, _text(name, v)) for v in values if v is not None)
        return pairs
    try:
        items = list(params)
    except TypeError:
        raise UsageError(
            f"{what} must be a mapping or pairs, not {type(params).__name__}"
        ) from None
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise UsageError(f"{what} items must be (str, value) pairs, not {item!r}")
        name, value = item
        if value is not None:
            pairs.append((name, _text(name, value)))
    return pairs


def encode_query(params: QueryInput) -> str:
    """Encode ``params`` as a query string per RFC 3986 (no leading ``?``)."""
    return urlencode(query_pairs(params), quote_via=quote, safe="")


def encode_form(data: QueryInput) -> bytes:
    """Encode ``data`` as an ``application/x-www-form-urlencoded`` body (UTF-8)."""
    return urlencode(query_pairs(data, what="data"), quote_via=quote_plus, safe="").encode("ascii")


def with_params(url: URL, params: QueryInput) -> URL:
    """Return ``url`` with ``params`` appended to its own query (which is kept as it is)."""
    query = encode_query(params)
    if not query:
        return url
    path, _, own = url.target.partition("?")
    target = f"{path}?{own}&{query}" if own else f"{path}?{query}"
    return URL(url.scheme, url.host, url.port, target, url.username, url.password)
