"""The redirect rules as pure functions: methods, bodies, Location, stripped headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncnet import BodyNotReplayable, InvalidURL, RemoteProtocolError
from asyncnet._http._redirects import (
    BODY_HEADERS,
    CREDENTIAL_HEADERS,
    REDIRECT_STATUSES,
    Redirect,
    next_request,
    redirect_method,
)
from asyncnet._http._url import parse_url

BASE = parse_url("https://example.com/a/b?z=1")

HEADERS = [
    ("Accept", "*/*"),
    ("Authorization", "Bearer secret"),
    ("Cookie", "session=1"),
    ("Proxy-Authorization", "Basic cHJveHk="),
    ("X-Trace", "one"),
    ("Content-Type", "text/plain"),
    ("Content-Length", "5"),
    ("X-Trace", "two"),
]


def _follow(
    status: int = 302,
    location: str | None = "/next",
    method: str = "GET",
    url: str = "https://example.com/a/b?z=1",
    headers: list[tuple[str, str]] | None = None,
    **kw: bool,
) -> Redirect:
    result = next_request(
        method, parse_url(url), HEADERS if headers is None else headers, status, location, **kw
    )
    assert result is not None
    return result


# -- which method follows ----------------------------------------------------------

METHOD_TABLE = {
    # status: {method: next method}
    301: {"GET": "GET", "HEAD": "HEAD", "POST": "GET", "PUT": "PUT", "DELETE": "DELETE"},
    302: {"GET": "GET", "HEAD": "HEAD", "POST": "GET", "PUT": "PUT", "DELETE": "DELETE"},
    303: {"GET": "GET", "HEAD": "HEAD", "POST": "GET", "PUT": "GET", "DELETE": "GET"},
    307: {"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE"},
    308: {"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE"},
}


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [(s, m, e) for s, row in METHOD_TABLE.items() for m, e in row.items()],
)
def test_method_after_redirect(status: int, method: str, expected: str) -> None:
    assert redirect_method(method, status) == expected
    assert _follow(status, method=method).method == expected


@pytest.mark.parametrize(
    ("status", "method", "keep"),
    [
        (301, "POST", False),
        (302, "POST", False),
        (303, "POST", False),
        (303, "PUT", False),
        (303, "HEAD", False),
        (307, "POST", True),
        (308, "PUT", True),
        (301, "PUT", True),
        (302, "PATCH", True),
    ],
)
def test_body_kept_only_when_the_method_is(status: int, method: str, keep: bool) -> None:
    result = _follow(status, method=method, has_body=True)
    assert result.keep_body is keep
    names = {name.lower() for name, _ in result.headers}
    if keep:
        assert {"content-type", "content-length"} <= names
    else:
        assert not names & BODY_HEADERS


def test_all_body_headers_dropped_with_the_body() -> None:
    headers = [
        ("Content-Length", "3"),
        ("content-type", "a/b"),
        ("Transfer-Encoding", "chunked"),
        ("CONTENT-ENCODING", "gzip"),
        ("X-Keep", "yes"),
    ]
    result = _follow(303, method="POST", headers=headers, has_body=True)
    assert result.headers == [("X-Keep", "yes")]
    assert _follow(307, method="POST", headers=headers, has_body=True).headers == headers


def test_request_without_body_never_keeps_one() -> None:
    assert _follow(307, method="POST", has_body=False).keep_body is False


@pytest.mark.parametrize("status", [307, 308, 301, 302])
def test_one_shot_body_that_must_be_resent_raises(status: int) -> None:
    with pytest.raises(BodyNotReplayable, match=str(status)):
        next_request("PUT", BASE, [], status, "/x", has_body=True, body_replayable=False)


def test_one_shot_body_is_fine_when_the_body_is_dropped() -> None:
    result = _follow(303, method="POST", has_body=True, body_replayable=False)
    assert (result.method, result.keep_body) == ("GET", False)
    result = _follow(302, method="POST", has_body=True, body_replayable=False)
    assert (result.method, result.keep_body) == ("GET", False)


# -- which responses redirect at all ---------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 300, 304, 305, 306, 309, 399, 400, 500])
def test_other_statuses_are_final(status: int) -> None:
    assert next_request("GET", BASE, HEADERS, status, "/elsewhere") is None


@pytest.mark.parametrize("status", sorted(REDIRECT_STATUSES))
@pytest.mark.parametrize("location", [None, ""])
def test_redirect_without_location_is_final(status: int, location: str | None) -> None:
    assert next_request("GET", BASE, HEADERS, status, location) is None


# -- Location --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/next", "https://example.com/next"),
        ("c", "https://example.com/a/c"),
        ("../d?x=1", "https://example.com/d?x=1"),
        ("?q=2", "https://example.com/a/b?q=2"),
        ("//other.example/p", "https://other.example/p"),
        ("http://other.example:8080/p", "http://other.example:8080/p"),
        ("HTTPS://Example.COM/up", "https://example.com/up"),
    ],
)
def test_location_resolved_against_the_current_url(location: str, expected: str) -> None:
    assert str(_follow(location=location).url) == expected


@pytest.mark.parametrize(
    "location",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/plain,hi",
        "mailto:a@example.com",
        "localhost:8080/x",
    ],
)
def test_non_http_location_is_an_error(location: str) -> None:
    scheme = location.partition(":")[0]
    with pytest.raises(RemoteProtocolError, match=f"redirect to a '{scheme}' URL is not followed"):
        next_request("GET", BASE, HEADERS, 302, location)


@pytest.mark.parametrize(
    "location", ["http://exa mple.com/", "/path\r\nX-Injected: 1", "http://[::1/"]
)
def test_malformed_location_is_an_error(location: str) -> None:
    with pytest.raises(RemoteProtocolError, match="redirect Location is not a valid URL") as info:
        next_request("GET", BASE, HEADERS, 302, location)
    # The server's mistake, not the caller's: never a ValueError.
    assert not isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, InvalidURL)


# -- credentials across origins ----------------------------------------------------------


def _names(result: Redirect) -> set[str]:
    return {name.lower() for name, _ in result.headers}


@pytest.mark.parametrize(
    "location", ["/same", "https://example.com/abs", "https://EXAMPLE.com:443/default-port"]
)
def test_credentials_kept_on_the_same_origin(location: str) -> None:
    assert _names(_follow(location=location)) >= CREDENTIAL_HEADERS


@pytest.mark.parametrize(
    "location",
    [
        "https://other.example/",  # other host
        "https://example.com:8443/",  # other port
        "http://example.com/",  # https -> http, same host
        "//sub.example.com/",  # scheme-relative, other host
    ],
)
def test_credentials_dropped_on_a_change_of_origin(location: str) -> None:
    result = _follow(location=location)
    assert not _names(result) & CREDENTIAL_HEADERS
    # Everything else is kept, in order, duplicates included.
    assert [v for n, v in result.headers if n == "X-Trace"] == ["one", "two"]
    assert result.headers[0] == ("Accept", "*/*")


def test_credentials_dropped_on_http_to_https_too() -> None:
    # The origin changes with the scheme; credentials are not carried across it.
    result = _follow(location="https://example.com/", url="http://example.com/")
    assert not _names(result) & CREDENTIAL_HEADERS


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("https://example.com:8443/", "http://example.com:8443/"),
        ("http://example.com:8080/", "https://example.com:8080/"),
    ],
)
def test_credentials_dropped_on_a_scheme_change_alone(url: str, location: str) -> None:
    # Same host, same port: the scheme alone makes it another origin.
    result = _follow(location=location, url=url)
    assert not _names(result) & CREDENTIAL_HEADERS


def test_credential_header_names_match_case_insensitively() -> None:
    headers = [("AUTHORIZATION", "x"), ("cookie", "y"), ("proxy-authorization", "z")]
    assert _follow(location="https://other.example/", headers=headers).headers == []


def test_callers_host_header_dropped_on_a_change_of_origin() -> None:
    headers = [("Host", "example.com"), ("X-A", "1")]
    assert _follow(location="/same", headers=headers).headers == headers
    assert _follow(location="https://other.example/", headers=headers).headers == [("X-A", "1")]


# -- properties ----------------------------------------------------------------------------

_header_names = st.sampled_from(
    ["Authorization", "cookie", "PROXY-AUTHORIZATION", "Content-Length", "Content-Type",
     "Transfer-Encoding", "Content-Encoding", "Accept", "X-Any", "Host"]
)


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from([*sorted(REDIRECT_STATUSES), 200, 304]),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    headers=st.lists(st.tuples(_header_names, st.sampled_from(["v", "w"])), max_size=8),
    location=st.sampled_from(
        ["/p", "q", "https://example.com/x", "http://example.com/x", "https://other.example/",
         "https://example.com:444/"]
    ),
    has_body=st.booleans(),
)
def test_redirect_invariants(
    status: int, method: str, headers: list[tuple[str, str]], location: str, has_body: bool
) -> None:
    result = next_request(method, BASE, headers, status, location, has_body=has_body)
    if status not in REDIRECT_STATUSES:
        assert result is None
        return
    assert result is not None
    names = _names(result)
    # Only removals, never additions or reordering.
    remaining = iter(headers)
    assert all(pair in remaining for pair in result.headers)
    if result.url.origin != BASE.origin:
        assert not names & (CREDENTIAL_HEADERS | {"host"})
    else:
        assert [p for p in headers if p[0].lower() in CREDENTIAL_HEADERS] == [
            p for p in result.headers if p[0].lower() in CREDENTIAL_HEADERS
        ]
    if result.keep_body:
        assert has_body and result.method == method
    else:
        assert not names & BODY_HEADERS


# -- which rule refuses a Location ---------------------------------------------


@pytest.mark.parametrize(
    ("location", "scheme"),
    [
        ("ftp://example.com/file", "ftp"),
        ("FILE:///etc/passwd", "FILE"),
        ("javascript:alert(1)", "javascript"),
        ("localhost:8080/x", "localhost"),
    ],
)
def test_non_http_location_is_refused_before_it_is_resolved(location: str, scheme: str) -> None:
    # Refused by the scheme rule itself, so the error names the scheme and
    # carries no URL-parsing cause.
    with pytest.raises(RemoteProtocolError, match=f"redirect to a '{scheme}' URL is not followed"):
        next_request("GET", BASE, HEADERS, 302, location)


@pytest.mark.parametrize("location", ["HTTP://other.example/x", "Https://other.example/x"])
def test_http_schemes_in_any_case_are_followed(location: str) -> None:
    result = _follow(location=location)
    assert str(result.url).endswith("://other.example/x")


def test_malformed_location_names_the_url_rule() -> None:
    with pytest.raises(RemoteProtocolError, match=r"Location is not a valid URL: .*backslash"):
        next_request("GET", BASE, HEADERS, 302, "/a\\b")


def test_one_shot_body_error_names_the_status_method_and_target() -> None:
    with pytest.raises(
        BodyNotReplayable, match=r"^307 redirect to https://example.com/next needs the PUT body"
    ):
        _follow(status=307, method="PUT", has_body=True, body_replayable=False)


def test_a_request_without_has_body_is_taken_to_have_none() -> None:
    # The default is "no body": a 307 of a bare POST keeps no body and sends
    # no body headers on, instead of asking to replay something never sent.
    result = next_request("POST", BASE, HEADERS, 307, "/next")
    assert result is not None
    assert result.method == "POST"
    assert result.keep_body is False
    assert not _names(result) & BODY_HEADERS


def test_redirect_is_an_immutable_value() -> None:
    result = _follow()
    with pytest.raises(AttributeError):
        result.method = "DELETE"  # type: ignore[misc]
    assert result.method == "GET"
