"""DSSE envelopes, in-toto statements, Sigstore bundles, and key-based signature checks."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.attest.envelope import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_SIGNATURES,
    Envelope,
    FormatError,
    Signature,
    Subject,
    b64decode,
    pae,
    parse_bundle,
    parse_envelope,
    parse_statement,
)
from sbomgate.attest.keys import KeyMaterialError, PublicKey, load_public_key

DIGEST = "a" * 64
OTHER = "b" * 64
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def std(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def statement(**extra: Any) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6"},
        **extra,
    }


def envelope(body: bytes = b"{}", sigs: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": std(body),
        "signatures": [{"keyid": "k1", "sig": std(b"sig")}] if sigs is None else sigs,
        **extra,
    }


# --- PAE ------------------------------------------------------------------------------------


def test_pae_matches_the_dsse_specification_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("tÿpe", b"") == "DSSEv1 5 tÿpe 0 ".encode()
    assert pae("", b"\x00\n") == b"DSSEv1 0  2 \x00\n"


def test_envelope_signed_bytes_is_pae() -> None:
    env = parse_envelope(orjson.dumps(envelope(b"payload")))
    assert env.signed_bytes == pae(IN_TOTO_PAYLOAD_TYPE, b"payload")


# --- base64 ---------------------------------------------------------------------------------


RAW = b"\xfb\xff\xbfhello"  # encodes with + and / (standard) or - and _ (URL-safe)


@pytest.mark.parametrize(
    "encoded",
    [std(RAW), std(RAW).rstrip("="), urlsafe(RAW), urlsafe(RAW) + "=", f"  {std(RAW)}\n"],
)
def test_b64decode_accepts_standard_and_url_safe_padded_or_not(encoded: str) -> None:
    assert b64decode(encoded, "x") == RAW


@pytest.mark.parametrize(
    "bad", ["a", "ab!c", "aGVsbG8-!!!", "aGk=aGk=", "é", "a b c d", "aGVs bG8=", "QUJD===="]
)
def test_b64decode_refuses_junk(bad: str) -> None:
    with pytest.raises(FormatError, match=r"^sig is not valid base64$"):
        b64decode(bad, "sig")


@pytest.mark.parametrize("bad", [None, 5, b"aGk=", ["aGk="]])
def test_b64decode_refuses_non_strings(bad: Any) -> None:
    with pytest.raises(FormatError, match=r"^payload must be a base64 string$"):
        b64decode(bad, "payload")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_b64decode_round_trips(raw: bytes) -> None:
    assert b64decode(std(raw), "x") == raw
    assert b64decode(urlsafe(raw), "x") == raw


# --- envelopes ------------------------------------------------------------------------------


def test_parse_envelope() -> None:
    doc = envelope(
        b'{"a":1}',
        [{"keyid": "k1", "sig": std(b"one")}, {"sig": urlsafe(b"\xff\xfe two")}],
    )
    assert parse_envelope(orjson.dumps(doc)) == Envelope(
        IN_TOTO_PAYLOAD_TYPE,
        b'{"a":1}',
        (Signature("k1", b"one"), Signature("", b"\xff\xfe two")),
    )
    # A mapping is accepted as well as bytes.
    assert parse_envelope(doc).payload == b'{"a":1}'


def test_envelope_with_exactly_max_signatures() -> None:
    sigs = [{"sig": std(b"s")}] * MAX_SIGNATURES
    assert len(parse_envelope(envelope(sigs=sigs)).signatures) == MAX_SIGNATURES


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({k: v for k, v in envelope().items() if k != "payloadType"}, "has no payloadType"),
        (envelope(payloadType=""), "has no payloadType"),
        (envelope(payloadType=3), "has no payloadType"),
        (
            {k: v for k, v in envelope().items() if k != "payload"},
            "DSSE payload must be a base64 string",
        ),
        (envelope(payload="***"), "DSSE payload is not valid base64"),
        ({k: v for k, v in envelope().items() if k != "signatures"}, "has no signatures list"),
        (envelope(signatures={"sig": "aGk="}), "has no signatures list"),
        (
            envelope(sigs=[{"sig": "aGk="}] * (MAX_SIGNATURES + 1)),
            f"more than {MAX_SIGNATURES} signatures",
        ),
        (envelope(sigs=["aGk="]), "DSSE signatures[0] is not an object"),
        (
            envelope(sigs=[{"sig": "aGk="}, {"keyid": "k"}]),
            "DSSE signatures[1].sig must be a base64 string",
        ),
        (envelope(sigs=[{"sig": "a"}]), "DSSE signatures[0].sig is not valid base64"),
    ],
)
def test_bad_envelopes(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError) as caught:
        parse_envelope(orjson.dumps(doc))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "DSSE envelope is not JSON"),
        (b"[1]", "DSSE envelope is not a JSON object"),
        (b"\xff", "not JSON"),
    ],
)
def test_envelope_not_a_json_object(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_envelope(data)


# --- statements -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement_type",
    [
        "https://in-toto.io/Statement/v0.1",
        "https://in-toto.io/Statement/v1",
        "https://in-toto.io/Statement/v1.0",
    ],
)
def test_parse_statement_versions(statement_type: str) -> None:
    parsed = parse_statement(orjson.dumps(statement(_type=statement_type)))
    assert parsed.statement_type == statement_type
    assert parsed.predicate_type == "https://cyclonedx.org/bom"
    assert parsed.predicate == {"bomFormat": "CycloneDX", "specVersion": "1.6"}
    assert parsed.subjects == (Subject("ghcr.io/acme/app", {"sha256": DIGEST}),)


def test_binds_only_the_subject_digest() -> None:
    parsed = parse_statement(
        orjson.dumps(
            statement(
                subject=[
                    {"name": "a", "digest": {"sha256": DIGEST.upper()}},
                    {"digest": {"sha512": "c" * 128}},
                ]
            )
        )
    )
    assert parsed.binds(f"sha256:{DIGEST}")
    assert parsed.binds("sha512:" + "c" * 128)
    assert not parsed.binds(f"sha256:{OTHER}")  # copied from another image: a replay
    assert not parsed.binds(f"sha512:{DIGEST}")
    assert parsed.subject_digests() == [f"sha256:{DIGEST.upper()}", "sha512:" + "c" * 128]
    assert parsed.subjects[1].name == ""


@pytest.mark.parametrize("digest", ["", "sha256:", "sha384:", ":", "garbage", f":{DIGEST}", "sha1"])
def test_malformed_digests_never_bind(digest: str) -> None:
    parsed = parse_statement(orjson.dumps(statement(subject=[{"digest": {"sha256": DIGEST}}])))
    assert not parsed.binds(digest)
    empty = parse_statement(orjson.dumps(statement(subject=[{"digest": {"sha256": ""}}])))
    assert not empty.binds(digest)


def test_subject_with_empty_digest_map_binds_nothing() -> None:
    parsed = parse_statement(orjson.dumps(statement(subject=[{"digest": {}}])))
    assert not parsed.binds(f"sha256:{DIGEST}")
    assert not parsed.binds("sha256:")


def test_cosign_1_wrapped_predicate_is_unwrapped() -> None:
    inner = {"bomFormat": "CycloneDX", "components": []}
    as_text = statement(
        predicate={"Data": orjson.dumps(inner).decode(), "Timestamp": "2023-01-01T00:00:00Z"}
    )
    assert parse_statement(orjson.dumps(as_text)).predicate == inner
    as_object = statement(predicate={"Data": inner, "Timestamp": "2023"})
    assert parse_statement(orjson.dumps(as_object)).predicate == inner
    plain_text = statement(predicate={"Data": "not json at all", "Timestamp": "2023"})
    assert parse_statement(orjson.dumps(plain_text)).predicate == "not json at all"


def test_predicates_that_only_look_wrapped_are_kept() -> None:
    extra_key = {"Data": "{}", "Timestamp": "t", "other": 1}
    assert parse_statement(orjson.dumps(statement(predicate=extra_key))).predicate == extra_key
    assert parse_statement(orjson.dumps(statement(predicate=[1, 2]))).predicate == [1, 2]
    missing = statement()
    del missing["predicate"]
    assert parse_statement(orjson.dumps(missing)).predicate is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (statement(_type="https://example/Statement"), "not an in-toto statement"),
        (
            {k: v for k, v in statement().items() if k != "_type"},
            "not an in-toto statement (_type 'None')",
        ),
        (
            {k: v for k, v in statement().items() if k != "subject"},
            "in-toto statement has no subject",
        ),
        (statement(subject=[]), "in-toto statement has no subject"),
        (statement(subject={"digest": {"sha256": DIGEST}}), "in-toto statement has no subject"),
        (statement(subject=[{"name": "x"}]), "subject[0] has no digest map"),
        (statement(subject=[{"digest": {"sha256": DIGEST}}, "x"]), "subject[1] has no digest map"),
        (statement(subject=[{"digest": {"sha256": 5}}]), "subject[0] has no digest map"),
        (statement(subject=[{"digest": [DIGEST]}]), "subject[0] has no digest map"),
        ({k: v for k, v in statement().items() if k != "predicateType"}, "has no predicateType"),
        (statement(predicateType=""), "has no predicateType"),
        (statement(predicateType=["x"]), "has no predicateType"),
    ],
)
def test_bad_statements(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError) as caught:
        parse_statement(orjson.dumps(doc))
    assert message in str(caught.value)


# --- bundles --------------------------------------------------------------------------------


def bundle(material: dict[str, Any], **extra: Any) -> bytes:
    doc = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": material,
        "dsseEnvelope": envelope(orjson.dumps(statement())),
        **extra,
    }
    return orjson.dumps(doc)


def test_bundle_with_certificate() -> None:
    data = bundle({"certificate": {"rawBytes": std(b"DER-leaf")}, "tlogEntries": []})
    parsed = parse_bundle(data)
    assert parsed.media_type == BUNDLE_V03
    assert parsed.certificate_der == b"DER-leaf"
    assert parsed.public_key_hint is None
    assert parsed.raw == data
    assert parse_statement(parsed.envelope.payload).binds(f"sha256:{DIGEST}")


def test_bundle_with_certificate_chain_takes_the_leaf() -> None:
    chain = {"certificates": [{"rawBytes": std(b"leaf")}, {"rawBytes": std(b"intermediate")}]}
    parsed = parse_bundle(
        bundle(
            {"x509CertificateChain": chain},
            mediaType="application/vnd.dev.sigstore.bundle+json;version=0.1",
        )
    )
    assert parsed.certificate_der == b"leaf"


def test_bundle_with_public_key_hint() -> None:
    parsed = parse_bundle(bundle({"publicKey": {"hint": "abc123"}}))
    assert parsed.certificate_der is None
    assert parsed.public_key_hint == "abc123"
    assert parse_bundle(bundle({"publicKey": {}})).public_key_hint == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            bundle({"publicKey": {"hint": "h"}}, mediaType="application/json"),
            "not a Sigstore bundle",
        ),
        (bundle({"publicKey": {"hint": "h"}}, mediaType=None), "not a Sigstore bundle"),
        (
            bundle({"publicKey": {"hint": "h"}}, verificationMaterial=[]),
            "has no verificationMaterial",
        ),
        (bundle({"publicKey": {"hint": "h"}}, dsseEnvelope=None), "has no dsseEnvelope"),
        (
            bundle(
                {"publicKey": {"hint": "h"}},
                dsseEnvelope=None,
                messageSignature={"signature": "aGk="},
            ),
            "a message signature is not an attestation",
        ),
        (bundle({}), "neither a certificate nor a public key"),
        (
            bundle({"x509CertificateChain": {"certificates": []}}),
            "neither a certificate nor a public key",
        ),
        (bundle({"certificate": {"rawBytes": "%%%"}}), "bundle certificate is not valid base64"),
        (bundle({"certificate": {}}), "bundle certificate must be a base64 string"),
        (bundle({"x509CertificateChain": {"certificates": [1]}}), "chain entry is not an object"),
        (bundle({"publicKey": {"hint": "h"}}, dsseEnvelope={"payloadType": "x"}), "DSSE payload"),
        (b"[]", "Sigstore bundle is not a JSON object"),
    ],
)
def test_bad_bundles(data: bytes, message: str) -> None:
    with pytest.raises(FormatError) as caught:
        parse_bundle(data)
    assert message in str(caught.value)


# --- arbitrary input ------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
_b64ish = st.text(alphabet="aGk=-_+/!", max_size=12)
_envelope_doc = st.fixed_dictionaries(
    {},
    optional={
        "payloadType": st.just(IN_TOTO_PAYLOAD_TYPE) | _json,
        "payload": _b64ish | _json,
        "signatures": st.lists(
            st.fixed_dictionaries({}, optional={"keyid": _json, "sig": _b64ish | _json}) | _json,
            max_size=3,
        )
        | _json,
    },
)
_statement_doc = st.fixed_dictionaries(
    {},
    optional={
        "_type": st.just("https://in-toto.io/Statement/v1") | _json,
        "subject": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": _json,
                    "digest": st.dictionaries(
                        st.text(max_size=6), _json | st.text(max_size=6), max_size=2
                    )
                    | _json,
                },
            )
            | _json,
            max_size=3,
        )
        | _json,
        "predicateType": st.text(max_size=10) | _json,
        "predicate": st.fixed_dictionaries({}, optional={"Data": _json, "Timestamp": _json})
        | _json,
    },
)
_bundle_doc = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.just(BUNDLE_V03) | _json,
        "verificationMaterial": st.fixed_dictionaries(
            {},
            optional={
                "certificate": st.fixed_dictionaries({}, optional={"rawBytes": _b64ish | _json})
                | _json,
                "x509CertificateChain": st.fixed_dictionaries(
                    {},
                    optional={
                        "certificates": st.lists(
                            _json | st.fixed_dictionaries({"rawBytes": _b64ish}), max_size=2
                        )
                        | _json
                    },
                )
                | _json,
                "publicKey": st.fixed_dictionaries({}, optional={"hint": _json}) | _json,
            },
        )
        | _json,
        "dsseEnvelope": _envelope_doc | _json,
    },
)


@settings(max_examples=150, deadline=None)
@given(_envelope_doc | _json, _statement_doc | _json, _bundle_doc | _json)
def test_arbitrary_json_raises_only_format_error(env: Any, stmt: Any, bun: Any) -> None:
    for parse, doc in ((parse_envelope, env), (parse_statement, stmt), (parse_bundle, bun)):
        with contextlib.suppress(FormatError):
            parse(orjson.dumps(doc))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100))
def test_arbitrary_bytes_raise_only_format_error(data: bytes) -> None:
    for parse in (parse_envelope, parse_statement, parse_bundle):
        with contextlib.suppress(FormatError):
            parse(data)


# --- public keys ----------------------------------------------------------------------------


def public_pem(private: Any) -> bytes:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


DATA = pae(IN_TOTO_PAYLOAD_TYPE, b'{"_type":"https://in-toto.io/Statement/v1"}')


def check(public: PublicKey, signature: bytes) -> None:
    assert public.verify(signature, DATA)
    assert not public.verify(signature, DATA + b" ")
    assert not public.verify(signature[:-1] + bytes([signature[-1] ^ 1]), DATA)
    assert not public.verify(b"", DATA)
    assert not public.verify(b"\x30\x00", DATA)


def test_ecdsa_p256_der_signature_over_sha256(p256: ec.EllipticCurvePrivateKey) -> None:
    public = load_public_key(public_pem(p256))
    assert public.kind == "ecdsa-secp256r1"
    check(public, p256.sign(DATA, ec.ECDSA(hashes.SHA256())))
    # The key id is the SHA-256 of the DER SubjectPublicKeyInfo (what Sigstore hints carry).
    der = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public.key_id == hashlib.sha256(der).hexdigest()


def test_ecdsa_p384_signature_over_sha384() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    public = load_public_key(public_pem(private))
    assert public.kind == "ecdsa-secp384r1"
    check(public, private.sign(DATA, ec.ECDSA(hashes.SHA384())))
    assert not public.verify(private.sign(DATA, ec.ECDSA(hashes.SHA256())), DATA)


def test_ed25519_pure_and_prehashed() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    public = load_public_key(public_pem(private))
    assert public.kind == "ed25519"
    check(public, private.sign(DATA))

    from Crypto.Hash import SHA512
    from Crypto.Signature import eddsa

    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    prehashed = eddsa.new(eddsa.import_private_key(raw), "rfc8032").sign(SHA512.new(DATA))
    check(public, prehashed)


def test_rsa_pkcs1v15_and_pss(rsa_key: rsa.RSAPrivateKey) -> None:
    public = load_public_key(public_pem(rsa_key))
    assert public.kind == "rsa-2048"
    check(public, rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256()))
    for salt in (32, padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
        check(public, rsa_key.sign(DATA, pss, hashes.SHA256()))


def test_signature_by_another_key_is_refused(
    p256: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    signature = other.sign(DATA, ec.ECDSA(hashes.SHA256()))
    assert not load_public_key(public_pem(p256)).verify(signature, DATA)
    assert not load_public_key(public_pem(rsa_key)).verify(signature, DATA)
    ed = ed25519.Ed25519PrivateKey.generate()
    assert not load_public_key(public_pem(ed25519.Ed25519PrivateKey.generate())).verify(
        ed.sign(DATA), DATA
    )


def test_private_key_pem_is_refused(p256: ec.EllipticCurvePrivateKey) -> None:
    pem = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyMaterialError, match="this is a private key: give the public key"):
        load_public_key(pem)


def test_small_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyMaterialError, match="RSA key of 1024 bits is too small"):
        load_public_key(public_pem(small))


@pytest.mark.parametrize(
    "private",
    [
        pytest.param(lambda: ed448.Ed448PrivateKey.generate(), id="ed448"),
        pytest.param(lambda: dsa.generate_private_key(1024), id="dsa"),
    ],
)
def test_unsupported_key_types_are_refused(private: Any) -> None:
    with pytest.raises(KeyMaterialError, match="unsupported key type"):
        load_public_key(public_pem(private()))


def test_unsupported_curve_is_refused() -> None:
    with pytest.raises(KeyMaterialError, match="unsupported elliptic curve secp256k1"):
        load_public_key(public_pem(ec.generate_private_key(ec.SECP256K1())))


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a key",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ],
)
def test_garbage_is_not_a_public_key(garbage: bytes) -> None:
    with pytest.raises(KeyMaterialError, match=r"^not a PEM public key"):
        load_public_key(garbage)
