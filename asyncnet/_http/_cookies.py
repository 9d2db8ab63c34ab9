"""Cookies for the client: the standard library's jar and rules, with limits added.

:class:`http.cookiejar.CookieJar` with :class:`http.cookiejar.DefaultCookiePolicy`
already implements the rules that matter (domain and path matching, ``Secure``,
expiry, refusing cookies for a bare top-level domain); this module adapts our
:class:`~asyncnet._http._url.URL` and response headers to the request and
response objects it expects, and adds what it lacks: limits on how many
cookies, and how large, a server can make us keep.

A jar made for ``cookies=True`` also keeps cookies without a ``Domain``
attribute to their exact host (RFC 6265 §5.3 step 6, "host-only"); the
stdlib's default would send them to subdomains too.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Final

from .._errors import UsageError
from ._url import URL

__all__ = ["CookieStore", "cookie_pairs", "new_jar"]

#: Cookies kept per domain, at most: RFC 6265 §6.1 asks user agents to keep at
#: least 50 per domain, and browsers keep not many more (Firefox 150, Chrome 180).
DEFAULT_MAX_PER_DOMAIN: Final = 50
#: Largest cookie kept (name plus value), per RFC 6265 §6.1's 4096 bytes.
DEFAULT_MAX_COOKIE_SIZE: Final = 4096
#: Cookies kept in all, so that a crawl over many hosts stays bounded too.
DEFAULT_MAX_COOKIES: Final = 3000

_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 §4.1.1 cookie-octet, plus space (which browsers send unquoted).
_VALUE: Final = re.compile(r'[ !#-+\--:<-\[\]-~]*')


def new_jar() -> CookieJar:
    """A jar with the standard policy and host-only cookies kept to their host."""
    policy = DefaultCookiePolicy(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain)
    return CookieJar(policy)


def cookie_pairs(cookies: Mapping[str, str]) -> str:
    """Render a per-request ``cookies=`` mapping as a ``Cookie`` value; bad names raise."""
    if not isinstance(cookies, Mapping):
        raise UsageError(f"cookies must be a mapping of names to values, not {cookies!r}")
    parts = []
    for name, value in cookies.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(f"invalid cookie name {name!r}")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise UsageError(f"invalid value for cookie {name!r}")
        parts.append(f"{name}={value}")
    return "; ".join(parts)


class _CookieRequest:
    """The parts of :class:`urllib.request.Request` that :mod:`http.cookiejar` reads."""

    unverifiable = False

    def __init__(self, url: URL) -> None:
        self._full = str(url)
        self.type = url.scheme
        self.host = url.host_header
        self.origin_req_host = url.host
        #: The Cookie value the jar chose, if any.
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        return self._full

    def has_header(self, name: str) -> bool:
        return False

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return default

    def header_items(self) -> list[tuple[str, str]]:
        return []

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name.lower() == "cookie":
            self.cookie = value


class _SetCookieHeaders:
    """The ``response.info()`` object :mod:`http.cookiejar` reads Set-Cookie fields from."""

    def __init__(self, values: list[str]) -> None:
        self._values = values

    def get_all(self, name: str, default: list[str]) -> list[str]:
        # Set-Cookie2 (RFC 2965, obsolete) is never taken from a server.
        return self._values if name.lower() == "set-cookie" and self._values else default


class _CookieResponse:
    def __init__(self, values: list[str]) -> None:
        self._headers = _SetCookieHeaders(values)

    def info(self) -> _SetCookieHeaders:
        return self._headers


class CookieStore:
    """A :class:`~http.cookiejar.CookieJar` with bounds, used by the client on every hop.

    A cookie larger than ``max_cookie_size`` (name plus value) is refused; a
    new cookie for a domain that already has ``max_per_domain``, or once the
    jar holds ``max_cookies``, is refused too (replacing a cookie of the same
    domain, path and name is always allowed), so a server cannot grow the
    jar without bound however many ``Set-Cookie`` fields it sends.
    """

    __slots__ = ("jar", "max_cookie_size", "max_cookies", "max_per_domain")

    def __init__(
        self,
        jar: CookieJar,
        *,
        max_per_domain: int = DEFAULT_MAX_PER_DOMAIN,
        max_cookie_size: int = DEFAULT_MAX_COOKIE_SIZE,
        max_cookies: int = DEFAULT_MAX_COOKIES,
    ) -> None:
        if not isinstance(jar, CookieJar):
            raise UsageError(f"cookies must be True, False or a CookieJar, not {jar!r}")
        self.jar = jar
        self.max_per_domain = max_per_domain
        self.max_cookie_size = max_cookie_size
        self.max_cookies = max_cookies

    def cookie_header(self, url: URL) -> str | None:
        """The ``Cookie`` value the jar's rules allow for a request to ``url``."""
        request = _CookieRequest(url)
        # The jar duck-types its request and response; typeshed names urllib's classes.
        self.jar.add_cookie_header(request)  # type: ignore[arg-type]
        return request.cookie

    def extract(self, url: URL, set_cookie: list[str]) -> None:
        """Keep what the ``Set-Cookie`` values of a response from ``url`` may set."""
        if not set_cookie:
            return
        request = _CookieRequest(url)
        with warnings.catch_warnings():
            # The stdlib warns ("http.cookiejar bug!") about input it cannot
            # parse, and then skips it: a server's garbage is not our bug.
            warnings.simplefilter("ignore")
            made: list[Cookie] = list(
                self.jar.make_cookies(_CookieResponse(set_cookie), request)  # type: ignore[arg-type]
            )
        if not made:
            return
        self.jar.clear_expired_cookies()
        existing: set[tuple[str, str, str]] = set()
        per_domain: dict[str, int] = {}
        for cookie in self.jar:
            existing.add((cookie.domain, cookie.path, cookie.name))
            per_domain[cookie.domain] = per_domain.get(cookie.domain, 0) + 1
        total = len(existing)
        for cookie in made:
            if len(cookie.name) + len(cookie.value or "") > self.max_cookie_size:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if key not in existing:
                if per_domain.get(cookie.domain, 0) >= self.max_per_domain:
                    continue
                if total >= self.max_cookies:
                    continue
                # Counted even if the policy refuses it below: a bound, not a tally.
                existing.add(key)
                per_domain[cookie.domain] = per_domain.get(cookie.domain, 0) + 1
                total += 1
            self.jar.set_cookie_if_ok(cookie, request)  # type: ignore[arg-type]
