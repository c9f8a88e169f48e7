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
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sbomgate._internal.logs import fields

log = logging.getLogger(__name__)
# The CAs trusted besides a new one: those of certificates replicas may still serve.
CAS_KEPT = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationSettings:
    """Where the serving certificate lives, which webhook configuration trusts it, and when to
    renew."""

    namespace: str
    secret: str
    webhook_configuration: str
    renew_before: dt.timedelta = dt.timedelta(days=30)
    validity: dt.timedelta = dt.timedelta(days=365)
    # Seconds between trusting the new CA and serving its certificate: the API server applies
    # a changed caBundle through its informer a moment later, and a replica that reloaded the
    # new certificate before then would be refused ("certificate signed by unknown authority").
    bundle_settle_seconds: float = 10.0


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
        # 1. Trust the new CA beside the ones in force, so replicas still serving an older
        #    certificate keep working (a replica serves what its volume held when it last
        #    synced, which may be older than the Secret), and give the API server the time to
        #    apply it.
        self._set_ca_bundle(old_ca, ca_pem)
        time.sleep(s.bundle_settle_seconds)
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

    def _set_ca_bundle(self, secret_ca: bytes, new_ca: bytes) -> None:
        """Every webhook trusts `new_ca`, and the newest CAS_KEPT of the CAs it trusted and
        the Secret's."""
        from kubernetes.client.exceptions import ApiException

        name = self.settings.webhook_configuration
        validating = self.admission.read_validating_webhook_configuration(name)
        in_force = b"".join(
            base64.b64decode(hook.client_config.ca_bundle or b"")
            for hook in validating.webhooks or []
            if hook.client_config is not None
        )
        kept = list(dict.fromkeys([*_certificates(in_force), *_certificates(secret_ca)]))
        encoded = base64.b64encode(b"".join([*kept[-CAS_KEPT:], new_ca])).decode()
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


def _certificates(bundle: bytes) -> list[bytes]:
    """The PEM blocks of a bundle, oldest first, each ending in one newline."""
    marker = b"-----BEGIN CERTIFICATE-----"
    return [
        marker + b"\n" + block.strip() + b"\n"
        for block in bundle.split(marker)[1:]
        if block.strip()
    ]
