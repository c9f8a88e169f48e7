"""Policies sharing one regorus engine (policy/_combined.py): which may, and that sharing
changes no outcome, error or message."""

from __future__ import annotations

import orjson
import pytest

from sbomgate.policy import PolicyEngine, load_policy
from sbomgate.policy._combined import plan_combined
from sbomgate.policy.input import PackageFacts, build_input
from sbomgate.policy.loader import Policy
from sbomgate.runtime import load_policies
from sbomgate.sbom import Component


def rego(name: str, body: str, *, package: str = "cloudsmith") -> Policy:
    source = f"package {package}\n\nimport rego.v1\n\ndefault match := false\n\n{body}\n"
    return load_policy(f"{name}.rego", source)


PLAIN_A = rego("plain-a", 'match if input.v0.package.name == "a"')
PLAIN_B = rego("plain-b", 'match if input.v0.package.name == "b"')


def test_the_bundled_policies_share_one_engine_under_packages_of_their_own() -> None:
    policies = load_policies(None)
    plan = plan_combined(policies, {"sbomgate": {}, "sbomgate_policy_0": {}})
    assert set(plan.renamed) == {p.name for p in policies}
    packages = [p.package for p in plan.shared]
    assert len(set(packages)) == len(packages)
    # Not the name of a data document, nor of any policy's own package.
    assert "sbomgate_policy_0" not in packages and "cloudsmith" not in packages
    for policy in policies:
        renamed = plan.renamed[policy.name]
        assert renamed.match_rule == f"data.{renamed.package}.match"
        # Only the package line changed: every rule is where it was.
        assert [(r.name, r.line) for r in renamed.module.rules] == [
            (r.name, r.line) for r in policy.module.rules
        ]


@pytest.mark.parametrize(
    "body",
    [
        # Its own package through data: gone once renamed.
        'match if data.cloudsmith.helper\n\nhelper if input.v0.package.name == "x"',
        "match if count(data.cloudsmith) > 0",
        # data as a whole, or a computed key right under it: it would see the other policies.
        "match if count(data) > 1",
        'match if {\n  some k\n  data[k].match == true\n  k != "x"\n}',
        # The package another policy is given.
        "match if data.sbomgate_policy_0.match",
    ],
)
def test_a_policy_that_could_tell_keeps_an_engine_of_its_own(body: str) -> None:
    nosy = rego("nosy", body)
    plan = plan_combined([PLAIN_A, nosy, PLAIN_B], {})
    assert set(plan.renamed) == {"plain-a", "plain-b"}


def test_an_imported_package_counts_as_read() -> None:
    nosy = load_policy(
        "nosy.rego",
        "package cloudsmith\n\nimport rego.v1\nimport data.cloudsmith as me\n\n"
        "default match := false\n\nmatch if me.x\n\nx := true",
    )
    assert set(plan_combined([PLAIN_A, nosy, PLAIN_B], {}).renamed) == {
        "plain-a",
        "plain-b",
    }


def test_one_candidate_shares_nothing() -> None:
    assert plan_combined([PLAIN_A], {}).renamed == {}


def _outcomes(
    engine: PolicyEngine, document: str
) -> list[tuple[str, bool, tuple[str, ...], str | None]]:
    return [(o.policy.name, o.matched, o.reasons, o.error) for o in engine.evaluate_input(document)]


def test_sharing_changes_no_outcome_error_or_message() -> None:
    """Policies of one package name and the same helper names, one failing with a conflict,
    one whose bodies fail where OPA is undefined: outcomes and messages as with an engine per
    policy (a policy the shared engine fails on is evaluated alone)."""
    same_helpers_1 = rego("helpers-1", '_bad if input.v0.package.name == "evil"\n\nmatch if _bad')
    same_helpers_2 = rego("helpers-2", '_bad if input.v0.package.name == "good"\n\nmatch if _bad')
    conflict = rego("conflict", "level := 1 if true\n\nlevel := 2 if true\n\nmatch if level == 1")
    nulls = rego(
        "nulls",
        'reason contains "osv" if {\n  some v in input.v0.osv\n  startswith(v.id, "MAL-")\n}\n\n'
        'reason contains "name" if input.v0.package.name == "evil"\n\n'
        "match if count(reason) > 0",
    )
    policies = [same_helpers_1, same_helpers_2, conflict, nulls]
    shared = PolicyEngine(policies)
    alone = PolicyEngine(policies, combine=False)
    assert len(shared._combined.shared) == 4 and not alone._combined.shared
    seen: dict[str, list[tuple[str, bool, tuple[str, ...], str | None]]] = {}
    for name in ("evil", "good", "other"):
        component = Component(name=name, version="1", purl=f"pkg:pypi/{name}@1", purl_type="pypi")
        for osv in (None, ({"id": "MAL-1"},)):
            document = orjson.dumps(
                build_input(component, facts=PackageFacts(osv=osv), now_ns=0)
            ).decode()
            got = seen[name] = _outcomes(shared, document)
            assert got == _outcomes(alone, document)
            error = next(e for n, _, _, e in got if n == "conflict")
            assert error is not None and "sbomgate_policy" not in error
    # Each policy's `_bad` is its own, and the MAL- advisory still matches (`some v in null`
    # is undefined, not an error).
    assert [(n, m) for n, m, _, _ in seen["evil"] if m] == [("helpers-1", True), ("nulls", True)]
    assert [(n, m) for n, m, _, _ in seen["good"] if m] == [("helpers-2", True), ("nulls", True)]


@pytest.mark.parametrize(
    "body",
    [
        "a if b\n\nb if a\n\nmatch if a",  # recursion
        'match if { 1 + "a" }',
        "f(x) := x\n\nmatch if f(1, 2)",
    ],
)
def test_a_module_the_shared_engine_fails_on_changes_no_other_outcome(body: str) -> None:
    broken = rego("broken", body)
    policies = [PLAIN_A, broken, PLAIN_B]
    component = Component(name="a", version="1", purl="pkg:pypi/a@1", purl_type="pypi")
    document = orjson.dumps(build_input(component, now_ns=0)).decode()
    shared = PolicyEngine(policies)
    alone = PolicyEngine(policies, combine=False)
    for _ in range(2):  # the second time, the failing policies are evaluated alone at once
        got = _outcomes(shared, document)
        assert got == _outcomes(alone, document)
        assert ("plain-a", True, (), None) in got
