"""The admission webhook: decisions against a real registry with real cosign attestations,
the HTTP surface (FastAPI), and `sbomgate serve` over real TLS.

The end-to-end path through a real kube-apiserver is in test_e2e_kubernetes.py.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sbomgate.admission import AdmissionController
from sbomgate.config import Faults, ImageReferences, Mode, ServeConfig
from sbomgate.runtime import build_controller
from sbomgate.serving.app import create_app
from sbomgate.serving.metrics import Metrics
from support.fault_server import FaultServer
from support.net import free_port
from support.oci_builder import CosignKey, PushedImage
from support.paths import FACTS
from support.registry_servers import RegistryServer, make_test_ca
from support.trust import trust_file
from support.workloads import answer, deployment, review


def make_config(
    server: RegistryServer, key: CosignKey, work: Path, **overrides: Any
) -> ServeConfig:
    base = ServeConfig(
        trust_policies=(trust_file(work, keys=[key]),),
        facts=FACTS,
        allowed_registries=(server.host,),
        insecure_registries=(server.host,),
        exempt_namespaces=("kube-system", "sbomgate"),
        # Tags judged as given: these tests are about decisions. Pinning (the default) is
        # test_mutate.py's, with /mutate in front as the API server puts it.
        image_references=ImageReferences.RESOLVE,
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def controller_for(plain_registry: RegistryServer, key: CosignKey, work: Path) -> Iterator[Any]:
    made: list[AdmissionController] = []

    def make(**overrides: Any) -> AdmissionController:
        controller = build_controller(
            make_config(plain_registry, key, work, **overrides), Metrics()
        )
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()
        controller.checker.client.close()


# -- decisions ----------------------------------------------------------------------------


def test_good_image_is_admitted_bad_one_refused_with_image_package_and_policy(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    good = answer(controller, review(deployment(hook_images["good"].ref)))
    assert good["allowed"] is True and "status" not in good
    bad = answer(controller, review(deployment(hook_images["good"].ref, hook_images["bad"].ref)))
    assert bad["allowed"] is False and bad["status"]["code"] == 403
    lines = bad["status"]["message"].splitlines()
    pinned = f"{hook_images['bad'].server.host}/hook/bad@{hook_images['bad'].digest}"
    assert any(
        line.startswith(
            f"image {pinned} (spec.template.spec.containers[1]): package pkg:pypi/reqeusts@2.31.0: "
        )
        and line.endswith("[policy unverified]")
        for line in lines
    ), lines
    assert any("[policy malware]" in line for line in lines)
    assert not any("hook/good" in line for line in lines)


def test_unsigned_and_refused_images_say_why(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    out = answer(controller, review(deployment(hook_images["unsigned"].ref)))
    assert out["allowed"] is False
    message = out["status"]["message"]
    assert "(spec.template.spec.containers[0]): no verified sbom attestation" in message
    assert hook_images["unsigned"].digest in message


@pytest.mark.parametrize(
    ("kind", "api_version", "wrap"),
    [
        ("Pod", "v1", lambda spec: {"spec": spec}),
        ("ReplicaSet", "apps/v1", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("StatefulSet", "apps/v1", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("DaemonSet", "apps/v1", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("Job", "batch/v1", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("ReplicationController", "v1", lambda spec: {"spec": {"template": {"spec": spec}}}),
        (
            "CronJob",
            "batch/v1",
            lambda spec: {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}},
        ),
    ],
)
def test_every_kind_is_gated_including_init_containers(
    controller_for: Any, hook_images: dict[str, PushedImage], kind: str, api_version: str, wrap: Any
) -> None:
    controller = controller_for()
    spec = {
        "initContainers": [{"name": "init", "image": hook_images["unsigned"].ref}],
        "containers": [{"name": "app", "image": hook_images["good"].ref}],
    }
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "team"}}
    obj.update(wrap(spec))
    out = answer(controller, review(obj))
    assert out["allowed"] is False
    assert ".initContainers[0]): no verified sbom attestation" in out["status"]["message"]


def test_ephemeral_containers_subresource_is_gated(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {
            "containers": [{"name": "app", "image": hook_images["good"].ref}],
            "ephemeralContainers": [{"name": "debugger", "image": hook_images["unsigned"].ref}],
        },
    }
    out = answer(controller, review(pod, operation="UPDATE", sub_resource="ephemeralcontainers"))
    assert out["allowed"] is False
    assert "spec.ephemeralContainers[0]" in out["status"]["message"]
    status = answer(controller, review(pod, operation="UPDATE", sub_resource="status"))
    assert status["allowed"] is True


def test_exempt_namespaces_and_other_operations_make_no_registry_call(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    before = controller.checker.client.requests
    assert answer(
        controller, review(deployment(hook_images["unsigned"].ref, namespace="kube-system"))
    )["allowed"]
    assert answer(controller, review(deployment(hook_images["unsigned"].ref), operation="DELETE"))[
        "allowed"
    ]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "team"},
    }
    assert answer(controller, review(configmap))["allowed"]
    assert controller.checker.client.requests == before


def test_the_controllers_own_namespace_is_exempt(
    controller_for: Any, hook_images: dict[str, PushedImage], monkeypatch: Any
) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "sbomgate-system")
    controller = controller_for()
    assert "sbomgate-system" in controller.config.exempt_namespaces
    out = answer(
        controller, review(deployment(hook_images["unsigned"].ref, namespace="sbomgate-system"))
    )
    assert out["allowed"] is True


def test_dry_run_is_answered_like_the_real_request(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    real = answer(controller, review(deployment(hook_images["bad"].ref)))
    dry = answer(controller, review(deployment(hook_images["bad"].ref), dry_run=True))
    assert dry["allowed"] is real["allowed"] is False
    assert dry["status"]["message"] == real["status"]["message"]


def test_warn_and_audit_modes_and_per_policy_modes(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    warn = answer(controller_for(mode=Mode.WARN), review(deployment(hook_images["bad"].ref)))
    assert warn["allowed"] is True
    assert any("[policy malware]" in w for w in warn["warnings"])
    assert all(len(w) <= 256 for w in warn["warnings"])

    audit = answer(controller_for(mode=Mode.AUDIT), review(deployment(hook_images["bad"].ref)))
    assert audit["allowed"] is True and "warnings" not in audit

    relaxed = controller_for(
        policy_modes={"unverified": Mode.WARN, "malware": Mode.WARN, "vulnerability": Mode.WARN}
    )
    out = answer(relaxed, review(deployment(hook_images["bad"].ref)))
    assert out["allowed"] is False  # the license violation is still enforced
    header, only = out["status"]["message"].splitlines()
    assert header.startswith("sbomgate refused") and "[policy license]" in only
    assert any("[policy malware]" in w for w in out["warnings"])


def test_message_is_capped_with_and_n_more(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    out = answer(controller_for(max_message_lines=2), review(deployment(hook_images["bad"].ref)))
    lines = out["status"]["message"].splitlines()
    assert lines[0] == "sbomgate refused Deployment team/web:"
    assert len(lines) == 4 and lines[-1] == "and 2 more"


def test_malformed_objects_are_refused_with_the_field(controller_for: Any) -> None:
    controller = controller_for()
    broken = deployment("x")
    broken["spec"]["template"]["spec"]["containers"] = [{"name": "app"}]
    out = answer(controller, review(broken))
    assert out["allowed"] is False
    assert "spec.template.spec.containers[0].image is missing" in out["status"]["message"]


def test_warm_reviews_use_the_caches(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    controller = controller_for()
    ref = f"{hook_images['good'].server.host}/hook/good@{hook_images['good'].digest}"
    assert answer(controller, review(deployment(ref)))["allowed"]
    requests = controller.checker.client.requests
    evaluations = []
    evaluate = controller._evaluate
    controller._evaluate = lambda *a: evaluations.append(a) or evaluate(*a)  # type: ignore[method-assign]
    for n in range(20):
        assert answer(controller, review(deployment(ref, name=f"w{n}")))["allowed"]
    assert controller.checker.client.requests == requests  # digest refs: no registry call
    assert evaluations == []  # the verdict cache answered: no re-evaluation


def test_a_verdict_in_use_is_evaluated_again_before_it_expires(
    controller_for: Any, hook_images: dict[str, PushedImage]
) -> None:
    from sbomgate._internal.cache import DigestCache

    now = [1000.0]
    controller = controller_for()
    controller.verdicts = DigestCache(ttl=300.0, negative_ttl=30.0, clock=lambda: now[0])
    evaluations: list[float] = []
    evaluate = controller._evaluate
    controller._evaluate = lambda *a: evaluations.append(now[0]) or evaluate(*a)  # type: ignore[method-assign]
    ref = f"{hook_images['good'].server.host}/hook/good@{hook_images['good'].digest}"
    assert answer(controller, review(deployment(ref)))["allowed"]
    assert evaluations == [1000.0]
    now[0] += 200.0  # 100 s left: not yet
    assert answer(controller, review(deployment(ref)))["allowed"]
    now[0] += 50.0  # 50 s left, within the last fifth of the TTL: answered from the cache ...
    assert answer(controller, review(deployment(ref)))["allowed"]
    deadline = time.monotonic() + 30
    while len(evaluations) < 2:  # ... and evaluated again in the background
        assert time.monotonic() < deadline, "no refresh"
        time.sleep(0.05)
    assert evaluations == [1000.0, 1250.0]
    now[0] += 200.0  # past the first verdict's expiry, within the refreshed one's TTL
    assert answer(controller, review(deployment(ref)))["allowed"]
    assert len(evaluations) == 2


# -- faults and deadlines ---------------------------------------------------------------------


def test_unreachable_registry_is_a_fault_not_a_policy_failure(
    controller_for: Any, work: Path, key: CosignKey
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = f"127.0.0.1:{port}"
    controller = controller_for(allowed_registries=(host,), insecure_registries=(host,))
    out = answer(controller, review(deployment(f"{host}/acme/app:v1")))
    assert out["allowed"] is False
    assert "unreachable" in out["status"]["message"] and "cannot verify" in out["status"]["message"]
    assert "[policy" not in out["status"]["message"]

    tolerant = controller_for(
        allowed_registries=(host,), insecure_registries=(host,), faults=Faults.ALLOW
    )
    out = answer(tolerant, review(deployment(f"{host}/acme/app:v1")))
    assert out["allowed"] is True and "unreachable" in out["warnings"][0]


def test_a_trusted_source_that_cannot_be_asked_is_a_fault(
    controller_for: Any, hook_images: dict[str, PushedImage], work: Path
) -> None:
    port = free_port()  # nothing listens: connections are refused
    source = {"name": "internal-pypi", "kind": "pypi", "url": f"http://127.0.0.1:{port}/simple/"}
    no_facts = work / "no-facts.yaml"
    no_facts.write_text("packages: {}\n")  # so every package is asked about
    controller = controller_for(facts=no_facts, trusted_sources=(source,))
    out = answer(controller, review(deployment(hook_images["good"].ref)))
    assert out["allowed"] is False
    message = out["status"]["message"]
    assert "no trusted repository could be asked about it" in message
    assert "cannot verify" in message
    # PyPI packages (the source that could not be asked) are faults, never "not found"; the
    # image also lists npm packages, for which no trusted repository is configured at all.
    pypi_lines = [line for line in message.splitlines() if "pkg:pypi/" in line]
    assert pypi_lines
    assert all("[policy" not in line for line in pypi_lines)

    tolerant = controller_for(facts=no_facts, trusted_sources=(source,), faults=Faults.ALLOW)
    out = answer(tolerant, review(deployment(hook_images["good"].ref)))
    # `faults: Allow` turns the faults into warnings (the npm findings still deny).
    assert any("no trusted repository could be asked" in w for w in out["warnings"])
    assert "no trusted repository could be asked" not in out["status"]["message"]


def test_the_deadline_is_kept_when_a_registry_hangs(controller_for: Any) -> None:
    server = FaultServer(lambda handler: time.sleep(6))
    try:
        controller = controller_for(
            allowed_registries=(server.host,),
            insecure_registries=(server.host,),
            admission_deadline=1.0,
        )
        started = time.monotonic()
        out = answer(controller, review(deployment(f"{server.host}/acme/app:v1")))
        elapsed = time.monotonic() - started
        assert out["allowed"] is False
        assert "cannot verify" in out["status"]["message"]
        assert elapsed < 6  # answered at the deadline, not when the registry finally replied
    finally:
        server.close()


# -- the HTTP surface -----------------------------------------------------------------------


def test_http_routes(controller_for: Any, hook_images: dict[str, PushedImage]) -> None:
    controller = controller_for()
    metrics = controller.observer
    assert isinstance(metrics, Metrics)
    ready = threading.Event()
    client = TestClient(create_app(controller, metrics, ready=ready))
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").status_code == 503
    assert client.post("/validate", content=b"{}").status_code == 503
    ready.set()
    assert client.get("/readyz").status_code == 200

    body = review(deployment(hook_images["good"].ref))
    out = client.post("/validate", json=body)
    assert out.status_code == 200 and out.json()["response"]["allowed"] is True
    assert client.post("/validate", content=b"not json").status_code == 400
    assert client.post("/validate", json={"kind": "AdmissionReview"}).status_code == 400
    assert client.post("/validate", content=b"x" * (9 << 20)).status_code == 413
    # The review routes take POST only, as FastAPI's routes did; the others are still routed.
    for path in ("/validate", "/mutate", "/validate-policy"):
        refused = client.get(path)
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert client.post("/healthz").status_code == 405
    assert client.post("/nowhere", content=b"{}").status_code == 404

    text = client.get("/metrics").text
    assert (
        'sbomgate_admission_requests_total{decision="allowed",kind="Deployment",operation="CREATE"} 1.0'
        in text
    )
    assert "sbomgate_admission_duration_seconds_bucket" in text
    assert (
        f'sbomgate_registry_requests_total{{code="200",host="{hook_images["good"].server.host}"}}'
        in text
    )
    assert "sbomgate_policy_evaluation_seconds_count" in text


def test_bug_in_review_denies_with_a_valid_answer(controller_for: Any, monkeypatch: Any) -> None:
    controller = controller_for()
    ready = threading.Event()
    ready.set()
    client = TestClient(create_app(controller, controller.observer, ready=ready))

    def boom(request: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(controller, "decide", boom)
    body = review(deployment("x"))
    out = client.post("/validate", json=body).json()
    assert out["response"]["uid"] == body["request"]["uid"]
    assert out["response"]["allowed"] is False
    assert "internal error (RuntimeError)" in out["response"]["status"]["message"]


def test_a_bug_outside_the_review_is_a_500_not_a_dropped_connection(
    controller_for: Any, monkeypatch: Any
) -> None:
    # The review routes are dispatched before FastAPI's routing (serving/app.py): a bug in
    # reading the body still reaches the outermost error layer, which answers 500 (the API
    # server's failurePolicy then decides), and the next review is answered as before.
    from sbomgate.serving import handlers

    controller = controller_for()
    ready = threading.Event()
    ready.set()
    client = TestClient(
        create_app(controller, controller.observer, ready=ready), raise_server_exceptions=False
    )
    calls = []

    def boom(raw: bytes) -> Any:
        calls.append(raw)
        raise RuntimeError("bug")

    monkeypatch.setattr(handlers, "parse_body", boom)
    for path in ("/validate", "/mutate"):
        answered = client.post(path, json=review(deployment("x")))
        # Starlette's ServerErrorMiddleware wrote this (the test client's own stand-in for an
        # app that raised has no body).
        assert (answered.status_code, answered.text) == (500, "Internal Server Error")
    assert len(calls) == 2
    monkeypatch.undo()
    assert client.post("/validate", content=b"not json").status_code == 400


# -- sbomgate serve over real TLS -------------------------------------------------------------


def _serial(port: int, ca_file: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_serve_https_only_tls12_and_certificate_reload(
    plain_registry: RegistryServer, key: CosignKey, work: Path, hook_images: dict[str, PushedImage]
) -> None:
    ca = make_test_ca(work / "serve-ca")
    tls_dir = work / "serve-tls"
    tls_dir.mkdir(exist_ok=True)
    cert, tls_key = tls_dir / "tls.crt", tls_dir / "tls.key"
    cert.write_bytes(ca.cert_file.read_bytes())
    tls_key.write_bytes(ca.key_file.read_bytes())
    port = free_port()
    config = work / "sbomgate.yaml"
    config.write_text(
        json.dumps(
            {
                "trustPolicies": [str(trust_file(work, keys=[key]))],
                "facts": str(FACTS),
                "allowedRegistries": [plain_registry.host],
                "insecureRegistries": [plain_registry.host],
                "tls": {"certFile": str(cert), "keyFile": str(tls_key)},
                "listen": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    log = (work / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        context = ssl.create_default_context(cafile=str(ca.ca_file))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/readyz", context=context, timeout=2
                ) as r:
                    assert r.read() == b"ready"
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((work / "serve.log").read_text()) from None
                time.sleep(0.2)
        body = json.dumps(review(deployment(hook_images["bad"].ref))).encode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/validate",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as r:
            out = json.loads(r.read())
        assert out["response"]["allowed"] is False

        # No plaintext listener.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        # TLS 1.1 is refused.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port)) as raw:
            old.wrap_socket(raw).close()

        # A new certificate (same CA) is picked up without a restart.
        first = _serial(port, ca.ca_file)
        renewed = make_test_ca(work / "serve-ca-2")
        context2_ca = renewed.ca_file
        cert.write_bytes(renewed.cert_file.read_bytes())
        tls_key.write_bytes(renewed.key_file.read_bytes())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _serial(port, context2_ca) != first:
                    break
            except ssl.SSLError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("certificate was not reloaded")
        logs = [
            json.loads(line)
            for line in (work / "serve.log").read_text().splitlines()
            if line.startswith("{")
        ]
        assert any(
            entry.get("message") == "admission" and entry.get("allowed") is False for entry in logs
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
