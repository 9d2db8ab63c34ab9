"""Proxies, sans-IO: proxy URLs, the environment, ``NO_PROXY``, CONNECT and SOCKS5 messages.

Nothing here opens a socket; :mod:`asyncnet._http._connector` carries the
decisions and messages out. Three ways to reach an origin through a proxy:

``http://`` target through an HTTP(S) proxy (*forwarding*)
    the request goes to the proxy with an absolute-form target
    (``GET http://origin/path HTTP/1.1``) and ``Proxy-Authorization``; the
    proxy's own answer (a 407, a 502) comes back as the response, as curl does.
``https://`` target through an HTTP(S) proxy (*tunnelling*)
    ``CONNECT host:port`` first; a 2xx turns the connection into a byte pipe
    to the origin, and TLS to the origin runs through it (certificate and SNI
    checked against the origin, never the proxy). Any other answer raises
    :class:`~asyncnet.ProxyError` with the proxy's status.
any target through a ``socks5://`` or ``socks5h://`` proxy
    RFC 1928 (with RFC 1929 user name and password when the URL has them)
    opens the pipe; ``socks5`` resolves the origin's name here, ``socks5h``
    lets the proxy resolve it. A failure reply raises ``ProxyError`` with the
    reply code.

Proxy credentials come from the proxy URL's userinfo and go to the proxy
only: they are never written to an origin and never part of a request URL.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .._errors import InvalidURL, ProxyError, RemoteProtocolError, UsageError
from .._text import escape
from ._parser import ParserLimits, ResponseHead, ResponseParser
from ._request import basic_auth
from ._url import URL, parse_url

__all__ = [
    "PROXY_DEFAULT_PORTS",
    "NoProxy",
    "Proxy",
    "ProxySelector",
    "Socks5Handshake",
    "TunnelReply",
    "connect_request",
    "parse_proxy_url",
    "proxies_from_env",
    "proxy_selector",
]

#: Default port per proxy scheme when the URL names none. HTTP proxies use the
#: scheme's port (80/443) as requests, httpx and urllib do; curl assumes 1080
#: for every scheme, which only SOCKS shares here.
PROXY_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}

# Controls, space, DEL and C1: checked on the raw text before anything is
# split, so a CR or LF can never reach a CONNECT line or a Host header, and
# the error never quotes the (possibly secret) text itself.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\ud800-\udfff]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_PORT_SUFFIX = re.compile(r"(.*):([0-9]{1,5})")


@dataclass(frozen=True, slots=True, eq=False)
class Proxy:
    """One proxy: scheme, address and the credentials for it alone.

    Compared by identity: a client parses each proxy once, and its pool keys
    connections by that object, so equal hashing costs nothing per request.
    ``repr`` and ``str`` never show the password.
    """

    #: ``"http"``, ``"https"``, ``"socks5"`` or ``"socks5h"``.
    scheme: str
    #: Lower-case host name or IP address (IPv6 without brackets).
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        """``host:port`` with brackets around an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_socks(self) -> bool:
        """True for ``socks5`` and ``socks5h``."""
        return self.scheme.startswith("socks")

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic) for an HTTP proxy with credentials."""
        if self.username is None or self.is_socks:
            return None
        return basic_auth(self.username, self.password or "")

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username is not None else ""
        return f"{self.scheme}://{user}{self.authority}"


def parse_proxy_url(text: str) -> Proxy:
    """Validate a proxy URL such as ``http://user:pass@proxy:3128`` and return a :class:`Proxy`.

    A URL without a scheme (``proxy:3128``, common in environment variables)
    means ``http://``. Raises :class:`~asyncnet.InvalidURL` for a control
    character (CR, LF...), an unknown scheme, a bad host or port, or a path;
    the message never repeats the password.
    """
    if not isinstance(text, str):
        raise InvalidURL(f"a proxy URL must be str, not {type(text).__name__}")
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise InvalidURL(
            f"proxy URL contains forbidden character {bad.group()!r} at index {bad.start()}"
        )
    m = _SCHEME.match(text)
    if m is None:
        scheme, rest = "http", text
    else:
        scheme, rest = m.group(1).lower(), text[m.end() :]
    if scheme not in PROXY_DEFAULT_PORTS:
        raise InvalidURL(
            f"proxy scheme must be http, https, socks5 or socks5h, not {scheme!r}"
        )
    shown = _redact(f"{scheme}://{rest}")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if rest[len(authority) :] not in ("", "/"):
        raise InvalidURL(f"a proxy URL has no path, query or fragment: {shown!r}")
    hostport = authority.rpartition("@")[2]
    if not hostport or hostport.startswith(":"):
        raise InvalidURL(f"proxy URL has no host: {shown!r}")
    explicit_port = _PORT_SUFFIX.fullmatch(hostport) is not None and not hostport.endswith("]")
    try:
        # The URL rules (host, port, IDNA, userinfo decoding) are those of
        # request URLs; only the scheme differs.
        url = parse_url(f"http://{authority}/")
    except InvalidURL as exc:
        raise InvalidURL(f"invalid proxy URL {shown!r}: {_reason(exc, authority)}") from None
    port = url.port if explicit_port else PROXY_DEFAULT_PORTS[scheme]
    if url.username is not None and (
        scheme.startswith("socks")
        and (len(url.username.encode()) > 255 or len((url.password or "").encode()) > 255)
    ):
        raise InvalidURL("SOCKS5 user names and passwords are at most 255 bytes (RFC 1929)")
    return Proxy(scheme, url.host, port, url.username, url.password)


def _redact(text: str) -> str:
    """The URL with its userinfo replaced, for error messages."""
    m = _SCHEME.match(text)
    start = m.end() if m else 0
    authority_end = len(text)
    for sep in "/?#":
        i = text.find(sep, start)
        if i >= 0:
            authority_end = min(authority_end, i)
    at = text.rfind("@", start, authority_end)
    if at < 0:
        return text
    return text[:start] + "***@" + text[at + 1 :]


def _reason(exc: InvalidURL, authority: str) -> str:
    """The parser's reason without the text it quotes (which may hold a password)."""
    message = str(exc)
    if "@" in authority:
        return message.split(":", 1)[0]
    return message


# -- NO_PROXY -----------------------------------------------------------------------


class NoProxy:
    """A ``NO_PROXY`` list: the hosts reached directly even when a proxy is set.

    Entries are separated by commas (or spaces), case-insensitive, each one of:

    * ``*``: every host;
    * a host name: that host and every name under it (``example.com`` and
      ``.example.com`` both match ``example.com`` and ``www.example.com``,
      never ``badexample.com``), as curl does;
    * an IP address (``127.0.0.1``, ``::1`` or ``[::1]``) or a CIDR block
      (``10.0.0.0/8``, ``fd00::/8``): a URL whose host is an address in it.
      Names are never resolved to be compared with addresses;
    * any of these with ``:port``: only URLs with that port.
    """

    __slots__ = ("_all", "_names", "_networks")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise UsageError(f"no_proxy must be a str, not {type(value).__name__}")
        self._all = False
        self._names: list[tuple[str, int | None]] = []
        self._networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
        for raw in re.split(r"[,\s]+", value):
            entry = raw.strip().lower()
            if entry:
                self._add(entry)

    def _add(self, entry: str) -> None:
        if entry == "*":
            self._all = True
            return
        port: int | None = None
        if entry.startswith("["):
            end = entry.find("]")
            if end < 0:
                return  # unusable entry: ignored, as curl ignores what it cannot read
            rest = entry[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
            entry = entry[1:end]
        network = _network(entry)
        if network is None and port is None:
            m = _PORT_SUFFIX.fullmatch(entry)
            if m is not None and entry.count(":") == 1:
                entry, port = m.group(1), int(m.group(2))
                network = _network(entry)
        if network is not None:
            self._networks.append((network, port))
            return
        name = entry.removeprefix("*").removeprefix(".").removesuffix(".")
        if name:
            self._names.append((name, port))

    def matches(self, host: str, port: int) -> bool:
        """True if a URL with ``host`` (as URL.host holds it) and ``port`` goes direct."""
        if self._all:
            return True
        if self._networks and (":" in host or host[-1:].isdigit()):
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                return any(
                    address in network and (p is None or p == port)
                    for network, p in self._networks
                )
        host = host.removesuffix(".")
        for name, p in self._names:
            if (host == name or host.endswith("." + name)) and (p is None or p == port):
                return True
        return False

    def __bool__(self) -> bool:
        return self._all or bool(self._names) or bool(self._networks)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


# -- choosing a proxy ---------------------------------------------------------------


def _env_value(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The variable's value and its spelling, lower case first (as curl reads them)."""
    for key in (name.lower(), name.upper()):
        if key == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            # Under CGI, HTTP_PROXY can be set by a client's "Proxy:" request
            # header ("httpoxy"): ignored there, as curl and urllib do.
            continue
        value = environ.get(key)
        if value is not None and value.strip():
            return value.strip(), key
    return None


def proxies_from_env(
    environ: Mapping[str, str],
) -> tuple[Proxy | None, Proxy | None, NoProxy | None]:
    """The proxies for http and https URLs and the ``NO_PROXY`` list from the environment.

    ``http_proxy``/``HTTP_PROXY`` for http, ``https_proxy``/``HTTPS_PROXY``
    for https, ``all_proxy``/``ALL_PROXY`` for either when its own is unset;
    the lower-case spelling wins, empty values count as unset. A value that
    is not a valid proxy URL raises :class:`~asyncnet.InvalidURL` naming the
    variable: a client told to trust the environment must not go direct
    because of a typo.
    """
    found: dict[str, Proxy | None] = {}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        value = _env_value(environ, name)
        if value is None:
            found[name] = None
            continue
        try:
            found[name] = parse_proxy_url(value[0])
        except InvalidURL as exc:
            raise InvalidURL(f"environment variable {value[1]}: {exc}") from None
    no_proxy_value = _env_value(environ, "no_proxy")
    no_proxy = NoProxy(no_proxy_value[0]) if no_proxy_value is not None else None
    every = found["all_proxy"]
    return (found["http_proxy"] or every, found["https_proxy"] or every, no_proxy)


class ProxySelector:
    """Which proxy, if any, a request to a URL goes through.

    ``proxy`` applies to every URL; otherwise ``http`` and ``https`` (from
    the environment) apply per scheme. ``no_proxy`` exempts hosts either way.
    Evaluated per request, so each redirect hop gets its own answer.
    """

    __slots__ = ("_http", "_https", "_no_proxy")

    def __init__(
        self,
        *,
        http: Proxy | None = None,
        https: Proxy | None = None,
        no_proxy: NoProxy | None = None,
    ) -> None:
        self._http = http
        self._https = https
        self._no_proxy = no_proxy if no_proxy else None

    @property
    def active(self) -> bool:
        """False when no URL can go through a proxy."""
        return self._http is not None or self._https is not None

    def select(self, url: URL) -> Proxy | None:
        """The proxy for ``url``, or None to connect directly."""
        proxy = self._https if url.scheme == "https" else self._http
        if proxy is None:
            return None
        no_proxy = self._no_proxy
        if no_proxy is not None and no_proxy.matches(url.host, url.port):
            return None
        return proxy


def proxy_selector(
    proxy: str | None, trust_env: bool, environ: Mapping[str, str]
) -> ProxySelector | None:
    """A client's proxy choice: ``proxy=``, then ``environ`` when trusted; None for none."""
    explicit = parse_proxy_url(proxy) if proxy is not None else None
    if not trust_env:
        return None if explicit is None else ProxySelector(http=explicit, https=explicit)
    http, https, no_proxy = proxies_from_env(environ)
    if explicit is not None:
        http = https = explicit
    selector = ProxySelector(http=http, https=https, no_proxy=no_proxy)
    return selector if selector.active else None


# -- HTTP CONNECT -------------------------------------------------------------------


def connect_request(host: str, port: int, authorization: str | None) -> bytes:
    """The ``CONNECT host:port`` request that opens a tunnel (RFC 9110 section 9.3.6).

    ``host`` comes from a validated :class:`~asyncnet.URL` and
    ``authorization`` from :attr:`Proxy.authorization`, so neither can hold a
    CR or LF.
    """
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1\r\n", f"Host: {authority}\r\n"]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("ascii")


class TunnelReply:
    """The proxy's answer to ``CONNECT``, read with the ordinary response parser.

    Feed received bytes with :meth:`receive` until it returns the head. A
    2xx head means the tunnel is open; anything else raises
    :class:`~asyncnet.ProxyError` with the status. Garbage raises
    ``ProxyError`` too (from the parser's
    :class:`~asyncnet.RemoteProtocolError`), and so do bytes after a 2xx head:
    the origin cannot have spoken before we did.
    """

    __slots__ = ("_parser", "_proxy")

    def __init__(self, proxy: Proxy, limits: ParserLimits | None = None) -> None:
        self._proxy = proxy
        self._parser = ResponseParser(limits)
        self._parser.start_response("CONNECT")

    def receive(self, data: bytes) -> ResponseHead | None:
        """Take bytes from the proxy; return the final head once it is complete."""
        try:
            events = self._parser.events(data)
        except RemoteProtocolError as exc:
            raise ProxyError(
                f"proxy {self._proxy.authority} sent a malformed answer to CONNECT: {exc}"
            ) from exc
        for event in events:
            if isinstance(event, ResponseHead):
                return self._check(event)
        return None

    def receive_eof(self) -> None:
        """The proxy closed before answering: always an error."""
        raise ProxyError(
            f"proxy {self._proxy.authority} closed the connection before answering CONNECT"
        )

    def _check(self, head: ResponseHead) -> ResponseHead:
        if not 200 <= head.status < 300:
            hint = " (proxy authentication required)" if head.status == 407 else ""
            raise ProxyError(
                f"proxy {self._proxy.authority} refused CONNECT: "
                f"{head.status} {escape(head.reason)}{hint}",
                status=head.status,
            )
        if self._parser.trailing_data:
            raise ProxyError(
                f"proxy {self._proxy.authority} sent data after its answer to CONNECT"
            )
        return head


# -- SOCKS5 (RFC 1928, RFC 1929) ----------------------------------------------------

_SOCKS_VERSION: Final = 5
_AUTH_VERSION: Final = 1  # RFC 1929's sub-negotiation version
_NO_AUTH: Final = 0x00
_USER_PASS: Final = 0x02
_NO_ACCEPTABLE: Final = 0xFF
_CMD_CONNECT: Final = 0x01
_ATYP_IPV4: Final = 0x01
_ATYP_NAME: Final = 0x03
_ATYP_IPV6: Final = 0x04

#: RFC 1928 section 6 reply codes.
SOCKS5_REPLIES: Final = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class _Socks(enum.Enum):
    METHOD = "waiting for the method choice"
    AUTH = "waiting for the authentication reply"
    CONNECT = "waiting for the CONNECT reply"
    DONE = "tunnel open"
    ERROR = "failed"


class Socks5Handshake:
    """The client side of a SOCKS5 handshake, sans-IO.

    States (each reply moves to the next; any failure to ``ERROR``)::

        METHOD -> [AUTH ->] CONNECT -> DONE

    :meth:`start` returns the greeting to send; :meth:`receive` takes the
    proxy's bytes (split anywhere) and returns the bytes to send next
    (``b""`` while a reply is incomplete). ``host`` is sent as a name
    (``socks5h``) or must already be an IP address (``socks5``: the caller
    resolved it). Failures raise :class:`~asyncnet.ProxyError`.
    """

    __slots__ = ("_buf", "_host", "_password", "_port", "_proxy", "_state", "_username")

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self._proxy = proxy
        self._host = host
        self._port = port
        self._username = proxy.username
        self._password = proxy.password or ""
        self._buf = b""
        self._state = _Socks.METHOD

    @property
    def done(self) -> bool:
        """True once the proxy confirmed the tunnel."""
        return self._state is _Socks.DONE

    def start(self) -> bytes:
        """The greeting: the methods we offer (user/password only when we have credentials)."""
        if self._username is not None:
            return bytes([_SOCKS_VERSION, 2, _NO_AUTH, _USER_PASS])
        return bytes([_SOCKS_VERSION, 1, _NO_AUTH])

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the proxy; return what to send next (``b""`` for nothing yet)."""
        if self._state is _Socks.DONE or self._state is _Socks.ERROR:
            state = self._state.value
            self._state = _Socks.ERROR
            raise self._error(f"sent {len(data)} unexpected bytes ({state})")
        self._buf += data
        out = b""
        try:
            while True:
                step = self._step()
                if step is None:
                    return out
                out += step
                if self.done:
                    if self._buf:
                        raise self._error("sent data after the tunnel opened")
                    return out
        except ProxyError:
            self._state = _Socks.ERROR
            raise

    def receive_eof(self) -> None:
        """The proxy closed the connection: an error in every state but ``DONE``."""
        if self._state is not _Socks.DONE:
            state = self._state.value
            self._state = _Socks.ERROR
            raise self._error(f"closed the connection mid-handshake ({state})")

    def _step(self) -> bytes | None:
        buf = self._buf
        state = self._state
        if state is _Socks.METHOD:
            if len(buf) < 2:
                return None
            self._buf = buf[2:]
            if buf[0] != _SOCKS_VERSION:
                raise self._error(f"is not a SOCKS5 proxy (version byte {buf[0]})")
            method = buf[1]
            if method == _NO_AUTH:
                self._state = _Socks.CONNECT
                return self._connect_message()
            if method == _USER_PASS and self._username is not None:
                self._state = _Socks.AUTH
                user = self._username.encode()
                password = self._password.encode()
                return bytes([_AUTH_VERSION, len(user)]) + user + bytes([len(password)]) + password
            if method in (_USER_PASS, _NO_ACCEPTABLE):
                raise self._error(
                    "requires credentials" if self._username is None
                    else "accepts none of our authentication methods"
                )
            raise self._error(f"chose a method we did not offer ({method})")
        if state is _Socks.AUTH:
            if len(buf) < 2:
                return None
            self._buf = buf[2:]
            if buf[0] != _AUTH_VERSION or buf[1] != 0:
                raise self._error("rejected the user name and password")
            self._state = _Socks.CONNECT
            return self._connect_message()
        # CONNECT reply: VER REP RSV ATYP BND.ADDR BND.PORT
        if len(buf) < 5:
            return None
        if buf[0] != _SOCKS_VERSION:
            raise self._error(f"sent a reply with version byte {buf[0]}")
        if buf[1] != 0:
            code = buf[1]
            meaning = SOCKS5_REPLIES.get(code, "unknown failure")
            raise ProxyError(
                f"SOCKS5 proxy {self._proxy.authority} refused the connection to "
                f"{self._target()}: {meaning} (reply {code})",
                reply_code=code,
            )
        atyp = buf[3]
        if atyp == _ATYP_IPV4:
            size = 4 + 4 + 2
        elif atyp == _ATYP_IPV6:
            size = 4 + 16 + 2
        elif atyp == _ATYP_NAME:
            size = 4 + 1 + buf[4] + 2
        else:
            raise self._error(f"sent an unknown address type ({atyp})")
        if len(buf) < size:
            return None
        self._buf = buf[size:]
        self._state = _Socks.DONE
        return b""

    def _connect_message(self) -> bytes:
        host = self._host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            name = host.encode("ascii")
            if not 0 < len(name) <= 255:
                raise UsageError(f"host name too long for SOCKS5: {host!r}") from None
            target = bytes([_ATYP_NAME, len(name)]) + name
        else:
            kind = _ATYP_IPV4 if address.version == 4 else _ATYP_IPV6
            target = bytes([kind]) + address.packed
        return bytes([_SOCKS_VERSION, _CMD_CONNECT, 0]) + target + self._port.to_bytes(2, "big")

    def _target(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    def _error(self, what: str) -> ProxyError:
        return ProxyError(f"SOCKS5 proxy {self._proxy.authority} {what}")
