"""The renewed CA reaches the MutatingWebhookConfiguration too (imageReferences: Pin), on a real
API server: both configurations of the chart's name trust the old and the new CA while replicas
switch over. (test_cert_rotation.py: the certificate itself, and a validating one alone.)"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from cryptography import x509

from sbomgate.operator.certs import CertificateRotator, RotationSettings, new_pair
from support.kube_cluster import KubeCluster

NAMESPACE = "cert-rotation-mutating"
SECRET = "sbomgate-tls"
HOOK = "sbomgate-rotation-mutating-test"
KINDS = ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _configuration(kind: str, ca: bytes) -> dict[str, Any]:
    hook = {
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:1/never", "caBundle": _b64(ca)},
        "failurePolicy": "Ignore",
        "sideEffects": "None",
        "timeoutSeconds": 1,
        # Matches nothing: this configuration only carries a caBundle for the test.
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
    name = "pin.sbomgate.dev" if kind.startswith("Mutating") else "workloads.sbomgate.dev"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": HOOK},
        "webhooks": [{**hook, "name": name}],
    }


def _bundles(cluster: KubeCluster, kind: str) -> list[bytes]:
    stored = json.loads(cluster.kubectl("get", kind, HOOK, "-o", "json", check=True).stdout)
    return [base64.b64decode(w["clientConfig"]["caBundle"]) for w in stored["webhooks"]]


def test_both_webhook_configurations_get_the_new_ca(kube_cluster: KubeCluster) -> None:
    from kubernetes import config as k8s_config

    cluster = kube_cluster
    cluster.create_namespace(NAMESPACE)
    names: list[x509.GeneralName] = [x509.DNSName(f"sbomgate.{NAMESPACE}.svc")]

    def expiring_secret() -> bytes:
        ca, cert, key = new_pair(f"sbomgate.{NAMESPACE}.svc", names, dt.timedelta(days=2))
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": NAMESPACE},
                "type": "kubernetes.io/tls",
                "data": {"ca.crt": _b64(ca), "tls.crt": _b64(cert), "tls.key": _b64(key)},
            }
        )
        return ca

    try:
        api = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
        rotator = CertificateRotator(
            api,
            RotationSettings(
                namespace=NAMESPACE,
                secret=SECRET,
                webhook_configuration=HOOK,
                bundle_settle_seconds=0.5,
            ),
        )
        # Without a mutating configuration (RefuseTags, Resolve): the validating one is renewed.
        old_ca = expiring_secret()
        cluster.apply(_configuration("ValidatingWebhookConfiguration", old_ca))
        assert rotator.rotate_if_due() is True
        assert all(
            b.startswith(old_ca) and len(b) > len(old_ca) for b in _bundles(cluster, KINDS[0])
        )

        # With one (Pin): both.
        old_ca = expiring_secret()
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            cluster.apply(_configuration(kind, old_ca))
        assert rotator.rotate_if_due() is True
        secret = json.loads(
            cluster.kubectl(
                "get", "secret", SECRET, "-n", NAMESPACE, "-o", "json", check=True
            ).stdout
        )["data"]
        new_ca = base64.b64decode(secret["ca.crt"])
        for kind in KINDS:
            for bundle in _bundles(cluster, kind):
                assert old_ca in bundle and new_ca in bundle, kind
    finally:
        for kind in KINDS:
            cluster.kubectl("delete", kind, HOOK, "--ignore-not-found")
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
