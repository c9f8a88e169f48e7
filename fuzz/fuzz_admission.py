"""Fuzz target: the webhook's answers, through the functions its routes call (`/validate`:
serving.handlers.review, the body parse and AdmissionController.review; `/validate-policy`:
serving.handlers.review_policy), with a controller built as `sbomgate serve` builds it.

No network, ever: the only allowed registry is a pattern no host can match, so every image is
refused before anything is sent, and a guard on name resolution and connect() turns any
attempt into a crash.

Modes (first byte): 0 raw bytes; 1 a workload AdmissionReview edited at fuzzer-chosen paths;
2 a PackagePolicy or TrustPolicy review, edited. Both endpoints get every input. Properties:
  - a body with an AdmissionReview envelope and a uid gets HTTP 200, an AdmissionReview with
    that uid, a boolean `allowed`, and a message when denied; anything else gets a 4xx with a
    JSON error (never a 5xx, never an exception);
  - a gated workload with images, not exempt, is never allowed (nothing can verify);
  - nothing is logged as an unexpected error (the webhook survives those, but they are bugs).
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped]
import fuzzlib
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# Heavy third-party modules first, uninstrumented: only sbomgate's branches guide the fuzzer.
import fastapi  # noqa: F401  isort: skip
import regorus  # noqa: F401  isort: skip

with atheris.instrument_imports(include=["sbomgate"]):
    from sbomgate.admission import OPERATIONS
    from sbomgate.config import ServeConfig
    from sbomgate.review import uid_of
    from sbomgate.runtime import build_controller
    from sbomgate.serving import handlers
    from sbomgate.serving.metrics import Metrics
    from sbomgate.workload import POD_SPEC_PATHS, WorkloadError, read_workload

API = "admission.k8s.io/v1"
NEVER = "no-registry-is-allowed!"  # `!` is in no host name: the allow-list matches nothing


NETWORK_USED: list[str] = []


def _no_network(*args: Any, **kwargs: Any) -> Any:
    NETWORK_USED.append(repr(args[:2]))
    raise OSError("the admission fuzz target never uses the network")


socket.getaddrinfo = _no_network
socket.create_connection = _no_network
socket.socket.connect = _no_network  # type: ignore[method-assign]
socket.socket.connect_ex = _no_network  # type: ignore[method-assign]


PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _controller() -> Any:
    work = Path(tempfile.mkdtemp(prefix="fuzz-admission-"))
    key = work / "cosign.pub"
    key.write_text(PEM)
    trust = work / "trust.json"
    trust.write_text(
        json.dumps(
            {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "TrustPolicy",
                "metadata": {"name": "default"},
                "spec": {
                    "images": ["**"],
                    "authorities": [{"name": "k", "key": {"file": str(key)}}],
                },
            }
        )
    )
    config = ServeConfig(trust_policies=(trust,), allowed_registries=(NEVER,))
    return build_controller(config, Metrics())


CONTROLLER = _controller()
EXEMPT = CONTROLLER.config.exempt_namespaces
READY = threading.Event()
READY.set()
ERRORS = fuzzlib.capture_errors()

POD_SPEC = {
    "containers": [{"name": "c", "image": "ghcr.io/acme/web:1"}],
    "initContainers": [{"name": "i", "image": "nginx@sha256:" + "a" * 64}],
}


def review(kind: str, obj: Any, **request: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AdmissionReview",
        "request": {
            "uid": "7b0c6a8e-0000-4000-8000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": "CREATE",
            "namespace": "team",
            "name": "w",
            "dryRun": False,
            "object": obj,
            **request,
        },
    }


def workload(kind: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "w", "labels": {"app": "w"}}}
    node = obj
    path = POD_SPEC_PATHS[kind]
    for key in path[:-1]:
        node[key] = {}
        node = node[key]
    node[path[-1]] = POD_SPEC
    return obj


WORKLOAD_REVIEWS = [review(kind, workload(kind)) for kind in POD_SPEC_PATHS] + [
    review("Pod", workload("Pod"), operation="UPDATE", subResource="ephemeralcontainers"),
    review("Deployment", workload("Deployment"), namespace="kube-system"),
]
POLICY_REVIEWS = [
    review(
        "PackagePolicy",
        {
            "metadata": {"name": "p"},
            "spec": {
                "rego": "package cloudsmith\nimport rego.v1\n"
                'match if input.v0.package.name == "x"\n',
                "action": "Deny",
                "precedence": 1,
                "scope": {"namespaces": ["team-*"], "images": ["ghcr.io/acme/**"]},
            },
        },
    ),
    review(
        "TrustPolicy",
        {
            "metadata": {"name": "t"},
            "spec": {
                "images": ["ghcr.io/acme/**"],
                "authorities": [
                    {"name": "k", "key": {"data": PEM}},
                    {
                        "name": "sigstore",
                        "keyless": {
                            "identities": [{"issuer": "https://i", "subjectRegExp": "^a@b$"}]
                        },
                    },
                ],
                "attestations": [{"name": "sbom", "predicateTypes": ["cyclonedx"]}],
            },
        },
    ),
]
VOCABULARY = [
    API, "AdmissionReview", "apiVersion", "kind", "request", "uid", "operation", "CREATE",
    "UPDATE", "DELETE", "CONNECT", "namespace", "kube-system", "team", "object", "oldObject",
    "dryRun", "subResource", "ephemeralcontainers", "status", "metadata", "name",
    "generateName", "labels", "annotations", "deletionTimestamp", "spec", "template",
    "jobTemplate", "containers", "initContainers", "ephemeralContainers", "image", *POD_SPEC_PATHS,
    "Service", "ghcr.io/acme/web:1", "nginx", "localhost:5000/a", "UPPER/Case", "a@b",
    "PackagePolicy", "TrustPolicy", "rego", "configMapRef", "action", "Deny", "Warn", "Audit",
    "Quarantine", "precedence", "terminal", "enabled", "title", "description", "scope",
    "namespaces", "namespaceSelector", "matchLabels", "matchExpressions", "key", "operator",
    "In", "NotIn", "Exists", "DoesNotExist", "values", "images", "authorities", "keyless",
    "data", "file", "identities", "issuer", "issuerRegExp", "subject", "subjectRegExp",
    "trustedRoot", "attestations", "predicateTypes", "required", "builderIds",
    "sourceRepositories", "allowUnsigned", "cyclonedx", "**", "*", "[", "(", PEM,
    "/dev/zero", "/dev/stdin", "/etc/hostname", "/proc/self/status", "/", "../x",
    "package cloudsmith\nmatch if {", "import rego.v1", "match if true", "http.send({})",
]  # fmt: skip
MODES = 3


def envelope_ok(body: Any) -> bool:
    """What /validate answers with an AdmissionReview (else a 4xx with an error)."""
    request = body.get("request") if isinstance(body, dict) else None
    return (
        isinstance(request, dict)
        and body.get("kind") == "AdmissionReview"
        and body.get("apiVersion") == API
        and isinstance(request.get("uid"), str)
        and request["uid"] != ""
    )


def must_deny(request: dict[str, Any]) -> bool:
    """A gated, not exempt workload whose images cannot all be verified (none can here)."""
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return False
    kind_doc = request.get("kind")
    kind = kind_doc.get("kind") if isinstance(kind_doc, dict) else None
    if not isinstance(kind, str) or kind not in POD_SPEC_PATHS:
        return False
    sub = request.get("subResource") or ""
    if sub and not (kind == "Pod" and sub == "ephemeralcontainers"):
        return False
    namespace = request.get("namespace")
    if (namespace if isinstance(namespace, str) else "") in EXEMPT:
        return False
    obj = request.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and meta.get("deletionTimestamp"):
        return False
    try:
        return bool(read_workload(obj, kind=kind).images)
    except WorkloadError:
        return True


def answer_of(response: Any, body: Any, reviewed: bool) -> None:
    status = response.status_code
    answer = orjson.loads(response.body)
    if not reviewed:
        if status == 200:  # refused unread, to a uid found in its head: a denial
            fuzzlib.check(answer["response"]["allowed"] is False, f"allowed unread: {answer}")
            return
        fuzzlib.check(status in (400, 413), f"HTTP {status} for a body that is no review")
        fuzzlib.check(isinstance(answer.get("error"), str), f"error body {answer!r}")
        return
    fuzzlib.check(status == 200, f"HTTP {status}: {answer!r}")
    fuzzlib.check(answer.get("apiVersion") == API, f"apiVersion of {answer!r}")
    fuzzlib.check(answer.get("kind") == "AdmissionReview", f"kind of {answer!r}")
    out = answer["response"]
    fuzzlib.check(out.get("uid") == body["request"]["uid"], "the answer's uid is not the request's")
    fuzzlib.check(isinstance(out.get("allowed"), bool), f"allowed is {out.get('allowed')!r}")
    if not out["allowed"]:
        message = out.get("status", {}).get("message")
        fuzzlib.check(
            isinstance(message, str) and message != "", f"denied without a message: {out}"
        )
        fuzzlib.check(out["status"].get("code") != 500, f"an internal error: {out}")


def check_body(raw: bytes) -> None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    validated = handlers.review(CONTROLLER, raw, READY)
    ERRORS.raise_first()
    answer_of(validated, body, envelope_ok(body))
    if envelope_ok(body) and must_deny(body["request"]):
        allowed = orjson.loads(validated.body)["response"]["allowed"]
        fuzzlib.check(not allowed, "a workload with unverifiable images was allowed")
    policy = handlers.review_policy(raw)
    ERRORS.raise_first()
    answer_of(policy, body, bool(uid_of(body)))
    fuzzlib.check(not NETWORK_USED, f"the network was used: {NETWORK_USED}")
    check_metrics()


SEEN = [0]
# Label values a review can produce: the gated kinds, real operations, "other" and "unknown".
MAX_SERIES = (len(POD_SPEC_PATHS) + 2) * (len(OPERATIONS) + 2) * 3


def check_metrics() -> None:
    """Requests cannot mint metric series (each is memory kept, and /metrics text)."""
    SEEN[0] += 1
    if SEEN[0] % 256:
        return
    (family,) = CONTROLLER.observer.requests.collect()
    series = {tuple(sorted(s.labels.items())) for s in family.samples}
    fuzzlib.check(len(series) <= MAX_SERIES, f"{len(series)} request metric series")


def test_one_input(data: bytes) -> None:
    mode = data[0] % MODES if data else fuzzlib.RAW
    if mode == fuzzlib.RAW:
        check_body(data[1:])
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    templates = WORKLOAD_REVIEWS if mode == 1 else POLICY_REVIEWS
    body = fuzzlib.mutate(fdp, fdp.PickValueInList(templates), VOCABULARY, rounds=6)
    check_body(fuzzlib.dumps(body))


def seeds() -> list[bytes]:
    raw = [fuzzlib.raw_seed(fuzzlib.dumps(r)) for r in WORKLOAD_REVIEWS + POLICY_REVIEWS]
    structured = [bytes([mode]) + bytes(range(i, i + 64)) for mode in (1, 2) for i in (0, 97)]
    return raw + structured + fuzzlib.committed_seeds("admission")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=seeds, tokens=VOCABULARY)
