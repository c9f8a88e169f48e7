"""`sbomgate verify` end to end: real registries, real cosign signatures, every layout.

Registries: Debian's distribution 2.8 (no referrers API: the fallback-tag path), plain and TLS,
with basic and token auth; go-containerregistry's registry with the OCI 1.1 referrers API.
Signatures: the real cosign v3 binary (legacy `.att` tags and v3 Sigstore bundles), and
keyless bundles from a self-made Sigstore root that sigstore-python verifies unmodified.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sbomgate.sbom import JsonDocument
from support.fake_sigstore import FakeSigstore
from support.oci_builder import (
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
)
from support.paths import BAD_SBOM, GOOD_SBOM
from support.registry_servers import RegistryServer
from support.trust import IDENTITY, ISSUER, check, checker_for, errors, trust_file


@pytest.fixture(scope="module")
def ecdsa_key(work: Path) -> CosignKey:
    return cosign_keypair(work / "keys", "ecdsa")


@pytest.fixture(scope="module")
def sigstore(work: Path) -> FakeSigstore:
    return FakeSigstore()


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
    # The document is kept as its JSON (no decoded tree outlives the check): the same document.
    assert type(sbom.sbom.document) is JsonDocument
    assert dict(sbom.sbom.document) == json.loads(GOOD_SBOM.read_text())
    # Read again from what the cache keeps (the verified statement's bytes): the same SBOM.
    [again] = replace(result, parsed=None).sboms
    assert again.sbom == sbom.sbom and again.image_input == sbom.image_input
    assert json.loads(again.sbom.document.json) == json.loads(GOOD_SBOM.read_text())


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


def test_spdx_embedded_as_a_string_and_spdxjson(
    plain_registry: RegistryServer, ecdsa_key: CosignKey, work: Path
) -> None:
    for kind in ("spdx", "spdxjson"):
        image = push_image(plain_registry, f"acme/{kind}", "v1")
        cosign_attest(
            plain_registry,
            image.digest_ref,
            BAD_SBOM,
            kind,
            ecdsa_key,
            new_bundle_format=True,
            workdir=work / "cosign-home",
        )
        result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), image.ref)
        assert result.report.ok, errors(result)
        [sbom] = result.sboms
        assert sbom.sbom.format == "spdx" and len(sbom.sbom.components) == 5
        # A document converted from SPDX is not the predicate's JSON: kept as it was made.
        assert type(sbom.sbom.document) is not JsonDocument


# -- refusals -------------------------------------------------------------------------


def _att_manifest(server: RegistryServer, image: PushedImage) -> tuple[OciClient, dict[str, Any]]:
    client = OciClient(server)
    manifest = client.manifest_or_none(image.repo, cosign_tag(image.digest, "att"))
    assert manifest is not None
    return client, manifest


def _put_att(client: OciClient, image: PushedImage, manifest: dict[str, Any]) -> None:
    raw = json.dumps(manifest).encode()
    client.put_manifest(
        image.repo,
        cosign_tag(image.digest, "att"),
        raw,
        "application/vnd.oci.image.manifest.v1+json",
    )


def _rewrite_envelope(
    server: RegistryServer, image: PushedImage, source: PushedImage, change: Any
) -> None:
    """Copy `source`'s .att to `image`, with its DSSE envelope changed by `change`."""
    client, manifest = _att_manifest(server, source)
    layer = manifest["layers"][0]
    envelope = json.loads(client.get_blob(source.repo, layer["digest"]))
    change(envelope)
    blob = json.dumps(envelope).encode()
    manifest["layers"][0] = {
        **layer,
        **client.push_blob(image.repo, blob, DSSE_MEDIA_TYPE),
        "annotations": layer.get("annotations", {}),
    }
    _put_att(client, image, manifest)


def test_replayed_attestation_from_another_image_is_refused(
    plain_registry: RegistryServer, signed_legacy: PushedImage, ecdsa_key: CosignKey, work: Path
) -> None:
    other = push_image(plain_registry, signed_legacy.repo, "other", seed="another image")
    client, manifest = _att_manifest(plain_registry, signed_legacy)
    _put_att(client, other, manifest)  # the same signed bytes, now next to another image
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), other.ref)
    assert not result.report.ok
    message = errors(result)
    assert "replayed" in message and signed_legacy.digest in message and other.digest in message
    assert result.sboms == ()


def test_tampered_payload_and_missing_signatures_are_refused(
    plain_registry: RegistryServer, signed_legacy: PushedImage, ecdsa_key: CosignKey, work: Path
) -> None:
    def tamper(envelope: dict[str, Any]) -> None:
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["components"] = []  # hide every package
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    tampered = push_image(plain_registry, "acme/tampered", "v1", seed="tampered")
    # Same digest as the signed image would be a different test; give this image its own
    # attestation first so the subject is right and only the payload bytes differ.
    cosign_attest(
        plain_registry,
        tampered.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    _rewrite_envelope(plain_registry, tampered, tampered, tamper)
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), tampered.ref)
    assert "signature does not verify" in errors(result)
    assert tampered.digest in errors(result)

    unsigned = push_image(plain_registry, "acme/nosig", "v1", seed="nosig")
    cosign_attest(
        plain_registry,
        unsigned.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    _rewrite_envelope(plain_registry, unsigned, unsigned, lambda e: e.update(signatures=[]))
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), unsigned.ref)
    assert "no signatures" in errors(result)


def test_wrong_key_and_uncovered_image_are_refused(
    plain_registry: RegistryServer, signed_legacy: PushedImage, work: Path
) -> None:
    other_key = cosign_keypair(work / "other-key", "ecdsa")
    result = check(plain_registry, trust_file(work, keys=[other_key]), signed_legacy.ref)
    assert not result.report.ok
    assert "does not verify with any trusted key (key-0)" in errors(result)
    [attestation] = result.report.attestations
    assert not attestation.verified and attestation.error

    elsewhere = trust_file(work, keys=[other_key], images=("ghcr.io/acme/**",), name="elsewhere")
    result = check(plain_registry, elsewhere, signed_legacy.ref)
    assert "no trust policy covers" in errors(result)


def test_required_predicate_type_missing(
    plain_registry: RegistryServer, ecdsa_key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "acme/vex-only", "v1")
    predicate = work / "vex.json"
    predicate.write_text('{"statements": []}')
    cosign_attest(
        plain_registry,
        image.digest_ref,
        predicate,
        "openvex",
        ecdsa_key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), image.ref)
    assert not result.report.ok
    assert "no verified sbom attestation" in errors(result)
    [attestation] = result.report.attestations
    assert attestation.verified and attestation.predicate_type == "https://openvex.dev/ns"

    bare = push_image(plain_registry, "acme/bare", "v1")
    result = check(plain_registry, trust_file(work, keys=[ecdsa_key]), bare.ref)
    assert "none found" in errors(result)


def test_keyless_refusals(
    referrers_registry: RegistryServer, sigstore: FakeSigstore, work: Path
) -> None:
    root = sigstore.write_trusted_root(work / "trusted_root.json")
    policy = trust_file(work, keyless_root=root)
    image = push_image(referrers_registry, "acme/keyless-bad", "v1")
    statement = _statement(image.digest, json.loads(GOOD_SBOM.read_text()))
    late = sigstore.now + timedelta(hours=2)
    bad_bundles = {
        "outside validity": sigstore.sign_statement(
            statement, identity=IDENTITY, issuer=ISSUER, integrated_time=late
        ),
        "other root": FakeSigstore().sign_statement(statement, identity=IDENTITY, issuer=ISSUER),
        "wrong issuer": sigstore.sign_statement(
            statement, identity=IDENTITY, issuer="https://accounts.example.com"
        ),
        # A short-lived certificate with no transparency-log time to place the signature in.
        "no tlog": sigstore.sign_statement(
            statement, identity=IDENTITY, issuer=ISSUER, include_tlog=False
        ),
    }
    for bundle in bad_bundles.values():
        attach_referrer(
            referrers_registry,
            image.repo,
            image.digest,
            artifact_type=SIGSTORE_BUNDLE_V03,
            blob=bundle.encode(),
            blob_media_type=SIGSTORE_BUNDLE_V03,
            fallback_tag=False,
        )
    result = check(referrers_registry, policy, image.ref)
    assert not result.report.ok
    found = [a.error or "" for a in result.report.attestations]
    assert len(found) == 4 and not any(a.verified for a in result.report.attestations)
    assert sum("trusted root at the transparency log's time" in e for e in found) == 2
    assert sum("not an accepted identity" in e for e in found) == 1
    assert sum("Sigstore bundle is not valid" in e for e in found) == 1


def test_provenance_builder_and_source_checks(tls_registry: RegistryServer, work: Path) -> None:
    predicate = {
        "buildDefinition": {
            "externalParameters": {"workflow": {"repository": "https://github.com/evil/fork"}}
        },
        "runDetails": {"builder": {"id": "https://github.com/acme/builder@v1"}},
    }
    image = push_buildkit_image(
        tls_registry,
        "acme/provenance",
        "v1",
        platforms=["linux/amd64"],
        sbom_statement={
            "predicateType": SPDX_PREDICATE,
            "predicate": json.loads(BAD_SBOM.read_text()),
        },
        provenance_statement={"predicateType": SLSA_PROVENANCE_V1, "predicate": predicate},
    )
    requirements = [
        {"name": "sbom", "predicateTypes": ["spdxjson"]},
        {
            "name": "provenance",
            "predicateTypes": ["slsaprovenance1"],
            "builderIds": ["https://github.com/acme/builder@v1"],
            "sourceRepositories": ["https://github.com/acme/*"],
        },
    ]
    policy = trust_file(work, allow_unsigned=True, attestations=requirements, name="slsa")
    result = check(tls_registry, policy, image.ref)
    assert not result.report.ok
    assert "built from https://github.com/evil/fork, not from https://github.com/acme/*" in errors(
        result
    )


# -- multi-arch -----------------------------------------------------------------------


def test_multi_arch_needs_every_platform_or_the_index(
    referrers_registry: RegistryServer, ecdsa_key: CosignKey, work: Path
) -> None:
    policy = trust_file(work, keys=[ecdsa_key])
    image = push_image(
        referrers_registry, "acme/multi", "v1", platforms=["linux/amd64", "linux/arm64"]
    )
    amd64, arm64 = image.platform_digests["linux/amd64"], image.platform_digests["linux/arm64"]
    cosign_attest(
        referrers_registry,
        image.platform_ref("linux/amd64"),
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    result = check(referrers_registry, policy, image.ref)
    assert not result.report.ok
    assert (
        f"missing for {arm64}" in errors(result) and amd64 not in errors(result).split("missing")[1]
    )

    cosign_attest(
        referrers_registry,
        image.platform_ref("linux/arm64"),
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    result = check(referrers_registry, policy, image.ref)
    assert result.report.ok, errors(result)
    assert result.report.digest == image.digest
    assert {s.digest for s in result.sboms} == {amd64, arm64}

    whole = push_image(
        referrers_registry,
        "acme/multi-index",
        "v1",
        platforms=["linux/amd64", "linux/arm64"],
        seed="index-signed",
    )
    cosign_attest(
        referrers_registry,
        whole.digest_ref,
        GOOD_SBOM,
        "cyclonedx",
        ecdsa_key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    result = check(referrers_registry, policy, whole.ref)
    assert result.report.ok, errors(result)
    assert [s.digest for s in result.sboms] == [whole.digest]
    # A platform digest admitted directly is covered by its index's attestation only when
    # the index is known; on its own it has no attestation.
    alone = check(referrers_registry, policy, whole.platform_ref("linux/amd64"))
    assert not alone.report.ok


def test_only_a_verified_sboms_text_is_read_ahead(
    plain_registry: RegistryServer, signed_legacy: PushedImage, ecdsa_key: CosignKey, work: Path
) -> None:
    """The checker gives each verified SBOM's JSON text to `read_ahead` (the typosquat helper)
    before parsing it, and nothing of an image whose attestation does not verify."""
    read: list[bytes] = []
    checker = checker_for(plain_registry, trust_file(work, keys=[ecdsa_key]))
    checker.read_ahead = read.append
    try:
        result = checker.check(signed_legacy.ref)
    finally:
        checker.client.close()
    assert result.report.ok, errors(result)
    [text] = read
    statement = json.loads(text)
    assert statement["predicate"] == json.loads(GOOD_SBOM.read_text())

    refused: list[bytes] = []
    other_key = cosign_keypair(work / "other-key-read-ahead", "ecdsa")
    checker = checker_for(plain_registry, trust_file(work, keys=[other_key]))
    checker.read_ahead = refused.append
    try:
        assert not checker.check(signed_legacy.ref).report.ok
    finally:
        checker.client.close()
    assert refused == []
