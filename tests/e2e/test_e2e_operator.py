"""The operator end to end: policies, trust and quarantine as custom resources on a real
kube-apiserver, picked up live by `sbomgate serve` (kubernetes.watch) without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.images import attest
from support.kube_cluster import KubeCluster
from support.oci_builder import PushedImage, cosign_keypair, push_image
from support.paths import GOOD_SBOM as GOOD
from support.policies import deny_package, package_policy, small_sbom
from support.registry_servers import ROOT, RegistryServer
from support.sbomgate_server import Sbomgate, start_sbomgate
from support.trust import trust_file
from support.workloads import app_deployment

CRDS = ROOT / "charts" / "sbomgate" / "crds"
WORKLOADS = "sbomgate-operator"
POLICY_HOOK = "sbomgate-operator-policies"


@dataclass
class Operator:
    cluster: KubeCluster
    gate: Sbomgate
    images: dict[str, PushedImage]
    work: Path


def _policy_hook(cluster: KubeCluster, url: str) -> None:
    cluster.register_validating_webhook(
        POLICY_HOOK,
        url.replace("/validate", "/validate-policy"),
        cluster.ca.cert_pem,
        rules=[
            {
                "apiGroups": ["sbomgate.dev"],
                "apiVersions": ["v1alpha1"],
                "resources": ["packagepolicies", "trustpolicies"],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Cluster",
            }
        ],
        namespace_selector={},
    )


@pytest.fixture(scope="module")
def operator(
    kube_cluster: KubeCluster,
    plain_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    if not CRDS.is_dir():
        pytest.fail(f"{CRDS} is missing: the chart's CRDs are needed")
    work = tmp_path_factory.mktemp("operator")
    cluster = kube_cluster
    cluster.kubectl("apply", "-f", str(CRDS), check=True)
    # The PolicyReport CRDs, as the chart installs them when the cluster lacks them.
    rendered = cluster.helm("template", str(ROOT / "charts" / "sbomgate"), check=True).stdout
    report_crds = [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc
        and doc.get("kind") == "CustomResourceDefinition"
        and doc["spec"]["group"] == "wgpolicyk8s.io"
    ]
    assert report_crds, "the chart renders no PolicyReport CRDs"
    cluster.apply(*report_crds)
    cluster.kubectl(
        "wait", "--for=condition=established", "--timeout=30s", "-f", str(CRDS), check=True
    )
    # The bundled policies, as their ready-to-apply PackagePolicy manifests.
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "policies"), check=True)
    key = cosign_keypair(work / "keys", "ecdsa")
    images = {
        "alpha": push_image(plain_registry, "e2e-op/alpha", "v1"),
        "beta": push_image(plain_registry, "e2e-op/beta", "v1"),
    }
    attest(plain_registry, images["alpha"], GOOD, key, work)
    attest(plain_registry, images["beta"], small_sbom(work / "small.cdx.json"), key, work)
    gate = start_sbomgate(
        work / "gate",
        cluster,
        [plain_registry],
        trust_file(work, keys=[key]),
        # Audits run when the policy set changes (the schedule is out of the way here).
        kubernetes={"watch": True, "kubeconfig": str(cluster.kubeconfig), "auditInterval": 3600},
    )
    cluster.create_namespace("op")
    cluster.register_validating_webhook(WORKLOADS, gate.url, cluster.ca.cert_pem)
    _policy_hook(cluster, gate.url)
    try:
        yield Operator(cluster, gate, images, work)
    finally:
        cluster.delete_validating_webhook(WORKLOADS)
        cluster.delete_validating_webhook(POLICY_HOOK)
        gate.stop()
        cluster.kubectl("delete", "-f", str(CRDS), "--ignore-not-found", "--wait=false")
        for crd in report_crds:
            # Waits until the CRD is gone (later modules create it again); the API server
            # removes its reports first, which took over a minute once on a loaded machine.
            cluster.kubectl(
                "delete", "crd", crd["metadata"]["name"], "--ignore-not-found", timeout=300
            )


def dry_run(op: Operator, name: str, image: str) -> Any:
    return op.cluster.apply(
        app_deployment(name, image, "op"), args=("--dry-run=server",), check=False
    )


def wait_for(condition: Any, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def test_bundled_policies_are_loaded_with_status(operator: Operator) -> None:
    assert dry_run(operator, "ok", operator.images["alpha"].ref).returncode == 0
    out = operator.cluster.kubectl("get", "packagepolicy", "malware", "-o", "json", check=True)
    status = json.loads(out.stdout)["status"]
    ready = status["conditions"][0]
    assert ready["type"] == "Ready" and ready["status"] == "True"
    assert status["engineHash"]


def test_a_new_policy_refuses_the_next_apply_within_5_seconds(operator: Operator) -> None:
    image = operator.images["alpha"].ref
    assert dry_run(operator, "before", image).returncode == 0
    operator.cluster.apply(package_policy("no-certifi", deny_package("certifi")))
    seconds = wait_for(lambda: dry_run(operator, "after", image).returncode != 0, 5.0)
    result = dry_run(operator, "after", image)
    assert "certifi is not allowed here [policy no-certifi]" in result.stderr
    print(f"policy in force after {seconds:.2f} s")
    operator.cluster.kubectl("delete", "packagepolicy", "no-certifi", check=True)
    wait_for(lambda: dry_run(operator, "again", image).returncode == 0, 5.0)


def test_a_broken_policy_is_refused_and_enforcement_continues(operator: Operator) -> None:
    broken = package_policy("broken", "package cloudsmith\nimport rego.v1\nmatch if {\n")
    result = operator.cluster.apply(broken, check=False)
    assert result.returncode != 0
    assert "PackagePolicy/broken" in result.stderr
    assert operator.cluster.kubectl("get", "packagepolicy", "broken").returncode != 0

    # If a broken version is ever stored (here: with the policy webhook out of the way), the
    # last good version stays in force and status says why.
    operator.cluster.apply(package_policy("no-idna", deny_package("idna")))
    image = operator.images["beta"].ref
    wait_for(lambda: dry_run(operator, "x", image).returncode != 0, 5.0)
    operator.cluster.delete_validating_webhook(POLICY_HOOK)
    try:
        operator.cluster.apply(package_policy("no-idna", "package cloudsmith\nmatch if {"))

        def reported() -> bool:
            out = operator.cluster.kubectl("get", "packagepolicy", "no-idna", "-o", "json")
            condition = json.loads(out.stdout).get("status", {}).get("conditions", [{}])[0]
            return condition.get("status") == "False"

        wait_for(reported, 5.0)
        out = operator.cluster.kubectl("get", "packagepolicy", "no-idna", "-o", "json", check=True)
        message = json.loads(out.stdout)["status"]["conditions"][0]["message"]
        assert "still enforcing its last good version" in message
        refused = dry_run(operator, "still", image)
        assert refused.returncode != 0 and "[policy no-idna]" in refused.stderr
    finally:
        operator.cluster.kubectl("delete", "packagepolicy", "no-idna", check=True)
        _policy_hook(operator.cluster, operator.gate.url)
    wait_for(lambda: dry_run(operator, "x", image).returncode == 0, 5.0)


def test_quarantine_action_records_the_package_and_blocks_it_everywhere(operator: Operator) -> None:
    alpha, beta = operator.images["alpha"].ref, operator.images["beta"].ref
    assert dry_run(operator, "beta-before", beta).returncode == 0
    operator.cluster.apply(
        package_policy(
            "quarantine-idna",
            deny_package("idna"),
            action="Quarantine",
            precedence=5,
            scope={"images": ["**/e2e-op/alpha"]},
        )
    )
    wait_for(lambda: dry_run(operator, "alpha", alpha).returncode != 0, 5.0)
    # A dry run records nothing.
    assert "auto-" not in operator.cluster.kubectl("get", "packagequarantines", "-o", "name").stdout
    real = operator.cluster.apply(app_deployment("alpha", alpha, "op"), check=False)
    assert real.returncode != 0 and "[policy quarantine-idna]" in real.stderr

    def recorded() -> bool:
        return "auto-" in operator.cluster.kubectl("get", "packagequarantines", "-o", "name").stdout

    wait_for(recorded, 5.0)
    listing = json.loads(
        operator.cluster.kubectl("get", "packagequarantines", "-o", "json", check=True).stdout
    )
    [entry] = [e for item in listing["items"] for e in item["spec"]["entries"]]
    assert entry["purl"] == "pkg:pypi/idna@3.10"
    assert entry["source"]["policy"] == "quarantine-idna"
    # beta is outside the Quarantine policy's scope, but the package is now quarantined.
    wait_for(lambda: dry_run(operator, "beta-after", beta).returncode != 0, 5.0)
    assert "[policy quarantine]" in dry_run(operator, "beta-after", beta).stderr

    events = json.loads(
        operator.cluster.kubectl("get", "events", "-n", "op", "-o", "json", check=True).stdout
    )
    refused = [e for e in events["items"] if e.get("reason") == "AdmissionRefused"]
    assert refused and any(e["involvedObject"]["name"] == "alpha" for e in refused)
    operator.cluster.kubectl("delete", "packagepolicy", "quarantine-idna", check=True)
    operator.cluster.kubectl("delete", "packagequarantines", "--all", check=True)
    wait_for(lambda: dry_run(operator, "beta-end", beta).returncode == 0, 5.0)


def _report(op: Operator, namespace: str) -> dict[str, Any] | None:
    out = op.cluster.kubectl("get", "policyreport", "sbomgate", "-n", namespace, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def _audits(op: Operator) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in op.gate.log.read_text().splitlines()
        if line.startswith('{"message":"audit finished"')
    ]


def test_audit_reports_a_deployment_that_became_non_compliant(operator: Operator) -> None:
    cluster = operator.cluster
    cluster.create_namespace("audited")
    beta = operator.images["beta"].ref
    assert cluster.apply(app_deployment("drifting", beta, "audited"), check=False).returncode == 0
    # 200 more workloads, so the audit's time over a fleet can be seen.
    fleet = [app_deployment(f"fleet-{i}", beta, "fleet") for i in range(200)]
    cluster.create_namespace("fleet")
    assert cluster.apply(*fleet, check=False).returncode == 0

    cluster.apply(package_policy("no-certifi-audit", deny_package("certifi")))
    try:
        _audit_reports_the_drift(operator)
    finally:  # never left behind to refuse the next tests' images
        cluster.kubectl("delete", "packagepolicy", "no-certifi-audit", check=True)


def _audit_reports_the_drift(operator: Operator) -> None:
    def failing() -> bool:
        report = _report(operator, "audited")
        return bool(report) and any(
            r["policy"] == "no-certifi-audit"
            and r["result"] == "fail"
            and r["resources"][0]["name"] == "drifting"
            for r in report["results"]
        )

    seconds = wait_for(failing, 30.0)
    report = _report(operator, "audited")
    assert report is not None
    assert report["summary"]["fail"] >= 1
    [result] = [r for r in report["results"] if r["policy"] == "no-certifi-audit"]
    assert result["properties"]["purl"] == "pkg:pypi/certifi@2024.8.30"
    assert result["properties"]["digest"] == operator.images["beta"].digest
    assert result["resources"][0]["kind"] == "Deployment"

    # Each namespace's report is written on its own: the fleet's may come a moment later.
    def fleet_failing() -> bool:
        fleet_report = _report(operator, "fleet")
        return fleet_report is not None and fleet_report["summary"]["fail"] == 200

    wait_for(fleet_failing, 30.0)
    # The audit logs its figures once every report is written: a moment after this one.
    wait_for(lambda: any(a["workloads"] >= 201 for a in _audits(operator)), 30.0)
    audits = [a for a in _audits(operator) if a["workloads"] >= 201]
    print(f"report written {seconds:.1f} s after the policy change; audit: {audits[-1]}")


def test_trust_policy_resources_are_enforced_live(operator: Operator) -> None:
    alpha = operator.images["alpha"].ref
    stranger = cosign_keypair(operator.work / "stranger", "ecdsa")
    trust = {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "alpha-needs-release-key"},
        "spec": {
            "images": ["**/e2e-op/alpha"],
            "authorities": [
                {"name": "release", "key": {"data": stranger.public_key_path.read_text()}}
            ],
        },
    }
    assert dry_run(operator, "alpha-ok", alpha).returncode == 0
    operator.cluster.apply(trust)
    wait_for(lambda: dry_run(operator, "alpha-no", alpha).returncode != 0, 5.0)
    refused = dry_run(operator, "alpha-no", alpha)
    assert "required by trust policy alpha-needs-release-key" in refused.stderr
    bad_key = {**trust, "metadata": {"name": "broken-key"}}
    # Shaped like a PEM key (the CRD's own validation passes), but not a key: our webhook.
    garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    bad_key["spec"] = {**trust["spec"], "authorities": [{"name": "x", "key": {"data": garbage}}]}
    rejected = operator.cluster.apply(bad_key, check=False)
    assert rejected.returncode != 0 and "not a PEM public key" in rejected.stderr
    operator.cluster.kubectl("delete", "trustpolicy", "alpha-needs-release-key", check=True)
    wait_for(lambda: dry_run(operator, "alpha-ok", alpha).returncode == 0, 5.0)


def test_policy_scope_by_namespace_selector(operator: Operator) -> None:
    beta = operator.images["beta"].ref
    operator.cluster.create_namespace("strict", labels={"sbomgate.dev/tier": "strict"})
    operator.cluster.apply(
        package_policy(
            "strict-no-idna",
            deny_package("idna"),
            scope={"namespaceSelector": {"matchLabels": {"sbomgate.dev/tier": "strict"}}},
        )
    )

    def strict_refused() -> bool:
        result = operator.cluster.apply(
            app_deployment("b", beta, "strict"), args=("--dry-run=server",), check=False
        )
        return result.returncode != 0 and "[policy strict-no-idna]" in result.stderr

    wait_for(strict_refused, 5.0)
    assert dry_run(operator, "b", beta).returncode == 0  # namespace "op" is not selected
    operator.cluster.kubectl("delete", "packagepolicy", "strict-no-idna", check=True)


def _review_on(gate: Sbomgate, obj: dict[str, Any]) -> dict[str, Any]:
    import ssl
    import urllib.request
    import uuid

    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "CREATE",
            "namespace": obj["metadata"]["namespace"],
            "name": obj["metadata"]["name"],
            "object": obj,
            "dryRun": True,
        },
    }
    context = ssl.create_default_context(cafile=str(gate.ca_file))
    request = urllib.request.Request(
        gate.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return dict(json.loads(response.read())["response"])


def test_a_second_replica_follows_changes_but_does_not_audit(
    operator: Operator, plain_registry: RegistryServer
) -> None:
    trust = next((operator.work / "gate").parent.glob("trust-*.yaml"))
    second = start_sbomgate(
        operator.work / "gate-2",
        operator.cluster,
        [plain_registry],
        trust,
        kubernetes={"watch": True, "kubeconfig": str(operator.cluster.kubeconfig)},
    )
    try:
        target = app_deployment("replica", operator.images["alpha"].ref, "op")
        assert _review_on(second, target)["allowed"] is True
        operator.cluster.apply(package_policy("no-urllib3", deny_package("urllib3")))
        # A review on the new replica took 4.6-4.9 s in a full `make test` (0.5 s alone), and a
        # review begun just before the policy arrived still allows: room for two of them.
        wait_for(lambda: not _review_on(second, target)["allowed"], 30.0)
        wait_for(lambda: not _review_on(operator.gate, target)["allowed"], 30.0)
        wait_for(lambda: len(_audits(operator)) > 0, 10.0)
        time.sleep(2.0)  # time for a wrongly elected second auditor to show itself
        second_audits = [
            line for line in second.log.read_text().splitlines() if '"audit finished"' in line
        ]
        assert second_audits == []  # one replica (the Lease holder) audits
    finally:
        operator.cluster.kubectl("delete", "packagepolicy", "no-urllib3", check=True)
        second.stop()
