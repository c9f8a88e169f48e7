"""`rego.parse_module` answers as OPA's does: the AST, as OPA's JSON, of every module of OPA's
conformance cases (about 2,700), of sbomgate's own policies and of a list written to reach each
rule of OPA's parser that the AST shows (rule heads, `else` chains, wildcards, numbers,
template strings, comments), compared with a real `opa eval` of the builtin on the same text.

A module OPA's parser refuses is refused here too (the call is undefined), and so is one whose
numbers JSON cannot hold (`.5`: OPA fails to encode its AST).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import opa_conformance as harness
import pytest

from sbomgate.policy._regoast import ParseModuleError, _Converter, parse_module
from sbomgate.policy._regorus import new_engine
from support.paths import ROOT

_H = "package t\n"
_AND_OR = "package t\nimport future.keywords.and\nimport future.keywords.or\n"
_ALL = (
    "package t\nimport future.keywords.not\nimport future.keywords.and\nimport future.keywords.or\n"
)

# Written for this test: each reaches a rule of OPA's parser that shows in the AST.
HANDWRITTEN = [
    _H + "p { true }",  # v0's body without `if`: OPA 1.x refuses it
    _H + "p if { true }",
    'package a.b["c"]\np := 1',
    'package a["b-c"].d\np := 1',
    _H + "import future.keywords.in\np if 1 in [1]",
    _H + "import input.x\nimport data.y.z as w\nimport input\np := x",
    _H + 'p := "h\\u00e9llo\\n\\t\\"q\\"" # c',
    _H + "p := `raw#not comment` # real",
    _H + "# first\n\n  # indented\np := 1\n#last",
    _H + "p := [1e3, 0.5, 12345678901234567890, -1, 1.0, -0.0, 2E-3]",
    _H + "p := - 1",
    _H + "p if { x := 1; y := -x; z := 1 - -2 }",
    _H + 'p := x.y[z].w if { x := input; z := "a" }',
    _H + 'p := input["a"][0]',
    _H + "default f(_) := 1\nf(x) := 2 if x > 1",
    _H + "f(_, _) := 1",
    _H + "f(_) := 1 if { true } else := 2 if { true } else := 3",
    _H + "p := false if { false } else if { true } else := false",
    _H + "p if { some x, y; x = 1; y = 2 }",
    _H + "p if { some i, v in [1]; v == i }",
    _H + "p if { every x in [1] { x > 0 } }",
    _H + "p if { every k, v in {1: 2} { k < v } }",
    _H + "p contains x if { some x in input }",
    _H + "p[x] := 1 if { some x in input }",
    _H + "p.q[r].s := 1 if { r := 1 }",
    _H + 'p["a"] := 1',
    _H + "p[[1, x]] := 1 if x := 1",
    _H + "q[x] if x := 1",
    _H + "p.q contains 1 if true",
    _H + 'p := {"b": 1, "a": 2, 1: 3, null: 4, true: 5}',
    _H + 'p := {3, 1, 2, "a", null, [1], {1}, {"a": 1}, 1}',
    _H + "p := {x | x := [1][_]}",
    _H + 'p := {k: v | some k, v in {"a": 1}}',
    _H + "p := [x | x := input[_]; not x]",
    _H + "p if { x := input with input as 1 with data.a.b as 2 }",
    _H + 'p if { count(input) > 1; startswith("a", "b"); a.b.c(1) }',
    _H + 'p if { [a, b] := [1, 2]; {"x": c} = {"x": 1} }',
    _H + "p if { x := 1 | 2; y := {1} & {2}; z := 5 % 3; w := 4 / 2 }",
    _H + "p if { 1 < 2; 2 <= 3; 3 > 2; 3 >= 3; 1 != 2; 1 == 1 }",
    _H + "p if { input.x == _; _ = 1; [_, _] = [1, 2] }",
    _H + "p := set()",
    _H + "p := []",
    _H + "p := {}",
    _H + "p if true\np if false",
    _H + "p := 1 if { true } { false }",
    _H + 'p := $"a {1 + 2} b {input.x} \\{c} {"s"} {null}"',
    _H + "p := $`multi {input.x}\nline`",
    _H + 'p := $""',
    _H + 'p := $"{x with input as 1}" if x := input',
    _H + 'f($"{x}-{input.y}") := 1 if x := "a"',
    _H + "p := `a\\nb`",
    _H + 'p := "é ☃ 𝄞" # ☃ comment after characters of 2, 3 and 4 bytes',
    _H + 'p := {"a": 1, "a": 2}',
    _H + "p := {1, 1.0}",
    _H + "p if { not input.x with input as {} }",
    _H + "import rego.v1\np if { true }",
    "package t\n\np if {\n\tx := 1\n\t# inside\n\tx == 1\n}\n",
    _H + "p := 0x10",
    _H + "p := .5",
    _H + 'p := "\\/"',
    _H + "p if { some x in input; x == 1 } else := false",
    _H + "package u",
    "package",
    _H + "p := " + "1 + " * 100 + "1",
    _H + "p := " + "[" * 100 + "]" * 100,
    # OPA's experimental logic keywords, which regorus reads by rewriting them
    _AND_OR + "p if { { input.a; input.b } and input.c or { input.d } }",
    _ALL + "p if { not { input.a and input.b } }",
    _AND_OR + "p if { input.a and input.b and input.c or input.d and input.e }",
    _AND_OR + "p if { {input.a} and ({input.b} or input.c) }",
    _ALL + "p if { not (input.a and input.b) }",
    _ALL + "p if { not input.x with input as 1 }",
    _AND_OR + "p if { input.a and # why\n input.b }",
    _AND_OR + "p if {\n  input.a\n  and input.b\n}",
    _AND_OR + "p if { input.a or\n  input.b or # c\n input.c }",
    _ALL + "p if { not input.a and not input.b }",
    _ALL + "p if { not { input.a } or input.b }",
    _AND_OR + "p if { x := 1; x > 0 and x < 2 }",
    _AND_OR + "p := [x | some x in input; x > 1 or x < -1]",
    _AND_OR + "p if { every x in input { x > 0 and x < 9 } }",
    "package t\nimport rego.v2\np if { input.a and input.b }",
    "package t\nimport rego.v2\np if { not input.a }",
    "package t\nimport future.keywords\np if { input.a or input.b }",
    _AND_OR + "p if { (input.a) and input.b }",
    _AND_OR + "p if { (input.a and input.b) }",
    _AND_OR + "p if { input.a with input as {} and input.b }",
    _AND_OR + 'p if { (input.a with input as {"a": 1}) and input.b }',
    _AND_OR + 'p if { (input.a or input.b with input as {"a": 1}) }',
    _AND_OR + "p if { input.and }",
    _AND_OR + "p if { and := 1 }",
    _AND_OR + "p if { input.a and {input.b; input.c} }",
]


def _modules() -> dict[str, str]:
    module_dir = harness.opa_module_dir()
    if not (module_dir / harness.CASES_SUBDIR).is_dir():
        pytest.fail("OPA's conformance cases are missing: run `make tools`", pytrace=False)
    modules = {}
    for case in harness.load_cases(module_dir):
        for i, text in enumerate(case.modules):
            modules[f"{case.id}#{i}"] = text
    for path in sorted((ROOT / "controller" / "sbomgate" / "policies").glob("*.rego")):
        modules[str(path.relative_to(ROOT))] = path.read_text()
    for path in sorted((ROOT / "tests" / "integration" / "policy").glob("**/*.rego")):
        modules[str(path.relative_to(ROOT))] = path.read_text()
    for i, text in enumerate(HANDWRITTEN):
        modules[f"handwritten #{i}"] = text
    return modules


def _opa(opa_bin: str, modules: dict[str, str], workdir: Path) -> dict[str, Any]:
    """OPA's rego.parse_module of each module; a module OPA refuses is absent."""
    data = workdir / "modules.json"
    data.write_text(json.dumps({"modules": modules}))
    query = '{k: m | some k, v in data.modules; m := rego.parse_module("x.rego", v)}'
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(data), query],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    [result] = json.loads(proc.stdout)["result"]
    return dict(result["expressions"][0]["value"])


def test_parse_module_answers_as_opa(opa_bin: str, tmp_path: Path) -> None:
    modules = _modules()
    theirs = _opa(opa_bin, modules, tmp_path)
    differ, refused = [], 0
    for key, text in modules.items():
        try:
            ours: Any = json.loads(json.dumps(parse_module("x.rego", text)))
        except ParseModuleError:
            ours, refused = None, refused + 1
        if ours != theirs.get(key):
            differ.append(key)
    logic = sum(1 for t in modules.values() if re.search(r"import (future\.keywords|rego\.v2)", t))
    print(f"\nrego.parse_module: {len(modules) - len(differ)} of {len(modules)} modules as OPA's "
          f"({logic} import OPA's experimental logic keywords; {refused} refused by both)")  # fmt: skip
    assert not differ, differ[:20]
    assert len(modules) > 2_800 and logic > 150


def test_parse_module_through_the_engine_as_opa(opa_bin: str, tmp_path: Path) -> None:
    """The builtin as a policy calls it: its answer, and an undefined call for text OPA's
    parser refuses and for operands that are not strings."""
    text = (
        "package shop.rules # comment\n\nimport rego.v1\n\n"
        "default allow := false\n\n"
        'allow if { some p in input.packages; p.name == "flask" }\n'
    )
    data = {"text": text, "broken": "package foo.", "number": 1}
    query = (
        'x := rego.parse_module("a.rego", data.text); '
        'broken := [1 | rego.parse_module("b.rego", data.broken)]; '
        'number := [1 | rego.parse_module("c.rego", data.number)]'
    )
    engine = new_engine()
    engine.add_data_json(json.dumps(data))
    [row] = engine.eval_query(query)["result"]
    (tmp_path / "data.json").write_text(json.dumps(data))
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(tmp_path / "data.json"), query],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    [expected] = json.loads(proc.stdout)["result"]
    assert row["bindings"] == expected["bindings"]
    assert row["bindings"]["broken"] == row["bindings"]["number"] == []
    assert row["bindings"]["x"]["comments"][0]["Location"] == {
        "file": "a.rego",
        "row": 1,
        "col": 20,
    }


def test_a_logic_rewrite_outside_a_statement_is_refused() -> None:
    # regorus' rewrite of `and` as a term, where OPA's parser allows none: refused, not guessed
    one = {"Number": {"span": {"start": 0, "end": 1}, "value": 1}}
    rewrite = {"ArrayCompr": {"span": {"start": 0, "end": 1}, "term": one,
                              "query": {"stmts": []}}}  # fmt: skip
    with pytest.raises(ParseModuleError, match="where OPA's parser has none"):
        _Converter(b"x").term(rewrite)


def test_operands_must_be_strings() -> None:
    with pytest.raises(TypeError, match="operands must be strings"):
        parse_module("x.rego", 1)


@pytest.mark.parametrize(
    "text",
    [
        # regorus' parser crashed the process (its stack) on a few thousand nested brackets
        _H + "p := " + "[" * 5_000 + "]" * 5_000,
        # and its JSON writer on a chain 20,000 long (5,000 took 5 s, 20,000 about 95 s)
        _H + "p := " + "1+" * 200_000 + "1",
        _H + "p := input" + ".a" * 300_000,
        _H + "p := " + "-" * 300_000 + "x",
    ],
    ids=["brackets", "plus-chain", "ref-chain", "unary-chain"],
)
def test_a_module_too_deep_is_refused_not_a_crash(text: str) -> None:
    with pytest.raises(ParseModuleError, match=r"nested|too deep|rego_parse_error"):
        parse_module("x.rego", text)
