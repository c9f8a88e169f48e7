"""Custom resources into engine inputs, and policy scopes (no cluster needed)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sbomgate.errors import SbomgateError
from sbomgate.operator import resources
from sbomgate.policy.loader import Action
from sbomgate.policy.scope import in_scope, selector_matches

REGO = 'package cloudsmith\nimport rego.v1\nmatch if input.v0.package.name == "x"\n'


def policy(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "generation": 1}, "spec": {"rego": REGO, **spec}}


def test_package_policy_spec_overrides_metadata() -> None:
    loaded = resources.package_policy(
        policy(
            "deny-x",
            action="Quarantine",
            precedence=7,
            terminal=True,
            enabled=False,
            title="No x",
            scope={"namespaces": ["team-*"], "images": ["ghcr.io/acme/**"]},
        )
    )
    assert loaded.name == "deny-x" and loaded.action is Action.QUARANTINE
    assert (loaded.precedence, loaded.terminal, loaded.enabled) == (7, True, False)
    assert loaded.title == "No x"
    assert loaded.scope == {"namespaces": ("team-*",), "images": ("ghcr.io/acme/**",)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rego": "package cloudsmith\nmatch if {"}, "PackagePolicy/p"),
        ({"rego": ""}, "spec.rego is empty"),
        ({"action": "Block"}, "is not one of"),
        ({"precedence": "high"}, "spec.precedence must be int"),
        ({"terminal": "yes"}, "spec.terminal must be bool"),
        ({"scope": {"namespaces": "team"}}, "spec.scope.namespaces must be a list of strings"),
        ({"rego": "package cloudsmith\nx := http.send({})\nmatch if x"}, "http.send"),
    ],
)
def test_bad_package_policies_say_what_and_where(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SbomgateError, match=message.replace(".", r"\.").replace("/", "/")):
        resources.package_policy(policy(**spec))


def test_trust_policy_with_an_inline_trusted_root() -> None:
    identity = {"issuer": "https://issuer.example", "subjectRegExp": "^https://github.com/acme/"}
    obj = {
        "metadata": {"name": "ci"},
        "spec": {
            "images": ["ghcr.io/acme/**"],
            "authorities": [
                {
                    "name": "keyless",
                    "keyless": {"identities": [identity], "trustedRoot": {"data": "{}"}},
                }
            ],
        },
    }
    trust = resources.trust_policy(obj)
    [authority] = trust.authorities
    assert authority.trusted_root is not None and authority.trusted_root.endswith(".json")
    with open(authority.trusted_root) as f:
        assert f.read() == "{}"
    assert trust.covers("ghcr.io/acme/web")


def test_checking_a_trust_policy_leaves_no_trusted_root_file() -> None:
    identity = {"issuer": "https://issuer.example", "subject": "ci@example.com"}
    obj = {
        "metadata": {"name": "checked"},
        "spec": {
            "images": ["ghcr.io/acme/**"],
            "authorities": [
                {
                    "name": "keyless",
                    "keyless": {"identities": [identity], "trustedRoot": {"data": '{"n": 1}'}},
                }
            ],
        },
    }
    [authority] = resources.trust_policy(obj, check_only=True).authorities
    assert authority.trusted_root is not None
    assert not os.path.exists(authority.trusted_root)  # /validate-policy fills no disk


@pytest.mark.parametrize(
    ("authority", "where"),
    [
        ({"name": "k", "key": {"file": "/etc/passwd"}}, "key.file"),
        (
            {
                "name": "k",
                "keyless": {
                    "identities": [{"issuer": "https://i.example", "subject": "s"}],
                    "trustedRoot": {"file": "/var/run/secrets/token"},
                },
            },
            "keyless.trustedRoot.file",
        ),
    ],
)
def test_a_trust_policy_resource_may_not_name_files(authority: dict[str, Any], where: str) -> None:
    obj = {"metadata": {"name": "nosy"}, "spec": {"images": ["*"], "authorities": [authority]}}
    with pytest.raises(SbomgateError, match=rf"authorities\[0\]\.{where} is not accepted"):
        resources.trust_policy(obj, check_only=True)


def test_quarantine_entries_skip_expired_ones() -> None:
    obj = {
        "metadata": {"name": "manual"},
        "spec": {
            "entries": [
                {"purl": "pkg:pypi/ctx", "versions": "vers:pypi/*", "reason": "malware"},
                {"purl": "pkg:npm/a@1", "reason": "old", "expiresAt": "2020-01-01T00:00:00Z"},
            ]
        },
    }
    entries = resources.quarantine_entries(obj, "2026-11-24T00:00:00Z")
    assert entries == [
        {
            "purl": "pkg:pypi/ctx",
            "reason": "malware",
            "vers": "vers:pypi/*",
            "source": "PackageQuarantine manual",
        }
    ]
    with pytest.raises(SbomgateError, match="needs a purl"):
        resources.quarantine_entries({"metadata": {"name": "q"}, "spec": {"entries": [{}]}})


def test_quarantine_names_are_stable_per_package() -> None:
    a = resources.quarantine_name("pkg:pypi/Idna@3.10")
    for spelling in ("pkg:pypi/idna@3.10", "pkg:pypi/IDNA@v3.10", "pkg:pypi/idna@3.10.0"):
        assert a == resources.quarantine_name(spelling)
    assert a != resources.quarantine_name("pkg:pypi/idna@3.11")
    assert a.startswith("auto-") and len(a) <= 63
    # npm names are case-sensitive: two packages, two records (one would shadow the other).
    assert resources.quarantine_name("pkg:npm/JSONStream@1.3.5") != resources.quarantine_name(
        "pkg:npm/jsonstream@1.3.5"
    )
    assert resources.quarantine_name("pkg:npm/acme/x@1.0.0") == resources.quarantine_name(
        "pkg:npm/%40acme/x@1.0.0"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"purl": "pkg:pypi/ctx", "versions": "vers:npm/>=1"}, r"entries\[0\]\.vers: .*npm range"),
        ({"purl": "pkg:pypi/ctx", "versions": "vers:pypi/>=1.0-evil!"}, "does not parse"),
        ({"purl": "pkg:pypi/ctx@1.0", "versions": "vers:pypi/>=1"}, "give one of them"),
        ({"purl": "ctx"}, "expected a package URL"),
    ],
)
def test_quarantine_entries_are_checked_as_the_list_reads_them(
    entry: dict[str, str], message: str
) -> None:
    obj = {"metadata": {"name": "bad"}, "spec": {"entries": [entry]}}
    with pytest.raises(SbomgateError, match=f"PackageQuarantine bad: spec.*{message}"):
        resources.quarantine_entries(obj)


def test_scopes() -> None:
    ref = "ghcr.io/acme/web@sha256:" + "a" * 64
    assert in_scope({"namespaces": ["team-*"]}, "team-a", None, ref)
    assert not in_scope({"namespaces": ["team-*"]}, "other", None, ref)
    assert in_scope({"images": ["ghcr.io/acme/**"]}, "x", None, ref)
    assert not in_scope({"images": ["docker.io/**"]}, "x", None, ref)
    selector = {"matchLabels": {"tier": "strict"}}
    assert in_scope({"namespaceSelector": selector}, "x", {"tier": "strict"}, ref)
    assert not in_scope({"namespaceSelector": selector}, "x", {}, ref)
    expressions = {
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "stage"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    }
    assert selector_matches(expressions, {"env": "prod"})
    assert not selector_matches(expressions, {"env": "dev"})
    assert not selector_matches(expressions, {"env": "prod", "legacy": "1"})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""})
    assert selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}
    )
