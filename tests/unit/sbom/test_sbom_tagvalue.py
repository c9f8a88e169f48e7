"""SPDX tag-value (syft's `spdx-tag-value`) reads as the same document in SPDX JSON does.
syft's own output of both is compared in tests/integration/sbom/test_real_sboms.py."""

from __future__ import annotations

import orjson
import pytest

from sbomgate.errors import SbomError
from sbomgate.sbom import OperatingSystem, parse_sbom

TAG_VALUE = """SPDXVersion: SPDX-2.3
DataLicense: CC0-1.0
SPDXID: SPDXRef-DOCUMENT
DocumentName: rootfs
DocumentNamespace: https://anchore.com/syft/dir/rootfs-1
Creator: Tool: syft-1.57.1
Created: 2026-12-02T09:00:00Z

##### Package: debian

PackageName: debian
SPDXID: SPDXRef-OperatingSystem-debian
PackageVersion: 12
PrimaryPackagePurpose: OPERATING-SYSTEM
PackageDescription: <text>Debian GNU/Linux 12 (bookworm)
second line</text>

##### Package: bash

PackageName: bash
SPDXID: SPDXRef-Package-deb-bash
PackageVersion: 5.2.15-2+b7
PackageChecksum: SHA256: ABCDEF
PackageLicenseConcluded: NOASSERTION
PackageLicenseDeclared: GPL-3.0-or-later
ExternalRef: SECURITY cpe23Type cpe:2.3:a:bash:bash:5.2.15-2\\+b7:*:*:*:*:*:*:*
ExternalRef: PACKAGE-MANAGER purl pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12

##### Relationships

Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-DocumentRoot-Directory-rootfs
"""


def test_tag_value_reads_as_its_json_does() -> None:
    sbom = parse_sbom(TAG_VALUE.encode(), source="syft.spdx")
    assert (sbom.format, sbom.spec_version) == ("spdx", "2.3")
    [bash] = sbom.components
    assert bash.purl == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"
    assert (bash.version, bash.license, bash.hashes) == (
        "5.2.15-2+b7",
        "GPL-3.0-or-later",
        {"sha256": "abcdef"},
    )
    assert sbom.operating_system == OperatingSystem(name="debian", version="12")
    as_json = {
        "spdxVersion": "SPDX-2.3",
        "name": "rootfs",
        "documentNamespace": "https://anchore.com/syft/dir/rootfs-1",
        "creationInfo": {"created": "2026-12-02T09:00:00Z"},
        "packages": [
            {"name": "debian", "SPDXID": "SPDXRef-OperatingSystem-debian", "versionInfo": "12",
             "primaryPackagePurpose": "OPERATING-SYSTEM"},
            {"name": "bash", "SPDXID": "SPDXRef-Package-deb-bash", "versionInfo": "5.2.15-2+b7",
             "checksums": [{"algorithm": "SHA256", "checksumValue": "ABCDEF"}],
             "licenseConcluded": "NOASSERTION", "licenseDeclared": "GPL-3.0-or-later",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": bash.purl}]},
        ],
    }  # fmt: skip
    from_json = parse_sbom(orjson.dumps(as_json), source="syft.spdx.json")
    assert from_json.components == sbom.components
    assert from_json.document == sbom.document


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SPDXVersion: SPDX-2.3\nnot a tag line\n", "line 2: expected `Tag: value`"),
        ("SPDXVersion: SPDX-2.3\nPackageName: a\nPackageDescription: <text>open\n", "never closed"),
        (
            "SPDXVersion: SPDX-2.3\nPackageName: a\nExternalRef: PACKAGE-MANAGER purl\n",
            "ExternalRef",
        ),
        ("SPDXVersion: SPDX-2.1\n", "SPDX version SPDX-2.1 is not supported"),
        (
            "SPDXVersion: SPDX-2.3\nPackageName: a\nExternalRef: PACKAGE-MANAGER purl pkg:\n",
            "invalid purl",
        ),
    ],
)
def test_bad_tag_value_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(SbomError) as caught:
        parse_sbom(text.encode(), source="t.spdx")
    assert message in str(caught.value)
