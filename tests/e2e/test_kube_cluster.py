"""The real control plane fixture (tests/support/kube_cluster.py): kubectl, helm and admission webhooks."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kube_cluster import KubeCluster

DENIAL = "refused by the sbomgate test webhook: no signed SBOM"


def _pod(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
    }


def _deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
            },
        },
    }


def _yaml(*objects: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def test_server_version(kube_cluster: KubeCluster) -> None:
    result = kube_cluster.kubectl("version", "-o", "json", check=True)
    versions = json.loads(result.stdout)
    assert versions["serverVersion"]["gitVersion"] == kube_cluster.version
    assert versions["clientVersion"]["gitVersion"] == kube_cluster.version
    major, minor = kube_cluster.version.removeprefix("v").split(".")[:2]
    assert (versions["serverVersion"]["major"], versions["serverVersion"]["minor"]) == (
        major,
        minor,
    )
    assert kube_cluster.server.startswith("https://127.0.0.1:")


def test_apply_namespace_deployment_and_pod(kube_cluster: KubeCluster) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apply-test"}}
    result = kube_cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=_yaml(namespace, _deployment("web", "apply-test"), _pod("bare", "apply-test")),
        check=True,
    )
    assert "namespace/apply-test" in result.stdout
    assert "deployment.apps/web created" in result.stdout
    assert "pod/bare created" in result.stdout
    pod = json.loads(
        kube_cluster.kubectl(
            "get", "pod", "bare", "-n", "apply-test", "-o", "json", check=True
        ).stdout
    )
    assert pod["spec"]["containers"][0]["image"] == "registry.example/app:1.0"
    # No controller-manager or scheduler: the Deployment is stored but makes no Pods.
    pods = kube_cluster.kubectl("get", "pods", "-n", "apply-test", "-o", "name", check=True)
    assert pods.stdout.split() == ["pod/bare"]


def test_server_side_dry_run_and_apply(kube_cluster: KubeCluster) -> None:
    kube_cluster.create_namespace("ssa-test")
    deployment = _yaml(_deployment("ssa", "ssa-test"))
    dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=deployment, check=True)
    assert "(server dry run)" in dry.stdout
    absent = kube_cluster.kubectl("get", "deployment", "ssa", "-n", "ssa-test")
    assert absent.returncode != 0 and "NotFound" in absent.stderr

    applied = kube_cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=sbomgate-tests",
        "-f",
        "-",
        input=deployment,
        check=True,
    )
    assert "deployment.apps/ssa serverside-applied" in applied.stdout
    stored = json.loads(
        kube_cluster.kubectl(
            "get",
            "deployment",
            "ssa",
            "-n",
            "ssa-test",
            "-o",
            "json",
            "--show-managed-fields",
            check=True,
        ).stdout
    )
    managers = {entry["manager"] for entry in stored["metadata"]["managedFields"]}
    assert "sbomgate-tests" in managers


def _chart(directory: Path, name: str, **templates: str) -> Path:
    chart = directory / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    for template, text in templates.items():
        (chart / "templates" / f"{template}.yaml").write_text(text)
    return chart


def test_helm_install(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path,
        "tiny",
        configmap="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n",
    )
    kube_cluster.create_namespace("helm-test")
    kube_cluster.helm(
        "install",
        "tiny",
        str(chart),
        "-n",
        "helm-test",
        "--set",
        "greeting=hi",
        "--wait",
        check=True,
    )
    data = kube_cluster.kubectl(
        "get",
        "configmap",
        "tiny-config",
        "-n",
        "helm-test",
        "-o",
        "jsonpath={.data.greeting}",
        check=True,
    )
    assert data.stdout == "hi"
    releases = json.loads(
        kube_cluster.helm("list", "-n", "helm-test", "-o", "json", check=True).stdout
    )
    assert [(r["name"], r["status"]) for r in releases] == [("tiny", "deployed")]
    kube_cluster.helm("uninstall", "tiny", "-n", "helm-test", "--wait", check=True)


class _DenyAll(BaseHTTPRequestHandler):
    """Answers every AdmissionReview with allowed: false and DENIAL; records what it saw."""

    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(review)  # type: ignore[attr-defined]
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": False,
                    "status": {"code": 403, "message": DENIAL},
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def deny_all_webhook(
    kube_cluster: KubeCluster, tmp_path: Path
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    cert, key = kube_cluster.ca.issue_serving_cert(tmp_path / "webhook-tls")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DenyAll)
    server.seen = []  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/validate", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_validating_webhook_refuses_pod(
    kube_cluster: KubeCluster, deny_all_webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, seen = deny_all_webhook
    kube_cluster.create_namespace("webhook-test")
    pod = _yaml(_pod("refused", "webhook-test"))
    kube_cluster.register_validating_webhook("deny-all", url, kube_cluster.ca.cert_pem)
    try:
        refused = kube_cluster.kubectl("apply", "-f", "-", input=pod)
        assert refused.returncode != 0
        assert 'admission webhook "deny-all.sbomgate.test" denied the request' in refused.stderr
        assert DENIAL in refused.stderr
        request = seen[-1]["request"]
        assert (request["kind"]["kind"], request["operation"], request["namespace"]) == (
            "Pod",
            "CREATE",
            "webhook-test",
        )
        assert request["object"]["spec"]["containers"][0]["image"] == "registry.example/app:1.0"
        # A server-side dry run (what GitOps tools do first) reaches the webhook too.
        dry = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=pod)
        assert dry.returncode != 0 and DENIAL in dry.stderr
        assert seen[-1]["request"]["dryRun"] is True
        # helm install fails with the same message (for a Deployment: every pod-making kind).
        chart = _chart(tmp_path, "refused", deployment=_yaml(_deployment("web", "webhook-test")))
        helm = kube_cluster.helm("install", "refused", str(chart), "-n", "webhook-test")
        assert helm.returncode != 0 and DENIAL in helm.stderr
        assert seen[-1]["request"]["kind"] == {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
        }
        # kube-system is exempt by the default namespace selector.
        exempt = kube_cluster.kubectl(
            "apply", "-f", "-", input=_yaml(_pod("exempt", "kube-system"))
        )
        assert exempt.returncode == 0, exempt.stderr
    finally:
        kube_cluster.delete_validating_webhook("deny-all")
    absent = kube_cluster.kubectl(
        "get", "validatingwebhookconfigurations", "-o", "name", check=True
    )
    assert "deny-all" not in absent.stdout
    admitted = kube_cluster.kubectl("apply", "-f", "-", input=pod)
    assert admitted.returncode == 0, admitted.stderr
