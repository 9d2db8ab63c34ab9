"""Headers: a case-insensitive, ordered multi-map that keeps every value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncnet
from asyncnet import Headers


def make() -> Headers:
    return Headers(
        [("Content-Type", "text/html"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X", "")]
    )


def test_public_name() -> None:
    assert asyncnet.Headers is Headers


def test_lookup_ignores_case_and_joins_repeated_fields() -> None:
    h = make()
    assert h["content-type"] == "text/html"
    assert h.get("SET-COOKIE") == "a=1, b=2"
    assert h.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert h.get("x") == ""
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert h.get_all("missing") == []
    with pytest.raises(KeyError):
        h["missing"]


def test_every_field_is_kept_in_order_with_original_case() -> None:
    h = make()
    assert len(h) == 4
    assert list(h) == ["Content-Type", "Set-Cookie", "set-cookie", "X"]
    assert h.keys() == list(h)
    assert h.values() == ["text/html", "a=1", "b=2", ""]
    assert h.items() == [
        ("Content-Type", "text/html"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("X", ""),
    ]
    assert "SET-cookie" in h
    assert "nope" not in h
    assert 3 not in h


def test_construct_from_mapping_pairs_and_headers() -> None:
    assert Headers({"A": "1", "b": "2"}).items() == [("A", "1"), ("b", "2")]
    assert Headers(iter([("A", "1")])).items() == [("A", "1")]
    original = make()
    copy = Headers(original)
    copy.add("New", "v")
    assert "New" not in original
    assert len(Headers()) == 0


def test_add_set_delete_pop_setdefault() -> None:
    h = make()
    h.add("x-extra", "1")
    assert h.get_all("X-Extra") == ["1"]
    h["SET-COOKIE"] = "c=3"
    assert h.items() == [
        ("Content-Type", "text/html"),
        ("SET-COOKIE", "c=3"),
        ("X", ""),
        ("x-extra", "1"),
    ]
    h["New"] = "n"
    assert h.items()[-1] == ("New", "n")
    del h["x"]
    assert "X" not in h
    with pytest.raises(KeyError):
        del h["x"]
    assert h.pop("new") == "n"
    assert h.pop("new") is None
    assert h.pop("new", "d") == "d"
    assert h.setdefault("Content-Type", "other") == "text/html"
    assert h.setdefault("Accept", "*/*") == "*/*"
    assert h["accept"] == "*/*"


def test_add_requires_str() -> None:
    h = Headers()
    with pytest.raises(TypeError, match="must be str"):
        h.add("A", b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="header names and values must be str, got bytes"):
        Headers([(b"A", "x")])  # type: ignore[list-item]


def test_copy_is_independent() -> None:
    h = make()
    c = h.copy()
    c.add("Y", "1")
    del c["content-type"]
    assert "Y" not in h and "Content-Type" in h
    assert c != h


def test_raw_is_latin1_bytes() -> None:
    h = Headers([("X-Caf\xe9", "\xe9t\xe9")])
    assert h.raw == [(b"X-Caf\xe9", b"\xe9t\xe9")]


def test_equality_ignores_name_case_but_keeps_value_order() -> None:
    h = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert h == Headers([("b", "2"), ("a", "1"), ("A", "3")])
    assert h != Headers([("a", "3"), ("A", "1"), ("B", "2")])
    assert h == [("a", "1"), ("b", "2"), ("a", "3")]
    assert Headers({"A": "1"}) == {"a": "1"}
    assert Headers({"A": "1"}) != {"a": "2"}
    assert h != 5
    assert h != "A: 1"
    with pytest.raises(TypeError):
        hash(h)


def test_extend_and_repr() -> None:
    h = Headers([("A", "1")])
    h.extend({"B": "2"})
    h.extend(Headers([("A", "3")]))
    assert h.get_all("a") == ["1", "3"]
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"


_names = st.sampled_from(["A", "a", "B", "Content-Type", "content-type", "X-Y"])
_values = st.text(alphabet="xyz, =", max_size=4)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _names, _values),
        st.tuples(st.just("set"), _names, _values),
        st.tuples(st.just("del"), _names, st.just("")),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=6), _ops, st.booleans())
def test_headers_behave_like_a_list_of_pairs(
    initial: list[tuple[str, str]], ops: list[tuple[str, str, str]], from_wire: bool
) -> None:
    # The model: a plain list of (name, value) pairs.
    model = list(initial)
    h = Headers._from_wire(list(initial)) if from_wire else Headers(initial)
    for op, name, value in ops:
        key = name.lower()
        if op == "add":
            h.add(name, value)
            model.append((name, value))
        elif op == "set":
            h[name] = value
            first = next((i for i, (n, _) in enumerate(model) if n.lower() == key), None)
            if first is None:
                model.append((name, value))
            else:
                model = [
                    (name, value) if i == first else pair
                    for i, pair in enumerate(model)
                    if pair[0].lower() != key or i == first
                ]
        else:
            present = any(n.lower() == key for n, _ in model)
            if present:
                del h[name]
                model = [pair for pair in model if pair[0].lower() != key]
            else:
                with pytest.raises(KeyError):
                    del h[name]
        assert h.items() == model
        for probe in ("a", "B", "CONTENT-TYPE", "x-y", "missing"):
            values = [v for n, v in model if n.lower() == probe.lower()]
            assert h.get_all(probe) == values
            assert h.get(probe) == (", ".join(values) if values else None)
            assert (probe in h) == bool(values)
        assert len(h) == len(model)
        assert h == Headers(model)
        assert h.copy() == h


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=8))
def test_first_lookup_in_wire_fields_agrees_with_the_model(
    items: list[tuple[str, str]],
) -> None:
    # Fields from the parser are looked up before their names are lower-cased.
    for probe in ("a", "B", "CONTENT-TYPE", "x-y", "X", "content-typ", "missing"):
        values = [v for n, v in items if n.lower() == probe.lower()]
        assert Headers._from_wire(list(items)).get(probe) == (
            ", ".join(values) if values else None
        )
        assert Headers._from_wire(list(items)).get(probe, "d") == (
            ", ".join(values) if values else "d"
        )


def test_parsed_field_names_are_shared_between_responses() -> None:
    from asyncnet._http._parser import ResponseParser

    def head(raw: bytes) -> Headers:
        parser = ResponseParser()
        parser.start_response("GET")
        event = parser.events(raw)[0]
        return event.headers  # type: ignore[union-attr]

    raw = b"HTTP/1.1 204 No Content\r\nX-Shared-Name: a\r\nServer: b\r\n\r\n"
    first, second = head(raw), head(raw)
    assert first.items() == second.items()
    for (a, _), (b, _) in zip(first.items(), second.items(), strict=True):
        assert a is b
    assert first.get("x-shared-name") == "a" and second.get("X-SHARED-NAME") == "a"
    # A head mixing known names with a new one: the new one is shared from then on.
    mixed = b"HTTP/1.1 204 No Content\r\nServer: c\r\nX-Later-Name: d\r\n\r\n"
    third, fourth = head(mixed), head(mixed)
    assert third.items()[0][0] is first.items()[1][0]
    assert third.items()[1][0] is fourth.items()[1][0]


def test_shared_name_table_is_bounded() -> None:
    from asyncnet._http import _headers as _http_headers

    names = [(f"x-fresh-{i}", "v") for i in range(3 * _http_headers._SHARED_NAMES_MAX)]
    assert _http_headers.share_names(names) == names
    assert _http_headers.share_names([("y" * 1000, "v")]) == [("y" * 1000, "v")]
    assert len(_http_headers._SHARED_NAMES) <= _http_headers._SHARED_NAMES_MAX
    assert "y" * 1000 not in _http_headers._SHARED_NAMES
