"""Pinning image references to digests: which containers, and the JSONPatch that does it.

A tag is resolved twice: by sbomgate when it judges the image, and by the kubelet when it
pulls. A tag re-pushed in between, or a registry that answers sbomgate and the kubelet
differently, runs an image nobody judged. `POST /mutate` rewrites each tag reference to
`registry/repository@sha256:…` (what the tag resolves to now), and `POST /validate` judges
exactly that digest, refusing a tag that reaches it unpinned (imageReferences: Pin); or tags
are refused outright (RefuseTags). No network here: admission.py resolves.

Which containers (`pin_targets`), the same for /mutate and /validate so that they never
disagree:
- tag references only: `name@sha256:…` and `name:tag@sha256:…` already name a digest;
- new ones only: on an UPDATE, an image unchanged at its path is left as it is (rewriting it
  would restart a running Pod's container, or roll a Deployment out, for a label change);
- not in a template another controller owns (a ReplicaSet of a Deployment, a Job of a
  CronJob): the Deployment controller finds its ReplicaSet by comparing templates, and one we
  rewrote never matches, so it would make ReplicaSets without end. Their Pods are pinned when
  they are created: Pods are always pinned.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import orjson

from sbomgate.errors import InputError
from sbomgate.registry import parse_reference
from sbomgate.workload import ContainerImage, Workload, WorkloadError, read_workload


class PatchOperation(TypedDict):
    """One RFC 6902 operation of the patch /mutate answers with."""

    op: Literal["replace"]
    path: str
    value: str


@dataclass(frozen=True, slots=True)
class Pin:
    """A container whose tag reference is rewritten to the digest it resolves to."""

    container: ContainerImage
    pinned: str  # registry/repository@sha256:…


def is_tag_reference(image: str) -> bool:
    """True for a reference without a digest; False with one, or when it does not parse (it is
    refused as invalid anyway, and no digest can be found for it)."""
    try:
        return parse_reference(image).digest is None
    except InputError:
        return False


def pin_targets(request: Mapping[str, Any], workload: Workload) -> tuple[ContainerImage, ...]:
    """The containers of the request's object whose tag reference must become a digest."""
    if workload.kind != "Pod" and _controlled(request.get("object")):
        return ()
    before = _images_before(request, workload.kind)
    return tuple(
        c for c in workload.images if before.get(c.path) != c.image and is_tag_reference(c.image)
    )


def json_patch(pins: Sequence[Pin]) -> list[PatchOperation]:
    """The JSONPatch replacing each pinned container's image."""
    return [
        {"op": "replace", "path": pointer(pin.container.path) + "/image", "value": pin.pinned}
        for pin in pins
    ]


def encoded_patch(pins: Sequence[Pin]) -> str:
    """The AdmissionReview response's `patch`: the JSONPatch, base64."""
    return base64.b64encode(orjson.dumps(json_patch(pins))).decode()


def pointer(path: str) -> str:
    """`spec.template.spec.containers[0]` -> `/spec/template/spec/containers/0` (the paths come
    from workload.py: fixed keys and list positions, nothing to escape)."""
    return "/" + path.replace("[", ".").replace("]", "").replace(".", "/")


def _controlled(obj: Any) -> bool:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(owners, list):
        return False
    return any(isinstance(o, dict) and o.get("controller") is True for o in owners)


def _images_before(request: Mapping[str, Any], kind: str) -> dict[str, str]:
    """path -> image in the stored object an UPDATE changes; empty on a CREATE."""
    if request.get("operation") != "UPDATE":
        return {}
    try:
        old = read_workload(request.get("oldObject"), kind=kind)
    except WorkloadError:
        return {}
    return {c.path: c.image for c in old.images}
