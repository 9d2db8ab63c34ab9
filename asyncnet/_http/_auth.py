"""HTTP authentication schemes, sans-IO: Basic, Bearer and Digest (RFC 7616).

An auth object answers two questions for the client, which carries the
answers out:

* :meth:`Auth.auth_header` — the ``Authorization`` value to send with a
  request before anything is known about the server (Basic and Bearer
  always; Digest once a challenge from that origin is known, counting the
  nonce's uses);
* :meth:`Auth.answer_challenge` — given a 401's ``WWW-Authenticate`` fields,
  the ``Authorization`` value to send the request again with, or ``None`` to
  hand the 401 to the caller. The client asks at most once per request, so a
  server that keeps answering 401 cannot make it loop.

Challenges come from the server and are read by a tolerant scanner: unknown
schemes, parameters and garbage are skipped, several challenges in one field
or in several fields are all seen, and a challenge this module cannot answer
(an unknown algorithm, ``qop=auth-int`` only, a nonce with control
characters) simply yields ``None``. Nothing a server sends raises.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from .._errors import UsageError
from ._request import basic_auth
from ._url import URL

__all__ = [
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "DigestAuth",
    "DigestChallenge",
    "parse_challenges",
]

# Only this much of a WWW-Authenticate field is looked at, and only this many
# challenges kept: the parser bounds a head already, this bounds our work.
_MAX_CHALLENGE_TEXT: Final = 16 * 1024
_MAX_CHALLENGES: Final = 16
# Origins whose last Digest challenge is remembered for the next request;
# emptied when full, so a crawl over many hosts keeps memory bounded.
_MAX_DIGEST_ORIGINS: Final = 64

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME_RE: Final = re.compile(rf"[ \t]*({_TOKEN})(?=[ \t]|,|$)")
_PARAM_RE: Final = re.compile(rf"[ \t]*({_TOKEN})[ \t]*=[ \t]*({_QUOTED}|{_TOKEN})[ \t]*(?:,|$)")
_TOKEN68_RE: Final = re.compile(r"[ \t]*[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)")
_SKIP_RE: Final = re.compile(r"[^,]*,?")
_UNESCAPE_RE: Final = re.compile(r"\\(.)")
# What a value we echo back inside a quoted-string may hold: visible ASCII
# and spaces. Anything else (CR, LF, NUL, non-ASCII) could split our request.
_SAFE_VALUE_RE: Final = re.compile(r"[ !-~]*")


def parse_challenges(fields: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Split ``WWW-Authenticate`` field values into ``(scheme, params)`` challenges.

    Scheme and parameter names are lower-cased; quoted values are unquoted;
    the first of a repeated parameter wins; a token68 (``Basic abc==``) gives
    empty params. Unparseable stretches are skipped up to the next comma.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for field in fields:
        text = field[:_MAX_CHALLENGE_TEXT]
        pos = 0
        end = len(text)
        while pos < end and len(challenges) < _MAX_CHALLENGES:
            while pos < end and text[pos] in " \t,":
                pos += 1
            if pos >= end:
                break
            match = _SCHEME_RE.match(text, pos)
            if match is None:
                skip = _SKIP_RE.match(text, pos)
                assert skip is not None  # matches anything, possibly empty
                pos = max(skip.end(), pos + 1)
                continue
            scheme = match.group(1).lower()
            pos = match.end()
            params: dict[str, str] = {}
            while pos < end:
                param = _PARAM_RE.match(text, pos)
                if param is None:
                    break
                name, value = param.group(1).lower(), param.group(2)
                if value.startswith('"'):
                    value = _UNESCAPE_RE.sub(r"\1", value[1:-1])
                params.setdefault(name, value)
                pos = param.end()
            if not params:
                token68 = _TOKEN68_RE.match(text, pos)
                if token68 is not None:
                    pos = token68.end()
            challenges.append((scheme, params))
    return challenges


class Auth:
    """Base class of the ``auth=`` objects: how a request proves who sends it.

    Subclass it to add a scheme; both methods are pure decisions (the client
    sends, the auth object only computes header values).
    """

    def auth_header(self, method: str, url: URL) -> str | None:
        """The ``Authorization`` value for a first attempt at ``method url``, if any."""
        return None

    def answer_challenge(self, method: str, url: URL, challenges: list[str]) -> str | None:
        """The ``Authorization`` value to retry with after a 401, or ``None`` to give up.

        ``challenges`` are the response's ``WWW-Authenticate`` values.
        """
        return None


class BasicAuth(Auth):
    """HTTP Basic authentication (RFC 7617): user name and password on every request.

    Credentials are UTF-8 encoded; a user name with ``:`` cannot be expressed
    and raises :class:`~asyncnet.InvalidHeader`. Basic sends the password
    itself (base64 is no encryption), so use it over https.
    """

    __slots__ = ("_header", "username")

    def __init__(self, username: str, password: str = "") -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise UsageError("BasicAuth takes a str user name and a str password")
        self.username = username
        self._header = basic_auth(username, password)

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, '***')"

    def auth_header(self, method: str, url: URL) -> str | None:
        return self._header


class BearerAuth(Auth):
    """A bearer token (RFC 6750): ``Authorization: Bearer <token>`` on every request."""

    __slots__ = ("_header",)

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token or not _SAFE_VALUE_RE.fullmatch(token):
            raise UsageError("a bearer token must be a non-empty str of visible ASCII")
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "BearerAuth('***')"

    def auth_header(self, method: str, url: URL) -> str | None:
        return self._header


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


def _hasher(name: str) -> Callable[[bytes], str]:
    return lambda data: hashlib.new(name, data).hexdigest()


# RFC 7616 §3.2 algorithms, strongest first; "-sess" variants share the hash.
_ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "SHA-256": _hasher("sha256"),
    "MD5": _hasher("md5"),
}
try:
    _sha512_256(b"")
except ValueError:  # pragma: no cover - depends on the OpenSSL build
    pass
else:
    _ALGORITHMS = {"SHA-512-256": _sha512_256, **_ALGORITHMS}
_STRENGTH: Final = {name: rank for rank, name in enumerate(_ALGORITHMS)}


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """The parts of a ``Digest`` challenge that an answer uses."""

    realm: str
    nonce: str
    algorithm: str  # as RFC 7616 spells it, e.g. "SHA-256" or "MD5-sess"
    qop: str | None  # "auth" or None (RFC 2069 compatibility)
    opaque: str | None
    userhash: bool
    stale: bool

    @classmethod
    def from_params(cls, params: dict[str, str]) -> DigestChallenge | None:
        """Build a challenge from parsed params, or ``None`` if it cannot be answered."""
        realm = params.get("realm")
        nonce = params.get("nonce")
        if realm is None or not nonce:
            return None
        spelled = params.get("algorithm", "MD5").upper()
        base = spelled.removesuffix("-SESS")
        if base not in _ALGORITHMS:
            return None
        algorithm = base + "-sess" if spelled.endswith("-SESS") else base
        qop: str | None = None
        if "qop" in params:
            offered = {part.strip().lower() for part in params["qop"].split(",")}
            if "auth" not in offered:
                return None  # auth-int alone: it would need the body's hash
            qop = "auth"
        opaque = params.get("opaque")
        for value in (realm, nonce, opaque or ""):
            if not _SAFE_VALUE_RE.fullmatch(value):
                return None
        return cls(
            realm=realm,
            nonce=nonce,
            algorithm=algorithm,
            qop=qop,
            opaque=opaque,
            userhash=params.get("userhash", "").lower() == "true",
            stale=params.get("stale", "").lower() == "true",
        )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth(Auth):
    """HTTP Digest authentication (RFC 7616): MD5, SHA-256 (and SHA-512-256), ``qop=auth``.

    The first request to an origin goes without credentials; its 401
    challenge is answered once, and remembered so that later requests to the
    same origin answer it straight away, counting the nonce's uses (``nc``)
    as RFC 7616 §3.4 requires. A ``stale`` nonce is simply answered afresh.
    Of several Digest challenges the strongest supported algorithm wins.
    Resending a request after the 401 needs its body again: a one-shot body
    raises :class:`~asyncnet.BodyNotReplayable`.
    """

    __slots__ = ("_known", "_password", "username")

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise UsageError("DigestAuth takes a str user name and a str password")
        self.username = username
        self._password = password
        # origin -> (challenge, uses of its nonce so far)
        self._known: dict[tuple[str, str, int], tuple[DigestChallenge, int]] = {}

    def __repr__(self) -> str:
        return f"DigestAuth({self.username!r}, '***')"

    def auth_header(self, method: str, url: URL) -> str | None:
        known = self._known.get(url.origin)
        if known is None:
            return None
        return self._answer(method, url, known[0])

    def answer_challenge(self, method: str, url: URL, challenges: list[str]) -> str | None:
        best: DigestChallenge | None = None
        for scheme, params in parse_challenges(challenges):
            if scheme != "digest":
                continue
            challenge = DigestChallenge.from_params(params)
            if challenge is None:
                continue
            rank = _STRENGTH[challenge.algorithm.removesuffix("-sess")]
            if best is None or rank < _STRENGTH[best.algorithm.removesuffix("-sess")]:
                best = challenge
        if best is None:
            return None
        if len(self._known) >= _MAX_DIGEST_ORIGINS and url.origin not in self._known:
            self._known.clear()
        self._known[url.origin] = (best, 0)
        return self._answer(method, url, best)

    def _answer(self, method: str, url: URL, challenge: DigestChallenge) -> str:
        """Compute the ``Authorization`` value for one request, counting the nonce's use."""
        _, count = self._known[url.origin]
        count += 1
        self._known[url.origin] = (challenge, count)
        return digest_response(
            self.username,
            self._password,
            challenge,
            method=method,
            uri=url.target,
            nc=count,
            cnonce=secrets.token_hex(16),
        )


def digest_response(
    username: str,
    password: str,
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    nc: int,
    cnonce: str,
) -> str:
    """The ``Authorization`` value answering ``challenge`` (RFC 7616 §3.4), a pure function."""
    base = challenge.algorithm.removesuffix("-sess")
    digest = _ALGORITHMS[base]

    def h(text: str) -> str:
        return digest(text.encode("utf-8"))

    ha1 = h(f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if challenge.qop is None:
        answer = h(f"{ha1}:{challenge.nonce}:{ha2}")
    else:
        answer = h(f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:{challenge.qop}:{ha2}")
    parts: list[str] = []
    if challenge.userhash:
        parts.append(f"username={_quote(h(f'{username}:{challenge.realm}'))}")
    elif _SAFE_VALUE_RE.fullmatch(username):
        parts.append(f"username={_quote(username)}")
    else:
        # RFC 7616 §3.4.4: a name a quoted-string cannot carry goes as username*.
        parts.append(f"username*=UTF-8''{quote(username, safe='')}")
    parts += [
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"algorithm={challenge.algorithm}",
        f"response={_quote(answer)}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.qop is not None:
        parts += [f"qop={challenge.qop}", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)
