"""Two `sbomgate serve` replicas behind a real load balancer, one of them killed under load.

HAProxy 2.6 (`make tools`) stands where a Service stands in a cluster: TCP mode, TLS passed
through, so the API server verifies sbomgate's own serving certificate (issued by the cluster
CA, with a SAN for 127.0.0.1, the balancer's address). It checks each replica's /readyz over
TLS every 200 ms (down after 2 failures, up after 2 successes) and retries a refused connect
on the other replica (`option redispatch 1`), so a replica killed with SIGKILL costs at most the
reviews it had in flight, and nothing after; SIGTERM costs nothing: the replica turns unready,
closes each connection after its next answer, and exits once the balancer stopped sending.

The load comes two ways: Pods and Deployments created (and dry-run) through the real
kube-apiserver, which calls the webhook through the balancer; and AdmissionReviews posted to
the balancer at 100 per second, for figures (failures, latency over the failover, the time
HAProxy takes to mark the dead replica down).
"""

from __future__ import annotations

import csv
import http.client
import io
import itertools
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from support.kube_cluster import KubeCluster
from support.net import free_port
from support.oci_builder import CosignKey, PushedImage, cosign_attest, cosign_keypair, push_image
from support.paths import BAD_SBOM as BAD
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import ROOT, RegistryServer
from support.sbomgate_server import Sbomgate, start_sbomgate
from support.trust import trust_file
from support.workloads import app_deployment

HAPROXY_BIN = ROOT / ".cache" / "bin" / "haproxy"
NAMESPACE = "replicas"
WEBHOOK = "sbomgate-replicas"
REFUSAL = "[policy malware]"  # what the bad image is refused for
CHECK_INTERVAL_MS = 200


# --------------------------------------------------------------------------- HAProxy


HAPROXY_CONFIG = """\
global
    maxconn 2000
    stats socket {socket} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    # Longer than the keep-alive of both ends (the API server: 90 s idle; sbomgate: 120 s).
    timeout client 150s
    timeout server 150s
    # A connect refused by a dead replica is retried at once on the other one.
    retries 3
    option redispatch 1

frontend webhook
    bind 127.0.0.1:{port}
    default_backend sbomgate

backend sbomgate
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check check-ssl verify none inter {inter}ms fastinter {inter}ms \
downinter {inter}ms fall 2 rise 2
{servers}
"""


@dataclass
class HAProxy:
    process: subprocess.Popen[bytes]
    port: int
    socket_path: Path
    log: Path

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend's servers: name -> row (status, check_status, ...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            r["svname"]: r
            for r in rows
            if r["pxname"] == "sbomgate" and r["svname"] not in ("BACKEND", "FRONTEND")
        }

    def wait_for(self, server: str, status: str, seconds: float) -> tuple[float, dict[str, str]]:
        """Seconds until ``server``'s status is ``status`` (polled every 10 ms), and its row."""
        started = time.monotonic()
        while True:
            row = self.servers()[server]
            if row["status"] == status:
                return time.monotonic() - started, row
            if time.monotonic() - started > seconds:
                raise AssertionError(f"{server} not {status} after {seconds} s: {row}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_haproxy(directory: Path, backends: dict[str, int]) -> HAProxy:
    if not HAPROXY_BIN.exists():
        pytest.fail(f"{HAPROXY_BIN} is not built: run `make tools`")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    sock = directory / "admin.sock"
    config = directory / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(
            socket=sock,
            port=port,
            inter=CHECK_INTERVAL_MS,
            servers="\n".join(f"    server {n} 127.0.0.1:{p}" for n, p in backends.items()),
        )
    )
    check = subprocess.run([str(HAPROXY_BIN), "-c", "-f", str(config)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
    log = directory / "haproxy.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(HAPROXY_BIN), "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = HAProxy(process, port, sock, log)
    deadline = time.monotonic() + 15
    while not sock.exists() or not _answers(proxy):
        if time.monotonic() > deadline or process.poll() is not None:
            proxy.stop()
            pytest.fail(f"haproxy did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return proxy


def _answers(proxy: HAProxy) -> bool:
    try:
        proxy.servers()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- the stack


@dataclass
class Replica:
    name: str
    directory: Path
    gate: Sbomgate

    @property
    def port(self) -> int:
        return int(self.gate.url.split(":")[2].split("/")[0])


@dataclass
class Stack:
    cluster: KubeCluster
    registry: RegistryServer
    trust: Path
    images: dict[str, PushedImage]
    replicas: dict[str, Replica]
    lb: HAProxy
    work: Path

    @property
    def lb_url(self) -> str:
        return f"https://127.0.0.1:{self.lb.port}/validate"

    def both_up(self) -> None:
        """Both replicas running (a stopped one started again, on a new port, as a restarted
        Pod has a new address, and the balancer told) and UP in HAProxy."""
        for name, replica in list(self.replicas.items()):
            if replica.gate.process.poll() is not None:
                replica = self.replicas[name] = start_replica(
                    self.work / f"{name}-again",
                    self.cluster,
                    self.registry,
                    self.trust,
                    self.images,
                )
                replica.name = name
                self.lb.command(f"set server sbomgate/{name} addr 127.0.0.1 port {replica.port}")
        for name in self.replicas:
            self.lb.wait_for(name, "UP", 15)


def start_replica(
    directory: Path,
    cluster: KubeCluster,
    registry: RegistryServer,
    trust: Path,
    images: dict[str, PushedImage],
) -> Replica:
    gate = start_sbomgate(directory, cluster, [registry], trust)
    for image in ("good", "bad"):  # its digest cache warm, as a replica in service is
        post_review(gate.url, cluster.ca_file, images[image].ref)
    return Replica(directory.name, directory, gate)


def _attest(
    server: RegistryServer, image: PushedImage, sbom: Path, key: CosignKey, work: Path
) -> None:
    kind = "cyclonedx" if "cdx" in sbom.name else "spdxjson"
    cosign_attest(
        server, image.digest_ref, sbom, kind, key, new_bundle_format=True, workdir=work / "cosign"
    )


@pytest.fixture(scope="module")
def stack(
    kube_cluster: KubeCluster,
    plain_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("replicas")
    key = cosign_keypair(work / "keys", "ecdsa")
    images = {
        "good": push_image(plain_registry, "replicas/good", "v1"),
        "bad": push_image(plain_registry, "replicas/bad", "v1"),
    }
    _attest(plain_registry, images["good"], GOOD, key, work)
    _attest(plain_registry, images["bad"], BAD, key, work)
    trust = trust_file(work, keys=[key])
    replicas: dict[str, Replica] = {}
    try:
        for name in ("r1", "r2"):
            replicas[name] = start_replica(work / name, kube_cluster, plain_registry, trust, images)
        lb = start_haproxy(work / "haproxy", {n: r.port for n, r in replicas.items()})
    except BaseException:
        for replica in replicas.values():
            replica.gate.stop()
        raise
    stack = Stack(kube_cluster, plain_registry, trust, images, replicas, lb, work)
    try:
        stack.both_up()
        kube_cluster.create_namespace(NAMESPACE)
        # This namespace only: the configuration must not reach other modules' objects.
        kube_cluster.register_validating_webhook(
            WEBHOOK,
            stack.lb_url,
            kube_cluster.ca.cert_pem,
            timeout_seconds=10,
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
        )
        yield stack
    finally:
        kube_cluster.delete_validating_webhook(WEBHOOK)
        _delete_pods(kube_cluster)
        for replica in stack.replicas.values():
            replica.gate.stop()
        lb.stop()


# --------------------------------------------------------------------------- clients


def review_body(image: str, name: str = "load") -> bytes:
    obj = app_deployment(name, image, NAMESPACE)
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "operation": "CREATE",
                "namespace": NAMESPACE,
                "name": name,
                "object": obj,
                "dryRun": True,
            },
        }
    ).encode()


def post_review(url: str, ca_file: Path, image: str) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca_file))
    host, port = url.removeprefix("https://").split("/")[0].split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    try:
        conn.request("POST", "/validate", review_body(image), {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200, response.read()
        return dict(json.loads(response.read())["response"])
    finally:
        conn.close()


@dataclass
class Outcome:
    started: float
    ended: float
    admit: bool  # the right answer: admitted (good image) or refused for REFUSAL (bad)
    ok: bool
    detail: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """Requests sent from a few threads until ``stop``; what was in flight when ``mark`` ran."""

    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    marked_at: float = 0.0
    in_flight_at_mark: int = 0

    def run(self, worker: Callable[[int], Outcome], threads: int) -> list[threading.Thread]:
        counter = itertools.count()

        def loop() -> None:
            while not self.stop.is_set():
                i = next(counter)
                worker_started = time.monotonic()
                with self.lock:
                    self.in_flight[i] = worker_started
                try:
                    outcome = worker(i)
                finally:
                    with self.lock:
                        self.in_flight.pop(i, None)
                if outcome.started > 0:
                    with self.lock:
                        self.outcomes.append(outcome)

        started = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
        for thread in started:
            thread.start()
        return started

    def mark(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a kill) and note the moment and how many requests were in flight."""
        with self.lock:
            self.marked_at = time.monotonic()
            self.in_flight_at_mark = len(self.in_flight)
            action()

    def finish(self, threads: list[threading.Thread]) -> list[Outcome]:
        self.stop.set()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), "a load thread hangs"
        return sorted(self.outcomes, key=lambda o: o.started)


def _delete_pods(cluster: KubeCluster) -> None:
    """The Pods the load made (never scheduled, so deleted at once), in one call."""
    host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=_admin_context(cluster))
    try:
        conn.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods")
        response = conn.getresponse()
        assert response.status == 200, response.read()
    finally:
        conn.close()


def _admin_context(cluster: KubeCluster) -> ssl.SSLContext:
    pki = cluster.directory / "pki"
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def kube_worker(stack: Stack) -> Callable[[int], Outcome]:
    """Each call: one object through the API server, good and bad images in turn (dry-run
    Deployments; one in eight a real Pod, all with the good image: they are stored); the
    verdict is checked."""
    host, port = stack.cluster.server.removeprefix("https://").rsplit(":", 1)
    context = _admin_context(stack.cluster)
    local = threading.local()

    def call(i: int) -> Outcome:
        admit = i % 2 == 0
        image = stack.images["good" if admit else "bad"].ref
        if i % 8 != 2:
            path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments?dryRun=All"
            obj = app_deployment(f"load-{i}", image, NAMESPACE)
        else:
            path = f"/api/v1/namespaces/{NAMESPACE}/pods"
            obj = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"generateName": "load-", "namespace": NAMESPACE},
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPSConnection(
                host, int(port), context=context, timeout=30
            )
        started = time.monotonic()
        try:
            conn.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
            response = conn.getresponse()
            status, text = response.status, response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            local.conn = None
            return Outcome(started, time.monotonic(), admit, False, f"client: {exc!r}")
        ended = time.monotonic()
        if admit:
            ok = status == 201
        else:
            ok = status != 201 and "denied the request" in text and REFUSAL in text
        return Outcome(started, ended, admit, ok, f"{status} {text[:300]}")

    return call


def direct_worker(stack: Stack, rate: float, t0: float) -> Callable[[int], Outcome]:
    """Each call: one AdmissionReview to the balancer at its slot in a ``rate``/s schedule,
    on keep-alive connections (urllib3: a connection the far end closed is not reused; no
    retries, so every failure counts)."""
    pool = urllib3.HTTPSConnectionPool(
        "127.0.0.1",
        stack.lb.port,
        maxsize=16,
        block=True,
        ca_certs=str(stack.cluster.ca_file),
        cert_reqs="CERT_REQUIRED",
        retries=False,
        timeout=urllib3.Timeout(connect=5, read=15),
    )
    bodies = {admit: review_body(stack.images["good" if admit else "bad"].ref) for admit in (1, 0)}

    def call(i: int) -> Outcome:
        admit = i % 2 == 0
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        try:
            response = pool.request(
                "POST",
                "/validate",
                body=bodies[admit],
                headers={"Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(started, time.monotonic(), admit, False, f"client: {exc!r}")
        ended = time.monotonic()
        if response.status != 200:
            return Outcome(started, ended, admit, False, f"{response.status}")
        answer = json.loads(response.data)["response"]
        message = (answer.get("status") or {}).get("message", "")
        ok = answer["allowed"] if admit else (not answer["allowed"] and REFUSAL in message)
        return Outcome(started, ended, admit, ok, message[:200])

    return call


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(outcomes: list[Outcome], load: Load, down_after: float) -> dict[str, Any]:
    kill = load.marked_at
    failover = [o for o in outcomes if kill <= o.started <= kill + down_after]
    return {
        "requests": len(outcomes),
        "failures": sum(not o.ok for o in outcomes),
        "in_flight_at_kill": load.in_flight_at_mark,
        "p50_ms": round(1000 * statistics.median(o.seconds for o in outcomes), 1),
        "p99_ms": round(1000 * percentile([o.seconds for o in outcomes], 0.99), 1),
        "failover_requests": len(failover),
        "failover_p50_ms": round(1000 * percentile([o.seconds for o in failover], 0.5), 1),
        "failover_max_ms": round(1000 * max((o.seconds for o in failover), default=0.0), 1),
        "marked_down_after_ms": round(1000 * down_after),
    }


# The connections a client holds to the killed replica (through the balancer) close a few ms
# after the kill: a review sent on one in that moment is lost like one in flight.
CLOSE_WINDOW = 0.25
# What a lost review looks like: its connection closed with no answer. The API server (Go)
# says EOF, or "use of closed network connection" when it had just seen the close itself.
CONNECTION_LOST = (
    "EOF",
    "use of closed network connection",
    "connection reset",
    "broken pipe",
    "server closed idle connection",
    "RemoteDisconnected",
    "Connection reset",
    "Broken pipe",
)


def assert_only_in_flight_failed(outcomes: list[Outcome], load: Load) -> dict[str, int]:
    """Every failure is a review on a connection to the killed replica (closed with no
    answer): in flight at the kill, or sent within CLOSE_WINDOW of it, before the close reached
    the client; every review begun after that got the right answer, both verdicts among them.
    Returns the failures by kind."""
    kill = load.marked_at
    failures = [o for o in outcomes if not o.ok]
    for failure in failures:
        assert any(m in failure.detail for m in CONNECTION_LOST), (
            f"{failure.started - kill:+.3f} s: {failure.detail}"
        )
        assert failure.ended >= kill and failure.started <= kill + CLOSE_WINDOW, (
            f"failed outside the kill ({failure.started - kill:+.3f} s .. "
            f"{failure.ended - kill:+.3f} s): {failure.detail}"
        )
    in_flight = sum(o.started <= kill for o in failures)
    assert in_flight <= load.in_flight_at_mark
    later = [o for o in outcomes if o.started > kill + CLOSE_WINDOW]
    assert all(o.ok for o in later)
    assert {o.admit for o in later} == {True, False}, "too few requests after the kill"
    return {"lost_in_flight": in_flight, "lost_on_closing_connection": len(failures) - in_flight}


def _kill(replica: Replica, sig: int) -> Callable[[], None]:
    return lambda: os.kill(replica.gate.process.pid, sig)


# --------------------------------------------------------------------------- tests


def test_sigkill_under_api_server_load_costs_only_the_reviews_in_flight(stack: Stack) -> None:
    stack.both_up()
    load = Load()
    threads = load.run(kube_worker(stack), threads=4)
    time.sleep(5)
    victim = stack.replicas["r1"]
    load.mark(_kill(victim, signal.SIGKILL))
    down_after, row = stack.lb.wait_for("r1", "DOWN", 10)
    time.sleep(5)
    outcomes = load.finish(threads)
    assert victim.gate.process.wait(5) == -signal.SIGKILL
    stats = figures(outcomes, load, down_after)
    lost = assert_only_in_flight_failed(outcomes, load)
    print(f"kill -9 under API server load: {stats | lost}; HAProxy: {row['check_status']}")
    for failure in (o for o in outcomes if not o.ok):
        print(f"  failed {failure.started - load.marked_at:+.3f} s: {failure.detail[:220]}")
    assert stats["requests"] >= 20


def test_sigkill_at_100_reviews_per_second(stack: Stack) -> None:
    stack.both_up()
    load = Load()
    threads = load.run(direct_worker(stack, rate=100, t0=time.monotonic()), threads=12)
    time.sleep(3)
    victim = stack.replicas["r2"]
    load.mark(_kill(victim, signal.SIGKILL))
    down_after, row = stack.lb.wait_for("r2", "DOWN", 10)
    time.sleep(3)
    outcomes = load.finish(threads)
    stats = figures(outcomes, load, down_after)
    lost = assert_only_in_flight_failed(outcomes, load)
    print(f"kill -9 at 100/s: {stats | lost}; HAProxy: {row['check_status']} {row['check_desc']}")
    for failure in (o for o in outcomes if not o.ok):
        print(f"  failed {failure.started - load.marked_at:+.3f} s: {failure.detail}")
    assert stats["requests"] >= 300


def test_sigterm_drains_without_a_failure(stack: Stack) -> None:
    stack.both_up()
    kube, direct = Load(), Load()
    threads = kube.run(kube_worker(stack), threads=3)
    direct_threads = direct.run(direct_worker(stack, rate=50, t0=time.monotonic()), threads=6)
    time.sleep(3)
    victim = stack.replicas["r1"]
    kube.mark(_kill(victim, signal.SIGTERM))
    direct.marked_at, direct.in_flight_at_mark = kube.marked_at, len(direct.in_flight)
    down_after, row = stack.lb.wait_for("r1", "DOWN", 10)
    # Unready while still running: HAProxy saw /readyz answer 503 (L7STS), not a refused
    # connection (L4CON).
    assert row["check_status"] == "L7STS", row
    exit_code = victim.gate.process.wait(20)
    exited_after = time.monotonic() - kube.marked_at
    time.sleep(1)
    outcomes = kube.finish(threads)
    direct_outcomes = direct.finish(direct_threads)
    print(
        f"SIGTERM: marked down after {down_after * 1000:.0f} ms ({row['check_desc']}), "
        f"exited {exit_code} after {exited_after:.2f} s; API server load "
        f"{figures(outcomes, kube, down_after)}; direct {figures(direct_outcomes, direct, down_after)}"
    )
    failures = [o for o in outcomes + direct_outcomes if not o.ok]
    assert failures == []
    assert {o.admit for o in outcomes if o.started > kube.marked_at + exited_after} == {True, False}
