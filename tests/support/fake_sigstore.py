"""A self-made, offline Sigstore instance for tests of keyless verification.

`FakeSigstore` plays Fulcio (a root CA and an intermediate that issues short-lived leaf
certificates), the CT log (an SCT embedded in every leaf) and Rekor v1 (a Merkle log with signed
checkpoints and signed entry timestamps). It emits a TrustedRoot document and Sigstore bundles
v0.3 with a DSSE envelope that the unmodified sigstore-python 4.5.1 accepts:

    fake = FakeSigstore()
    root = fake.write_trusted_root(tmp_path / "trusted_root.json")
    bundle = fake.sign_statement(statement, identity=..., issuer=...)
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root)))
    verifier.verify_dsse(Bundle.from_json(bundle), Identity(identity=..., issuer=...))

What sigstore-python 4.5.1 demands, and this module therefore provides:

* the log entry is Rekor v1 `dsse`/`0.0.1` (the only DSSE kind it accepts besides Rekor v2's
  `hashedrekord`/`0.0.2`, which would need an RFC 3161 timestamp authority), with an inclusion
  promise (SET): the integrated time only counts as a verified time when a SET is present, and
  without a verified time verification fails;
* the certificate chain is checked with cryptography's web-PKI profile at the integrated time
  (AKI on every non-root certificate, critical SAN since the subject is empty, ...);
* the checkpoint signature is found by the first four bytes of the entry's `logId`, which must
  be SHA-256 of the Rekor key's DER SubjectPublicKeyInfo;
* the trust root's `validFor.start` is compared with the real clock, so it is set before both
  `now` and the real time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
REKOR_URL = "https://rekor.fake.test"
CT_URL = "https://ctfe.fake.test"

_OIDC_ISSUER = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw bytes of the issuer URL
_OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 6962 key ID: SHA-256 of the DER SubjectPublicKeyInfo (also Sigstore's log ID)."""
    return hashlib.sha256(_spki(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than n (RFC 6962 section 2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(_tree_hash(leaves[:k]), _tree_hash(leaves[k:]))


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), bottom-up, as Rekor's inclusion proofs list it."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_audit_path(index, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_audit_path(index - k, leaves[k:]), _tree_hash(leaves[:k])]


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    start: datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sbomgate-test"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), True
        )
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .sign(issuer_key, hashes.SHA384())
    )


class FakeSigstore:
    """One Sigstore instance: Fulcio-like CA, CT log and Rekor log, all with fresh P-256 keys."""

    def __init__(self, *, now: datetime | None = None) -> None:
        """`now` is the default issuance time of leaf certificates (default: the real time)."""
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self._start = min(self.now, datetime.now(UTC)).replace(microsecond=0) - timedelta(days=1)
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
        self._root_key, self._ca_key, self.rekor_key, self.ct_key = keys
        self._root = _ca("fake-fulcio-root", self._root_key, None, self._root_key, self._start)
        self._ca = _ca(
            "fake-fulcio-intermediate", self._ca_key, self._root, self._root_key, self._start
        )
        # The log's leaf hashes; a few unrelated entries precede ours.
        self._log: list[bytes] = [_leaf_hash(b"unrelated entry %d" % i) for i in range(3)]

    def trusted_root_json(self) -> str:
        """The TrustedRoot document (what `sigstore.models.TrustedRoot.from_file` reads)."""
        valid_for = {"start": self._start.isoformat().replace("+00:00", "Z")}

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": valid_for,
                },
                "logId": {"keyId": _b64(_key_id(key))},
            }

        chain = [self._ca, self._root]  # leaf-most first, root last
        root = {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [log(REKOR_URL, self.rekor_key)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sbomgate-test", "commonName": "fake-fulcio"},
                    "uri": "https://fulcio.fake.test",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))}
                            for c in chain
                        ]
                    },
                    "validFor": valid_for,
                }
            ],
            "ctlogs": [log(CT_URL, self.ct_key)],
            "timestampAuthorities": [],
        }
        return json.dumps(root, indent=2)

    def write_trusted_root(self, path: Path) -> Path:
        path.write_text(self.trusted_root_json())
        return path

    def sign_statement(
        self,
        statement: dict[str, Any] | bytes,
        *,
        identity: str,
        issuer: str,
        cert_not_before: datetime | None = None,
        cert_validity: timedelta = timedelta(minutes=10),
        integrated_time: datetime | None = None,
        include_tlog: bool = True,
    ) -> str:
        """Sign an in-toto statement keylessly and return the Sigstore bundle v0.3 JSON.

        A dict is encoded as compact JSON (`json.dumps(..., separators=(",", ":"))`); bytes are
        used verbatim as the DSSE payload. `identity` becomes the SAN (an email if it contains
        "@" and no "://", a URI otherwise); `issuer` goes into the Fulcio issuer extensions.
        The certificate is valid from `cert_not_before` (default `now`) for `cert_validity`;
        the entry is integrated at `integrated_time` (default: the middle of that window).
        `include_tlog=False` leaves `tlogEntries` empty.
        """
        if isinstance(statement, bytes):
            payload = statement
        else:
            payload = json.dumps(statement, separators=(",", ":")).encode()
        not_before = (cert_not_before or self.now).replace(microsecond=0)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue_leaf(key, identity, issuer, not_before, not_before + cert_validity)
        signature = _sign(key, _pae(PAYLOAD_TYPE, payload))
        envelope = {
            "payload": _b64(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature)}],
        }
        entries = []
        if include_tlog:
            when = integrated_time or not_before + cert_validity / 2
            entries.append(self._log_entry(cert, envelope, int(when.timestamp())))
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": entries,
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle, indent=2)

    def _issue_leaf(
        self,
        key: ec.EllipticCurvePrivateKey,
        identity: str,
        issuer: str,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        """A Fulcio-style leaf: empty subject, critical SAN, code signing, one embedded SCT."""
        is_email = "@" in identity and "://" not in identity
        san = x509.RFC822Name(identity) if is_email else x509.UniformResourceIdentifier(identity)
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), False
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER, issuer.encode()), False)
            .add_extension(
                x509.UnrecognizedExtension(_OIDC_ISSUER_V2, _der(0x0C, issuer.encode())), False
            )
        )
        # The precertificate's TBS is the final TBS minus the SCT list extension (added last).
        precert_tbs = builder.sign(self._ca_key, hashes.SHA256()).tbs_certificate_bytes
        sct = self._sct(precert_tbs, int(not_before.timestamp()) * 1000)
        sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        builder = builder.add_extension(
            x509.UnrecognizedExtension(_SCT_LIST, _der(0x04, sct_list)), False
        )
        return builder.sign(self._ca_key, hashes.SHA256())

    def _sct(self, precert_tbs: bytes, timestamp_ms: int) -> bytes:
        """An RFC 6962 v1 SCT for a precert entry (issuer = our intermediate), TLS-encoded."""
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, precert
            + _key_id(self._ca_key)
            + len(precert_tbs).to_bytes(3, "big")
            + precert_tbs
            + struct.pack("!H", 0)  # no extensions
        )
        signature = _sign(self.ct_key, signed)
        return (
            struct.pack("!B32sQH", 0, _key_id(self.ct_key), timestamp_ms, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )

    def _log_entry(
        self, cert: x509.Certificate, envelope: dict[str, Any], integrated_time: int
    ) -> dict[str, Any]:
        """A Rekor v1 `dsse` 0.0.1 entry with inclusion proof, checkpoint and SET."""
        pem = cert.public_bytes(serialization.Encoding.PEM)
        # Verifiers cannot check envelopeHash (the envelope JSON is not canonical); the rest is.
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest(),
                    },
                    "signatures": [
                        {"signature": envelope["signatures"][0]["sig"], "verifier": _b64(pem)}
                    ],
                },
            }
        )
        index = len(self._log)
        self._log += [_leaf_hash(body), _leaf_hash(b"later entry %d" % index)]
        tree = self._log[:]
        root_hash = _tree_hash(tree)
        log_id = _key_id(self.rekor_key)

        note = f"rekor.fake.test - 42\n{len(tree)}\n{_b64(root_hash)}\n"
        note_sig = _b64(log_id[:4] + _sign(self.rekor_key, note.encode()))
        promise: dict[str, str | int] = {
            "body": _b64(body),
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": index,
        }
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated_time),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(_sign(self.rekor_key, rfc8785.dumps(promise)))
            },
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root_hash),
                "treeSize": str(len(tree)),
                "hashes": [_b64(h) for h in _audit_path(index, tree)],
                "checkpoint": {"envelope": f"{note}\n\u2014 rekor.fake.test {note_sig}\n"},
            },
            "canonicalizedBody": _b64(body),
        }
