"""Package intelligence end to end: `sbomgate eval` asking a real pypiserver, an OSV export
and the typosquat detector, and the bundled policies acting on what they say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sbomgate.intel.facts import IntelFacts, build_facts
from sbomgate.sbom.model import Component
from support.index_servers import IndexServer, pypi_server  # noqa: F401  (fixture)

CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def _component(name: str, version: str, sha256: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "library",
        "name": name,
        "version": version,
        "purl": f"pkg:pypi/{name}@{version}",
    }
    if sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": sha256}]
    return out


def _sbom_file(directory: Path, *components: dict[str, Any]) -> Path:
    path = directory / "app.cdx.json"
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    path.write_text(json.dumps({**document, "components": list(components)}))
    return path


def _sbomgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbomgate.cli", *args], capture_output=True, text=True, timeout=120
    )


def _osv_export(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "id": "GHSA-tiny-0001",
            "aliases": ["CVE-2026-0001"],
            "summary": "tiny-pkg runs code it should not",
            "modified": "2026-11-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": CVSS_CRITICAL}],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "tiny-pkg"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.2"}]}
                    ],
                }
            ],
        },
        {
            "id": "MAL-2026-0002",
            "summary": "Malicious code in foo-bar 2.0",
            "modified": "2026-11-01T00:00:00Z",
            "affected": [
                {"package": {"ecosystem": "PyPI", "name": "foo-bar"}, "versions": ["2.0"]}
            ],
        },
    ]
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


def test_eval_with_live_sources_osv_and_typosquat(pypi_server: IndexServer, tmp_path: Path) -> None:  # noqa: F811
    sha = pypi_server.packages
    path = _sbom_file(
        tmp_path,
        _component("foo-bar", "1.0", sha["foo-bar@1.0+wheel"]),  # found, hash matches
        _component("tiny-pkg", "0.1"),  # found; an advisory with a fix
        _component("Foo_Bar", "2.0", "0" * 64),  # found, but not this artifact
        _component("reqeusts", "2.31.0"),  # nowhere: a typo of requests
        _component("foo-bar", "1.0", "1" * 64),  # found, but not this artifact
    )
    osv = _osv_export(tmp_path / "osv")
    # The organisation's own index (hosted): its old projects are not asked their age.
    result = _sbomgate(
        "eval", "--sbom", str(path), "--source", f"pypi:hosted={pypi_server.url}",
        "--osv", str(osv), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    by_policy: dict[str, list[str]] = {}
    for finding in verdict["violations"]:
        by_policy.setdefault(finding["policy"], []).append(finding["purl"])
    assert sorted(by_policy["unverified"]) == ["pkg:pypi/foo-bar@1.0", "pkg:pypi/reqeusts@2.31.0"]
    assert by_policy["vulnerability"] == ["pkg:pypi/tiny-pkg@0.1"]
    assert by_policy["malware"] == ["pkg:pypi/foo-bar@2.0"]  # purls are normalised
    # The artifact whose hash differs is its own finding; the matching one passes.
    assert by_policy["integrity"] == ["pkg:pypi/foo-bar@1.0"]
    assert verdict["summary"]["violations"] == 5
    unverified = next(f for f in verdict["violations"] if f["policy"] == "unverified")
    assert "did you mean requests?" in unverified["reasons"][0]
    vulnerability = next(f for f in verdict["violations"] if f["policy"] == "vulnerability")
    assert "9.8" in vulnerability["reasons"][0]


def test_hash_mismatch_is_its_own_finding(pypi_server: IndexServer, tmp_path: Path) -> None:  # noqa: F811
    facts = build_facts(sources=[{"name": "internal", "kind": "pypi", "url": pypi_server.url}])
    assert isinstance(facts, IntelFacts)
    wrong = Component(
        name="foo-bar",
        version="2.0",
        purl="pkg:pypi/foo-bar@2.0",
        purl_type="pypi",
        format="python",
        hashes={"sha256": "0" * 64},
    )
    right = Component(
        name="foo-bar",
        version="2.0",
        purl="pkg:pypi/foo-bar@2.0",
        purl_type="pypi",
        format="python",
        hashes={"sha256": pypi_server.packages["foo-bar@2.0"]},
    )
    facts.prefetch([wrong, right])
    mismatch = facts(wrong)
    assert mismatch.checksum_mismatch and mismatch.repository is None
    matching = facts(right)
    assert matching.checksum_mismatch is None
    assert matching.repository is not None and matching.repository["kind"] == "pypi"
    assert matching.typosquat_of is None
    # Asked again while the answer holds: the same object, so that what an engine remembers
    # of the package (its outcome-cache key) is reused by the next build; the other artifact's
    # facts are still its own.
    assert facts(right) is matching
    assert facts(wrong) == mismatch and facts(wrong) is not matching


def test_snapshot_command_exports_answers_the_offline_eval_uses(
    pypi_server: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = _sbom_file(tmp_path, _component("tiny-pkg", "0.1"), _component("left-padd", "1.0"))
    snapshot = tmp_path / "facts.yaml"
    exported = _sbomgate(
        "snapshot", str(path), "--source", f"pypi:hosted={pypi_server.url}", "--out", str(snapshot)
    )
    assert exported.returncode == 0, exported.stderr
    assert "2 packages (1 found in a trusted repository)" in exported.stderr
    # Offline: no --source, only the exported answers.
    offline = _sbomgate("eval", "--sbom", str(path), "--facts", str(snapshot), "--format", "json")
    verdict = json.loads(offline.stdout)
    assert [f["purl"] for f in verdict["violations"]] == ["pkg:pypi/left-padd@1.0"]


def test_a_source_that_cannot_be_asked_is_a_fault_not_unverified(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    path = _sbom_file(tmp_path, _component("requests", "2.32.3"), _component("reqeusts", "2.31.0"))
    source = f"pypi=http://127.0.0.1:{port}/simple/"
    result = _sbomgate("eval", "--sbom", str(path), "--source", source, "--format", "json")
    # Not allowed (fail closed), and said as a fault: exit 3, nothing wrong was found, retry.
    assert result.returncode == 3, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["allowed"] is False
    assert [f["policy"] for f in verdict["violations"]] == []  # nothing claims "not found"
    assert sorted(e["purl"] for e in verdict["errors"]) == [
        "pkg:pypi/reqeusts@2.31.0",
        "pkg:pypi/requests@2.32.3",
    ]
    for error in verdict["errors"]:
        assert error["fault"] is True and error["policy"] == "sbomgate/trusted-sources"
        assert error["message"].startswith("no trusted repository could be asked about it (")
        assert "refused" in error["message"] and error["message"].endswith(": cannot verify")


def test_snapshot_keys_match_components_however_the_purl_is_spelled(tmp_path: Path) -> None:
    from sbomgate.intel.snapshot import load_facts_snapshot
    from sbomgate.sbom import parse_sbom

    snapshot = tmp_path / "facts.yaml"
    snapshot.write_text(
        "packages:\n"
        '  "pkg:deb/debian/libssl3@3.0.11-1~deb12u2+b1?arch=amd64":\n'
        "    repository: {name: debian}\n"
        '  "pkg:pypi/Foo_Bar@1.0":\n'
        "    repository: {name: pypi}\n"
    )
    facts = load_facts_snapshot(snapshot)
    sbom = parse_sbom(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "version": 1,
                "components": [
                    {
                        "type": "library",
                        "name": "libssl3",
                        "version": "3.0.11-1~deb12u2+b1",
                        "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64",
                    },
                    {"type": "library", "name": "foo-bar", "purl": "pkg:pypi/foo-bar@1.0"},
                ],
            }
        ).encode(),
        source="app.cdx.json",
    )
    assert [facts(c).repository for c in sbom.components] == [{"name": "debian"}, {"name": "pypi"}]


def test_a_purl_from_another_origin_gets_no_trusted_facts(tmp_path: Path) -> None:
    """The snapshot vouches for requests from the trusted index; the same name and version
    whose purl says it came from elsewhere is unverified (and the message says where from)."""
    snapshot = tmp_path / "facts.yaml"
    snapshot.write_text(
        "packages:\n"
        '  "pkg:pypi/requests@2.32.3":\n'
        "    repository: {name: pypi-trusted, url: 'https://pypi.acme.example/simple',"
        " hosting: hosted}\n"
        '  "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12":\n'
        "    repository: {name: debian}\n"
    )
    evil = "https://evil.example/simple"
    components = [
        {"type": "library", "name": "requests", "version": "2.32.3",
         "purl": "pkg:pypi/requests@2.32.3"},
        {"type": "library", "name": "requests", "purl": "pkg:pypi/Requests@2.32.3.0"},
        {"type": "library", "name": "requests", "purl": f"pkg:pypi/requests@2.32.3?repository_url={evil}"},
        {"type": "library", "name": "requests",
         "purl": "pkg:pypi/requests@2.32.3?download_url=https://evil.example/requests-2.32.3.tar.gz"},
        {"type": "library", "name": "requests",
         "purl": "pkg:pypi/requests@2.32.3?repository_url=https://pypi.acme.example/simple"},
        {"type": "library", "name": "libc6", "purl": "pkg:deb/debian/libc6@2.36-9+deb12u4?distro=debian-12&arch=amd64"},
        {"type": "library", "name": "libc6", "purl": "pkg:deb/debian/libc6@2.36-9+deb12u4?distro=debian-11"},
        {"type": "library", "name": "libc6", "purl": "pkg:deb/ubuntu/libc6@2.36-9+deb12u4?distro=debian-12"},
    ]  # fmt: skip
    path = tmp_path / "app.cdx.json"
    path.write_text(
        json.dumps(
            {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": components}
        )
    )
    result = _sbomgate("eval", "--sbom", str(path), "--facts", str(snapshot), "--format", "json")
    verdict = json.loads(result.stdout)
    unverified = {f["purl"]: f["reasons"][0] for f in verdict["violations"]}
    assert sorted(unverified) == [
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-11",
        "pkg:deb/ubuntu/libc6@2.36-9%2Bdeb12u4?distro=debian-12",
        "pkg:pypi/requests@2.32.3?download_url=https://evil.example/requests-2.32.3.tar.gz",
        f"pkg:pypi/requests@2.32.3?repository_url={evil}",
    ]
    assert (
        f"(its purl says it came from repository_url={evil})"
        in unverified[f"pkg:pypi/requests@2.32.3?repository_url={evil}"]
    )
