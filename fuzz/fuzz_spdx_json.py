"""Fuzz target: SPDX 2.2/2.3 JSON SBOMs (parse_sbom on bytes, parse_sbom_document on a decoded
document), including the conversion to the CycloneDX shape policies see.

Modes (first byte): 0 raw bytes; 1 a fixture edited at fuzzer-chosen paths; 2 packages and
relationships built from the vocabulary. Every input parses or raises SbomError.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]
import fuzzlib

with atheris.instrument_imports(include=["sbomgate", "packageurl", "license_expression"]):
    import sbomgate.sbom  # noqa: F401  (instrumented before sbomlib imports it)

import sbomlib

TEMPLATES = sbomlib.json_templates("spdx-*.json")
MODES = 3


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        sbomlib.check_sbom(data[1:])
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == 1:
        document = fuzzlib.mutate(fdp, fdp.PickValueInList(TEMPLATES), sbomlib.VOCABULARY)
    else:
        words = sbomlib.VOCABULARY
        document = {
            "spdxVersion": fdp.PickValueInList(["SPDX-2.2", "SPDX-2.3"]),
            "SPDXID": "SPDXRef-DOCUMENT",
            "packages": fuzzlib.json_value(fdp, words),
            "documentDescribes": fuzzlib.json_value(fdp, words),
            "relationships": fuzzlib.json_value(fdp, words),
        }
    sbomlib.check_document(document)
    sbomlib.check_sbom(fuzzlib.dumps(document))


def seeds() -> list[bytes]:
    raw = [fuzzlib.raw_seed(d) for d in fuzzlib.fixture_bytes("spdx-*")]
    structured = [bytes([mode]) + bytes(range(i, i + 64)) for mode in (1, 2) for i in (0, 97)]
    return raw + structured + fuzzlib.committed_seeds("spdx_json")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=sbomlib.VOCABULARY)
