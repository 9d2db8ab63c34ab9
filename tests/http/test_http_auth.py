"""Auth, sans-IO: RFC 7616's own examples, challenge parsing of real and hostile fields."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncnet import BasicAuth, BearerAuth, DigestAuth, InvalidHeader, UsageError
from asyncnet._http._auth import DigestChallenge, digest_response, parse_challenges
from asyncnet._http._url import parse_url

# RFC 7616 §3.9.1.
RFC_PARAMS = {
    "realm": "http-auth@example.org",
    "qop": "auth, auth-int",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
}
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def _param(header: str, name: str) -> str:
    match = re.search(rf'(?:^|[ ,]){name}="?([^",]*)"?', header)
    assert match is not None, (name, header)
    return match.group(1)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_digest_matches_rfc_7616_examples(algorithm: str, expected: str) -> None:
    challenge = DigestChallenge.from_params({**RFC_PARAMS, "algorithm": algorithm})
    assert challenge is not None
    header = digest_response(
        "Mufasa", "Circle of Life", challenge,
        method="GET", uri="/dir/index.html", nc=1, cnonce=RFC_CNONCE,
    )
    assert header.startswith("Digest ")
    assert _param(header, "response") == expected
    assert _param(header, "nc") == "00000001"
    assert _param(header, "qop") == "auth"
    assert _param(header, "opaque") == RFC_PARAMS["opaque"]


def test_parse_challenges_splits_several_schemes_in_one_field() -> None:
    fields = [
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        "Bearer abc.def==, Digest realm = x, nonce=\"n\"",
    ]
    assert parse_challenges(fields) == [
        ("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        ("basic", {"realm": "simple"}),
        ("bearer", {}),
        ("digest", {"realm": "x", "nonce": "n"}),
    ]


def test_digest_picks_the_strongest_algorithm_and_counts_nonce_uses() -> None:
    auth = DigestAuth("u", "p")
    url = parse_url("http://h/a")
    first = auth.answer_challenge("GET", url, [
        'Digest realm="r", nonce="n1", qop="auth", algorithm=MD5',
        'Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256',
    ])
    assert first is not None and "algorithm=SHA-256" in first and 'nonce="n2"' in first
    assert _param(first, "nc") == "00000001"
    second = auth.auth_header("POST", parse_url("http://h/b?q"))
    assert second is not None
    assert _param(second, "nc") == "00000002" and _param(second, "uri") == "/b?q"
    assert _param(second, "cnonce") != _param(first, "cnonce")
    # Another origin has no challenge yet.
    assert auth.auth_header("GET", parse_url("http://other/")) is None
    # A new challenge restarts the count.
    third = auth.answer_challenge(
        "GET", url, ['Digest realm="r", nonce="n3", qop=auth, stale=true']
    )
    assert third is not None and _param(third, "nc") == "00000001"


def test_digest_without_qop_and_with_sess_and_userhash() -> None:
    auth = DigestAuth("Mufasa", "Circle of Life")
    url = parse_url("http://h/")
    legacy = auth.answer_challenge("GET", url, ['Digest realm="r", nonce="n"'])
    assert legacy is not None and "qop=" not in legacy and "nc=" not in legacy
    sess = auth.answer_challenge(
        "GET", url, ['Digest realm="r", nonce="n", qop=auth, algorithm=md5-sess, userhash=true']
    )
    assert sess is not None and "algorithm=MD5-sess" in sess and "userhash=true" in sess
    assert "Mufasa" not in sess


@pytest.mark.parametrize(
    "field",
    [
        'Digest realm="r"',  # no nonce
        'Digest nonce="n"',  # no realm
        'Digest realm="r", nonce="n", algorithm=SHA-1',  # unknown algorithm
        'Digest realm="r", nonce="n", qop="auth-int"',  # needs the body's hash
        'Digest realm="r", nonce="n\x00x"',  # would go back into our request
        'Digest realm="r\xe9", nonce="n"',
        "Basic realm=x",
        'Digest realm="unterminated, nonce="n',
        "",
        ",,,, ==== \"",
    ],
)
def test_unanswerable_challenges_give_none(field: str) -> None:
    assert DigestAuth("u", "p").answer_challenge("GET", parse_url("http://h/"), [field]) is None


@given(st.lists(st.text(max_size=200), max_size=3))
def test_any_challenge_text_answers_or_declines_without_raising(fields: list[str]) -> None:
    answer = DigestAuth("u", "p").answer_challenge("GET", parse_url("http://h/"), fields)
    assert answer is None or (answer.startswith("Digest ") and answer.isprintable())


@given(st.lists(st.sampled_from(['Digest', 'realm="a,b"', "nonce=x", ",", " ", "qop=auth",
                                 '"', "\\", "=", "Basic", "abc=="]), max_size=30))
def test_challenge_fragments_parse_or_skip(parts: list[str]) -> None:
    for scheme, params in parse_challenges(["".join(parts)]):
        assert scheme == scheme.lower() and all(k == k.lower() for k in params)


def test_basic_and_bearer_headers_and_repr_hide_secrets() -> None:
    url = parse_url("http://h/")
    basic = BasicAuth("user", "pa:ss")
    assert basic.auth_header("GET", url) == "Basic dXNlcjpwYTpzcw=="
    assert "pa:ss" not in repr(basic)
    bearer = BearerAuth("tok")
    assert bearer.auth_header("GET", url) == "Bearer tok"
    assert "tok" not in repr(bearer)
    assert "secret" not in repr(DigestAuth("u", "secret"))
    with pytest.raises(InvalidHeader, match=r"^a Basic auth user name cannot contain ':'$"):
        BasicAuth("a:b", "c")
    with pytest.raises(
        UsageError, match=r"^a bearer token must be a non-empty str of visible ASCII$"
    ):
        BearerAuth("bad\r\nX: y")


def test_non_ascii_user_names_go_as_username_star() -> None:
    challenge = DigestChallenge.from_params({"realm": "r", "nonce": "n", "qop": "auth"})
    assert challenge is not None
    header = digest_response("Jäsøn", "p", challenge, method="GET", uri="/", nc=1, cnonce="c")
    assert "username*=UTF-8''J%C3%A4s%C3%B8n" in header
    assert header.isascii()
