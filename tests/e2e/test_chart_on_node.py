"""The chart installed for real: `helm install` of charts/sbomgate with sbomgate's own image
(`make image`) on a real node (tests/support/kube_node.py: containerd, kubelet, scheduler,
controller-manager, kube-proxy), as a newcomer would on a cluster.

The workloads are the demo's real images (Debian 12 + python3 + a Flask app, and the same with a
slopsquatted dependency), their SBOMs written by syft and attested with the real cosign; the
registry, the signed apt mirror and the two PyPI indexes listen on the node's address, where
containerd pulls from and the webhook's Pods ask. The tests run in order, as a user's day does:
install (Warn: a first install refuses nothing), upgrade to Enforce while admissions stream,
a good Deployment admitted and its Pods running the pinned digest, a bad one and a bad Helm
release refused, a replica evicted and one deleted during a stream of admissions, the serving
certificate replaced and rotated under the running Pods, `helm test`, the in-cluster audit's
PolicyReports, and `helm uninstall` leaving a cluster that admits anything again.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.kube_node import (
    KubeNode,
    host_ip,
    push_pause_image,
    running_node,
    trust_registry,
)
from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair
from support.paths import ROOT
from support.real_image import (
    SLOPSQUAT,
    DemoRepositories,
    demo_repositories,
    need_demo_image,
    push_app_image,
    push_layout,
    syft_sbom,
)
from support.registry_servers import RegistryCA, RegistryServer, make_test_ca, start_distribution

CHART = ROOT / "charts" / "sbomgate"
BUILD_IMAGE = ROOT / "tools" / "build_image.py"
RELEASE = "sbomgate"
NAMESPACE = "sbomgate-system"
APPS = "shop"
EXTRA_MOUNT = "/etc/sbomgate-extra"
WEBHOOK_KINDS = ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")


@dataclass
class Stack:
    """The node, the registry on its address, the images and the repositories."""

    node: KubeNode
    registry: RegistryServer
    sbomgate: PushedImage
    good: PushedImage
    bad: PushedImage
    key: CosignKey
    repos: DemoRepositories
    work: Path
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def cluster(self) -> Any:
        return self.node.cluster

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.node.cluster.kubectl(*args, **kwargs)

    def helm(self, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        # Longer than any --timeout given to helm here (5m at most), so that helm reports what
        # it waited for rather than being killed without a word.
        return self.node.cluster.helm(*args, timeout=timeout)


def _build_sbomgate_image(work: Path) -> Path:
    need_demo_image()
    done = subprocess.run(
        [sys.executable, str(BUILD_IMAGE), "--out", str(work / "image")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return work / "image" / "oci"


@pytest.fixture(scope="module")
def stack(work: Path) -> Iterator[Stack]:
    ip = host_ip()
    ca: RegistryCA = make_test_ca(work / "registry-ca", (ip,))
    registry = start_distribution(work / "registry", ca=ca, bind=ip)
    try:
        pause = push_pause_image(registry, work)
        trust_registry(work / "containerd", registry.host, ca.ca_file)
        layout = _build_sbomgate_image(work)
        sbomgate = push_layout(registry, "sbomgate/sbomgate", "test", layout)
        key = cosign_keypair(work / "keys", "ecdsa")
        with demo_repositories(work / "repos", bind=ip) as repos:
            good = push_app_image(registry, "shop/web", "1.0", work / "good")
            bad = push_app_image(registry, "shop/web", "1.1", work / "bad", [repos.slopsquat_wheel])
            for name, image in (("good", good), ("bad", bad)):
                sbom = syft_sbom(image, work / f"{name}.cdx.json", work)
                cosign_attest(registry, image.digest_ref, sbom, "cyclonedx", key,
                              new_bundle_format=True, workdir=work / "cosign")  # fmt: skip
            with running_node(
                work / "cluster", pause.ref, work / "containerd" / "registries"
            ) as node:
                yield Stack(node, registry, sbomgate, good, bad, key, repos, work)
    finally:
        registry.stop()


# --------------------------------------------------------------------------- helpers


def _values(stack: Stack, **config: Any) -> dict[str, Any]:
    """The values a user writes: the image (by digest), the registry, its CA and the trusted
    repositories (files mounted from a ConfigMap), and a TrustPolicy for the CI's key."""
    sources = stack.repos.sources()
    for source in sources:
        if "keyring" in source:
            source["keyring"] = f"{EXTRA_MOUNT}/mirror-keyring.gpg"
    repository, _, _ = stack.sbomgate.digest_ref.partition("@")
    return {
        "image": {"repository": repository, "digest": stack.sbomgate.digest},
        "config": {
            "allowedRegistries": [stack.registry.host],
            "registryCA": [f"{EXTRA_MOUNT}/registry-ca.pem"],
            "trustedSources": sources,
            # Quick audits and leader chores (certificate renewal) for the test.
            "auditInterval": 5,
            **config,
        },
        "extraVolumes": [{"name": "extra", "configMap": {"name": "sbomgate-extra"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": EXTRA_MOUNT, "readOnly": True}],
        "trustPolicies": [
            {
                "name": "shop",
                "spec": {
                    "images": [f"{stack.registry.host}/shop/**"],
                    "authorities": [
                        {"name": "ci", "key": {"data": stack.key.public_key_path.read_text()}}
                    ],
                    "attestations": [{"name": "sbom", "predicateTypes": ["cyclonedx"]}],
                },
            }
        ],
    }


def _values_file(stack: Stack, name: str, **config: Any) -> Path:
    path = stack.work / f"{name}-values.yaml"
    path.write_text(yaml.safe_dump(_values(stack, **config)))
    return path


def _deployment(stack: Stack, name: str, image: PushedImage, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": APPS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": f"{stack.registry.host}/{image.repo}:{image.tag}",
                            "ports": [{"containerPort": 8080}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ]
                },
            },
        },
    }


def _sbomgate_pods(stack: Stack) -> list[dict[str, Any]]:
    done = stack.kubectl(
        "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE},"
        "app.kubernetes.io/name=sbomgate", "-o", "json", check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout)["items"])


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _wait(what: str, check: Any, timeout: float = 120, stack: Stack | None = None) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.25)
    logs = _logs(stack) if stack is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def _logs(stack: Stack) -> str:
    """The webhook Pods' last log lines, their state and events, and the node's, for a
    failure's message."""
    done = stack.kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=sbomgate",
                         "--tail=40", "--prefix")  # fmt: skip
    state = stack.kubectl("get", "deployments,replicasets,pods,poddisruptionbudgets", "-n",
                          NAMESPACE, "-o", "wide")  # fmt: skip
    events = stack.kubectl("get", "events", "-n", NAMESPACE, "--sort-by=.lastTimestamp")
    return (
        done.stdout + done.stderr + state.stdout + state.stderr + events.stdout[-6000:]
        + events.stderr + stack.node.log_tails()
    )  # fmt: skip


class AdmissionStream:
    """Server-side dry-run creates of a Deployment, one after another from a thread, straight
    to the API server (which calls the webhooks as for a real create): every answer counted."""

    def __init__(self, stack: Stack, deployment: dict[str, Any]) -> None:
        self.cluster = stack.cluster
        self.body = json.dumps(deployment).encode()
        self.path = f"/apis/apps/v1/namespaces/{APPS}/deployments?dryRun=All"
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> tuple[int, str]:
        conn = self.cluster.admin_connection()
        try:
            conn.request("POST", self.path, self.body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        except OSError as exc:
            return 0, str(exc)
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = self._one()
            self.answers.append((time.monotonic(), status, body if status != 201 else ""))

    def __enter__(self) -> AdmissionStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def failures(self) -> list[str]:
        return [f"{status}: {body[:300]}" for _, status, body in self.answers if status != 201]


def _served_certificate(ip: str) -> x509.Certificate:
    """The certificate a webhook Pod presents on 8443 now."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 8443), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _pair(common_name: str, names: list[str], days: int) -> tuple[bytes, bytes, bytes]:
    """A CA and a serving certificate signed by it, valid for `days` (PEM: ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sbomgate test rotation CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


# --------------------------------------------------------------------------- the day


@pytest.fixture(scope="module")
def installed(stack: Stack) -> Stack:
    """`helm install` with Warn (the default): the time until both replicas are Ready."""
    stack.kubectl("create", "namespace", NAMESPACE, check=True)
    stack.kubectl("create", "namespace", APPS, check=True)
    keyring = next(s["keyring"] for s in stack.repos.sources() if "keyring" in s)
    stack.kubectl(
        "create", "configmap", "sbomgate-extra", "-n", NAMESPACE,
        f"--from-file=registry-ca.pem={stack.registry.ca_file}",
        f"--from-file=mirror-keyring.gpg={keyring}", check=True,
    )  # fmt: skip
    values = _values_file(stack, "install")
    started = time.monotonic()
    done = stack.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values), "--wait",
        "--timeout", "5m",
    )  # fmt: skip
    stack.figures["install_to_ready_s"] = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr + stack.node.log_tails()
    # What the NOTES say next: the bundled policies, as PackagePolicy resources.
    applied = stack.kubectl("apply", "-f", str(ROOT / "deploy" / "policies"))
    assert applied.returncode == 0, applied.stderr
    names = {p.stem for p in (ROOT / "deploy" / "policies").glob("*.yaml")}

    def loaded() -> bool:
        logs = stack.kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=sbomgate",
                             "--tail=-1").stdout  # fmt: skip
        sets = [json.loads(line) for line in logs.splitlines()
                if line.startswith("{") and '"policy set loaded"' in line]  # fmt: skip
        return sum(1 for s in sets if set(s["policies"]) >= names) >= 2

    _wait("both replicas to load the policies", loaded, stack=stack)
    return stack


def test_install_runs_both_replicas_ready_behind_the_service(installed: Stack) -> None:
    pods = _sbomgate_pods(installed)
    assert len(pods) == 2 and all(_ready(p) for p in pods), pods
    for pod in pods:
        [status] = pod["status"]["containerStatuses"]
        assert status["imageID"].endswith(installed.sbomgate.digest)
        assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    slices = json.loads(installed.kubectl(
        "get", "endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={RELEASE}",
        "-o", "json", check=True,
    ).stdout)["items"]  # fmt: skip
    addresses = {a for s in slices for e in s.get("endpoints", []) for a in e["addresses"]}
    assert addresses == {p["status"]["podIP"] for p in pods}
    print(f"\nhelm install to both replicas Ready: {installed.figures['install_to_ready_s']:.1f} s")


def test_a_first_install_warns_and_refuses_nothing(installed: Stack) -> None:
    bad = _deployment(installed, "shop-next", installed.bad)
    done = installed.cluster.apply(bad, check=False)
    assert done.returncode == 0, done.stderr
    assert SLOPSQUAT[0] in done.stderr and "Warning:" in done.stderr, _logs(installed)
    installed.kubectl("delete", "deployment", "shop-next", "-n", APPS, "--wait=false")


@pytest.fixture(scope="module")
def enforcing(installed: Stack) -> Stack:
    """`helm upgrade` to Enforce while admissions stream: no admission may fail."""
    values = _values_file(installed, "enforce", mode="Enforce")
    with AdmissionStream(installed, _deployment(installed, "probe", installed.good)) as stream:
        time.sleep(2)
        started = time.monotonic()
        done = installed.helm(
            "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values), "--wait",
            "--timeout", "5m",
        )  # fmt: skip
        installed.figures["upgrade_s"] = time.monotonic() - started

        def rolled() -> bool:
            pods = _sbomgate_pods(installed)
            return len(pods) == 2 and all(_ready(p) for p in pods)

        if done.returncode == 0:
            _wait("the rolled replicas", rolled, stack=installed)
            time.sleep(2)
    assert done.returncode == 0, done.stdout + done.stderr + _logs(installed)
    installed.figures["upgrade_admissions"] = len(stream.answers)
    assert stream.answers and not stream.failures, stream.failures[:5]
    return installed


def test_upgrade_to_enforce_rolls_without_a_failed_admission(enforcing: Stack) -> None:
    configuration = json.loads(enforcing.kubectl(
        "get", "validatingwebhookconfiguration", RELEASE, "-o", "json", check=True
    ).stdout)  # fmt: skip
    assert {w["failurePolicy"] for w in configuration["webhooks"]} == {"Fail"}
    print(f"\nhelm upgrade to Enforce: {enforcing.figures['upgrade_s']:.1f} s, "
          f"{enforcing.figures['upgrade_admissions']:.0f} admissions, none failed")  # fmt: skip


def test_a_good_deployment_runs_the_pinned_digest(enforcing: Stack) -> None:
    good = _deployment(enforcing, "shop", enforcing.good, replicas=2)
    done = enforcing.cluster.apply(good, check=False)
    assert done.returncode == 0, done.stderr
    stored = json.loads(enforcing.kubectl("get", "deployment", "shop", "-n", APPS, "-o", "json",
                                          check=True).stdout)  # fmt: skip
    [container] = stored["spec"]["template"]["spec"]["containers"]
    assert container["image"] == enforcing.good.digest_ref

    def running() -> bool:
        pods = json.loads(enforcing.kubectl("get", "pods", "-n", APPS, "-l", "app=shop",
                                            "-o", "json", check=True).stdout)["items"]  # fmt: skip
        return len(pods) == 2 and all(_ready(p) for p in pods)

    _wait("the shop's Pods", running, stack=enforcing)
    pods = json.loads(enforcing.kubectl("get", "pods", "-n", APPS, "-l", "app=shop", "-o", "json",
                                        check=True).stdout)["items"]  # fmt: skip
    for pod in pods:
        [status] = pod["status"]["containerStatuses"]
        assert pod["spec"]["containers"][0]["image"] == enforcing.good.digest_ref
        assert status["imageID"].endswith(enforcing.good.digest) and status["ready"]


def test_a_bad_deployment_is_refused_with_the_full_message(enforcing: Stack) -> None:
    bad = _deployment(enforcing, "shop-next", enforcing.bad)
    done = enforcing.cluster.apply(bad, check=False)
    assert done.returncode != 0
    message = done.stderr
    assert 'admission webhook "' in message and "denied the request" in message, message
    assert f"pkg:pypi/{SLOPSQUAT[0]}@{SLOPSQUAT[1]}" in message
    assert "package-age-proxied" in message and "pypi-proxy" in message
    assert enforcing.bad.digest in message
    gone = enforcing.kubectl("get", "deployment", "shop-next", "-n", APPS)
    assert gone.returncode != 0


def test_a_helm_release_of_a_bad_chart_fails(enforcing: Stack) -> None:
    chart = enforcing.work / "bad-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: shop-next\nversion: 1.1.0\nappVersion: '1.1'\n"
    )
    deployment = _deployment(enforcing, "shop-next", enforcing.bad)
    (chart / "templates" / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    done = enforcing.helm("install", "shop-next", str(chart), "-n", APPS, "--wait",
                          "--timeout", "60s")  # fmt: skip
    assert done.returncode != 0
    assert "denied the request" in done.stderr and SLOPSQUAT[0] in done.stderr, done.stderr
    status = enforcing.helm("status", "shop-next", "-n", APPS, "-o", "json")
    assert json.loads(status.stdout)["info"]["status"] == "failed"
    enforcing.helm("uninstall", "shop-next", "-n", APPS)


def test_the_disruption_budget_keeps_one_replica(enforcing: Stack) -> None:
    """Evictions (what `kubectl drain` asks) respect the PodDisruptionBudget: the first of two
    replicas may go, the second may not until the first is replaced."""
    # The disruption controller updates the budget's status after the Pods it counts change
    # (an earlier test's upgrade replaced them): until it has counted both replicas healthy,
    # the API server refuses every eviction with 429, as `kubectl drain` sees and retries.
    _wait("the budget to allow one disruption", lambda: _disruptions_allowed(enforcing) == 1,
          stack=enforcing)  # fmt: skip
    first, second = (p["metadata"]["name"] for p in _sbomgate_pods(enforcing))
    with AdmissionStream(enforcing, _deployment(enforcing, "probe", enforcing.good)) as stream:
        time.sleep(1)
        evicted = _evict(enforcing, first)
        refused = _evict(enforcing, second)

        def replaced() -> bool:
            pods = _sbomgate_pods(enforcing)
            return len(pods) == 2 and all(_ready(p) for p in pods)

        _wait("a replacement replica", replaced, stack=enforcing)
        time.sleep(1)
    assert evicted == 201, evicted
    assert refused == 429, refused
    assert stream.answers and not stream.failures, stream.failures[:5]


def _disruptions_allowed(stack: Stack) -> int:
    """The release's PodDisruptionBudget's `disruptionsAllowed`, once its status is current."""
    done = stack.kubectl(
        "get", "poddisruptionbudgets", "-n", NAMESPACE, "-l",
        f"app.kubernetes.io/instance={RELEASE}", "-o", "json", check=True,
    )  # fmt: skip
    (budget,) = json.loads(done.stdout)["items"]
    status = budget.get("status", {})
    if status.get("observedGeneration") != budget["metadata"].get("generation"):
        return -1
    return int(status.get("disruptionsAllowed", 0))


def _evict(stack: Stack, pod: str) -> int:
    """POST an Eviction (what `kubectl drain` asks): its HTTP status."""
    conn = stack.cluster.admin_connection()
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": NAMESPACE},
    }
    try:
        conn.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction",
                     json.dumps(body), {"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_replica_deleted_during_admissions(enforcing: Stack) -> None:
    """One replica deleted while admissions stream: none fails (the stopping Pod keeps serving
    while its endpoint leaves, then drains), and a replacement is Ready."""
    victim = _sbomgate_pods(enforcing)[0]["metadata"]["name"]
    with AdmissionStream(enforcing, _deployment(enforcing, "probe", enforcing.good)) as stream:
        time.sleep(2)
        deleted = time.monotonic()
        enforcing.kubectl("delete", "pod", victim, "-n", NAMESPACE, "--wait=false", check=True)

        def replaced() -> bool:
            pods = _sbomgate_pods(enforcing)
            names = {p["metadata"]["name"] for p in pods}
            return victim not in names and len(pods) == 2 and all(_ready(p) for p in pods)

        _wait("a replacement replica", replaced, stack=enforcing)
        replaced_after = time.monotonic() - deleted
        time.sleep(2)
    during = [a for a in stream.answers if a[0] >= deleted]
    latencies = sorted(
        b[0] - a[0] for a, b in zip(stream.answers, stream.answers[1:], strict=False)
    )
    print(f"\nreplica deleted: {len(during)} admissions during the failover, "
          f"{len(stream.failures)} failed; replacement Ready after {replaced_after:.1f} s; "
          f"slowest admission {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    assert during and not stream.failures, stream.failures[:5]


def test_the_certificate_secret_is_reloaded_and_rotated_in_place(enforcing: Stack) -> None:
    """The serving certificate replaced in its Secret by one about to expire: each Pod serves
    it from the updated volume without a restart; then the elected replica, from inside the
    cluster, renews it (new CA in the webhook configurations first) and the Pods serve that."""
    secret_name = f"{RELEASE}-tls"
    secret = json.loads(enforcing.kubectl("get", "secret", secret_name, "-n", NAMESPACE,
                                          "-o", "json", check=True).stdout)  # fmt: skip
    old_ca = base64.b64decode(secret["data"]["ca.crt"])
    names = [f"{RELEASE}.{NAMESPACE}.svc", f"{RELEASE}.{NAMESPACE}.svc.cluster.local"]
    ca_pem, cert_pem, key_pem = _pair(names[0], names, days=2)
    bundle = base64.b64encode(old_ca + ca_pem).decode()
    for kind in WEBHOOK_KINDS:
        configuration = json.loads(
            enforcing.kubectl("get", kind, RELEASE, "-o", "json", check=True).stdout
        )
        patch = [
            {"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
            for i in range(len(configuration["webhooks"]))
        ]
        enforcing.kubectl("patch", kind, RELEASE, "--type=json", "-p", json.dumps(patch),
                          check=True)  # fmt: skip
    time.sleep(10)  # as the rotator does: the API server applies a new caBundle a moment later
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in _sbomgate_pods(enforcing)}
    before = {name: _served_certificate(ip).serial_number for name, ip in pods.items()}
    replaced = x509.load_pem_x509_certificate(cert_pem)
    with AdmissionStream(enforcing, _deployment(enforcing, "probe", enforcing.good)) as stream:
        enforcing.kubectl("patch", "secret", secret_name, "-n", NAMESPACE, "-p", json.dumps({
            "data": {k: base64.b64encode(v).decode() for k, v in
                     (("ca.crt", ca_pem), ("tls.crt", cert_pem), ("tls.key", key_pem))}
        }), check=True)  # fmt: skip
        patched = time.monotonic()
        serials: dict[str, set[int]] = {name: set() for name in pods}

        def renewed() -> bool:
            current = json.loads(enforcing.kubectl("get", "secret", secret_name, "-n", NAMESPACE,
                                                   "-o", "json").stdout)  # fmt: skip
            in_secret = x509.load_pem_x509_certificate(
                base64.b64decode(current["data"]["tls.crt"])
            ).serial_number
            for name, ip in pods.items():
                serials[name].add(_served_certificate(ip).serial_number)
            return in_secret != replaced.serial_number and all(
                _served_certificate(ip).serial_number == in_secret for ip in pods.values()
            )

        renewed_after = _wait("the renewed certificate served", renewed, 180, enforcing)
        time.sleep(1)
    for name in pods:
        assert before[name] not in serials[name] or len(serials[name]) > 1
    seen_replaced = [name for name in pods if replaced.serial_number in serials[name]]
    print(f"\ncertificate: replaced in the Secret, served by {len(seen_replaced)} of {len(pods)} "
          f"Pods from the volume, renewed by the leader and served {renewed_after:.1f} s after; "
          f"{len(stream.answers)} admissions, {len(stream.failures)} failed")  # fmt: skip
    assert time.monotonic() - patched < 300
    failed_at = [round(t - patched, 2) for t, status, _ in stream.answers if status != 201]
    assert stream.answers and not stream.failures, (
        failed_at,
        stream.failures[:2],
        _logs(enforcing),
    )


def test_helm_test_passes(enforcing: Stack) -> None:
    # The test Pod is deleted once it succeeds (hook-succeeded), so that uninstall leaves
    # nothing: its answer is its phase.
    done = enforcing.helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Phase:          Succeeded" in done.stdout, done.stdout


def test_the_audit_writes_policy_reports_from_inside_the_cluster(enforcing: Stack) -> None:
    """The operator runs in the Pods with their service account: a leader holds the lease, and
    the audit reports the running workloads (the shop passes)."""
    leases = json.loads(enforcing.kubectl("get", "leases", "-n", NAMESPACE, "-o", "json",
                                          check=True).stdout)["items"]  # fmt: skip
    holders = {lease["spec"].get("holderIdentity") for lease in leases}
    pod_names = {p["metadata"]["name"] for p in _sbomgate_pods(enforcing)}
    assert any(h and any(name in h for name in pod_names) for h in holders), holders

    def reported() -> bool:
        done = enforcing.kubectl("get", "policyreports", "-n", APPS, "-o", "json")
        items = json.loads(done.stdout)["items"] if done.returncode == 0 else []
        return any(r.get("results") for r in items)

    _wait("a PolicyReport in the shop's namespace", reported, 120, enforcing)
    reports = json.loads(enforcing.kubectl("get", "policyreports", "-n", APPS, "-o", "json",
                                           check=True).stdout)["items"]  # fmt: skip
    results = [r for report in reports for r in report.get("results", [])]
    assert results and all(
        r["result"] in ("pass", "warn", "fail", "error", "skip") for r in results
    )
    assert any(r["result"] == "pass" for r in results), results[:3]


def test_uninstall_leaves_an_unlocked_cluster(enforcing: Stack) -> None:
    # Admissions go on during the uninstall: the webhooks must never be left without replicas
    # (the stopping Pods serve through their preStop sleep while Helm deletes the rest).
    with AdmissionStream(enforcing, _deployment(enforcing, "probe", enforcing.good)) as stream:
        time.sleep(1)
        done = enforcing.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m")
        time.sleep(1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert stream.answers and not stream.failures, stream.failures[:5]
    print(f"\nhelm uninstall: {len(stream.answers)} admissions during it, none failed")
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        left = enforcing.kubectl("get", kind, "-o", "name", check=True).stdout.split()
        assert not [n for n in left if RELEASE in n], left
    _wait("the release's Pods gone", lambda: not _sbomgate_pods(enforcing), 120)
    remaining = enforcing.kubectl(
        "get", "all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,"
        "poddisruptionbudgets", "-n", NAMESPACE, "-o", "name", check=True,
    ).stdout.split()  # fmt: skip
    ours = [r for r in remaining if "sbomgate-extra" not in r and "kube-root-ca" not in r
            and not r.endswith("/default") and not r.startswith("lease")]  # fmt: skip
    cluster_wide = enforcing.kubectl(
        "get", "clusterroles,clusterrolebindings", "-o", "name", check=True
    ).stdout.split()
    assert not ours and not [r for r in cluster_wide if RELEASE in r], (ours, cluster_wide)

    # What the Pods made (the audit's Lease and PolicyReports) is owned by the webhook
    # configuration: the garbage collector removes it with the release.
    left: list[str] = []

    def collected() -> bool:
        leases = enforcing.kubectl("get", "leases", "-n", NAMESPACE, "-o", "json").stdout
        reports = enforcing.kubectl("get", "policyreports", "-A", "-o", "json").stdout
        left[:] = [
            f"{item['kind']} {item['metadata'].get('namespace')}/{item['metadata']['name']} "
            f"owned by {item['metadata'].get('ownerReferences')}"
            for text in (leases, reports) if text.strip()
            for item in json.loads(text)["items"]
        ]  # fmt: skip
        return not left

    started = time.monotonic()
    try:
        _wait("the Lease and the PolicyReports collected", collected, 150)
    except AssertionError:
        raise AssertionError(f"left after uninstall: {left}") from None
    print(f"the Lease and the PolicyReports collected {time.monotonic() - started:.1f} s after")
    # Nothing is judged any more: the bad image is admitted without a word.
    bad = _deployment(enforcing, "shop-next", enforcing.bad)
    done = enforcing.cluster.apply(bad, check=False)
    assert done.returncode == 0 and "Warning" not in done.stderr, done.stderr
    shutil.rmtree(enforcing.work / "bad-chart", ignore_errors=True)
