"""Binaries found inside a listed package's installed files are that package's files
(sbomgate.sbom.containment): kept apart, never a way to take anything else out of judgement."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sbomgate.sbom import parse_sbom

SITE = "/usr/lib/python3.11/site-packages"


def _launcher(path: str, *, purl: str | None = None, how: str = "syft") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "application", "name": "Simple Launcher", "version": "1.1.0.14"}
    if how == "syft":
        out["properties"] = [
            {"name": "syft:package:foundBy", "value": "pe-binary-package-cataloger"},
            {"name": "syft:location:0:path", "value": path},
        ]
    else:
        out["evidence"] = {"occurrences": [{"location": path}]}
    if purl:
        out["purl"] = purl
    return out


def _cdx(*components: dict[str, Any]) -> bytes:
    listed = [
        {"type": "library", "name": "pip", "version": "24.0", "purl": "pkg:pypi/pip@24.0"},
        {"type": "library", "name": "PyYAML", "version": "6.0", "purl": "pkg:pypi/pyyaml@6.0"},
        {
            "type": "library",
            "name": "linux-x64",
            "version": "0.20.0",
            "purl": "pkg:npm/%40esbuild/linux-x64@0.20.0",
        },
        *components,
    ]
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": listed}
    return json.dumps(doc).encode()


def _judged(raw: bytes) -> list[str]:
    return [c.purl or c.name for c in parse_sbom(raw, source="t").components]


@pytest.mark.parametrize("how", ["syft", "evidence"])
def test_a_launcher_inside_pip_is_one_of_pips_files(how: str) -> None:
    sbom = parse_sbom(_cdx(_launcher(f"{SITE}/pip/_vendor/distlib/t64.exe", how=how)), source="t")
    assert "Simple Launcher" not in [c.name for c in sbom.components]
    [kept] = [c for c in sbom.others if c.name == "Simple Launcher"]
    assert kept.locations == (f"{SITE}/pip/_vendor/distlib/t64.exe",)


def test_scoped_npm_folder() -> None:
    path = "/app/node_modules/@esbuild/linux-x64/bin/esbuild"
    assert "Simple Launcher" not in _judged(_cdx(_launcher(path)))


@pytest.mark.parametrize(
    "path",
    [
        "/usr/bin/t64.exe",  # in no package's folder
        f"{SITE}/t64.exe",  # in site-packages itself
        f"{SITE}/requests/t64.exe",  # a package the SBOM does not list
        f"{SITE}/yaml/t64.exe",  # PyYAML's folder is named unlike it: not matched, judged
        f"{SITE}/pip",  # the folder, not a file in it
        "/app/node_modules/@esbuild/t64.exe",  # a scope is not a package
        "/app/node_modules/pip/t64.exe",  # pip the npm package is not pip the wheel
    ],
)
def test_anything_else_stays_judged(path: str) -> None:
    assert "Simple Launcher" in _judged(_cdx(_launcher(path)))


def test_every_location_must_be_inside() -> None:
    launcher = _launcher(f"{SITE}/pip/t64.exe")
    launcher["properties"].append({"name": "syft:location:1:path", "value": "/usr/bin/t64.exe"})
    assert "Simple Launcher" in _judged(_cdx(launcher))


def test_a_component_with_a_purl_is_judged_wherever_it_was_found() -> None:
    launcher = _launcher(f"{SITE}/pip/t64.exe", purl="pkg:pypi/evil@1.0")
    assert "pkg:pypi/evil@1.0" in _judged(_cdx(launcher))


def test_spdx_source_info_as_syft_writes_it() -> None:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "packages": [
            {
                "name": "pip",
                "SPDXID": "SPDXRef-pip",
                "versionInfo": "24.0",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": "pkg:pypi/pip@24.0",
                    }
                ],
            },
            {
                "name": "Simple Launcher",
                "SPDXID": "SPDXRef-launcher",
                "versionInfo": "1.1.0.14",
                "sourceInfo": "acquired package info from the following paths: "
                f"{SITE}/pip/_vendor/distlib/t32.exe, {SITE}/pip/_vendor/distlib/w32.exe",
            },
            {
                "name": "cli-32",
                "SPDXID": "SPDXRef-cli",
                "sourceInfo": "acquired package info from the following paths: "
                f"{SITE}/pip/t.exe, /usr/bin/cli-32.exe",
            },
        ],
    }
    sbom = parse_sbom(json.dumps(doc).encode(), source="t")
    assert [c.name for c in sbom.components] == ["pip", "cli-32"]
    [launcher] = sbom.others
    assert len(launcher.locations) == 2
