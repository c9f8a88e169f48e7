"""Keyless (Fulcio certificate + Rekor entry) verification of Sigstore bundles.

sigstore-python does the cryptography (certificate chain at the log's integrated time, SCT,
inclusion proof, checkpoint, signed entry timestamp, DSSE signature). It only knows exact
identities, so the identity check (exact values or regular expressions on subject and
issuer, as TrustPolicy allows) is ours, run as a sigstore VerificationPolicy.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from sbomgate.attest.trust import KeylessIdentity
from sbomgate.errors import VerificationError

_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw bytes
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """Who a Fulcio certificate was issued to (subject) and by which OIDC issuer."""

    subject: str | None
    issuer: str | None

    def __str__(self) -> str:
        return f"{self.subject or '?'} (issuer {self.issuer or '?'})"


def certificate_identity(cert: x509.Certificate) -> SignerIdentity:
    """The Fulcio identity in a leaf certificate: its SAN and its OIDC issuer extension."""
    subject = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = (
            san.get_values_for_type(x509.UniformResourceIdentifier)
            + san.get_values_for_type(x509.RFC822Name)
            + [
                other.value.decode("utf-8", "replace")
                for other in san.get_values_for_type(x509.OtherName)
            ]
        )
        subject = values[0] if values else None
    except x509.ExtensionNotFound:
        pass
    issuer = None
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        value = getattr(raw, "value", b"")
        issuer = _der_utf8(value) if oid == _ISSUER_V2 else value.decode("utf-8", "replace")
        break
    return SignerIdentity(subject, issuer)


def _der_utf8(value: bytes) -> str:
    # A short-form or long-form DER length, then the UTF-8 bytes.
    if len(value) < 2 or value[0] != 0x0C:
        return value.decode("utf-8", "replace")
    length = value[1]
    start = 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(value[2 : 2 + count], "big")
        start = 2 + count
    return value[start : start + length].decode("utf-8", "replace")


class _IdentityPolicy:
    """A sigstore VerificationPolicy: the certificate must match one of the identities."""

    def __init__(self, identities: Sequence[KeylessIdentity]) -> None:
        self.identities = identities

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        signer = certificate_identity(cert)
        if not any(i.accepts(signer.issuer, signer.subject) for i in self.identities):
            wanted = "; ".join(i.describe() for i in self.identities)
            raise SigstoreVerificationError(
                f"signed by {signer}, which is not an accepted identity ({wanted})"
            )


class KeylessVerifier:
    """sigstore-python verifiers by trusted root, built once and shared."""

    def __init__(self) -> None:
        self._verifiers: dict[str | None, object] = {}
        self._lock = threading.Lock()

    def _verifier(self, trusted_root: str | None) -> object:
        with self._lock:
            found = self._verifiers.get(trusted_root)
            if found is not None:
                return found
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import TrustedRoot
        from sigstore.verify import Verifier

        try:
            if trusted_root is None:
                verifier = Verifier.production(offline=True)
            else:
                verifier = Verifier(trusted_root=TrustedRoot.from_file(trusted_root))
        except (SigstoreError, OSError, ValueError) as exc:
            where = trusted_root or "the Sigstore production trust root (offline TUF cache)"
            raise VerificationError(
                f"cannot load {where}: {exc}; set keyless.trustedRoot.file in the trust policy"
            ) from None
        with self._lock:
            self._verifiers.setdefault(trusted_root, verifier)
            return self._verifiers[trusted_root]

    def verify(
        self,
        bundle_json: bytes,
        identities: Sequence[KeylessIdentity],
        trusted_root: str | None,
    ) -> tuple[str, bytes, SignerIdentity]:
        """(payload type, payload, signer) of a verified bundle; VerificationError otherwise."""
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle
        from sigstore.verify import Verifier

        verifier = self._verifier(trusted_root)
        assert isinstance(verifier, Verifier)
        try:
            bundle = Bundle.from_json(bundle_json)
        except (SigstoreError, ValueError) as exc:
            raise VerificationError(f"Sigstore bundle is not valid: {exc}") from None
        try:
            payload_type, payload = verifier.verify_dsse(bundle, _IdentityPolicy(identities))
        except SigstoreError as exc:
            raise VerificationError(_explain(str(exc))) from None
        return payload_type, payload, certificate_identity(bundle.signing_certificate)


def _explain(message: str) -> str:
    if "not valid at validation time" in message or "timestamp certificate chain" in message:
        return (
            "the signing certificate does not chain to the trusted root at the transparency "
            f"log's time ({message})"
        )
    if "invalid signature" in message and "DSSE" in message:
        return f"the signature does not match the payload: tampered or re-signed ({message})"
    return message
