"""The CLI contract: exit codes, output formats, one-line errors and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SBOMGATE = [sys.executable, "-m", "sbomgate.cli"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SBOMGATE, *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def test_eval_allowed_json() -> None:
    proc = run(
        "eval", "--sbom", str(EXAMPLES / "good-app.cdx.json"),
        "--facts", str(EXAMPLES / "trusted-facts.yaml"), "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["allowed"] is True
    assert out["summary"] == {"components": 6, "violations": 0, "warnings": 0, "errors": 0}
    assert out["subject"]["format"] == "docker"
    assert out["violations"] == [] and out["errors"] == []


def test_eval_denied_json_names_package_policy_and_reason() -> None:
    proc = run(
        "eval", "--sbom", str(EXAMPLES / "bad-app.spdx.json"),
        "--facts", str(EXAMPLES / "trusted-facts.yaml"), "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["allowed"] is False
    by_purl = {v["purl"]: v for v in out["violations"]}
    assert set(by_purl) == {
        "pkg:pypi/reqeusts@2.31.0",
        "pkg:pypi/ctx@0.2.2",
        "pkg:pypi/h11@0.14.0",
        "pkg:pypi/readline@8.2",
    }
    assert by_purl["pkg:pypi/reqeusts@2.31.0"]["policy"] == "unverified"
    assert by_purl["pkg:pypi/ctx@0.2.2"]["policy"] == "malware"
    assert by_purl["pkg:pypi/h11@0.14.0"]["policy"] == "vulnerability"
    assert by_purl["pkg:pypi/readline@8.2"]["policy"] == "license"
    for violation in out["violations"]:
        assert set(violation) == {"purl", "name", "version", "policy", "action", "reasons"}
        assert violation["action"] == "Deny" and violation["reasons"]
    assert out["summary"]["violations"] == 4


def test_eval_without_facts_fails_closed() -> None:
    proc = run("eval", "--sbom", str(EXAMPLES / "good-app.cdx.json"), "--format", "json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert {v["policy"] for v in out["violations"]} == {"unverified"}


def test_eval_table_output() -> None:
    proc = run(
        "eval", "--sbom", str(EXAMPLES / "bad-app.spdx.json"),
        "--facts", str(EXAMPLES / "trusted-facts.yaml"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "DENIED" in proc.stdout
    assert "pkg:pypi/ctx@0.2.2" in proc.stdout and "malware" in proc.stdout


def test_eval_sarif_output() -> None:
    proc = run(
        "eval", "--sbom", str(EXAMPLES / "bad-app.spdx.json"),
        "--facts", str(EXAMPLES / "trusted-facts.yaml"), "--format", "sarif",
    )  # fmt: skip
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    rule_ids = {r["id"] for r in run0["tool"]["driver"]["rules"]}
    assert {"malware", "license", "unverified", "vulnerability"} <= rule_ids
    assert {r["ruleId"] for r in run0["results"]} <= rule_ids
    assert all(r["level"] == "error" for r in run0["results"])


def test_data_file_changes_policy_behaviour(tmp_path: Path) -> None:
    data = tmp_path / "org.yaml"
    data.write_text("sbomgate:\n  allow: ['python:reqeusts']\n  license:\n    deny: []\n")
    proc = run(
        "eval", "--sbom", str(EXAMPLES / "bad-app.spdx.json"),
        "--facts", str(EXAMPLES / "trusted-facts.yaml"), "--data", str(data), "--format", "json",
    )  # fmt: skip
    out = json.loads(proc.stdout)
    policies = {v["policy"] for v in out["violations"]}
    assert "unverified" not in policies  # exempted by the allow list
    assert [e["name"] for e in out["exemptions"]] == ["reqeusts"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"hello": "world"}', "not a CycloneDX or SPDX document"),
        (
            '{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": '
            '[{"type": "library", "name": "x", "purl": "not a purl"}]}',
            "components[0].purl: invalid purl",
        ),
    ],
)
def test_bad_sbom_is_one_line_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "sbom.json"
    path.write_text(content)
    proc = run("eval", "--sbom", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}") and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_sbom_file(tmp_path: Path) -> None:
    proc = run("eval", "--sbom", str(tmp_path / "nope.json"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope.json" in proc.stderr


def test_broken_policy_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.rego").write_text("package cloudsmith\n\nmatch if {\n")
    proc = run("eval", "--sbom", str(EXAMPLES / "good-app.cdx.json"), "--policies", str(tmp_path))
    assert proc.returncode == 2
    assert f"{tmp_path / 'broken.rego'}:" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.yaml", "sbomgate: [unclosed", "invalid YAML"),
        ("d.json", "{", "invalid JSON at line 1"),
        ("d.yaml", "- a list", "data must be a mapping"),
    ],
)
def test_bad_data_file(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    proc = run("eval", "--sbom", str(EXAMPLES / "good-app.cdx.json"), "--data", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_rego_test_runner_on_bundled_policies() -> None:
    proc = run("test", "policies")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count(": PASS") >= 50
    assert " 0 failed" in proc.stdout.strip().splitlines()[-1]


def test_rego_test_runner_reports_failures(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text(
        "package cloudsmith\nimport rego.v1\ndefault match := false\n"
        'match if input.v0.package.name == "evil"\n'
    )
    (tmp_path / "p_test.rego").write_text(
        "package cloudsmith_test\nimport rego.v1\n"
        'test_evil if data.cloudsmith.match with input as {"v0": {"package": {"name": "evil"}}}\n'
        'test_wrong if data.cloudsmith.match with input as {"v0": {"package": {"name": "ok"}}}\n'
        "todo_test_later if false\n"
    )
    proc = run("test", str(tmp_path))
    assert proc.returncode == 1
    assert "test_evil: PASS" in proc.stdout
    assert "test_wrong: FAIL" in proc.stdout
    assert "todo_test_later: SKIP" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "1 passed, 1 failed, 1 skipped"


def test_rego_test_runner_refuses_test_sleep_as_opa_test_does(tmp_path: Path, opa_bin: str) -> None:
    """test.sleep is a builtin of OPA's conformance runner only (tools/opa_conformance.py has
    it too): `opa test` refuses a test calling it, and so does `sbomgate test`, in one line."""
    (tmp_path / "s_test.rego").write_text(
        'package s_test\nimport rego.v1\ntest_sleep if {\n  test.sleep("1ms")\n}\n'
    )
    proc = run("test", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown function test.sleep" in proc.stderr and "Traceback" not in proc.stderr
    opa = subprocess.run(
        [opa_bin, "test", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert opa.returncode != 0 and "undefined function test.sleep" in opa.stdout + opa.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("packages: [1, 2]", "expected a mapping with a `packages` mapping"),
        ("packages:\n  pkg:pypi/x@1: {osv: 3}", "osv: expected a list of OSV records"),
        ("packages:\n  pkg:pypi/x@1: {published_at: 5}", "published_at: expected an RFC 3339"),
    ],
)
def test_bad_facts_snapshot(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "facts.yaml"
    path.write_text(content)
    proc = run("eval", "--sbom", str(EXAMPLES / "good-app.cdx.json"), "--facts", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- user mistakes

GOOD_SBOM = str(EXAMPLES / "good-app.cdx.json")


def _file(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def _trust(work: Path) -> str:
    from support.oci_builder import offline_trust_file

    return str(offline_trust_file(work))


def _rego_dir(work: Path) -> str:
    (work / "rego").mkdir()
    (work / "rego" / "p.rego").write_bytes(b"\x00\xff not rego")
    return str(work / "rego")


# Each: the arguments (given a scratch directory), and the path the message must name.
USER_MISTAKES: dict[str, Callable[[Path], tuple[list[str], str]]] = {
    "osv-missing": lambda t: (["eval", "--sbom", GOOD_SBOM, "--osv", f"{t}/all.zip"], "all.zip"),
    "osv-garbage": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--osv", _file(t / "all.zip", b"not a zip")],
        "all.zip",
    ),
    "osv-garbage-json": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--osv", _file(t / "osv.json", b"{nope")],
        "osv.json",
    ),
    "facts-missing": lambda t: (["eval", "--sbom", GOOD_SBOM, "--facts", f"{t}/f.yaml"], "f.yaml"),
    "facts-garbage": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--facts", _file(t / "f.yaml", b"\x00\xff{")],
        "f.yaml",
    ),
    "data-missing": lambda t: (["eval", "--sbom", GOOD_SBOM, "--data", f"{t}/d.yaml"], "d.yaml"),
    "data-garbage": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--data", _file(t / "d.yaml", b"\x00\xff{")],
        "d.yaml",
    ),
    "policies-missing": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--policies", f"{t}/nowhere"],
        "nowhere",
    ),
    "policies-garbage": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--policies", _rego_dir(t)],
        "p.rego",
    ),
    "sbom-missing": lambda t: (["eval", "--sbom", f"{t}/s.json"], "s.json"),
    "sbom-garbage": lambda t: (["eval", "--sbom", _file(t / "s.json", b"\x00\xff{")], "s.json"),
    "source-file-missing": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--source-file", f"{t}/sources.yaml"],
        "sources.yaml",
    ),
    "source-file-not-a-list": lambda t: (
        ["eval", "--sbom", GOOD_SBOM, "--source-file", _file(t / "sources.yaml", b"kind: apt")],
        "sources.yaml",
    ),
    "source-file-bad-entry": lambda t: (
        [
            "eval",
            "--sbom",
            GOOD_SBOM,
            "--source-file",
            _file(t / "sources.yaml", b"- {name: deb, kind: apt, url: 'http://127.0.0.1:9/'}"),
        ],
        "deb",
    ),
    "trust-missing": lambda t: (
        ["verify", "localhost:1/app:1", "--trust", f"{t}/t.yaml"],
        "t.yaml",
    ),
    "trust-garbage": lambda t: (
        ["verify", "localhost:1/app:1", "--trust", _file(t / "t.yaml", b"\x00\xff{")],
        "t.yaml",
    ),
    "registry-ca-missing": lambda t: (
        ["verify", "localhost:1/app:1", "--trust", _trust(t), "--registry-ca", f"{t}/ca.pem"],
        "ca.pem",
    ),
    "registry-ca-garbage": lambda t: (
        [
            "verify",
            "localhost:1/app:1",
            "--trust",
            _trust(t),
            "--registry-ca",
            _file(t / "ca.pem", b"not a certificate"),
        ],
        "ca.pem",
    ),
}


@pytest.mark.parametrize("case", list(USER_MISTAKES))
def test_user_mistake_is_one_line_exit_2_never_internal_error(tmp_path: Path, case: str) -> None:
    """A file given on the command line that is missing or unreadable is the user's to fix:
    one line naming it, exit 2; never "internal error" (the wording of sbomgate's own bugs)."""
    args, named = USER_MISTAKES[case](tmp_path)
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and named in lines[0], lines[0]
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_source_file_takes_a_list_or_a_serve_configuration(tmp_path: Path) -> None:
    """`--source-file` reads the same entries as the serve configuration's `trustedSources`
    (or that whole file); its sources are asked, here a PyPI index that is not there, so each
    package is a fault (exit 1 with the source named), never a silent allow."""
    entry = {"name": "internal", "kind": "pypi", "url": "http://127.0.0.1:9/simple/"}
    listed = tmp_path / "sources.json"
    listed.write_text(json.dumps([entry]))
    config = tmp_path / "sbomgate.yaml"
    config.write_text(json.dumps({"trustedSources": [entry], "mode": "enforce"}))
    for path in (listed, config):
        proc = run("eval", "--sbom", GOOD_SBOM, "--source-file", str(path), "--format", "json")
        assert proc.returncode == 1, proc.stderr
        report = json.loads(proc.stdout)
        assert not report["allowed"]
        assert "internal" in json.dumps(report["violations"] + report["errors"])


def test_version() -> None:
    from sbomgate import __version__

    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"sbomgate {__version__}"


@pytest.mark.parametrize("flag", ["-o", "--output", "--format"])
def test_output_is_spelled_as_the_ecosystem_does(flag: str) -> None:
    proc = run(
        "eval", "--sbom", GOOD_SBOM, "--facts", str(EXAMPLES / "trusted-facts.yaml"), flag, "json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["allowed"] is True


def test_sbom_from_stdin() -> None:
    proc = subprocess.run(
        [
            *SBOMGATE,
            "eval",
            "--sbom",
            "-",
            "--facts",
            str(EXAMPLES / "trusted-facts.yaml"),
            "-o",
            "json",
        ],
        input=(EXAMPLES / "bad-app.spdx.json").read_bytes(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["allowed"] is False and report["violations"]
    empty = subprocess.run(
        [*SBOMGATE, "eval", "--sbom", "-"], input=b"", capture_output=True, check=False, timeout=120
    )
    assert empty.returncode == 2 and b"<stdin>" in empty.stderr and b"Traceback" not in empty.stderr


def test_a_mode_for_a_policy_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """`policyModes` names policies as every output does (`package-age`; `package_age` is the
    same name); one naming no policy stops the server from starting instead of doing nothing."""
    from support.oci_builder import offline_trust_file
    from support.registry_servers import make_test_ca

    ca = make_test_ca(tmp_path / "ca")
    config = {
        "trustPolicies": [str(offline_trust_file(tmp_path))],
        "tls": {"certFile": str(ca.cert_file), "keyFile": str(ca.key_file)},
        "listen": {"host": "127.0.0.1", "port": 1},
        "policyModes": {"package_age": "Warn", "licence": "Audit"},
    }
    path = tmp_path / "sbomgate.yaml"
    path.write_text(json.dumps(config))
    proc = run("serve", "--config", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "policyModes: no policy is named licence" in line and "package-age" in line
    assert "package-age," not in line.split("(the policies:")[0]  # package_age was understood


def test_policy_names_are_the_same_in_every_output() -> None:
    proc = run("eval", "--sbom", str(EXAMPLES / "bad-app.spdx.json"), "-o", "sarif")
    rules = {r["id"] for r in json.loads(proc.stdout)["runs"][0]["tool"]["driver"]["rules"]}
    assert "package-age" in rules and "package-age-proxied" in rules and "allow-list" in rules
    assert not any("_" in rule for rule in rules)
