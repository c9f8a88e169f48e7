"""End to end: a real kube-apiserver calls `sbomgate serve`, which checks real cosign
attestations in a real registry. kubectl, server-side apply (how GitOps tools sync), dry runs,
Helm and `kubectl debug` are all refused with a message naming image, package and policy.
sbomgate runs as the chart installs it: its mutating webhook pins every tag to a digest
(imageReferences: Pin) before its validating webhook judges that digest.

No controller-manager or kubelet runs: objects are admitted or refused, Pods never start.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.images import attest
from support.kube_cluster import (
    KubeCluster,
)
from support.oci_builder import (
    SIGSTORE_BUNDLE_V03,
    CosignKey,
    OciClient,
    PushedImage,
    attach_referrer,
    cosign_keypair,
    fallback_tag,
    push_image,
)
from support.paths import BAD_SBOM as BAD
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import RegistryServer, start_distribution
from support.sbomgate_server import (
    Sbomgate,
    delete_mutating_webhook,
    register_mutating_webhook,
    start_sbomgate,
)
from support.trust import trust_file
from support.workloads import app_deployment

WEBHOOK = "sbomgate-e2e"


@dataclass
class Stack:
    cluster: KubeCluster
    gate: Sbomgate
    registry: RegistryServer
    doomed: RegistryServer  # stopped by the fault test
    images: dict[str, PushedImage]
    key: CosignKey
    trust: Path
    work: Path


@pytest.fixture(scope="module")
def stack(
    kube_cluster: KubeCluster,
    plain_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("e2e")
    key = cosign_keypair(work / "keys", "ecdsa")
    stranger = cosign_keypair(work / "stranger", "ecdsa")
    registry = plain_registry
    images = {
        "good": push_image(registry, "e2e/good", "v1"),
        "bad": push_image(registry, "e2e/bad", "v1"),
        "unsigned": push_image(registry, "e2e/unsigned", "v1"),
        "stranger": push_image(registry, "e2e/stranger", "v1"),
        "replayed": push_image(registry, "e2e/good", "copy", seed="replay target"),
    }
    attest(registry, images["good"], GOOD, key, work)
    attest(registry, images["bad"], BAD, key, work)
    attest(registry, images["stranger"], GOOD, stranger, work)
    # The good image's signed bundle, attached to another image (same repository).
    client = OciClient(registry)
    listing = client.manifest_or_none("e2e/good", fallback_tag(images["good"].digest))
    assert listing is not None
    manifest = client.manifest_or_none("e2e/good", listing["manifests"][0]["digest"])
    assert manifest is not None
    bundle = client.get_blob("e2e/good", manifest["layers"][0]["digest"])
    attach_referrer(
        registry,
        "e2e/good",
        images["replayed"].digest,
        artifact_type=SIGSTORE_BUNDLE_V03,
        blob=bundle,
        blob_media_type=SIGSTORE_BUNDLE_V03,
        fallback_tag=True,
    )
    doomed = start_distribution(work / "doomed", ca=None)
    images["doomed"] = push_image(doomed, "e2e/doomed", "v1")
    attest(doomed, images["doomed"], GOOD, key, work)
    trust = trust_file(work, keys=[key])
    gate = start_sbomgate(
        work / "gate", kube_cluster, [registry, doomed], trust, imageReferences="Pin"
    )
    for namespace in ("team", "gitops", "exempt", "helm"):
        kube_cluster.create_namespace(namespace)
    register_mutating_webhook(kube_cluster, WEBHOOK, gate.mutate_url, kube_cluster.ca.cert_pem)
    kube_cluster.register_validating_webhook(
        WEBHOOK, gate.url, kube_cluster.ca.cert_pem, side_effects="NoneOnDryRun"
    )
    try:
        yield Stack(kube_cluster, gate, registry, doomed, images, key, trust, work)
    finally:
        kube_cluster.delete_validating_webhook(WEBHOOK)
        delete_mutating_webhook(kube_cluster, WEBHOOK)
        gate.stop()
        doomed.stop()


def apply(
    stack: Stack, *objects: dict[str, Any], args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return stack.cluster.apply(*objects, args=args, check=False)


def pinned(image: PushedImage) -> str:
    return f"{image.server.host}/{image.repo}@{image.digest}"


def test_good_deployment_is_created(stack: Stack) -> None:
    result = apply(stack, app_deployment("web", stack.images["good"].ref))
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/web created" in result.stdout
    # Stored with the digest that was judged, not the tag (test_e2e_mutate.py: the rest).
    stored = stack.cluster.kubectl("get", "deployment", "web", "-n", "team", "-o", "json")
    spec = json.loads(stored.stdout)["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == pinned(stack.images["good"])


def test_bad_package_is_refused_naming_image_package_and_policy(stack: Stack) -> None:
    result = apply(stack, app_deployment("api", stack.images["bad"].ref))
    assert result.returncode != 0
    err = result.stderr
    assert 'admission webhook "sbomgate-e2e.sbomgate.test" denied the request' in err
    assert f"image {pinned(stack.images['bad'])} (spec.template.spec.containers[0])" in err
    assert "package pkg:pypi/reqeusts@2.31.0" in err and "[policy unverified]" in err
    assert "package pkg:pypi/ctx@0.2.2" in err and "[policy malware]" in err
    assert stack.cluster.kubectl("get", "deployment", "api", "-n", "team").returncode != 0


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("unsigned", "no verified sbom attestation"),
        ("stranger", "signature does not verify with any trusted key"),
        ("replayed", "an attestation of another image (replayed), refused"),
    ],
)
def test_unverifiable_images_are_refused_with_the_reason(
    stack: Stack, image: str, reason: str
) -> None:
    result = apply(stack, app_deployment(f"d-{image}", stack.images[image].ref))
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr
    assert stack.images[image].digest in result.stderr


@pytest.mark.parametrize(
    ("kind", "api_version", "wrap"),
    [
        ("Pod", "v1", lambda spec: {"spec": spec}),
        (
            "Job",
            "batch/v1",
            lambda spec: {"spec": {"template": {"spec": {**spec, "restartPolicy": "Never"}}}},
        ),
        (
            "CronJob",
            "batch/v1",
            lambda spec: {
                "spec": {
                    "schedule": "*/5 * * * *",
                    "jobTemplate": {
                        "spec": {"template": {"spec": {**spec, "restartPolicy": "Never"}}}
                    },
                }
            },
        ),
        (
            "StatefulSet",
            "apps/v1",
            lambda spec: {
                "spec": {
                    "serviceName": "s",
                    "selector": {"matchLabels": {"app": "s"}},
                    "template": {"metadata": {"labels": {"app": "s"}}, "spec": spec},
                }
            },
        ),
        (
            "DaemonSet",
            "apps/v1",
            lambda spec: {
                "spec": {
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec},
                }
            },
        ),
    ],
)
def test_every_kind_is_gated(stack: Stack, kind: str, api_version: str, wrap: Any) -> None:
    name = f"{kind.lower()}-gated"
    for label, expect in (("bad", False), ("good", True)):
        obj = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": f"{name}-{label}", "namespace": "team"},
            **wrap({"containers": [{"name": "app", "image": stack.images[label].ref}]}),
        }
        result = apply(stack, obj)
        assert (result.returncode == 0) is expect, result.stderr
        if not expect:
            assert "[policy malware]" in result.stderr


def test_server_side_dry_run_is_refused_and_stores_nothing(stack: Stack) -> None:
    result = apply(
        stack, app_deployment("dry", stack.images["bad"].ref), args=("--dry-run=server",)
    )
    assert result.returncode != 0 and "[policy malware]" in result.stderr
    ok = apply(
        stack, app_deployment("dry-ok", stack.images["good"].ref), args=("--dry-run=server",)
    )
    assert ok.returncode == 0 and "(server dry run)" in ok.stdout
    for name in ("dry", "dry-ok"):
        assert stack.cluster.kubectl("get", "deployment", name, "-n", "team").returncode != 0


def test_gitops_style_server_side_apply_of_a_directory(stack: Stack) -> None:
    directory = stack.work / "gitops"
    directory.mkdir(exist_ok=True)
    objects = {
        "frontend.yaml": app_deployment("frontend", stack.images["good"].ref, "gitops"),
        "backend.yaml": app_deployment("backend", stack.images["bad"].ref, "gitops"),
        "config.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "gitops"},
            "data": {"k": "v"},
        },
    }
    for file, obj in objects.items():
        (directory / file).write_text(yaml.safe_dump(obj))
    result = stack.cluster.kubectl(
        "apply", "--server-side", "--field-manager=argocd-controller", "-f", str(directory)
    )
    assert result.returncode != 0
    assert "sbomgate refused Deployment gitops/backend:" in result.stderr
    assert "[policy malware]" in result.stderr
    assert stack.cluster.kubectl("get", "deployment", "frontend", "-n", "gitops").returncode == 0
    assert stack.cluster.kubectl("get", "configmap", "settings", "-n", "gitops").returncode == 0
    assert stack.cluster.kubectl("get", "deployment", "backend", "-n", "gitops").returncode != 0


def _chart(directory: Path, image: str) -> Path:
    chart = directory / "chart"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(f"image: {image}\n")
    (chart / "templates" / "deployment.yaml").write_text(
        yaml.safe_dump(app_deployment("shop", "IMAGE", "helm")).replace(
            "IMAGE", "{{ .Values.image }}"
        )
    )
    return chart


def test_helm_install_is_gated(stack: Stack) -> None:
    chart = _chart(stack.work / "helm", stack.images["bad"].ref)
    bad = stack.cluster.helm("install", "shop-bad", str(chart), "-n", "helm")
    assert bad.returncode != 0
    assert "denied the request" in bad.stderr and "[policy malware]" in bad.stderr
    good = stack.cluster.helm(
        "install",
        "shop-good",
        str(chart),
        "-n",
        "helm",
        "--set",
        f"image={stack.images['good'].ref}",
    )
    assert good.returncode == 0, good.stderr
    assert "STATUS: deployed" in good.stdout


def test_kubectl_debug_with_an_unverified_image_is_refused(stack: Stack) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug-target", "namespace": "team"},
        "spec": {"containers": [{"name": "app", "image": stack.images["good"].ref}]},
    }
    assert apply(stack, pod).returncode == 0
    result = stack.cluster.kubectl(
        "debug",
        "pod/debug-target",
        "-n",
        "team",
        "--image",
        stack.images["unsigned"].ref,
        "--container",
        "debugger",
    )
    assert result.returncode != 0
    assert "spec.ephemeralContainers[0]" in result.stderr
    assert "no verified sbom attestation" in result.stderr


def test_exempt_namespace_makes_no_registry_call(stack: Stack) -> None:
    before = stack.gate.registry_requests()
    result = apply(stack, app_deployment("anything", stack.images["unsigned"].ref, "exempt"))
    assert result.returncode == 0, result.stderr
    assert stack.gate.registry_requests() == before


def test_stopped_registry_is_refused_quickly_as_unreachable(stack: Stack) -> None:
    stack.doomed.stop()
    result = apply(stack, app_deployment("doomed", stack.images["doomed"].ref))
    assert result.returncode != 0
    # Our answer, not the API server giving up on us ("context deadline exceeded").
    assert "unreachable" in result.stderr and "cannot verify" in result.stderr
    assert "deadline exceeded" not in result.stderr
    assert "[policy" not in result.stderr


def test_warn_mode_admits_and_kubectl_prints_the_warning(stack: Stack) -> None:
    warn = start_sbomgate(
        stack.work / "gate-warn", stack.cluster, [stack.registry], stack.trust, mode="Warn"
    )
    try:
        stack.cluster.register_validating_webhook(WEBHOOK, warn.url, stack.cluster.ca.cert_pem)
        result = apply(stack, app_deployment("warned", stack.images["bad"].ref))
        assert result.returncode == 0, result.stderr
        assert "Warning: [policy malware]" in result.stderr
        assert "deployment.apps/warned created" in result.stdout
    finally:
        stack.cluster.register_validating_webhook(
            WEBHOOK, stack.gate.url, stack.cluster.ca.cert_pem
        )
        warn.stop()


def test_decisions_are_logged_as_json(stack: Stack) -> None:
    records = [
        json.loads(line)
        for line in stack.gate.log.read_text().splitlines()
        if line.startswith('{"message":"admission"')
    ]
    denied = [r for r in records if r["allowed"] is False]
    assert denied and all(r["uid"] and r["kind"] and r["reasons"] for r in denied)
