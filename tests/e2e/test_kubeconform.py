"""kubeconform -strict, offline, against schemas that tools/kube_schemas.py writes from the real
API server (tests/support/kube_cluster.py) and from CRDs: hand-written manifests, a small CRD of our own,
and the Helm chart's rendered output (its own CRDs included).

The API server is the oracle where it is cheap to ask: the good and bad Deployments and custom
resources also go through a server-side dry run with strict field validation, so the schemas are
checked to agree with what the server itself accepts and refuses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kube_cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
KUBECONFORM_BIN = ROOT / ".cache" / "bin" / "kubeconform"
KUBE_SCHEMAS = ROOT / "tools" / "kube_schemas.py"
CHART = ROOT / "charts" / "sbomgate"
SCHEMA_LOCATION = "{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json"
RELEASE = "sbomgate"
RELEASE_NAMESPACE = "sbomgate-system"
# The dry runs go to kube-system: the test webhooks other tests register skip it.
DRY_RUN_NAMESPACE = "kube-system"

WIDGET_GROUP = "kubeconform.test.sbomgate.dev"
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{WIDGET_GROUP}"},
    "spec": {
        "group": WIDGET_GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "tags": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "set",
                                        "items": {"type": "string"},
                                    },
                                    "owner": {"type": "string", "nullable": True},
                                    "ratio": {
                                        "type": "number",
                                        "minimum": 0,
                                        "exclusiveMinimum": True,
                                    },
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": True,
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "extra": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                        },
                    }
                },
            },
            {
                # Not served: no schema, so kubeconform must not accept it.
                "name": "v1alpha0",
                "served": False,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            },
        ],
    },
}


def deployment(**spec_changes: Any) -> dict[str, Any]:
    """A realistic Deployment; ``spec_changes`` are merged into its spec (None deletes)."""
    manifest: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web"},
            "annotations": None,  # what an empty `annotations:` in a template renders
            "creationTimestamp": None,  # what `kubectl create --dry-run -o yaml` prints
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.example/web@sha256:" + "0" * 64,
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--port=8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "MODE", "value": "production"},
                                {
                                    "name": "POD_NAMESPACE",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                },
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": 1, "memory": "128Mi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                            "livenessProbe": {
                                "tcpSocket": {"port": 8080},
                                "periodSeconds": 10,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                            },
                        }
                    ],
                },
            },
        },
    }
    for key, value in spec_changes.items():
        if value is None:
            manifest["spec"].pop(key, None)
        else:
            manifest["spec"][key] = value
    return manifest


def widget(spec: dict[str, Any], version: str = "v1alpha1") -> dict[str, Any]:
    return {
        "apiVersion": f"{WIDGET_GROUP}/{version}",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"size": "small"}},
        "spec": spec,
    }


GOOD_WIDGET = {
    "size": 3,
    "color": "blue",
    "port": "http",
    "tags": ["a", "b"],
    "owner": None,
    "ratio": 0.5,
    "template": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}},
    "extra": {"anything": {"goes": [1, 2]}},
}


def dump(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Schemas:
    directory: Path
    index: dict[str, Any]
    rendered_chart: list[Path]  # `helm template` outputs, empty when there is no chart
    seconds: float

    @property
    def location(self) -> str:
        return f"{self.directory}/{SCHEMA_LOCATION}"


@dataclass
class Outcome:
    returncode: int
    output: str
    resources: list[dict[str, Any]]


def _require_kubeconform() -> None:
    if not KUBECONFORM_BIN.exists():
        pytest.fail(f"{KUBECONFORM_BIN.relative_to(ROOT)} is missing: run `make tools`", False)


def render_chart(cluster: KubeCluster, out: Path) -> list[Path]:
    """`helm template --include-crds` of the chart with its default values and with each of
    its ci/*values.yaml files (the chart-testing convention), one output file each."""
    value_sets: list[list[str]] = [[]]
    value_sets += [["--values", str(f)] for f in sorted(CHART.glob("ci/*values.yaml"))]
    rendered = []
    for number, values in enumerate(value_sets):
        result = cluster.helm(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            RELEASE_NAMESPACE,
            "--include-crds",
            "--kube-version",
            cluster.version,
            *values,
            check=True,
        )
        target = out / f"chart-{number}.yaml"
        target.write_text(result.stdout)
        rendered.append(target)
    return rendered


@pytest.fixture(scope="session")
def schemas(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Schemas:
    """The schema directory, written once per session by the CLI: built-ins from the cluster,
    our Widget CRD, the chart's crds/ and any CRD its templates render."""
    _require_kubeconform()
    work = tmp_path_factory.mktemp("kubeconform")
    crd_dir = work / "crds"
    crd_dir.mkdir()
    (crd_dir / "widgets.yaml").write_text(dump(WIDGET_CRD))
    crd_args = ["--crds", str(crd_dir)]
    rendered: list[Path] = []
    if (CHART / "Chart.yaml").exists():
        rendered = render_chart(kube_cluster, work)
        if (CHART / "crds").is_dir():
            crd_args += ["--crds", str(CHART / "crds")]
        for path in rendered:
            crd_args += ["--crds", str(path)]
    directory = work / "schemas"
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(KUBE_SCHEMAS),
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "--out",
            str(directory),
            *crd_args,
        ],
        capture_output=True,
        text=True,
        env=kube_cluster.env,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"kube_schemas.py failed:\n{result.stdout}\n{result.stderr}"
    index = json.loads((directory / "index.json").read_text())
    return Schemas(directory, index, rendered, seconds)


@pytest.fixture(scope="session")
def widget_crd_installed(kube_cluster: KubeCluster) -> Iterator[None]:
    """The Widget CRD in the cluster (Established), for server-side dry runs; removed after."""
    name = WIDGET_CRD["metadata"]["name"]
    kube_cluster.kubectl("apply", "-f", "-", input=dump(WIDGET_CRD), check=True)
    try:
        kube_cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s", check=True
        )
        yield
    finally:
        kube_cluster.kubectl("delete", f"crd/{name}", "--wait=false", "--ignore-not-found")


def kubeconform(schemas: Schemas, *inputs: str | Path, strict: bool = True) -> Outcome:
    """kubeconform over YAML text and/or files, with -output json (per-resource results) and
    then again -summary text for the messages a person reads."""
    files: list[str] = []
    for number, item in enumerate(inputs):
        if isinstance(item, Path):
            files.append(str(item))
        else:
            target = schemas.directory.parent / f"input-{time.monotonic_ns()}-{number}.yaml"
            target.write_text(item)
            files.append(str(target))
    base = [str(KUBECONFORM_BIN), "-schema-location", schemas.location]
    if strict:
        base.append("-strict")
    as_json = subprocess.run(
        [*base, "-output", "json", "-verbose", *files], capture_output=True, text=True, timeout=60
    )
    text = subprocess.run([*base, "-summary", *files], capture_output=True, text=True, timeout=60)
    assert as_json.returncode == text.returncode, (as_json, text)
    resources = (json.loads(as_json.stdout).get("resources") or []) if as_json.stdout else []
    return Outcome(text.returncode, text.stdout + text.stderr, resources)


def server_dry_run(
    cluster: KubeCluster, manifest: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "create",
        "--dry-run=server",
        "--validate=strict",
        "--namespace",
        DRY_RUN_NAMESPACE,
        "-f",
        "-",
        input=dump(manifest),
    )


# --------------------------------------------------------------------------- the schemas


def test_schema_directory_layout(schemas: Schemas) -> None:
    index = schemas.index
    assert index["kubernetesVersion"].startswith("v1.")
    by_gvk = {(s["apiVersion"], s["kind"]): s["path"] for s in index["schemas"]}
    assert by_gvk[("apps/v1", "Deployment")] == "apps/v1/deployment.json"
    assert by_gvk[("v1", "Pod")] == "v1/v1/pod.json"  # kubeconform's Group for "v1" is "v1"
    assert (
        by_gvk[("autoscaling/v1", "HorizontalPodAutoscaler")]
        != by_gvk[("autoscaling/v2", "HorizontalPodAutoscaler")]
    )
    assert (f"{WIDGET_GROUP}/v1alpha1", "Widget") in by_gvk
    assert (f"{WIDGET_GROUP}/v1alpha0", "Widget") not in by_gvk  # not served
    for path in by_gvk.values():
        document = json.loads((schemas.directory / path).read_text())
        assert document["$schema"] == "http://json-schema.org/draft-07/schema#"
    deployment_schema = json.loads((schemas.directory / "apps/v1/deployment.json").read_text())
    definitions = deployment_schema["definitions"]
    assert definitions["io.k8s.api.apps.v1.DeploymentSpec"]["additionalProperties"] is False
    assert definitions["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == ["selector", "template"]
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "oneOf": [{"type": "integer"}, {"type": "string"}]
    }


def test_every_schema_compiles(schemas: Schemas) -> None:
    """kubeconform reports a schema it cannot compile as missing ("could not find schema"): an
    object of every kind must be judged valid or invalid, never an error."""
    documents = [
        {"apiVersion": s["apiVersion"], "kind": s["kind"], "metadata": {"name": "x"}}
        for s in schemas.index["schemas"]
    ]
    outcome = kubeconform(schemas, dump(*documents))
    assert len(outcome.resources) == len(documents)
    errors = [r for r in outcome.resources if r["status"] not in ("statusValid", "statusInvalid")]
    assert not errors, errors


# --------------------------------------------------------------------------- built-in kinds


def test_good_deployment_passes(schemas: Schemas, kube_cluster: KubeCluster) -> None:
    manifest = deployment()
    outcome = kubeconform(schemas, dump(manifest))
    assert outcome.returncode == 0, outcome.output
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in outcome.output
    served = server_dry_run(kube_cluster, manifest)
    assert served.returncode == 0, served.stderr


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        pytest.param({"replicass": 3}, "/spec", "'replicass' not allowed", id="typo"),
        pytest.param({"replicas": "three"}, "/spec/replicas", "want null or integer", id="type"),
        pytest.param({"selector": None}, "/spec", "missing property 'selector'", id="required"),
        pytest.param(
            {"strategy": {"type": "Recreate", "rollingUpdte": {}}},
            "/spec/strategy",
            "'rollingUpdte' not allowed",
            id="nested-typo",
        ),
        pytest.param(
            {"strategy": {"rollingUpdate": {"maxSurge": 1.5}}},
            "/spec/strategy/rollingUpdate/maxSurge",
            "oneOf",
            id="int-or-string",
        ),
    ],
)
def test_bad_deployment_fails(
    schemas: Schemas,
    kube_cluster: KubeCluster,
    changes: dict[str, Any],
    path: str,
    message: str,
) -> None:
    manifest = deployment(**changes)
    outcome = kubeconform(schemas, dump(manifest))
    assert outcome.returncode == 1, outcome.output
    assert f"at '{path}'" in outcome.output and message in outcome.output, outcome.output
    assert [r["status"] for r in outcome.resources] == ["statusInvalid"]
    served = server_dry_run(kube_cluster, manifest)
    assert served.returncode != 0, f"the API server accepted what kubeconform refused: {manifest}"


def test_typo_deep_in_a_container_names_the_field(schemas: Schemas) -> None:
    manifest = deployment()
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = "Always"
    container["ports"][0]["containerPort"] = "8080"
    outcome = kubeconform(schemas, dump(manifest))
    assert outcome.returncode == 1
    base = "/spec/template/spec/containers/0"
    assert f"at '{base}': additional properties 'imagePullPolicyy' not allowed" in outcome.output
    assert f"at '{base}/ports/0/containerPort': got string, want integer" in outcome.output


def test_duplicate_keys_fail_only_with_strict(schemas: Schemas) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"
    assert kubeconform(schemas, text).returncode == 1
    assert kubeconform(schemas, text, strict=False).returncode == 0


# --------------------------------------------------------------------------- custom resources


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(GOOD_WIDGET, id="full"),
        # The API server prunes a null it was not told to keep (nullable) before validating.
        pytest.param({"size": 1, "color": None, "extra": None, "ratio": None}, id="nulls"),
    ],
)
def test_custom_resource_passes(
    schemas: Schemas, kube_cluster: KubeCluster, widget_crd_installed: None, spec: dict[str, Any]
) -> None:
    manifest = widget(spec)
    outcome = kubeconform(schemas, dump(manifest))
    assert outcome.returncode == 0, outcome.output
    assert "Valid: 1, Invalid: 0" in outcome.output
    served = server_dry_run(kube_cluster, manifest)
    assert served.returncode == 0, served.stderr


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        pytest.param({**GOOD_WIDGET, "sise": 3}, "/spec", "'sise' not allowed", id="typo"),
        pytest.param({**GOOD_WIDGET, "size": "3"}, "/spec/size", "want integer", id="type"),
        pytest.param({**GOOD_WIDGET, "size": 11}, "/spec/size", "maximum", id="maximum"),
        pytest.param({**GOOD_WIDGET, "color": "green"}, "/spec/color", "red", id="enum"),
        pytest.param({**GOOD_WIDGET, "port": 1.5}, "/spec/port", "oneOf", id="int-or-string"),
        pytest.param({**GOOD_WIDGET, "tags": ["a", "a"]}, "/spec/tags", "are equal", id="set"),
        pytest.param({"color": "red"}, "/spec", "missing property 'size'", id="required"),
        pytest.param(
            {**GOOD_WIDGET, "ratio": 0}, "/spec/ratio", "exclusiveMinimum", id="exclusive-minimum"
        ),
        pytest.param(
            {**GOOD_WIDGET, "template": {"kind": "ConfigMap"}},
            "/spec/template",
            "missing property 'apiVersion'",
            id="embedded-resource",
        ),
        pytest.param(
            {**GOOD_WIDGET, "size": None}, "/spec/size", "want integer", id="required-null"
        ),
    ],
)
def test_bad_custom_resource_fails(
    schemas: Schemas,
    kube_cluster: KubeCluster,
    widget_crd_installed: None,
    spec: dict[str, Any],
    path: str,
    message: str,
) -> None:
    manifest = widget(spec)
    outcome = kubeconform(schemas, dump(manifest))
    assert outcome.returncode == 1, outcome.output
    assert f"at '{path}'" in outcome.output and message in outcome.output, outcome.output
    served = server_dry_run(kube_cluster, manifest)
    assert served.returncode != 0, f"the API server accepted what kubeconform refused: {manifest}"


def test_custom_resource_metadata_is_object_meta(
    schemas: Schemas, kube_cluster: KubeCluster, widget_crd_installed: None
) -> None:
    manifest = widget(GOOD_WIDGET)
    manifest["metadata"]["lables"] = {"a": "b"}
    outcome = kubeconform(schemas, dump(manifest))
    assert "at '/metadata': additional properties 'lables' not allowed" in outcome.output
    served = server_dry_run(kube_cluster, manifest)
    assert served.returncode != 0, "the API server accepted an unknown metadata field"


def test_unserved_version_has_no_schema(schemas: Schemas) -> None:
    outcome = kubeconform(schemas, dump(widget(GOOD_WIDGET, version="v1alpha0")))
    assert outcome.returncode == 1
    assert "could not find schema for Widget" in outcome.output


# --------------------------------------------------------------------------- the chart


def test_chart_renders_valid(schemas: Schemas) -> None:
    if not (CHART / "Chart.yaml").exists():
        pytest.skip(f"no Helm chart yet: {CHART.relative_to(ROOT)}/Chart.yaml does not exist")
    assert schemas.rendered_chart
    for rendered in schemas.rendered_chart:
        outcome = kubeconform(schemas, rendered)
        assert outcome.returncode == 0, f"{rendered.name}:\n{outcome.output}"
        assert outcome.resources, f"{rendered.name}: no resources rendered"
        statuses = {r["status"] for r in outcome.resources}
        assert statuses == {"statusValid"}, outcome.resources
        kinds = {r["kind"] for r in outcome.resources}
        assert "CustomResourceDefinition" in kinds or not (CHART / "crds").is_dir(), kinds
        assert "ValidatingWebhookConfiguration" in kinds, kinds
    # The default values pin tags (a MutatingWebhookConfiguration); ci/refuse-tags does not.
    default, *others = schemas.rendered_chart
    assert "kind: MutatingWebhookConfiguration" in default.read_text()
    refuse = [p for p in others if "imageReferences: RefuseTags" in p.read_text()]
    assert refuse and all("kind: MutatingWebhookConfiguration" not in p.read_text() for p in refuse)
