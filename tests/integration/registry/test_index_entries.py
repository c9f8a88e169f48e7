"""Everything runnable in an image index is judged (issue 12, section 1).

Runtimes pick an index entry by platform alone (containerd: the first match wins; CRI-O by
platform, then by the content it fetches), so only BuildKit's attestation manifests, on
platform `unknown/unknown` and marked as such, may be read as attestations. Every other entry,
whatever its annotations or media type say, must be covered by a verified attestation. The
indexes are pushed to a real registry and the platform manifests signed with the real cosign.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.oci_builder import (
    CYCLONEDX_PREDICATE,
    OCI_INDEX,
    CosignKey,
    OciClient,
    canonical_json,
    cosign_attest,
    in_toto_statement,
    push_platform_manifest,
    sha256_digest,
)
from support.paths import GOOD_SBOM
from support.registry_servers import RegistryServer
from support.trust import check, errors, trust_file

ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest"}
UNKNOWN = {"os": "unknown", "architecture": "unknown"}
AMD64 = {"os": "linux", "architecture": "amd64"}


@pytest.fixture(scope="module")
def trust(work: Path, key: CosignKey) -> Path:
    return trust_file(work / "trust", keys=[key])


def _signed_manifest(
    server: RegistryServer, repo: str, seed: str, key: CosignKey, work: Path
) -> dict[str, Any]:
    """A platform manifest with a cosign-signed SBOM attestation on its own digest."""
    client = OciClient(server)
    digest, _, descriptor = push_platform_manifest(client, repo, seed=seed)
    cosign_attest(
        server,
        f"{server.host}/{repo}@{digest}",
        GOOD_SBOM,
        "cyclonedx",
        key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    return descriptor


def _unsigned_manifest(server: RegistryServer, repo: str, seed: str) -> dict[str, Any]:
    _, _, descriptor = push_platform_manifest(OciClient(server), repo, seed=seed)
    return descriptor


def _index(server: RegistryServer, repo: str, tag: str, entries: list[dict[str, Any]]) -> str:
    raw = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    OciClient(server).put_manifest(repo, tag, raw, OCI_INDEX)
    return sha256_digest(raw)


def _entry(
    descriptor: dict[str, Any],
    *,
    platform: dict[str, str] | None,
    annotations: dict[str, str] | None = None,
    media_type: str | None = None,
) -> dict[str, Any]:
    entry = dict(descriptor)
    if platform is not None:
        entry["platform"] = platform
    if annotations is not None:
        entry["annotations"] = annotations
    if media_type is not None:
        entry["mediaType"] = media_type
    return entry


# Each case: the unsigned entry's platform, annotations and media type (None: as pushed), and
# whether it comes before the signed linux/amd64 entry (a runtime picking the first match).
HIDDEN = {
    "annotated-as-attestation-on-linux-amd64": (AMD64, ATTESTATION, None),
    "annotated-as-attestation-without-platform": (None, ATTESTATION, None),
    "annotated-as-attestation-on-arm64-v8": (
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        ATTESTATION,
        None,
    ),
    "annotated-as-attestation-on-windows": (
        {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2340"},
        ATTESTATION,
        None,
    ),
    "unknown-platform-without-the-annotation": (UNKNOWN, None, None),
    "unknown-os-only": ({"os": "unknown", "architecture": "amd64"}, ATTESTATION, None),
    "unknown-platform-with-another-reference-type": (
        UNKNOWN,
        {"vnd.docker.reference.type": "attestation"},
        None,
    ),
    "unknown-platform-annotated-but-not-a-manifest-type": (
        UNKNOWN,
        ATTESTATION,
        "application/vnd.example.image+json",
    ),
    "unknown-platform-annotated-with-a-docker-media-type": (
        UNKNOWN,
        ATTESTATION,
        "application/vnd.docker.distribution.manifest.v2+json",
    ),
    "linux-amd64-with-an-artifact-media-type": (AMD64, None, "application/vnd.example+json"),
    "same-platform-twice-unsigned-second": (AMD64, None, None),
}


@pytest.mark.parametrize("case", sorted(HIDDEN))
def test_an_unsigned_runnable_entry_is_judged_whatever_it_claims(
    plain_registry: RegistryServer, key: CosignKey, trust: Path, work: Path, case: str
) -> None:
    platform, annotations, media_type = HIDDEN[case]
    repo = f"hostile/index-{case}"
    signed = _signed_manifest(plain_registry, repo, f"{case}-signed", key, work)
    unsigned = _unsigned_manifest(plain_registry, repo, f"{case}-unsigned")
    hidden = _entry(unsigned, platform=platform, annotations=annotations, media_type=media_type)
    first, second = (
        (_entry(signed, platform=AMD64), hidden)
        if case.endswith("second")
        else (hidden, _entry(signed, platform=AMD64))
    )
    _index(plain_registry, repo, "v1", [first, second])
    result = check(plain_registry, trust, f"{plain_registry.host}/{repo}:v1")
    assert not result.report.ok, f"{case}: admitted an index with an unsigned runnable entry"
    assert not result.report.fault
    assert unsigned["digest"] in errors(result), errors(result)


def test_two_signed_entries_for_one_platform_are_both_judged_and_admitted(
    plain_registry: RegistryServer, key: CosignKey, trust: Path, work: Path
) -> None:
    repo = "hostile/index-two-signed"
    first = _signed_manifest(plain_registry, repo, "first", key, work)
    second = _signed_manifest(plain_registry, repo, "second", key, work)
    _index(
        plain_registry,
        repo,
        "v1",
        [_entry(first, platform=AMD64), _entry(second, platform=AMD64)],
    )
    result = check(plain_registry, trust, f"{plain_registry.host}/{repo}:v1")
    assert result.report.ok, errors(result)
    attached = {a.details["attachedTo"] for a in result.report.attestations if a.verified}
    assert attached == {first["digest"], second["digest"]}
    assert len(result.sboms) == 2


def test_a_genuine_buildkit_layout_is_not_judged_as_runnable(
    plain_registry: RegistryServer, key: CosignKey, trust: Path, work: Path
) -> None:
    """docker buildx's layout: attestation manifests on unknown/unknown next to the signed
    image. They are attestations (unsigned here, so they do not count), not images."""
    repo = "hostile/index-buildkit"
    client = OciClient(plain_registry)
    signed = _signed_manifest(plain_registry, repo, "image", key, work)
    statement = in_toto_statement(CYCLONEDX_PREDICATE, {"components": []}, signed["digest"])
    layer = client.push_blob(repo, canonical_json(statement), "application/vnd.in-toto+json")
    layer["annotations"] = {"in-toto.io/predicate-type": CYCLONEDX_PREDICATE}
    config = client.push_blob(repo, b"{}", "application/vnd.oci.image.config.v1+json")
    attestation = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        }
    )
    digest = sha256_digest(attestation)
    client.put_manifest(repo, digest, attestation, "application/vnd.oci.image.manifest.v1+json")
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": len(attestation),
        "platform": UNKNOWN,
        "annotations": {**ATTESTATION, "vnd.docker.reference.digest": signed["digest"]},
    }
    _index(plain_registry, repo, "v1", [_entry(signed, platform=AMD64), entry])
    result = check(plain_registry, trust, f"{plain_registry.host}/{repo}:v1")
    assert result.report.ok, errors(result)
    buildkit = [a for a in result.report.attestations if a.details["layout"] == "buildkit"]
    assert buildkit and not any(a.verified for a in buildkit)
    assert len(result.sboms) == 1


def test_an_index_entry_that_is_an_index_is_refused_even_if_annotated(
    plain_registry: RegistryServer, key: CosignKey, trust: Path, work: Path
) -> None:
    repo = "hostile/index-nested"
    signed = _signed_manifest(plain_registry, repo, "image", key, work)
    inner = _unsigned_manifest(plain_registry, repo, "inner")
    inner_digest = _index(plain_registry, repo, "inner", [_entry(inner, platform=AMD64)])
    nested = {
        "mediaType": OCI_INDEX,
        "digest": inner_digest,
        "size": len(
            canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [_entry(inner, platform=AMD64)],
                }
            )
        ),
        "platform": UNKNOWN,
        "annotations": ATTESTATION,
    }
    _index(plain_registry, repo, "v1", [nested, _entry(signed, platform=AMD64)])
    result = check(plain_registry, trust, f"{plain_registry.host}/{repo}:v1")
    assert not result.report.ok and not result.report.fault
    assert "nested indexes are not supported" in errors(result)
