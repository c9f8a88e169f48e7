"""Fuzz target: DSSE envelopes, in-toto statements and Sigstore bundles, alone and through the
verifier, up to the SBOM parse of a verified predicate.

The fuzzer cannot forge signatures, so the target signs what it builds: with a trusted P-256
key (DSSE, or a bundle that names its key) and with an offline fake Sigstore (a keyless bundle
sigstore-python accepts; tests/support/fake_sigstore.py). That reaches the code that runs on signed
but hostile content (a compromised builder, a bad predicate).

Modes (first byte):
  0 raw bytes to parse_envelope, parse_statement and parse_bundle (FormatError or a result);
  1 an edited statement (SBOM or provenance predicate), signed with the key, verified;
  2 the raw rest of the input as the payload, signed with the key, verified;
  3 an edited envelope, bundle, statement or SBOM, unsigned, verified;
  4 an edited keyless bundle (signed by the fake Sigstore before the edit), verified.
The verifier never raises: it answers checks and refusals; a verified check is bound to the
image's digest and, where the trust policy wants signatures, signed; a verified SBOM parses or
raises SbomError.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped]
import fuzzlib
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

with atheris.instrument_imports(include=["sbomgate", "packageurl", "license_expression"]):
    from sbomgate._internal.jsonpieces import PartlyDecoded
    from sbomgate.attest.envelope import (
        IN_TOTO_PAYLOAD_TYPE,
        Bundle,
        Envelope,
        FormatError,
        Statement,
        pae,
        parse_bundle,
        parse_envelope,
        parse_statement,
    )
    from sbomgate.attest.trust import parse_trust_policy
    from sbomgate.attest.verifier import (
        AttestationVerifier,
        ImageVerification,
        VerifiedDocument,
    )
    from sbomgate.errors import SbomError
    from sbomgate.imagecheck import _parse as parse_verified_sbom
    from sbomgate.imagecheck import _provenance_summary
    from sbomgate.registry.discovery import (
        Content,
        DiscoveredImage,
        FoundAttestation,
        Layout,
        PlatformImage,
    )
    from sbomgate.registry.reference import parse_reference
    from sbomgate.sbom import Sbom, parse_sbom_in_statement

import sbomlib

sys.path.insert(0, str(fuzzlib.REPO / "tests"))
from support.fake_sigstore import FakeSigstore  # type: ignore[import-not-found,unused-ignore]

DIGEST = "sha256:" + "a" * 64
PLATFORM = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IDENTITY, ISSUER = "dev@example.com", "https://issuer.example"
CYCLONEDX, SPDX = "https://cyclonedx.org/bom", "https://spdx.dev/Document"
SLSA1, SLSA02 = "https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2"

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
SIGSTORE = FakeSigstore()
ROOT = SIGSTORE.write_trusted_root(Path(tempfile.mkdtemp(prefix="fuzz-root-")) / "root.json")

SIGNED = parse_trust_policy(
    {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "signed"},
        "spec": {
            "images": ["**"],
            "authorities": [
                {"name": "key", "key": {"data": PEM.decode()}},
                {
                    "name": "sigstore",
                    "keyless": {
                        "identities": [{"issuer": ISSUER, "subjectRegExp": "@example\\.com$"}],
                        "trustedRoot": {"file": str(ROOT)},
                    },
                },
            ],
            "attestations": [
                {"name": "sbom", "predicateTypes": ["cyclonedx", "spdx"]},
                {
                    "name": "provenance",
                    "predicateTypes": ["slsaprovenance1", "slsaprovenance02"],
                    "required": False,
                    "builderIds": ["https://github.com/actions/runner"],
                    "sourceRepositories": ["https://github.com/acme/*"],
                },
            ],
        },
    },
    "fuzz",
)
UNSIGNED = parse_trust_policy(
    {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "unsigned"},
        "spec": {"images": ["ghcr.io/acme/**"], "allowUnsigned": True},
    },
    "fuzz",
)
VERIFIER = AttestationVerifier([SIGNED, UNSIGNED])
REF = parse_reference("ghcr.io/acme/app@" + DIGEST)

SBOMS = sbomlib.json_templates("cyclonedx-1.6.json", "spdx-2.3.json")
PROVENANCE: dict[str, Any] = {
    "buildDefinition": {
        "buildType": "https://actions.github.io/buildtypes/workflow/v1",
        "externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}},
        "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main"}],
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
}
PROVENANCE_02: dict[str, Any] = {
    "builder": {"id": "https://github.com/actions/runner"},
    "invocation": {"configSource": {"uri": "git+https://github.com/acme/app@main"}},
    "materials": [{"uri": "git+https://github.com/acme/app"}],
}


def statement(predicate_type: str, predicate: Any, digest: str = DIGEST) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": digest.split(":")[1]}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


# Over 64 KiB: its components are left undecoded by verification and read a run at a time
# (jsonpieces.PartlyDecoded, cyclonedx._walk_runs).
LARGE_SBOM = {
    **SBOMS[0],
    "components": [
        {**c, "name": f"{c.get('name')}-{i}", "purl": f"pkg:npm/large-{i}@1.{i % 7}.0"}
        for i in range(400)
        for c in SBOMS[0].get("components", [])[:1]
    ],
}
STATEMENTS = [
    statement(CYCLONEDX, SBOMS[0]),
    statement(CYCLONEDX, LARGE_SBOM),
    statement(SPDX, SBOMS[1]),
    statement(SLSA1, PROVENANCE),
    statement(SLSA02, PROVENANCE_02, PLATFORM),
    # cosign 1.x wrapped predicates as text
    statement(CYCLONEDX, {"Data": orjson.dumps(SBOMS[0]).decode(), "Timestamp": "2024"}),
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    signature = KEY.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": b64(payload),
        "signatures": [{"keyid": "", "sig": b64(signature)}],
    }


def key_bundle(dsse: dict[str, Any]) -> dict[str, Any]:
    return {
        "mediaType": BUNDLE_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "fuzz"}, "tlogEntries": []},
        "dsseEnvelope": dsse,
    }


SIGNED_ENVELOPES = [envelope(orjson.dumps(s)) for s in STATEMENTS]
KEYLESS_BUNDLES = [
    orjson.loads(SIGSTORE.sign_statement(s, identity=IDENTITY, issuer=ISSUER))
    for s in STATEMENTS[:3]
]
UNSIGNED_TEMPLATES: list[tuple[Content, Any]] = [
    (Content.DSSE, SIGNED_ENVELOPES[0]),
    (Content.BUNDLE, key_bundle(SIGNED_ENVELOPES[1])),
    (Content.BUNDLE, KEYLESS_BUNDLES[0]),
    (Content.STATEMENT, STATEMENTS[0]),
    (Content.STATEMENT, STATEMENTS[2]),
    (Content.RAW_SBOM, SBOMS[0]),
    (Content.RAW_SBOM, SBOMS[1]),
]
VOCABULARY = [
    *sbomlib.VOCABULARY[:40],
    "payloadType", "payload", "signatures", "keyid", "sig", IN_TOTO_PAYLOAD_TYPE, "_type",
    "https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1", "subject",
    "digest", "sha256", "sha512", DIGEST.split(":")[1], "predicateType", "predicate", "Data",
    "Timestamp", CYCLONEDX, CYCLONEDX + "/v1.6", SPDX, SLSA1, SLSA02, "mediaType", BUNDLE_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.2", "verificationMaterial",
    "certificate", "x509CertificateChain", "certificates", "rawBytes", "publicKey", "hint",
    "tlogEntries", "dsseEnvelope", "messageSignature", "runDetails", "builder", "id",
    "buildDefinition", "externalParameters", "workflow", "repository", "source", "uri",
    "resolvedDependencies", "materials", "invocation", "configSource", "git+", "=", "-", "_",
]  # fmt: skip
MODES = 5


def image(found: FoundAttestation, is_index: bool) -> DiscoveredImage:
    platforms = (PlatformImage(PLATFORM, None),) if is_index else ()
    return DiscoveredImage(REF, DIGEST, is_index, platforms, (found,))


def verify(fdp: Any, content: Content, data: bytes) -> None:
    layout = {
        Content.BUNDLE: Layout.SIGSTORE_BUNDLE,
        Content.DSSE: fdp.PickValueInList([Layout.COSIGN_TAG, Layout.REFERRER, Layout.BUILDKIT]),
    }.get(content, Layout.REFERRER)
    found = FoundAttestation(
        layout=layout,
        content_type=content,
        attached_to=fdp.PickValueInList([DIGEST, DIGEST, PLATFORM, OTHER]),
        location="fuzz",
        media_type="application/octet-stream",
        data=data,
        annotations=fdp.PickValueInList(
            [{}, {"dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----"}]
        ),
        predicate_type_hint=fdp.PickValueInList([None, CYCLONEDX, SPDX, SLSA1]),
    )
    discovered = image(found, fdp.ConsumeBool())
    verification = VERIFIER.verify(discovered)
    fuzzlib.check(isinstance(verification, ImageVerification), f"verify returned {verification!r}")
    acceptable = {found.attached_to, DIGEST} if discovered.is_index else {found.attached_to}
    for check in verification.checks:
        if not check.verified:
            fuzzlib.check(bool(check.error), "an unverified check without a reason")
            continue
        # What verifies is bound to this image, and signed unless the policy says otherwise.
        if check.statement is not None:
            fuzzlib.check(
                any(check.statement.binds(d) for d in acceptable),
                f"verified, but bound to {check.statement.subject_digests()}",
            )
        if check.policy == SIGNED.name:
            fuzzlib.check(check.signer != "unsigned", "unsigned content passed a signed policy")
    if verification.ok:
        fuzzlib.check(bool(verification.checks), "no refusal and nothing checked")
    for document in verification.sboms:

        def parse(document: VerifiedDocument = document) -> Sbom:
            return parse_verified_sbom(document, "fuzz")

        sbom = fuzzlib.expect(parse, (SbomError,))
        if sbom is not None:
            sbomlib.check_parsed(sbom)
        if document.statement is None or type(document.predicate_source) is not PartlyDecoded:
            continue

        # The webhook's road for a large CycloneDX statement: the predicate as verification left
        # it, its known runs never decoded. Where both roads read it, they read the same.
        def in_statement(document: VerifiedDocument = document) -> Sbom:
            assert document.statement is not None
            return parse_sbom_in_statement(
                document.predicate_source, document.statement, source="fuzz", items=document.items
            )

        read = fuzzlib.expect(in_statement, (SbomError,))
        if read is not None and sbom is not None:
            fuzzlib.check(
                read.components == sbom.components, "the statement's road read other components"
            )
    _provenance_summary(verification.provenance)


def parse_alone(data: bytes) -> None:
    found = fuzzlib.expect(lambda: parse_envelope(data), (FormatError,))
    if found is not None:
        fuzzlib.check(isinstance(found, Envelope), f"parse_envelope returned {found!r}")
        found.signed_bytes  # noqa: B018  (PAE of what was read)
        payload = found.payload
        parsed = fuzzlib.expect(lambda: parse_statement(payload), (FormatError,))
        fuzzlib.check(parsed is None or isinstance(parsed, Statement), "parse_statement type")
    parsed = fuzzlib.expect(lambda: parse_statement(data), (FormatError,))
    if parsed is not None:
        fuzzlib.check(isinstance(parsed, Statement), f"parse_statement returned {parsed!r}")
        for digest in (DIGEST, "", "sha256:", ":"):
            parsed.binds(digest)
        parsed.subject_digests()
    bundle = fuzzlib.expect(lambda: parse_bundle(data), (FormatError,))
    if bundle is not None:
        fuzzlib.check(isinstance(bundle, Bundle), f"parse_bundle returned {bundle!r}")
        fuzzlib.check(
            bundle.certificate_der is not None or bundle.public_key_hint is not None,
            "a bundle with neither certificate nor key",
        )


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        parse_alone(data[1:])
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == 1:
        edited = fuzzlib.mutate(fdp, fdp.PickValueInList(STATEMENTS), VOCABULARY)
        dsse = envelope(fuzzlib.dumps(edited))
        as_bundle = fdp.ConsumeBool()
        document = key_bundle(dsse) if as_bundle else dsse
        verify(fdp, Content.BUNDLE if as_bundle else Content.DSSE, fuzzlib.dumps(document))
    elif mode == 2:
        payload_type = fdp.PickValueInList([IN_TOTO_PAYLOAD_TYPE, "application/json", ""])
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())
        verify(fdp, Content.DSSE, fuzzlib.dumps(envelope(payload, payload_type)))
    elif mode == 3:
        content, template = fdp.PickValueInList(UNSIGNED_TEMPLATES)
        edited = fuzzlib.mutate(fdp, template, VOCABULARY)
        verify(fdp, content, fuzzlib.dumps(edited))
    else:
        edited = fuzzlib.mutate(fdp, fdp.PickValueInList(KEYLESS_BUNDLES), VOCABULARY)
        verify(fdp, Content.BUNDLE, fuzzlib.dumps(edited))


def seeds() -> list[bytes]:
    documents = [*SIGNED_ENVELOPES, *STATEMENTS, key_bundle(SIGNED_ENVELOPES[0])]
    raw = [fuzzlib.raw_seed(fuzzlib.dumps(d)) for d in documents]
    structured = [bytes([mode]) + bytes(range(i, i + 64)) for mode in (1, 2, 3, 4) for i in (0, 97)]
    return raw + structured + fuzzlib.committed_seeds("attestation")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=VOCABULARY)
