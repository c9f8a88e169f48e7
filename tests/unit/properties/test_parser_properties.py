"""Properties of the parsers the other property files leave out, and the regressions the atheris
targets (fuzz/) found.

Every input parses or raises the parser's own error with a one-line message:
  - DSSE envelopes, in-toto statements, Sigstore bundles: FormatError;
  - the verifier over hostile attestations (unsigned, or signed by a trusted key with hostile
    content): checks and refusals, never an exception; what verifies is bound to the image;
  - CycloneDX XML with hostile root attributes and encoding declarations: SbomError.
(AdmissionReview: test_webhook_properties.py; CycloneDX JSON/XML and SPDX bodies:
test_sbom_properties.py; OCI manifests: test_oci_manifest.py; references:
test_registry_reference.py; workloads: test_workload.py.)
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from strategies import edited, json_values, settings_for, words

from sbomgate.attest.envelope import (
    IN_TOTO_PAYLOAD_TYPE,
    FormatError,
    pae,
    parse_bundle,
    parse_envelope,
    parse_statement,
)
from sbomgate.attest.trust import parse_trust_policy
from sbomgate.attest.verifier import AttestationVerifier, VerifiedDocument
from sbomgate.config import ServeConfig
from sbomgate.errors import SbomError, SbomgateError
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
from sbomgate.runtime import build_controller
from sbomgate.sbom import Sbom, parse_sbom, parse_sbom_document
from sbomgate.serving.app import create_app
from sbomgate.serving.metrics import Metrics

SETTINGS = settings_for(150)
DIGEST = "sha256:" + "a" * 64
PLATFORM = "sha256:" + "b" * 64
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CYCLONEDX = "https://cyclonedx.org/bom"
SLSA1 = "https://slsa.dev/provenance/v1"

VOCABULARY = (
    ["payloadType", "payload", "signatures", "keyid", "sig", IN_TOTO_PAYLOAD_TYPE, "_type",
     "https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1", "subject",
     "digest", "sha256", "a" * 64, "predicateType", "predicate", "Data", "Timestamp", CYCLONEDX,
     SLSA1, "mediaType", BUNDLE_TYPE, "verificationMaterial", "certificate",
     "x509CertificateChain", "certificates", "rawBytes", "publicKey", "hint", "dsseEnvelope",
     "runDetails", "builder", "id", "materials", "uri", "", "=", "-_", "aGk=", "bomFormat",
     "CycloneDX", "specVersion", "1.6", "components", "name", "purl"]
)  # fmt: skip
TEXT = words(VOCABULARY, max_size=10)
JSONISH = json_values(TEXT, max_leaves=16)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def statement(predicate_type: str = CYCLONEDX, predicate: Any = None) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": "a" * 64}}],
        "predicateType": predicate_type,
        "predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
        if predicate is None
        else predicate,
    }


def envelope(payload: bytes) -> dict[str, Any]:
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(payload),
        "signatures": [{"keyid": "k", "sig": b64(b"not a signature")}],
    }


def bundle(dsse: dict[str, Any]) -> dict[str, Any]:
    return {
        "mediaType": BUNDLE_TYPE,
        "verificationMaterial": {"certificate": {"rawBytes": b64(b"DER")}, "tlogEntries": []},
        "dsseEnvelope": dsse,
    }


def edited_json(document: Any) -> st.SearchStrategy[Any]:
    """`document` edited at drawn paths with this family's words and values."""
    return edited(document, JSONISH, TEXT)


def one_line(exc: BaseException) -> None:
    assert str(exc).strip() and "\n" not in str(exc), repr(str(exc))


# -- DSSE envelopes, in-toto statements, Sigstore bundles ------------------------------------

DOCUMENTS = st.one_of(
    JSONISH,
    edited_json(envelope(orjson.dumps(statement()))),
    edited_json(statement()),
    edited_json(bundle(envelope(orjson.dumps(statement())))),
)


def parse_all(data: bytes) -> None:
    for parse in (parse_envelope, parse_statement, parse_bundle):
        try:
            parse(data)
        except FormatError as exc:
            one_line(exc)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_format_error(data: bytes) -> None:
    parse_all(data)


@SETTINGS
@given(DOCUMENTS)
@example({"payloadType": "x", "payload": "\u00e9", "signatures": []})  # non-ASCII base64
@example({"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": 1}}]})
@example(bundle({"payloadType": "x", "payload": "", "signatures": [[]]}))
def test_any_json_parses_or_raises_format_error(document: Any) -> None:
    parse_all(orjson.dumps(document))
    if isinstance(document, dict):
        try:
            found = parse_envelope(document)  # the decoded form a bundle hands over
        except FormatError as exc:
            one_line(exc)
        else:
            assert isinstance(found.payload, bytes) and found.signed_bytes.startswith(b"DSSEv1 ")


@SETTINGS
@given(edited_json(statement()))
def test_a_statement_binds_the_digests_it_names_and_no_degenerate_one(document: Any) -> None:
    try:
        parsed = parse_statement(orjson.dumps(document))
    except FormatError as exc:
        one_line(exc)
        return
    for digest in ("", ":", "sha256:", ":" + "a" * 64):
        assert not parsed.binds(digest)  # never a match on a missing algorithm or value
    for digest in parsed.subject_digests():
        algorithm, _, value = digest.partition(":")
        assert parsed.binds(digest) is bool(algorithm and value)


# -- the verifier over hostile attestations ---------------------------------------------------

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
SIGNED = parse_trust_policy(
    {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "signed"},
        "spec": {
            "images": ["**"],
            "authorities": [{"name": "key", "key": {"data": PEM}}],
            "attestations": [
                {"name": "sbom", "predicateTypes": ["cyclonedx"]},
                {
                    "name": "provenance",
                    "predicateTypes": ["slsaprovenance1"],
                    "required": False,
                    "builderIds": ["https://builder"],
                    "sourceRepositories": ["https://github.com/acme/*"],
                },
            ],
        },
    },
    "test",
)
UNSIGNED = parse_trust_policy(
    {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "unsigned"},
        "spec": {"images": ["ghcr.io/acme/**"], "allowUnsigned": True},
    },
    "test",
)
VERIFIER = AttestationVerifier([SIGNED, UNSIGNED])
PROVENANCE = {
    "runDetails": {"builder": {"id": "https://builder"}},
    "buildDefinition": {"externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}}},
}  # fmt: skip


def signed_envelope(payload: bytes) -> dict[str, Any]:
    signature = KEY.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(payload),
        "signatures": [{"sig": b64(signature)}],
    }


def verify(content: Content, data: bytes, attached_to: str, is_index: bool) -> None:
    found = FoundAttestation(Layout.REFERRER, content, attached_to, "test", "m", data)
    image = DiscoveredImage(
        parse_reference("ghcr.io/acme/app@" + DIGEST),
        DIGEST,
        is_index,
        (PlatformImage(PLATFORM, None),) if is_index else (),
        (found,),
    )
    verification = VERIFIER.verify(image)  # never raises
    acceptable = {attached_to, DIGEST} if is_index else {attached_to}
    for check in verification.checks:
        if not check.verified:
            assert check.error
            continue
        if check.statement is not None:
            assert any(check.statement.binds(d) for d in acceptable)
        if check.policy == "signed":
            assert check.signer == "key key"
    for document in verification.sboms:
        try:
            assert isinstance(parse_verified_sbom(document, "test"), Sbom)
        except SbomError as exc:
            one_line(exc)
    _provenance_summary(verification.provenance)


ATTACHED = st.sampled_from([DIGEST, DIGEST, PLATFORM, "sha256:" + "c" * 64])


@SETTINGS
@given(
    edited_json(statement()) | edited_json(statement(SLSA1, PROVENANCE)) | JSONISH,
    st.booleans(),
    ATTACHED,
    st.booleans(),
)
@example(statement(SLSA1, {"runDetails": "x"}), False, DIGEST, False)  # regression (fuzz)
def test_signed_hostile_statements_verify_or_are_refused(
    document: Any, as_bundle: bool, attached_to: str, is_index: bool
) -> None:
    dsse = signed_envelope(orjson.dumps(document))
    if as_bundle:
        data = {"mediaType": BUNDLE_TYPE, "verificationMaterial": {"publicKey": {"hint": "h"}},
                "dsseEnvelope": dsse}  # fmt: skip
        verify(Content.BUNDLE, orjson.dumps(data), attached_to, is_index)
    else:
        verify(Content.DSSE, orjson.dumps(dsse), attached_to, is_index)


@SETTINGS
@given(
    st.sampled_from(list(Content)),
    DOCUMENTS | edited_json({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}),
    ATTACHED,
    st.booleans(),
)
def test_unsigned_hostile_attestations_are_refused_or_allowed_as_unsigned(
    content: Content, document: Any, attached_to: str, is_index: bool
) -> None:
    verify(content, orjson.dumps(document), attached_to, is_index)


@SETTINGS
@given(st.lists(JSONISH, max_size=3))
@example([{"runDetails": "x"}])
@example([{"runDetails": ["x"], "builder": "y"}])
def test_the_provenance_summary_reads_any_signed_predicate(predicates: list[Any]) -> None:
    documents = [VerifiedDocument(DIGEST, SLSA1, p, "test") for p in predicates]
    summary = _provenance_summary(documents)
    if predicates:
        assert summary is not None
        assert summary["builder_id"] is None or isinstance(summary["builder_id"], str | int | float | bool | dict | list)  # fmt: skip


# -- CycloneDX XML root attributes and encodings ------------------------------------------


@SETTINGS
@given(
    version=st.text(max_size=30) | st.sampled_from(["²", "١٢", "9" * 19, "1" * 5000, "007"]),
    serial=st.text(max_size=20),
    namespace_tail=st.sampled_from(["1.6", "1.4"]) | st.text(max_size=8),
    encoding=st.sampled_from(
        [None, "utf-8", "latin-1", "ascii", "UTF-7", "utf-16", "shift_jis", "nope", "cp1252"]
    ),
)
@example(version="²", serial="", namespace_tail="1.6", encoding=None)
@example(version="1", serial="", namespace_tail="1.6", encoding="UTF-7")
def test_xml_root_attributes_and_encodings(
    version: str, serial: str, namespace_tail: str, encoding: str | None
) -> None:
    xml = (
        f"<bom xmlns={quoteattr('http://cyclonedx.org/schema/bom/' + namespace_tail)} "
        f"version={quoteattr(version)} serialNumber={quoteattr(serial)}>"
        "<components><component type='library'><name>a</name></component></components></bom>"
    )
    head = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    try:
        data = (head + xml).encode("utf-8", errors="surrogatepass")
        sbom = parse_sbom(data, source="x.xml")
    except SbomError as exc:
        one_line(exc)
        return
    orjson.dumps(sbom.document)  # policies get it as JSON: an int within 64 bits, or text


# -- regressions found by fuzzing (fuzz/seeds/ keeps their inputs) ---------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.6\nimage allowed"},
            "CycloneDX specVersion '1.6\\nimage allowed' is not supported (1.2–1.7 are)",  # noqa: RUF001
        ),
        (
            {"spdxVersion": "SPDX-2.3\r\n" + "x" * 200},
            "SPDX version 'SPDX-2.3\\r\\n" + "x" * 70 + "'… is not supported",
        ),
    ],
)
def test_a_version_is_shown_on_one_line(document: dict[str, Any], message: str) -> None:
    """A document's text never breaks the one-line error (a denial line a reader trusts)."""
    with pytest.raises(SbomError) as caught:
        parse_sbom_document(document, source="s")
    one_line(caught.value)
    assert message in caught.value.message


def test_an_xml_namespace_is_shown_on_one_line() -> None:
    with pytest.raises(SbomError) as caught:
        parse_sbom(b'<bom xmlns="urn:a&#10;b"/>', source="s")
    assert caught.value.message == "not a CycloneDX or SPDX document (XML root element <bom> in namespace 'urn:a\\nb')"  # fmt: skip


def test_xml_declaring_a_multi_byte_encoding_is_an_sbom_error() -> None:
    """expat raised a bare ValueError for UTF-7 (found by the cyclonedx_xml target)."""
    data = (
        b'<?xml version="1.0" encoding="UTF-7"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6"/>'
    )
    with pytest.raises(SbomError) as caught:
        parse_sbom(data, source="s.xml")
    assert caught.value.message == (
        "invalid XML: unsupported encoding declaration (multi-byte encodings are not supported)"
    )


def test_spdx_reference_category_that_is_not_a_string_is_no_purl() -> None:
    """`category not in frozenset` raised TypeError for an object (found by spdx_json)."""
    package = {
        "SPDXID": "SPDXRef-a",
        "name": "a",
        "externalRefs": [
            {"referenceCategory": {"x": 1}, "referenceType": "purl", "referenceLocator": "pkg:npm/b@1"},
            {"referenceCategory": ["PACKAGE-MANAGER"], "referenceType": "purl", "referenceLocator": "pkg:npm/c@1"},
        ],
    }  # fmt: skip
    sbom = parse_sbom_document({"spdxVersion": "SPDX-2.3", "packages": [package]}, source="s")
    assert [(c.name, c.purl) for c in sbom.components] == [("a", None)]


def test_signed_provenance_with_a_malformed_builder_is_summarised() -> None:
    """`(runDetails or {}).get` raised AttributeError for a string (found by attestation)."""
    for predicate in ({"runDetails": "x"}, {"runDetails": [1], "builder": {"id": "b"}}):
        summary = _provenance_summary([VerifiedDocument(DIGEST, SLSA1, predicate, "t")])
        assert summary is not None
        assert summary["builder_id"] == (None if "builder" not in predicate else "b")


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/stdin", "/"])
def test_a_trust_policy_key_file_that_is_no_regular_file_is_refused(path: str) -> None:
    """/validate-policy read a TrustPolicy's key.file whole: /dev/zero until the webhook ran
    out of memory, /dev/stdin forever (found adding file paths to the admission target)."""
    app = create_app(None, Metrics(), ready=threading.Event())
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"kind": "TrustPolicy"},
            "operation": "CREATE",
            "object": {
                "metadata": {"name": "t"},
                "spec": {"images": ["**"], "authorities": [{"name": "k", "key": {"file": path}}]},
            },
        },
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/validate-policy", json=review).json()["response"]
    assert answer["allowed"] is False
    # A resource may not name files at all; a trust policy file (the operator's own) may,
    # and is read only if it is a regular file, and bounded.
    assert answer["status"]["message"] == (
        "TrustPolicy t: spec.authorities[0].key.file is not accepted in a resource: give the "
        "key inline as data"
    )
    with pytest.raises(SbomgateError, match=f"cannot read {path}: not a regular file"):
        parse_trust_policy(
            {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "TrustPolicy",
                "metadata": {"name": "t"},
                "spec": review["request"]["object"]["spec"],  # type: ignore[index]
            },
            "trust.yaml",
        )


def test_metric_labels_from_reviews_are_bounded(tmp_path: Path) -> None:
    """Kind and operation labels were taken from the request as sent: 200,000 made-up kinds
    cost 144 MB for good and a 56 MB /metrics taking 11 s to render (found looking into the
    admission target's falling exec/s). Only gated kinds and real operations are kept."""
    trust = tmp_path / "trust.json"
    trust.write_text(
        orjson.dumps(
            {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "TrustPolicy",
                "metadata": {"name": "t"},
                "spec": {"images": ["**"], "authorities": [{"name": "k", "key": {"data": PEM}}]},
            }
        ).decode()
    )
    metrics = Metrics()
    controller = build_controller(
        ServeConfig(trust_policies=(trust,), allowed_registries=("no-registry!",)), metrics
    )
    ready = threading.Event()
    ready.set()
    try:
        with TestClient(create_app(controller, metrics, ready=ready)) as client:
            for i in range(20):
                for kind, operation in ((f"Kind{i}", "CREATE"), ("Pod", f"OP{i}")):
                    review = {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "request": {"uid": f"u{i}", "kind": {"kind": kind}, "operation": operation},
                    }
                    assert client.post("/validate", json=review).status_code == 200
            text = client.get("/metrics").text
    finally:
        controller.close()
    series = [
        line for line in text.splitlines() if line.startswith("sbomgate_admission_requests_total{")
    ]
    assert sorted(series) == [
        'sbomgate_admission_requests_total{decision="skipped",kind="Pod",operation="other"} 20.0',
        'sbomgate_admission_requests_total{decision="skipped",kind="other",operation="CREATE"} 20.0',
    ]


@pytest.mark.parametrize(("version", "kept"), [("²", "²"), ("9" * 19, "9" * 19), ("42", 42)])
def test_xml_bom_version_is_an_integer_only_when_json_can_carry_it(version: str, kept: Any) -> None:
    """int("²") raised ValueError (isdigit is true), and 20 digits made a document orjson
    cannot write (found reading the XML target's code)."""
    data = f'<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="{version}"/>'.encode()
    sbom = parse_sbom(data, source="s.xml")
    assert sbom.document["version"] == kept
    orjson.dumps(sbom.document)
