"""Fuzz target: CycloneDX XML SBOMs (parse_sbom, defusedxml underneath).

Modes (first byte): 0 raw bytes; 1 XML written from an edited CycloneDX fixture (namespace,
attributes, nesting, encoding and one raw insertion chosen by the fuzzer). Every input parses
or raises SbomError: no entity is ever expanded, no XML error escapes as such.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]
import fuzzlib

with atheris.instrument_imports(
    include=["sbomgate", "packageurl", "license_expression", "defusedxml"]
):
    import sbomgate.sbom  # noqa: F401  (instrumented before sbomlib imports it)

import sbomlib

TEMPLATES = sbomlib.json_templates("cyclonedx-*.json")
MODES = 2


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        sbomlib.check_sbom(data[1:])
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    document = fuzzlib.mutate(fdp, fdp.PickValueInList(TEMPLATES), sbomlib.VOCABULARY)
    sbomlib.check_sbom(sbomlib.cyclonedx_xml(fdp, document, sbomlib.VOCABULARY))


def seeds() -> list[bytes]:
    raw = [fuzzlib.raw_seed(d) for d in fuzzlib.fixture_bytes("*.xml")]
    structured = [bytes([1]) + bytes(range(i, i + 64)) for i in (0, 97, 180)]
    return raw + structured + fuzzlib.committed_seeds("cyclonedx_xml")


TOKENS = [
    *sbomlib.VOCABULARY,
    "<bom", "</bom>", 'xmlns="http://cyclonedx.org/schema/bom/1.6"', "<components>",
    "<component", "</component>", "<metadata>", "<hashes>", '<hash alg="SHA-256">', "<licenses>",
    "<expression>", "<!DOCTYPE", "<!ENTITY", "SYSTEM", "<?xml", 'encoding="', "<![CDATA[",
    "]]>", "&amp;", "&#10;", "&#x0;", 'version="', 'serialNumber="', "xmlns:", "rdf:RDF",
]  # fmt: skip

if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=TOKENS)
