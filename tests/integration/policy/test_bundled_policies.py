"""The bundled Rego policies in policies/: their own Rego unit tests must pass in BOTH the
OPA oracle and regorus (our engine), their METADATA must carry what the loader reads, and
the two engines must agree on what each policy says about awkward inputs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import regorus
import yaml

ROOT = Path(__file__).resolve().parents[3]
POLICIES = sorted(
    p.stem for p in (ROOT / "policies").glob("*.rego") if not p.stem.endswith("_test")
)
EXPECTED = {
    "allow_list": ("Allow", 10, True),
    "quarantine": ("Quarantine", 20, True),
    "malware": ("Deny", 30, True),
    "blocklist": ("Deny", 40, False),
    "integrity": ("Deny", 45, False),
    "unverified": ("Deny", 50, True),
    "vulnerability": ("Deny", 60, False),
    "license": ("Deny", 70, False),
    "package_age": ("Warn", 80, False),
    "package_age_proxied": ("Deny", 55, False),
}


def _engine(*files: Path, data: dict[str, Any] | None = None) -> Any:
    engine = regorus.Engine()
    for f in files:
        engine.add_policy(str(f), f.read_text())
    if data is not None:
        engine.add_data(data)
    return engine


def test_every_policy_is_known() -> None:
    assert set(POLICIES) == set(EXPECTED)


@pytest.mark.parametrize("name", POLICIES)
def test_rego_unit_tests_pass_in_opa(name: str, opa_bin: str, policies_dir: Path) -> None:
    proc = subprocess.run(
        [opa_bin, "test", f"{name}.rego", f"{name}_test.rego"],
        cwd=policies_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", POLICIES)
def test_rego_unit_tests_pass_in_regorus(name: str, policies_dir: Path) -> None:
    test_file = policies_dir / f"{name}_test.rego"
    source = test_file.read_text()
    package = re.search(r"^package\s+(\S+)", source, re.M)
    assert package is not None
    tests = sorted(set(re.findall(r"^(test_\w+)", source, re.M)))
    assert len(tests) >= 8, "each policy needs positive, negative and null-input tests"
    engine = _engine(policies_dir / f"{name}.rego", test_file)
    failed = {}
    for test in tests:
        try:
            result = engine.eval_rule(f"data.{package.group(1)}.{test}")
        except Exception as exc:  # regorus raises RuntimeError on builtin errors
            result = f"error: {str(exc).splitlines()[:3]}"
        if result is not True:
            failed[test] = result
    assert not failed


@pytest.mark.parametrize("name", POLICIES)
def test_metadata_annotations(name: str, opa_bin: str, policies_dir: Path) -> None:
    proc = subprocess.run(
        [opa_bin, "inspect", "--annotations", "--format", "json", f"{name}.rego"],
        cwd=policies_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    annotations = json.loads(proc.stdout)["annotations"]
    package_level = [a for a in annotations if a["annotations"]["scope"] == "package"]
    assert len(package_level) == 1
    ann = package_level[0]["annotations"]
    assert ann["title"] and ann["description"]
    custom = ann["custom"]
    action, precedence, terminal = EXPECTED[name]
    assert (custom["action"], custom["precedence"], custom["terminal"]) == (
        action,
        precedence,
        terminal,
    )


def _pkg(**overrides: Any) -> dict[str, Any]:
    package = {
        "name": "foo",
        "version": "1.2.3",
        "format": "python",
        "purl": "pkg:pypi/foo@1.2.3",
        "license": None,
        "checksum_sha256": None,
        "upstream_metadata": {"published_at": None},
        "tags": [],
        "files": [],
    }
    package.update(overrides)
    return package


def _v0(**overrides: Any) -> dict[str, Any]:
    v0 = {
        "package": _pkg(),
        "identity": {
            "namespace": None,
            "name": "foo",
            "version": "1.2.3",
            "qualifiers": {},
            "format": "python",
        },
        "osv": None,
        "vulnerabilities": None,
        "repository": {"name": "trusted"},
        "sbom": None,
    }
    v0.update(overrides)
    return {"v0": v0}


def _lic(expr: Any) -> dict[str, Any]:
    return _v0(
        package=_pkg(license={"oss_license": {"spdx_identifier": expr}, "raw_license": None})
    )


def _hit(entry: str, version: str, uncertain: str | None = None) -> dict[str, Any]:
    return {"entry": entry, "version": version, "reason": "r", "uncertain": uncertain}


_LISTS = {
    "allow": [_hit("python:foo:1.2.3", "1.2.3"), _hit("python:foo", "*", "no")],
    "blocklist": [_hit("python:foo", "*"), _hit("python:foo:1.0", "1.0", "could not compare")],
    "quarantine": [_hit("pkg:pypi/foo (all versions)", "*"), _hit("pkg:pypi/foo@1.0", "1.0", "x")],
}

_OSV = [
    {"id": "MAL-2024-1", "summary": "bad"},
    {
        "id": "GHSA-1",
        "aliases": ["CVE-2024-1"],
        "severity": [{"type": "CVSS_V3", "score": "x", "numerical_score": 9.8}],
        "affected": [{"ranges": [{"events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]}],
    },
    {
        "id": "PYSEC-1",
        "aliases": ["CVE-2024-1"],
        "severity": [{"numerical_score": 7}],
        "affected": [{"ranges": [{"events": [{"fixed": "1.3.1"}]}]}],
    },
]

# Inputs that must never make a policy error, plus ordinary ones.
INPUTS: list[Any] = [
    {},
    {"v0": None},
    {"v0": "x"},
    {"v0": {"package": "x"}},
    {"v0": {"package": None, "osv": "x", "repository": None}},
    _v0(package=_pkg(name=None, version=None, format=None, purl=None)),
    _v0(package=_pkg(name=5, version=[], format={}, purl=7, license="MIT", upstream_metadata="x")),
    _v0(package=_pkg(license={"oss_license": "MIT"})),
    _lic(None),
    _lic(["MIT"]),
    _v0(package=_pkg(upstream_metadata={"published_at": 12345})),
    _v0(package=_pkg(upstream_metadata={"published_at": "2024-02-30T00:00:00Z"})),
    _v0(package=_pkg(upstream_metadata={"published_at": "2019-01-01T00:00:00Z"})),
    # Ages as sbomgate counts them before evaluation (policy/input.py), and values it never
    # writes.
    *(
        _v0(
            package=_pkg(
                upstream_metadata={"published_at": "2024-06-10", "published_days_ago": days}
            )
        )
        for days in (0, 5, 13, 14, 29, 30, 3000, -1, -16, None, "5", [5], 13.5)
    ),
    _v0(osv=["MAL-1", None, 5, {"id": None, "aliases": None, "severity": "x", "affected": "y"}]),
    _v0(osv={"id": "MAL-1"}),
    _v0(osv=_OSV),
    _v0(repository=None),
    _v0(repository=None, package=_pkg(purl=None)),
    _v0(repository=None, sbom={"bomFormat": "CycloneDX", "components": []}),
    _lic("MIT OR (GPL-2.0-only AND Apache-2.0)"),
    _lic("(MIT AND GPL-3.0-only"),
    _lic("GPL-2.0-or-later WITH Classpath-exception-2.0"),
    *(
        _v0(
            package=_pkg(
                license={
                    "oss_license": {"spdx_identifier": expr},
                    "raw_license": None,
                    "spdx_terms": terms,
                }
            )
        )
        for expr, terms in (
            ("MIT OR GPL-3.0-only", ["MIT", "OR", "GPL-3.0-only"]),
            (
                "(MIT AND LicenseRef-x) OR GPL-2.0-only",
                ["(", "MIT", "AND", "LicenseRef-x", ")", "OR", "GPL-2.0-only"],
            ),
            ("GPL-3.0-only", [3]),
            ("GPL-3.0-only", None),
            (None, ["GPL-3.0-only"]),
        )
    ),
    _v0(package=_pkg(purl="pkg:npm/%40a/b@1.0.0", format="npm", name="@a/b", version="1.0.0")),
    _v0(package=_pkg(purl="pkg:pypi/foo@1.5.0", version="1.5.0")),
    # What sbomgate's list matching and OSV matching hand the policies (input.v0.lists, the
    # `uncertain` flag), well-formed and not.
    _v0(lists=_LISTS),
    _v0(lists=_LISTS, osv=_OSV),
    _v0(lists={"allow": [_hit("python:foo", "*")], "blocklist": [], "quarantine": []}, osv=_OSV),
    _v0(
        lists={"allow": [_hit("python:foo:1.2.3", "1.2.3")]},
        osv=[{"id": "X", "aliases": ["MAL-9"]}],
    ),
    _v0(lists="x"),
    _v0(lists={"allow": None, "blocklist": {"entry": "x"}, "quarantine": [None, 5, {"entry": 3}]}),
    _v0(osv=[{**r, "uncertain": "the version could not be compared (why)"} for r in _OSV]),
    _v0(osv=[{**_OSV[1], "uncertain": 5}, {**_OSV[2], "uncertain": "because"}]),
    _v0(
        repository=None,
        identity={"canonical": {"origin": {"repository_url": "https://evil.example/simple"}}},
    ),
    _v0(repository=None, identity={"canonical": {"origin": ["x"]}}),
    _v0(
        repository=None,
        identity={"canonical": {"origin": {"download_url": "https://evil.example/x.tgz"}}},
        lists={"allow": [_hit("python:foo:1.2.3", "1.2.3")]},
    ),
    _v0(
        identity={"canonical": {"origin": {"download_url": "https://npm.acme.example/x.tgz"}}},
        lists={"allow": [_hit("python:foo:1.2.3", "1.2.3")]},
    ),
    # The project's first release and the vouching repository's hosting (package_age_proxied).
    *(
        _v0(
            package=_pkg(upstream_metadata={"published_at": None, "first_published_at": first}),
            repository={"name": "pypi-proxy", "hosting": hosting},
            identity={"canonical": {"type": "pypi"}},
        )
        for first in (None, "2019-01-01T00:00:00Z", "2199-01-01", "2024-02-30T00:00:00Z", 7)
        for hosting in ("proxied", "hosted", None)
    ),
    *(
        _v0(
            package=_pkg(
                upstream_metadata={
                    "published_at": None,
                    "first_published_at": first,
                    "first_published_days_ago": days,
                }
            ),
            repository={"name": "pypi-proxy", "hosting": "proxied"},
            identity={"canonical": {"type": "pypi"}},
        )
        for first, days in (
            ("2024-06-10", 5),
            ("2024-05-16T12:00:00Z", 30),
            ("2024-05-17", 29),
            ("2024-07-01", -16),
            ("2024-02-30", None),
            (None, None),
            (None, 3),
            ("2024-06-10", "5"),
            ("2024-06-10", 29.5),
        )
    ),
    _v0(
        package=_pkg(
            purl="pkg:npm/%40a/b@1.0.0",
            format="npm",
            upstream_metadata={"first_published_at": "2199-12-31T23:59:59Z"},
            typosquat_of="@a/c",
        ),
        repository={"url": "https://npm.acme.example/", "hosting": "proxied"},
    ),
    _v0(
        package=_pkg(purl="pkg:maven/a/b@1", upstream_metadata={"first_published_at": None}),
        repository={"name": "maven-proxy", "hosting": "proxied"},
    ),
    _v0(repository="x", identity={"canonical": {"type": 5}}),
    _v0(repository={"hosting": ["hosted"]}, identity={"canonical": None}),
]

CUSTOM_DATA = {
    "sbomgate": {
        "allow": ["python:foo:1.2.3", "npm:@a/b"],
        "blocklist": ["python:foo", "pypi:foo:1.2.3", None, ":::"],
        "quarantine": [
            {"purl": "pkg:pypi/foo", "vers": "vers:pypi/>=1.0.0|<2.0.0", "reason": "r"},
            {"purl": "pkg:npm/@a/b"},
            None,
        ],
        "unverified": {"allow_no_purl": True, "exempt_formats": ["npm"]},
        "vulnerability": {"min_score": 5, "require_fix": False, "ignore": ["GHSA-1"]},
        "license": {"allow": ["MIT", "Apache-*"]},
        "package_age": {
            "min_days": 30,
            "min_project_days": 3650,
            "allow_unknown_first_release": True,
        },
    }
}

_DRIVER = """package sbomgate_conformance_driver
import rego.v1
results := [x |
    some i in data.cases
    m := data.cloudsmith.match with input as i
    r := data.cloudsmith.reason with input as i
    x := {"m": m, "r": sort(r)}
]
"""


def _example_data(policies_dir: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((policies_dir / "data.example.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _regorus_results(policy: Path, data: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for case in INPUTS:
        engine = _engine(policy, data=data)
        engine.set_input(case)
        out.append(
            {
                "m": engine.eval_rule("data.cloudsmith.match"),
                "r": sorted(engine.eval_rule("data.cloudsmith.reason")),
            }
        )
    return out


def _opa_results(
    opa_bin: str, policy: Path, data: dict[str, Any] | None, tmp_path: Path
) -> list[dict[str, Any]]:
    driver = tmp_path / "driver.rego"
    driver.write_text(_DRIVER)
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps({**(data or {}), "cases": INPUTS}))
    args = ["-d", str(policy), "-d", str(driver), "-d", str(data_file)]
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", *args, "data.sbomgate_conformance_driver.results"],
        capture_output=True,
        text=True,
        check=True,
    )
    value: list[dict[str, Any]] = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    return value


@pytest.mark.parametrize("data_name", ["none", "example", "custom"])
@pytest.mark.parametrize("name", POLICIES)
def test_opa_and_regorus_agree(
    name: str, data_name: str, opa_bin: str, policies_dir: Path, tmp_path: Path
) -> None:
    data = {"none": None, "example": _example_data(policies_dir), "custom": CUSTOM_DATA}[data_name]
    policy = policies_dir / f"{name}.rego"
    ours = _regorus_results(policy, data)
    oracle = _opa_results(opa_bin, policy, data, tmp_path)
    assert ours == oracle


@pytest.mark.parametrize("name", POLICIES)
def test_example_data_documents_the_defaults(name: str, policies_dir: Path) -> None:
    """data.example.yaml shows the defaults: loading it changes no decision."""
    policy = policies_dir / f"{name}.rego"
    assert _regorus_results(policy, _example_data(policies_dir)) == _regorus_results(policy, None)


def test_policies_readme_lists_every_policy(policies_dir: Path) -> None:
    readme = (policies_dir / "README.md").read_text()
    for name in POLICIES:
        assert f"{name}.rego" in readme
