"""Fuzz target: CycloneDX JSON SBOMs (parse_sbom on bytes, parse_sbom_document on a decoded
document, as an attestation's predicate arrives).

Modes (first byte): 0 raw bytes; 1 a fixture edited at fuzzer-chosen paths; 2 any JSON built
from the vocabulary. Every input parses or raises SbomError.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]
import fuzzlib

with atheris.instrument_imports(include=["sbomgate", "packageurl", "license_expression"]):
    import sbomgate.sbom  # noqa: F401  (instrumented before sbomlib imports it)

import sbomlib

TEMPLATES = sbomlib.json_templates("cyclonedx-*.json")
MODES = 3


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        sbomlib.check_sbom(data[1:])
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == 1:
        template = fdp.PickValueInList(TEMPLATES)
        document = fuzzlib.mutate(fdp, template, sbomlib.VOCABULARY)
    else:
        document = {
            "bomFormat": "CycloneDX",
            "specVersion": fdp.PickValueInList(["1.2", "1.4", "1.6"]),
            "components": fuzzlib.json_value(fdp, sbomlib.VOCABULARY),
        }
    sbomlib.check_document(document)
    sbomlib.check_sbom(fuzzlib.dumps(document))


def seeds() -> list[bytes]:
    raw = [fuzzlib.raw_seed(d) for d in fuzzlib.fixture_bytes("cyclonedx-*.json")]
    structured = [bytes([mode]) + bytes(range(i, i + 64)) for mode in (1, 2) for i in (0, 97)]
    return raw + structured + fuzzlib.committed_seeds("cyclonedx_json")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=sbomlib.VOCABULARY)
