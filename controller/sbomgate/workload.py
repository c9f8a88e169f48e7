"""Every container image of a Kubernetes object, with the JSON path it sits at.

Pods and everything that makes Pods are gated (checking only Pods lets kubectl, Helm and
Argo CD report success while the Pods silently never appear). No network here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sbomgate.errors import InputError

# kind -> path from the object to its PodSpec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# the order images (and so denial messages, which are cut short) are reported in
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# A bound on the work one object can cause. Containers are cheap to read (10,000 in about
# 30 ms) and the same image in many of them is checked once; each distinct image costs registry
# round trips, so distinct images are capped far lower (see admission.py).
MAX_CONTAINERS = 10_000
MAX_DISTINCT_IMAGES = 64


class WorkloadError(InputError):
    """The object is not a workload we can read; the message names the field."""


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container's image reference, with the JSON path of the container."""

    image: str
    path: str  # e.g. spec.template.spec.containers[0]
    container: str  # the container's name


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What a Kubernetes object asks to run: its identity, labels and every container image."""

    kind: str
    namespace: str | None
    name: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    images: tuple[ContainerImage, ...]

    def to_input(self, *, operation: str | None, dry_run: bool) -> dict[str, Any]:
        """`input.v0.workload`."""
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "operation": operation,
            "dry_run": dry_run,
        }

    @property
    def display(self) -> str:
        """`Kind namespace/name`, for messages."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name or '(unnamed)'}"


def is_gated_kind(kind: str) -> bool:
    """True for the kinds whose Pod templates are checked."""
    return kind in POD_SPEC_PATHS


def _string_map(value: Any, where: str) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorkloadError(f"{where} must be an object")
    if not all(isinstance(v, str) for v in value.values()):
        raise WorkloadError(f"{where} values must be strings")
    return {str(k): v for k, v in value.items()}


def read_workload(obj: Any, *, kind: str | None = None) -> Workload:
    """The images of a Pod or pod controller; WorkloadError for a malformed object."""
    if not isinstance(obj, dict):
        raise WorkloadError("the object is not a JSON object")
    kind = kind or obj.get("kind")
    if not isinstance(kind, str) or kind not in POD_SPEC_PATHS:
        raise WorkloadError(f"kind {kind!r} does not run containers")
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise WorkloadError("metadata must be an object")
    spec: Any = obj
    path: list[str] = []
    for key in POD_SPEC_PATHS[kind]:
        path.append(key)
        spec = spec.get(key) if isinstance(spec, dict) else None
        if spec is None:
            return _workload(kind, meta, ())  # nothing to run (e.g. a Pod without spec yet)
        if not isinstance(spec, dict):
            raise WorkloadError(f"{'.'.join(path)} must be an object")
    images: list[ContainerImage] = []
    prefix = ".".join(path)
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if containers is None:
            continue
        if not isinstance(containers, list):
            raise WorkloadError(f"{prefix}.{list_name} must be a list")
        for position, container in enumerate(containers):
            where = f"{prefix}.{list_name}[{position}]"
            if not isinstance(container, dict):
                raise WorkloadError(f"{where} must be an object")
            image = container.get("image")
            if image is None or image == "":
                raise WorkloadError(f"{where}.image is missing")
            if not isinstance(image, str):
                raise WorkloadError(f"{where}.image must be a string")
            name = container.get("name")
            images.append(
                ContainerImage(
                    image=image, path=where, container=name if isinstance(name, str) else ""
                )
            )
            if len(images) > MAX_CONTAINERS:
                raise WorkloadError(f"more than {MAX_CONTAINERS} containers")
    return _workload(kind, meta, tuple(images))


def _workload(kind: str, meta: Mapping[str, Any], images: tuple[ContainerImage, ...]) -> Workload:
    namespace = meta.get("namespace")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        name = meta.get("generateName")  # e.g. a Pod its ReplicaSet is about to create
    return Workload(
        kind=kind,
        namespace=namespace if isinstance(namespace, str) else None,
        name=name if isinstance(name, str) and name else None,
        labels=_string_map(meta.get("labels"), "metadata.labels"),
        annotations=_string_map(meta.get("annotations"), "metadata.annotations"),
        images=images,
    )
