"""Pinning image references to the digest judged (imageReferences: Pin, RefuseTags, Resolve).

`POST /mutate` and `POST /validate` over the real FastAPI app, against a real registry with real
cosign attestations: the patch per container path, the digest it names, what /validate then
admits or refuses, a tag re-pushed after admission, and every way /mutate can fail (no patch,
never a crash: /validate refuses instead). The same through a real kube-apiserver is in
test_e2e_mutate.py.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sbomgate._internal.logs import JsonFormatter
from sbomgate.admission import AdmissionController
from sbomgate.config import ImageReferences, ServeConfig, load_config
from sbomgate.errors import InputError
from sbomgate.mutation import pointer
from sbomgate.registry import Deadline
from sbomgate.runtime import build_controller
from sbomgate.serving.app import create_app
from sbomgate.serving.metrics import Metrics
from support.images import attested_image
from support.oci_builder import CosignKey, PushedImage, push_image
from support.paths import BAD_SBOM as BAD
from support.paths import FACTS
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import RegistryServer
from support.trust import trust_file

PIN, REFUSE_TAGS, RESOLVE = (
    ImageReferences.PIN,
    ImageReferences.REFUSE_TAGS,
    ImageReferences.RESOLVE,
)


@pytest.fixture(scope="module")
def images(plain_registry: RegistryServer, key: CosignKey, work: Path) -> dict[str, PushedImage]:
    return {
        "good": attested_image(
            plain_registry,
            "pin/good",
            GOOD,
            key,
            work,
            tag="v1",
            seed="mutate-pin/good-v1-" + GOOD.name,
        ),
        "bad": attested_image(
            plain_registry,
            "pin/bad",
            BAD,
            key,
            work,
            tag="v1",
            seed="mutate-pin/bad-v1-" + BAD.name,
        ),
        "unsigned": push_image(plain_registry, "pin/unsigned", "v1", seed="mutate-unsigned"),
        # Two images of one repository: `pin/two:v2@<digest of v1>` names both.
        "two-good": attested_image(
            plain_registry,
            "pin/two",
            GOOD,
            key,
            work,
            tag="v1",
            seed="mutate-pin/two-v1-" + GOOD.name,
        ),
        "two-unsigned": push_image(plain_registry, "pin/two", "v2", seed="mutate-two-unsigned"),
    }


@pytest.fixture
def controller_for(plain_registry: RegistryServer, key: CosignKey, work: Path) -> Iterator[Any]:
    made: list[AdmissionController] = []

    def make(references: ImageReferences = PIN, **overrides: Any) -> AdmissionController:
        config = ServeConfig(
            trust_policies=(trust_file(work, keys=[key]),),
            facts=FACTS,
            allowed_registries=(plain_registry.host, "127.0.0.1:1"),
            insecure_registries=(plain_registry.host, "127.0.0.1:1"),
            exempt_namespaces=("kube-system", "sbomgate"),
            image_references=references,
            admission_deadline=5,
        ).with_overrides(**overrides)
        controller = build_controller(config, Metrics())
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()
        controller.checker.client.close()


def client_of(controller: AdmissionController) -> TestClient:
    ready = threading.Event()
    ready.set()
    return TestClient(create_app(controller, Metrics(), ready=ready))


def pod(*images: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"containers": containers, **spec},
    }


def deployment(*images: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers, **spec},
            },
        },
    }


def review(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    sub_resource: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "operation": operation,
        "namespace": namespace or obj["metadata"].get("namespace"),
        "name": obj["metadata"].get("name"),
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "userInfo": {"username": "tester"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def mutate(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSONPatch /mutate answers with (empty: no patch); it always admits."""
    answer = client.post("/mutate", json=body)
    assert answer.status_code == 200, answer.text
    response = answer.json()["response"]
    assert response["uid"] == body["request"]["uid"] and response["allowed"] is True
    assert "status" not in response
    if "patch" not in response:
        assert "patchType" not in response
        return []
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def patched(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """`obj` with the patch applied, as the API server does (replace ops only are sent)."""
    out = copy.deepcopy(obj)
    for op in ops:
        assert op["op"] == "replace", op
        *parents, last = op["path"].strip("/").split("/")
        target: Any = out
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        assert last in target, op  # replace needs the value to exist
        target[last] = op["value"]
    return out


def validate(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/validate", json=body)
    assert answer.status_code == 200, answer.text
    response: dict[str, Any] = answer.json()["response"]
    assert response["uid"] == body["request"]["uid"]
    return response


def admitted_after_mutation(
    client: TestClient, obj: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the API server does: /mutate, apply the patch, /validate the patched object."""
    ops = mutate(client, review(obj, **kwargs))
    final = patched(obj, ops)
    return final, validate(client, review(final, **kwargs))


def message(response: dict[str, Any]) -> str:
    return str(response.get("status", {}).get("message", ""))


# -- Pin -------------------------------------------------------------------------------------


def test_each_tag_is_pinned_at_its_path_and_digests_are_left_alone(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for())
    good, bad = images["good"], images["bad"]
    tagged_and_digest = f"{good.server.host}/{good.repo}:v1@{good.digest}"
    obj = deployment(
        good.ref,
        good.digest_ref,
        tagged_and_digest,
        good.ref,  # the same reference twice: both paths are pinned
        initContainers=[{"name": "init", "image": bad.ref}],
    )
    ops = mutate(client, review(obj))
    assert ops == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": good.digest_ref,
        },
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/3/image",
            "value": good.digest_ref,
        },
        {
            "op": "replace",
            "path": "/spec/template/spec/initContainers/0/image",
            "value": bad.digest_ref,
        },
    ]
    # /validate judges exactly the digests pinned: the bad one is refused by name and policy.
    final = patched(obj, ops)
    response = validate(client, review(final))
    assert response["allowed"] is False
    lines = message(response).splitlines()
    assert any(
        line.startswith(f"image {bad.digest_ref} (spec.template.spec.initContainers[0]): ")
        and line.endswith("[policy malware]")
        for line in lines
    ), lines
    assert "not pinned" not in message(response)
    assert not any(good.repo in line for line in lines[1:]), lines


@pytest.mark.parametrize(
    ("kind", "api_version", "wrap", "prefix"),
    [
        ("Pod", "v1", lambda spec: {"spec": spec}, "/spec"),
        (
            "Job",
            "batch/v1",
            lambda spec: {"spec": {"template": {"spec": spec}}},
            "/spec/template/spec",
        ),
        (
            "CronJob",
            "batch/v1",
            lambda spec: {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}},
            "/spec/jobTemplate/spec/template/spec",
        ),
        (
            "StatefulSet",
            "apps/v1",
            lambda spec: {"spec": {"template": {"spec": spec}}},
            "/spec/template/spec",
        ),
        (
            "DaemonSet",
            "apps/v1",
            lambda spec: {"spec": {"template": {"spec": spec}}},
            "/spec/template/spec",
        ),
        (
            "ReplicationController",
            "v1",
            lambda spec: {"spec": {"template": {"spec": spec}}},
            "/spec/template/spec",
        ),
    ],
)
def test_every_kind_and_container_list_is_pinned(
    controller_for: Any,
    images: dict[str, PushedImage],
    kind: str,
    api_version: str,
    wrap: Any,
    prefix: str,
) -> None:
    client = client_of(controller_for())
    good = images["good"]
    spec = {
        "initContainers": [{"name": "init", "image": good.ref}],
        "containers": [{"name": "app", "image": good.ref}],
        "ephemeralContainers": [{"name": "debug", "image": good.ref}],
    }
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team"},
        **wrap(spec),
    }
    ops = mutate(client, review(obj))
    assert {op["path"] for op in ops} == {
        f"{prefix}/{lst}/0/image" for lst in ("containers", "initContainers", "ephemeralContainers")
    }
    assert {op["value"] for op in ops} == {good.digest_ref}
    assert validate(client, review(patched(obj, ops)))["allowed"] is True


def test_an_unpinned_tag_reaching_validation_is_refused_saying_so(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for())
    good = images["good"]
    # Through /mutate, as the API server sends it: admitted, the stored image is the digest.
    final, response = admitted_after_mutation(client, deployment(good.ref))
    assert response["allowed"] is True, message(response)
    assert final["spec"]["template"]["spec"]["containers"][0]["image"] == good.digest_ref

    # Without /mutate (the mutating webhook not installed, or it failed): refused, saying so.
    response = validate(client, review(deployment(good.ref)))
    assert response["allowed"] is False
    text = message(response)
    assert text.startswith("sbomgate refused Deployment team/web:\n")
    (line,) = text.splitlines()[1:]
    assert line.startswith(f"image {good.ref} (spec.template.spec.containers[0]): not pinned to ")
    assert "sbomgate's mutating webhook did not rewrite it (imageReferences: Pin)" in line
    assert line.endswith(
        f"install sbomgate's MutatingWebhookConfiguration (the chart does), or write {good.digest_ref}"
    )


def test_a_dry_run_gets_the_same_patch(controller_for: Any, images: dict[str, PushedImage]) -> None:
    client = client_of(controller_for())
    obj = pod(images["good"].ref, images["bad"].ref)
    real = mutate(client, review(obj))
    assert len(real) == 2
    assert mutate(client, review(obj, dry_run=True)) == real


def test_a_tag_moved_after_admission_does_not_move_the_pinned_image(
    controller_for: Any, plain_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    client = client_of(controller_for())
    first = attested_image(
        plain_registry,
        "pin/moving",
        GOOD,
        key,
        work,
        tag="stable",
        seed="mutate-pin/moving-stable-" + GOOD.name,
    )
    obj = deployment(first.ref)
    final, response = admitted_after_mutation(client, obj)
    assert response["allowed"] is True, message(response)
    stored = final["spec"]["template"]["spec"]["containers"][0]["image"]
    assert stored == first.digest_ref

    # The tag is re-pushed: an unsigned image now answers to it.
    moved = push_image(plain_registry, "pin/moving", "stable", seed="mutate-moved")
    assert moved.digest != first.digest
    # What was admitted still names (and runs) the digest that was judged...
    again = validate(client, review(final, operation="UPDATE", old=final))
    assert again["allowed"] is True, message(again)
    # ...while the tag itself, pinned anew, is the unsigned image and is refused.
    final, response = admitted_after_mutation(client, obj)
    assert final["spec"]["template"]["spec"]["containers"][0]["image"] == moved.digest_ref
    assert response["allowed"] is False
    assert f"image {moved.digest_ref} (spec.template.spec.containers[0])" in message(response)
    assert "no verified sbom attestation" in message(response)


def test_a_tag_and_digest_reference_is_judged_by_its_digest(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for())
    good, unsigned = images["two-good"], images["two-unsigned"]
    host = good.server.host
    # v2 is the unsigned image, but the digest is the signed one's: that is what runs.
    signed = f"{host}/pin/two:v2@{good.digest}"
    assert mutate(client, review(pod(signed))) == []
    response = validate(client, review(pod(signed)))
    assert response["allowed"] is True, message(response)
    # And the other way round: the signed tag with the unsigned digest is refused.
    refused = f"{host}/pin/two:v1@{unsigned.digest}"
    response = validate(client, review(pod(refused)))
    assert response["allowed"] is False
    assert unsigned.digest in message(response) and "no verified sbom attestation" in message(
        response
    )


def test_an_update_pins_what_it_changes_and_leaves_running_images_alone(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    """Rewriting an image an UPDATE did not change would restart a running container (Pods)
    or roll a Deployment out, for a label change."""
    client = client_of(controller_for())
    good, bad = images["good"], images["bad"]
    legacy = pod(good.ref, good.ref)  # stored before pinning was on
    relabeled = copy.deepcopy(legacy)
    relabeled["metadata"]["labels"] = {"tier": "web"}
    assert mutate(client, review(relabeled, operation="UPDATE", old=legacy)) == []
    response = validate(client, review(relabeled, operation="UPDATE", old=legacy))
    assert response["allowed"] is True, message(response)

    changed = copy.deepcopy(legacy)
    changed["spec"]["containers"][1]["image"] = bad.ref
    ops = mutate(client, review(changed, operation="UPDATE", old=legacy))
    assert ops == [{"op": "replace", "path": "/spec/containers/1/image", "value": bad.digest_ref}]
    # Unpinned, the changed one is refused as such; the unchanged one is not.
    response = validate(client, review(changed, operation="UPDATE", old=legacy))
    assert response["allowed"] is False
    unpinned = [line for line in message(response).splitlines() if "not pinned" in line]
    assert unpinned == [line for line in unpinned if "(spec.containers[1])" in line] and unpinned

    # kubectl debug: the new ephemeral container is pinned, the Pod's own are not touched.
    debugged = copy.deepcopy(legacy)
    debugged["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": good.ref}]
    ops = mutate(
        client,
        review(debugged, operation="UPDATE", old=legacy, sub_resource="ephemeralcontainers"),
    )
    assert ops == [
        {"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": good.digest_ref}
    ]


def test_templates_another_controller_owns_are_pinned_in_their_pods(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    """A Deployment finds its ReplicaSet by comparing templates: one we rewrote would never
    match, and it would make ReplicaSets without end. Its Pods are pinned when created."""
    client = client_of(controller_for())
    good = images["good"]
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": str(uuid.uuid4()),
        "controller": True,
    }
    replica_set: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": "team", "ownerReferences": [owner]},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": good.ref}]}}},
    }
    assert mutate(client, review(replica_set)) == []
    assert validate(client, review(replica_set))["allowed"] is True
    # An owner that is not the controller changes nothing.
    loose = copy.deepcopy(replica_set)
    loose["metadata"]["ownerReferences"][0]["controller"] = False
    assert len(mutate(client, review(loose))) == 1

    owned_pod = pod(good.ref)
    owned_pod["metadata"]["ownerReferences"] = [{**owner, "kind": "ReplicaSet"}]
    assert mutate(client, review(owned_pod)) == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": good.digest_ref}
    ]


def test_what_is_not_judged_is_not_pinned_and_costs_no_registry_call(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    client = client_of(controller)
    good = images["good"]
    before = controller.checker.client.requests
    deleting = pod(good.ref)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    for body in (
        review(pod(good.ref), namespace="kube-system"),
        review(pod(good.ref), operation="DELETE"),
        review(pod(good.ref), operation="UPDATE", old=pod(good.ref), sub_resource="status"),
        review(deleting, operation="UPDATE", old=pod(good.ref)),
        review(configmap),
        review(pod(good.digest_ref)),
    ):
        assert mutate(client, body) == []
    assert controller.checker.client.requests == before


# -- /mutate never fails a request -----------------------------------------------------------


def test_what_cannot_be_pinned_gets_no_patch_and_validation_refuses_it(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for())
    good = images["good"]
    cases = {
        "elsewhere.example/app:v1": "registry elsewhere.example: not in the allowed registries",
        "127.0.0.1:1/app:v1": "unreachable",  # allowed, nothing listens
        f"{good.server.host}/pin/absent:v1": "not found",
    }
    for image, why in cases.items():
        obj = pod(good.ref, image)
        ops = mutate(client, review(obj))
        # The other container is pinned; this one stays a tag...
        assert [op["path"] for op in ops] == ["/spec/containers/0/image"], image
        response = validate(client, review(patched(obj, ops)))
        # ...and /validate refuses it, for what it is.
        assert response["allowed"] is False
        text = message(response)
        assert f"image {image} (spec.containers[1])" in text, text
        assert why in text, text
    # An invalid reference: nothing to pin, refused as invalid.
    obj = pod("Not/A:Valid::Reference")
    assert mutate(client, review(obj)) == []
    assert "invalid image reference" in message(validate(client, review(obj)))


def test_a_failure_in_mutate_is_no_patch_never_a_crash(
    controller_for: Any, images: dict[str, PushedImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = controller_for()
    good = images["good"]
    ready = threading.Event()
    client = TestClient(create_app(controller, Metrics(), ready=ready))
    body = review(pod(good.ref))
    # Not ready: no patch (and /validate answers 503, which failurePolicy Fail refuses).
    assert mutate(client, body) == []
    assert client.post("/validate", json=body).status_code == 503
    ready.set()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(controller, "pins", boom)
    assert mutate(client, body) == []
    assert client.post("/mutate", content=b"not json").status_code == 400
    assert client.post("/mutate", json={"kind": "AdmissionReview"}).status_code == 400
    assert client.post("/mutate", content=b"x" * (9 << 20)).status_code == 413
    monkeypatch.undo()
    # No time left (the review waited too long to start): no patch rather than a late one.
    expired = Deadline(expires=0.0, started=0.0)
    out = controller.mutate(body, deadline=expired)
    assert out["response"] == {"uid": body["request"]["uid"], "allowed": True}


def test_pins_are_logged_and_counted(
    controller_for: Any, images: dict[str, PushedImage], caplog: pytest.LogCaptureFixture
) -> None:
    controller = controller_for()
    metrics = controller.observer
    assert isinstance(metrics, Metrics)
    ready = threading.Event()
    ready.set()
    client = TestClient(create_app(controller, metrics, ready=ready))
    with caplog.at_level("INFO", logger="sbomgate.admission"):
        mutate(client, review(pod(images["good"].ref, "elsewhere.example/app:v1")))
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    [record] = [line for line in lines if line["message"] == "mutation"]
    assert record["pinned"] == [
        {
            "path": "spec.containers[0]",
            "image": images["good"].ref,
            "pinned": images["good"].digest_ref,
        }
    ]
    assert [u["image"] for u in record["unresolved"]] == ["elsewhere.example/app:v1"]
    text = client.get("/metrics").text
    assert 'sbomgate_image_pins_total{outcome="pinned"} 1.0' in text
    assert 'sbomgate_image_pins_total{outcome="unresolved"} 1.0' in text


# -- RefuseTags and Resolve --------------------------------------------------------------------


def test_refuse_tags_admits_only_digests_and_says_which_digest(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for(REFUSE_TAGS))
    good = images["good"]
    assert mutate(client, review(deployment(good.ref))) == []  # nothing is rewritten
    response = validate(client, review(deployment(good.ref)))
    assert response["allowed"] is False
    (line,) = message(response).splitlines()[1:]
    assert line == (
        f"image {good.ref} (spec.template.spec.containers[0]): a tag reference, and only "
        "references by digest are admitted (imageReferences: RefuseTags): write it as "
        f"name@sha256:… (the tag points to {good.digest_ref} now)"
    )
    for admitted in (good.digest_ref, f"{good.server.host}/{good.repo}:v1@{good.digest}"):
        response = validate(client, review(deployment(admitted)))
        assert response["allowed"] is True, message(response)
    # A tag that cannot even be resolved is refused as a tag all the same.
    response = validate(client, review(pod("127.0.0.1:1/app:v1")))
    assert "(imageReferences: RefuseTags)" in message(response)


def test_resolve_admits_tags_as_they_are(
    controller_for: Any, images: dict[str, PushedImage]
) -> None:
    client = client_of(controller_for(RESOLVE))
    good = images["good"]
    assert mutate(client, review(deployment(good.ref))) == []
    assert validate(client, review(deployment(good.ref)))["allowed"] is True


# -- configuration and the CLI -----------------------------------------------------------------


def test_configuration(tmp_path: Path) -> None:
    assert ServeConfig().image_references is PIN  # the safe default
    path = tmp_path / "sbomgate.yaml"
    for value, expected in (("Pin", PIN), ("RefuseTags", REFUSE_TAGS), ("Resolve", RESOLVE)):
        path.write_text(f"imageReferences: {value}\n")
        assert load_config(path).image_references is expected
    path.write_text("{}\n")
    assert load_config(path).image_references is PIN
    for bad in ("pin", "Digest", "[Pin]", "true"):
        path.write_text(f"imageReferences: {bad}\n")
        with pytest.raises(
            InputError, match=r"imageReferences: .* is not one of Pin, RefuseTags, Resolve"
        ):
            load_config(path)


def test_serve_refuses_an_unknown_image_references_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sbomgate.cli", "serve", "--image-references", "Sometimes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--image-references: 'Sometimes' is not one of Pin, RefuseTags, Resolve" in (
        result.stdout + result.stderr
    )


def test_cli_verify_resolves_a_tag_and_prints_the_digest_it_judged(
    images: dict[str, PushedImage], key: CosignKey, work: Path
) -> None:
    good = images["good"]
    command = [
        sys.executable,
        "-m",
        "sbomgate.cli",
        "verify",
        good.ref,
        "--trust",
        str(trust_file(work, keys=[key])),
        "--facts",
        str(FACTS),
        "--insecure-registry",
        good.server.host,
    ]
    result = subprocess.run([*command, "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (image,) = json.loads(result.stdout)["images"]
    assert image["ref"] == good.ref and image["digest"] == good.digest
    table = subprocess.run(command, capture_output=True, text=True)
    assert f"{good.ref} -> {good.digest}" in table.stdout


def test_pointer() -> None:
    assert pointer("spec.template.spec.containers[10]") == "/spec/template/spec/containers/10"
    assert pointer("spec.ephemeralContainers[0]") == "/spec/ephemeralContainers/0"
