"""Health never waits behind reviews, and every review is answered before the API server's
timeout, however many arrive at once.

A real registry behind toxiproxy answers each request 3 s late, so no image check can finish
within the admission deadline. Then:

- `sbomgate serve` (the real process, over TLS, the chart's deadlines: admissionDeadline 8 s,
  webhook timeoutSeconds 10 s) gets 48 concurrent reviews of 48 different images: each is
  answered within 10 s ("cannot verify", naming what did not finish), and `/healthz`, asked
  every 100 ms meanwhile, answers within 1 s every time (the liveness probe allows 3 s);
- with fewer review threads than reviews (the app with 4 slots, a 3 s deadline), the reviews
  that cannot start in time are answered "could not be checked in time: cannot verify" before
  their deadline, and one in an exempt namespace is still admitted.

The bounds are the requirements (timeoutSeconds, a 1 s health answer), not performance claims.
Run with -s to see the figures.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sbomgate.config import ImageReferences, ServeConfig
from sbomgate.runtime import build_controller
from sbomgate.serving.app import create_app
from sbomgate.serving.metrics import Metrics
from support.index_servers import free_port
from support.oci_builder import PushedImage, offline_trust_file, push_image
from support.paths import FACTS
from support.registry_servers import RegistryServer, make_test_ca
from support.toxiproxy import Proxy, Toxiproxy

# CPU time, deadlines and in-flight bounds: run after the parallel tests, alone (Makefile).
pytestmark = pytest.mark.alone

REVIEWS = 48
TIMEOUT_SECONDS = 10.0  # the chart's webhook timeoutSeconds: the API server gives up after it
HEALTH_SECONDS = 1.0  # /healthz must answer within this while reviews run
LATENCY_MS = 3000  # every registry answer, this late


@pytest.fixture(scope="module")
def many(plain_registry: RegistryServer) -> list[PushedImage]:
    return [
        push_image(plain_registry, f"load/app-{n}", "v1", seed=f"load-{n}") for n in range(REVIEWS)
    ]


@pytest.fixture
def slow(toxiproxy: Toxiproxy, plain_registry: RegistryServer) -> Proxy:
    proxy = toxiproxy.create(f"slow-{uuid.uuid4().hex[:8]}", plain_registry.host)
    proxy.add_toxic("latency", latency=LATENCY_MS)
    return proxy


def review(image: str, namespace: str = "team") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": namespace,
            "name": "web",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "dryRun": False,
            "userInfo": {"username": "tester"},
        },
    }


@dataclass
class Answer:
    body: dict[str, Any]
    seconds: float

    @property
    def response(self) -> dict[str, Any]:
        response: dict[str, Any] = self.body["response"]
        return response

    @property
    def message(self) -> str:
        return str(self.response.get("status", {}).get("message", ""))


@dataclass
class Endpoint:
    """Where the webhook listens: a fresh connection per call, as the API server's are."""

    port: int
    context: ssl.SSLContext | None = None

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.context is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=timeout
        )

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        started = time.monotonic()
        conn = self.connection(timeout=60)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), time.monotonic() - started
        finally:
            conn.close()

    def validate(self, body: dict[str, Any]) -> Answer:
        status, raw, seconds = self.call("POST", "/validate", json.dumps(body).encode())
        assert status == 200, raw[:500]
        answer = Answer(json.loads(raw), seconds)
        assert answer.response["uid"] == body["request"]["uid"]
        return answer


@dataclass
class HealthProbe:
    """GET /healthz (and /readyz, /metrics) every 100 ms on a thread, timing each answer."""

    endpoint: Endpoint
    seconds: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        paths = ["/healthz", "/healthz", "/readyz", "/healthz", "/metrics"]
        n = 0
        while not self._stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            try:
                status, _, seconds = self.endpoint.call("GET", path)
            except OSError as exc:
                self.failures.append(f"{path}: {exc!r}")
                continue
            if status != 200:
                self.failures.append(f"{path}: {status}")
            self.seconds.setdefault(path, []).append(seconds)
            self._stop.wait(0.1)


def storm(endpoint: Endpoint, bodies: list[dict[str, Any]]) -> tuple[list[Answer], float]:
    """Every review at once, each on its own connection; (answers, seconds for all)."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(endpoint.validate, bodies))
    return answers, time.monotonic() - started


def report(title: str, answers: list[Answer], probe: HealthProbe) -> None:
    latencies = sorted(a.seconds for a in answers)
    health = probe.seconds.get("/healthz", [])
    print(
        f"\n{title}: {len(answers)} reviews, answered in {latencies[0]:.2f}-{latencies[-1]:.2f} s"
        f" (median {latencies[len(latencies) // 2]:.2f} s); /healthz {len(health)} times, max "
        f"{max(health, default=0):.3f} s; /readyz max "
        f"{max(probe.seconds.get('/readyz', [0])):.3f} s; /metrics max "
        f"{max(probe.seconds.get('/metrics', [0])):.3f} s"
    )


# -- sbomgate serve: 48 reviews against a slow registry -----------------------------------------


@dataclass
class Served:
    endpoint: Endpoint
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def serve(work: Path, registry: str) -> Served:
    ca = make_test_ca(work / "ca")
    port = free_port()
    config = work / "serve.yaml"
    config.write_text(
        json.dumps(
            {
                "trustPolicies": [str(offline_trust_file(work))],
                "facts": str(FACTS),
                "allowedRegistries": [registry],
                "insecureRegistries": [registry],
                "admissionDeadline": 8,  # the chart's: below its timeoutSeconds 10
                "tls": {"certFile": str(ca.cert_file), "keyFile": str(ca.key_file)},
                "listen": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = work / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(
        Endpoint(port, ssl.create_default_context(cafile=str(ca.ca_file))), process, log
    )
    until = time.monotonic() + 60
    while True:
        try:
            if served.endpoint.call("GET", "/readyz")[0] == 200:
                return served
        except OSError:
            pass
        if time.monotonic() > until or process.poll() is not None:
            served.stop()
            raise AssertionError(f"sbomgate serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_48_reviews_against_a_slow_registry_are_answered_in_time_and_health_never_waits(
    slow: Proxy, many: list[PushedImage], work: Path
) -> None:
    served = serve(work / "serve", slow.listen)
    try:
        bodies = [review(f"{slow.listen}/{image.repo}@{image.digest}") for image in many]
        with HealthProbe(served.endpoint) as probe:
            time.sleep(0.3)  # the probe is answering before the storm
            answers, _ = storm(served.endpoint, bodies)
        report("sbomgate serve, slow registry", answers, probe)

        for answer in answers:
            assert answer.response["allowed"] is False
            assert "cannot verify" in answer.message and "[policy" not in answer.message
            assert answer.seconds < TIMEOUT_SECONDS, (answer.seconds, answer.message)
        assert not probe.failures, probe.failures
        health = probe.seconds["/healthz"]
        assert len(health) >= 20  # asked all along the storm, not after it
        assert max(health) < HEALTH_SECONDS, sorted(health)[-5:]
        assert max(probe.seconds["/readyz"]) < HEALTH_SECONDS
        assert max(probe.seconds["/metrics"]) < HEALTH_SECONDS
    finally:
        served.stop()
    assert "Traceback" not in served.log.read_text(), served.log.read_text()[-3000:]


# -- more reviews than review threads: the late ones are answered in time ------------------------


class InProcess:
    """The webhook app on uvicorn in this process (plain HTTP), with few review slots."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        until = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < until, "uvicorn did not start"
            time.sleep(0.02)
        self.endpoint = Endpoint(int(self.server.servers[0].sockets[0].getsockname()[1]))

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def few_slots(slow: Proxy, work: Path) -> Iterator[Callable[[int], InProcess]]:
    made: list[tuple[InProcess, Any]] = []

    def make(slots: int) -> InProcess:
        config = ServeConfig(
            trust_policies=(offline_trust_file(work),),
            facts=FACTS,
            allowed_registries=(slow.listen,),
            insecure_registries=(slow.listen,),
            admission_deadline=3.0,
            image_references=ImageReferences.PIN,
        )
        controller = build_controller(config, Metrics())
        ready = threading.Event()
        ready.set()
        served = InProcess(create_app(controller, Metrics(), ready=ready, review_slots=slots))
        made.append((served, controller))
        return served

    yield make
    for served, controller in made:
        served.close()
        controller.close()
        controller.checker.client.close()


def test_reviews_that_cannot_start_in_time_are_answered_before_the_deadline(
    few_slots: Callable[[int], InProcess], slow: Proxy, many: list[PushedImage]
) -> None:
    served = few_slots(4)
    deadline = 3.0
    bodies = [review(f"{slow.listen}/{image.repo}@{image.digest}") for image in many[:16]]
    exempt = review(f"{slow.listen}/{many[16].repo}:v1", namespace="kube-system")
    with HealthProbe(served.endpoint) as probe:
        time.sleep(0.3)
        answers, _ = storm(served.endpoint, [*bodies, exempt])
    report("4 review slots, 3 s deadline", answers, probe)

    *checked, skipped = answers
    assert skipped.response["allowed"] is True  # exempt: admitted even when late
    late = [a for a in checked if "could not be checked in time" in a.message]
    # At most two waves of 4 started: the first wave's slots free at its deadline, and a review
    # that arrived a little later (a busy client) may still take one before its own deadline.
    # Without the limit, every review would start and none would be late.
    assert len(late) >= len(checked) - 2 * 4, [a.message for a in checked]
    for answer in checked:
        assert answer.response["allowed"] is False
        assert "cannot verify" in answer.message and "[policy" not in answer.message
        assert answer.seconds < deadline + 1.0, (answer.seconds, answer.message)
    for answer in late:
        (line,) = answer.message.splitlines()
        assert line.startswith("Pod team/web could not be checked in time: it waited ")
        assert line.endswith(": cannot verify (retry shortly)")
        assert (
            "of the 3 s admission deadline for sbomgate to start on it (too many reviews at "
            in line
        )
    assert max(probe.seconds["/healthz"]) < HEALTH_SECONDS
