"""Large JSON decoded in pieces (`_internal/jsonpieces.py`) is orjson's value or orjson's error."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate._internal import jsonpieces

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=40,
)


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pieces of a few bytes, so that small documents are split at every level."""
    monkeypatch.setattr(jsonpieces, "PIECE_BYTES", 8)
    yield


def outcome(decode: Any, data: bytes) -> tuple[str, Any]:
    """What decoding gives: the value as orjson writes it (types and key order included), or
    the error's message."""
    try:
        return "value", orjson.dumps(decode(data))
    except orjson.JSONDecodeError as exc:
        return "error", str(exc)


@settings(max_examples=300, deadline=None)
@given(value=values, indent=st.booleans())
def test_a_document_decodes_to_orjsons_value(value: Any, indent: bool) -> None:
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonpieces, "PIECE_BYTES", 8)
        assert outcome(jsonpieces.loads, data) == outcome(orjson.loads, data)


@settings(max_examples=400, deadline=None)
@given(value=values, data=st.data())
def test_a_damaged_document_gives_orjsons_error_or_value(value: Any, data: st.DataObject) -> None:
    """One byte deleted, replaced or inserted anywhere: the same error, or the same value."""
    raw = bytearray(orjson.dumps({"padding": "x" * 20, "value": value}))
    at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    byte = data.draw(st.sampled_from(b'{}[]",:0 \x00\xff\\eE.-tn'))
    edit = data.draw(st.sampled_from(["delete", "replace", "insert"]))
    if edit == "delete":
        del raw[at]
    elif edit == "replace":
        raw[at] = byte
    else:
        raw.insert(at, byte)
    damaged = bytes(raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonpieces, "PIECE_BYTES", 8)
        assert outcome(jsonpieces.loads, damaged) == outcome(orjson.loads, damaged)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "b": [1, 2], "a": {"c": [3, 4, 5]}}',  # duplicate keys: first place, last value
        b'  \n {"a": [1, 2, 3, 4, 5, 6], "b": "a string longer than a piece"} \n ',
        b'[{"a": 1}, [], {}, "", 0, -0.0, 1e300, 12345678901234567890123]',
        b'"a string longer than a piece"',
        b'{"a": [1, 2, 3, 4, 5, 6,]}',  # trailing comma
        b'{"a": [1, 2, 3, 4, 5, 6]} trailing',
        b'\xef\xbb\xbf{"a": [1, 2, 3, 4, 5, 6]}',  # a byte order mark
        b'{"a": ["\\ud800", 2, 3, 4, 5, 6]}',  # a lone surrogate
        b'{"a": [1e400, 2, 3, 4, 5, 6]}',  # infinity
        b'{"a": ["\xff", 2, 3, 4, 5, 6]}',  # not UTF-8
        b'{"\xff": [1, 2, 3, 4, 5, 6]}',
        b'{"a": [1, 2, 3, 4, 5, 6]',  # cut short
        # Strings, booleans and nulls at the top are decoded by msgspec (see _TWO_LEVELS).
        b'{"s": "\\u00e9\\n\\ud83d\\ude00 \xc3\xa9", "t": true, "n": null, "a": [1, 2, 3]}',
        b'{"s": "\xff\xfe", "a": [1, 2, 3, 4, 5, 6]}',
        b'{"s": "\xed\xa0\x80", "a": [1, 2, 3, 4, 5, 6]}',  # a surrogate, encoded
        b'{"s": "\\ud800", "a": [1, 2, 3, 4, 5, 6]}',
        b'{"s": "\\x", "a": [1, 2, 3, 4, 5, 6]}',  # no such escape
        b'{"s": "tab\there", "a": [1, 2, 3, 4, 5, 6]}',
        b'{"n": 12, "f": -1.5e-3, "a": [1, 2, 3, 4, 5, 6]}',  # numbers: read a level at a time
        b'{"b": [true, false, null], "o": {"p": {"q": [1, 2, 3, 4]}}}',
    ],
)
def test_edge_cases_decode_as_orjson_decodes_them(tiny_pieces: None, text: bytes) -> None:
    assert outcome(jsonpieces.loads, text) == outcome(orjson.loads, text)


def kind_of(decode: Any, data: bytes) -> str:
    """Decoded, or orjson's error message (a value nested this deep is more than orjson.dumps
    and == will walk)."""
    try:
        decode(data)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    return "decoded"


def test_nesting_past_orjsons_limit_is_its_error(tiny_pieces: None) -> None:
    for depth in (990, 1023, 1024, 1025, 3000):
        text = b'{"a": ' + b"[" * depth + b"]" * depth + b', "b": [1, 2, 3, 4, 5]}'
        assert kind_of(jsonpieces.loads, text) == kind_of(orjson.loads, text), depth


def test_a_raised_recursion_limit_changes_nothing(tiny_pieces: None) -> None:
    """msgspec's nesting limit follows the interpreter's (Hypothesis raises it, for one): past
    orjson's 1,024 levels, a document too deep for orjson is still its error."""
    text = b'{"a": ' + b"[" * 1100 + b"]" * 1100 + b', "b": [1, 2, 3, 4, 5]}'
    was = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        assert kind_of(jsonpieces.loads, text) == kind_of(orjson.loads, text) != "decoded"
    finally:
        sys.setrecursionlimit(was)


def test_at_the_usual_recursion_limit_brackets_in_strings_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below orjson's depth, msgspec's own limit keeps the pieces within orjson's: the
    document's nesting is not measured first (a measure that refused would change nothing),
    and a Maven range's bracket in a string does not send it to orjson whole."""
    assert sys.getrecursionlimit() <= 1024
    component = {"name": "x", "version": "[1.0,2.0)", "description": "a ] and a {"}
    data = orjson.dumps({"components": [component] * 4000})
    assert len(data) > jsonpieces.PIECE_BYTES and jsonpieces._shallow(data)
    monkeypatch.setattr(jsonpieces, "_shallow", lambda data: False)
    calls = count_loads(monkeypatch)
    assert orjson.dumps(jsonpieces.loads(data)) == data
    assert len(calls) > 1


def count_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes orjson.loads is called on from now on."""
    sizes: list[int] = []
    real = orjson.loads

    def counting(text: Any) -> Any:
        sizes.append(len(text))
        return real(text)

    monkeypatch.setattr(jsonpieces.orjson, "loads", counting)
    return sizes


def test_a_large_statement_is_decoded_in_batches_of_its_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The members over PIECE_BYTES are read as parts, and an array's items a batch at a time:
    every orjson call sees about PIECE_BYTES at the most (items of one size here)."""
    component = {"type": "library", "name": "x" * 40, "version": "1.0", "purl": "pkg:pypi/x@1"}
    statement = {"_type": "t", "predicate": {"components": [component] * 2000, "metadata": {}}}
    data = orjson.dumps(statement)
    sizes = count_loads(monkeypatch)
    assert orjson.dumps(jsonpieces.loads(data)) == data
    assert len(sizes) > len(data) // jsonpieces.PIECE_BYTES
    assert max(sizes) <= 2 * jsonpieces.PIECE_BYTES


def depth_of(value: Any) -> int:
    """How deep a decoded value nests: a scalar 0, `[]` 1."""
    if type(value) is dict:
        return 1 + max(map(depth_of, value.values()), default=0)
    if type(value) is list:
        return 1 + max(map(depth_of, value), default=0)
    return 0


# Strings made of what the measure could be fooled by: brackets, quotes and backslashes.
structural_text = st.text(alphabet='[]{}"\\/nu0a', max_size=10)
structural_values = st.recursive(
    st.none() | st.integers() | structural_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(structural_text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400)
@given(value=structural_values, indent=st.booleans(), ascii_only=st.booleans())
def test_nesting_within_is_exact_for_json(value: Any, indent: bool, ascii_only: bool) -> None:
    """The measure on the bytes is the depth of the value they decode to, whatever the strings
    hold, however it is written (escapes as \\uXXXX or not)."""
    import json

    data = json.dumps(value, indent=2 if indent else None, ensure_ascii=ascii_only).encode()
    depth = depth_of(value)
    for levels in range(depth + 2):
        assert jsonpieces.nesting_within(data, levels) is (depth <= levels)


@pytest.mark.parametrize("escapes", [1, 100_000], ids=["few escapes", "many escapes"])
def test_nesting_within_reads_escapes_both_ways(escapes: int) -> None:
    """Few escapes are taken out one by one, many in two passes: the same answers."""
    tricky = '\\"]]]\\\\' * escapes  # an escaped quote, brackets, an escaped backslash
    for times in (1, 5, 40):
        value: Any = tricky
        for _ in range(times):
            value = [value, {"k": '[{"\\'}]
        data, depth = orjson.dumps(value), depth_of(value)
        assert depth == times + 1
        assert jsonpieces.nesting_within(data, depth)
        assert not jsonpieces.nesting_within(data, depth - 1)


def test_brackets_in_strings_neither_hide_nor_add_levels() -> None:
    """`"]]]"` deep in a document once hid levels from a count of brackets; `/usr/bin/[` (in
    syft's SBOM of Debian) added one that never closes."""
    hidden: Any = ["[[[[[[[[[["]
    for _ in range(10):
        hidden = [hidden]
    hidden = ["]]]]]]]]]]", hidden]
    assert depth_of(hidden) == 12
    assert not jsonpieces.nesting_within(orjson.dumps(hidden), 11)
    assert jsonpieces.nesting_within(orjson.dumps(hidden), 12)
    listed = {"components": [{"name": "/usr/bin/[", "hashes": [{"alg": "SHA-1"}]}]}
    assert depth_of(listed) == 5
    assert jsonpieces.nesting_within(orjson.dumps(listed), 5)
    assert not jsonpieces.nesting_within(orjson.dumps(listed), 4)
