"""The test infrastructure itself: real registries, real pushes, real cosign attestations.

These checks use only tests/support/oci_builder.py's own client, never the sbomgate library, so a
library bug cannot hide behind a fixture bug.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from support.oci_builder import (
    CYCLONEDX_PREDICATE,
    DSSE_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_V03,
    SLSA_PROVENANCE_V1,
    SPDX_PREDICATE,
    CosignKey,
    OciClient,
    attach_referrer,
    cosign_attest,
    cosign_keypair,
    cosign_tag,
    fallback_tag,
    in_toto_statement,
    parse_challenge,
    push_buildkit_image,
    push_image,
    sha256_digest,
)
from support.registry_servers import RegistryServer

REGISTRY_FIXTURES = [
    "plain_registry",
    "tls_registry",
    "basic_auth_registry",
    "token_auth_registry",
    "referrers_registry",
]

BOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "flask",
            "version": "3.0.0",
            "purl": "pkg:pypi/flask@3.0.0",
        }
    ],
}


@pytest.fixture(scope="module")
def cosign_key(tmp_path_factory: pytest.TempPathFactory) -> CosignKey:
    return cosign_keypair(tmp_path_factory.mktemp("cosign-key"), "ecdsa")


@pytest.fixture(scope="module")
def bom_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("predicates") / "bom.cdx.json"
    path.write_text(json.dumps(BOM))
    return path


# Ed25519ph (RFC 8032 section 5.1, prehash SHA-512, empty context). cosign v3 signs with it for
# Ed25519 keys, and pyca/cryptography only has pure Ed25519, so the check is done here by hand.
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int]


def _x_from_y(y: int, sign: int) -> int:
    xx = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(xx, (_P + 3) // 8, _P)
    if (x * x - xx) % _P:
        x = x * _SQRT_M1 % _P
    assert (x * x - xx) % _P == 0, "not a curve point"
    return _P - x if (x & 1) != sign else x


def _add(a: _Point, b: _Point) -> _Point:
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P)
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P)
    return x3 % _P, y3 % _P


def _mul(point: _Point, k: int) -> _Point:
    out: _Point = (0, 1)
    while k:
        if k & 1:
            out = _add(out, point)
        point, k = _add(point, point), k >> 1
    return out


def _decode_point(data: bytes) -> _Point:
    y = int.from_bytes(data, "little") & ((1 << 255) - 1)
    return _x_from_y(y, data[31] >> 7), y


def _ed25519ph_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    base_y = 4 * pow(5, _P - 2, _P) % _P
    base = (_x_from_y(base_y, 0), base_y)
    r, s = _decode_point(signature[:32]), int.from_bytes(signature[32:], "little")
    dom2 = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])
    h = hashlib.sha512(dom2 + signature[:32] + public_key + hashlib.sha512(message).digest())
    k = int.from_bytes(h.digest(), "little") % _L
    return s < _L and _mul(base, s) == _add(r, _mul(_decode_point(public_key), k))


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding (what the signature covers)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _verify_dsse(envelope: dict[str, Any], public_key_pem: bytes) -> dict[str, Any]:
    """Check the one signature against the cosign public key; return the in-toto statement."""
    payload = base64.b64decode(envelope["payload"])
    signed = _pae(envelope["payloadType"], payload)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key = serialization.load_pem_public_key(public_key_pem)
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        with pytest.raises(InvalidSignature):  # not pure Ed25519...
            key.verify(signature, signed)
        assert _ed25519ph_verify(raw, signature, signed)  # ...but Ed25519ph
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise AssertionError(f"unexpected key type {type(key)}")
    return json.loads(payload)  # type: ignore[no-any-return]


def _json(client: OciClient, repo: str, ref: str) -> dict[str, Any]:
    return json.loads(client.get_manifest(repo, ref)[0])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- registries


@pytest.mark.parametrize("fixture", REGISTRY_FIXTURES)
def test_registry_answers_and_accepts_an_image(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    client = OciClient(server)
    assert client.ping().status in (200, 401)
    image = push_image(server, "infra/single", "v1")
    raw, media_type, digest = client.get_manifest("infra/single", "v1")
    assert (media_type, digest) == (OCI_MANIFEST, image.digest)
    assert image.ref == f"{server.host}/infra/single:v1"
    layer = json.loads(raw)["layers"][0]
    assert sha256_digest(client.get_blob("infra/single", layer["digest"])) == layer["digest"]
    assert "v1" in client.tags("infra/single")


def test_multi_platform_index(tls_registry: RegistryServer) -> None:
    image = push_image(tls_registry, "infra/multi", "v1", platforms=["linux/amd64", "linux/arm64"])
    client = OciClient(tls_registry)
    index = _json(client, "infra/multi", "v1")
    assert index["mediaType"] == OCI_INDEX
    assert sha256_digest(client.get_manifest("infra/multi", "v1")[0]) == image.digest
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert by_arch == {
        "amd64": image.platform_digests["linux/amd64"],
        "arm64": image.platform_digests["linux/arm64"],
    }
    assert len(set(by_arch.values())) == 2
    assert _json(client, "infra/multi", by_arch["arm64"])["mediaType"] == OCI_MANIFEST


def test_basic_auth_refuses_anonymous(basic_auth_registry: RegistryServer) -> None:
    push_image(basic_auth_registry, "infra/basic", "v1")
    anonymous = OciClient(basic_auth_registry, anonymous=True)
    resp = anonymous.request("GET", "/v2/infra/basic/manifests/v1", ok=(401,))
    assert parse_challenge(resp.header("WWW-Authenticate") or "")[0] == "basic"
    wrong = OciClient(basic_auth_registry, password="wrong")
    wrong.request("GET", "/v2/infra/basic/manifests/v1", ok=(401,))


def test_token_auth_refuses_anonymous_and_accepts_a_token(
    token_auth_registry: RegistryServer,
) -> None:
    server = token_auth_registry
    image = push_image(server, "infra/token", "v1")
    path = "/v2/infra/token/manifests/v1"
    anonymous = OciClient(server, anonymous=True)
    first = anonymous.send("GET", server.url(path), b"", {})
    assert first.status == 401
    scheme, challenge = parse_challenge(first.header("WWW-Authenticate") or "")
    assert scheme == "bearer"
    assert challenge["service"] == "sbomgate-test-registry"
    assert challenge["scope"] == "repository:infra/token:pull"
    assert challenge["realm"].startswith("https://localhost:")
    # An anonymous token carries no access: the registry still says 401.
    anonymous.request("GET", path, ok=(401,))
    # Wrong credentials: the token server itself refuses.
    with pytest.raises(Exception, match="401"):
        OciClient(server, password="wrong").fetch_token(challenge)
    # Good credentials: a JWT signed with the x5c key the registry trusts.
    token = OciClient(server).fetch_token(challenge)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["x5c"]
    resp = anonymous.send(
        "GET", server.url(path), b"", {"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST}
    )
    assert resp.status == 200 and sha256_digest(resp.body) == image.digest
    # A pull token does not allow a push.
    put = anonymous.send(
        "PUT",
        server.url("/v2/infra/token/manifests/v2"),
        resp.body,
        {"Authorization": f"Bearer {token}", "Content-Type": OCI_MANIFEST},
    )
    assert put.status == 401


def test_referrers_registry_filters_and_never_404s(referrers_registry: RegistryServer) -> None:
    client = OciClient(referrers_registry)
    unknown = "sha256:" + "0" * 64
    resp = client.referrers("no/such-repo", unknown)
    assert resp.status == 200 and resp.json()["manifests"] == []
    image = push_image(referrers_registry, "infra/filter", "v1")
    a = attach_referrer(
        referrers_registry,
        "infra/filter",
        image.digest,
        artifact_type="application/x.a",
        blob=b"a",
        blob_media_type="text/plain",
        annotations={"k": "a"},
        fallback_tag=False,
    )
    attach_referrer(
        referrers_registry,
        "infra/filter",
        image.digest,
        artifact_type="application/x.b",
        blob=b"b",
        blob_media_type="text/plain",
        fallback_tag=False,
    )
    listing = client.referrers("infra/filter", image.digest).json()["manifests"]
    assert sorted(m["artifactType"] for m in listing) == ["application/x.a", "application/x.b"]
    filtered = client.referrers("infra/filter", image.digest, artifact_type="application/x.a")
    assert filtered.header("OCI-Filters-Applied") == "artifactType"
    assert [(m["digest"], m["annotations"]) for m in filtered.json()["manifests"]] == [
        (a, {"k": "a"})
    ]
    assert fallback_tag(image.digest) not in client.tags("infra/filter")


def test_attach_referrer_maintains_the_fallback_tag(plain_registry: RegistryServer) -> None:
    client = OciClient(plain_registry)
    image = push_image(plain_registry, "infra/attach", "v1")
    assert client.referrers("infra/attach", image.digest).status == 404  # distribution 2.8
    digests = [
        attach_referrer(
            plain_registry,
            "infra/attach",
            image.digest,
            artifact_type=f"application/x.{n}",
            blob=n.encode(),
            blob_media_type="text/plain",
            annotations={"n": n},
            fallback_tag=True,
        )
        for n in ("one", "two")
    ]
    index = _json(client, "infra/attach", fallback_tag(image.digest))
    assert index["mediaType"] == OCI_INDEX
    assert [(m["digest"], m["artifactType"], m["annotations"]) for m in index["manifests"]] == [
        (digests[0], "application/x.one", {"n": "one"}),
        (digests[1], "application/x.two", {"n": "two"}),
    ]
    artifact = _json(client, "infra/attach", digests[1])
    assert artifact["artifactType"] == "application/x.two"
    assert artifact["config"]["mediaType"] == OCI_EMPTY
    assert artifact["subject"]["digest"] == image.digest
    assert client.get_blob("infra/attach", artifact["layers"][0]["digest"]) == b"two"


# --------------------------------------------------------------------------- cosign


@pytest.mark.parametrize("fixture", ["plain_registry", "referrers_registry"])
def test_cosign_legacy_att_tag(
    fixture: str, request: pytest.FixtureRequest, cosign_key: CosignKey, bom_file: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    client = OciClient(server)
    image = push_image(server, "infra/legacy", "v1")
    cosign_attest(
        server, image.digest_ref, bom_file, "cyclonedx", cosign_key, new_bundle_format=False
    )
    assert cosign_tag(image.digest, "att") in client.tags("infra/legacy")
    att = _json(client, "infra/legacy", cosign_tag(image.digest, "att"))
    assert att["mediaType"] == OCI_MANIFEST
    assert "subject" not in att and "artifactType" not in att
    [layer] = att["layers"]
    assert layer["mediaType"] == DSSE_MEDIA_TYPE
    # No Rekor upload, so no "dev.sigstore.cosign/bundle" annotation.
    assert layer["annotations"] == {
        "dev.cosignproject.cosign/signature": "",
        "predicateType": CYCLONEDX_PREDICATE,
    }
    envelope = json.loads(client.get_blob("infra/legacy", layer["digest"]))
    assert envelope["payloadType"] == IN_TOTO_MEDIA_TYPE
    statement = _verify_dsse(envelope, cosign_key.public_key_path.read_bytes())
    assert statement["_type"] == "https://in-toto.io/Statement/v0.1"
    assert statement["predicateType"] == CYCLONEDX_PREDICATE
    assert statement["predicate"] == BOM  # the BOM itself, not wrapped
    alg, _, hex_ = image.digest.partition(":")
    assert statement["subject"] == [{"name": f"{server.host}/infra/legacy", "digest": {alg: hex_}}]
    if server.referrers_api:
        assert client.referrers("infra/legacy", image.digest).json()["manifests"] == []


@pytest.mark.parametrize("fixture", ["plain_registry", "referrers_registry"])
def test_cosign_new_bundle_format(
    fixture: str, request: pytest.FixtureRequest, cosign_key: CosignKey, bom_file: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    client = OciClient(server)
    image = push_image(server, "infra/bundle", "v1")
    cosign_attest(
        server, image.digest_ref, bom_file, "cyclonedx", cosign_key, new_bundle_format=True
    )
    tags = client.tags("infra/bundle")
    assert cosign_tag(image.digest, "att") not in tags
    if server.referrers_api:
        assert fallback_tag(image.digest) not in tags
        [desc] = client.referrers("infra/bundle", image.digest).json()["manifests"]
        assert desc["annotations"]["dev.sigstore.bundle.predicateType"] == CYCLONEDX_PREDICATE
    else:
        assert client.referrers("infra/bundle", image.digest).status == 404
        [desc] = _json(client, "infra/bundle", fallback_tag(image.digest))["manifests"]
        assert "annotations" not in desc  # ggcr's fallback-tag descriptors carry none
    assert desc["artifactType"] == SIGSTORE_BUNDLE_V03
    assert desc["mediaType"] == OCI_MANIFEST
    manifest = _json(client, "infra/bundle", desc["digest"])
    assert manifest["artifactType"] == SIGSTORE_BUNDLE_V03
    assert manifest["config"]["mediaType"] == OCI_EMPTY
    assert manifest["subject"]["digest"] == image.digest
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == CYCLONEDX_PREDICATE
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIGSTORE_BUNDLE_V03
    bundle = json.loads(client.get_blob("infra/bundle", layer["digest"]))
    assert bundle["mediaType"] == SIGSTORE_BUNDLE_V03
    pem = cosign_key.public_key_path.read_bytes()
    spki = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": hint}}
    assert bundle["dsseEnvelope"]["payloadType"] == IN_TOTO_MEDIA_TYPE
    statement = _verify_dsse(bundle["dsseEnvelope"], pem)
    assert statement["predicate"] == BOM
    assert statement["subject"][0]["digest"] == {"sha256": image.digest.split(":")[1]}


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_cosign_imported_keys_sign(
    kind: str, tmp_path: Path, referrers_registry: RegistryServer, bom_file: Path
) -> None:
    key = cosign_keypair(tmp_path, kind)
    assert "ENCRYPTED SIGSTORE PRIVATE KEY" in key.private_key_path.read_text()
    image = push_image(referrers_registry, "infra/keys", kind)
    cosign_attest(
        referrers_registry, image.digest_ref, bom_file, "spdxjson", key, new_bundle_format=False
    )
    client = OciClient(referrers_registry)
    [layer] = _json(client, "infra/keys", cosign_tag(image.digest, "att"))["layers"]
    assert layer["annotations"]["predicateType"] == SPDX_PREDICATE
    envelope = json.loads(client.get_blob("infra/keys", layer["digest"]))
    _verify_dsse(envelope, key.public_key_path.read_bytes())


# --------------------------------------------------------------------------- BuildKit


def test_buildkit_index_has_attestation_manifests(tls_registry: RegistryServer) -> None:
    sbom = in_toto_statement(SPDX_PREDICATE, {"spdxVersion": "SPDX-2.3", "packages": []})
    wrong = "sha256:" + "1" * 64
    provenance = in_toto_statement(SLSA_PROVENANCE_V1, {"buildDefinition": {}}, wrong)
    image = push_buildkit_image(
        tls_registry,
        "infra/buildkit",
        "v1",
        platforms=["linux/amd64", "linux/arm64"],
        sbom_statement=sbom,
        provenance_statement=provenance,
    )
    client = OciClient(tls_registry)
    index = _json(client, "infra/buildkit", "v1")
    assert sha256_digest(client.get_manifest("infra/buildkit", "v1")[0]) == image.digest
    attestations = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    assert len(attestations) == 2 and len(index["manifests"]) == 4
    for platform, platform_digest in image.platform_digests.items():
        [att] = [
            m
            for m in attestations
            if m["annotations"]["vnd.docker.reference.digest"] == platform_digest
        ]
        assert att["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
        assert att["platform"] == {"architecture": "unknown", "os": "unknown"}
        assert att["digest"] == image.attestation_digests[platform]
        layers = _json(client, "infra/buildkit", att["digest"])["layers"]
        assert [layer["mediaType"] for layer in layers] == [IN_TOTO_MEDIA_TYPE] * 2
        types = [layer["annotations"]["in-toto.io/predicate-type"] for layer in layers]
        assert types == [SPDX_PREDICATE, SLSA_PROVENANCE_V1]
        statements = [json.loads(client.get_blob("infra/buildkit", x["digest"])) for x in layers]
        assert statements[0]["subject"][0]["digest"] == {"sha256": platform_digest.split(":")[1]}
        assert statements[1]["subject"][0]["digest"] == {"sha256": "1" * 64}  # kept as given
