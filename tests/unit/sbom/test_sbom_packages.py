"""What an SBOM lists that is not a package (files, data, cryptographic assets, the operating
system) is kept out of per-package evaluation; the operating system names the distribution.
The same on real tools' output: tests/integration/sbom/test_real_sboms.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate.sbom import OperatingSystem, is_package, parse_sbom
from sbomgate.sbom.purl import parse_purl


def cyclonedx(spec: str, components: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, "components": components}
    )


# As syft 1.57 writes a Debian root filesystem: the OS, a deb, a file.
SYFT_LIKE = [
    {
        "bom-ref": "os:debian@12",
        "type": "operating-system",
        "name": "debian",
        "version": "12",
        "description": "Debian GNU/Linux 12 (bookworm)",
    },
    {
        "type": "library",
        "name": "bash",
        "version": "5.2.15-2+b7",
        "purl": "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
    },
    {"type": "file", "name": "/usr/bin/bash", "hashes": [{"alg": "SHA-1", "content": "ab" * 20}]},
    {"type": "data", "name": "config.json"},
    {"type": "cryptographic-asset", "name": "RSA-2048"},
]


@pytest.mark.parametrize("spec", ["1.2", "1.5", "1.6", "1.7"])
def test_only_packages_are_components_and_the_os_is_read(spec: str) -> None:
    sbom = parse_sbom(cyclonedx(spec, SYFT_LIKE), source="syft")
    assert sbom.spec_version == spec
    assert [c.name for c in sbom.components] == ["bash"]
    assert [c.type for c in sbom.others] == [
        "operating-system",
        "file",
        "data",
        "cryptographic-asset",
    ]
    assert sbom.operating_system == OperatingSystem(name="debian", version="12")
    assert sbom.operating_system.distro == "debian-12"
    # policies still see every entry of the document
    assert len(sbom.document["components"]) == len(SYFT_LIKE)


def test_a_non_package_type_with_a_purl_is_still_judged_as_a_package() -> None:
    # A purl is a claim to be that package: a type cannot take it out of judgement.
    sbom = parse_sbom(
        cyclonedx("1.7", [{"type": "file", "name": "ctx", "purl": "pkg:pypi/ctx@0.2.2"}]),
        source="hostile",
    )
    assert [c.purl for c in sbom.components] == ["pkg:pypi/ctx@0.2.2"]
    assert sbom.others == ()


def test_a_file_with_a_versionless_generic_purl_is_not_a_package() -> None:
    # cdxgen gives every file of a root filesystem a pkg:generic purl with no version
    file = {"type": "file", "name": "addpart", "purl": "pkg:generic/addpart"}
    vendored = {"type": "file", "name": "vendor.tar.gz", "purl": "pkg:generic/vendor.tar.gz@1"}
    sbom = parse_sbom(cyclonedx("1.7", [file, vendored]), source="cdxgen")
    assert [c.name for c in sbom.components] == ["vendor.tar.gz"]
    assert [c.name for c in sbom.others] == ["addpart"]


def test_no_type_and_unknown_types_are_packages() -> None:
    sbom = parse_sbom(
        cyclonedx("1.6", [{"name": "a"}, {"type": "something-new", "name": "b"}]), source="x"
    )
    assert [c.name for c in sbom.components] == ["a", "b"]
    assert all(is_package(c) for c in sbom.components)


def test_cyclonedx_1_7_xml_is_read() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.7" version="1">
  <components>
    <component type="operating-system"><name>alpine</name><version>3.20.3</version></component>
    <component type="library"><name>musl</name><version>1.2.5-r0</version>
      <purl>pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&amp;distro=3.20.3</purl></component>
    <component type="file"><name>/lib/ld-musl-x86_64.so.1</name></component>
  </components>
</bom>"""
    sbom = parse_sbom(xml, source="syft.xml")
    assert sbom.spec_version == "1.7"
    assert [c.name for c in sbom.components] == ["musl"]
    assert sbom.operating_system == OperatingSystem(name="alpine", version="3.20.3")


def test_spdx_purposes_other_than_packages_are_kept_apart() -> None:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "rootfs",
        "packages": [
            {
                "SPDXID": "SPDXRef-OperatingSystem-debian",
                "name": "debian",
                "versionInfo": "12",
                "primaryPackagePurpose": "OPERATING-SYSTEM",
            },
            {
                "SPDXID": "SPDXRef-Package-deb-bash",
                "name": "bash",
                "versionInfo": "5.2.15-2+b7",
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": "pkg:deb/debian/bash@5.2.15-2%2Bb7?distro=debian-12",
                    }
                ],
            },
        ],
    }
    sbom = parse_sbom(orjson.dumps(doc), source="syft.spdx.json")
    assert [c.name for c in sbom.components] == ["bash"]
    assert sbom.operating_system == OperatingSystem(name="debian", version="12")


@pytest.mark.parametrize(
    ("written", "name", "namespace"),
    [
        ("pkg:npm/gar%2Fpromise-retry@1.0.0", "gar/promise-retry", None),
        ("pkg:npm/%40scope/a%2Fb@1", "a/b", "@scope"),
        ("pkg:generic/a%2Fb%2Fc@1", "a/b/c", None),
    ],
)
def test_a_slash_inside_a_name_stays_encoded(
    written: str, name: str, namespace: str | None
) -> None:
    parsed = parse_purl(written)
    assert (parsed.canonical, parsed.name, parsed.namespace) == (written, name, namespace)
    assert parse_purl(parsed.canonical) == parsed  # reading it again gives the same package
    sbom = parse_sbom(
        cyclonedx("1.7", [{"type": "library", "name": "x", "purl": written}]), source="s"
    )
    [component] = sbom.components
    assert component.purl == written and component.namespace == namespace


def test_an_os_package_without_a_distro_belongs_to_the_sboms_operating_system() -> None:
    components = [
        {"type": "operating-system", "name": "debian", "version": "12"},
        {"type": "library", "name": "bash", "purl": "pkg:deb/debian/bash@5.2.15-2%2Bb7"},
        {"type": "library", "name": "zlib1g", "purl": "pkg:deb/debian/zlib1g@1?distro=debian-11"},
        {"type": "library", "name": "requests", "purl": "pkg:pypi/requests@2.32.3"},
    ]
    sbom = parse_sbom(cyclonedx("1.7", components), source="s")
    by_name = {c.name: c for c in sbom.components}
    assert by_name["bash"].qualifiers == {"distro": "debian-12"}
    assert by_name["bash"].purl == "pkg:deb/debian/bash@5.2.15-2%2Bb7"  # as written
    assert by_name["zlib1g"].qualifiers == {"distro": "debian-11"}  # the purl's own wins
    assert by_name["requests"].qualifiers == {}
