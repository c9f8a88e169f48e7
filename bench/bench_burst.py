"""Benchmark: a GitOps burst through a real API server (issue 16).

A real kube-apiserver + etcd calls `sbomgate serve` (its validating webhook, timeoutSeconds 10,
failurePolicy Fail) for every Deployment. Twenty-five applications share a base layer of 800
packages and add 200 to 4,200 of their own (1,000 to 5,000 in all); each image carries a
cosign attestation of its CycloneDX SBOM in a real registry on loopback, and a facts snapshot
vouches for every package. Build 1 of each application is admitted first (one at a time), as
a cluster that already runs them; then build 2 of every application (2% of its packages
bumped, as a release bumps them) arrives as 100 Deployments (four per application, in four
namespaces) sent within 5 s, each as its own request, as a GitOps sync of many applications
sends them.

Printed for the burst: how many were decided (admitted or refused by a policy), refused for a
deadline or a webhook failure, the time from the first request to the last decision, and the
latency percentiles; run twice in the same run, against a server with the outcome cache (the
default) and one with `cache.outcomeBytes: 0` (every package evaluated, as before issue 16).

Figures only: nothing here asserts a timing. Run with `make bench`.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_verify import trust_policy  # noqa: E402
from bench_webhook import bumped, write_facts  # noqa: E402
from sbomgen import make_cyclonedx  # noqa: E402
from support.kube_cluster import KubeCluster, start_kube_cluster  # noqa: E402
from support.oci_builder import CosignKey, cosign_attest, cosign_keypair, push_image  # noqa: E402
from support.registry_servers import RegistryServer, start_distribution  # noqa: E402
from support.sbomgate_server import start_sbomgate  # noqa: E402
from support.workloads import app_deployment  # noqa: E402

APPS = 25
BASE = 800
OWN = [200 + i * 4000 // (APPS - 1) for i in range(APPS)]  # 200 .. 4,200
REPLICAS_PER_APP = 4  # Deployments per application in the burst (one per namespace)
BURST_SECONDS = 5.0
WEBHOOK_TIMEOUT = 10


@dataclass
class Answer:
    sent: float
    latency: float
    status: int
    message: str

    @property
    def deadline(self) -> bool:
        text = self.message.lower()
        return "did not finish" in text or "deadline" in text or "timeout" in text

    @property
    def decided(self) -> bool:
        return self.status == 201 or (self.status == 403 and not self.deadline)


def packages(components: list[dict[str, Any]]) -> int:
    """Components with their nested ones (sbomgen nests some, as real tools do)."""
    return sum(1 + packages(c.get("components", [])) for c in components)


def application(index: int, base: list[dict[str, Any]]) -> dict[str, Any]:
    document = make_cyclonedx(OWN[index], seed=1000 + index)
    document["components"] = [*base, *document["components"]]
    return document


def push_attested(
    registry: RegistryServer, key: CosignKey, work: Path, repo: str, tag: str, doc: dict[str, Any]
) -> str:
    path = work / f"{repo.replace('/', '-')}-{tag}.cdx.json"
    path.write_text(json.dumps(doc))
    image = push_image(registry, repo, tag, seed=f"burst-{repo}-{tag}")
    cosign_attest(
        registry,
        image.digest_ref,
        path,
        "cyclonedx",
        key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    return image.digest_ref


def create(cluster: KubeCluster, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    connection = cluster.admin_connection(timeout=60)
    try:
        connection.request(
            "POST",
            f"/apis/apps/v1/namespaces/{namespace}/deployments",
            json.dumps(body),
            {"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    message = ""
    if response.status != 201:
        try:
            message = str(json.loads(payload).get("message", ""))
        except ValueError:
            message = payload.decode(errors="replace")[:300]
    return response.status, message


def burst(cluster: KubeCluster, images: list[str], namespaces: list[str]) -> list[Answer]:
    """Every (image, namespace) Deployment, sent evenly within BURST_SECONDS, concurrently."""
    jobs = [(ns, i, ref) for ns in namespaces for i, ref in enumerate(images)]
    random.Random(4).shuffle(jobs)
    started = time.monotonic()

    def send(number: int, namespace: str, index: int, ref: str) -> Answer:
        due = started + BURST_SECONDS * number / len(jobs)
        time.sleep(max(0.0, due - time.monotonic()))
        sent = time.monotonic()
        body = app_deployment(f"app-{index}", ref, namespace)
        status, message = create(cluster, namespace, body)
        return Answer(sent - started, time.monotonic() - sent, status, message)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(send, n, *job) for n, job in enumerate(jobs)]
        return [f.result() for f in futures]


def report(label: str, answers: list[Answer]) -> None:
    latencies = sorted(a.latency for a in answers)
    last = max(a.sent + a.latency for a in answers)
    decided = sum(a.decided for a in answers)
    admitted = sum(a.status == 201 for a in answers)
    deadline = sum(a.deadline for a in answers)
    other = len(answers) - decided - deadline

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(
        f"  {label:<34}{decided:>4}/{len(answers)} decided ({admitted} admitted), "
        f"{deadline} deadline, {other} other; last decision {last:.1f} s after the first "
        f"request; latency p50 {pct(0.5):.0f} ms, p90 {pct(0.9):.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    for answer in answers:
        if not answer.decided:
            print(f"    HTTP {answer.status}: {answer.message[:200]}")
            break


def run(
    label: str,
    cluster: KubeCluster,
    registry: RegistryServer,
    work: Path,
    trust: Path,
    builds: tuple[list[str], list[str]],
    extra: dict[str, Any],
) -> None:
    gate = start_sbomgate(
        work / label.replace(" ", "-"),
        cluster,
        [registry],
        trust,
        facts=str(work / "facts.json"),
        **extra,
    )
    name = f"sbomgate-burst-{len(extra)}"
    try:
        cluster.register_validating_webhook(
            name, gate.url, cluster.ca.cert_pem, timeout_seconds=WEBHOOK_TIMEOUT
        )
        first, second = builds
        prefix = "c" if extra else "o"
        warm_ns = f"{prefix}-running"
        cluster.create_namespace(warm_ns)
        started = time.monotonic()
        warm = [
            create(cluster, warm_ns, app_deployment(f"app-{i}", ref, warm_ns))
            for i, ref in enumerate(first)
        ]
        warm_seconds = time.monotonic() - started
        namespaces = [f"{prefix}-team-{n}" for n in range(REPLICAS_PER_APP)]
        for namespace in namespaces:
            cluster.create_namespace(namespace)
        answers = burst(cluster, second, namespaces)
        print(
            f"\n{label}: build 1 of {APPS} applications admitted one at a time in "
            f"{warm_seconds:.1f} s ({sum(s in (201, 403) for s, _ in warm)} decided)"
        )
        report(f"burst of {len(answers)} (build 2)", answers)
        lat = statistics.median(a.latency for a in answers)
        print(f"  median {lat * 1000:.0f} ms; server log: {gate.log}")
    finally:
        cluster.delete_validating_webhook(name)
        gate.stop()


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sbomgate-bench-burst-") as tmp:
        work = Path(tmp)
        cluster = start_kube_cluster(work / "kube")
        registry = start_distribution(work / "registry", ca=None)
        try:
            key = cosign_keypair(work / "keys", "ecdsa")
            trust = trust_policy(work, key)
            base = make_cyclonedx(BASE, seed=1)["components"]
            rng = random.Random(2)
            documents, first, second = [], [], []
            for index in range(APPS):
                one = application(index, base)
                two = bumped(one, rng)
                documents += [one, two]
                first.append(push_attested(registry, key, work, f"apps/app-{index}", "1", one))
                second.append(push_attested(registry, key, work, f"apps/app-{index}", "2", two))
            write_facts(work / "facts.json", documents)
            sizes = [packages(d["components"]) for d in documents[::2]]
            print(
                f"setup: {APPS} applications of {min(sizes):,}-{max(sizes):,} packages "
                f"({packages(base):,} shared), 2 builds each, cosign-attested, in "
                f"{time.monotonic() - started:.0f} s; webhook timeoutSeconds "
                f"{WEBHOOK_TIMEOUT}, sbomgate admissionDeadline 6 s"
            )
            run("outcome cache on (default)", cluster, registry, work, trust, (first, second), {})
            run(
                "outcome cache off (outcomeBytes 0)",
                cluster,
                registry,
                work,
                trust,
                (first, second),
                {"cache": {"outcomeBytes": 0}},
            )
        finally:
            registry.stop()
            cluster.stop()
    print(f"\n(benchmark wall time {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
