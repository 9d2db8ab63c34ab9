"""URL parsing and validation: what is accepted, what is refused, how references resolve."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet import InvalidURL
from asyncnet._http._url import URL, parse_url


def test_common_url() -> None:
    url = parse_url("http://example.com/path?q=1")
    assert url == URL("http", "example.com", 80, "/path?q=1")
    assert url.origin == ("http", "example.com", 80)
    assert url.host_header == "example.com"
    assert url.path == "/path"
    assert url.query == "q=1"
    assert str(url) == "http://example.com/path?q=1"
    assert url.username is None and url.password is None


def test_a_url_pickled_in_another_process_hashes_like_a_local_one() -> None:
    # str hashes differ between processes (PYTHONHASHSEED): a URL from a
    # pickle must not bring its old hash along.
    import os
    import pickle
    import subprocess
    import sys

    script = (
        "import pickle, sys; from asyncnet._http._url import parse_url; "
        "sys.stdout.buffer.write(pickle.dumps(parse_url('http://u:p@example.com:8080/a?b')))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # not this process's
    env = dict(os.environ, PYTHONHASHSEED=seed)
    data = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=60
    ).stdout
    remote = pickle.loads(data)
    local = parse_url("http://u:p@example.com:8080/a?b")
    assert remote == local
    assert hash(remote) == hash(local)
    assert {local: "found"}[remote] == "found"


def test_equal_urls_hash_alike_and_unequal_ones_differ() -> None:
    # The hash is computed once from the compared fields; a field left out
    # would make unequal URLs collide on every lookup, one too many would
    # break equal URLs as dict keys.
    base = URL("http", "example.com", 80, "/p", "u", "pw")
    assert hash(base) == hash(URL("http", "example.com", 80, "/p", "u", "pw"))
    assert {base: 1}[parse_url("http://u:pw@EXAMPLE.com:80/p")] == 1
    others = [
        URL("https", "example.com", 80, "/p", "u", "pw"),
        URL("http", "example.org", 80, "/p", "u", "pw"),
        URL("http", "example.com", 81, "/p", "u", "pw"),
        URL("http", "example.com", 80, "/q", "u", "pw"),
        URL("http", "example.com", 80, "/p", "v", "pw"),
        URL("http", "example.com", 80, "/p", "u", "px"),
    ]
    assert len({hash(u) for u in [base, *others]}) == len(others) + 1


def test_public_name() -> None:
    assert asyncnet.URL is URL


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "target", "host_header"),
    [
        ("https://example.com", "https", "example.com", 443, "/", "example.com"),
        ("HTTPS://EXAMPLE.com:443/", "https", "example.com", 443, "/", "example.com"),
        ("http://example.com:8080", "http", "example.com", 8080, "/", "example.com:8080"),
        ("http://example.com:", "http", "example.com", 80, "/", "example.com"),
        ("http://example.com:0/", "http", "example.com", 0, "/", "example.com:0"),
        ("http://example.com:65535/", "http", "example.com", 65535, "/", "example.com:65535"),
        ("http://example.com:00080/", "http", "example.com", 80, "/", "example.com"),
        ("http://h?x=1", "http", "h", 80, "/?x=1", "h"),
        ("http://h/#frag", "http", "h", 80, "/", "h"),
        ("http://h/a?b#c?d", "http", "h", 80, "/a?b", "h"),
        ("http://h/?", "http", "h", 80, "/?", "h"),
        ("http://127.0.0.1:8000/x", "http", "127.0.0.1", 8000, "/x", "127.0.0.1:8000"),
        ("http://127.0.0.1./", "http", "127.0.0.1.", 80, "/", "127.0.0.1."),
        ("http://1a.example/", "http", "1a.example", 80, "/", "1a.example"),
        ("http://example.com1/", "http", "example.com1", 80, "/", "example.com1"),
        ("http://[::1]/", "http", "::1", 80, "/", "[::1]"),
        ("http://[::1]:8080/", "http", "::1", 8080, "/", "[::1]:8080"),
        ("http://[0:0:0:0:0:0:0:1]/", "http", "::1", 80, "/", "[::1]"),
        ("http://[2001:DB8::1]/", "http", "2001:db8::1", 80, "/", "[2001:db8::1]"),
        ("http://my_host.local./", "http", "my_host.local.", 80, "/", "my_host.local."),
        (
            "http://bücher.example/",
            "http",
            "xn--bcher-kva.example",
            80,
            "/",
            "xn--bcher-kva.example",
        ),
        (
            "http://BÜCHER.example/",
            "http",
            "xn--bcher-kva.example",
            80,
            "/",
            "xn--bcher-kva.example",
        ),
        ("http://пример.рф./", "http", "xn--e1afmkfd.xn--p1ai.", 80, "/", "xn--e1afmkfd.xn--p1ai."),
    ],
)
def test_accepted(
    text: str, scheme: str, host: str, port: int, target: str, host_header: str
) -> None:
    url = parse_url(text)
    assert (url.scheme, url.host, url.port, url.target) == (scheme, host, port, target)
    assert url.host_header == host_header


def test_userinfo_is_split_off_and_percent_decoded() -> None:
    url = parse_url("http://us%40er:p%3Ass:w@example.com/")
    assert url.host == "example.com"
    assert url.username == "us@er"
    assert url.password == "p:ss:w"
    assert "us" not in str(url)
    assert parse_url("http://user@h/").password == ""
    # The last "@" ends the userinfo: the host is what comes after it.
    assert parse_url("http://a@evil.com@good.com/").host == "good.com"


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("http://h/a%20b", "/a%20b"),  # escapes kept as given
        ("http://h/a%2fb%2F", "/a%2fb%2F"),  # case of escapes kept
        ("http://h/café", "/caf%C3%A9"),  # raw non-ASCII encoded as UTF-8
        ("http://h/?q=ü", "/?q=%C3%BC"),
        ('http://h/<a>"{|}^`', "/%3Ca%3E%22%7B%7C%7D%5E%60"),
        ("http://h/100%", "/100%25"),  # a lone percent is escaped
        ("http://h/%zz", "/%25zz"),
        ("http://h/a?b?c/d", "/a?b?c/d"),
        ("http://h/a?x=[1]", "/a?x=%5B1%5D"),
        ("http://h/~user/!$&'()*+,;=:@", "/~user/!$&'()*+,;=:@"),
        ("http://h/a/../b/./c", "/a/../b/./c"),  # the caller's path is not rewritten
    ],
)
def test_target_encoding(text: str, target: str) -> None:
    assert parse_url(text).target == target


# The rule each rejected URL below must trip (a pattern of its message), so a
# second check behind the intended one cannot hide a regression of the first.
REJECTED_BECAUSE: dict[str, list[str]] = {
    "not an absolute URL": ["", "example.com", "/path", "//example.com/"],
    "scheme must be http or https": [
        "ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)",
    ],
    "URL has no host": [
        "http:/example.com", "http:example.com", "http://", "http:///path", "http://:80/",
        "http://user@/",
    ],
    "forbidden character": [
        " http://example.com/", "http://example.com/ ", "\thttp://example.com/",
        "http://exa\tmple.com/", "http://example.com/\r\nX-Injected: 1",
        "http://example.com/a\nb", "http://example.com/a\x00b", "http://example.com/a b",
        "http://example.com/?a=b c", "http://example.com/\x7f", "http://example.com/\x85",
        "http://exam ple.com/", "http://example.com\r\n/", "http://example.com/\x1b[0m",
        "http://user:pa ss@example.com/",
    ],
    "backslash": ["http://ex\\ample.com/", "http://example.com\\@evil.com/"],
    "invalid port": [
        "http://h:65536/", "http://h:99999/", "http://h:-1/", "http://h:+80/", "http://h:8_0/",
        "http://h:0x50/", "http://h:\uff18\uff10/", "http://h:80:80/", "http://h:a/",
        "http://h:123456/",
    ],
    "invalid host": [
        "http://exa_mple!.com/", "http://a..b/", "http://.a/", "http://a*b/", "http://a%2eb/",
    ],
    "host name is longer than 253 octets": [
        "http://" + "a." * 126 + "bc/", "http://" + "a" * 254 + "/",
    ],
    "host name label is longer than 63 octets": ["http://" + "a" * 64 + ".com/"],
    "unterminated IPv6": ["http://[::1/"],
    "junk after IPv6": ["http://[::1]x/"],
    "invalid IPv6 address": ["http://[not-ipv6]/", "http://[127.0.0.1]/"],
    "zone identifiers": ["http://[::1%25eth0]/"],
    "would be changed by IDNA": [
        "http://\u2024.com/", "http://exa\u00admple.com/", "http://exa\u200bmple.com/",
        "http://\uff45xample.com/", "http://stra\u00dfe.de/",
    ],
    "userinfo is not UTF-8": ["http://us%ffer@h/"],
    "ambiguous numeric host": [
        "http://127.1/", "http://0x7f.0.0.1/", "http://0177.0.0.1/", "http://2130706433/",
        "http://127.0.0.01/", "http://256.0.0.1/", "http://1.2.3.4.5/", "http://a.0x1/",
        "http://example.123/",
    ],
}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "example.com",
        "/path",
        "//example.com/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:/example.com",
        "http:example.com",
        "http://",
        "http:///path",
        "http://:80/",
        "http://user@/",
        # controls, spaces and whitespace anywhere, including where urllib strips them
        " http://example.com/",
        "http://example.com/ ",
        "\thttp://example.com/",
        "http://exa\tmple.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com/a\nb",
        "http://example.com/a\x00b",
        "http://example.com/a b",
        "http://example.com/?a=b c",
        "http://example.com/\x7f",
        "http://example.com/\x85",
        "http://exam ple.com/",
        "http://example.com\r\n/",
        "http://example.com/\x1b[0m",
        "http://user:pa ss@example.com/",
        "http://ex\\ample.com/",
        "http://example.com\\@evil.com/",
        # ports: ASCII digits only, in range
        "http://h:65536/",
        "http://h:99999/",
        "http://h:-1/",
        "http://h:+80/",
        "http://h:8_0/",
        "http://h:0x50/",
        "http://h:\uff18\uff10/",  # fullwidth digits
        "http://h:80:80/",
        "http://h:a/",
        "http://h:123456/",
        # hosts
        "http://exa_mple!.com/",
        "http://a..b/",
        "http://.a/",
        "http://a*b/",
        "http://a%2eb/",
        "http://[::1/",
        "http://[::1]x/",
        "http://[not-ipv6]/",
        "http://[::1%25eth0]/",
        "http://[127.0.0.1]/",
        "http://" + "a" * 254 + "/",
        "http://\u2024.com/",  # IDNA cannot encode an empty label
        # IDNA 2003 would silently rewrite these hosts
        "http://exa\u00admple.com/",  # soft hyphen, mapped to nothing
        "http://exa\u200bmple.com/",  # zero-width space, mapped to nothing
        "http://\uff45xample.com/",  # full-width letter, folded
        "http://stra\u00dfe.de/",  # sharp s, mapped to "ss"
        "http://us%ffer@h/",  # userinfo not UTF-8
        # numeric hosts other than a canonical dotted quad
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://127.0.0.01/",
        "http://256.0.0.1/",
        "http://1.2.3.4.5/",
        "http://a.0x1/",
        "http://example.123/",
    ],
)
def test_rejected(text: str) -> None:
    rules = [rule for rule, texts in REJECTED_BECAUSE.items() if text in texts]
    assert len(rules) == 1, f"name the one rule {text!r} must trip in REJECTED_BECAUSE"
    with pytest.raises(InvalidURL, match=re.escape(rules[0])):
        parse_url(text)


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^scheme must be http or https, not 'gopher'"):
        parse_url("gopher://h/")


def test_non_str_rejected() -> None:
    with pytest.raises(InvalidURL, match=r"^URL must be str or URL, not bytes"):
        parse_url(b"http://h/")  # type: ignore[arg-type]


def test_parse_url_passes_url_through_and_caches() -> None:
    url = parse_url("http://cache.example/x")
    assert parse_url(url) is url
    assert parse_url("http://cache.example/x") is url
    long = "http://h/" + "a" * 10_000
    assert parse_url(long).target == "/" + "a" * 10_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scheme": "ftp", "host": "h", "port": 21, "target": "/"},
        {"scheme": "http", "host": "h\r\nx", "port": 80, "target": "/"},
        {"scheme": "http", "host": "h", "port": 70000, "target": "/"},
        {"scheme": "http", "host": "h", "port": 80, "target": "/a b"},
        {"scheme": "http", "host": "h", "port": 80, "target": "/\r\n"},
        {"scheme": "http", "host": "h", "port": 80, "target": "x"},
        {"scheme": "http", "host": "h", "port": 80, "target": "/é"},
        {"scheme": "http", "host": "1:2", "port": 80, "target": "/"},
    ],
)
def test_direct_construction_is_checked(kwargs: dict[str, object]) -> None:
    # Each case spoils a field of a valid URL (ftp's port 21 aside); the error
    # must name that field's rule.
    valid = {"scheme": "http", "host": "h", "port": 80, "target": "/"}
    fields = ("scheme", "host", "port", "target")
    spoiled = next(name for name in fields if kwargs[name] != valid[name])
    rule = {
        "scheme": "scheme must be http or https",
        "host": "invalid (host|IPv6 address)",
        "port": "port out of range",
        "target": "invalid request target",
    }[spoiled]
    with pytest.raises(InvalidURL, match=rule):
        URL(**kwargs)  # type: ignore[arg-type]


def test_frozen() -> None:
    url = parse_url("http://h/")
    with pytest.raises(AttributeError):
        url.host = "evil"  # type: ignore[misc]


# RFC 3986 §5.4.1 and §5.4.2, with base http://a/b/c/d;p?q
RFC3986_EXAMPLES = [
    ("g", "http://a/b/c/g"),
    ("./g", "http://a/b/c/g"),
    ("g/", "http://a/b/c/g/"),
    ("/g", "http://a/g"),
    ("//g", "http://g/"),
    ("?y", "http://a/b/c/d;p?y"),
    ("g?y", "http://a/b/c/g?y"),
    ("#s", "http://a/b/c/d;p?q"),
    ("g#s", "http://a/b/c/g"),
    ("g?y#s", "http://a/b/c/g?y"),
    (";x", "http://a/b/c/;x"),
    ("g;x", "http://a/b/c/g;x"),
    ("g;x?y#s", "http://a/b/c/g;x?y"),
    ("", "http://a/b/c/d;p?q"),
    (".", "http://a/b/c/"),
    ("./", "http://a/b/c/"),
    ("..", "http://a/b/"),
    ("../", "http://a/b/"),
    ("../g", "http://a/b/g"),
    ("../..", "http://a/"),
    ("../../", "http://a/"),
    ("../../g", "http://a/g"),
    ("../../../g", "http://a/g"),
    ("../../../../g", "http://a/g"),
    ("/./g", "http://a/g"),
    ("/../g", "http://a/g"),
    ("g.", "http://a/b/c/g."),
    (".g", "http://a/b/c/.g"),
    ("g..", "http://a/b/c/g.."),
    ("..g", "http://a/b/c/..g"),
    ("./../g", "http://a/b/g"),
    ("./g/.", "http://a/b/c/g/"),
    ("g/./h", "http://a/b/c/g/h"),
    ("g/../h", "http://a/b/c/h"),
    ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
    ("g;x=1/../y", "http://a/b/c/y"),
    ("g?y/./x", "http://a/b/c/g?y/./x"),
    ("g?y/../x", "http://a/b/c/g?y/../x"),
    ("g#s/./x", "http://a/b/c/g"),
    ("g#s/../x", "http://a/b/c/g"),
    ("http:g", "http://a/b/c/g"),  # the backward-compatible reading
    ("https://other:8443/x/../y?z", "https://other:8443/y?z"),
    ("HTTP://A/", "http://a/"),
]


@pytest.mark.parametrize(("ref", "expected"), RFC3986_EXAMPLES)
def test_join_rfc3986(ref: str, expected: str) -> None:
    base = parse_url("http://a/b/c/d;p?q")
    assert str(base.join(ref)) == expected


def test_join_keeps_userinfo_only_for_same_authority() -> None:
    base = parse_url("http://u:p@a:8080/x/y")
    same = base.join("z")
    assert (same.username, same.password, same.port) == ("u", "p", 8080)
    other = base.join("//b/")
    assert other.username is None and other.host == "b" and other.port == 80
    assert base.join("https://a/").port == 443


def test_join_scheme_relative_keeps_scheme() -> None:
    assert str(parse_url("https://a/x").join("//b:1/c")) == "https://b:1/c"


def test_join_encodes_and_decodes_utf8_location() -> None:
    base = parse_url("http://a/x")
    # A UTF-8 Location arrives latin-1 decoded from the wire.
    wire = "/café".encode().decode("latin-1")
    assert base.join(wire).target == "/caf%C3%A9"
    assert base.join("/café").target == "/caf%C3%A9"
    assert base.join("/a%20b").target == "/a%20b"


def test_join_encodes_spaces_in_path_and_query() -> None:
    base = parse_url("http://a/x/")
    assert base.join("/a b?c d").target == "/a%20b?c%20d"
    assert base.join("y z").target == "/x/y%20z"
    assert str(base.join("http://b/p q")) == "http://b/p%20q"


# The rule each rejected reference below must trip (a pattern of its message).
JOIN_REJECTED_BECAUSE: dict[str, str] = {
    "ftp://a/": "unsupported scheme 'ftp'",
    "javascript:alert(1)": "unsupported scheme 'javascript'",
    "mailto:x@y": "unsupported scheme 'mailto'",
    "data:text/plain,hi": "unsupported scheme 'data'",
    "https:g": "absolute URL without a host",
    "/a\r\nSet-Cookie: x": "forbidden character '\\\\r'",
    "/a\tb": "forbidden character '\\\\t'",
    " /a": "forbidden character ' ' at index 0",
    "/a ": "forbidden character ' ' at index 2",
    "//ho st/": "forbidden character ' '",
    "http://ho st/": "forbidden character ' '",
    "//": "URL has no host",
    "//h:99999/": "invalid port '99999'",
    "http://": "URL has no host",
    "\\\\evil.com/": "backslash",
}


@pytest.mark.parametrize(
    "ref",
    [
        "ftp://a/",
        "javascript:alert(1)",
        "mailto:x@y",
        "data:text/plain,hi",
        "https:g",
        "/a\r\nSet-Cookie: x",
        "/a\tb",
        " /a",
        "/a ",
        "//ho st/",
        "http://ho st/",
        "//",
        "//h:99999/",
        "http://",
        "\\\\evil.com/",
    ],
)
def test_join_rejects(ref: str) -> None:
    with pytest.raises(InvalidURL, match=JOIN_REJECTED_BECAUSE[ref]):
        parse_url("http://a/b").join(ref)


# -- properties ----------------------------------------------------------------

_host = st.one_of(
    st.from_regex(r"([a-z0-9_-]{1,8}\.){0,3}[a-z][a-z0-9-]{0,10}\.?", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_part = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs"), blacklist_characters="#\\"),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=_host,
    port=st.one_of(st.none(), st.integers(0, 65535)),
    path=_part,
    query=st.one_of(st.none(), _part),
)
def test_parse_str_parse_is_stable(
    scheme: str, host: str, port: int | None, path: str, query: str | None
) -> None:
    text = f"{scheme}://{host}" + ("" if port is None else f":{port}") + "/" + path
    if query is not None:
        text += "?" + query
    # Path and query characters outside RFC 3986 are percent-encoded, never refused.
    url = parse_url(text)
    again = parse_url(str(url))
    assert again == url
    assert hash(again) == hash(url)
    assert str(again) == str(url)
    assert url.target.isascii() and " " not in url.target


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["http://h/", "http://h/a?", "http://", "http://h:"]),
    bad=st.characters(min_codepoint=0, max_codepoint=0x20) | st.sampled_from(["\x7f", "\x9b"]),
    suffix=st.text(max_size=5),
)
def test_any_control_or_space_is_rejected(prefix: str, bad: str, suffix: str) -> None:
    with pytest.raises(InvalidURL, match=r"^URL contains forbidden character "):
        parse_url(prefix + bad + suffix)


@pytest.mark.parametrize(
    "url", ["http://h/\ud800", "http://h/?q=\udfff", "http://h\ud83d/", "http://u\udc80@h/"]
)
def test_lone_surrogate_is_invalid_url(url: str) -> None:
    # A lone surrogate has no UTF-8 form, so the URL cannot be sent; the
    # caller gets InvalidURL, not a UnicodeEncodeError from deep inside.
    with pytest.raises(InvalidURL, match=r"^URL contains forbidden character "):
        parse_url(url)


# -- DNS length limits (RFC 1035 section 2.3.4) -------------------------------------

_LABEL_63 = "a" * 63
# Four labels of 62 and one of 1, with their dots: exactly 253 characters.
_NAME_253 = ".".join(["b" * 62] * 4) + ".c"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (f"http://{'a' * 64}/", "label is longer than 63 octets"),
        (f"http://x.{'a' * 64}.example/", "label is longer than 63 octets"),
        (f"http://{'A' * 64}.example./", "label is longer than 63 octets"),
        (f"http://xn--{'a' * 61}.example/", "label is longer than 63 octets"),
        (f"http://{_NAME_253}x/", "host name is longer than 253 octets"),
        (f"http://{_NAME_253}x./", "host name is longer than 253 octets"),
        (f"http://u:p@{'a' * 64}:8080/path", "label is longer than 63 octets"),
    ],
)
def test_names_dns_cannot_carry_are_invalid_urls(text: str, rule: str) -> None:
    # Accepted before, they failed later inside getaddrinfo with a bare
    # UnicodeError ("label empty or too long") from its IDNA step.
    with pytest.raises(InvalidURL, match=rule):
        parse_url(text)


@pytest.mark.parametrize(
    "host", [_LABEL_63, f"{_LABEL_63}.example", _NAME_253, _NAME_253 + ".", "a." * 126 + "b"]
)
def test_names_at_the_dns_limits_are_accepted(host: str) -> None:
    url = parse_url(f"http://{host}/")
    assert url.host == host
    host.encode("idna")  # what the resolver does first: it must not fail


def test_a_url_built_directly_obeys_the_dns_limits_too() -> None:
    with pytest.raises(InvalidURL, match="label is longer than 63 octets"):
        URL("http", "a" * 64, 80, "/")
    with pytest.raises(InvalidURL, match="host name is longer than 253 octets"):
        URL("http", _NAME_253 + "x", 80, "/")
    assert URL("http", _NAME_253, 80, "/").host == _NAME_253


@pytest.mark.parametrize(
    "text",
    [
        "http://" + "\u00fc" * 64 + ".example/",  # encodes to a label far beyond 63
        "http://b\u00fccher" + "a" * 60 + ".example/",
        "http://\u00fc..example/",  # an empty label
        "http://xn--\u00fc.example/",  # the ACE prefix on a Unicode label
    ],
)
def test_hosts_idna_cannot_encode_are_invalid_urls_not_unicode_errors(text: str) -> None:
    with pytest.raises(InvalidURL, match="cannot be IDNA-encoded"):
        parse_url(text)


_dns_label = st.text(alphabet="abcxyz0189-_\u00fc\u00e9", min_size=1, max_size=70)


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(_dns_label | st.sampled_from(["a" * 63, "a" * 64]), min_size=1, max_size=6),
       trailing_dot=st.booleans())
def test_any_host_accepted_can_be_handed_to_the_resolver(
    labels: list[str], trailing_dot: bool
) -> None:
    # Either our InvalidURL now, or a host whose IDNA encoding (the first thing
    # socket.getaddrinfo does with a str) cannot fail later.
    host = ".".join(labels) + ("." if trailing_dot else "")
    try:
        url = parse_url(f"http://{host}/")
    except InvalidURL:
        return
    url.host.encode("idna")
    name = url.host.removesuffix(".")
    assert len(name) <= 253 and all(len(label) <= 63 for label in name.split("."))


# -- which rule refuses what ---------------------------------------------------
#
# Several checks guard each URL; a test that only expects InvalidURL passes as
# long as any one of them fires, so a regression in the first would hide
# behind the second. These name the rule that must fire.


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "not an absolute URL"),
        ("example.com", "not an absolute URL"),
        ("/path", "not an absolute URL"),
        ("//example.com/", "not an absolute URL"),
        ("ftp://example.com/", "scheme must be http or https"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("http:/example.com", "URL has no host"),
        ("http://", "URL has no host"),
        ("http:///path", "URL has no host"),
        ("http://:80/", "URL has no host"),
        ("http://user@/", "URL has no host"),
        ("http://example.com/a b", "forbidden character ' ' at index 20"),
        ("\thttp://example.com/", r"forbidden character '\\t' at index 0"),
        ("http://example.com/\x85", r"forbidden character '\\x85'"),
        ("http://ex\\ample.com/", "backslash"),
        ("http://us%ffer@h/", "userinfo is not UTF-8"),
        ("http://[::1/", "unterminated IPv6 address"),
        ("http://[]/", "invalid IPv6 address ''"),
        ("http://[::1]x/", "junk after IPv6 address"),
        ("http://[not-ipv6]/", "invalid IPv6 address 'not-ipv6'"),
        ("http://[127.0.0.1]/", "invalid IPv6 address"),
        ("http://[::1%25eth0]/", "IPv6 zone identifiers are not supported"),
        ("http://[::1]:65536/", "invalid port '65536'"),
        ("http://h:65536/", "invalid port '65536'"),
        ("http://h:+80/", r"invalid port '\+80'"),
        ("http://h:80:80/", "invalid port '80:80'"),
        ("http://" + "\u00fc" * 60 + ".com/", "cannot be IDNA-encoded"),  # label too long
        ("http://\u2024.com/", "would be changed by IDNA"),  # to an empty label
        ("http://stra\u00dfe.de/", "would be changed by IDNA"),
        ("http://a..b/", "invalid host 'a..b'"),
        ("http://a*b/", r"invalid host 'a\*b'"),
        ("http://127.1/", "ambiguous numeric host '127.1'"),
        ("http://127.1./", r"ambiguous numeric host '127\.1\.'"),
        ("http://0x7f.0.0.1./", "ambiguous numeric host"),
        ("http://2130706433./", "ambiguous numeric host"),
        ("http://example.123./", "ambiguous numeric host"),
        ("http://a.0x/", "ambiguous numeric host"),
    ],
)
def test_rejected_by_the_named_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidURL, match=rule):
        parse_url(text)


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("http://127.0.0.1./", "127.0.0.1."),  # canonical dotted quad, DNS root dot
        ("http://10.0.0.1/", "10.0.0.1"),
        ("http://a.123b/", "a.123b"),  # a last label that merely starts with digits
        ("http://0xg.example/", "0xg.example"),  # numeric-looking labels before the last
    ],
)
def test_numeric_looking_hosts_that_are_not_ambiguous(text: str, host: str) -> None:
    assert parse_url(text).host == host


def test_host_name_length_limit_ignores_the_root_dot() -> None:
    # 253 octets is the longest DNS name; labels here stay within 63 octets.
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    assert parse_url(f"http://{name}/").host == name
    assert parse_url(f"http://{name}./").host == name + "."
    with pytest.raises(InvalidURL, match="host"):
        parse_url(f"http://{name}d/")


@pytest.mark.parametrize("port", [0, 1, 8080, 65535])
def test_direct_construction_accepts_every_port_in_range(port: int) -> None:
    url = URL("http", "h", port, "/")
    assert url.port == port
    assert url.host_header == ("h" if port == 80 else f"h:{port}")


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"port": 65536}, "port out of range: 65536"),
        ({"port": -1}, "port out of range: -1"),
        ({"port": "80"}, "port out of range: '80'"),
        ({"scheme": "ftp"}, "scheme must be http or https, not 'ftp'"),
        ({"scheme": "HTTP"}, "scheme must be http or https"),
        ({"host": "h\r\nx"}, "invalid host"),
        ({"host": "H"}, "invalid host 'H'"),
        ({"host": "1:2"}, "invalid IPv6 address '1:2'"),
        ({"host": "fe80::1%eth0"}, "IPv6 zone identifiers are not supported"),
        ({"target": "x"}, "invalid request target 'x'"),
        ({"target": "/a b"}, "invalid request target"),
        ({"target": ""}, "invalid request target"),
    ],
)
def test_direct_construction_names_the_broken_field(
    kwargs: dict[str, object], rule: str
) -> None:
    fields: dict[str, object] = {"scheme": "http", "host": "h", "port": 80, "target": "/"}
    fields.update(kwargs)
    with pytest.raises(InvalidURL, match=rule):
        URL(**fields)  # type: ignore[arg-type]


def test_direct_construction_of_an_ipv6_host() -> None:
    url = URL("https", "2001:db8::1", 8443, "/x")
    assert url.host_header == "[2001:db8::1]:8443"
    assert str(url) == "https://[2001:db8::1]:8443/x"


@pytest.mark.parametrize("location", [b"/x", None, 42])
def test_join_refuses_a_non_str_reference(location: object) -> None:
    base = parse_url("http://a/b")
    with pytest.raises(InvalidURL, match=f"must be str, not {type(location).__name__}"):
        base.join(location)  # type: ignore[arg-type]


def test_parse_url_refuses_a_non_str_by_type_name() -> None:
    with pytest.raises(InvalidURL, match="must be str or URL, not bytes"):
        parse_url(b"http://h/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ref", "rule"),
    [
        ("ftp://a/", "redirect to unsupported scheme 'ftp'"),
        ("HTTPS:g", "absolute URL without a host"),
        ("https:g", "absolute URL without a host"),
        ("/a\r\nSet-Cookie: x", r"forbidden character '\\r'"),
        (" /a", "forbidden character ' '"),
        ("/a ", "forbidden character ' '"),
        ("//ho st/", "forbidden character ' '"),
        ("//", "URL has no host"),
        ("//h:99999/", "invalid port"),
        ("\\\\evil.com/", "backslash"),
    ],
)
def test_join_rejects_by_the_named_rule(ref: str, rule: str) -> None:
    with pytest.raises(InvalidURL, match=rule):
        parse_url("http://a/b").join(ref)


@pytest.mark.parametrize(
    ("base", "ref", "expected"),
    [
        ("http://a/b/c", "", "http://a/b/c"),  # no base query: none invented
        ("http://a/b/c?", "", "http://a/b/c?"),  # an empty base query is kept
        ("http://a/b/c?q", "?", "http://a/b/c?"),
        ("http://a/b/c?q", "d", "http://a/b/d"),
        ("http://a", "d", "http://a/d"),
        ("http://a/b/c", "//g", "http://g/"),
        ("http://a/b/c", "/€", "http://a/%E2%82%AC"),  # not latin-1: taken as given
        ("http://a:8080/b", "http://a:8080/c", "http://a:8080/c"),
        ("https://a/b", "HTTP://a/c", "http://a/c"),
    ],
)
def test_join_more_references(base: str, ref: str, expected: str) -> None:
    assert str(parse_url(base).join(ref)) == expected


def test_long_urls_are_parsed_but_not_cached() -> None:
    # The parse cache holds URLs up to 4096 characters, so its memory stays bounded.
    head = "http://cache-bound.example/"
    at_limit = head + "a" * (4096 - len(head))
    over = head + "b" * (4097 - len(head))
    assert parse_url(at_limit) is parse_url(at_limit)
    first, second = parse_url(over), parse_url(over)
    assert first == second
    assert first is not second


def test_zone_identifier_refused_while_parsing_with_the_url_named() -> None:
    # ipaddress accepts "::1%eth0"; the parser refuses the zone itself and
    # names the URL given, rather than leaving it to the URL's own check.
    with pytest.raises(InvalidURL, match=r"not supported: 'http://\[::1%25eth0\]/'$"):
        parse_url("http://[::1%25eth0]/")


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("http://h/?a=100%", "/?a=100%25"),  # a lone percent in the query is escaped
        ("http://h/?a=%zz&b=%41", "/?a=%25zz&b=%41"),
        ("http://h/p%?q", "/p%25?q"),
    ],
)
def test_lone_percent_escaped_in_path_and_query(text: str, target: str) -> None:
    assert parse_url(text).target == target


@pytest.mark.parametrize(
    "text", ["http://user:s3cret@cache-secret.example/x", "http://user@cache-secret.example/"]
)
def test_url_with_userinfo_never_enters_the_process_wide_cache(text: str) -> None:
    from asyncnet._http._url import _parse_cached

    before = _parse_cached.cache_info()
    first = parse_url(text)
    second = parse_url(text)
    after = _parse_cached.cache_info()
    assert first.username == "user" and first == second
    # The cache was never asked (no hit, no miss), so it cannot hold the URL.
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert first is not second


_octet_text = st.one_of(
    st.integers(0, 999).map(str),
    st.integers(0, 99).map(lambda i: f"0{i}"),
    st.sampled_from(["", "0x7f", "00"]),
)


@settings(max_examples=500)
@given(st.lists(_octet_text, min_size=1, max_size=5))
def test_numeric_hosts_accepted_exactly_as_ipaddress_reads_a_dotted_quad(parts: list[str]) -> None:
    """The fast dotted-quad check decides like ``ipaddress.IPv4Address`` (the reference).

    One trailing dot (the absolute form of a name) is allowed and ignored.
    """
    import ipaddress

    host = ".".join(parts)
    try:
        ipaddress.IPv4Address(host.removesuffix("."))
    except ValueError:
        canonical = False
    else:
        canonical = True
    try:
        url = parse_url(f"http://{host}/")
    except InvalidURL:
        assert not canonical
    else:
        assert canonical
        assert url.host == host


# parse_url builds its URL without the constructor's checks (URL._from_parsed):
# whatever a URL string parses to must equal, field for field, the URL the
# checking constructor builds from the same parts.
_any_host = st.sampled_from(
    ["127.0.0.1", "Example.COM", "h.", "[::1]", "[2001:DB8::1]", "xn--bcher-kva.example",
     "bücher.example", "a_b-c.d"]
)


@given(
    scheme=st.sampled_from(["http", "HTTP", "https"]),
    userinfo=st.sampled_from(["", "u@", "u:p@", "%41:%42@"]),
    host=_any_host,
    port=st.sampled_from(["", ":", ":80", ":443", ":0", ":65535", ":8080"]),
    rest=st.text(alphabet="/?#%aZ09-._~!$&'()*+,;=:@ é\"<", max_size=20),
)
def test_a_parsed_url_equals_the_checked_construction_of_its_parts(
    scheme: str, userinfo: str, host: str, port: str, rest: str
) -> None:
    text = f"{scheme}://{userinfo}{host}{port}{rest if rest.startswith(('/', '?', '#')) else ''}"
    try:
        parsed = parse_url(text)
    except InvalidURL:
        return
    checked = URL(
        parsed.scheme, parsed.host, parsed.port, parsed.target, parsed.username, parsed.password
    )
    assert parsed == checked
    assert hash(parsed) == hash(checked)
    assert parsed.host_header == checked.host_header
    assert str(parsed) == str(checked)
    assert repr(parsed) == repr(checked)
