"""Workloads and AdmissionReviews as the API server sends them."""

from __future__ import annotations

import uuid
from typing import Any

from sbomgate.admission import AdmissionController


def deployment(*images: str, namespace: str = "team", name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": f"c{i}", "image": image} for i, image in enumerate(images)
                    ]
                },
            },
        },
    }


def review(
    obj: dict[str, Any],
    *,
    kind: str | None = None,
    operation: str = "CREATE",
    dry_run: bool = False,
    sub_resource: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    kind = kind or obj["kind"]
    group, _, version = obj["apiVersion"].rpartition("/")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "operation": operation,
        "namespace": namespace or obj["metadata"].get("namespace"),
        "name": obj["metadata"].get("name"),
        "object": obj,
        "dryRun": dry_run,
        "userInfo": {"username": "tester"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def answer(controller: AdmissionController, body: dict[str, Any]) -> dict[str, Any]:
    out = controller.review(body)
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == body["request"]["uid"]
    return dict(out["response"])


def app_deployment(name: str, image: str, namespace: str = "team") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }
