"""A case-insensitive, ordered, multi-valued container for HTTP header fields.

:class:`Headers` is a plain container: it keeps every field exactly as given
and does not validate syntax. Wire-level checks live where bytes cross the
boundary: the response parser raises :class:`~asyncnet.RemoteProtocolError`,
the request writer raises :class:`~asyncnet.InvalidHeader`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Union, overload

__all__ = ["Headers", "HeadersLike", "share_names"]

#: What the :class:`Headers` constructor and comparison accept.
HeadersLike = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]]]


# Field names repeat from one response to the next. Sharing one string per
# name keeps heads that stay in memory (fetch results, say) from each carrying
# copies. The table is bounded in entries and name length because names come
# from the peer (sys.intern is not an option: interned strings are immortal
# on Python 3.12, so a peer sending fresh names would grow memory forever).
_SHARED_NAMES: dict[str, str] = {}
_SHARED_NAMES_MAX = 512
_SHARED_NAME_MAX_LENGTH = 64


def share_names(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``items`` with each field name replaced by a shared equal string."""
    table = _SHARED_NAMES
    get = table.get
    shared = []
    missing = False
    for name, value in items:
        known = get(name)
        if known is None:
            missing = True
            known = name
        shared.append((known, value))
    if missing and len(table) < _SHARED_NAMES_MAX:
        for name, _ in items:
            if name not in table and len(name) <= _SHARED_NAME_MAX_LENGTH:
                if len(table) >= _SHARED_NAMES_MAX:
                    break
                table[name] = name
    return shared


def _shared_lower(name: str) -> str:
    lower = name.lower()
    shared = _SHARED_NAMES.get(lower)
    if shared is not None:
        return shared
    if len(_SHARED_NAMES) < _SHARED_NAMES_MAX and len(lower) <= _SHARED_NAME_MAX_LENGTH:
        _SHARED_NAMES[lower] = lower
    return lower


class Headers:
    """Case-insensitive, ordered header multi-map that keeps every value.

    Names keep the case they were given in; lookups ignore case. ``get`` and
    ``[]`` join repeated fields with ``", "`` (RFC 9110 section 5.3); use
    :meth:`get_all` for fields such as ``Set-Cookie`` whose values must not be
    joined. ``len()`` and iteration count every field, duplicates included.
    """

    __slots__ = ("_items", "_lc")

    _items: list[tuple[str, str]]
    _lc: list[str] | None  # lower-cased names, parallel to _items; built on first use

    def __init__(self, headers: HeadersLike | None = None) -> None:
        self._items = []
        self._lc = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._items = list(headers._items)
            self._lc = list(headers._lower)
            return
        pairs: Iterable[tuple[str, str]] = (
            headers.items() if isinstance(headers, Mapping) else headers
        )
        for name, value in pairs:
            self.add(name, value)

    @classmethod
    def _from_wire(cls, items: list[tuple[str, str]], lower: list[str] | None = None) -> Headers:
        """Wrap already validated fields without copying them (the parser's fast path).

        Without ``lower``, every name must be an ASCII token (what the parser
        accepts), so that lower-casing a name never changes its length.
        """
        self = cls.__new__(cls)
        self._items = items
        self._lc = lower
        return self

    @property
    def _lower(self) -> list[str]:
        # Lower-casing every name costs more than parsing some heads, and many
        # responses are never looked up by name, so it happens on demand.
        lower = self._lc
        if lower is None:
            lower = self._lc = [_shared_lower(name) for name, _ in self._items]
        return lower

    # -- reading ---------------------------------------------------------------

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    @overload
    def get(self, name: str, default: None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return every value of ``name`` joined with ``", "``, or ``default`` if absent."""
        key = name.lower()
        lower = self._lc
        if lower is None:
            # Fields from the wire, not lower-cased yet. Their names are ASCII
            # tokens, so only names as long as ``key`` can match it: most are
            # never lower-cased, and one lookup does not lower-case them all.
            # A plain loop: on Python 3.11 a comprehension is a function call.
            size = len(key)
            values = []
            for n, v in self._items:
                if len(n) == size and n.lower() == key:
                    values.append(v)
        elif key in lower:
            values = [v for (_, v), k in zip(self._items, lower, strict=True) if k == key]
        else:
            return default
        if not values:
            return default
        if len(values) == 1:
            return values[0]
        return ", ".join(values)

    def get_all(self, name: str) -> list[str]:
        """Return the values of every field named ``name``, in order (empty if absent)."""
        key = name.lower()
        return [v for (_, v), k in zip(self._items, self._lower, strict=True) if k == key]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def keys(self) -> list[str]:
        """Return the name of every field in order; a repeated name appears repeatedly."""
        return [name for name, _ in self._items]

    def values(self) -> list[str]:
        """Return the value of every field in order."""
        return [value for _, value in self._items]

    def items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` field in order, duplicates kept."""
        return list(self._items)

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """Every field as Latin-1 encoded ``(name, value)`` bytes, ready to serialize."""
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self._items]

    # -- writing ---------------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any existing fields of the same name."""
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"header names and values must be str, got {type(name).__name__} "
                f"and {type(value).__name__}"
            )
        lower = self._lower  # built from the current fields before this one joins
        self._items.append((name, value))
        lower.append(name.lower())

    def extend(self, headers: HeadersLike) -> None:
        """Append every field of ``headers``."""
        for name, value in Headers(headers)._items:
            self.add(name, value)

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every field named ``name`` by one field, at the first one's position."""
        key = name.lower()
        if key not in self._lower:
            self.add(name, value)
            return
        if not isinstance(value, str):
            raise TypeError(f"header values must be str, got {type(value).__name__}")
        first = self._lower.index(key)
        kept = [
            (item, k)
            for i, (item, k) in enumerate(zip(self._items, self._lower, strict=True))
            if k != key or i == first
        ]
        self._items = [item for item, _ in kept]
        self._lc = [k for _, k in kept]
        self._items[self._lower.index(key)] = (name, value)

    def __delitem__(self, name: str) -> None:
        """Remove every field named ``name``; ``KeyError`` if there is none."""
        key = name.lower()
        if key not in self._lower:
            raise KeyError(name)
        kept = [(item, k) for item, k in zip(self._items, self._lower, strict=True) if k != key]
        self._items = [item for item, _ in kept]
        self._lc = [k for _, k in kept]

    def pop(self, name: str, default: str | None = None) -> str | None:
        """Remove every field named ``name`` and return their joined value (or ``default``)."""
        value = self.get(name)
        if value is None:
            return default
        del self[name]
        return value

    def setdefault(self, name: str, value: str) -> str:
        """Add ``name: value`` unless a field of that name exists; return the current value."""
        current = self.get(name)
        if current is None:
            self.add(name, value)
            return value
        return current

    def copy(self) -> Headers:
        """Return an independent copy."""
        return Headers._from_wire(list(self._items), list(self._lower))

    # -- comparison and display ------------------------------------------------

    def _grouped(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for (_, value), key in zip(self._items, self._lower, strict=True):
            grouped.setdefault(key, []).append(value)
        return grouped

    def __eq__(self, other: object) -> bool:
        """Equal when each name (ignoring case) has the same values in the same order."""
        if not isinstance(other, Headers):
            if not isinstance(other, (Mapping, list, tuple)):
                return NotImplemented
            try:
                other = Headers(other)
            except (TypeError, ValueError):
                return NotImplemented
        return self._grouped() == other._grouped()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
