"""Fuzz target: OCI image manifests and indexes, and their Docker v2 twins (parse_manifest),
with the Content-Type header and the entry limit chosen by the fuzzer.

Modes (first byte): 0 raw bytes (content type from the second byte); 1 a valid manifest or
index edited at fuzzer-chosen paths. Every input parses or raises ManifestFormatError.
"""

from __future__ import annotations

from typing import Any

import atheris  # type: ignore[import-untyped]
import fuzzlib

with atheris.instrument_imports(include=["sbomgate"]):
    from sbomgate.registry.oci import (
        DOCKER_LIST,
        DOCKER_MANIFEST,
        OCI_EMPTY,
        OCI_INDEX,
        OCI_MANIFEST,
        ImageIndex,
        ImageManifest,
        ManifestFormatError,
        parse_manifest,
    )
    from sbomgate.registry.reference import is_digest

CONTENT_TYPES = [
    None, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "application/json",
    f"{OCI_INDEX}; charset=utf-8", "", " ; ", "text/plain",
]  # fmt: skip
D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
SBOM_TYPE = "application/vnd.cyclonedx+json"
TEMPLATES: list[Any] = [
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": D1, "size": 2},
        "layers": [{"mediaType": SBOM_TYPE, "digest": D2, "size": 10, "annotations": {"a": "b"}}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": D3, "size": 100},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    },
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": D1,
                "size": 500,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": D2,
                "size": 300,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": D1,
                },
            },
        ],
    },
    {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": D1,
            "size": 7023,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": "sha512:" + "d" * 128,
                "size": 32654,
            }
        ],
    },
]
VOCABULARY = [
    "schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "subject",
    "annotations", "digest", "size", "platform", "os", "architecture", "variant", "urls",
    OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, OCI_EMPTY, SBOM_TYPE, D1, "sha256:",
    "sha512:" + "e" * 128, "sha256:" + "A" * 64, "sha384:" + "a" * 96, "linux", "unknown",
]  # fmt: skip
MODES = 2


def check_manifest(data: bytes, content_type: str | None, max_entries: int) -> None:
    parsed = fuzzlib.expect(
        lambda: parse_manifest(data, content_type, max_entries=max_entries),
        (ManifestFormatError,),
    )
    if parsed is None:
        return
    fuzzlib.check(isinstance(parsed, ImageManifest | ImageIndex), f"returned {parsed!r}")
    if isinstance(parsed, ImageIndex):
        descriptors = list(parsed.manifests)
        fuzzlib.check(len(descriptors) <= max_entries, "more manifests than the limit")
    else:
        descriptors = [parsed.config, *parsed.layers]
        fuzzlib.check(len(parsed.layers) <= max_entries, "more layers than the limit")
        fuzzlib.check(isinstance(parsed.effective_artifact_type, str), "artifact type")
    if parsed.subject is not None:
        descriptors.append(parsed.subject)
    for descriptor in descriptors:
        # Discovery fetches by these digests and sizes: they must be what they claim.
        fuzzlib.check(is_digest(descriptor.digest), f"digest {descriptor.digest!r}")
        fuzzlib.check(type(descriptor.size) is int and descriptor.size >= 0, "size")
        fuzzlib.check(
            all(
                isinstance(k, str) and isinstance(v, str) for k, v in descriptor.annotations.items()
            ),
            "annotations",
        )
        if descriptor.platform is not None:
            str(descriptor.platform)


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        content_type = CONTENT_TYPES[data[1] % len(CONTENT_TYPES)] if len(data) > 1 else None
        check_manifest(data[2:], content_type, 1000)
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    content_type = fdp.PickValueInList(CONTENT_TYPES)
    max_entries = fdp.ConsumeIntInRange(0, 3)
    document = fuzzlib.mutate(fdp, fdp.PickValueInList(TEMPLATES), VOCABULARY)
    check_manifest(fuzzlib.dumps(document), content_type, max_entries)


def seeds() -> list[bytes]:
    raw = [bytes([fuzzlib.RAW, i]) + fuzzlib.dumps(t) for i, t in enumerate(TEMPLATES)]
    structured = [bytes([1]) + bytes(range(i, i + 64)) for i in (0, 97, 180)]
    return raw + structured + fuzzlib.committed_seeds("oci_manifest")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=VOCABULARY)
