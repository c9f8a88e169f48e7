"""rego.metadata.rule() and rego.metadata.chain() against a real `opa eval`: each case is a set
of modules whose package `t` has rules calling them; every rule's value must be OPA's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sbomgate.errors import PolicyLoadError
from sbomgate.policy import load_policy
from sbomgate.policy._regorus import RegoEngine, analyse_module, check_calls

CASES: dict[str, list[str]] = {
    "rule and package": [
        """# METADATA
# title: The package
# description: What it checks
# organizations: [Acme]
# related_resources:
# - https://example.com/policy
# - ref: https://example.com/docs
#   description: the docs
# authors:
# - Jane Doe <jane@example.com>
# - name: Someone
# - email: x@example.com
# custom:
#   severity: high
#   tags: [a, b]
package t

import rego.v1

# METADATA
# title: A rule
# description: |
#   Two
#   lines
# custom:
#   n: 1.5
#   nested: {a: [1, null, true]}
r := rego.metadata.rule()

c := rego.metadata.chain()

# METADATA
# title: in a body
b if {
	rego.metadata.rule().title == "in a body"
}

msg contains sprintf("%s: %s", [rego.metadata.chain()[0].path[1], x]) if {
	some x in ["one"]
}
"""
    ],
    "document scope and several definitions": [
        """package t

import rego.v1

# METADATA
# scope: document
# title: The document
p := 1 if false

# METADATA
# title: The second definition
p := rego.metadata.chain() if true

f(x) := rego.metadata.chain() if x > 0

# METADATA
# entrypoint: true
# title: An entry point
e := rego.metadata.chain()

obj[k] := rego.metadata.rule() if some k in ["a"]
"""
    ],
    "subpackages across modules": [
        """# METADATA
# scope: subpackages
# title: Everything under t
package t
""",
        """# METADATA
# description: the package itself
package t.sub

import rego.v1

# METADATA
# title: deep
x := rego.metadata.chain()

y := rego.metadata.rule()
""",
        """# METADATA
# scope: subpackages
# description: under t.sub
package t.sub
""",
    ],
    "no annotations at all": [
        """package t

r := rego.metadata.rule()

c := rego.metadata.chain()
"""
    ],
}


def _modules(case: str) -> list[Any]:
    return [analyse_module(f"m{i}.rego", s) for i, s in enumerate(CASES[case])]


def _ours(case: str) -> Any:
    modules = _modules(case)
    check_calls(modules)
    engine = RegoEngine(modules, {})
    engine.set_input_json("{}")
    return engine.eval_rule("data.t")


def _opa(opa_bin: str, case: str, tmp: Path) -> Any:
    args = [opa_bin, "eval", "-f", "json"]
    for i, source in enumerate(CASES[case]):
        path = tmp / f"m{i}.rego"
        path.write_text(source)
        args += ["-d", str(path)]
    proc = subprocess.run([*args, "data.t"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]


def _json(value: Any) -> Any:
    """Sets as sorted lists, as OPA's JSON writes them."""
    if isinstance(value, set | frozenset):
        return sorted((_json(v) for v in value), key=json.dumps)
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_values_are_opas(case: str, opa_bin: str, tmp_path: Path) -> None:
    ours = _json(_ours(case))
    assert ours == _opa(opa_bin, case, tmp_path)
    assert ours  # not vacuous


def test_line_numbers_stay_the_authors() -> None:
    source = CASES["rule and package"][0]
    module = analyse_module("m.rego", source)
    assert module.source.count("\n") == source.count("\n")
    assert [r.line for r in module.rules] == [
        r.line for r in analyse_module("m.rego", source.replace("rego.metadata", "x_")).rules
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("# scope: package\n", "annotation scope 'package' must be applied to package"),
        ("# scope: everywhere\n", "invalid annotation scope 'everywhere'"),
        ("# schemas:\n# - input: schema.x\n", "METADATA `schemas` is not supported"),
        ("# title: [unclosed\n", "invalid METADATA"),
    ],
)
def test_a_bad_block_is_a_load_error_with_its_line(block: str, message: str) -> None:
    source = f"package cloudsmith\n\nimport rego.v1\n\n# METADATA\n{block}match := rego.metadata.rule()\n"
    with pytest.raises(PolicyLoadError) as info:
        load_policy("bad.rego", source)
    assert message in str(info.value)
    assert info.value.line is not None and info.value.line >= 5
