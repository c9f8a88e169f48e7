"""The Helm chart (charts/sbomgate) and the generated policy manifests (deploy/policies), with the
real tools: `helm lint --strict`, `helm template` (default values, cert-manager, ServiceMonitor,
values.schema.json), and `helm install` / `upgrade` / `uninstall` into the session's real
kube-apiserver, whose schema and CEL validation must accept the chart's custom resources and
refuse broken ones.

No kubelet runs, so the chart's Deployment never gets Pods and its webhook has no endpoints: it
is installed with failurePolicy Ignore and an objectSelector no object carries, so it can never
touch another test's requests, and it is uninstalled (and checked gone) before the module ends.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from sbomgate.config import ImageReferences, Mode, load_config
from sbomgate.policy.loader import load_policy_dir
from support.kube_cluster import HELM_BIN, KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sbomgate"
CRD_DIR = CHART / "crds"
POLICY_MANIFESTS = ROOT / "deploy" / "policies"
GENERATOR = ROOT / "tools" / "policy_manifests.py"

RELEASE = "sbomgate"
NAMESPACE = "sbomgate-chart"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{RELEASE}"
NEVER_LABEL = "sbomgate.test/chart-webhook"
SBOMGATE_CRDS = [
    "packagepolicies.sbomgate.dev",
    "trustpolicies.sbomgate.dev",
    "packagequarantines.sbomgate.dev",
]
REPORT_CRDS = ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"]
EXTRA_APIS = ("--api-versions", "cert-manager.io/v1", "--api-versions", "monitoring.coreos.com/v1")

# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Helm with no cluster and nothing from ~ (lint and template need no API server)."""
    if not HELM_BIN.exists():
        pytest.fail(f"{HELM_BIN.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)
    home = tmp_path_factory.mktemp("helm-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HELM_"))}
    env.update(
        HOME=str(home),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return env


def run_helm(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM_BIN), *args], capture_output=True, text=True, env=dict(env), timeout=60
    )


@dataclass
class Rendered:
    docs: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} {name or ''} rendered: {self.kinds()}"
        return found[0]


def template(env: Mapping[str, str], *args: str, namespace: str = NAMESPACE) -> Rendered:
    result = run_helm(env, "template", RELEASE, str(CHART), "--namespace", namespace, *args)
    assert result.returncode == 0, result.stderr
    return Rendered([d for d in yaml.safe_load_all(result.stdout) if d])


def exempted_namespaces(webhook: Mapping[str, Any]) -> set[str]:
    expressions = webhook["namespaceSelector"]["matchExpressions"]
    (expression,) = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
    assert expression["operator"] == "NotIn"
    return set(expression["values"])


def served_config(rendered: Rendered) -> dict[str, Any]:
    return dict(yaml.safe_load(rendered.one("ConfigMap")["data"]["config.yaml"]))


# ------------------------------------------------------------------------------ lint, template


def test_lint_strict_is_clean(helm_env: dict[str, str]) -> None:
    for extra in (
        [],
        ["--set", "certManager.enabled=true", "--set", "serviceMonitor.enabled=true"],
    ):
        result = run_helm(helm_env, "lint", "--strict", str(CHART), *extra)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "[WARNING]" not in output and "[ERROR]" not in output, output
        assert "1 chart(s) linted, 0 chart(s) failed" in output


def test_default_render(helm_env: dict[str, str]) -> None:
    rendered = template(helm_env)
    assert rendered.kinds() == sorted(
        [
            "ClusterRole",
            "ClusterRole",  # the uninstall hook's (webhook-cleanup.yaml)
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Job",  # the uninstall hook
            "Pod",  # the `helm test` hook
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "MutatingWebhookConfiguration",
            "ServiceAccount",
            "ServiceAccount",
            "ValidatingWebhookConfiguration",
        ]
    )
    assert {d["metadata"]["name"] for d in rendered.all("CustomResourceDefinition")} == set(
        REPORT_CRDS
    )
    # The `helm test` Pod is a hook, and no replica: the Service, the PodDisruptionBudget and
    # the Deployment's selector must not match it.
    test_pod = rendered.one("Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    selector = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= test_pod["metadata"]["labels"].items()

    configuration = rendered.one("ValidatingWebhookConfiguration")
    workloads, policies = configuration["webhooks"]
    assert workloads["name"] == "workloads.sbomgate.dev"
    assert policies["name"] == "policies.sbomgate.dev"
    for webhook in (workloads, policies):
        # A first install (mode Warn) fails open until it enforces: see test_enforce_fails_closed.
        assert webhook["failurePolicy"] == "Ignore"
        assert webhook["timeoutSeconds"] == 10
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["clientConfig"]["service"] == {
            "name": RELEASE,
            "namespace": NAMESPACE,
            "path": "/validate" if webhook is workloads else "/validate-policy",
            "port": 443,
        }
    assert workloads["sideEffects"] == "NoneOnDryRun"
    assert policies["sideEffects"] == "None"  # validating a policy writes nothing
    assert exempted_namespaces(workloads) == {"kube-system", NAMESPACE}
    rules = {
        (group, resource, tuple(rule["operations"]))
        for rule in workloads["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert rules == {
        ("", "pods", ("CREATE", "UPDATE")),
        ("", "pods/ephemeralcontainers", ("CREATE", "UPDATE")),
        ("", "replicationcontrollers", ("CREATE", "UPDATE")),
        *{
            ("apps", r, ("CREATE", "UPDATE"))
            for r in ("deployments", "replicasets", "statefulsets", "daemonsets")
        },
        ("batch", "jobs", ("CREATE", "UPDATE")),
        ("batch", "cronjobs", ("CREATE", "UPDATE")),
    }
    assert policies["rules"] == [
        {
            "apiGroups": ["sbomgate.dev"],
            "apiVersions": ["v1alpha1"],
            "resources": ["packagepolicies", "trustpolicies"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Cluster",
        }
    ]

    # imageReferences Pin (the default): tags are rewritten to digests before validation, on
    # what validation is sent, with the same exemptions, failure policy and timeout.
    (pin,) = rendered.one("MutatingWebhookConfiguration")["webhooks"]
    assert pin["name"] == "pin.sbomgate.dev"
    assert pin["clientConfig"]["service"] == {
        "name": RELEASE,
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": 443,
    }
    assert pin["failurePolicy"] == "Ignore" and pin["timeoutSeconds"] == 10
    assert pin["admissionReviewVersions"] == ["v1"] and pin["matchPolicy"] == "Equivalent"
    assert pin["reinvocationPolicy"] == "IfNeeded"
    assert pin["sideEffects"] == "None"  # a dry run gets the same patch; nothing is written
    assert pin["namespaceSelector"] == workloads["namespaceSelector"]
    assert pin["rules"] == workloads["rules"]
    assert "objectSelector" not in pin

    # The self-signed pair: the caBundle is the Secret's CA, which signed a certificate for
    # the Service's DNS names.
    secret = rendered.one("Secret")
    assert secret["type"] == "kubernetes.io/tls"
    assert workloads["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert policies["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert pin["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{RELEASE}.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)

    deployment = rendered.one("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["image"] == "ghcr.io/sbomgate/sbomgate:0.1.0"
    assert container["args"] == ["serve", "--config", "/etc/sbomgate/config.yaml"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/etc/sbomgate": "config", "/tls": "tls", "/tmp": "tmp"}
    assert "emptyDir" in volumes["tmp"]
    assert volumes["tls"]["secret"]["secretName"] == secret["metadata"]["name"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert rendered.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1
    service = rendered.one("Service")
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]

    # The configuration file is what `sbomgate serve` reads; `kubernetes` is the operator's.
    config = served_config(rendered)
    kube = config.pop("kubernetes")
    assert kube["watch"] is True
    # Without cert-manager, the operator renews the chart's self-signed certificate.
    assert kube["certificateSecret"] and kube["webhookConfiguration"]
    assert config["tls"] == {"certFile": "/tls/tls.crt", "keyFile": "/tls/tls.key"}
    assert config["listen"] == {"port": 8443}
    assert config["exemptNamespaces"] == ["kube-system", NAMESPACE]
    assert config["admissionDeadline"] < workloads["timeoutSeconds"]
    assert {"allowedRegistries", "insecureRegistries", "mode", "policyModes", "faults"} <= set(
        config
    )
    assert config["imageReferences"] == "Pin"

    # The certificate's renewal patches both configurations' caBundles and the Secret, and
    # nothing else of their kinds.
    cluster_rules = rendered.one("ClusterRole", RELEASE)["rules"]
    # The uninstall hook may delete the release's two webhook configurations, nothing else.
    [cleanup_rule] = rendered.one("ClusterRole", f"{RELEASE}-webhook-cleanup")["rules"]
    assert cleanup_rule["verbs"] == ["delete"] and cleanup_rule["resourceNames"] == [RELEASE]
    assert {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        "resourceNames": [RELEASE],
        "verbs": ["get", "patch"],
    } in cluster_rules
    assert {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": [f"{RELEASE}-tls"],
        "verbs": ["get", "patch"],
    } in rendered.one("Role")["rules"]


def test_a_first_install_refuses_nothing_and_enforcing_fails_closed(
    helm_env: dict[str, str],
) -> None:
    """Default values: mode Warn, and every webhook failurePolicy Ignore (a webhook whose image
    is still being pulled cannot lock the cluster). `config.mode=Enforce` makes them Fail; an
    explicit webhook.failurePolicy wins either way."""

    def policies(*args: str) -> tuple[str, set[str]]:
        rendered = template(helm_env, *args)
        hooks = [
            *rendered.one("ValidatingWebhookConfiguration")["webhooks"],
            *rendered.one("MutatingWebhookConfiguration")["webhooks"],
        ]
        return served_config(rendered)["mode"], {h["failurePolicy"] for h in hooks}

    assert policies() == ("Warn", {"Ignore"})
    assert policies("--set", "config.mode=Enforce") == ("Enforce", {"Fail"})
    assert policies("--set", "config.mode=Audit") == ("Audit", {"Ignore"})
    assert policies("--set", "webhook.failurePolicy=Fail") == ("Warn", {"Fail"})
    assert policies("--set", "config.mode=Enforce", "--set", "webhook.failurePolicy=Ignore") == (
        "Enforce",
        {"Ignore"},
    )


def test_every_setting_of_the_webhook_is_a_value(helm_env: dict[str, str], tmp_path: Path) -> None:
    """ci/full-values.yaml: trusted sources with credentials from Secrets (mounted, named by
    path: never in the ConfigMap), OSV, registry CA, cache, audit interval, log level, a mirror,
    OpenShift's restricted-v2 contexts, extra env/volumes, a NetworkPolicy, and TrustPolicy and
    PackagePolicy resources; the served configuration is one `sbomgate serve` accepts."""
    rendered = template(helm_env, "--values", str(CHART / "ci" / "full-values.yaml"))
    config = served_config(rendered)
    pypi, npm, apt = config["trustedSources"]
    assert pypi["passwordFile"] == "/etc/sbomgate/credentials/0/password"
    assert npm["tokenFile"] == "/etc/sbomgate/credentials/1/token"
    assert "passwordSecretRef" not in pypi and "tokenSecretRef" not in npm
    assert apt["keyring"].endswith("debian-archive-keyring.gpg") and "passwordFile" not in apt
    assert config["osv"] == ["/var/lib/osv/all.zip"]
    assert config["registryCA"] == ["/etc/sbomgate/registry-ca/ca.crt"]
    assert config["cache"]["maxBytes"] == 536870912 and config["logLevel"] == "debug"
    assert config["kubernetes"]["auditInterval"] == 600 and config["typosquat"] is True
    deployment = rendered.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.internal:5000/sbomgate/sbomgate:0.1.0"
    assert (
        "runAsUser" not in pod["securityContext"]
        and "runAsUser" not in container["securityContext"]
    )
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"} in container["env"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert (
        mounts["credentials-0"] == "/etc/sbomgate/credentials/0" and mounts["osv"] == "/var/lib/osv"
    )
    volumes = {v["name"]: v for v in pod["volumes"]}
    [secret] = volumes["credentials-0"]["projected"]["sources"]
    assert secret["secret"] == {
        "name": "pypi-credentials",
        "items": [{"key": "password", "path": "password"}],
    }
    assert "s3cret" not in json.dumps(rendered.one("ConfigMap", RELEASE))
    policy = rendered.one("NetworkPolicy")
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8443, "protocol": "TCP"}]
    assert rule["from"][0] == {"ipBlock": {"cidr": "10.0.0.0/24"}}
    assert rendered.one("TrustPolicy")["metadata"]["name"] == "acme"
    assert rendered.one("PackagePolicy")["spec"]["action"] == "Deny"
    # The served configuration loads (less what names files that exist only in the Pod).
    written = tmp_path / "config.yaml"
    config.pop("kubernetes")
    config.pop("trustedSources")
    for key in ("osv", "registryCA"):
        config.pop(key)
    config["tls"] = {"certFile": str(written), "keyFile": str(written)}
    written.write_text(yaml.safe_dump(config))
    loaded = load_config(written)
    assert loaded.mode is Mode.ENFORCE and loaded.cache.max_bytes == 536870912


def test_a_network_policy_needs_the_api_server(helm_env: dict[str, str]) -> None:
    done = run_helm(
        helm_env, "template", RELEASE, str(CHART), "--set", "networkPolicy.enabled=true"
    )
    assert done.returncode != 0 and "networkPolicy.apiServer" in done.stderr


@pytest.mark.parametrize("references", ["RefuseTags", "Resolve"])
def test_no_mutating_webhook_unless_pinning(helm_env: dict[str, str], references: str) -> None:
    """RefuseTags (the GitOps-friendly choice: nothing is rewritten, so nothing drifts) and
    Resolve install only the validating webhook; the served configuration says which."""
    rendered = template(
        helm_env,
        "--set",
        f"config.imageReferences={references}",
        "--set",
        "webhook.reinvocationPolicy=Never",
    )
    assert not rendered.all("MutatingWebhookConfiguration")
    assert rendered.one("ValidatingWebhookConfiguration")
    assert served_config(rendered)["imageReferences"] == references


def test_reinvocation_and_object_selector_reach_the_mutating_webhook(
    helm_env: dict[str, str],
) -> None:
    rendered = template(
        helm_env,
        "--set",
        "webhook.reinvocationPolicy=Never",
        "--set",
        "webhook.objectSelector.matchLabels.gated=yes",
        "--set",
        "webhook.failurePolicy=Ignore",
        "--set",
        "webhook.timeoutSeconds=12",
    )
    (pin,) = rendered.one("MutatingWebhookConfiguration")["webhooks"]
    assert pin["reinvocationPolicy"] == "Never"
    assert pin["objectSelector"] == {"matchLabels": {"gated": "yes"}}
    assert pin["failurePolicy"] == "Ignore" and pin["timeoutSeconds"] == 12


def test_rendered_config_loads(helm_env: dict[str, str], tmp_path: Path) -> None:
    """Every key the chart writes (but the operator's `kubernetes`) is one config.py reads."""
    rendered = template(
        helm_env,
        "--set",
        "config.allowedRegistries={ghcr.io,*.example.com}",
        "--set",
        "config.exemptNamespaces={tools}",
        "--set",
        "config.policyModes.package-age=Warn",
        "--set",
        "config.faults=Allow",
        "--set",
        "config.imageReferences=RefuseTags",
        "--set",
        "policyData.sbomgate.package_age.min_days=7",
    )
    config = served_config(rendered)
    config.pop("kubernetes")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    assert loaded.allowed_registries == ("ghcr.io", "*.example.com")
    assert loaded.exempt_namespaces == ("kube-system", NAMESPACE, "tools")
    assert loaded.policy_modes == {"package-age": Mode.WARN}
    assert loaded.faults_allowed
    assert loaded.image_references is ImageReferences.REFUSE_TAGS
    assert loaded.port == 8443 and str(loaded.tls_cert) == "/tls/tls.crt"
    assert [str(p) for p in loaded.data] == ["/etc/sbomgate/data.yaml"]
    data = yaml.safe_load(rendered.one("ConfigMap")["data"]["data.yaml"])
    assert data == {"sbomgate": {"package_age": {"min_days": 7}}}
    webhook = rendered.one("ValidatingWebhookConfiguration")["webhooks"][0]
    assert exempted_namespaces(webhook) == {"kube-system", NAMESPACE, "tools"}


def test_cert_manager_and_service_monitor(helm_env: dict[str, str]) -> None:
    rendered = template(helm_env, *EXTRA_APIS, "--set", "serviceMonitor.enabled=true")
    assert not rendered.all("Secret")  # cert-manager writes it
    certificate = rendered.one("Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["spec"]["secretName"] == f"{RELEASE}-tls"
    assert f"{RELEASE}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    issuer = rendered.one("Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert certificate["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        configuration = rendered.one(kind)
        assert configuration["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
        }
        for webhook in configuration["webhooks"]:
            assert "caBundle" not in webhook["clientConfig"]
    # cert-manager renews it: sbomgate patches no webhook configuration and no Secret.
    assert not [
        rule
        for role in ("ClusterRole", "Role")
        for rule in rendered.one(role, RELEASE)["rules"]
        if "patch" in rule["verbs"]
        and {"secrets", "validatingwebhookconfigurations"} & set(rule["resources"])
    ]
    monitor = rendered.one("ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https"
    assert endpoint["path"] == "/metrics"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": f"{RELEASE}-tls", "key": "ca.crt"}

    # certManager.enabled without the API in the capabilities (e.g. installed in the same
    # pipeline), an existing ClusterIssuer; serviceMonitor.enabled without its API: nothing.
    forced = template(
        helm_env,
        "--set",
        "certManager.enabled=true",
        "--set",
        "certManager.issuerRef.name=corp-ca",
        "--set",
        "certManager.issuerRef.kind=ClusterIssuer",
        "--set",
        "serviceMonitor.enabled=true",
    )
    assert forced.one("Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
    }
    assert not forced.all("Issuer") and not forced.all("Secret")
    assert not forced.all("ServiceMonitor")
    # autoDetect off: the API is there but the chart makes its own certificate.
    own = template(helm_env, *EXTRA_APIS, "--set", "certManager.autoDetect=false")
    assert own.one("Secret") and not own.all("Certificate")


def test_policy_report_crds_are_optional(helm_env: dict[str, str]) -> None:
    present = template(helm_env, "--api-versions", "wgpolicyk8s.io/v1alpha2")
    assert not present.all("CustomResourceDefinition")
    off = template(helm_env, "--set", "policyReports.installCRDs=false")
    assert not off.all("CustomResourceDefinition")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=abc"], "/replicaCount"),
        (["--set", "replicaCount=0"], "/replicaCount"),
        (["--set", "config.mode=Block"], "/config/mode"),
        (["--set", "webhook.failurePolicy=Sometimes"], "/webhook/failurePolicy"),
        (["--set", "webhook.timeoutSeconds=31"], "/webhook/timeoutSeconds"),
        (["--set", "config.imageReferences=Digest"], "/config/imageReferences"),
        (["--set", "webhook.reinvocationPolicy=Always"], "/webhook/reinvocationPolicy"),
        (["--set", "image.digest=latest"], "/image/digest"),
        (["--set", "replicas=3"], "replicas"),
        (["--set", "webhook.timeoutSeconds=5"], "must be below webhook.timeoutSeconds"),
    ],
)
def test_bad_values_are_refused(helm_env: dict[str, str], args: list[str], message: str) -> None:
    result = run_helm(helm_env, "template", RELEASE, str(CHART), *args)
    assert result.returncode != 0, result.stdout[:500]
    assert message in result.stderr, result.stderr


# ------------------------------------------------------------------------------ policy manifests


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_policy_manifests_are_up_to_date() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, result.stderr


def test_policy_manifests_check_detects_drift(tmp_path: Path) -> None:
    out = tmp_path / "policies"
    shutil.copytree(POLICY_MANIFESTS, out)
    target = out / "malware.yaml"
    target.write_text(target.read_text().replace("precedence: 30", "precedence: 31"))
    (out / "gone.yaml").write_text(
        "# Generated by tools/policy_manifests.py from x: do not edit.\n"
    )
    (out / "mine.yaml").write_text("kind: ConfigMap\n")  # not generated: left alone
    result = run_generator("--check", "--out", str(out))
    assert result.returncode == 1
    assert "malware.yaml: out of date" in result.stderr
    assert "gone.yaml: its policy no longer exists" in result.stderr
    assert "mine.yaml" not in result.stderr
    assert run_generator("--out", str(out)).returncode == 0
    assert run_generator("--check", "--out", str(out)).returncode == 0
    assert (out / "mine.yaml").exists() and not (out / "gone.yaml").exists()
    assert target.read_text() == (POLICY_MANIFESTS / "malware.yaml").read_text()


def test_policy_manifests_match_the_policies() -> None:
    policies = load_policy_dir(ROOT / "policies")
    files = sorted(POLICY_MANIFESTS.glob("*.yaml"))
    # Stems sorted as stems (`package-age-proxied.yaml` sorts before `package-age.yaml`).
    assert sorted(f.stem for f in files) == sorted(p.name.replace("_", "-") for p in policies)
    for policy in policies:
        doc = yaml.safe_load(
            (POLICY_MANIFESTS / f"{policy.name.replace('_', '-')}.yaml").read_text()
        )
        assert doc["apiVersion"] == "sbomgate.dev/v1alpha1" and doc["kind"] == "PackagePolicy"
        spec = doc["spec"]
        assert spec["rego"] == Path(policy.path).read_text()
        assert (spec["action"], spec["precedence"], spec["terminal"]) == (
            policy.action.value,
            policy.precedence,
            policy.terminal,
        )
        assert spec["title"] == policy.title and spec.get("description", "") == policy.description


# ------------------------------------------------------------------------------ a real cluster


@dataclass
class Installed:
    cluster: KubeCluster
    manifest: str
    created_crds: list[str]

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input)

    def can_i(self, *args: str) -> bool:
        result = self.kubectl("auth", "can-i", *args, f"--as={SERVICE_ACCOUNT}")
        assert result.stdout.strip() in ("yes", "no"), result.stderr
        return result.stdout.strip() == "yes"

    def dry_run(self, doc: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))


def _crds_present(cluster: KubeCluster, names: Sequence[str]) -> list[str]:
    if not names:
        return []
    result = cluster.kubectl("get", "crd", "-o", "name", "--ignore-not-found", *names)
    return [
        line.removeprefix("customresourcedefinition.apiextensions.k8s.io/")
        for line in result.stdout.split()
    ]


def _wait_until_unpublished(cluster: KubeCluster, groups: Sequence[str]) -> None:
    """The API server's /openapi/v3 index lists a deleted CRD's group-version for a moment
    after the CRD is gone; wait until it does not, so that the next module sees a clean API."""
    prefixes = tuple(f"apis/{g}/" for g in groups)
    deadline = time.monotonic() + 30
    while prefixes:
        result = cluster.kubectl("get", "--raw", "/openapi/v3", check=True)
        if not [p for p in json.loads(result.stdout)["paths"] if p.startswith(prefixes)]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"/openapi/v3 still lists {groups} 30 s after their CRDs went")
        time.sleep(0.1)


def _uninstall(cluster: KubeCluster) -> None:
    # Helm's own timeout before the runner's (120 s), so that a wait that does not end says
    # what it was waiting for (it once ran past 120 s here, once in many runs).
    result = cluster.helm(
        "uninstall", RELEASE, "-n", NAMESPACE, "--ignore-not-found", "--wait", "--timeout", "100s"
    )
    if result.returncode != 0:
        left = cluster.kubectl(
            "get", "all,configmaps,secrets,serviceaccounts,jobs", "-n", NAMESPACE, "-o", "wide"
        )
        raise AssertionError(
            f"helm uninstall failed: {result.stderr.strip()}\n"
            f"left in {NAMESPACE}:\n{left.stdout}{left.stderr}"
        )


@pytest.fixture(scope="module")
def installed(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    cluster = kube_cluster
    # Another module may have just deleted these CRDs without waiting: let that finish, or Helm
    # would skip a CRD that is about to disappear.
    for name in SBOMGATE_CRDS + REPORT_CRDS:
        cluster.kubectl("wait", "--for=delete", f"crd/{name}", "--timeout=60s")
    existing = set(_crds_present(cluster, SBOMGATE_CRDS + REPORT_CRDS))
    cluster.create_namespace(NAMESPACE)
    values = tmp_path_factory.mktemp("chart") / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                # The Service has no Pods: never let this webhook be called, nor fail anything.
                "webhook": {
                    "failurePolicy": "Ignore",
                    "objectSelector": {"matchLabels": {NEVER_LABEL: "never"}},
                    # No node runs its Job here (tests/e2e/test_chart_on_node.py runs it).
                    "cleanupOnUninstall": False,
                },
                "config": {"allowedRegistries": ["ghcr.io"]},
            }
        )
    )
    try:
        cluster.helm("install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values), check=True)
        manifest = cluster.helm("get", "manifest", RELEASE, "-n", NAMESPACE, check=True).stdout
        created = [n for n in SBOMGATE_CRDS + REPORT_CRDS if n not in existing]
        yield Installed(cluster, manifest, created)
    finally:
        _uninstall(cluster)
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, RELEASE, "--ignore-not-found", check=True)
        # Helm never deletes the CRDs of a chart's crds/ directory (on uninstall or upgrade),
        # so the ones this module created are deleted here, with every object of theirs.
        created_crds = [n for n in SBOMGATE_CRDS if n not in existing]
        if created_crds:
            cluster.kubectl(
                "delete", "crd", *created_crds, "--ignore-not-found", "--wait=true", check=True
            )
        removed = created_crds + [n for n in REPORT_CRDS if n not in existing]
        _wait_until_unpublished(cluster, sorted({n.split(".", 1)[1] for n in removed}))


def test_install_accepts_every_object(installed: Installed) -> None:
    docs = [d for d in yaml.safe_load_all(installed.manifest) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert "ValidatingWebhookConfiguration" in kinds and "Deployment" in kinds
    # `kubectl get -f` fetches each object of the manifest by kind, namespace and name.
    result = installed.kubectl("get", "-f", "-", "-o", "json", input=installed.manifest)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)["items"]
    assert sorted(o["kind"] for o in stored) == kinds
    for obj in stored:
        annotations = obj["metadata"].get("annotations", {})
        assert annotations.get("meta.helm.sh/release-name") == RELEASE, obj["metadata"]["name"]

    by_kind = {o["kind"]: o for o in stored}
    webhook = by_kind["ValidatingWebhookConfiguration"]["webhooks"][0]
    assert webhook["sideEffects"] == "NoneOnDryRun"
    assert exempted_namespaces(webhook) == {"kube-system", NAMESPACE}
    (pin,) = by_kind["MutatingWebhookConfiguration"]["webhooks"]
    assert pin["reinvocationPolicy"] == "IfNeeded" and pin["sideEffects"] == "None"
    assert exempted_namespaces(pin) == {"kube-system", NAMESPACE}
    secret = installed.kubectl("get", "secret", f"{RELEASE}-tls", "-n", NAMESPACE, "-o", "json")
    ca_bundle = json.loads(secret.stdout)["data"]["ca.crt"]
    assert webhook["clientConfig"]["caBundle"] == pin["clientConfig"]["caBundle"] == ca_bundle


def test_crds_are_established(installed: Installed) -> None:
    names = [f"crd/{n}" for n in SBOMGATE_CRDS + REPORT_CRDS]
    result = installed.kubectl("wait", "--for=condition=established", "--timeout=30s", *names)
    assert result.returncode == 0, result.stderr


def test_upgrade_keeps_certificate_and_report_crds(installed: Installed) -> None:
    def ca_bundle() -> str:
        bundles = []
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            result = installed.kubectl(
                "get", kind, RELEASE, "-o", "jsonpath={.webhooks[*].clientConfig.caBundle}"
            )
            assert result.returncode == 0, result.stderr
            bundles.append(result.stdout)
        return " ".join(bundles)

    before = ca_bundle()
    installed.cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", check=True
    )
    assert ca_bundle() == before
    # The PolicyReport API is now "present" (ours): the upgrade must keep rendering it.
    ours = [n for n in REPORT_CRDS if n in installed.created_crds]
    manifest = installed.cluster.helm("get", "manifest", RELEASE, "-n", NAMESPACE).stdout
    assert manifest.count("kind: CustomResourceDefinition") == len(ours)
    assert _crds_present(installed.cluster, ours) == ours


def test_service_account_has_least_privilege(installed: Installed) -> None:
    allowed = [
        ("list", "pods", "--all-namespaces"),
        ("watch", "deployments.apps", "--all-namespaces"),
        ("list", "cronjobs.batch", "--all-namespaces"),
        ("get", "secrets", "-n", "default"),
        ("watch", "packagepolicies.sbomgate.dev"),
        ("patch", "trustpolicies.sbomgate.dev", "--subresource=status"),
        ("create", "packagequarantines.sbomgate.dev"),
        ("create", "policyreports.wgpolicyk8s.io", "-n", "default"),
        ("delete", "clusterpolicyreports.wgpolicyk8s.io"),
        ("create", "events.events.k8s.io", "-n", "default"),
        ("create", "leases.coordination.k8s.io", "-n", NAMESPACE),
        # renewing the self-signed certificate: its own Secret and webhook configurations
        ("patch", f"secrets/{RELEASE}-tls", "-n", NAMESPACE),
        ("patch", f"validatingwebhookconfigurations.admissionregistration.k8s.io/{RELEASE}"),
        ("patch", f"mutatingwebhookconfigurations.admissionregistration.k8s.io/{RELEASE}"),
    ]
    refused = [
        ("list", "secrets", "-n", "default"),
        ("create", "pods", "-n", "default"),
        ("delete", "deployments.apps", "-n", "default"),
        ("update", "packagepolicies.sbomgate.dev"),
        ("delete", "packagequarantines.sbomgate.dev"),
        ("create", "leases.coordination.k8s.io", "-n", "default"),
        ("update", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/other"),
        ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/other"),
        ("delete", f"mutatingwebhookconfigurations.admissionregistration.k8s.io/{RELEASE}"),
        ("patch", "secrets/other", "-n", NAMESPACE),
        ("patch", f"secrets/{RELEASE}-tls", "-n", "default"),
    ]
    assert [a for a in allowed if not installed.can_i(*a)] == []
    assert [r for r in refused if installed.can_i(*r)] == []


SAMPLE_POLICY = {
    "apiVersion": "sbomgate.dev/v1alpha1",
    "kind": "PackagePolicy",
    "metadata": {"name": "chart-sample"},
    "spec": {
        "title": "No left-pad",
        "rego": 'package cloudsmith\n\nimport rego.v1\n\nmatch if input.v0.package.name == "left-pad"\n',
        "scope": {
            "namespaces": ["shop"],
            "namespaceSelector": {
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]
            },
            "images": ["ghcr.io/acme/**"],
        },
    },
}
SAMPLE_TRUST = {
    "apiVersion": "sbomgate.dev/v1alpha1",
    "kind": "TrustPolicy",
    "metadata": {"name": "chart-sample"},
    "spec": {
        "images": ["ghcr.io/acme/**"],
        "authorities": [
            {
                "name": "ci-key",
                "key": {"data": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
            },
            {
                "name": "github-actions",
                "keyless": {
                    "identities": [
                        {
                            "issuer": "https://token.actions.githubusercontent.com",
                            "subjectRegExp": "^https://github.com/acme/",
                        }
                    ],
                    "trustedRoot": {
                        "data": '{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'
                    },
                },
            },
        ],
        "attestations": [
            {"name": "sbom", "predicateTypes": ["cyclonedx", "https://spdx.dev/Document"]},
            {
                "name": "provenance",
                "predicateTypes": ["https://slsa.dev/provenance/v1"],
                "required": False,
                "builderIds": ["https://github.com/actions/runner"],
                "sourceRepositories": ["https://github.com/acme/api"],
            },
        ],
    },
}
SAMPLE_QUARANTINE = {
    "apiVersion": "sbomgate.dev/v1alpha1",
    "kind": "PackageQuarantine",
    "metadata": {"name": "chart-sample"},
    "spec": {
        "entries": [
            {
                "purl": "pkg:pypi/ctx@0.2.2",
                "reason": "MAL-2022-7440",
                "source": {"kind": "Manual"},
                "addedAt": "2026-01-01T00:00:00Z",
                "expiresAt": "2027-01-01T00:00:00Z",
            },
            {
                "purl": "pkg:npm/%40acme/left-pad",
                "versions": "vers:npm/>=1.0.0|<1.0.5",
                "reason": "compromised maintainer account",
                "source": {
                    "kind": "Policy",
                    "policy": "malware",
                    "image": "ghcr.io/acme/api",
                    "digest": "sha256:" + "ab" * 32,
                },
                "addedAt": "2026-01-01T00:00:00Z",
            },
        ]
    },
}
SAMPLE_REPORT = {
    "apiVersion": "wgpolicyk8s.io/v1alpha2",
    "kind": "PolicyReport",
    "metadata": {"name": "chart-sample", "namespace": NAMESPACE},
    "scope": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "namespace": NAMESPACE},
    "summary": {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0},
    "results": [
        {
            "source": "sbomgate",
            "policy": "malware",
            "rule": "pkg:pypi/ctx@0.2.2",
            "category": "malware",
            "severity": "critical",
            "result": "fail",
            "scored": True,
            "message": "is known malware",
            "timestamp": {"seconds": 1767225600, "nanos": 0},
            "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}],
            "properties": {"image": "ghcr.io/acme/api@sha256:" + "ab" * 32},
        }
    ],
}


def test_sample_resources_are_accepted(installed: Installed) -> None:
    cluster = installed.cluster
    samples = [SAMPLE_POLICY, SAMPLE_TRUST, SAMPLE_QUARANTINE, SAMPLE_REPORT]
    cluster.apply(*samples)
    try:
        stored = json.loads(
            installed.kubectl("get", "packagepolicy", "chart-sample", "-o", "json").stdout
        )
        # Defaults from the schema.
        assert {k: stored["spec"][k] for k in ("action", "precedence", "terminal", "enabled")} == {
            "action": "Deny",
            "precedence": 100,
            "terminal": False,
            "enabled": True,
        }
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Compiled",
                        "message": "loaded",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 1,
                    }
                ],
                "engineHash": "sha256:0",
                "observedGeneration": 1,
            }
        }
        patched = installed.kubectl(
            "patch",
            "packagepolicy",
            "chart-sample",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        assert patched.returncode == 0, patched.stderr
        table = installed.kubectl("get", "packagepolicy", "chart-sample").stdout.split("\n")
        assert table[0].split() == [
            "NAME",
            "ACTION",
            "PRECEDENCE",
            "TERMINAL",
            "ENABLED",
            "READY",
            "AGE",
        ]
        assert table[1].split()[:6] == ["chart-sample", "Deny", "100", "false", "true", "True"]
        table = installed.kubectl("get", "trustpolicy", "chart-sample").stdout.split("\n")
        assert table[0].split() == ["NAME", "IMAGES", "READY", "AGE"]
        assert table[1].split()[:2] == ["chart-sample", "ghcr.io/acme/**"]
        table = installed.kubectl("get", "packagequarantine", "chart-sample").stdout.split("\n")
        assert table[0].split() == ["NAME", "PURL", "SOURCE", "AGE"]
        assert table[1].split()[:3] == ["chart-sample", "pkg:pypi/ctx@0.2.2", "Manual"]
        table = installed.kubectl("get", "policyreport", "-n", NAMESPACE).stdout.split("\n")
        assert table[0].split()[:6] == ["NAME", "PASS", "FAIL", "WARN", "ERROR", "SKIP"]
        # `kubectl get sbomgate` lists all three kinds (the category).
        names = installed.kubectl("get", "sbomgate", "-o", "name").stdout.split()
        assert len(names) == 3, names
    finally:
        for doc in reversed(samples):
            cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=json.dumps(doc))


def _changed(doc: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `doc` with the dotted `path` set to `value` (None deletes it)."""
    out: dict[str, Any] = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return out


INVALID = [
    pytest.param(
        _changed(SAMPLE_POLICY, "spec.configMapRef", {"namespace": "ops", "name": "rego"}),
        "exactly one of spec.rego or spec.configMapRef",
        id="rego-and-configMapRef",
    ),
    pytest.param(
        _changed(SAMPLE_POLICY, "spec.rego", None),
        "exactly one of spec.rego or spec.configMapRef",
        id="no-rego",
    ),
    pytest.param(
        _changed(SAMPLE_POLICY, "spec.action", "Block"),
        'spec.action: Unsupported value: "Block"',
        id="action-block",
    ),
    pytest.param(
        _changed(SAMPLE_POLICY, "spec.precedence", 100001),
        "spec.precedence",
        id="precedence-out-of-range",
    ),
    pytest.param(
        _changed(
            SAMPLE_POLICY,
            "spec.scope.namespaceSelector.matchExpressions.0.operator",
            "Exists",
        ),
        "Exists and DoesNotExist take none",
        id="selector-exists-with-values",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.authorities.0.keyless", {"identities": [{"issuer": "x"}]}),
        "exactly one of key or keyless",
        id="key-and-keyless",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.authorities.1.keyless.identities.0.subjectRegExp", None),
        "needs subject or subjectRegExp",
        id="identity-without-subject",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.authorities", None),
        "nothing could ever verify",
        id="no-authorities",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.authorities.0.key.data", "not a key"),
        "key.data must be a PEM public key",
        id="key-not-pem",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.authorities.1.name", "ci-key"),
        "Duplicate value",
        id="duplicate-authority",
    ),
    pytest.param(
        _changed(SAMPLE_TRUST, "spec.images", []),
        "spec.images",
        id="no-images",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries", None),
        "spec.entries: Required value",
        id="missing-entries",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries", []),
        "spec.entries",
        id="empty-entries",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries.1.versions", None),
        "give either a purl with @version",
        id="purl-without-version-or-range",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries.0.purl", "pypi/ctx@0.2.2"),
        "spec.entries[0].purl",
        id="not-a-purl",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries.0.expiresAt", "2025-01-01T00:00:00Z"),
        "expiresAt must be after addedAt",
        id="expires-before-added",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries.1.source.policy", None),
        "source.policy names the policy",
        id="policy-source-without-policy",
    ),
    pytest.param(
        _changed(SAMPLE_QUARANTINE, "spec.entries.0.source.kind", "Robot"),
        "source.kind",
        id="unknown-source",
    ),
    pytest.param(
        _changed(SAMPLE_REPORT, "results.0.result", "bad"),
        'results[0].result: Unsupported value: "bad"',
        id="report-result",
    ),
]


@pytest.mark.parametrize(("doc", "message"), INVALID)
def test_invalid_resources_are_refused(
    installed: Installed, doc: dict[str, Any], message: str
) -> None:
    result = installed.dry_run(doc)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert message in result.stderr, result.stderr


def test_policy_manifests_are_accepted(installed: Installed) -> None:
    files = sorted(POLICY_MANIFESTS.glob("*.yaml"))
    assert files
    result = installed.kubectl("apply", "--dry-run=server", "-f", str(POLICY_MANIFESTS))
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(files), result.stdout


def test_uninstall_leaves_nothing(installed: Installed) -> None:
    """Runs last in this module: the release's objects are all gone afterwards (the CRDs of
    crds/ excepted: Helm keeps those by design; the fixture deletes them)."""
    _uninstall(installed.cluster)
    result = installed.kubectl(
        "get", "-f", "-", "--ignore-not-found", "-o", "name", input=installed.manifest
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    listed = installed.cluster.helm("list", "-A", "-q").stdout.split()
    assert RELEASE not in listed
    kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets"
    for selector in (f"app.kubernetes.io/instance={RELEASE}", f"owner=helm,name={RELEASE}"):
        leftovers = installed.kubectl("get", kinds, "-n", NAMESPACE, "-l", selector, "-o", "name")
        assert leftovers.returncode == 0, leftovers.stderr
        assert leftovers.stdout.strip() == "", leftovers.stdout
    for kind in (
        "clusterroles",
        "clusterrolebindings",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    ):
        leftovers = installed.kubectl("get", kind, "-l", f"app.kubernetes.io/instance={RELEASE}")
        assert "No resources found" in leftovers.stderr, leftovers.stdout
    ours = [n for n in REPORT_CRDS if n in installed.created_crds]
    assert _crds_present(installed.cluster, ours) == []
