"""Fuzz target: reading the container images of a Kubernetes object (read_workload), for every
gated kind, with the kind given by the AdmissionReview or by the object itself.

Modes (first byte): 0 the rest as JSON (kind from the object); 1 a workload of a fuzzer-chosen
kind edited at fuzzer-chosen paths. Every input is read or raises WorkloadError; what is read
names every image with its path and serialises as the policies' `input.v0.workload`.
"""

from __future__ import annotations

from typing import Any

import atheris  # type: ignore[import-untyped]
import fuzzlib
import orjson

with atheris.instrument_imports(include=["sbomgate"]):
    from sbomgate.workload import (
        MAX_CONTAINERS,
        POD_SPEC_PATHS,
        Workload,
        WorkloadError,
        read_workload,
    )

KINDS = [*POD_SPEC_PATHS, "Service", "", "pod"]
POD_SPEC: dict[str, Any] = {
    "containers": [{"name": "app", "image": "ghcr.io/acme/web:1"}, {"image": "nginx"}],
    "initContainers": [{"name": "init", "image": "busybox@sha256:" + "a" * 64}],
    "ephemeralContainers": [{"name": "debug", "image": "alpine"}],
}
VOCABULARY = [
    *POD_SPEC_PATHS, "kind", "metadata", "name", "generateName", "namespace", "labels",
    "annotations", "spec", "template", "jobTemplate", "containers", "initContainers",
    "ephemeralContainers", "image", "nginx", "team", "kube-system",
]  # fmt: skip
MODES = 2


def wrap(kind: str, pod_spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": kind,
        "metadata": {"name": "w", "namespace": "team", "labels": {"app": "w"}},
    }
    node = obj
    path = POD_SPEC_PATHS.get(kind, ("spec",))
    for key in path[:-1]:
        node[key] = {}
        node = node[key]
    node[path[-1]] = pod_spec
    return obj


def check_workload(obj: Any, kind: str | None) -> None:
    workload = fuzzlib.expect(lambda: read_workload(obj, kind=kind), (WorkloadError,))
    if workload is None:
        return
    fuzzlib.check(isinstance(workload, Workload), f"returned {workload!r}")
    fuzzlib.check(workload.kind in POD_SPEC_PATHS, f"kind {workload.kind!r}")
    fuzzlib.check(len(workload.images) <= MAX_CONTAINERS, "more containers than the limit")
    for image in workload.images:
        # An image that is not a non-empty string would be checked as something else.
        fuzzlib.check(isinstance(image.image, str) and image.image != "", f"image {image!r}")
        fuzzlib.check(image.path.endswith("]"), f"path {image.path!r}")
    orjson.dumps(workload.to_input(operation="CREATE", dry_run=False))
    fuzzlib.check(isinstance(workload.display, str), "display")


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        try:
            obj = orjson.loads(data[1:])
        except orjson.JSONDecodeError:
            return
        check_workload(obj, None)
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    kind = fdp.PickValueInList(KINDS)
    obj = fuzzlib.mutate(fdp, wrap(kind, POD_SPEC), VOCABULARY, rounds=6)
    given = fdp.PickValueInList([None, kind, *KINDS])
    check_workload(obj, given)


def seeds() -> list[bytes]:
    raw = [fuzzlib.raw_seed(fuzzlib.dumps(wrap(k, POD_SPEC))) for k in POD_SPEC_PATHS]
    structured = [bytes([1]) + bytes(range(i, i + 64)) for i in (0, 97, 180)]
    return raw + structured + fuzzlib.committed_seeds("workload")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=VOCABULARY)
