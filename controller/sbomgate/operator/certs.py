"""Rotation of the webhook's self-signed serving certificate (when cert-manager is not used).

The chart makes a CA and a serving certificate once and keeps them across upgrades; the
elected replica renews them before they expire. The order keeps every request working:
first the Validating- and MutatingWebhookConfiguration (one name; the mutating one exists with
imageReferences: Pin) trust both the old and the new CA, then the Secret gets the new
certificate (each replica reloads it from its mounted files), and the old CA leaves the bundle
at the next rotation.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sbomgate._internal.logs import fields

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationSettings:
    """Where the serving certificate lives, which webhook configuration trusts it, and when to
    renew."""

    namespace: str
    secret: str
    webhook_configuration: str
    renew_before: dt.timedelta = dt.timedelta(days=30)
    validity: dt.timedelta = dt.timedelta(days=365)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def new_pair(
    common_name: str, names: list[x509.GeneralName], validity: dt.timedelta
) -> tuple[bytes, bytes, bytes]:
    """(CA PEM, serving certificate PEM, serving key PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(names), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _pem(ca), _pem(cert), key_pem


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


class CertificateRotator:
    """Renews the self-signed CA and serving certificate, every request trusted meanwhile."""

    def __init__(self, api: Any, settings: RotationSettings) -> None:
        from kubernetes import client as k8s

        self.core: Any = k8s.CoreV1Api(api)
        self.admission: Any = k8s.AdmissionregistrationV1Api(api)
        self.settings = settings

    def rotate_if_due(self, *, now: dt.datetime | None = None) -> bool:
        """Renew when the serving certificate expires within `renew_before`; True if renewed."""
        s = self.settings
        secret = self.core.read_namespaced_secret(s.secret, s.namespace)
        data = secret.data or {}
        current = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
        now = now or dt.datetime.now(dt.UTC)
        if current.not_valid_after_utc - now > s.renew_before:
            return False
        common_name = current.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(common_name[0].value) if common_name else s.secret
        names = _names(current) or [x509.DNSName(cn)]
        ca_pem, cert_pem, key_pem = new_pair(cn, names, s.validity)
        old_ca = base64.b64decode(data.get("ca.crt") or b"")
        # 1. Trust both CAs, so replicas still serving the old certificate keep working.
        self._set_ca_bundle(_last_certificate(old_ca) + ca_pem)
        # 2. The new pair; replicas reload it from their mounted Secret.
        self.core.patch_namespaced_secret(
            s.secret,
            s.namespace,
            {
                "data": {
                    "ca.crt": base64.b64encode(ca_pem).decode(),
                    "tls.crt": base64.b64encode(cert_pem).decode(),
                    "tls.key": base64.b64encode(key_pem).decode(),
                }
            },
        )
        log.info(
            "certificate rotated",
            extra=fields(
                secret=f"{s.namespace}/{s.secret}",
                expired=current.not_valid_after_utc.isoformat(),
            ),
        )
        return True

    def _set_ca_bundle(self, bundle: bytes) -> None:
        from kubernetes.client.exceptions import ApiException

        name = self.settings.webhook_configuration
        encoded = base64.b64encode(bundle).decode()
        validating = self.admission.read_validating_webhook_configuration(name)
        self.admission.patch_validating_webhook_configuration(name, _bundles(validating, encoded))
        try:
            mutating = self.admission.read_mutating_webhook_configuration(name)
        except ApiException as exc:
            if exc.status == 404:  # imageReferences RefuseTags or Resolve: none installed
                return
            raise
        self.admission.patch_mutating_webhook_configuration(name, _bundles(mutating, encoded))


def _bundles(configuration: Any, encoded: str) -> dict[str, Any]:
    """A strategic-merge patch keyed by webhook name: only the caBundles change."""
    return {
        "webhooks": [
            {"name": hook.name, "clientConfig": {"caBundle": encoded}}
            for hook in configuration.webhooks or []
        ]
    }


def _last_certificate(bundle: bytes) -> bytes:
    """The newest CA of a bundle (the last block): older ones leave at each rotation."""
    marker = b"-----BEGIN CERTIFICATE-----"
    if marker not in bundle:
        return b""
    return marker + bundle.rsplit(marker, 1)[1]
