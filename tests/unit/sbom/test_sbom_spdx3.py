"""SPDX 3.0 JSON-LD: packages, purposes, hashes and licenses as the specification writes them
(license relationships) and as cdxgen writes them (CycloneDX licenses in an extension).
cdxgen's own output is read in tests/integration/sbom/test_real_sboms.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate.errors import SbomError
from sbomgate.sbom import OperatingSystem, parse_sbom

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
DOC = "urn:test#"


def graph(*elements: dict[str, Any], spec: str = "3.0.1") -> bytes:
    return orjson.dumps(
        {
            "@context": CONTEXT,
            "@graph": [
                {"type": "CreationInfo", "@id": "_:ci", "specVersion": spec, "created": "x"},
                {"type": "SpdxDocument", "spdxId": DOC + "doc", "rootElement": [DOC + "app"]},
                *elements,
            ],
        }
    )


def package(ident: str, name: str, version: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "software_Package",
        "spdxId": DOC + ident,
        "name": name,
        "software_packageVersion": version,
        **more,
    }


def licensed(source: str, kind: str, target: str) -> dict[str, Any]:
    return {
        "type": "Relationship",
        "spdxId": f"{DOC}rel-{source}-{kind}",
        "from": DOC + source,
        "to": [DOC + target],
        "relationshipType": kind,
    }


def test_packages_purposes_hashes_and_license_relationships() -> None:
    data = graph(
        package("app", "shop", "1.0", software_packageUrl="pkg:pypi/shop@1.0"),
        package(
            "req",
            "requests",
            "2.32.3",
            externalIdentifier=[
                {"type": "ExternalIdentifier", "externalIdentifierType": "packageUrl",
                 "identifier": "pkg:pypi/requests@2.32.3"}
            ],
            verifiedUsing=[{"type": "Hash", "algorithm": "sha256", "hashValue": "AB" * 32}],
            software_primaryPurpose="library",
        ),
        package("os", "debian", "12", software_primaryPurpose="operatingSystem"),
        package("cfg", "settings.json", "1", software_primaryPurpose="data"),
        {"type": "simplelicensing_LicenseExpression", "spdxId": DOC + "lic-declared",
         "simplelicensing_licenseExpression": "Apache-2.0 OR MIT"},
        {"type": "expandedlicensing_ListedLicense",
         "spdxId": "https://spdx.org/licenses/Apache-2.0"},
        licensed("req", "hasDeclaredLicense", "lic-declared"),
        {"type": "Relationship", "spdxId": DOC + "rel-concluded", "from": DOC + "req",
         "to": ["https://spdx.org/licenses/Apache-2.0"], "relationshipType": "hasConcludedLicense"},
    )  # fmt: skip
    sbom = parse_sbom(data, source="spdx3")
    assert (sbom.format, sbom.spec_version) == ("spdx", "3.0.1")
    assert sbom.subject is not None and sbom.subject.purl == "pkg:pypi/shop@1.0"
    [requests] = sbom.components
    assert requests.purl == "pkg:pypi/requests@2.32.3"
    assert requests.license == "Apache-2.0"  # the concluded license wins over the declared
    assert requests.hashes == {"sha256": "ab" * 32}
    assert sorted(c.type or "" for c in sbom.others) == ["data", "operating-system"]
    assert sbom.operating_system == OperatingSystem(name="debian", version="12")
    # policies see it as CycloneDX, as SPDX 2 is converted
    assert [c["purl"] for c in sbom.document["components"] if "purl" in c] == [requests.purl]


def test_cdxgen_licenses_in_its_extension_are_read() -> None:
    licenses = [{"license": {"id": "MIT"}}, {"license": {"name": "Zlib License"}}]
    extension = [
        {
            "type": "extension_CdxPropertiesExtension",
            "extension_cdxProperty": [
                {"type": "extension_CdxPropertyEntry", "extension_cdxPropName": "licenses",
                 "extension_cdxPropValue": orjson.dumps(licenses).decode()}
            ],
        }
    ]  # fmt: skip
    data = graph(
        package("pako", "pako", "1.0.11", software_packageUrl="pkg:npm/pako@1.0.11",
                extension=extension),
    )  # fmt: skip
    [pako] = parse_sbom(data, source="cdxgen").components
    assert pako.license == "MIT AND Zlib"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (graph(spec="2.3"), "SPDX version 2.3 is not supported (3.0.0 and 3.0.1 are)"),
        ({"@context": CONTEXT, "@graph": {}}, "@graph: expected an array, got an object"),
        (
            {"@context": CONTEXT, "@graph": [{"type": "software_Package", "name": "x"}]},
            "SPDX 3 document has no CreationInfo with a specVersion",
        ),
        (
            graph(package("a", "a", "1", software_packageUrl="pkg:")),
            "@graph[2].software_packageUrl: invalid purl",
        ),
    ],
)
def test_malformed_documents_are_refused_with_where(document: Any, message: str) -> None:
    data = document if isinstance(document, bytes) else orjson.dumps(document)
    with pytest.raises(SbomError) as caught:
        parse_sbom(data, source="spdx3")
    assert message in str(caught.value)
