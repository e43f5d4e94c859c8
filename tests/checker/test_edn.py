"""The EDN reader: what Jepsen and Knossos histories contain, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvctl.checker.edn import EdnError, Keyword, Map, Symbol, read_all, read_one


def test_scalars() -> None:
    forms = read_all('nil true false 42 -7 3N 1.5 2e3 7M 1/4 "a\\"b\\n" \\a \\newline')
    assert [form for _, form in forms] == [
        None,
        True,
        False,
        42,
        -7,
        3,
        1.5,
        2000.0,
        7.0,
        0.25,
        'a"b\n',
        "a",
        "\n",
    ]


def test_keywords_symbols_and_collections() -> None:
    ((_, form),) = read_all("{:f :read, :value [1 (2 3)] :s #{:a} x/y 1}")
    assert isinstance(form, Map)
    assert form["f"] == "read" and isinstance(form["f"], Keyword) and repr(form["f"]) == ":read"
    assert form["value"] == (1, (2, 3))
    assert form["s"] == frozenset({"a"})
    assert isinstance(next(k for k in form if k == "x/y"), Symbol)


def test_comments_discards_tags_and_lines() -> None:
    ((line, forms),) = read_all(
        '; a comment\n[{:a 1}\n #_ {:dropped 1}\n #jepsen.history.Op{:b 2}\n #inst "2020-01-01"]'
    )
    first, second, inst = forms
    assert line == 2
    assert (first.line, second.line) == (2, 4)
    assert second == {"b": 2} and inst == "2020-01-01"


def test_strings_hold_brackets_and_span_lines() -> None:
    assert read_one('"{:n1 #{:n2}]\n("') == "{:n1 #{:n2}]\n("


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1 2", ":1: the '[' of line 1 is never closed"),
        ("(1 2]", ":1: unexpected ']'"),
        ("{:a}", ":1: a map with an odd number of forms"),
        ('\n\n"open', ":3: unterminated string"),
        ("12abc", ":1: bad number '12abc'"),
        ('"\\q"', ":1: bad escape"),
        ("#_", ":1: a tag or #_ with no value after it"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(EdnError) as err:
        read_all(text, "f.edn")
    assert str(err.value).startswith("f.edn") and message in str(err.value)


def test_read_one_wants_exactly_one_value() -> None:
    with pytest.raises(EdnError, match="expected one EDN value"):
        read_one("1 2", "log", 9)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(EdnError, match="nested too deeply"):
        read_one("[" * 5000 + "]" * 5000)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4).map(tuple),
    max_leaves=20,
)


def _edn(value: object) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + " ".join(_edn(v) for v in value) + "]"
    return str(value)


@given(values)
def test_reads_what_it_is_written(value: object) -> None:
    assert read_one(_edn(value)) == value
