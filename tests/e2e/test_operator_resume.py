"""The operator (`sbomgate serve` with kubernetes.watch) through API server restarts and cut
watches: the webhook keeps enforcing the policies it had, and resumes following changes.

A private control plane (not the session's: its kube-apiserver is stopped and started again
here). Replica A reaches the API server through toxiproxy, so its watches alone can be cut
(the proxy disabled: every connection closed, new ones refused; or a reset_peer toxic: the next
bytes on a connection are answered with a TCP RST); replica B connects directly. Reviews are
posted to each replica directly, so they are answered whatever the API server's state.

Decision: while the API server is down a replica stays ready (/readyz 200). Its policy set is
complete, as loaded, and it answers every review with it; unready would turn every admission
into a webhook failure for as long as the API server is away (and the API server is then down
anyway: nothing is admitted until it is back).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kube_cluster import KubeCluster
from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair, push_image
from support.policies import deny_package, package_policy, small_sbom
from support.registry_servers import ROOT, RegistryServer
from support.sbomgate_server import Sbomgate, start_sbomgate
from support.toxiproxy import Proxy, Toxiproxy, start_toxiproxy
from support.trust import trust_file
from support.workloads import app_deployment

CRDS = ROOT / "charts" / "sbomgate" / "crds"
NAMESPACE = "resume"
RESUME_BOUND = 30.0  # seconds from the API server (or the connection) back to a change in force
LEASE = "sbomgate-audit"


@dataclass
class Resume:
    cluster: KubeCluster
    proxy: Proxy
    a: Sbomgate  # through the proxy
    b: Sbomgate  # direct
    image: PushedImage
    work: Path

    @property
    def gates(self) -> dict[str, Sbomgate]:
        return {"a": self.a, "b": self.b}


def _attest(server: RegistryServer, image: PushedImage, key: CosignKey, work: Path) -> None:
    sbom = small_sbom(work / "small.cdx.json")  # idna and certifi
    cosign_attest(
        server, image.digest_ref, sbom, "cyclonedx", key, new_bundle_format=True, workdir=work
    )


def _report_crds(cluster: KubeCluster) -> list[dict[str, Any]]:
    """The PolicyReport CRDs, as the chart installs them (the audit writes PolicyReports)."""
    rendered = cluster.helm("template", str(ROOT / "charts" / "sbomgate"), check=True).stdout
    return [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc
        and doc.get("kind") == "CustomResourceDefinition"
        and doc["spec"]["group"] == "wgpolicyk8s.io"
    ]


def _kubeconfig_via(cluster: KubeCluster, proxy: Proxy, path: Path) -> Path:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://{proxy.listen}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def toxiproxy_private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    server = start_toxiproxy(tmp_path_factory.mktemp("toxiproxy-resume"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def resume(
    private_kube_cluster: KubeCluster,
    plain_registry: RegistryServer,
    toxiproxy_private: Toxiproxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Resume]:
    cluster = private_kube_cluster
    work = tmp_path_factory.mktemp("resume")
    cluster.kubectl("apply", "-f", str(CRDS), check=True)
    cluster.apply(*_report_crds(cluster))
    cluster.kubectl(
        "wait", "--for=condition=established", "--timeout=30s", "-f", str(CRDS), check=True
    )
    cluster.create_namespace(NAMESPACE)
    key = cosign_keypair(work / "keys", "ecdsa")
    image = push_image(plain_registry, "resume/beta", "v1")
    _attest(plain_registry, image, key, work)
    trust = trust_file(work, keys=[key])
    proxy = toxiproxy_private.create(
        "kube-apiserver", upstream=cluster.server.removeprefix("https://")
    )
    settings = {"watch": True, "auditInterval": 3600}
    a = start_sbomgate(
        work / "gate-a",
        cluster,
        [plain_registry],
        trust,
        kubernetes={**settings, "kubeconfig": str(_kubeconfig_via(cluster, proxy, work / "kc"))},
    )
    try:
        b = start_sbomgate(
            work / "gate-b",
            cluster,
            [plain_registry],
            trust,
            kubernetes={**settings, "kubeconfig": str(cluster.kubeconfig)},
        )
    except BaseException:
        a.stop()
        raise
    try:
        yield Resume(cluster, proxy, a, b, image, work)
    finally:
        a.stop()
        b.stop()


# --------------------------------------------------------------------------- helpers


def review(
    gate: Sbomgate, image: str, *, dry_run: bool = True, name: str = "probe"
) -> dict[str, Any]:
    """POST an AdmissionReview (a Deployment, by default a dry run) straight to one replica."""
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "CREATE",
            "namespace": NAMESPACE,
            "name": name,
            "object": app_deployment(name, image, NAMESPACE),
            "dryRun": dry_run,
        },
    }
    context = ssl.create_default_context(cafile=str(gate.ca_file))
    request = urllib.request.Request(
        gate.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return dict(json.loads(response.read())["response"])


def enforced(gate: Sbomgate, image: str) -> set[str]:
    """The policies that refuse ``image`` on this replica now (from "[policy NAME]")."""
    answer = review(gate, image)
    message = (answer.get("status") or {}).get("message", "")
    return {part.split("]")[0] for part in message.split("[policy ")[1:]}


def readyz(gate: Sbomgate) -> int:
    context = ssl.create_default_context(cafile=str(gate.ca_file))
    url = gate.url.replace("/validate", "/readyz")
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.2)
    return time.monotonic() - started


def all_enforce(
    resume: Resume, policies: set[str], what: str, since: float | None = None
) -> dict[str, float]:
    """Seconds (from ``since``, default now) until each replica refuses the image for exactly
    ``policies``; the replicas are polled together."""
    started = time.monotonic() if since is None else since
    pending, seconds = dict(resume.gates), {}
    while pending:
        for name, gate in list(pending.items()):
            if enforced(gate, resume.image.ref) == policies:
                seconds[name] = round(time.monotonic() - started, 2)
                del pending[name]
        if pending and time.monotonic() - started > RESUME_BOUND:
            raise AssertionError(f"{what}: not on {sorted(pending)} within {RESUME_BOUND} s")
        time.sleep(0.1)
    return seconds


def lease(cluster: KubeCluster) -> dict[str, Any]:
    out = cluster.kubectl("get", "lease", LEASE, "-n", "default", "-o", "json", check=True)
    return dict(json.loads(out.stdout)["spec"])


def audits(gate: Sbomgate) -> int:
    return sum('"message":"audit finished"' in line for line in gate.log.read_text().splitlines())


def identity(gate: Sbomgate) -> str:
    import socket

    return f"{socket.gethostname()}-{gate.process.pid}"


# --------------------------------------------------------------------------- tests


def test_api_server_restart(resume: Resume) -> None:
    cluster, image = resume.cluster, resume.image.ref
    cluster.apply(package_policy("no-certifi", deny_package("certifi")))
    all_enforce(resume, {"no-certifi"}, "no-certifi in force")
    wait_for(
        lambda: cluster.kubectl("get", "lease", LEASE, "-n", "default").returncode == 0,
        30,
        "the audit lease",
    )
    before = lease(cluster)
    leader = next(n for n, g in resume.gates.items() if identity(g) == before["holderIdentity"])
    follower = "b" if leader == "a" else "a"

    stopped = time.monotonic()
    cluster.stop_apiserver(grace=2)
    try:
        # Down: every replica answers with the policies it had, and stays ready.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for gate in resume.gates.values():
                assert enforced(gate, image) == {"no-certifi"}
                assert readyz(gate) == 200
            time.sleep(0.3)
    finally:
        cluster.start_apiserver()
    back = time.monotonic()
    down = back - stopped
    cluster.apply(package_policy("no-idna", deny_package("idna")))
    added = all_enforce(resume, {"no-certifi", "no-idna"}, "a policy made after it", back)
    cluster.kubectl("delete", "packagepolicy", "no-certifi", check=True)
    deleted = all_enforce(resume, {"no-idna"}, "a policy deleted after it")

    # The lease: the same holder, renewed after the restart, never handed over.
    wait_for(lambda: audits(resume.gates[leader]) >= 1, RESUME_BOUND, "an audit by the leader")
    after = lease(cluster)
    assert after["holderIdentity"] == before["holderIdentity"]
    assert after["acquireTime"] == before["acquireTime"]
    assert after["renewTime"] > before["renewTime"]
    assert after.get("leaseTransitions", 0) == before.get("leaseTransitions", 0) == 0
    assert audits(resume.gates[follower]) == 0
    print(
        f"API server restart: down {down:.2f} s; new policy in force {added} s after it was "
        f"back; a deletion {deleted} s after kubectl delete; lease kept by {leader}"
    )


def test_cut_watches_resume_and_replay_what_they_missed(resume: Resume) -> None:
    cluster, image, a, b = resume.cluster, resume.image.ref, resume.a, resume.b
    assert enforced(a, image) == {"no-idna"}
    resume.proxy.set_enabled(False)  # A's connections closed, new ones refused
    try:
        cluster.apply(package_policy("no-certifi-2", deny_package("certifi")))
        cluster.kubectl("delete", "packagepolicy", "no-idna", check=True)
        wait_for(lambda: enforced(b, image) == {"no-certifi-2"}, 10, "B follows (not cut)")
        # Long enough for A's watch requests to fail and back off.
        time.sleep(2)
        # A is cut off: it enforces what it had, and says it is ready.
        assert enforced(a, image) == {"no-idna"}
        assert readyz(a) == 200
    finally:
        resume.proxy.set_enabled(True)
    seconds = wait_for(
        lambda: enforced(a, image) == {"no-certifi-2"}, RESUME_BOUND, "A: missed changes"
    )
    print(f"watch cut (proxy disabled 2 s): A in sync {seconds:.2f} s after reconnecting")

    # A TCP reset in the middle of the watch streams.
    toxic = resume.proxy.add_toxic("reset_peer", stream="downstream", timeout=0)
    try:
        cluster.apply(package_policy("no-idna-2", deny_package("idna")))
        wait_for(lambda: enforced(b, image) == {"no-certifi-2", "no-idna-2"}, 10, "B follows")
        time.sleep(1)
    finally:
        resume.proxy.remove_toxic(toxic)
    seconds = wait_for(
        lambda: enforced(a, image) == {"no-certifi-2", "no-idna-2"},
        RESUME_BOUND,
        "A: the change made while its watches were reset",
    )
    print(f"watch reset (reset_peer): A in sync {seconds:.2f} s after the toxic went")


def test_a_deletion_missed_across_a_restart_stops_applying(resume: Resume) -> None:
    """A's watches cannot reconnect until after the API server restarted and a policy was
    deleted: its resourceVersion predates the new API server's watch cache (410 Gone), so it
    lists again, and a listing names what exists, never what was deleted."""
    cluster, image, a = resume.cluster, resume.image.ref, resume.a
    assert enforced(a, image) == {"no-certifi-2", "no-idna-2"}
    resume.proxy.set_enabled(False)
    try:
        cluster.stop_apiserver(kill=True)
        cluster.start_apiserver()
        cluster.kubectl("delete", "packagepolicy", "no-idna-2", check=True)
        wait_for(lambda: enforced(resume.b, image) == {"no-certifi-2"}, RESUME_BOUND, "B")
        assert enforced(a, image) == {"no-certifi-2", "no-idna-2"}
    finally:
        resume.proxy.set_enabled(True)
    seconds = wait_for(
        lambda: enforced(a, image) == {"no-certifi-2"}, RESUME_BOUND, "A: the deletion"
    )
    print(f"deletion missed by a re-list: out of force {seconds:.2f} s after reconnecting")


def test_an_api_server_that_stops_answering_delays_only_the_writes(resume: Resume) -> None:
    """A's requests get no answer (a timeout toxic upstream: its watch streams still deliver).
    A new policy is enforced all the same, and refusals whose Events cannot be written do not
    take the threads that check images."""
    cluster, image, a = resume.cluster, resume.image.ref, resume.a
    assert enforced(a, image) == {"no-certifi-2"}
    toxic = resume.proxy.add_toxic("timeout", stream="upstream", timeout=0)
    try:
        cluster.apply(package_policy("no-idna-3", deny_package("idna")))
        seconds = wait_for(
            lambda: enforced(a, image) == {"no-certifi-2", "no-idna-3"},
            RESUME_BOUND,
            "A: a policy whose status cannot be written",
        )
        # Not dry runs: each refusal has an Event to write, which the API server never takes.
        for i in range(24):
            answer = review(a, image, dry_run=False, name=f"real-{i}")
            assert answer["allowed"] is False
        started = time.monotonic()
        assert enforced(a, image) == {"no-certifi-2", "no-idna-3"}
        answered = time.monotonic() - started
        # The status write gives up after its read timeout (10 s), which may not have come yet.
        wait_for(
            lambda: '"message":"status not written"' in a.log.read_text(),
            30,
            "A: the unwritten status logged",
        )
    finally:
        resume.proxy.remove_toxic(toxic)
    print(
        f"API server not answering A: new policy in force after {seconds:.2f} s; a review "
        f"after 24 unwritable Events answered in {answered:.2f} s"
    )
