"""Reading each supported format: detection, subject, flattening, names, formats, documents."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from sbomgate.sbom import Component, Sbom, format_for_purl_type, load_sbom_file, parse_sbom

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sbom"


def load(name: str) -> Sbom:
    return load_sbom_file(FIXTURES / name)


def by_name(sbom: Sbom) -> dict[str, Component]:
    return {c.name: c for c in sbom.components}


@pytest.mark.parametrize(
    ("fixture", "fmt", "spec", "count"),
    [
        ("cyclonedx-1.2.json", "cyclonedx", "1.2", 3),
        ("cyclonedx-1.4.json", "cyclonedx", "1.4", 4),
        ("cyclonedx-1.5.json", "cyclonedx", "1.5", 6),
        ("cyclonedx-1.6.json", "cyclonedx", "1.6", 8),
        ("cyclonedx-1.4.xml", "cyclonedx", "1.4", 3),
        ("cyclonedx-1.6.xml", "cyclonedx", "1.6", 4),
        ("spdx-2.2.json", "spdx", "2.2", 3),
        ("spdx-2.3.json", "spdx", "2.3", 3),
    ],
)
def test_fixture_formats(fixture: str, fmt: str, spec: str, count: int) -> None:
    sbom = load(fixture)
    assert sbom.source == str(FIXTURES / fixture)
    assert sbom.format == fmt
    assert sbom.spec_version == spec
    assert len(sbom.components) == count
    assert sbom.subject is not None
    assert sbom.document["bomFormat"] == "CycloneDX"


def test_detection_is_by_content_not_file_name() -> None:
    sbom = load("cyclonedx-json-content.xml")  # CycloneDX JSON in a file named .xml
    assert sbom.format == "cyclonedx"
    assert sbom.spec_version == "1.4"
    assert [c.name for c in sbom.components][:2] == ["@angular/core", "lodash"]


def test_leading_whitespace_and_utf8_bom_are_accepted() -> None:
    data = (FIXTURES / "cyclonedx-1.4.json").read_bytes()
    assert len(parse_sbom(b"\xef\xbb\xbf\n  " + data, source="x").components) == 4
    xml = (FIXTURES / "cyclonedx-1.6.xml").read_bytes()
    assert len(parse_sbom(b"\xef\xbb\xbf" + xml, source="x").components) == 4


def test_cyclonedx_json_document_is_the_parsed_dict() -> None:
    data = (FIXTURES / "cyclonedx-1.5.json").read_bytes()
    sbom = parse_sbom(data, source="x")
    assert sbom.document == orjson.loads(data)


def test_cyclonedx_subject_and_flattening_order() -> None:
    sbom = load("cyclonedx-1.5.json")
    assert sbom.subject is not None
    assert sbom.subject.name == "orders"
    assert sbom.subject.namespace == "com.example"
    # depth-first, document order
    assert [c.bom_ref for c in sbom.components] == [
        "spring-boot",
        "spring-web",
        "micrometer",
        "jackson",
        "logback",
        "x-net",
    ]


def test_subject_sub_components_are_packages_too() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {
            "component": {
                "type": "application",
                "name": "app",
                "components": [{"type": "library", "name": "inner", "purl": "pkg:npm/inner@1"}],
            }
        },
        "components": [{"type": "library", "name": "outer", "purl": "pkg:npm/outer@2"}],
    }
    sbom = parse_sbom(orjson.dumps(doc), source="x")
    assert [c.name for c in sbom.components] == ["inner", "outer"]


def test_no_subject_no_components() -> None:
    sbom = parse_sbom(b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}', source="x")
    assert sbom.subject is None
    assert sbom.components == ()


def test_names_follow_the_ecosystem() -> None:
    comps = by_name(load("cyclonedx-1.6.json"))
    gin = comps["github.com/gin-gonic/gin"]
    assert (gin.namespace, gin.format, gin.purl_type) == ("github.com/gin-gonic", "go", "golang")
    angular = by_name(load("cyclonedx-1.4.json"))["@angular/core"]
    assert angular.namespace == "@angular"
    assert angular.purl == "pkg:npm/%40angular/core@15.1.0"
    spring = by_name(load("cyclonedx-1.5.json"))["spring-boot-starter-web"]
    assert spring.namespace == "org.springframework.boot"
    assert spring.qualifiers == {"type": "jar"}
    # pypi names are canonicalised by the purl (Flask -> flask)
    assert "flask" in by_name(load("cyclonedx-1.2.json"))


def test_no_purl_keeps_document_name_and_format_none() -> None:
    thing = by_name(load("cyclonedx-1.2.json"))["vendored-thing"]
    assert (thing.purl, thing.purl_type, thing.format, thing.version) == (None, None, None, "0.1")


def test_purl_version_fills_a_missing_version() -> None:
    serde = by_name(load("cyclonedx-1.6.json"))["serde"]
    assert serde.version == "1.0.210"


def test_purl_is_canonicalised() -> None:
    comps = by_name(load("cyclonedx-1.6.json"))
    assert comps["libc6"].purl == (
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12"
    )
    assert comps["libc6"].version == "2.36-9+deb12u9"
    subject = load("cyclonedx-1.6.json").subject
    assert subject is not None
    assert subject.purl == (
        "pkg:oci/api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        "?repository_url=ghcr.io/example/api"
    )


@pytest.mark.parametrize(
    ("purl_type", "slug"),
    [
        ("pypi", "python"),
        ("npm", "npm"),
        ("maven", "maven"),
        ("golang", "go"),
        ("cargo", "cargo"),
        ("gem", "ruby"),
        ("nuget", "nuget"),
        ("deb", "deb"),
        ("rpm", "rpm"),
        ("apk", "alpine"),
        ("oci", "docker"),
        ("docker", "docker"),
        ("composer", "composer"),
        ("conda", "conda"),
        ("cran", "cran"),
        ("hex", "hex"),
        ("pub", "dart"),
        ("swift", "swift"),
        ("cocoapods", "cocoapods"),
        ("hackage", "hackage"),
        ("conan", "conan"),
        ("generic", "raw"),
        ("github", "github"),
        ("bitbucket", "bitbucket"),
        (None, None),
    ],
)
def test_format_slugs(purl_type: str | None, slug: str | None) -> None:
    assert format_for_purl_type(purl_type) == slug


def test_format_slug_on_components() -> None:
    comps = by_name(load("cyclonedx-1.6.json"))
    assert comps["libssl3"].format == "deb"
    assert comps["vendor.tar.gz"].format == "raw"
    assert comps["requests"].format == "python"
    assert by_name(load("cyclonedx-1.4.json"))["musl"].format == "alpine"


def test_cyclonedx_xml_matches_shape() -> None:
    sbom = load("cyclonedx-1.4.xml")
    assert sbom.subject is not None
    assert sbom.subject.name == "billing"
    comps = by_name(sbom)
    assert list(comps) == ["commons-lang3", "guava", "failureaccess"]
    lang = comps["commons-lang3"]
    assert lang.license == "Apache-2.0"
    assert lang.hashes == {
        "md5": "19fe50567358922bdad277959ea69545",
        "sha256": "d919d904486c037f8d193412da0c92e22a9fa24230b9d67a57855c5c31c7e94e",
    }
    assert comps["failureaccess"].license == "Apache-2.0"  # <expression>
    doc = sbom.document
    assert doc["specVersion"] == "1.4"
    assert doc["metadata"]["component"]["name"] == "billing"
    guava = doc["components"][1]
    assert guava["group"] == "com.google.guava"
    assert "hashes" not in guava
    assert guava["licenses"][0]["license"]["name"] == "The Apache Software License, Version 2.0"
    assert guava["components"][0]["licenses"] == [{"expression": "Apache-2.0"}]
    assert doc["components"][0]["hashes"][1] == {
        "alg": "SHA-256",
        "content": "D919D904486C037F8D193412DA0C92E22A9FA24230B9D67A57855C5C31C7E94E",
    }


def test_cyclonedx_1_6_xml() -> None:
    sbom = load("cyclonedx-1.6.xml")
    comps = by_name(sbom)
    assert comps["@types/node"].namespace == "@types"
    assert comps["github.com/spf13/pflag"].license == (
        "BSD-3-Clause AND LicenseRef-Some-Custom-Terms"
    )
    zlib = comps["zlib1g"]
    assert zlib.qualifiers == {"arch": "amd64", "distro": "debian-12"}
    assert zlib.version == "1:1.2.13.dfsg-1"
    assert sbom.document["components"][2]["properties"] == [
        {"name": "syft:package:type", "value": "deb"}
    ]


def test_spdx_2_2_document_describes_and_package_manager_dash() -> None:
    sbom = load("spdx-2.2.json")
    assert sbom.subject is not None
    assert sbom.subject.bom_ref == "SPDXRef-Package-service"
    assert sbom.subject.name == "python-service"
    comps = by_name(sbom)
    assert list(comps) == ["pyyaml", "urllib3", "bundled-blob"]
    pyyaml = comps["pyyaml"]
    assert pyyaml.purl == "pkg:pypi/pyyaml@6.0"
    assert pyyaml.license == "MIT"  # concluded NOASSERTION -> declared
    assert pyyaml.hashes == {
        "sha256": "4db7c7aef92d3a5d0d2a4ab2f5f1c3bde46c2ae7d4a5b9f83e8d0e5b7a5c1e3f"
    }
    assert comps["urllib3"].license == "MIT"  # concluded `mit` preferred, normalised
    assert comps["urllib3"].raw_license == "mit"
    assert comps["bundled-blob"].license is None
    assert comps["bundled-blob"].format is None


def test_spdx_2_3_describes_relationship_and_package_manager_underscore() -> None:
    sbom = load("spdx-2.3.json")
    assert sbom.subject is not None
    assert sbom.subject.bom_ref == "SPDXRef-DocumentRoot-Image-node-app"
    assert sbom.subject.format == "docker"
    comps = by_name(sbom)
    assert list(comps) == ["express", "@babel/core", "bash"]
    assert comps["express"].purl == "pkg:npm/express@4.19.2"
    assert comps["@babel/core"].license == "MIT AND (Apache-2.0 OR BSD-2-Clause)"
    assert comps["bash"].license == "GPL-3.0-or-later AND LicenseRef-bash-exception"
    assert comps["bash"].purl == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"


def test_spdx_described_by_relationship() -> None:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "packages": [
            {"SPDXID": "SPDXRef-a", "name": "a"},
            {"SPDXID": "SPDXRef-b", "name": "b"},
        ],
        "relationships": [
            {
                "spdxElementId": "SPDXRef-b",
                "relationshipType": "DESCRIBED_BY",
                "relatedSpdxElement": "SPDXRef-DOCUMENT",
            }
        ],
    }
    sbom = parse_sbom(orjson.dumps(doc), source="x")
    assert sbom.subject is not None
    assert sbom.subject.name == "b"
    assert [c.name for c in sbom.components] == ["a"]


def test_spdx_converted_document_shape() -> None:
    doc = load("spdx-2.3.json").document
    assert doc["bomFormat"] == "CycloneDX"
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["type"] == "container"
    assert doc["metadata"]["component"]["name"] == "node-app"
    express, babel, bash = doc["components"]
    assert express == {
        "type": "library",
        "name": "express",
        "bom-ref": "SPDXRef-Package-npm-express-1",
        "version": "4.19.2",
        "purl": "pkg:npm/express@4.19.2",
        "licenses": [{"license": {"id": "MIT"}}],
    }
    assert babel["licenses"] == [{"expression": "MIT AND (Apache-2.0 OR BSD-2-Clause)"}]
    assert babel["hashes"] == [{"alg": "SHA-512", "content": "abcdef0123"}]
    assert bash["licenses"] == [{"expression": "GPL-3.0-or-later AND LicenseRef-bash-exception"}]
    spdx22 = load("spdx-2.2.json").document
    urllib3 = spdx22["components"][1]
    assert urllib3["hashes"] == [
        {"alg": "SHA-1", "content": "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"alg": "MD5", "content": "d41d8cd98f00b204e9800998ecf8427e"},
    ]
    orjson.dumps(doc)  # JSON-serialisable for the policy engine


def test_components_are_json_serialisable_for_policy_input() -> None:
    sbom = load("cyclonedx-1.6.json")
    for c in sbom.components:
        orjson.dumps(
            {"qualifiers": c.qualifiers, "hashes": c.hashes, "name": c.name, "purl": c.purl}
        )
