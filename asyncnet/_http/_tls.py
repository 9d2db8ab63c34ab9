"""TLS settings of the HTTP client: one verifying default context, and the choice per request.

The default context is made once per process: building one loads the system
trust store, which costs milliseconds, and a shared context also lets OpenSSL
resume sessions. It verifies the chain and the host name (from the
subjectAltName only, never the legacy common name) and refuses anything older
than TLS 1.2. A handshake that fails verification raises; nothing ever falls
back to an unverified or plain-text connection.

What the client's ``ssl=`` argument means:

``None`` or ``True``
    the shared verifying default context;
``ssl.SSLContext``
    the caller's context, used as given (it is never modified, so the caller
    keeps control of its trust store, versions and ALPN);
``False``
    encryption without any verification (no chain check, no host name check),
    like ``ssl=False`` in aiohttp or ``verify=False`` in httpx: for test peers
    with self-signed certificates, never for the open internet. It does not
    mean plain text: an ``https`` URL always gets TLS.

``http`` URLs never use TLS, whatever the setting.
"""

from __future__ import annotations

import functools
import ssl

__all__ = [
    "ALPN_PROTOCOLS",
    "SSLSetting",
    "create_ssl_context",
    "default_ssl_context",
    "ssl_context_for",
    "unverified_ssl_context",
]

#: ALPN offer: this client speaks HTTP/1.1 only, so a server that supports
#: HTTP/2 must not pick it.
ALPN_PROTOCOLS: tuple[str, ...] = ("http/1.1",)

#: What callers may pass as ``ssl=``.
SSLSetting = ssl.SSLContext | bool | None


def create_ssl_context(
    *, cafile: str | None = None, cadata: str | None = None, verify: bool = True
) -> ssl.SSLContext:
    """Build a new client context with the client's settings, trusting the given CAs.

    Without ``cafile``/``cadata`` it trusts the system store. ``verify=False``
    turns off both the chain and the host name check (see ``ssl=False``).
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile, cadata=cadata)
    # create_default_context() already verifies; the settings are spelled out
    # so that the policy is visible here and does not depend on its defaults.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.hostname_checks_common_name = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False  # must come before CERT_NONE
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return ctx


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """Return the process-wide verifying client context (built on first use).

    It is shared by every client that does not bring its own, so its users
    must not modify it.
    """
    return create_ssl_context()


@functools.cache
def unverified_ssl_context() -> ssl.SSLContext:
    """Return the process-wide context for ``ssl=False``: encrypted, but nothing verified."""
    return create_ssl_context(verify=False)


def ssl_context_for(scheme: str, setting: SSLSetting = None) -> ssl.SSLContext | None:
    """Pick the context for a request to ``scheme`` under the client's ``ssl=`` setting.

    Returns ``None`` for ``http`` (no TLS); see the module documentation for
    what each setting means for ``https``.
    """
    if scheme == "http":
        return None
    if scheme != "https":
        raise ValueError(f"no TLS rule for scheme {scheme!r}")
    if isinstance(setting, ssl.SSLContext):
        return setting
    if setting is None or setting is True:
        return default_ssl_context()
    if setting is False:
        return unverified_ssl_context()
    raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None, not {type(setting).__name__}")
