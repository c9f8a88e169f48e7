"""Slopsquats through a pass-through repository, against real indexes on loopback.

An organisation's npm repository proxies the public registry (Verdaccio with an uplink to a
second Verdaccio); an attacker publishes a fresh near miss on the public one with `npm
publish`; it is "found" through the proxy, and the bundled policies refuse it as a young project
through a proxy, while an old project is admitted. pypiserver has no proxy (its fallback is a
redirect, refused as an answer from another host) and lists no upload times (PEP 503 HTML), so
what it vouches for has no known first release; PEP 700 upload times come from the static PEP
691 index. Timestamps are the servers' own: Verdaccio dates a publication with its clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from sbomgate.intel.facts import IntelFacts, build_facts
from sbomgate.intel.sources import SourceConfig, TrustedSources
from sbomgate.policy import PolicyEngine
from sbomgate.policy.loader import load_policy_dir
from sbomgate.sbom import parse_sbom
from sbomgate.sbom.model import Component
from support.index_servers import (
    OLD_PROJECT_TIME,
    NpmProxy,
    PypiFallback,
    StaticIndex,
)
from support.paths import POLICIES

DAY = 86400


def _sbomgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbomgate.cli", *args], capture_output=True, text=True, timeout=120
    )


def _purl(name_at_version: str, ptype: str) -> str:
    name, _, version = name_at_version.rpartition("@")
    return f"pkg:{ptype}/{name.replace('@', '%40', 1)}@{version}"


def _cdx(directory: Path, *components: dict[str, Any]) -> Path:
    path = directory / "app.cdx.json"
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    path.write_text(json.dumps({**document, "components": list(components)}))
    return path


def _npm_component(name_at_version: str, integrity: str | None = None) -> dict[str, Any]:
    name, _, version = name_at_version.rpartition("@")
    out: dict[str, Any] = {
        "type": "library",
        "name": name,
        "version": version,
        "purl": _purl(name_at_version, "npm"),
    }
    if integrity:
        digest = base64.b64decode(integrity.removeprefix("sha512-")).hex()
        out["hashes"] = [{"alg": "SHA-512", "content": digest}]
    return out


def _pypi_component(name: str, version: str) -> dict[str, Any]:
    return {
        "type": "library",
        "name": name,
        "version": version,
        "purl": f"pkg:pypi/{name}@{version}",
    }


def _by_policy(findings: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for finding in findings:
        out.setdefault(finding["policy"], {})[finding["purl"]] = finding["reasons"]
    return out


def _packument(registry: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{registry}/{name.replace('/', '%2f')}", timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def _seconds(stamp: str) -> str:
    """An RFC 3339 time as the sources report it (UTC, to the second)."""
    when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- npm through a proxy


def test_verdaccio_uplink_passes_the_public_registrys_times_through(npm_proxy: NpmProxy) -> None:
    """What the servers report: the public registry stamps `time` when a version is published,
    and the proxy serves that `time` as its own answer."""
    name = "@babel/helper-plugin-utlis"
    public = _packument(npm_proxy.public.url, name)
    proxied = _packument(npm_proxy.proxy.url, name)
    assert set(public["time"]) == {"created", "modified", "0.0.1"}
    assert proxied["time"] == public["time"] == npm_proxy.packuments[name]["time"]
    created = dt.datetime.fromisoformat(public["time"]["created"].replace("Z", "+00:00"))
    age = (dt.datetime.now(dt.UTC) - created).total_seconds()
    assert 0 <= age < DAY, public["time"]  # published by this session, by the server's clock
    old = _packument(npm_proxy.proxy.url, "left-pad-classic")
    assert old["time"]["created"] == OLD_PROJECT_TIME

    configs = [SourceConfig("npm-proxy", "npm", npm_proxy.proxy.url)]
    with TrustedSources(configs) as sources:
        slop = sources.lookup(_component(npm_proxy.slopsquat))
        classic = sources.lookup(_component(npm_proxy.old))
    assert slop.found_version and slop.repository is not None
    assert slop.repository["hosting"] == "proxied"
    assert slop.first_published_at == _seconds(public["time"]["created"])
    assert classic.found_version and classic.first_published_at == "2019-03-01T10:00:00Z"


def _component(name_at_version: str) -> Component:
    name, _, version = name_at_version.rpartition("@")
    namespace = name.split("/", 1)[0] if name.startswith("@") else None
    return Component(name, version, _purl(name_at_version, "npm"), "npm", namespace, format="npm")


def test_a_young_project_through_the_proxy_is_refused_an_old_one_admitted(
    npm_proxy: NpmProxy, tmp_path: Path
) -> None:
    proxy = npm_proxy.proxy
    sbom = _cdx(
        tmp_path,
        _npm_component(npm_proxy.slopsquat, proxy.packages[npm_proxy.slopsquat]),
        _npm_component(npm_proxy.old, proxy.packages[npm_proxy.old]),
    )
    result = _sbomgate(
        "eval", "--sbom", str(sbom), "--source", f"npm={proxy.url}", "--format", "json"
    )
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    denied = _by_policy(verdict["violations"])
    slop = _purl(npm_proxy.slopsquat, "npm")
    assert set(denied) == {"package-age-proxied"}, denied  # found: not "unverified"
    assert list(denied["package-age-proxied"]) == [slop]  # the old project is admitted
    (reason,) = denied["package-age-proxied"][slop]
    assert reason.startswith(f"{slop}: the project was first released 0 days ago (")
    assert "and came through source-1, which is not marked hosting: hosted, so may" in reason
    assert "(did you mean @babel/helper-plugin-utils?)" in reason
    assert "Review it, then add it to a hosted repository or to sbomgate.allow" in reason
    # The young version warns as before; the old project's version does not.
    assert list(_by_policy(verdict["warnings"]).get("package-age", {})) == [slop]


def test_a_hosted_repository_is_not_refused_for_its_young_projects(
    npm_proxy: NpmProxy, tmp_path: Path
) -> None:
    """`hosting: hosted` says the repository serves only what the organisation put there (here a
    false claim, to show the switch): its young projects are not refused by this policy."""
    sbom = _cdx(tmp_path, _npm_component(npm_proxy.slopsquat), _npm_component(npm_proxy.old))
    source = f"npm:hosted={npm_proxy.proxy.url}"
    result = _sbomgate("eval", "--sbom", str(sbom), "--source", source, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["violations"] == []
    assert list(_by_policy(verdict["warnings"])["package-age"]) == [
        _purl(npm_proxy.slopsquat, "npm")
    ]


def test_the_webhooks_facts_see_the_first_release_and_the_hosting(npm_proxy: NpmProxy) -> None:
    """`trustedSources` as `serve` reads it, the facts it builds, and the bundled policies."""
    facts = build_facts(sources=[{"name": "npm-proxy", "kind": "npm", "url": npm_proxy.proxy.url}])
    assert isinstance(facts, IntelFacts)
    slop, classic = _component(npm_proxy.slopsquat), _component(npm_proxy.old)
    assert facts(classic).first_published_at == "2019-03-01T10:00:00Z"
    known = facts(slop)
    assert known.repository is not None and known.repository["hosting"] == "proxied"
    assert known.first_published_at is not None and known.typosquat_of == (
        "@babel/helper-plugin-utils"
    )
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": [_npm_component(npm_proxy.slopsquat), _npm_component(npm_proxy.old)],
    }
    sbom = parse_sbom(json.dumps(document).encode(), source="app.cdx.json")
    engine = PolicyEngine(load_policy_dir(POLICIES))
    verdict = engine.evaluate_sbom(sbom, facts=facts)
    refused = [(v.policy, v.purl) for v in verdict.violations]
    assert refused == [("package-age-proxied", slop.purl)]


def test_the_snapshot_carries_the_first_release_offline(
    npm_proxy: NpmProxy, tmp_path: Path
) -> None:
    sbom = _cdx(tmp_path, _npm_component(npm_proxy.slopsquat), _npm_component(npm_proxy.old))
    snapshot = tmp_path / "facts.yaml"
    exported = _sbomgate(
        "snapshot", str(sbom), "--source", f"npm={npm_proxy.proxy.url}", "--out", str(snapshot)
    )
    assert exported.returncode == 0, exported.stderr
    packages = yaml.safe_load(snapshot.read_text())["packages"]
    old = packages[_purl(npm_proxy.old, "npm")]
    assert old["first_published_at"] == "2019-03-01T10:00:00Z"
    assert old["repository"]["hosting"] == "proxied"
    offline = _sbomgate("eval", "--sbom", str(sbom), "--facts", str(snapshot), "--format", "json")
    assert offline.returncode == 1, offline.stderr
    denied = _by_policy(json.loads(offline.stdout)["violations"])
    assert {p: list(v) for p, v in denied.items()} == {
        "package-age-proxied": [_purl(npm_proxy.slopsquat, "npm")]
    }


# --------------------------------------------------------------------------- PyPI


def test_pypiserver_fallback_is_a_redirect_not_a_vouch(pypi_fallback: PypiFallback) -> None:
    """pypiserver's only pass-through: names it does not hold redirect to its fallback index.
    An answer from another host is not the trusted repository's: a fault, never "found"."""
    with urllib.request.urlopen(f"{pypi_fallback.public.url}python-dateutils/") as response:
        assert b"python_dateutils-0.0.1.tar.gz" in response.read()  # the attacker's upload
    configs = [SourceConfig("pypi-internal", "pypi", pypi_fallback.internal.url)]
    with TrustedSources(configs) as sources:
        slop = sources.lookup(_pypi("python-dateutils", "0.0.1"))
        own = sources.lookup(_pypi("foo-bar", "1.0"))
    assert slop.repository is None and not slop.found_package
    # The redirect is not followed: the transport reaches only the configured hosts.
    public_host = pypi_fallback.public.url.split("/")[2]
    assert slop.error is not None and f"refused plain HTTP to {public_host}" in slop.error, slop
    assert own.found_version and own.repository is not None


def _pypi(name: str, version: str) -> Component:
    return Component(name, version, f"pkg:pypi/{name}@{version}", "pypi", format="python")


def test_pypiserver_says_nothing_of_first_releases(
    pypi_fallback: PypiFallback, tmp_path: Path
) -> None:
    """PEP 503 HTML has no upload times: through a repository taken to proxy (the default), a
    package whose first release is unknown is refused; marked hosted, it is admitted."""
    internal = pypi_fallback.internal.url
    with TrustedSources([SourceConfig("pypi-internal", "pypi", internal)]) as sources:
        answer = sources.lookup(_pypi("foo-bar", "1.0"))
    assert answer.found_version and answer.first_published_at is None
    assert answer.published_at is None

    sbom = _cdx(tmp_path, _pypi_component("foo-bar", "1.0"))
    refused = _sbomgate(
        "eval", "--sbom", str(sbom), "--source", f"pypi={internal}", "--format", "json"
    )
    assert refused.returncode == 1, refused.stderr
    (reason,) = _by_policy(json.loads(refused.stdout)["violations"])["package-age-proxied"][
        "pkg:pypi/foo-bar@1.0"
    ]
    assert reason == (
        "pkg:pypi/foo-bar@1.0 came through source-1, which is not marked hosting: hosted, so may "
        "pass a public registry's new names through, and nothing says when the project was first "
        "released (PEP 503 HTML pages, and proxies that do not pass upload times on, do not): its "
        "age cannot be checked. Review it, then add it to a hosted repository or to "
        "sbomgate.allow, or fix the dependency name, or mark the repository hosting: hosted if it "
        "serves only what you put there"
    )
    source = f"pypi:hosted={internal}"
    admitted = _sbomgate("eval", "--sbom", str(sbom), "--source", source, "--format", "json")
    assert admitted.returncode == 0, admitted.stdout + admitted.stderr


def test_pep700_upload_times_date_the_project(pep691_server: StaticIndex, tmp_path: Path) -> None:
    """A PEP 691 index with PEP 700 upload times (the static index: no real index on loopback
    lists them): `fresh-slop`, uploaded three days ago, and `yankee`, since 2023."""
    with TrustedSources([SourceConfig("pypi-proxy", "pypi", pep691_server.url)]) as sources:
        fresh = sources.lookup(_pypi("fresh-slop", "0.2"))
        yankee = sources.lookup(_pypi("yankee", "1.1"))
    assert yankee.first_published_at == "2023-11-14T22:13:20Z"  # 1.0's files, yanked since
    assert fresh.first_published_at is not None and fresh.published_at is not None
    assert fresh.first_published_at < fresh.published_at

    sbom = _cdx(tmp_path, _pypi_component("fresh-slop", "0.2"), _pypi_component("yankee", "1.1"))
    source = f"pypi:proxied={pep691_server.url}"
    result = _sbomgate("eval", "--sbom", str(sbom), "--source", source, "--format", "json")
    assert result.returncode == 1, result.stderr
    denied = _by_policy(json.loads(result.stdout)["violations"])
    assert {p: list(v) for p, v in denied.items()} == {
        "package-age-proxied": ["pkg:pypi/fresh-slop@0.2"]
    }
    (reason,) = denied["package-age-proxied"]["pkg:pypi/fresh-slop@0.2"]
    assert reason.startswith("pkg:pypi/fresh-slop@0.2: the project was first released 3 days ago")
    # The HTML page of the same index gives no times: unknown, so refused, never "old".
    html = pep691_server.url.replace("/simple/", "/html/simple/")
    result = _sbomgate("eval", "--sbom", str(sbom), "--source", f"pypi={html}", "--format", "json")
    denied = _by_policy(json.loads(result.stdout)["violations"])
    assert sorted(denied["package-age-proxied"]) == [
        "pkg:pypi/fresh-slop@0.2",
        "pkg:pypi/yankee@1.1",
    ]
    assert all(
        "nothing says when the project was first released" in reasons[0]
        for reasons in denied["package-age-proxied"].values()
    )
