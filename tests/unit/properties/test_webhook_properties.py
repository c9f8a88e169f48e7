"""Properties: whatever it is sent, the webhook answers properly (never a 5xx, never a crash).

No registry: the only allowed registry is `registry.invalid`, which no generated image names,
so every image is refused before any network call.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from strategies import json_values, settings_for, words

from sbomgate.config import ServeConfig
from sbomgate.errors import SbomgateError
from sbomgate.operator import resources
from sbomgate.runtime import build_controller
from sbomgate.serving.app import create_app
from sbomgate.serving.body import MAX_BODY_BYTES
from sbomgate.serving.metrics import Metrics
from sbomgate.workload import WorkloadError, read_workload
from support.oci_builder import offline_trust_file

API = "admission.k8s.io/v1"
SETTINGS = settings_for(200)

# -- the app -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    work = tmp_path_factory.mktemp("webhook-properties")
    trust = offline_trust_file(work, "default")
    metrics = Metrics()
    controller = build_controller(
        ServeConfig(trust_policies=(trust,), allowed_registries=("registry.invalid",)), metrics
    )
    ready = threading.Event()
    ready.set()
    # raise_server_exceptions=False: a crash must show as the 500 the API server would get.
    with TestClient(
        create_app(controller, metrics, ready=ready), raise_server_exceptions=False
    ) as c:
        yield c
    controller.close()
    controller.checker.client.close()


# -- strategies ----------------------------------------------------------------------------

TEXT = words(
    ["", "CREATE", "UPDATE", "DELETE", "Pod", "Deployment", "CronJob", "kube-system", "team",
     "AdmissionReview", API, "uid", "request", "object", "kind", "spec", "containers", "image"]
)  # fmt: skip
# integers past 64 bits too: a review may carry any JSON number
JSONISH = json_values(TEXT, integers=st.integers(-(2**70), 2**70))
IMAGES = st.sampled_from(
    ["nginx", "ghcr.io/acme/web:1", "docker.io/library/alpine@sha256:" + "a" * 64,
     "UPPER/Case", " ", "a:b:c", "quay.io/x/y:latest", "localhost:5000/a", "@sha256:"]
) | st.text(max_size=30).filter(lambda s: "registry.invalid" not in s.lower())  # fmt: skip


def valid_review() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AdmissionReview",
        "request": {
            "uid": "7b0c6a8e-0000-4000-8000-000000000000",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "operation": "CREATE",
            "namespace": "team",
            "name": "web",
            "dryRun": False,
            "object": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "c", "image": "ghcr.io/acme/web:1"}],
                            "initContainers": [{"name": "i", "image": "nginx"}],
                        }
                    }
                },
            },
        },
    }


# Paths into valid_review() that mutations aim at.
PATHS: list[tuple[Any, ...]] = [
    (),
    ("apiVersion",),
    ("kind",),
    ("request",),
    ("request", "uid"),
    ("request", "kind"),
    ("request", "kind", "kind"),
    ("request", "operation"),
    ("request", "namespace"),
    ("request", "dryRun"),
    ("request", "subResource"),
    ("request", "object"),
    ("request", "object", "metadata"),
    ("request", "object", "metadata", "labels"),
    ("request", "object", "metadata", "deletionTimestamp"),
    ("request", "object", "spec"),
    ("request", "object", "spec", "template"),
    ("request", "object", "spec", "template", "spec"),
    ("request", "object", "spec", "template", "spec", "containers"),
    ("request", "object", "spec", "template", "spec", "containers", 0),
    ("request", "object", "spec", "template", "spec", "containers", 0, "image"),
    ("request", "object", "spec", "template", "spec", "initContainers", 0, "image"),
]
REPLACEMENTS = JSONISH | IMAGES | st.sampled_from(["Pod", "CronJob", "kube-system", "CREATE"])


@st.composite
def mutated_reviews(draw: st.DrawFn) -> Any:
    body: Any = valid_review()
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        if not path:
            return draw(JSONISH)
        parent = body
        for step in path[:-1]:
            in_dict = isinstance(parent, dict) and isinstance(step, str) and step in parent
            in_list = isinstance(parent, list) and isinstance(step, int) and step < len(parent)
            if in_dict or in_list:
                parent = parent[step]
            else:
                parent = None
                break
        last = path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            if draw(st.booleans()):
                parent.pop(last, None)
            else:
                parent[last] = draw(REPLACEMENTS)
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            parent[last] = draw(REPLACEMENTS)
    return body


def envelope_ok(body: Any) -> bool:
    """What /validate answers with an AdmissionReview (else a 400 with an error)."""
    request = body.get("request") if isinstance(body, dict) else None
    return (
        isinstance(request, dict)
        and body.get("kind") == "AdmissionReview"
        and body.get("apiVersion") == API
        and isinstance(request.get("uid"), str)
        and request["uid"] != ""
    )


def assert_review(response: Any, uid: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["apiVersion"] == API
    assert answer["kind"] == "AdmissionReview"
    out = answer["response"]
    assert out["uid"] == uid
    assert isinstance(out["allowed"], bool)
    if not out["allowed"]:
        assert isinstance(out["status"]["message"], str) and out["status"]["message"]
    return out


def assert_error(response: Any, statuses: tuple[int, ...] = (400,)) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert isinstance(response.json()["error"], str)


# -- 1. JSON bodies on /validate -----------------------------------------------------------


@SETTINGS
@given(body=JSONISH | mutated_reviews())
@example(body=valid_review())
@example(body={"request": {"uid": "u"}})  # a string uid but no AdmissionReview envelope: 400
@example(body={"apiVersion": API, "kind": "AdmissionReview", "request": {"uid": ""}})
def test_validate_answers_any_json(client: TestClient, body: Any) -> None:
    response = client.post("/validate", content=json.dumps(body).encode())  # big ints too
    if envelope_ok(body):
        out = assert_review(response, body["request"]["uid"])
        # No internal-error denials: every shape of request is understood.
        assert out.get("status", {}).get("code") != 500, out
    else:
        assert_error(response)


def test_the_valid_review_is_refused_for_its_registry(client: TestClient) -> None:
    out = assert_review(
        client.post("/validate", json=valid_review()), valid_review()["request"]["uid"]
    )
    assert out["allowed"] is False
    assert "not in the allowed registries" in out["status"]["message"]


# -- 2. arbitrary bytes --------------------------------------------------------------------

NASTY_BYTES = st.sampled_from(
    [b"", b"\xff\xfe", b'"\xed\xa0\x80"', b'"\\ud800"', b"1" + b"0" * 400, b"[1e999]",
     b"-" + b"9" * 5000, b"[" * 1025 + b"]" * 1025, b'{"a":' * 2000, b"\x00", b"NaN",
     b'{"request": {"uid": "u"}', b"{\"request\": {\"uid\": \"\xff\"}}", b"\xef\xbb\xbf{}"]
) | st.integers(1, 1100).map(lambda n: b"[" * n + b"]" * n) | st.integers(1, 1100).map(
    lambda n: b'{"a":' * n + b"1" + b"}" * n
)  # fmt: skip


@SETTINGS
@given(raw=st.binary(max_size=200) | NASTY_BYTES)
def test_any_bytes_get_a_4xx(client: TestClient, raw: bytes) -> None:
    for path in ("/validate", "/validate-policy"):
        response = client.post(path, content=raw)
        assert_error(response, (400, 413))


def test_an_oversized_body_is_413(client: TestClient) -> None:
    raw = b" " * (MAX_BODY_BYTES + 1)
    for path in ("/validate", "/validate-policy"):
        assert_error(client.post(path, content=raw), (413,))


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_deeply_nested_request_is_answered(client: TestClient, depth: int) -> None:
    """orjson reads up to 1024 levels; every level answers (a denial at worst), never a 5xx."""
    nested = "[" * depth + "]" * depth
    body = valid_review()
    body["request"]["namespace"] = 0
    body["request"]["object"]["metadata"]["labels"] = {"a": 0}
    raw = orjson.dumps(body).replace(
        b'"labels":{"a":0}', b'"labels":{"a":' + nested.encode() + b"}"
    )
    out = assert_review(client.post("/validate", content=raw), body["request"]["uid"])
    assert out["allowed"] is False


# -- 3. /validate-policy ---------------------------------------------------------------------

GOOD_REGO = [
    'package cloudsmith\nimport rego.v1\nmatch if input.v0.package.name == "x"\n',
    "package cloudsmith\nimport rego.v1\nmatch if false\n",
]
BAD_REGO = [
    "package cloudsmith\nmatch if {",
    "package x",  # no match rule
    "",
    "   ",
    "package cloudsmith\nx := http.send({})\nmatch if x",
    "not rego at all {{{",
]
REGO = (
    st.sampled_from(GOOD_REGO + BAD_REGO)
    | st.text(max_size=40)
    | st.sampled_from(GOOD_REGO).map(lambda r: r + "\n# trailing comment\n")
)


def policy_review(kind: Any, obj: Any, operation: Any = "CREATE", uid: str = "p-1") -> Any:
    return {
        "apiVersion": API,
        "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": kind, "operation": operation, "object": obj},
    }


def rego_loads(obj: dict[str, Any]) -> bool:
    try:
        resources.package_policy(obj)
    except SbomgateError:
        return False
    return True


@SETTINGS
@given(
    rego=REGO,
    name=st.none() | st.text(max_size=10),
    extra=st.fixed_dictionaries(
        {},
        optional={
            "title": st.text(max_size=10),
            "description": st.text(max_size=10),
            "enabled": st.booleans(),
            "precedence": st.integers(-5, 5),
            "terminal": st.booleans(),
        },
    ),
    operation=st.sampled_from(["CREATE", "UPDATE"]),
)
def test_a_package_policy_is_refused_exactly_when_its_rego_does_not_load(
    client: TestClient, rego: str, name: str | None, extra: dict[str, Any], operation: str
) -> None:
    obj = {"metadata": {"name": name}, "spec": {"rego": rego, **extra}}
    out = assert_review(
        client.post(
            "/validate-policy", json=policy_review({"kind": "PackagePolicy"}, obj, operation)
        ),
        "p-1",
    )
    assert out["allowed"] is rego_loads(obj)
    if rego in GOOD_REGO:
        assert out["allowed"] is True
    if rego in BAD_REGO:
        assert out["allowed"] is False
        assert out["status"]["code"] == 422


@pytest.mark.parametrize("rego", BAD_REGO)
def test_known_bad_rego_is_refused_with_the_load_error(client: TestClient, rego: str) -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"rego": rego}}
    out = assert_review(
        client.post("/validate-policy", json=policy_review({"kind": "PackagePolicy"}, obj)), "p-1"
    )
    assert out["allowed"] is False
    assert "PackagePolicy" in out["status"]["message"]


@SETTINGS
@given(operation=st.sampled_from(["DELETE", "CONNECT", None, 3]), rego=REGO)
def test_other_operations_are_allowed(client: TestClient, operation: Any, rego: str) -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"rego": rego}}
    out = assert_review(
        client.post(
            "/validate-policy", json=policy_review({"kind": "PackagePolicy"}, obj, operation)
        ),
        "p-1",
    )
    assert out["allowed"] is True


# Known crashes of /validate-policy (serving.handlers.review_policy): each is a 500 the API server
# turns into a refusal with no message (failurePolicy: Fail) instead of a 4xx or a denial.
CRASHES = [
    # request.kind not an object: `(request.get("kind") or {}).get("kind")` AttributeError
    pytest.param(policy_review("PackagePolicy", {"spec": {"rego": "x"}}), id="kind-is-a-string"),
    # spec not an object: `(obj.get("spec") or {}).get("rego")` AttributeError
    pytest.param(policy_review({"kind": "PackagePolicy"}, {"spec": 5}), id="spec-is-a-number"),
    # TrustPolicy authorities not a list: `enumerate(5)` TypeError in resources.trust_policy
    pytest.param(
        policy_review(
            {"kind": "TrustPolicy"}, {"metadata": {"name": "t"}, "spec": {"authorities": 5}}
        ),
        id="trust-authorities-is-a-number",
    ),
]


@pytest.mark.parametrize("body", CRASHES)
def test_validate_policy_known_crashes(client: TestClient, body: Any) -> None:
    assert_review(client.post("/validate-policy", json=body), "p-1")


POLICY_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "rego": REGO | JSONISH,
        "action": JSONISH | st.sampled_from(["Deny", "Warn", "Audit", "Quarantine"]),
        "precedence": JSONISH,
        "scope": JSONISH,
        "images": JSONISH,
        "authorities": JSONISH
        | st.lists(
            st.fixed_dictionaries(
                {}, optional={"name": JSONISH, "key": JSONISH, "keyless": JSONISH}
            ),
            max_size=3,
        ),
        "allowUnsigned": JSONISH,
        "attestations": JSONISH,
    },
)


@SETTINGS
@given(
    kind=JSONISH | st.sampled_from([{"kind": "PackagePolicy"}, {"kind": "TrustPolicy"}]),
    obj=JSONISH
    | st.fixed_dictionaries(
        {}, optional={"metadata": JSONISH, "spec": POLICY_SPECS | JSONISH, "kind": JSONISH}
    ),
    operation=st.sampled_from(["CREATE", "UPDATE", "DELETE"]) | JSONISH,
)
@example(kind="PackagePolicy", obj={"spec": {"rego": "x"}}, operation="CREATE")
def test_validate_policy_answers_any_policy_shape(
    client: TestClient, kind: Any, obj: Any, operation: Any
) -> None:
    response = client.post("/validate-policy", json=policy_review(kind, obj, operation))
    assert_review(response, "p-1")


# -- 4. reading workloads --------------------------------------------------------------------

CONTAINER = (
    st.fixed_dictionaries({"image": IMAGES}, optional={"name": st.text(max_size=5) | st.integers()})
    | st.fixed_dictionaries({}, optional={"name": st.text(max_size=5), "image": JSONISH})
    | JSONISH
)
CONTAINER_LIST = st.lists(CONTAINER, max_size=50) | st.lists(
    st.fixed_dictionaries({"image": IMAGES}), max_size=50
)
POD_SPEC = st.fixed_dictionaries(
    {},
    optional={
        "containers": CONTAINER_LIST | JSONISH,
        "initContainers": CONTAINER_LIST,
        "ephemeralContainers": CONTAINER_LIST,
    },
)


def wrap(kind: str, pod_spec: Any) -> dict[str, Any]:
    if kind == "Pod":
        spec = pod_spec
    elif kind == "Deployment":
        spec = {"template": {"spec": pod_spec}}
    else:
        spec = {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}
    return {"kind": kind, "metadata": {"name": "w"}, "spec": spec}


@SETTINGS
@given(
    kind=st.sampled_from(["Pod", "Deployment", "CronJob"]),
    pod_spec=POD_SPEC | JSONISH,
    namespace=st.sampled_from(["team", "team", "team", "kube-system"]),
    dry_run=st.booleans(),
)
def test_a_workload_whose_images_cannot_be_read_is_never_allowed(
    client: TestClient, kind: str, pod_spec: Any, namespace: str, dry_run: bool
) -> None:
    obj = wrap(kind, copy.deepcopy(pod_spec))
    body = valid_review()
    body["request"].update(
        kind={"kind": kind}, namespace=namespace, object=obj, dryRun=dry_run, name="w"
    )
    out = assert_review(client.post("/validate", json=body), body["request"]["uid"])
    if namespace == "kube-system":
        assert out["allowed"] is True  # exempt: nothing is read
        return
    try:
        workload = read_workload(obj, kind=kind)
    except WorkloadError as exc:
        assert out["allowed"] is False
        assert f"{kind} cannot be read: {exc}" in out["status"]["message"]
        return
    # Read: every image is refused (no registry is allowed), and no image means nothing to run.
    assert out["allowed"] is (not workload.images)
    if workload.images:
        assert out["status"]["code"] == 403
        assert out["status"]["message"].startswith(f"sbomgate refused {kind} team/w:")
