"""Parse and validate ``http``/``https`` URLs into the parts a request needs.

:func:`parse_url` checks the raw string before splitting it, because
:mod:`urllib.parse` silently strips tabs, newlines and surrounding whitespace
and so can turn a dangerous URL into a harmless-looking one. The result,
:class:`URL`, holds only values that are safe to write into a request line
and a ``Host`` header.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, fields
from typing import Final
from urllib.parse import unquote

from .._errors import InvalidURL

__all__ = ["URL", "parse_url"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# C0 controls, space, DEL and C1 controls. None of them may appear anywhere in
# a URL; urllib.parse would strip some of them without a word. Lone
# surrogates have no UTF-8 form, so a URL holding one cannot be sent.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\ud800-\udfff]")

# RFC 3986 appendix B, restricted to the absolute form we accept.
_SPLIT = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.DOTALL
)
# The same for a reference (a Location value), where every part is optional.
_SPLIT_REF = re.compile(
    r"(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.DOTALL
)

# A host name after IDNA encoding: letters, digits, '-', '_' and dots, with no
# empty label (a single trailing dot, the DNS root, is allowed). This is
# stricter than RFC 3986 reg-name, whose sub-delims never occur in DNS names.
_HOSTNAME = re.compile(r"(?:[a-z0-9_\-]+\.)*[a-z0-9_\-]+\.?")
# RFC 1035 section 2.3.4: a label is at most 63 octets and a name at most 255
# on the wire, which is 253 characters of text without the root's trailing
# dot. Longer names can never resolve (and a longer label makes the IDNA step
# of socket.getaddrinfo raise a bare UnicodeError), so they are refused here,
# where the error can say which rule was broken.
_MAX_LABEL: Final = 63
_MAX_NAME: Final = 253
_PORT = re.compile(r"[0-9]{1,5}")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# The canonical dotted quad: four decimal octets of 0 to 255 without leading
# zeros, exactly what ipaddress.IPv4Address accepts, at a tenth of its cost
# (a crawl parses every URL, most often with the same kind of host).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# A percent sign that does not start a %XX escape.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What may appear unescaped in a path (RFC 3986 pchar plus "/" and the "%" of
# escapes) and in a query (that plus "?").
_PATH_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_QUERY_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")
_PATH_SAFE: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/"
)
_QUERY_SAFE: Final = _PATH_SAFE | {"?"}
# A request-target we are willing to write: visible ASCII only, starting with "/".
_TARGET = re.compile(r"/[!-~]*")

# URLs longer than this are parsed every time rather than kept in the cache,
# so the cache's memory stays bounded (1024 entries of at most 4 KiB).
_CACHE_MAX_URL_LENGTH: Final = 4096


@dataclass(frozen=True, slots=True)
class URL:
    """An absolute ``http`` or ``https`` URL, split into the parts a request uses.

    Build one with :func:`parse_url`, which validates the raw text; a URL
    constructed directly is checked too, so no instance can carry a control
    character, a space or a non-ASCII character into a request.
    """

    #: ``"http"`` or ``"https"``.
    scheme: str
    #: Lower-case ASCII host (IDNA-encoded); an IPv6 address without brackets.
    host: str
    #: The explicit port, or the scheme's default.
    port: int
    #: Path plus ``"?query"``; ``"/"`` for an empty path; never a fragment.
    target: str
    #: Percent-decoded user name from the userinfo, or ``None`` without userinfo.
    username: str | None = None
    #: Percent-decoded password; ``""`` if the userinfo has no ``:``, ``None`` without userinfo.
    password: str | None = None
    _host_header: str = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default = DEFAULT_PORTS.get(self.scheme)
        if default is None:
            raise InvalidURL(f"scheme must be http or https, not {self.scheme!r}")
        host = self.host
        if ":" in host:
            if "%" in host:
                raise InvalidURL(f"IPv6 zone identifiers are not supported: {host!r}")
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise InvalidURL(f"invalid IPv6 address {host!r}") from None
            authority = f"[{host}]"
        elif _HOSTNAME.fullmatch(host):
            problem = _dns_name_problem(host)
            if problem is not None:
                raise InvalidURL(f"{problem}: {host!r}")
            authority = host
        else:
            raise InvalidURL(f"invalid host {host!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise InvalidURL(f"port out of range: {self.port!r}")
        if not _TARGET.fullmatch(self.target):
            raise InvalidURL(f"invalid request target {self.target!r}")
        if self.port != default:
            authority = f"{authority}:{self.port}"
        object.__setattr__(self, "_host_header", authority)
        # URLs key the client's caches on every request: hash the fields once.
        object.__setattr__(
            self,
            "_hash",
            hash((self.scheme, self.host, self.port, self.target, self.username, self.password)),
        )

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def _from_parsed(
        cls,
        scheme: str,
        host: str,
        port: int,
        target: str,
        username: str | None,
        password: str | None,
    ) -> URL:
        """A URL from parts :func:`_parse` has already checked, without checking them again.

        ``_parse`` leaves a lower-case ``http``/``https`` scheme, a host that
        passed the same host rules (or a compressed IPv6 address), a port in
        range and a target from ``_encode_target``, which starts with "/" and
        holds visible ASCII only. Every URL not made from a URL string is built
        through the checking constructor. This path is what an uncached
        ``parse_url`` costs: 56,100 -> 43,500 instructions per URL (callgrind;
        a crawl parses every URL once, so this is per request there).
        """
        self = _new_url(cls)
        _set_scheme(self, scheme)
        _set_host(self, host)
        _set_port(self, port)
        _set_target(self, target)
        _set_username(self, username)
        _set_password(self, password)
        authority = f"[{host}]" if ":" in host else host
        if port != DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{port}"
        _set_host_header(self, authority)
        _set_hash(self, hash((scheme, host, port, target, username, password)))
        return self

    def __reduce__(self) -> tuple[type[URL], tuple[str, str, int, str, str | None, str | None]]:
        # Rebuilt from its fields, never from a stored hash: str hashes differ
        # between processes, and a URL may be pickled in one and used in another.
        return (URL, (self.scheme, self.host, self.port, self.target, self.username, self.password))

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``: what decides whether a connection can be reused."""
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: host, plus ``:port`` if not the default."""
        return self._host_header

    @property
    def path(self) -> str:
        """The path part of :attr:`target` (without the query)."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The query part of :attr:`target` without the ``?`` (``""`` if none)."""
        return self.target.partition("?")[2]

    def __str__(self) -> str:
        return f"{self.scheme}://{self._host_header}{self.target}"

    def join(self, location: str) -> URL:
        """Resolve ``location`` (a ``Location`` header) against this URL, per RFC 3986 §5.2.

        Relative, absolute-path, scheme-relative and absolute references work;
        a reference to any scheme but http/https raises :class:`InvalidURL`.
        Spaces inside the path or query are sent as ``%20``, as browsers do.
        """
        if not isinstance(location, str):
            raise InvalidURL(f"a URL reference must be str, not {type(location).__name__}")
        location = _fix_latin1(location)
        m = _SPLIT_REF.fullmatch(location)
        if m is None:  # pragma: no cover - every string matches
            raise InvalidURL(f"invalid URL reference {location!r}")
        scheme, authority, path, query = m.groups()
        if " " in location and location.strip(" ") == location and " " not in (authority or ""):
            # Servers do send "Location: /a b"; browsers, httpx and requests
            # follow it as "/a%20b", and so does this. Spaces anywhere else,
            # and every other control character, are refused below.
            path = path.replace(" ", "%20")
            query = None if query is None else query.replace(" ", "%20")
            location = location.replace(" ", "%20")
        _check_raw(location)
        if scheme is not None:
            scheme = scheme.lower()
            if scheme not in DEFAULT_PORTS:
                raise InvalidURL(f"redirect to unsupported scheme {scheme!r}: {location!r}")
            if authority is None:
                if scheme != self.scheme:
                    raise InvalidURL(f"absolute URL without a host: {location!r}")
                # "http:path" against an http base: read as a relative
                # reference, as RFC 3986 §5.2.2 permits for compatibility.
                scheme = None
        if authority is not None:
            # The reference brings its own authority: resolve its path alone
            # and validate the whole as a fresh URL.
            scheme = scheme or self.scheme
            path = _remove_dot_segments(path)
            text = f"{scheme}://{authority}{path}" + ("" if query is None else f"?{query}")
            return _parse(text)
        base_path, _, base_query = self.target.partition("?")
        has_base_query = "?" in self.target
        if not path:
            path = base_path
            if query is None and has_base_query:
                query = base_query
        elif path.startswith("/"):
            path = _remove_dot_segments(path)
        else:
            path = _remove_dot_segments(base_path[: base_path.rfind("/") + 1] + path)
        target = _encode_target(path or "/", query)
        return URL(self.scheme, self.host, self.port, target, self.username, self.password)


# The slot setters URL._from_parsed calls (what a frozen dataclass's own
# __init__ reaches through object.__setattr__, at several times the cost).
_new_url = object.__new__
(
    _set_scheme, _set_host, _set_port, _set_target, _set_username, _set_password,
    _set_host_header, _set_hash,
) = (getattr(URL, f.name).__set__ for f in fields(URL))


def parse_url(url: str | URL) -> URL:
    """Validate and split an absolute ``http``/``https`` URL.

    The raw text is checked before it is split, so no control character,
    space or other character that urllib.parse would silently drop gets
    through; raises :class:`~asyncnet.InvalidURL` otherwise.
    """
    if isinstance(url, URL):
        return url
    if not isinstance(url, str):
        raise InvalidURL(f"URL must be str or URL, not {type(url).__name__}")
    # Never cache a URL that may carry userinfo: the cache lives as long as the
    # process and must not keep passwords. Any "@" counts (also one in a
    # path), which costs such URLs a parse and never lets one in.
    if len(url) <= _CACHE_MAX_URL_LENGTH and "@" not in url:
        return _parse_cached(url)
    return _parse(url)


def _check_raw(text: str) -> None:
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise InvalidURL(
            f"URL contains forbidden character {bad.group()!r} at index {bad.start()}: {text!r}"
        )
    if "\\" in text:
        # Browsers read "\" as "/", other parsers do not: two parties could
        # disagree about the host, so it is refused rather than guessed.
        raise InvalidURL(f"URL contains a backslash: {text!r}")


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> URL:
    return _parse(text)


def _parse(text: str) -> URL:
    _check_raw(text)
    m = _SPLIT.fullmatch(text)
    if m is None:
        raise InvalidURL(f"not an absolute URL: {text!r}")
    scheme, authority, path, query = m.groups()
    scheme = scheme.lower()
    default = DEFAULT_PORTS.get(scheme)
    if default is None:
        raise InvalidURL(f"scheme must be http or https, not {scheme!r}: {text!r}")
    if not authority:
        raise InvalidURL(f"URL has no host: {text!r}")
    username: str | None = None
    password: str | None = None
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        user, colon, pw = userinfo.partition(":")
        try:
            username = unquote(user, errors="strict")
            password = unquote(pw, errors="strict") if colon else ""
        except UnicodeDecodeError as exc:
            raise InvalidURL(f"userinfo is not UTF-8 once percent-decoded: {text!r}") from exc
    host, port = _split_host_port(hostport, default, text)
    return URL._from_parsed(
        scheme, host, port, _encode_target(path or "/", query), username, password
    )


def _split_host_port(hostport: str, default: int, text: str) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidURL(f"unterminated IPv6 address: {text!r}")
        host = hostport[1:end]
        if "%" in host:
            # Zone identifiers ("%25eth0") name a local interface and have no
            # meaning in a Host header.
            raise InvalidURL(f"IPv6 zone identifiers are not supported: {text!r}")
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidURL(f"junk after IPv6 address: {text!r}")
        port_text = rest[1:] if rest else None
        try:
            host = ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise InvalidURL(f"invalid IPv6 address {host!r}: {text!r}") from None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
        host = _normalize_host(host, text)
    if port_text:
        # ASCII digits only: int() would also take "+1", " 1", "1_0" and
        # non-ASCII digits.
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            raise InvalidURL(f"invalid port {port_text!r}: {text!r}")
        return host, int(port_text)
    # An empty port ("host:") means the default, as RFC 3986 §3.2.3 allows.
    return host, default


def _normalize_host(host: str, text: str) -> str:
    if not host:
        raise InvalidURL(f"URL has no host: {text!r}")
    if not host.isascii():
        # The standard library's IDNA 2003 codec. Names it cannot encode are
        # refused, and so are names it would silently change: nameprep drops
        # soft hyphens and zero-width characters, folds full-width letters and
        # maps "ß" to "ss" (IDNA 2008 keeps it), so the encoding must decode
        # back to the name as given, lower-cased.
        try:
            encoded = host.encode("idna").decode("ascii")
            same = encoded.encode("ascii").decode("idna") == host.lower()
        except UnicodeError as exc:
            raise InvalidURL(f"host {host!r} cannot be IDNA-encoded: {text!r}") from exc
        if not same:
            raise InvalidURL(
                f"host {host!r} would be changed by IDNA to {encoded!r}; "
                f"give the ASCII (xn--) form instead: {text!r}"
            )
        host = encoded
    host = host.lower()
    if not _HOSTNAME.fullmatch(host):
        raise InvalidURL(f"invalid host {host!r}: {text!r}")
    problem = _dns_name_problem(host)
    if problem is not None:
        raise InvalidURL(f"{problem}: {text!r}")
    name = host[:-1] if host.endswith(".") else host
    # A name ending in a numeric label is an IPv4 address to resolvers,
    # which also read "127.1", "0x7f.0.0.1", "0177.0.0.1" and "2130706433"
    # as 127.0.0.1. Only the canonical dotted quad is accepted, so the
    # host a caller (or an allow-list) sees is the address connected to.
    if _NUMERIC_LABEL.fullmatch(name.rpartition(".")[2]) and not _DOTTED_QUAD.fullmatch(name):
        raise InvalidURL(f"ambiguous numeric host {host!r}: {text!r}")
    return host


def _dns_name_problem(host: str) -> str | None:
    """Say why ``host`` (lower-case ASCII, syntax checked) is too long for DNS, or ``None``."""
    if len(host) <= _MAX_LABEL:
        return None  # the common case: no label can be too long either
    name = host[:-1] if host.endswith(".") else host
    if len(name) > _MAX_NAME:
        return f"host name is longer than {_MAX_NAME} octets ({len(name)})"
    for label in name.split("."):
        if len(label) > _MAX_LABEL:
            return f"host name label is longer than {_MAX_LABEL} octets ({len(label)}): {label!r}"
    return None


def _encode_target(path: str, query: str | None) -> str:
    """Build a request-target, percent-encoding characters a target may not hold.

    Escapes already present are kept as given; a ``%`` that starts no escape
    becomes ``%25``; anything else outside RFC 3986's set (non-ASCII, ``"``,
    ``<``, ``{``...) is UTF-8 percent-encoded, as browsers, httpx and urllib3 do.
    """
    if not _PATH_OK.fullmatch(path) or "%" in path:
        path = _encode_part(path, _PATH_SAFE)
    if query is None:
        return path
    if not _QUERY_OK.fullmatch(query) or "%" in query:
        query = _encode_part(query, _QUERY_SAFE)
    return f"{path}?{query}"


def _encode_part(part: str, safe: frozenset[str]) -> str:
    part = _BAD_PERCENT.sub("%25", part)
    out: list[str] = []
    for ch in part:
        if ch in safe or ch == "%":
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", errors="strict"))
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for a path that is empty or starts with ``/``."""
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    for seg in segments:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    if segments[-1] in (".", ".."):
        # "/a/b/.." names the directory "/a/", with its trailing slash.
        out.append("")
    return "/" + "/".join(out)


def _fix_latin1(location: str) -> str:
    """Undo the latin-1 decoding of a UTF-8 ``Location`` value from the wire.

    Header values arrive as latin-1 text; when the bytes were really UTF-8 (the
    common case for non-ASCII redirect targets) they are decoded as such, so
    that each byte is percent-encoded once rather than twice.
    """
    if location.isascii():
        return location
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location
