"""Query and form encoding: round trips through urllib.parse.parse_qsl, merging, bad input."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncnet import UsageError
from asyncnet._http._query import encode_form, encode_query, query_pairs, with_params
from asyncnet._http._url import parse_url

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
pairs = st.lists(st.tuples(texts.filter(bool), texts), max_size=8)


@given(pairs)
def test_query_round_trips_through_parse_qsl(items: list[tuple[str, str]]) -> None:
    encoded = encode_query(items)
    assert parse_qsl(encoded, keep_blank_values=True) == items
    # RFC 3986: only unreserved characters and the separators stay unencoded.
    assert set(encoded) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%=&"
    )


@given(pairs)
def test_form_round_trips_through_parse_qsl(items: list[tuple[str, str]]) -> None:
    assert parse_qsl(encode_form(items).decode("ascii"), keep_blank_values=True) == items


@given(pairs, pairs)
def test_params_are_appended_to_the_urls_own_query(
    own: list[tuple[str, str]], extra: list[tuple[str, str]]
) -> None:
    url = parse_url("http://example.com/p" + ("?" + encode_query(own) if own else ""))
    merged = with_params(url, extra)
    assert merged.path == "/p"
    assert parse_qsl(merged.query, keep_blank_values=True) == own + extra


def test_mapping_values_repeat_keys_and_none_is_dropped() -> None:
    assert query_pairs({"a": ["1", None, 2], "b": None, "c": True, "d": 1.5}) == [
        ("a", "1"), ("a", "2"), ("c", "true"), ("d", "1.5"),
    ]
    assert encode_query([("a", "x y"), ("a", "+")]) == "a=x%20y&a=%2B"
    assert encode_form({"a": "x y"}) == b"a=x+y"


def test_no_params_leaves_the_url_alone() -> None:
    url = parse_url("http://example.com/p?x=1")
    assert with_params(url, None) is url
    assert with_params(url, {"a": None}) is url


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("a=1", "params must be a mapping or pairs, not str"),
        (b"a=1", "params must be a mapping or pairs, not bytes"),
        ({"a": object()}, "value of 'a' must be str, int, float, bool or None, not object"),
        ({"a": b"bytes"}, "value of 'a' must be str, int, float, bool or None, not bytes"),
        ({1: "x"}, "params names must be str, not int"),
        ([("a",)], "params items must be (str, value) pairs, not ('a',)"),
        ([("a", "1", "2")], "params items must be (str, value) pairs, not ('a', '1', '2')"),
        (42, "params must be a mapping or pairs, not int"),
    ],
)
def test_invalid_params_raise_usage_error(bad: object, rule: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(rule) + "$"):
        encode_query(bad)  # type: ignore[arg-type]
