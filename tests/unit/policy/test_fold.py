"""Rules that depend on data alone, written as their value when an engine is made
(policy/_fold.py): which rules qualify, what their literals are, and that nothing a policy says
changes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate.intel.model import PackageFacts
from sbomgate.policy import load_policy
from sbomgate.policy._fold import MAX_LITERAL, fold_constants
from sbomgate.policy._regorus import RegoEngine, RegoModule, analyse_module
from sbomgate.policy.input import build_input
from sbomgate.runtime import load_policies
from sbomgate.sbom import Component


def module(body: str, imports: str = "", package: str = "cloudsmith") -> RegoModule:
    source = f"package {package}\n\nimport rego.v1\n{imports}\ndefault match := false\n\n{body}\n"
    return load_policy(f"{package}.rego", source).module


def constants(body: str, imports: str = "") -> set[str]:
    return {c.name for c in module(body, imports).constants}


def folded_rules(modules: list[RegoModule], data: dict[str, Any] | None = None) -> set[str]:
    """The rules each module no longer computes: their first line now reads `name := ...`
    (the lines stay where they were)."""
    out = set()
    for before, after in zip(modules, fold_constants(modules, data or {}), strict=True):
        old, new = before.source.splitlines(), after.source.splitlines()
        for rule in after.rules:
            if new[rule.line - 1] != old[rule.line - 1]:
                out.add(rule.name)
    return out


def test_the_rules_that_cannot_see_input() -> None:
    body = (
        "default _min := 7\n_min := m if {\n  m := data.sbomgate.x.min\n  is_number(m)\n}\n"
        '_set := {upper(e) | some e in ["a", "b"]}\n'
        "_reads := input.v0.osv\n"
        "_through := count(_reads)\n"
        "_f(x) := x + 1\n"
        "_parts contains 1 if true\n"
        "match if count(input.v0.osv) > _min"
    )
    # Functions and partial rules are not folded; a rule reaching input through another is not.
    assert constants(body) == {"_min", "_set"}


@pytest.mark.parametrize(
    ("body", "imports"),
    [
        ("_x := 1\nmatch if f with input.v0.osv as []\nf if _x", ""),
        ("_x := 1\nmatch if pkg.name == _x", "import input.v0.package as pkg\n"),
    ],
)
def test_none_in_a_module_that_replaces_or_aliases_input(body: str, imports: str) -> None:
    assert constants(body, imports) == set()


def test_what_is_folded_and_what_is_left() -> None:
    body = (
        "_now := time.now_ns()\n"  # not a function of its arguments
        "_other := data.other.rule\n"  # another module's rules: may read input
        "_data := data.sbomgate.list\n"
        "_undefined := data.sbomgate.missing\n"
        "_null := null\n"
        "_arrays := {[1], [2]}\n"  # a set the binding cannot give
        "_empty := {x | some x in []}\n"
        '_object := {"b": [1.5, true, null, "q\\"uote"], "a": {2, 1}}\n'
        "match if {_now; _other; _data; _undefined; _null; _arrays; _empty; _object}"
    )
    mine = module(body)
    other = module("rule := input.v0.osv\nmatch if rule", package="other")
    data = {"sbomgate": {"list": ["x", "y"]}}
    assert folded_rules([mine, other], data) == {"_data", "_empty", "_object"}
    after = fold_constants([mine, other], data)[0]
    assert '_data := ["x", "y"]' in after.source
    assert "_empty := set()" in after.source
    assert '_object := {"a": {1, 2}, "b": [1.5, true, null, "q\\"uote"]}' in after.source
    # Every line where it was: error messages keep naming the author's lines.
    assert after.source.count("\n") == mine.source.count("\n")
    assert after.written == mine.written


def test_a_literal_past_the_limit_is_left_to_the_rule() -> None:
    big = {"sbomgate": {"list": ["x" * 100] * (MAX_LITERAL // 100)}}
    mine = module("_data := data.sbomgate.list\nmatch if count(_data) > count(input.v0.osv)")
    assert folded_rules([mine], big) == set()
    assert folded_rules([mine], {"sbomgate": {"list": ["x"]}}) == {"_data"}


def test_a_module_that_calls_rego_metadata_is_left_as_written() -> None:
    source = (
        "# METADATA\n# title: t\npackage cloudsmith\n\nimport rego.v1\n\n_x := 1\n"
        'default match := false\n\nmatch if rego.metadata.chain()[0].annotations.title == "t"\n'
    )
    mine = load_policy("m.rego", source).module
    assert fold_constants([mine], {}) == [mine]


def test_the_bundled_licence_policy_folds_its_lists() -> None:
    licence = next(p for p in load_policies(None) if p.name == "license")
    folded = folded_rules([licence.module])
    assert {"_deny", "_deny_exact", "_deny_prefixes", "_os_formats", "_keywords"} <= folded
    # With data, the literal is the data's.
    data = {"sbomgate": {"license": {"deny": ["MPL-*"]}}}
    after = fold_constants([licence.module], data)[0]
    assert '_deny_prefixes := {"MPL-"}' in after.source


@pytest.mark.parametrize("policy", load_policies(None), ids=lambda p: p.name)
def test_folding_changes_no_bundled_policys_answer(policy: Any) -> None:
    """Each rule of each bundled policy has the same value with and without folding, with the
    example data and with none, on inputs that make it match and not."""
    components = [
        Component(name="a", version="1", purl="pkg:pypi/a@1", purl_type="pypi", format="python",
                  license="GPL-3.0-only OR (MIT AND BSD-3-Clause)"),
        Component(name="b", version="1", purl="pkg:deb/debian/b@1", purl_type="deb",
                  format="deb", license="LicenseRef-x"),
    ]  # fmt: skip
    for data in (
        {},
        {"sbomgate": {"license": {"allow": ["MIT"]}, "vulnerability": {"min_score": 1}}},
    ):
        plain = RegoEngine([policy.module], data)
        folded = RegoEngine(fold_constants([policy.module], data), data)
        for component in components:
            document = build_input(component, facts=PackageFacts(), now_ns=0)
            text = orjson.dumps(document).decode()
            plain.set_input_json(text)
            folded.set_input_json(text)
            for name in sorted(
                {r.name for r in policy.module.rules if not r.is_function and r.name.isidentifier()}
            ):
                rule = f"data.{policy.package}.{name}"
                assert folded.eval_rule(rule) == plain.eval_rule(rule), (name, data)


def test_analysis_of_a_folded_module_is_stable() -> None:
    """A folded module is analysed again: the load-time rewrites, already applied, change
    nothing more."""
    licence = next(p for p in load_policies(None) if p.name == "license")
    after = fold_constants([licence.module], {})[0]
    again = analyse_module(after.path, after.source)
    assert again.source == after.source


def test_a_policys_own_answers_are_not_folded() -> None:
    # A `match` that reads no input is asked per document (once per thread, by its empty
    # projection), so that one that runs away is stopped under its policy's name.
    policy = module('match if count(data.things) > 1\n\nreason contains "x" if match\n')
    assert "match" in constants('match if count(data.things) > 1\n\nreason contains "x" if match\n')
    assert folded_rules([policy], {"things": [1, 2]}) == set()
