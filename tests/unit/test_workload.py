"""workload.read_workload: every container image of a Pod or pod controller, with its JSON path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.errors import InputError
from sbomgate.workload import (
    MAX_CONTAINERS,
    ContainerImage,
    Workload,
    WorkloadError,
    is_gated_kind,
    read_workload,
)

POD_SPEC = {
    "initContainers": [{"name": "init", "image": "registry.example/init:1"}],
    "containers": [
        {"name": "app", "image": "registry.example/app:1"},
        {"name": "sidecar", "image": "registry.example/sidecar:1"},
    ],
    "ephemeralContainers": [{"name": "debugger", "image": "registry.example/debug:1"}],
}


def _nest(path: tuple[str, ...], spec: Any) -> dict[str, Any]:
    """{"spec": {"template": {"spec": spec}}} for ("spec", "template", "spec")."""
    obj: Any = spec
    for key in reversed(path):
        obj = {key: obj}
    assert isinstance(obj, dict)
    return obj


KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("Pod", ("spec",)),
    ("Deployment", ("spec", "template", "spec")),
    ("ReplicaSet", ("spec", "template", "spec")),
    ("StatefulSet", ("spec", "template", "spec")),
    ("DaemonSet", ("spec", "template", "spec")),
    ("Job", ("spec", "template", "spec")),
    ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("ReplicationController", ("spec", "template", "spec")),
    ("PodTemplate", ("template", "spec")),
]


def _object(kind: str, path: tuple[str, ...], spec: Any, **meta: Any) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", **meta}}
    obj.update(_nest(path, spec))
    return obj


@pytest.mark.parametrize(("kind", "path"), KINDS)
def test_every_kind_reports_every_image_with_its_path(kind: str, path: tuple[str, ...]) -> None:
    workload = read_workload(_object(kind, path, POD_SPEC, namespace="team"))
    prefix = ".".join(path)
    assert is_gated_kind(kind)
    assert workload.kind == kind
    assert workload.namespace == "team"
    assert workload.name == "x"
    assert workload.images == (
        ContainerImage("registry.example/app:1", f"{prefix}.containers[0]", "app"),
        ContainerImage("registry.example/sidecar:1", f"{prefix}.containers[1]", "sidecar"),
        ContainerImage("registry.example/init:1", f"{prefix}.initContainers[0]", "init"),
        ContainerImage("registry.example/debug:1", f"{prefix}.ephemeralContainers[0]", "debugger"),
    )


def test_container_without_a_name_has_an_empty_name() -> None:
    workload = read_workload({"kind": "Pod", "spec": {"containers": [{"image": "a"}]}})
    assert workload.images == (ContainerImage("a", "spec.containers[0]", ""),)


def test_the_same_image_twice_is_reported_twice() -> None:
    spec = {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}
    images = read_workload({"kind": "Pod", "spec": spec}).images
    assert [c.path for c in images] == ["spec.containers[0]", "spec.containers[1]"]


@pytest.mark.parametrize(
    ("kind", "path", "depth"),
    [(kind, path, depth) for kind, path in KINDS for depth in range(len(path))],
)
def test_a_missing_spec_means_no_images_and_no_error(
    kind: str, path: tuple[str, ...], depth: int
) -> None:
    # the object stops (absent, or null) `depth` keys before the pod spec
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "x"}}
    obj.update(_nest(path[:depth], {}) if depth else {})
    assert read_workload(obj).images == ()
    cut = _nest(path[: depth + 1], None)
    assert read_workload({"kind": kind, **cut}).images == ()


def test_a_pod_spec_without_containers_has_no_images() -> None:
    assert read_workload({"kind": "Pod", "spec": {}}).images == ()
    empty: dict[str, Any] = {"containers": [], "initContainers": None}
    assert read_workload({"kind": "Pod", "spec": empty}).images == ()


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"kind": "Pod", "spec": []}, "spec must be an object"),
        ({"kind": "Deployment", "spec": {"template": "x"}}, "spec.template must be an object"),
        (
            {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": 3}}}}},
            "spec.jobTemplate.spec.template.spec must be an object",
        ),
        ({"kind": "PodTemplate", "template": {"spec": "x"}}, "template.spec must be an object"),
        ({"kind": "Pod", "spec": {"containers": {"image": "a"}}}, "spec.containers must be a list"),
        (
            {"kind": "Pod", "spec": {"initContainers": "a"}},
            "spec.initContainers must be a list",
        ),
        (
            {"kind": "Pod", "spec": {"ephemeralContainers": 1}},
            "spec.ephemeralContainers must be a list",
        ),
        (
            {"kind": "Pod", "spec": {"containers": [{"image": "a"}, "b"]}},
            "spec.containers[1] must be an object",
        ),
        (
            {"kind": "Pod", "spec": {"containers": [None]}},
            "spec.containers[0] must be an object",
        ),
        (
            {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
            "spec.template.spec.containers[0].image is missing",
        ),
        (
            {"kind": "Pod", "spec": {"initContainers": [{"image": ""}]}},
            "spec.initContainers[0].image is missing",
        ),
        (
            {"kind": "Pod", "spec": {"containers": [{"image": ["a"]}]}},
            "spec.containers[0].image must be a string",
        ),
        (
            {"kind": "Pod", "spec": {"ephemeralContainers": [{"image": 7}]}},
            "spec.ephemeralContainers[0].image must be a string",
        ),
        ({"kind": "Pod", "metadata": "x"}, "metadata must be an object"),
        ({"kind": "Pod", "metadata": []}, "metadata must be an object"),
        ({"kind": "Pod", "metadata": False}, "metadata must be an object"),
        ({"kind": "Pod", "metadata": {"labels": ["a"]}}, "metadata.labels must be an object"),
        ({"kind": "Pod", "metadata": {"labels": "a=b"}}, "metadata.labels must be an object"),
        (
            {"kind": "Pod", "metadata": {"annotations": 1}},
            "metadata.annotations must be an object",
        ),
        # metadata is read even when there is no pod spec yet
        ({"kind": "Deployment", "metadata": {"labels": 1}}, "metadata.labels must be an object"),
    ],
)
def test_malformed_objects_name_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(WorkloadError) as caught:
        read_workload(obj)
    assert str(caught.value) == field
    assert isinstance(caught.value, InputError)


def test_more_than_max_containers_is_refused() -> None:
    at_limit = [{"image": f"i{n}"} for n in range(MAX_CONTAINERS)]
    assert len(read_workload({"kind": "Pod", "spec": {"containers": at_limit}}).images) == (
        MAX_CONTAINERS
    )
    with pytest.raises(WorkloadError, match=f"more than {MAX_CONTAINERS} containers"):
        read_workload({"kind": "Pod", "spec": {"containers": [*at_limit, {"image": "one"}]}})
    # the limit counts every list together
    split = {"containers": at_limit[:600], "initContainers": [*at_limit[600:], {"image": "x"}]}
    with pytest.raises(WorkloadError, match="more than"):
        read_workload({"kind": "Pod", "spec": split})


@pytest.mark.parametrize("kind", ["Service", "ConfigMap", "pod", "", None, 3, ["Pod"]])
def test_kinds_that_run_no_containers_are_refused(kind: Any) -> None:
    assert not (isinstance(kind, str) and is_gated_kind(kind))
    with pytest.raises(WorkloadError, match="does not run containers"):
        read_workload({"kind": kind, "spec": {"containers": [{"image": "a"}]}})


def test_a_missing_kind_is_refused() -> None:
    with pytest.raises(WorkloadError, match="kind None does not run containers"):
        read_workload({"spec": {"containers": [{"image": "a"}]}})


@pytest.mark.parametrize("obj", [None, [], "Pod", 1, [{"kind": "Pod"}]])
def test_an_object_that_is_not_a_mapping_is_refused(obj: Any) -> None:
    with pytest.raises(WorkloadError, match="not a JSON object"):
        read_workload(obj)


def test_the_kind_argument_overrides_the_objects_kind() -> None:
    deployment = _object("Deployment", ("spec", "template", "spec"), POD_SPEC)
    # the admission request's kind is authoritative: read as a Pod, there is no `spec.containers`
    as_pod = read_workload(deployment, kind="Pod")
    assert as_pod.kind == "Pod" and as_pod.images == ()
    pod = _object("Service", ("spec",), {"containers": [{"image": "a"}]})
    assert read_workload(pod, kind="Pod").images == (ContainerImage("a", "spec.containers[0]", ""),)
    with pytest.raises(WorkloadError, match="'Service' does not run containers"):
        read_workload(_object("Pod", ("spec",), {}), kind="Service")


def test_metadata_is_read() -> None:
    workload = read_workload(
        {
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"note": "hello"},
            },
        }
    )
    assert workload == Workload(
        kind="Pod",
        namespace="shop",
        name="web",
        labels={"app": "web", "tier": "front"},
        annotations={"note": "hello"},
        images=(),
    )
    assert workload.display == "Pod shop/web"


def test_missing_metadata_gives_empty_values() -> None:
    metas: list[Any] = [{}, None]
    for meta in metas:
        workload = read_workload({"kind": "Job", "metadata": meta})
        assert workload.namespace is None and workload.name is None
        assert workload.labels == {} and workload.annotations == {}
        assert workload.display == "Job (unnamed)"
    workload = read_workload({"kind": "Job", "metadata": {"labels": None, "annotations": None}})
    assert workload.labels == {} and workload.annotations == {}


def test_generate_name_is_used_when_the_name_is_absent() -> None:
    def name_of(meta: dict[str, Any]) -> str | None:
        return read_workload({"kind": "Pod", "metadata": meta}).name

    assert name_of({"generateName": "web-7d9f-"}) == "web-7d9f-"
    assert name_of({"name": "", "generateName": "web-"}) == "web-"
    assert name_of({"name": None, "generateName": "web-"}) == "web-"
    assert name_of({"name": 5, "generateName": "web-"}) == "web-"
    assert name_of({"name": "web", "generateName": "web-"}) == "web"
    assert name_of({"generateName": 3}) is None
    assert name_of({"name": ""}) is None
    assert name_of({"namespace": 3}) is None


def test_non_string_namespace_is_dropped() -> None:
    assert read_workload({"kind": "Pod", "metadata": {"namespace": ["a"]}}).namespace is None


def test_to_input_has_the_policy_shape() -> None:
    workload = read_workload(
        _object(
            "StatefulSet",
            ("spec", "template", "spec"),
            POD_SPEC,
            namespace="db",
            labels={"app": "pg"},
            annotations={"a": "b"},
        )
    )
    given_input = workload.to_input(operation="CREATE", dry_run=True)
    assert given_input == {
        "kind": "StatefulSet",
        "namespace": "db",
        "name": "x",
        "labels": {"app": "pg"},
        "annotations": {"a": "b"},
        "operation": "CREATE",
        "dry_run": True,
    }
    # plain, mutable dicts: the caller serialises them, and changing them changes nothing here
    assert type(given_input["labels"]) is dict
    given_input["labels"]["app"] = "other"
    assert workload.labels == {"app": "pg"}
    unnamed = read_workload({"kind": "Pod"}).to_input(operation=None, dry_run=False)
    assert unnamed == {
        "kind": "Pod",
        "namespace": None,
        "name": None,
        "labels": {},
        "annotations": {},
        "operation": None,
        "dry_run": False,
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
KIND = st.sampled_from([k for k, _ in KINDS] + ["Service"]) | JSON
CONTAINER = st.one_of(
    JSON,
    st.fixed_dictionaries({"image": JSON}, optional={"name": JSON}),
)
POD_SPECISH = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "containers": st.lists(CONTAINER, max_size=3) | JSON,
            "initContainers": st.lists(CONTAINER, max_size=3) | JSON,
            "ephemeralContainers": st.lists(CONTAINER, max_size=3) | JSON,
        },
    ),
)


@st.composite
def _objects(draw: st.DrawFn) -> Any:
    """Mostly object-shaped values (so the search gets deep), sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    kind = draw(KIND)
    path = dict(KINDS).get(kind, ("spec",)) if isinstance(kind, str) else ("spec",)
    cut = draw(st.integers(0, len(path)))
    obj: dict[str, Any] = {"kind": kind}
    obj.update(_nest(path[:cut] or ("spec",), draw(POD_SPECISH)))
    if draw(st.booleans()):
        obj["metadata"] = draw(
            JSON
            | st.fixed_dictionaries(
                {}, optional={k: JSON for k in ("name", "generateName", "namespace", "labels")}
            )
        )
    return obj


@settings(max_examples=150, deadline=None)
@given(_objects(), st.none() | KIND)
def test_any_json_is_read_or_refused_with_a_workload_error(obj: Any, kind: Any) -> None:
    try:
        workload = read_workload(obj, kind=kind if isinstance(kind, str) else None)
    except WorkloadError:
        return
    assert is_gated_kind(workload.kind)
    assert workload.name is None or isinstance(workload.name, str)
    assert workload.namespace is None or isinstance(workload.namespace, str)
    for image in workload.images:
        assert isinstance(image.image, str) and image.image
        assert isinstance(image.container, str)
    workload.to_input(operation="CREATE", dry_run=False)
