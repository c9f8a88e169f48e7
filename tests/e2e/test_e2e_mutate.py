"""End to end: what is admitted is what runs. A real kube-apiserver calls sbomgate's mutating
webhook (imageReferences: Pin), which rewrites each tag to the digest it resolves to, then its
validating webhook, which judges that digest; a real registry holds images with real cosign
attestations, and a tag is re-pushed under the cluster's feet.

- the stored Pod and Deployment carry the digest after `kubectl apply` of a tag reference, and
  applying the same manifest again changes nothing;
- a tag moved after admission does not change the stored spec (nor what a Pod made from it
  runs); re-applying the tag pins it anew, to the image now behind it, which is judged;
- a server-side dry run gets the same patch and the same answer, and stores nothing;
- `kubectl debug` with a tag: the ephemeral container is pinned;
- with imageReferences: RefuseTags, a tag is refused with a message naming the digest to use,
  and a digest reference is stored exactly as written (nothing for GitOps tools to see drift in);
- without the mutating webhook, a tag reaching validation is refused, saying so.
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

from support.kube_cluster import KubeCluster
from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair, push_image
from support.paths import BAD_SBOM as BAD
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import RegistryServer
from support.sbomgate_server import (
    Sbomgate,
    delete_mutating_webhook,
    register_mutating_webhook,
    start_sbomgate,
)
from support.trust import trust_file
from support.workloads import app_deployment

HOOK = "sbomgate-pin"
REFUSING_HOOK = "sbomgate-refuse-tags"
PINNED_NS = "pinned"
REFUSE_NS = "refuse-tags"


@dataclass
class PinStack:
    cluster: KubeCluster
    registry: RegistryServer
    gate: Sbomgate
    images: dict[str, PushedImage]
    key: CosignKey
    work: Path


def attest(
    server: RegistryServer, image: PushedImage, sbom: Path, key: CosignKey, work: Path
) -> None:
    cosign_attest(
        server,
        image.digest_ref,
        sbom,
        "cyclonedx" if "cdx" in sbom.name else "spdxjson",
        key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )


def selector(operator: str, *namespaces: str) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": operator, "values": list(namespaces)}
        ]
    }


@pytest.fixture(scope="module")
def pin(
    kube_cluster: KubeCluster,
    plain_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PinStack]:
    work = tmp_path_factory.mktemp("e2e-pin")
    key = cosign_keypair(work / "keys", "ecdsa")
    registry = plain_registry
    images = {
        "good": push_image(registry, "e2e-pin/good", "v1", seed="e2e-pin good"),
        "bad": push_image(registry, "e2e-pin/bad", "v1", seed="e2e-pin bad"),
        "moving": push_image(registry, "e2e-pin/moving", "stable", seed="e2e-pin moving"),
    }
    attest(registry, images["good"], GOOD, key, work)
    attest(registry, images["bad"], BAD, key, work)
    attest(registry, images["moving"], GOOD, key, work)
    trust = trust_file(work, keys=[key])
    gate = start_sbomgate(work / "pin", kube_cluster, [registry], trust, imageReferences="Pin")
    refusing = start_sbomgate(
        work / "refuse", kube_cluster, [registry], trust, imageReferences="RefuseTags"
    )
    for namespace in (PINNED_NS, REFUSE_NS):
        kube_cluster.create_namespace(namespace)
    ca = kube_cluster.ca.cert_pem
    # Pin in one namespace, RefuseTags in another (no mutating webhook there, as the chart does).
    elsewhere = selector("NotIn", "kube-system", REFUSE_NS)
    register_mutating_webhook(kube_cluster, HOOK, gate.mutate_url, ca, namespace_selector=elsewhere)
    kube_cluster.register_validating_webhook(HOOK, gate.url, ca, namespace_selector=elsewhere)
    kube_cluster.register_validating_webhook(
        REFUSING_HOOK, refusing.url, ca, namespace_selector=selector("In", REFUSE_NS)
    )
    try:
        yield PinStack(kube_cluster, registry, gate, images, key, work)
    finally:
        kube_cluster.delete_validating_webhook(REFUSING_HOOK)
        kube_cluster.delete_validating_webhook(HOOK)
        delete_mutating_webhook(kube_cluster, HOOK)
        refusing.stop()
        gate.stop()


def pinned(image: PushedImage) -> str:
    return f"{image.server.host}/{image.repo}@{image.digest}"


def pod(name: str, image: str, namespace: str = PINNED_NS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}], **spec},
    }


def stored(pin: PinStack, kind: str, name: str, namespace: str = PINNED_NS) -> dict[str, Any]:
    result = pin.cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=True)
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def template_images(obj: dict[str, Any]) -> list[str]:
    return [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_the_stored_pod_and_deployment_carry_the_digest(pin: PinStack) -> None:
    good = pin.images["good"]
    init = [{"name": "init", "image": good.ref}]
    result = pin.cluster.apply(pod("web", good.ref, initContainers=init), check=False)
    assert result.returncode == 0, result.stderr
    spec = stored(pin, "pod", "web")["spec"]
    assert [c["image"] for c in spec["containers"] + spec["initContainers"]] == [pinned(good)] * 2

    manifest = app_deployment("web", good.ref, PINNED_NS)
    result = pin.cluster.apply(manifest, check=False)
    assert result.returncode == 0, result.stderr
    first = stored(pin, "deployment", "web")
    assert template_images(first) == [pinned(good)]
    # Applying the same manifest again (what a GitOps sync repeats): kubectl sends the tag again
    # (the live object differs from the manifest), it is pinned again to the same digest, and
    # the stored object does not change: no new generation, so no rollout.
    again = pin.cluster.apply(manifest, check=False)
    assert again.returncode == 0, again.stderr
    after = stored(pin, "deployment", "web")
    assert template_images(after) == [pinned(good)]
    assert after["metadata"]["generation"] == first["metadata"]["generation"]
    assert after["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_a_tag_moved_after_admission_does_not_change_the_stored_spec(pin: PinStack) -> None:
    first = pin.images["moving"]
    manifest = app_deployment("mover", first.ref, PINNED_NS)
    result = pin.cluster.apply(manifest, check=False)
    assert result.returncode == 0, result.stderr
    assert template_images(stored(pin, "deployment", "mover")) == [pinned(first)]

    # The tag is re-pushed: an unsigned image answers to it now.
    moved = push_image(pin.registry, first.repo, first.tag, seed="e2e-pin moved")
    assert moved.digest != first.digest
    deployed = stored(pin, "deployment", "mover")
    assert template_images(deployed) == [pinned(first)]
    # A Pod made from the stored template (as its ReplicaSet would) runs the judged digest.
    replica = pod("mover-replica", "")
    replica["spec"] = deployed["spec"]["template"]["spec"]
    result = pin.cluster.apply(replica, check=False)
    assert result.returncode == 0, result.stderr
    assert stored(pin, "pod", "mover-replica")["spec"]["containers"][0]["image"] == pinned(first)

    # Syncing the tag again (server-side apply sets the field) pins it anew, to the image now
    # behind it, which is judged and refused; the stored Deployment keeps what was judged.
    resync = pin.cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=argocd-controller",
        "-f",
        "-",
        input=yaml.safe_dump(manifest),
    )
    assert resync.returncode != 0
    assert f"image {pinned(moved)} (spec.template.spec.containers[0])" in resync.stderr
    assert "no verified sbom attestation" in resync.stderr
    assert template_images(stored(pin, "deployment", "mover")) == [pinned(first)]
    # A new Pod naming the tag gets the new digest, and is refused for it.
    fresh = pin.cluster.apply(pod("mover-fresh", first.ref), check=False)
    assert fresh.returncode != 0 and moved.digest in fresh.stderr


def test_a_server_side_dry_run_gets_the_same_patch_and_answer(pin: PinStack) -> None:
    good, bad = pin.images["good"], pin.images["bad"]
    result = pin.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=yaml.safe_dump(app_deployment("dry", good.ref, PINNED_NS)),
    )
    assert result.returncode == 0, result.stderr
    assert template_images(json.loads(result.stdout)) == [pinned(good)]
    assert pin.cluster.kubectl("get", "deployment", "dry", "-n", PINNED_NS).returncode != 0

    refused = pin.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump(app_deployment("dry-bad", bad.ref, PINNED_NS)),
    )
    assert refused.returncode != 0
    assert f"image {pinned(bad)} (spec.template.spec.containers[0])" in refused.stderr
    assert "[policy malware]" in refused.stderr


def test_kubectl_debug_pins_the_ephemeral_container(pin: PinStack) -> None:
    good = pin.images["good"]
    assert pin.cluster.apply(pod("debug-target", good.ref), check=False).returncode == 0
    result = pin.cluster.kubectl(
        "debug",
        "pod/debug-target",
        "-n",
        PINNED_NS,
        "--image",
        good.ref,
        "--container",
        "debugger",
    )
    assert result.returncode == 0, result.stderr
    spec = stored(pin, "pod", "debug-target")["spec"]
    assert [c["image"] for c in spec["ephemeralContainers"]] == [pinned(good)]
    assert [c["image"] for c in spec["containers"]] == [pinned(good)]


def test_refuse_tags_refuses_a_tag_with_a_clear_message(pin: PinStack) -> None:
    good = pin.images["good"]
    expected = (
        f"image {good.ref} (spec.template.spec.containers[0]): a tag reference, and only "
        "references by digest are admitted (imageReferences: RefuseTags): write it as "
        f"name@sha256:… (the tag points to {pinned(good)} now)"
    )
    manifest = yaml.safe_dump(app_deployment("tagged", good.ref, REFUSE_NS))
    for dry_run in ((), ("--dry-run=server",)):
        result = pin.cluster.kubectl("apply", *dry_run, "-f", "-", input=manifest)
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
    assert pin.cluster.kubectl("get", "deployment", "tagged", "-n", REFUSE_NS).returncode != 0

    # A digest reference (with or without its tag) is admitted and stored exactly as written:
    # nothing is rewritten, so a GitOps tool finds the cluster as git says.
    written = f"{good.server.host}/{good.repo}:{good.tag}@{good.digest}"
    result = pin.cluster.apply(app_deployment("by-digest", written, REFUSE_NS), check=False)
    assert result.returncode == 0, result.stderr
    assert template_images(stored(pin, "deployment", "by-digest", REFUSE_NS)) == [written]


def test_without_the_mutating_webhook_a_tag_is_refused_saying_so(pin: PinStack) -> None:
    good = pin.images["good"]
    delete_mutating_webhook(pin.cluster, HOOK)
    try:
        result = pin.cluster.apply(pod("unpinned", good.ref), check=False)
        assert result.returncode != 0
        assert (
            f"image {good.ref} (spec.containers[0]): not pinned to its digest: sbomgate's "
            "mutating webhook did not rewrite it (imageReferences: Pin)"
        ) in result.stderr
        assert f"or write {pinned(good)}" in result.stderr
        # A digest reference needs no mutation.
        result = pin.cluster.apply(pod("unpinned-digest", pinned(good)), check=False)
        assert result.returncode == 0, result.stderr
    finally:
        register_mutating_webhook(
            pin.cluster,
            HOOK,
            pin.gate.mutate_url,
            pin.cluster.ca.cert_pem,
            namespace_selector=selector("NotIn", "kube-system", REFUSE_NS),
        )


def server_side_apply(
    pin: PinStack, obj: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    return pin.cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=kustomize-controller",
        *args,
        "-f",
        "-",
        input=yaml.safe_dump(obj),
    )


def test_a_gitops_server_side_dry_run_sees_no_drift_until_the_tag_moves(pin: PinStack) -> None:
    """How Flux (and Argo CD's Server-Side Diff) find drift: a server-side dry-run apply of the
    manifest from git, compared with the live object. The dry run passes through /mutate too,
    so it carries the digest the live object has; the field stays the applier's own (Argo CD
    keeps the fields its manager owns), and only a moved tag is a difference."""
    image = push_image(pin.registry, "e2e-pin/gitops", "v1", seed="e2e-pin gitops")
    attest(pin.registry, image, GOOD, pin.key, pin.work)
    manifest = app_deployment("gitops", image.ref, PINNED_NS)
    result = server_side_apply(pin, manifest)
    assert result.returncode == 0, result.stderr
    live = stored(pin, "deployment", "gitops")
    assert template_images(live) == [pinned(image)]

    result = server_side_apply(
        pin, manifest, "--dry-run=server", "-o", "json", "--show-managed-fields"
    )
    assert result.returncode == 0, result.stderr
    predicted = json.loads(result.stdout)
    assert predicted["spec"] == live["spec"]  # no drift
    (entry,) = [m for m in predicted["metadata"]["managedFields"] if m["operation"] == "Apply"]
    assert entry["manager"] == "kustomize-controller"
    container = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"app"}' in container and "f:image" in container['k:{"name":"app"}']

    moved = push_image(pin.registry, image.repo, image.tag, seed="e2e-pin gitops moved")
    result = server_side_apply(pin, manifest, "--dry-run=server", "-o", "json")
    # The tag now names an unsigned image: the dry run says so (a real difference, refused).
    assert result.returncode != 0 and moved.digest in result.stderr
    assert template_images(stored(pin, "deployment", "gitops")) == [pinned(image)]
