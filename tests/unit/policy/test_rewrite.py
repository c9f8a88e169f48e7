"""The load-time rewrite of `some .. in` (policy/_rewrite.py): what it writes, what it leaves,
and that every shape means what `opa eval` says it means over collections and non-collections."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from sbomgate.policy._regorus import RegoEngine, analyse_module

HEAD = "package p\n\nimport rego.v1\n\n"


def rewritten(body: str) -> str:
    return analyse_module("p.rego", HEAD + body + "\n").source.removeprefix(HEAD).rstrip("\n")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "a contains v if {\n\tsome v in input.x\n\tv > 1\n}",
            "a contains v if {\n\tv := input.x[_]\n\tv > 1\n}",
        ),
        ("a contains v if some v in input.x", "a contains v if { v := input.x[_] }"),
        (
            "a contains [k, v] if { some k, v in input.x }",
            "a contains [k, v] if { v := input.x[__sbomgate_in_k0]; k := __sbomgate_in_k0 }",
        ),
        (
            'a contains v if { some "name", v in input.x }',
            'a contains v if { v := input.x["name"] }',
        ),
        (
            "a contains v if { some [v, _] in input.x }",
            "a contains v if { [v, _] := input.x[_] }",
        ),
        (
            "a contains x if { x := input.y; some x in x }",
            "a contains x if { x := input.y; __sbomgate_in_0 := x; x := __sbomgate_in_0[_] }",
        ),
        (
            "a contains v if { some v in input.x | input.y }",
            "a contains v if { __sbomgate_in_0 := input.x | input.y; v := __sbomgate_in_0[_] }",
        ),
        (  # nested: the inner one in a second pass
            "a := {v | some v in [w | some w in input.x]}",
            "a := {v | v := [w | w := input.x[_]][_]}",
        ),
        (
            'a contains v if { some v in split(input.s, ",") }',
            'a contains v if { v := split(input.s, ",")[_] }',
        ),
    ],
)
def test_some_in_is_rewritten_into_a_reference(body: str, expected: str) -> None:
    assert rewritten(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "a contains v if { some v in input.x with input.x as [1] }",
        'a contains v if { some {"k": v, "n": 1} in input.x }',
        "a contains k if { some k, _ in input.x }",
        "a if { every v in input.x { v > 1 } }",
    ],
)
def test_shapes_it_cannot_rewrite_exactly_are_left_as_written(body: str) -> None:
    assert rewritten(body) == body


def test_fresh_names_never_collide_with_the_policy_s_own() -> None:
    out = rewritten(
        "__sbomgate_in_4 := 1\na contains v if { some v in input.x | {__sbomgate_in_4} }"
    )
    assert "__sbomgate_in_5 := input.x | {__sbomgate_in_4}; v := __sbomgate_in_5[_]" in out


def test_every_line_stays_where_the_user_wrote_it() -> None:
    body = "a contains w if {\n\tsome v in input.x\n\tsome w in v\n\tw > 1\n}\n\nb := x if { some x in [1, 2] }"
    source = HEAD + body + "\n"
    module = analyse_module("p.rego", source)
    assert module.source != source
    assert module.written == source  # what manifests and OPA are shown
    assert module.source.splitlines()[-1].startswith("b := x if {")
    assert [(r.name, r.line) for r in module.rules] == [("a", 5), ("b", 11)]
    engine = RegoEngine([module], {})
    engine.set_input_json('{"x": [[1, 2], 3, "ab", null]}')
    assert engine.eval_rule("data.p.a") == {2}
    with pytest.raises(Exception, match=r"p.rego:11: "):  # an error names the user's line
        engine.eval_rule("data.p.b")  # two values for a complete rule: an error in OPA too


# Each shape, against `opa eval`, over collections and what is not one.
SHAPES = [
    "a contains v if { some v in input.x }",
    "a contains v if some v in input.x",
    "a contains [k, v] if { some k, v in input.x }",
    "a contains v if { some [v, _] in input.x }",
    'a contains v if { some "a", v in input.x }',
    "a contains v if { some 0, v in input.x }",
    'a contains v if { some v in input.x["y"] }',
    "a := {v | some v in [w | some w in input.x]}",
    "x := 5\na contains v if { some x in input.x; v := x }",
    "k := 1\na contains [k, v] if { some k, v in input.x }",
    'a contains v if { some v in split("a,b", ",") }',
    "a if { every v in input.x { some w in v } }",
    "b contains v if { some v in input.x }\na if { not b[2] }",
    "b contains v if { some v in input.x }\na := count(b)",
    "a contains v if { some v in input.x | {1} }",
    "a := [v | some v in input.x]",
    "f(x) := [v | some v in x]\na := f(input.x)",
    "a if { y := input.x; every q in [1] { some z in y; q != z } }",
    "a contains [k, v] if { some k, v in input.x; some w in input.x; w == v }",
    "a contains v if { some v in input.x; some v2 in input.x; v == v2 }",
    "a contains v if {\n\tsome v in input.x # a comment\n\tv != 1\n}",
]
# `not` over a call: OPA evaluates the call's references and the calls nested in its arguments
# first, so an undefined one fails the body rather than making the `not` succeed.
NEGATIONS = [
    'a if not startswith(input.x.y, "t")',
    "a if { not upper(input.x) }",
    "a if { not upper(input.x.y) }",
    "a if { not count(input.x) > 0 }",
    "a if { not input.x == 1 }",
    'a if { not lower(input.x) == "text" }',
    "a if { not 2 in input.x }",
    "a if { not 7 in input.x.y }",
    "a if { not input.x[0] > 1 }",
    "f(v) := v if v != 1\na if { not f(input.x.y) }",
    "b := input.x.y\na if { not count(b) > 0 }",
    'a if { not startswith(concat(",", input.x), "1") }',
    'a if { not object.get(input.x, "a", 0) > 3 }',
    "a := [v | some v in [1, 2]; not v in input.x]",
    "a if { every v in [1] { not v in input.x } }",
    "a if { not count([input.x, 1]) == 2 }",
    "a if { not is_array(input.x) }",
    "a if { not input.x.y }",
    'b := input.x.y\na if { not startswith(b, "t") }',
]
# A builtin sbomgate provides (an extension) giving its value as one more argument.
OUTPUTS = [
    'a := r if { regex.globs_match("a+", "[ab]*", r) }',
    'a := c if { semver.compare("1.0.0", "2.0.0", c) }',
    'a if { regex.globs_match("a+", "b*", false) }',
    'a if { regex.globs_match("a+", "b*", true) }',
    'a contains [p, r] if { some p in ["a*", "b+", "["]; regex.globs_match(p, "[ab]+", r) }',
    'a contains r if { some x in input.x; regex.globs_match(x, "a", r) }',
]
INPUTS: list[Any] = [None, "text", 3, [1, 2], {"a": 4, "y": [7]}, [[5, 1], [6, 2]], [], {}]


def _normalise(value: Any) -> Any:
    if isinstance(value, set | frozenset | list):
        return sorted((_normalise(v) for v in value), key=json.dumps)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("body", SHAPES + NEGATIONS + OUTPUTS)
def test_each_shape_answers_as_opa_does(body: str, opa_bin: str, tmp_path: Path) -> None:
    source = HEAD + body + "\n"
    policy_file = tmp_path / "p.rego"
    policy_file.write_text(source)
    (tmp_path / "inputs.json").write_text(json.dumps({"inputs": INPUTS}))
    query = 'r := {i: v | some i, x in data.inputs; v := data.p.a with input as {"x": x}}'
    proc = subprocess.run(
        [
            opa_bin,
            "eval",
            "-f",
            "json",
            "-d",
            str(policy_file),
            "-d",
            str(tmp_path / "inputs.json"),
            query,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    oracle = json.loads(proc.stdout)["result"][0]["bindings"]["r"]
    module = analyse_module("p.rego", source)
    if body in SHAPES or body in OUTPUTS:
        assert module.source != source  # the shape was rewritten
    engine = RegoEngine([module], {})
    for index, x in enumerate(INPUTS):
        engine.set_input_json(orjson.dumps({"x": x}).decode())
        ours = _normalise(engine.eval_rule("data.p.a"))
        assert ours == _normalise(oracle.get(str(index))), f"x = {x!r}"


def test_a_policy_of_thousands_of_statements_is_rewritten_whole() -> None:
    """/validate-policy parses what anyone who reaches the port sends: the rewrite is one walk
    and one join however many statements there are (it spliced the source once per statement:
    a 1 MiB policy of 36,000 statements took 30 s)."""
    body = "".join(
        f"r{i} contains [a, b] if {{ some a in input.x; some b in a }}\n" for i in range(1000)
    )
    module = analyse_module("p.rego", HEAD + body)
    assert " in input.x" not in module.source and " in a " not in module.source
    assert module.source.count("\n") == (HEAD + body).count("\n")
    engine = RegoEngine([module], {})
    engine.set_input_json('{"x": [[1], null, "s"]}')
    # null and "s" are not iterated (undefined, as in OPA); a set of arrays reads as a list.
    assert engine.eval_rule("data.p.r999") == [[[1], 1]]


def test_not_keeps_its_terms_under_not_bodies() -> None:
    """`import future.keywords.not` makes `not` a body of its own in OPA, which evaluates its
    terms inside: the module is left as written (OPA's conformance cases negation/not-body)."""
    body = 'import future.keywords.not\n\na if { not startswith(input.x.y, "t") }\n'
    module = analyse_module("p.rego", HEAD + body)
    assert module.source == HEAD + body
    engine = RegoEngine([module], {})
    engine.set_input_json('{"x": 1}')
    assert engine.eval_rule("data.p.a") is True


@pytest.mark.parametrize("keyword", ["and", "or"])
def test_not_is_left_alone_beside_logic_operators(keyword: str) -> None:
    """OPA's `and` / `or` operands are scopes of their own (regorus, patched, evaluates each as
    a comprehension): a term bound before a `not` inside one would land outside it, so modules
    that import them are left as written."""
    body = (
        f"import future.keywords.{keyword}\n\n"
        f'a if {{ input.x {keyword} not startswith(input.x.y, "t") }}\n'
    )
    module = analyse_module("p.rego", HEAD + body)
    assert module.source == HEAD + body
    engine = RegoEngine([module], {})
    engine.set_input_json('{"x": {"y": "s"}}')
    assert engine.eval_rule("data.p.a") is True
    engine.set_input_json('{"x": {"y": "t"}}')
    assert engine.eval_rule("data.p.a") is (True if keyword == "or" else None)


def test_not_binds_its_terms_first_on_the_same_line() -> None:
    body = 'a if not startswith(input.x.y, "t")\n\nb if { not count(input.x) > 0 }\n'
    module = analyse_module("p.rego", HEAD + body)
    lines = module.source.splitlines()
    fresh = r"(__sbomgate_not_\d+)"
    assert re.fullmatch(
        rf'a if \{{ {fresh} := input\.x\.y; not startswith\(\1, "t"\) \}}', lines[-3]
    )
    assert re.fullmatch(rf"b if \{{ {fresh} := count\(input\.x\); not \1 > 0 \}}", lines[-1])
    assert module.written == HEAD + body
