"""Every package an SBOM names is judged: each purl of an SPDX package (not only the first),
and the components of a CycloneDX pedigree (ancestors, descendants, variants), in JSON and
XML, within the depth and count limits."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType, Pedigree
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from sbomgate.errors import SbomError
from sbomgate.policy import PolicyEngine, load_policy
from sbomgate.sbom import Sbom, parse_sbom

ROOT = Path(__file__).resolve().parents[3]

DENY_EVIL = """package cloudsmith

import rego.v1

default match := false

match if count(reason) > 0

reason contains msg if {
	input.v0.package.name == "evil"
	msg := sprintf("%s is evil", [input.v0.package.purl])
}
"""


def denied(sbom: Sbom, policy: str = "evil") -> list[str]:
    if policy == "evil":
        policies = [load_policy("evil.rego", DENY_EVIL)]
    else:
        path = ROOT / "policies" / f"{policy}.rego"
        policies = [load_policy(str(path), path.read_text())]
    verdict = PolicyEngine(policies).evaluate_sbom(sbom)
    assert verdict.errors == ()
    return sorted(f.purl or f.name or "" for f in verdict.violations)


# --- SPDX: every purl of a package --------------------------------------------------------


def purl_ref(locator: str, category: str = "PACKAGE-MANAGER") -> dict[str, str]:
    return {"referenceCategory": category, "referenceType": "purl", "referenceLocator": locator}


def spdx(*packages: dict[str, Any], describes: str | None = None) -> bytes:
    doc: dict[str, Any] = {"spdxVersion": "SPDX-2.3", "packages": list(packages)}
    if describes is not None:
        doc["documentDescribes"] = [describes]
    return orjson.dumps(doc)


def package(spdx_id: str, *purls: str, **extra: Any) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id,
        "name": extra.pop("name", "requests"),
        "versionInfo": extra.pop("versionInfo", "2.31.0"),
        "externalRefs": [purl_ref(p) for p in purls],
        **extra,
    }


@pytest.mark.parametrize(
    "purls",
    [
        ["pkg:pypi/requests@2.31.0", "pkg:pypi/evil@1.0"],
        ["pkg:pypi/evil@1.0", "pkg:pypi/requests@2.31.0"],
        ["pkg:pypi/requests@2.31.0", "pkg:pypi/urllib3@2.0", "pkg:npm/evil@1.0"],
        ["pkg:npm/left-pad@1.3.0", "pkg:cargo/evil@1.0.0"],
    ],
)
def test_every_purl_is_a_judged_package(purls: list[str]) -> None:
    sbom = parse_sbom(spdx(package("SPDXRef-p", *purls)), source="t")
    assert [c.purl for c in sbom.components] == purls
    assert denied(sbom) == [p for p in purls if "/evil@" in p]


def test_each_purl_keeps_the_package_facts() -> None:
    pkg = package(
        "SPDXRef-p",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/evil@1.0",
        licenseDeclared="GPLv3",
        checksums=[{"algorithm": "SHA256", "checksumValue": "AB"}],
    )
    first, second = parse_sbom(spdx(pkg), source="t").components
    for c in (first, second):
        assert (c.license, c.raw_license, c.hashes, c.bom_ref) == (
            "GPL-3.0-only",
            "GPLv3",
            {"sha256": "ab"},
            "SPDXRef-p",
        )
    assert (first.name, first.version) == ("requests", "2.31.0")
    # The package's versionInfo wins over each purl's (as for a single purl).
    assert (second.name, second.version, second.format) == ("evil", "2.31.0", "python")


def test_license_policy_judges_every_purl() -> None:
    pkg = package("SPDXRef-p", "pkg:pypi/a@1.0", "pkg:npm/b@1.0", licenseConcluded="AGPL-3.0-only")
    sbom = parse_sbom(spdx(pkg), source="t")
    assert denied(sbom, "license") == ["pkg:npm/b@1.0", "pkg:pypi/a@1.0"]


def test_the_same_purl_twice_is_one_package() -> None:
    pkg = package(
        "SPDXRef-p",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/Requests@2.31.0",
        "pkg:pypi/requests@2.31.0",
    )
    (component,) = parse_sbom(spdx(pkg), source="t").components
    assert component.purl == "pkg:pypi/requests@2.31.0"


def test_only_package_manager_purls_count() -> None:
    pkg = package("SPDXRef-p", "pkg:pypi/requests@2.31.0")
    pkg["externalRefs"] += [
        purl_ref("pkg:pypi/evil@1.0", "SECURITY"),
        {
            "referenceCategory": "PACKAGE_MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:npm/x@1",
        },
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "maven-central",
            "referenceLocator": "g:a:1",
        },
    ]
    sbom = parse_sbom(spdx(pkg), source="t")
    assert [c.purl for c in sbom.components] == ["pkg:pypi/requests@2.31.0", "pkg:npm/x@1"]


def test_a_bad_second_purl_is_an_error_naming_it() -> None:
    pkg = package("SPDXRef-p", "pkg:pypi/requests@2.31.0", "pkg:")
    with pytest.raises(SbomError, match=r"packages\[0\]\.externalRefs\[1\]\.referenceLocator"):
        parse_sbom(spdx(pkg), source="t")


def test_the_described_package_s_other_purls_are_judged() -> None:
    root = package("SPDXRef-root", "pkg:oci/app@sha256%3Aab", "pkg:pypi/evil@1.0", name="app")
    dep = package("SPDXRef-dep", "pkg:pypi/requests@2.31.0")
    sbom = parse_sbom(spdx(root, dep, describes="SPDXRef-root"), source="t")
    assert sbom.subject is not None and sbom.subject.purl == "pkg:oci/app@sha256:ab"
    assert [c.purl for c in sbom.components] == ["pkg:pypi/evil@1.0", "pkg:pypi/requests@2.31.0"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]


def test_every_purl_counts_against_the_component_limit() -> None:
    pkgs = [package(f"SPDXRef-{i}", *(f"pkg:pypi/p{i}-{j}@1" for j in range(3))) for i in range(2)]
    assert len(parse_sbom(spdx(*pkgs), source="t", max_components=6).components) == 6
    with pytest.raises(SbomError, match="more than 5 components"):
        parse_sbom(spdx(*pkgs), source="t", max_components=5)


def test_converted_document_lists_every_purl() -> None:
    sbom = parse_sbom(spdx(package("SPDXRef-p", "pkg:pypi/a@1", "pkg:pypi/b@1")), source="t")
    assert [c["purl"] for c in sbom.document["components"]] == ["pkg:pypi/a@1", "pkg:pypi/b@1"]


# --- CycloneDX: pedigree ancestors, descendants and variants -------------------------------


def comp(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "library", "name": name, "purl": f"pkg:pypi/{name}@1.0", **extra}


def cdx(components: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components, **extra}
    )


@pytest.mark.parametrize("key", ["ancestors", "descendants", "variants"])
def test_pedigree_components_are_judged(key: str) -> None:
    doc = cdx([comp("fork", pedigree={key: [comp("evil")]})])
    sbom = parse_sbom(doc, source="t")
    assert [c.name for c in sbom.components] == ["fork", "evil"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]


def test_pedigree_is_walked_all_the_way_down() -> None:
    doc = cdx(
        [
            comp(
                "a",
                components=[comp("a-child")],
                pedigree={
                    "ancestors": [
                        comp(
                            "upstream",
                            components=[comp("upstream-child")],
                            pedigree={"variants": [comp("evil")]},
                        )
                    ],
                    "descendants": [comp("downstream")],
                    "commits": [{"uid": "abc"}],
                    "patches": [{"type": "backport"}],
                    "notes": "forked",
                },
            ),
            comp("b"),
        ]
    )
    sbom = parse_sbom(doc, source="t")
    assert [c.name for c in sbom.components] == [
        "a",
        "a-child",
        "upstream",
        "upstream-child",
        "evil",
        "downstream",
        "b",
    ]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]


def test_subject_pedigree_is_walked() -> None:
    main = {"type": "application", "name": "app", "pedigree": {"ancestors": [comp("evil")]}}
    sbom = parse_sbom(cdx([comp("ok")], metadata={"component": main}), source="t")
    assert [c.name for c in sbom.components] == ["evil", "ok"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]


def _chain(depth: int) -> dict[str, Any]:
    node = comp(f"c{depth}")
    for level in range(depth - 1, 0, -1):
        node = comp(f"c{level}", pedigree={"ancestors": [node]})
    return node


def test_pedigree_depth_is_limited() -> None:
    assert len(parse_sbom(cdx([_chain(4)]), source="t", max_depth=4).components) == 4
    with pytest.raises(SbomError, match=r"pedigree\.ancestors: components nested deeper than 3"):
        parse_sbom(cdx([_chain(4)]), source="t", max_depth=3)


def test_pedigree_counts_against_the_component_limit() -> None:
    doc = cdx([comp("a", pedigree={"variants": [comp(f"v{i}") for i in range(5)]})])
    assert len(parse_sbom(doc, source="t", max_components=6).components) == 6
    with pytest.raises(SbomError, match="more than 5 components"):
        parse_sbom(doc, source="t", max_components=5)


@pytest.mark.parametrize(
    ("pedigree", "message"),
    [
        ([], r"components\[0\]\.pedigree: expected an object, got an array"),
        ("x", r"components\[0\]\.pedigree: expected an object, got a string"),
        ({"ancestors": {}}, r"components\[0\]\.pedigree\.ancestors: expected an array"),
        ({"variants": [5]}, r"components\[0\]\.pedigree\.variants\[0\]: expected an object"),
        ({"descendants": [{"type": "library"}]}, r"neither a name nor a purl"),
    ],
)
def test_malformed_pedigree_is_an_error(pedigree: Any, message: str) -> None:
    with pytest.raises(SbomError, match=message):
        parse_sbom(cdx([comp("a", pedigree=pedigree)]), source="t")


# --- the same in XML ---------------------------------------------------------------------------


def xml_comp(name: str, inner: str = "") -> str:
    return (
        f'<component type="library"><name>{name}</name><version>1.0</version>'
        f"<purl>pkg:pypi/{name}@1.0</purl>{inner}</component>"
    )


def xml(components: str, metadata: str = "") -> bytes:
    return (
        f'<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1">{metadata}'
        f"<components>{components}</components></bom>"
    ).encode()


@pytest.mark.parametrize("key", ["ancestors", "descendants", "variants"])
def test_xml_pedigree_components_are_judged(key: str) -> None:
    doc = xml(xml_comp("fork", f"<pedigree><{key}>{xml_comp('evil')}</{key}></pedigree>"))
    sbom = parse_sbom(doc, source="t")
    assert [c.name for c in sbom.components] == ["fork", "evil"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]
    assert sbom.document["components"][0]["pedigree"][key][0]["name"] == "evil"


def test_xml_pedigree_nested_and_in_metadata() -> None:
    upstream = xml_comp(
        "upstream",
        "<components>" + xml_comp("upstream-child") + "</components>"
        "<pedigree><variants>" + xml_comp("evil") + "</variants>"
        "<commits><commit><uid>abc</uid></commit></commits><notes>n</notes></pedigree>",
    )
    main = (
        '<metadata><component type="application"><name>app</name>'
        f"<pedigree><ancestors>{xml_comp('base')}</ancestors></pedigree></component></metadata>"
    )
    doc = xml(xml_comp("a", f"<pedigree><ancestors>{upstream}</ancestors></pedigree>"), main)
    sbom = parse_sbom(doc, source="t")
    assert [c.name for c in sbom.components] == ["base", "a", "upstream", "upstream-child", "evil"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]


def test_xml_pedigree_depth_is_limited() -> None:
    inner = xml_comp("c4")
    for level in range(3, 0, -1):
        inner = xml_comp(f"c{level}", f"<pedigree><ancestors>{inner}</ancestors></pedigree>")
    assert len(parse_sbom(xml(inner), source="t", max_depth=4).components) == 4
    with pytest.raises(SbomError, match=r"pedigree\.ancestors: components nested deeper than 3"):
        parse_sbom(xml(inner), source="t", max_depth=3)


def _lib_bom() -> Bom:
    def lib(name: str, **kw: Any) -> CdxComponent:
        return CdxComponent(
            name=name,
            version="1.0",
            bom_ref=name,
            purl=PackageURL(type="pypi", name=name, version="1.0"),
            type=ComponentType.LIBRARY,
            **kw,
        )

    bom = Bom()
    bom.components.add(
        lib(
            "fork",
            pedigree=Pedigree(
                ancestors=[lib("upstream")], descendants=[lib("child")], variants=[lib("evil")]
            ),
        )
    )
    return bom


@pytest.mark.parametrize("fmt", [OutputFormat.JSON, OutputFormat.XML])
def test_pedigree_as_cyclonedx_python_lib_writes_it(fmt: OutputFormat) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = make_outputter(_lib_bom(), fmt, SchemaVersion.V1_6).output_as_string()
    sbom = parse_sbom(text.encode(), source="lib")
    assert sorted(c.name for c in sbom.components) == ["child", "evil", "fork", "upstream"]
    assert denied(sbom) == ["pkg:pypi/evil@1.0"]
