"""The "real tooling" path: SBOMs written by cyclonedx-python-lib, read by our parser."""

from __future__ import annotations

import warnings

import pytest
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from sbomgate.sbom import Sbom, parse_sbom

SHA = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


def make_bom() -> Bom:
    bom = Bom()
    bom.metadata.component = Component(
        name="shop-api", version="3.0.0", type=ComponentType.APPLICATION, bom_ref="app"
    )
    requests = Component(
        name="requests",
        version="2.31.0",
        bom_ref="requests",
        purl=PackageURL.from_string("pkg:pypi/requests@2.31.0"),
        licenses=[DisjunctiveLicense(id="Apache-2.0")],
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=SHA)],
    )
    requests.components.add(
        Component(
            name="urllib3",
            version="2.0.7",
            bom_ref="urllib3",
            purl=PackageURL.from_string("pkg:pypi/urllib3@2.0.7"),
            licenses=[LicenseExpression("MIT OR Apache-2.0")],
        )
    )
    bom.components.add(requests)
    bom.components.add(
        Component(
            name="core",
            group="@angular",
            version="17.0.0",
            bom_ref="angular",
            purl=PackageURL(type="npm", namespace="@angular", name="core", version="17.0.0"),
            licenses=[DisjunctiveLicense(name="MIT License")],
        )
    )
    bom.components.add(
        Component(
            name="guava",
            group="com.google.guava",
            version="33.0.0-jre",
            bom_ref="guava",
            purl=PackageURL.from_string("pkg:maven/com.google.guava/guava@33.0.0-jre?type=jar"),
            licenses=[DisjunctiveLicense(id="Apache-2.0"), DisjunctiveLicense(id="MIT")],
        )
    )
    bom.components.add(Component(name="no-purl-blob", version="1", bom_ref="blob"))
    return bom


def serialise(bom: Bom, fmt: OutputFormat, version: SchemaVersion) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "dependency graph is incomplete": irrelevant here
        text: str = make_outputter(bom, fmt, version).output_as_string(indent=2)
    return text.encode()


def check(sbom: Sbom, spec: str) -> None:
    assert sbom.format == "cyclonedx"
    assert sbom.spec_version == spec
    assert sbom.subject is not None
    assert (sbom.subject.name, sbom.subject.version) == ("shop-api", "3.0.0")
    got = {c.bom_ref: c for c in sbom.components}
    assert set(got) == {"requests", "urllib3", "angular", "guava", "blob"}
    order = [c.bom_ref for c in sbom.components]
    assert order.index("urllib3") == order.index("requests") + 1  # nested follows its parent
    assert got["requests"].hashes == {"sha256": SHA.lower()}
    assert got["requests"].license == "Apache-2.0"
    assert got["requests"].format == "python"
    assert got["urllib3"].license == "MIT OR Apache-2.0"
    assert got["angular"].name == "@angular/core"
    assert got["angular"].purl == "pkg:npm/%40angular/core@17.0.0"
    assert got["angular"].license == "MIT"  # the name "MIT License"
    assert got["guava"].namespace == "com.google.guava"
    assert got["guava"].license == "Apache-2.0 AND MIT"
    assert got["blob"].format is None


@pytest.mark.parametrize(
    ("version", "spec"),
    [(SchemaVersion.V1_6, "1.6"), (SchemaVersion.V1_5, "1.5"), (SchemaVersion.V1_4, "1.4")],
)
@pytest.mark.parametrize("fmt", [OutputFormat.JSON, OutputFormat.XML])
def test_roundtrip(fmt: OutputFormat, version: SchemaVersion, spec: str) -> None:
    data = serialise(make_bom(), fmt, version)
    check(parse_sbom(data, source="lib"), spec)


def test_json_and_xml_give_the_same_components() -> None:
    bom = make_bom()
    from_json = parse_sbom(serialise(bom, OutputFormat.JSON, SchemaVersion.V1_6), source="j")
    from_xml = parse_sbom(serialise(bom, OutputFormat.XML, SchemaVersion.V1_6), source="x")
    assert from_json.components == from_xml.components
    assert from_json.subject == from_xml.subject
