"""`sbomgate verify` end to end: real registries, real cosign signatures, every layout.

Registries: Debian's distribution 2.8 (no referrers API: the fallback-tag path), plain and TLS,
with basic and token auth; go-containerregistry's registry with the OCI 1.1 referrers API.
Signatures: the real cosign v3 binary (legacy `.att` tags and v3 Sigstore bundles), and
keyless bundles from a self-made Sigstore root that sigstore-python verifies unmodified.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fake_sigstore import FakeSigstore
from oci_builder import (
    CYCLONEDX_PREDICATE,
    DSSE_MEDIA_TYPE,
    SIGSTORE_BUNDLE_V03,
    SLSA_PROVENANCE_V1,
    SPDX_PREDICATE,
    CosignKey,
    OciClient,
    PushedImage,
    attach_referrer,
    cosign_attest,
    cosign_keypair,
    cosign_tag,
    in_toto_statement,
    push_buildkit_image,
    push_image,
    sha256_digest,
)
from registry_servers import ROOT, RegistryServer

from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.imagecheck import ImageChecker, ImageResult
from sbomgate.registry import (
    CredentialStore,
    RegistryAccess,
    RegistryClient,
    RegistryLimits,
)

GOOD_SBOM = ROOT / "examples" / "good-app.cdx.json"
BAD_SBOM = ROOT / "examples" / "bad-app.spdx.json"
IDENTITY = "https://github.com/acme/web/.github/workflows/build.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verify")


@pytest.fixture(scope="module")
def ecdsa_key(work: Path) -> CosignKey:
    return cosign_keypair(work / "keys", "ecdsa")


@pytest.fixture(scope="module")
def sigstore(work: Path) -> FakeSigstore:
    return FakeSigstore()


def trust_file(
    directory: Path,
    *,
    keys: list[CosignKey] = (),  # type: ignore[assignment]
    keyless_root: Path | None = None,
    subject_regexp: str = "^https://github.com/acme/",
    allow_unsigned: bool = False,
    attestations: list[dict[str, Any]] | None = None,
    images: tuple[str, ...] = ("**",),
    name: str = "default",
) -> Path:
    authorities: list[dict[str, Any]] = [
        {"name": f"key-{i}", "key": {"file": str(k.public_key_path)}} for i, k in enumerate(keys)
    ]
    if keyless_root is not None:
        authorities.append(
            {
                "name": "ci-keyless",
                "keyless": {
                    "identities": [{"issuer": ISSUER, "subjectRegExp": subject_regexp}],
                    "trustedRoot": {"file": str(keyless_root)},
                },
            }
        )
    spec: dict[str, Any] = {
        "images": list(images),
        "authorities": authorities,
        "allowUnsigned": allow_unsigned,
    }
    if attestations is not None:
        spec["attestations"] = attestations
    doc = {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"trust-{name}-{abs(hash(json.dumps(doc, sort_keys=True)))}.yaml"
    path.write_text(json.dumps(doc))
    return path


def checker_for(
    server: RegistryServer,
    trust: Path,
    *,
    credentials: CredentialStore | None = None,
    limits: RegistryLimits | None = None,
    timeout: float = 20.0,
) -> ImageChecker:
    access = RegistryAccess(
        allowed=(server.host,),
        insecure=frozenset({server.host}) if server.scheme == "http" else frozenset(),
        ca_files=(str(server.ca_file),) if server.ca_file else (),
    )
    client = RegistryClient(access, credentials, limits, timeout=timeout)
    return ImageChecker(client, AttestationVerifier(load_trust_policies([trust])), timeout=timeout)


def check(server: RegistryServer, trust: Path, ref: str, **kwargs: Any) -> ImageResult:
    checker = checker_for(server, trust, **kwargs)
    try:
        return checker.check(ref)
    finally:
        checker.client.close()


def errors(result: ImageResult) -> str:
    return "\n".join(result.report.errors)


@pytest.fixture(scope="module")
def signed_legacy(plain_registry: RegistryServer, ecdsa_key: CosignKey, work: Path) -> PushedImage:
    image = push_image(plain_registry, "acme/legacy", "v1")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    return image


# -- the four layouts -----------------------------------------------------------------


def test_cosign_legacy_att_tag_verifies_and_yields_the_sbom(
    plain_registry: RegistryServer, signed_legacy: PushedImage, ecdsa_key: CosignKey, work: Path
) -> None:
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), signed_legacy.ref)
    assert result.report.ok, errors(result)
    assert result.report.digest == signed_legacy.digest
    [attestation] = result.report.attestations
    assert attestation.verified and attestation.signer == "key key-0"
    assert attestation.predicate_type == CYCLONEDX_PREDICATE
    assert attestation.details["layout"] == "cosign-tag"
    [sbom] = result.sboms
    assert sbom.digest == signed_legacy.digest
    assert len(sbom.sbom.components) == result.report.components > 0


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_cosign_v3_bundle_via_referrers_api(
    referrers_registry: RegistryServer, work: Path, kind: str
) -> None:
    key = cosign_keypair(work / f"keys-{kind}", kind)
    image = push_image(referrers_registry, f"acme/bundle-{kind}", "v1")
    cosign_attest(
        referrers_registry,
        image.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    result = check(referrers_registry, trust_file(work, keys=[key]), image.ref)
    assert result.report.ok, errors(result)
    layouts = {a.details["layout"] for a in result.report.attestations if a.verified}
    assert layouts == {"sigstore-bundle"}
    assert len(result.sboms) == 1


def test_cosign_v3_bundle_via_fallback_tag(
    plain_registry: RegistryServer, ecdsa_key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "acme/bundle-fallback", "v1")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), image.ref)
    assert result.report.ok, errors(result)
    assert any(
        a.verified and a.details["layout"] == "sigstore-bundle" for a in result.report.attestations
    )


def _statement(
    image_digest: str, predicate: Any, predicate_type: str = CYCLONEDX_PREDICATE
) -> dict[str, Any]:
    return in_toto_statement(
        predicate_type, predicate, image_digest, statement_type="https://in-toto.io/Statement/v1"
    )


def test_keyless_sigstore_bundle_referrer(
    referrers_registry: RegistryServer, sigstore: FakeSigstore, work: Path
) -> None:
    root = sigstore.write_trusted_root(work / "trusted_root.json")
    image = push_image(referrers_registry, "acme/keyless", "v1")
    bundle = sigstore.sign_statement(
        _statement(image.digest, json.loads(GOOD_SBOM.read_text())),
        identity=IDENTITY,
        issuer=ISSUER,
    )
    attach_referrer(
        referrers_registry,
        image.repo,
        image.digest,
        artifact_type=SIGSTORE_BUNDLE_V03,
        blob=bundle.encode(),
        blob_media_type=SIGSTORE_BUNDLE_V03,
        annotations={"dev.sigstore.bundle.predicateType": CYCLONEDX_PREDICATE},
        fallback_tag=False,
    )
    result = check(referrers_registry, trust_file(work, keyless_root=root), image.ref)
    assert result.report.ok, errors(result)
    [attestation] = result.report.attestations
    assert attestation.signer == f"keyless {IDENTITY} via ci-keyless"
    assert result.sboms[0].image_input["attestation"]["issuer"] == ISSUER

    wrong = trust_file(work, keyless_root=root, subject_regexp="^https://github.com/other/")
    refused = check(referrers_registry, wrong, image.ref)
    assert not refused.report.ok
    assert "not an accepted identity" in errors(refused)
    assert image.digest in errors(refused)


def test_buildkit_attestation_manifests_need_allow_unsigned(
    tls_registry: RegistryServer, work: Path
) -> None:
    spdx = json.loads(BAD_SBOM.read_text())
    image = push_buildkit_image(
        tls_registry,
        "acme/buildkit",
        "v1",
        platforms=["linux/amd64", "linux/arm64"],
        sbom_statement={"predicateType": SPDX_PREDICATE, "predicate": spdx},
        provenance_statement={
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": {"runDetails": {"builder": {"id": "https://github.com/acme/builder@v1"}}},
        },
    )
    key = cosign_keypair(work / "k-bk", "ecdsa")
    signed_only = trust_file(work, keys=[key], name="signed-only")
    refused = check(tls_registry, signed_only, image.ref)
    assert not refused.report.ok
    assert "unsigned in-toto statement" in errors(refused)

    open_policy = trust_file(work, allow_unsigned=True, name="unsigned-ok")
    result = check(tls_registry, open_policy, image.ref)
    assert result.report.ok, errors(result)
    assert {s.digest for s in result.sboms} == set(image.platform_digests.values())
    assert all(a.signer == "unsigned" for a in result.report.attestations if a.verified)
    assert result.sboms[0].image_input["provenance"]["builder_id"] == (
        "https://github.com/acme/builder@v1"
    )


def test_oras_style_unsigned_sbom_referrer(plain_registry: RegistryServer, work: Path) -> None:
    image = push_image(plain_registry, "acme/oras", "v1")
    attach_referrer(
        plain_registry,
        image.repo,
        image.digest,
        artifact_type="application/vnd.cyclonedx+json",
        blob=GOOD_SBOM.read_bytes(),
        blob_media_type="application/vnd.cyclonedx+json",
        fallback_tag=True,
    )
    result = check(plain_registry, trust_file(work, allow_unsigned=True, name="oras"), image.ref)
    assert result.report.ok, errors(result)
    assert result.report.attestations[0].details["layout"] == "referrer"
    refused = check(
        plain_registry,
        trust_file(work, keys=[cosign_keypair(work / "k-oras", "ecdsa")], name="oras-closed"),
        image.ref,
    )
    assert "unsigned SBOM" in errors(refused)
