"""The operator renews the chart's self-signed webhook certificate, on a real API server."""

from __future__ import annotations

import base64
import datetime as dt
import json

from cryptography import x509

from sbomgate.operator.certs import CertificateRotator, RotationSettings, new_pair
from support.kube_cluster import KubeCluster

NAMESPACE = "cert-rotation"
SECRET = "sbomgate-tls"
HOOK = "sbomgate-rotation-test"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_an_expiring_certificate_is_renewed_and_the_ca_bundle_follows(
    kube_cluster: KubeCluster,
) -> None:
    from kubernetes import config as k8s_config

    cluster = kube_cluster
    cluster.create_namespace(NAMESPACE)
    names: list[x509.GeneralName] = [x509.DNSName(f"sbomgate.{NAMESPACE}.svc")]
    old_ca, old_cert, old_key = new_pair(f"sbomgate.{NAMESPACE}.svc", names, dt.timedelta(days=2))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": NAMESPACE},
            "type": "kubernetes.io/tls",
            "data": {"ca.crt": _b64(old_ca), "tls.crt": _b64(old_cert), "tls.key": _b64(old_key)},
        }
    )
    hook = {
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:1/validate", "caBundle": _b64(old_ca)},
        "failurePolicy": "Ignore",
        "sideEffects": "None",
        "timeoutSeconds": 1,
        # Matches nothing: this configuration only carries caBundles for the test.
        "objectSelector": {"matchLabels": {"sbomgate.test/never": "true"}},
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "operations": ["CREATE"],
            }
        ],
    }
    cluster.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": HOOK},
            "webhooks": [
                {**hook, "name": "workloads.sbomgate.dev"},
                {**hook, "name": "policies.sbomgate.dev"},
            ],
        }
    )
    try:
        api = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
        rotator = CertificateRotator(
            api,
            RotationSettings(
                namespace=NAMESPACE,
                secret=SECRET,
                webhook_configuration=HOOK,
                renew_before=dt.timedelta(days=30),
                bundle_settle_seconds=0.5,
            ),
        )
        assert rotator.rotate_if_due() is True
        secret = json.loads(
            cluster.kubectl(
                "get", "secret", SECRET, "-n", NAMESPACE, "-o", "json", check=True
            ).stdout
        )["data"]
        cert = x509.load_pem_x509_certificate(base64.b64decode(secret["tls.crt"]))
        new_ca = base64.b64decode(secret["ca.crt"])
        assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
        assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == (
            x509.SubjectAlternativeName(names)
        )
        # The new certificate chains to the new CA.
        ca = x509.load_pem_x509_certificate(new_ca)
        cert.verify_directly_issued_by(ca)
        configuration = json.loads(
            cluster.kubectl(
                "get", "validatingwebhookconfiguration", HOOK, "-o", "json", check=True
            ).stdout
        )
        for webhook in configuration["webhooks"]:
            bundle = base64.b64decode(webhook["clientConfig"]["caBundle"])
            assert old_ca in bundle and new_ca in bundle  # both, while replicas switch over
        assert rotator.rotate_if_due() is False  # fresh now: nothing to do
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", HOOK, "--ignore-not-found")
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
