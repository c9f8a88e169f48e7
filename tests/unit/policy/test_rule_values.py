"""`RegoEngine.eval_rule`: a rule's value as OPA gives it, with `null` told apart from no value
when the caller asks (OPA's conformance cases want `x: null` where a rule's value is null)."""

from __future__ import annotations

import pytest

from sbomgate.policy._regorus import RegoEngine, analyse_module

UNDEFINED = object()

SOURCE = """package t

import rego.v1

is_null := null

nothing := 1 if false

text := "<undefined>"

yes := true

p["a"] := null

q["a"] := 1 if false
"""


@pytest.fixture(scope="module")
def engine() -> RegoEngine:
    return RegoEngine([analyse_module("t.rego", SOURCE)], {})


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("is_null", None),
        ("nothing", UNDEFINED),
        ("text", "<undefined>"),  # what the binding's JSON says of a rule with no value
        ("yes", True),
        ("p", {"a": None}),  # rules with ref heads only are asked as a query
        ("p.a", None),
        ("q.a", UNDEFINED),
    ],
)
def test_null_is_a_value_when_asked(engine: RegoEngine, rule: str, value: object) -> None:
    got = engine.eval_rule(f"data.t.{rule}", undefined=UNDEFINED)
    assert got is UNDEFINED if value is UNDEFINED else got == value
    # By default, no value reads as None, as null does.
    expected = None if value is UNDEFINED else value
    assert engine.eval_rule(f"data.t.{rule}") == expected
