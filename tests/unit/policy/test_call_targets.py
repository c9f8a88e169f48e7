"""The patched regorus remembers what each call expression names (tools/regorus/sbomgate.patch):
one engine evaluating the same call with and without a `with` that replaces its builtin, in
any order and again, answers as OPA does each time (`opa eval` gives "x", "mock", "fixed")."""

from __future__ import annotations

from sbomgate.policy import load_policy
from sbomgate.policy._regorus import RegoEngine

POLICY = """package t
import rego.v1

match := false

f(_) := "mock"

g(x) := lower(x)

plain := y if y := g("X")

replaced := y if y := g("X") with lower as f

by_value := y if y := g("X") with lower as "fixed"
"""

WANTED = {"plain": "x", "replaced": "mock", "by_value": "fixed"}


def test_a_remembered_builtin_is_still_replaced_by_with() -> None:
    policy = load_policy("t.rego", POLICY)
    engine = RegoEngine([policy.module], {})
    engine.set_input_json("{}")
    order = ["plain", "replaced", "by_value", "plain", "replaced", "plain", "by_value", "plain"]
    assert [engine.eval_rule(f"data.t.{rule}") for rule in order] == [WANTED[r] for r in order]


def test_calls_in_two_packages_keep_their_own_targets() -> None:
    """One package calls a function of its own, the other a builtin: evaluated in turn, in
    one engine, each keeps its answer."""
    first = load_policy(
        "a.rego", "package a\nimport rego.v1\nmatch := false\nf(x) := 1\nr := f(2)\n"
    )
    second = load_policy("b.rego", 'package b\nimport rego.v1\nmatch := false\nr := upper("b")\n')
    engine = RegoEngine([first.module, second.module], {})
    engine.set_input_json("{}")
    for _ in range(3):
        assert engine.eval_rule("data.a.r") == 1
        assert engine.eval_rule("data.b.r") == "B"
