"""regex.globs_match: exact against a brute force over short strings, OPA's syntax errors, and
the builtin as a policy calls it."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.policy._globs import GlobSyntaxError, globs_match
from sbomgate.policy._regorus import RegoEngine, analyse_module

_TOKENS = ["a", "b", "c", ".", "[ab]", "[a-c]", "[bc]", "[]", "\\.", "\\*"]
_STRINGS = ["".join(t) for n in range(1, 8) for t in itertools.product("abc.*", repeat=n)]


def _regex(glob: str) -> re.Pattern[str]:
    # The same language in Python's syntax: an empty class matches nothing.
    return re.compile(glob.replace("[]", "(?!)"), re.S)


globs = st.lists(
    st.tuples(st.sampled_from(_TOKENS), st.sampled_from(["", "", "*", "+"])), max_size=4
).map(lambda parts: "".join(t + r for t, r in parts))


@settings(max_examples=300, deadline=None)
@given(globs, globs)
def test_the_answer_is_whether_a_non_empty_string_matches_both(a: str, b: str) -> None:
    left, right = _regex(a), _regex(b)
    brute = any(left.fullmatch(s) and right.fullmatch(s) for s in _STRINGS)
    assert globs_match(a, b) is brute


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("a.a.[0-9]+z", ".b.b2359825792*594823z", True),  # OPA's own cases
        ("[a-z]+", "[0-9]*", False),
        ("b.*", "bar", True),
        ("[a-z]+\\[[0-9]+\\]", "foo\\[1\\]", True),
        ("[a-z]+\\[[0-9]+\\]", 'foo["bar"]', False),
        # Whole strings only: no common non-empty string.
        ("a*", "", False),
        ("a+b", "a*", False),
        ("x\\-y", "x-y", True),
        ("[\\]]+", "\\]\\]", True),
        # Both sides repeat: "cacc." is in both.
        ("c[ab]c*c\\.+", "[bc]*.[ab]*.+\\.c*", True),
    ],
)
def test_pairs(a: str, b: str, want: bool) -> None:
    assert globs_match(a, b) is want


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("pqrs]", "input:pqrs], pos:5, set-close ']' with no preceding '['"),
        ("*a", "flag '*' must be preceded by a non-flag"),
        ("a**", "flag '*' must be preceded by a non-flag"),
        ("[ab", "found [ without matching ]"),
        ("a\\", "input ends with a \\ (escape) character"),
        ("[a-]", "range character '-' must be followed by a Unicode character"),
        ("[-a]", "range character '-' must be preceded by a Unicode character"),
        ("[a-]x]", "range character '-' cannot be followed by a special symbol"),
        ("[z-a]", "range is out of order: 'a' comes before 'z' in Unicode"),
    ],
)
def test_syntax_errors_are_opas(glob: str, message: str) -> None:
    with pytest.raises(GlobSyntaxError) as info:
        globs_match(glob, "a")
    assert message in str(info.value)
    assert str(info.value).endswith("the input provided is invalid")


def test_a_policy_calls_it_and_an_error_is_undefined() -> None:
    source = """package t
import rego.v1
yes := regex.globs_match("a+", "[ab]*")
no := regex.globs_match("a+", "b*")
bad := regex.globs_match("a]", "a")
not_a_string := regex.globs_match(1, "a")
"""
    engine = RegoEngine([analyse_module("t.rego", source)], {})
    engine.set_input_json("{}")
    assert engine.eval_rule("data.t.yes") is True
    assert engine.eval_rule("data.t.no") is False
    assert engine.eval_rule("data.t.bad") is None
    assert engine.eval_rule("data.t.not_a_string") is None
