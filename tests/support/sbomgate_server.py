"""`sbomgate serve` as a process beside a real API server, and its mutating webhook there."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.kube_cluster import (
    DEFAULT_NAMESPACE_SELECTOR,
    DEFAULT_WEBHOOK_RULES,
    KubeCluster,
)
from support.paths import FACTS
from support.registry_servers import RegistryServer


@dataclass
class Sbomgate:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    ca_file: Path

    @property
    def mutate_url(self) -> str:
        return self.url.removesuffix("/validate") + "/mutate"

    def registry_requests(self) -> float:

        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(self.metrics_url, context=context, timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("sbomgate_registry_requests_total{")
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_sbomgate(
    directory: Path,
    cluster: KubeCluster,
    registries: list[RegistryServer],
    trust: Path,
    **extra: Any,
) -> Sbomgate:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = cluster.ca.issue_serving_cert(directory)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hosts = [r.host for r in registries]
    config = {
        "trustPolicies": [str(trust)],
        "facts": str(FACTS),
        "allowedRegistries": hosts,
        "insecureRegistries": hosts,
        "exemptNamespaces": ["kube-system", "exempt"],
        "admissionDeadline": 6,
        # Suites that register only the validating webhook judge tags as given; with
        # register_mutating_webhook, pass imageReferences="Pin" (the product's default).
        "imageReferences": "Resolve",
        "tls": {"certFile": str(cert), "keyFile": str(key)},
        "listen": {"host": "127.0.0.1", "port": port},
        **extra,
    }
    config_file = directory / "sbomgate.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = directory / "sbomgate.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(config_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"https://127.0.0.1:{port}"
    gate = Sbomgate(f"{base}/validate", process, log, f"{base}/metrics", cluster.ca_file)
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", context=context, timeout=2) as r:
                if r.status == 200:
                    return gate
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            gate.stop()
            raise AssertionError(f"sbomgate serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def register_mutating_webhook(
    cluster: KubeCluster,
    name: str,
    url: str,
    ca_bundle_pem: bytes,
    *,
    reinvocation_policy: str = "IfNeeded",
    timeout_seconds: int = 10,
    namespace_selector: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply a MutatingWebhookConfiguration ``name`` sending what the validating webhook is sent
    (KubeCluster's default rules and namespace selector) to ``url`` (sbomgate's /mutate), as the
    chart does, and wait until it is in force: a dry-run ConfigMap carrying this configuration's
    canary label is refused by its canary webhook (which nothing answers)."""
    canary = f"mutating-{name}"  # not the validating canary's label: each probe finds its own
    ca_bundle = base64.b64encode(ca_bundle_pem).decode()
    configuration: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "sbomgate-tests"}},
        "webhooks": [
            {
                "name": f"{name}.sbomgate.test",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "rules": DEFAULT_WEBHOOK_RULES,
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "reinvocationPolicy": reinvocation_policy,
                "sideEffects": "None",
                "timeoutSeconds": timeout_seconds,
                "namespaceSelector": dict(namespace_selector or DEFAULT_NAMESPACE_SELECTOR),
            },
            cluster.canary_webhook(canary),
        ],
    }
    cluster.apply(configuration)
    cluster.wait_for_canary(canary, live=True)
    return configuration


def delete_mutating_webhook(cluster: KubeCluster, name: str) -> None:
    cluster.kubectl(
        "delete", "mutatingwebhookconfiguration", name, "--ignore-not-found", check=True
    )
    cluster.wait_for_canary(f"mutating-{name}", live=False)
