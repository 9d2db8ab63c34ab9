"""HTTP protocol rules that several modules apply, each written down once.

The token grammar (RFC 9110 section 5.6.2), the status and method sets, and the
header names with a special role. The parser, the request writer, the redirect
rules, the client and :func:`~asyncnet.fetch_all` all read them from here, so a
rule cannot drift between the code that sends and the code that receives.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CREDENTIAL_HEADERS",
    "IDEMPOTENT_METHODS",
    "METHODS_WITH_CONTENT",
    "NO_BODY_STATUSES",
    "QUOTED_STRING",
    "REDIRECT_STATUSES",
    "TCHAR",
    "TOKEN",
]

#: One ``tchar`` (RFC 9110 section 5.6.2), as a character class for ``re``; a
#: token is one or more of them. Patterns over Latin-1 text and over bytes are
#: both built from it (``TCHAR.encode()``).
TCHAR: Final = r"[-!#$%&'*+.^_`|~0-9A-Za-z]"
#: ``token = 1*tchar``: methods, field names, transfer-codings.
TOKEN: Final = re.compile(TCHAR + "+")
#: ``quoted-string`` (RFC 9110 section 5.6.4), obs-text allowed, as pattern text.
QUOTED_STRING: Final = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'

#: Statuses that redirect when they carry a ``Location`` (RFC 9110 section 15.4).
REDIRECT_STATUSES: Final[frozenset[int]] = frozenset({301, 302, 303, 307, 308})

#: Statuses whose responses never have a body, whatever their framing fields
#: say (RFC 9110 sections 15.3.5 and 15.4.5); 1xx are interim and have none either.
NO_BODY_STATUSES: Final[frozenset[int]] = frozenset({204, 304})

#: Methods whose repetition has the effect of one request (RFC 9110 section
#: 9.2.2): only these are sent again after a failure, a POST may not be.
IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
)

#: Methods whose semantics anticipate content: sent without a body they get
#: ``Content-Length: 0``; other methods then get no framing field at all
#: (RFC 9110 section 8.6: a user agent SHOULD NOT send Content-Length then).
METHODS_WITH_CONTENT: Final[frozenset[str]] = frozenset({"POST", "PUT", "PATCH"})

#: Request fields (lower case) that carry credentials: never sent to another
#: origin after a redirect, never kept in a process-wide cache.
CREDENTIAL_HEADERS: Final[frozenset[str]] = frozenset(
    {"authorization", "proxy-authorization", "cookie"}
)
