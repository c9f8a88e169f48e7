"""Hostile sizes and shapes (issue 7): each gets bounded memory and time and a clear, specific
refusal, and the process stays healthy afterwards.

Real components where the shape can be made for real (the webhook over real HTTP, the real
registries, real cosign attestations); small hostile HTTP servers on loopback for what a real
registry will not do (lie about sizes and digests, compress, loop). Every test prints what it
measured as a `FIGURE` line (`pytest -s tests/integration/serving/test_limits.py | grep FIGURE`); the assertions
on time and memory are generous bounds on runaways, not benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import json
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from sbomgate.admission import AdmissionController
from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.attest.envelope import FormatError, parse_envelope, parse_statement
from sbomgate.config import ServeConfig
from sbomgate.errors import PolicyLoadError, SbomError
from sbomgate.imagecheck import ImageChecker, ImageResult
from sbomgate.policy import PolicyEngine, load_policy
from sbomgate.registry import RegistryAccess, RegistryClient
from sbomgate.registry.oci import DSSE_ENVELOPE, OCI_INDEX, OCI_MANIFEST
from sbomgate.runtime import build_controller
from sbomgate.sbom import Component, Sbom, parse_sbom
from sbomgate.serving import body as serving_body
from sbomgate.serving.app import create_app
from sbomgate.serving.body import MAX_BODY_BYTES
from sbomgate.serving.metrics import Metrics
from sbomgate.workload import MAX_CONTAINERS, MAX_DISTINCT_IMAGES
from support.oci_builder import (
    CosignKey,
    OciClient,
    PushedImage,
    canonical_json,
    cosign_attest,
    offline_trust_file,
    push_image,
    sha256_digest,
)
from support.paths import FACTS, GOOD_SBOM
from support.registry_servers import RegistryServer, start_referrers_registry
from support.trust import trust_file

MiB = 1 << 20
API = "admission.k8s.io/v1"


# -- measuring -------------------------------------------------------------------------------


@contextlib.contextmanager
def measured(case: str) -> Iterator[dict[str, Any]]:
    """Time and peak traced memory (every thread of this process) of the block; printed."""
    out: dict[str, Any] = {}
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - started
        out["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        outcome = str(out.get("outcome", "")).replace("\n", " | ")[:300]
        print(
            f"\nFIGURE {case}: {out['seconds']:.3f} s, peak {out['peak'] / MiB:.1f} MiB: {outcome}"
        )


# -- the webhook over real HTTP ----------------------------------------------------------------


class _Uvicorn:
    """The webhook app served by uvicorn on loopback (plain HTTP: TLS is test_webhook_tls.py's)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=120,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def healthy(self) -> bool:
        return self.request("GET", "/healthz") == (200, b"ok")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def hook(work: Path) -> Iterator[_Uvicorn]:
    """The webhook, with no registry it may reach: every image is refused before any call."""
    metrics = Metrics()
    controller = build_controller(
        ServeConfig(
            trust_policies=(offline_trust_file(work),), allowed_registries=("registry.invalid",)
        ),
        metrics,
    )
    ready = threading.Event()
    ready.set()
    server = _Uvicorn(create_app(controller, metrics, ready=ready))
    yield server
    server.close()
    controller.close()
    controller.checker.client.close()


def deployment(*images: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team", "annotations": annotations or {}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": f"c{i}", "image": ref} for i, ref in enumerate(images)]
                },
            },
        },
    }


def review(obj: dict[str, Any], *, operation: str = "CREATE", old: Any = None) -> dict[str, Any]:
    """An AdmissionReview as the API server writes it: `uid` first in `request`."""
    group, _, version = obj["apiVersion"].rpartition("/")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "operation": operation,
        "namespace": "team",
        "name": obj["metadata"]["name"],
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "userInfo": {"username": "tester"},
    }
    return {"kind": "AdmissionReview", "apiVersion": API, "request": request}


def _answer(status: int, raw: bytes, uid: str) -> dict[str, Any]:
    assert status == 200, raw[:500]
    out = orjson.loads(raw)
    assert out["apiVersion"] == API and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == uid
    return dict(out["response"])


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from a raw socket (Content-Length framed, as uvicorn sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


def _post_head(port: int, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = ["POST /validate HTTP/1.1", "Host: sbomgate", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _review_head(uid: str) -> bytes:
    """The start of an AdmissionReview, as the API server writes it."""
    return (
        b'{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"'
        + uid.encode()
        + b'","kind":{"group":"","version":"v1","kind":"Pod"},"object":{"metadata":{"annotations":{"x":"'
    )


# -- 1. request bodies ---------------------------------------------------------------------------


def test_a_3_mib_object_and_a_6_mib_update_are_answered_normally(hook: _Uvicorn) -> None:
    big = "a" * (3 * MiB)
    body = review(deployment("ghcr.io/acme/web:1", annotations={"big": big}))
    raw = orjson.dumps(body)
    with measured("webhook 3 MiB AdmissionReview (CREATE)") as m:
        status, answer = hook.request(
            "POST", "/validate", raw, {"Content-Type": "application/json"}
        )
        out = _answer(status, answer, body["request"]["uid"])
        m["outcome"] = f"{len(raw)} bytes -> allowed={out['allowed']}: {out['status']['message']}"
    # Answered like any other review: the image's registry is not allowed.
    assert out["allowed"] is False
    assert "registry ghcr.io: not in the allowed registries" in out["status"]["message"]
    assert m["peak"] < 64 * MiB

    old = deployment("ghcr.io/acme/web:0", annotations={"big": big})
    update = review(
        deployment("ghcr.io/acme/web:1", annotations={"big": big}),
        operation="UPDATE",
        old=old,
    )
    raw = orjson.dumps(update)
    assert 6 * MiB < len(raw) < MAX_BODY_BYTES
    with measured("webhook 6 MiB AdmissionReview (UPDATE, object + oldObject)") as m:
        status, answer = hook.request("POST", "/validate", raw)
        out = _answer(status, answer, update["request"]["uid"])
        m["outcome"] = f"{len(raw)} bytes -> allowed={out['allowed']}"
    assert "not in the allowed registries" in out["status"]["message"]
    assert hook.healthy()


def test_a_body_declared_over_the_cap_is_refused_unread(hook: _Uvicorn) -> None:
    uid = str(uuid.uuid4())
    declared = 100 * MiB
    with measured("webhook body declared 100 MiB (Content-Length), 64 KiB sent") as m:
        sock = _post_head(hook.port, {"Content-Length": str(declared)})
        with sock:
            start = _review_head(uid)
            sock.sendall(start + b"x" * (64 * 1024 - len(start)))
            # Answered now, with 99.9 MiB still unsent: nothing waited for the rest.
            status, _, raw = _read_response(sock)
        out = _answer(status, raw, uid)
        m["outcome"] = out["status"]["message"]
    assert out["allowed"] is False
    assert out["status"]["code"] == 413
    assert out["status"]["reason"] == "RequestEntityTooLarge"
    assert f"its body is {declared} bytes, over the 8 MiB limit" in out["status"]["message"]
    assert m["peak"] < 16 * MiB

    # No uid to answer to: a plain 413, which the API server treats as a webhook failure.
    with _post_head(hook.port, {"Content-Length": str(declared)}) as sock:
        sock.sendall(b" " * 65536)
        status, _, raw = _read_response(sock)
    assert status == 413
    assert "over the 8 MiB limit" in orjson.loads(raw)["error"]
    assert hook.healthy()


def test_a_chunked_body_past_the_cap_is_cut_off_while_streaming(hook: _Uvicorn) -> None:
    """No Content-Length (chunked): refused as soon as it passes the cap, memory bounded."""
    uid = str(uuid.uuid4())
    total = 48 * MiB
    block = b"y" * MiB
    sent = {"bytes": 0, "error": None}
    with measured("webhook chunked body of 48 MiB (no Content-Length)") as m:
        sock = _post_head(hook.port, {"Transfer-Encoding": "chunked"})

        def send() -> None:
            try:
                first = _review_head(uid)
                sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))
                while sent["bytes"] < total:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                    sent["bytes"] += len(block)
                sock.sendall(b"0\r\n\r\n")
            except OSError as exc:  # the server may close once it has answered
                sent["error"] = exc

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        with sock:
            status, _, raw = _read_response(sock)
            sender.join(30)
        out = _answer(status, raw, uid)
        m["outcome"] = f"{out['status']['message']} (client had sent {sent['bytes'] >> 20} MiB)"
    assert out["allowed"] is False and out["status"]["code"] == 413
    assert "its body is over the 8 MiB limit" in out["status"]["message"]
    # The cap plus a chunk, not the 48 MiB sent (the rest was discarded, never kept).
    assert m["peak"] < 3 * MAX_BODY_BYTES
    assert hook.healthy()


def _not_json_or_invalid(status: int, raw: bytes) -> bool:
    """A 400 either way: uvicorn's for the connection (with httptools, server.py names it,
    bytes that are not a request after the request in hand end the connection before that
    request's answer) or, when the request was answered before those bytes arrived (a race
    of the two writes), sbomgate's for its body, which is not JSON."""
    return status == 400 and (
        raw == b"Invalid HTTP request received." or raw.startswith(b'{"error":"not JSON')
    )


def test_lying_or_absent_content_length(hook: _Uvicorn, monkeypatch: pytest.MonkeyPatch) -> None:
    # Declared smaller than sent: only the declared bytes are the body (not JSON, 400); the
    # rest is not a request at all, and the connection is closed. httptools finds the rest
    # invalid while the first request is in hand, and uvicorn then answers its own 400 for the
    # connection instead (h11 answered the first request first).
    with _post_head(hook.port, {"Content-Length": "100"}) as sock:
        sock.sendall(_review_head("u") + b"z" * 4096)
        status, _, raw = _read_response(sock)
        assert sock.recv(1) == b"", "the connection stayed open after a lying Content-Length"
    assert _not_json_or_invalid(status, raw)

    # No Content-Length and not chunked: an HTTP/1.1 request without a body (the bytes after
    # it are not a request: the same as above).
    with _post_head(hook.port, {}) as sock:
        sock.sendall(b'{"kind": "AdmissionReview"}')
        status, _, raw = _read_response(sock)
    assert _not_json_or_invalid(status, raw)

    # Declared larger than sent, then silence: given up after BODY_SECONDS, not held forever.
    monkeypatch.setattr(serving_body, "BODY_SECONDS", 1.0)
    with measured("webhook body declared 1 MiB, 10 bytes sent, then nothing") as m:
        with _post_head(hook.port, {"Content-Length": str(MiB)}) as sock:
            sock.sendall(b'{"kind":"A')
            status, _, raw = _read_response(sock)
        m["outcome"] = f"{status} {orjson.loads(raw)['error']}"
    assert status == 408
    assert orjson.loads(raw)["error"] == "the request body did not arrive within 1 s"
    assert m["seconds"] < 1 + 5
    assert hook.healthy()


def _gzip_bomb(expanded: int, member: int = 16 * MiB) -> bytes:
    """`expanded` bytes of zeros as a multi-member gzip (members concatenate on expansion):
    about 1 KiB on the wire per MiB it expands to, made without compressing all of it."""
    one = gzip.compress(bytes(member), compresslevel=9, mtime=0)
    return one * (expanded // member)


def test_a_compressed_body_is_refused_unexpanded(hook: _Uvicorn) -> None:
    bomb = _gzip_bomb(10 << 30)  # 10 GiB of zeros
    with measured("webhook gzip body expanding to 10 GiB") as m:
        status, raw = hook.request(
            "POST",
            "/validate",
            bomb,
            {"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        m["outcome"] = f"{len(bomb)} bytes on the wire -> {status} {orjson.loads(raw)['error']}"
    assert status == 415
    assert orjson.loads(raw)["error"] == "Content-Encoding 'gzip' is not accepted: send plain JSON"
    assert m["peak"] < 2 * len(bomb) + 16 * MiB  # the client's copy, nothing expanded
    assert hook.healthy()


def test_deep_and_dense_bodies_are_refused_with_the_reason(hook: _Uvicorn) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    with measured("webhook body nested 10,000 deep") as m:
        status, raw = hook.request("POST", "/validate", deep)
        m["outcome"] = f"{status} {orjson.loads(raw)['error']}"
    assert status == 400
    assert orjson.loads(raw)["error"] == "not JSON sbomgate reads: nested deeper than 1024 levels"

    # 7 MiB of `[]`: under the size cap, but 2.4 million lists once parsed.
    uid = str(uuid.uuid4())
    dense = _review_head(uid) + b'"}}, "pad": [' + b"[]," * (7 * MiB // 3) + b"[]]}}"
    with measured("webhook body of 7 MiB holding 2.4 million arrays") as m:
        status, raw = hook.request("POST", "/validate", dense)
        out = _answer(status, raw, uid)
        m["outcome"] = out["status"]["message"]
    assert out["allowed"] is False
    assert "its body holds over 1000000 objects and arrays" in out["status"]["message"]
    assert m["peak"] < 3 * len(dense)  # never parsed
    assert hook.healthy()


# -- 2. many containers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_controller(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> Iterator[AdmissionController]:
    config = ServeConfig(
        trust_policies=(trust_file(work, keys=[key]),),
        facts=FACTS,
        allowed_registries=(plain_registry.host,),
        insecure_registries=(plain_registry.host,),
    )
    controller = build_controller(config, Metrics())
    yield controller
    controller.close()
    controller.checker.client.close()


def _decide(controller: AdmissionController, obj: dict[str, Any]) -> dict[str, Any]:
    body = review(obj)
    out = controller.review(body)
    assert out["response"]["uid"] == body["request"]["uid"]
    return dict(out["response"])


def pod(images: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "many", "namespace": "team"},
        "spec": {"containers": [{"name": f"c{i}", "image": ref} for i, ref in enumerate(images)]},
    }


def test_10000_containers_of_one_image_check_it_once(
    registry_controller: AdmissionController, plain_registry: RegistryServer
) -> None:
    one = push_image(plain_registry, "limits/one", "v1", seed="limits-one")
    other = push_image(plain_registry, "limits/other", "v1", seed="limits-other")
    client = registry_controller.checker.client
    before = client.requests
    with measured("webhook Pod of 10,000 containers, one image (unsigned)") as m:
        out = _decide(registry_controller, pod([one.ref] * MAX_CONTAINERS))
        m["outcome"] = f"{client.requests - before} registry requests: {out['status']['message']}"
    used = client.requests - before
    message = out["status"]["message"]
    assert out["allowed"] is False
    assert "no verified sbom attestation" in message
    # The paths are cut: the message names three and counts the rest.
    assert "(spec.containers[0], spec.containers[1], spec.containers[2] and 9997 more)" in message
    assert len(message) < 2000
    # Exactly what one container of another image costs.
    before = client.requests
    _decide(registry_controller, pod([other.ref]))
    assert used == client.requests - before
    assert m["seconds"] < 30

    # The same as a Deployment (the path differs), and one container over the cap.
    out = _decide(registry_controller, deployment(*[one.ref] * MAX_CONTAINERS))
    assert "spec.template.spec.containers[2] and 9997 more" in out["status"]["message"]
    out = _decide(registry_controller, pod([one.ref] * (MAX_CONTAINERS + 1)))
    assert out["allowed"] is False
    assert out["status"]["message"] == f"Pod cannot be read: more than {MAX_CONTAINERS} containers"


def test_too_many_distinct_images_are_refused_before_any_registry_call(
    registry_controller: AdmissionController, plain_registry: RegistryServer
) -> None:
    client = registry_controller.checker.client
    before = client.requests
    refs = [f"{plain_registry.host}/limits/app{i}:v1" for i in range(MAX_CONTAINERS)]
    with measured("webhook Pod of 10,000 containers, 10,000 distinct images") as m:
        out = _decide(registry_controller, pod(refs))
        m["outcome"] = out["status"]["message"]
    assert out["allowed"] is False
    assert out["status"]["message"] == (
        f"Pod team/many: names {MAX_CONTAINERS} distinct images, more than the "
        f"{MAX_DISTINCT_IMAGES} sbomgate checks in one object: nothing was checked (split it, "
        "or use fewer distinct images)"
    )
    assert client.requests == before
    assert m["seconds"] < 10

    out = _decide(registry_controller, pod(refs[: MAX_DISTINCT_IMAGES + 1]))
    assert f"names {MAX_DISTINCT_IMAGES + 1} distinct images" in out["status"]["message"]
    assert client.requests == before
    # At the cap every image is checked (none of these exists).
    out = _decide(registry_controller, deployment(*refs[:MAX_DISTINCT_IMAGES]))
    assert "not found" in out["status"]["message"]
    assert client.requests > before


# -- 3. deep nesting -------------------------------------------------------------------------------


def _cyclonedx(extra: bytes = b"") -> bytes:
    return (
        b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library",'
        b'"name":"requests","version":"2.31.0","purl":"pkg:pypi/requests@2.31.0"}]' + extra + b"}"
    )


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (10_000, "invalid JSON at line 1, column 1"),  # orjson stops at 1024 levels
        (200, "nested deeper than 100 levels: the policies could not read it"),
    ],
)
def test_deep_sboms_are_refused(depth: int, message: str) -> None:
    sbom = _cyclonedx(b',"x":' + b"[" * depth + b"]" * depth)
    with measured(f"SBOM nested {depth} deep") as m:
        with pytest.raises(SbomError) as info:
            parse_sbom(sbom, source="deep.cdx.json")
        m["outcome"] = str(info.value)
    assert message in str(info.value)
    if depth > 1024:
        assert "nested deeper than 1024 levels" in str(info.value)
    # Just under: parsed, and every policy can read it.
    ok = parse_sbom(_cyclonedx(b',"x":' + b"[" * 98 + b"]" * 98), source="ok.cdx.json")
    assert [c.name for c in ok.components] == ["requests"]


def test_an_sbom_at_the_depth_limit_is_readable_by_the_policies() -> None:
    """The limit exists for the Rego engine, which reads about 125 levels: at the limit every
    policy still evaluates (no error, a verdict)."""
    sbom = parse_sbom(_cyclonedx(b',"x":' + b"[" * 98 + b"]" * 98), source="edge.cdx.json")
    policy = load_policy(
        "sees.rego",
        'package cloudsmith\nimport rego.v1\nreason contains "deep" if count(input.v0.sbom.x) > 0\n'
        "match if count(reason) > 0\n",
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom)
    assert verdict.errors == ()
    assert len(verdict.violations) == 1  # the image-level input: it read the whole document


def test_deep_dsse_payloads_and_xml_are_refused() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(deep).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"x").decode()}],
    }
    with measured("DSSE payload nested 10,000 deep") as m:
        parsed = parse_envelope(orjson.dumps(envelope))
        with pytest.raises(FormatError) as info:
            parse_statement(parsed.payload)
        m["outcome"] = str(info.value)
    assert str(info.value) == "in-toto statement is nested deeper than 1024 levels"
    with pytest.raises(FormatError, match="DSSE envelope is nested deeper than 1024 levels"):
        parse_envelope(b'{"payload":' + b"[" * 2000 + b"]" * 2000 + b"}")
    with pytest.raises(FormatError, match="DSSE envelope holds over 10000 objects and arrays"):
        parse_envelope(b'{"payload":' + deep + b"}")

    ns = b"http://cyclonedx.org/schema/bom/1.6"
    elements = b'<bom xmlns="' + ns + b'" version="1"><metadata>' + b"<a>" * 100_000
    elements += b"</a>" * 100_000 + b"</metadata></bom>"
    with measured("CycloneDX XML with 100,000 nested elements") as m:
        sbom = parse_sbom(elements, source="deep.cdx.xml")
        m["outcome"] = f"parsed, {len(sbom.components)} components (unknown elements skipped)"
    assert m["seconds"] < 20
    nested = (
        b'<bom xmlns="'
        + ns
        + b'" version="1">'
        + b'<components><component type="library"><name>x</name>' * 40
        + b"</component></components>" * 40
        + b"</bom>"
    )
    with pytest.raises(SbomError, match="components nested deeper than 32 levels"):
        parse_sbom(nested, source="nested.cdx.xml")


def test_dense_documents_are_refused_before_parsing() -> None:
    """64 MiB of `[[],[],...]` parses to 21 million lists (2 GB): refused on a byte count."""
    dense = b"[" + b"[]," * (60 * MiB // 3) + b"[]]"
    with measured("SBOM of 60 MiB holding 21 million arrays") as m:
        with pytest.raises(SbomError) as info:
            parse_sbom(dense, source="dense.json")
        m["outcome"] = str(info.value)
    assert "SBOM holds over 2000000 objects and arrays: refused unread" in str(info.value)
    assert m["peak"] < 8 * MiB
    envelope = b'{"payload": "", "x": ' + dense + b"}"
    with measured("DSSE envelope of 60 MiB holding 21 million arrays") as m:
        with pytest.raises(FormatError) as env_info:
            parse_envelope(envelope)
        m["outcome"] = str(env_info.value)
    assert str(env_info.value) == (
        "DSSE envelope holds over 10000 objects and arrays: refused unread"
    )
    assert m["peak"] < 8 * MiB
    xml = (
        b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6">' + b"<a/>" * (3 * 1_000_000) + b"</bom>"
    )
    with pytest.raises(SbomError, match="SBOM holds over 2000000 elements: refused unread"):
        parse_sbom(xml, source="dense.xml")


# -- 4. registries: huge blobs, lying sizes, compression -------------------------------------


Responder = Callable[[BaseHTTPRequestHandler], None]


class _Hostile:
    """A registry on loopback whose every answer the test chooses, by path; it records each
    request (path and headers). Unknown paths get 404."""

    def __init__(self) -> None:
        outer = self
        self.routes: dict[str, Responder] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path.split("?", 1)[0])
                try:
                    if route is None:
                        _send(self, 404, b'{"errors":[{"code":"NOT_FOUND"}]}')
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what a capped reader does

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _serve(body: bytes, media_type: str, **headers: str) -> Responder:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        _send(handler, 200, body, {"Content-Type": media_type, **headers})

    return respond


def _stream(total: int, *, declare: bool) -> Responder:
    """`total` bytes, with or without Content-Length (then delimited by closing, HTTP/1.0)."""
    block = b"{" + b" " * (MiB - 1)

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        if declare:
            handler.send_header("Content-Length", str(total))
        handler.end_headers()
        for _ in range(total // len(block)):
            handler.wfile.write(block)

    return respond


@pytest.fixture
def hostile() -> Iterator[Callable[[], _Hostile]]:
    made: list[_Hostile] = []

    def make() -> _Hostile:
        made.append(_Hostile())
        return made[-1]

    yield make
    for server in made:
        server.close()


def _checker(host: str, work: Path, key: CosignKey, *, insecure: bool = True) -> ImageChecker:
    access = RegistryAccess(
        allowed=(host,), insecure=frozenset({host}) if insecure else frozenset()
    )
    client = RegistryClient(access, timeout=20)
    trust = trust_file(work, keys=[key])
    return ImageChecker(client, AttestationVerifier(load_trust_policies([trust])), timeout=20)


def _check(checker: ImageChecker, ref: str) -> ImageResult:
    try:
        return checker.check(ref)
    finally:
        checker.client.close()


def _errors(result: ImageResult) -> str:
    return "\n".join(result.report.errors)


_EMPTY = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": sha256_digest(b"{}"),
    "size": 2,
}


def _image_manifest(seed: str, layers: list[dict[str, Any]] | None = None) -> bytes:
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": sha256_digest(seed.encode()),
        "size": len(seed),
    }
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _EMPTY,
            "layers": layers or [layer],
        }
    )


def _cosign_tag_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/manifests/{digest.replace(':', '-')}.att"


def _streamed_blob_push(server: RegistryServer, repo: str, size: int) -> dict[str, Any]:
    """Push `size` bytes as one blob, generated and hashed in 1 MiB blocks (never in memory)."""
    block = b'{"payload":"' + b"A" * (MiB - 12)
    count = size // MiB
    digest = hashlib.sha256()
    for _ in range(count):
        digest.update(block)
    hex_digest = f"sha256:{digest.hexdigest()}"
    client = OciClient(server)
    started = client.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
    location = started.header("Location") or ""
    url = urlsplit(location if "://" in location else server.url(location))
    conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=120)
    query = (url.query + "&" if url.query else "") + f"digest={hex_digest}"
    conn.putrequest("PUT", f"{url.path}?{query}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(count * MiB))
    conn.endheaders()
    for _ in range(count):
        conn.send(block)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 201, response.status
    return {"mediaType": DSSE_ENVELOPE, "digest": hex_digest, "size": count * MiB}


def test_a_200_mib_attestation_in_a_real_registry_is_refused_by_its_descriptor(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "limits/huge", "v1", seed="limits-huge")
    client = OciClient(plain_registry)
    with measured("pushing a 200 MiB blob to distribution, streamed") as m:
        blob = _streamed_blob_push(plain_registry, "limits/huge", 200 * MiB)
        m["outcome"] = blob["digest"]
    att = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": client.push_blob("limits/huge", b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [blob],
        }
    )
    client.put_manifest("limits/huge", f"{image.digest.replace(':', '-')}.att", att, OCI_MANIFEST)
    checker = _checker(plain_registry.host, work, key)
    with measured("registry (distribution) attestation blob of 200 MiB, honest descriptor") as m:
        result = _check(checker, image.ref)
        m["outcome"] = _errors(result)
    assert not result.report.ok and not result.report.fault
    assert (
        f"blob {blob['digest']} is {200 * MiB} bytes, over the {128 * MiB} byte limit"
        in _errors(result)
    )
    assert m["peak"] < 16 * MiB  # not downloaded
    assert m["seconds"] < 20


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "no-length"])
def test_a_lying_descriptor_is_cut_off_while_streaming(
    hostile: Callable[[], _Hostile], key: CosignKey, work: Path, declare: bool
) -> None:
    """The descriptor says 1,000 bytes; the registry sends 200 MiB (declared, or not)."""
    server = hostile()
    manifest = _image_manifest("lying")
    digest = sha256_digest(manifest)
    layer = {"mediaType": DSSE_ENVELOPE, "digest": sha256_digest(b"small"), "size": 1000}
    att = _image_manifest("att", [layer])
    server.routes["/v2/acme/app/manifests/v1"] = _serve(manifest, OCI_MANIFEST)
    server.routes[_cosign_tag_path("acme/app", digest)] = _serve(att, OCI_MANIFEST)
    server.routes[f"/v2/acme/app/blobs/{layer['digest']}"] = _stream(200 * MiB, declare=declare)
    checker = _checker(server.host, work, key)
    how = "declared" if declare else "undeclared"
    with measured(f"hostile registry: descriptor 1,000 bytes, blob 200 MiB ({how} length)") as m:
        result = _check(checker, f"{server.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert not result.report.ok
    assert "over the 1000 byte limit" in _errors(result)
    assert m["peak"] < 16 * MiB
    assert m["seconds"] < 20


def test_compressed_registry_answers_are_never_expanded(
    hostile: Callable[[], _Hostile], key: CosignKey, work: Path
) -> None:
    """We never ask for compression, and a gzip'd answer is taken as the bytes it is: its
    digest does not match, or it is not JSON. A gzip expanding to 1 GiB stays 1 MiB."""
    server = hostile()
    bomb = _gzip_bomb(1 << 30)
    server.routes["/v2/acme/app/manifests/v1"] = _serve(
        bomb, OCI_MANIFEST, **{"Content-Encoding": "gzip"}
    )
    with measured("hostile registry: manifest gzip'd to expand to 1 GiB") as m:
        result = _check(_checker(server.host, work, key), f"{server.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert "is not valid: not JSON" in _errors(result)
    assert m["peak"] < 8 * MiB
    assert all("accept-encoding" not in headers for _, headers in server.requests)

    # A gzip'd DSSE envelope whose digest matches its compressed bytes: read as it is.
    envelope = gzip.compress(
        orjson.dumps(
            {"payloadType": "application/vnd.in-toto+json", "payload": "", "signatures": []}
        )
    )
    manifest = _image_manifest("gzip")
    digest = sha256_digest(manifest)
    layer = {
        "mediaType": DSSE_ENVELOPE,
        "digest": sha256_digest(envelope),
        "size": len(envelope),
        "annotations": {"predicateType": "https://cyclonedx.org/bom"},
    }
    server.routes["/v2/acme/app/manifests/v2"] = _serve(manifest, OCI_MANIFEST)
    server.routes[_cosign_tag_path("acme/app", digest)] = _serve(
        _image_manifest("a", [layer]), OCI_MANIFEST
    )
    server.routes[f"/v2/acme/app/blobs/{layer['digest']}"] = _serve(
        envelope, "application/octet-stream", **{"Content-Encoding": "gzip"}
    )
    result = _check(_checker(server.host, work, key), f"{server.host}/acme/app:v2")
    assert "cannot be read: DSSE envelope is not JSON" in _errors(result)


def test_a_base64_payload_is_decoded_once_and_never_expanded() -> None:
    """A DSSE payload is base64, which only shrinks; a payload holding a gzip bomb stays the
    compressed bytes (nothing here decompresses), and is refused as not JSON."""
    bomb = _gzip_bomb(1 << 30)
    envelope = orjson.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(bomb).decode(),
            "signatures": [],
        }
    )
    with measured("DSSE payload: base64 of a gzip expanding to 1 GiB") as m:
        payload = parse_envelope(envelope).payload
        with pytest.raises(FormatError) as info:
            parse_statement(payload)
        m["outcome"] = str(info.value)
    assert payload == bomb
    assert str(info.value).startswith("in-toto statement is not JSON")
    assert m["peak"] < 32 * MiB  # orjson's buffers for a 1.4 MB document; nothing expanded


# -- 5. referrers, index loops, lying tags --------------------------------------------------


@pytest.fixture(scope="module")
def plain_referrers(work: Path) -> Iterator[RegistryServer]:
    """tools/ociregistry over plain HTTP: pushing 10,000 manifests is twice as fast as TLS."""
    server = start_referrers_registry(work / "referrers", ca=None)
    yield server
    server.stop()


def _push_referrers(server: RegistryServer, image: PushedImage, count: int) -> None:
    """`count` tiny referrers of `image`, over a few keep-alive connections in parallel."""
    client = OciClient(server)
    empty = client.push_blob(image.repo, b"{}", "application/vnd.oci.empty.v1+json")
    note = client.push_blob(image.repo, b"note", "text/plain")
    subject = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    host, _, port = server.host.rpartition(":")

    def push(numbers: range) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            for n in numbers:
                manifest = canonical_json(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "artifactType": "application/vnd.example.note",
                        "config": empty,
                        "layers": [note],
                        "subject": subject,
                        "annotations": {"n": str(n)},
                    }
                )
                conn.request(
                    "PUT",
                    f"/v2/{image.repo}/manifests/{sha256_digest(manifest)}",
                    body=manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                response = conn.getresponse()
                response.read()
                assert response.status == 201, response.status
        finally:
            conn.close()

    workers = 4
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(push, [range(w, count, workers) for w in range(workers)]))


def test_10000_referrers_in_a_real_registry_are_refused_above_the_cap(
    plain_referrers: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_referrers, "limits/referred", "v1", seed="limits-referred")
    with measured("pushing 10,000 referrer manifests (4 connections)") as m:
        _push_referrers(plain_referrers, image, 10_000)
        m["outcome"] = "pushed"
    checker = _checker(plain_referrers.host, work, key)
    with measured("registry (ociregistry) image with 10,000 referrers") as m:
        result = _check(checker, image.ref)
        m["outcome"] = _errors(result)
    assert not result.report.ok and not result.report.fault
    assert (
        f"{plain_referrers.host}/limits/referred: referrers of {image.digest}: has more than 1000 referrers"
        in _errors(result)
    )
    assert m["seconds"] < 30


def _index(entries: list[dict[str, Any]]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def _descriptor(n: int, media_type: str = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": 100, **extra}


def test_hostile_referrer_listings_are_bounded(
    hostile: Callable[[], _Hostile], key: CosignKey, work: Path
) -> None:
    server = hostile()
    manifest = _image_manifest("referred")
    digest = sha256_digest(manifest)
    server.routes["/v2/acme/app/manifests/v1"] = _serve(manifest, OCI_MANIFEST)
    note = {"artifactType": DSSE_ENVELOPE}
    server.routes[f"/v2/acme/app/referrers/{digest}"] = _serve(
        _index([_descriptor(n, **note) for n in range(10_000)]), OCI_INDEX
    )
    with measured("hostile registry: one referrers answer of 10,000 entries") as m:
        result = _check(_checker(server.host, work, key), f"{server.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert "has more than 1000 referrers" in _errors(result)
    # Nothing listed was fetched.
    assert [p for p in server.paths() if "/manifests/sha256:" in p] == []

    # Pages of 600, each pointing at the next: stopped on the second page, not the 17th.
    paged = hostile()
    paged.routes["/v2/acme/app/manifests/v1"] = _serve(manifest, OCI_MANIFEST)
    for page in range(17):
        entries = [_descriptor(page * 600 + n, **note) for n in range(600)]
        path = f"/v2/acme/app/referrers/{digest}" + (f"/p{page}" if page else "")
        paged.routes[path] = _serve(
            _index(entries),
            OCI_INDEX,
            Link=f'</v2/acme/app/referrers/{digest}/p{page + 1}>; rel="next"',
        )
    with measured("hostile registry: referrers in 17 linked pages of 600") as m:
        result = _check(_checker(paged.host, work, key), f"{paged.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert f"{digest} has more than 1000 referrers" in _errors(result)
    assert len([p for p in paged.paths() if "/referrers/" in p]) == 2


def test_nested_and_self_referencing_indexes_are_refused_without_following_them(
    hostile: Callable[[], _Hostile], key: CosignKey, work: Path
) -> None:
    server = hostile()
    # Every digest this registry is asked for answers with the same index: a loop, if it were
    # followed (content addressing makes a real self-reference impossible).
    nested = _descriptor(1, OCI_INDEX)
    top = _index([_descriptor(2, platform={"os": "linux", "architecture": "amd64"}), nested])
    server.routes["/v2/acme/app/manifests/v1"] = _serve(top, OCI_INDEX)
    server.routes[f"/v2/acme/app/manifests/{nested['digest']}"] = _serve(top, OCI_INDEX)
    with measured("hostile registry: index listing an index (a loop if followed)") as m:
        result = _check(_checker(server.host, work, key), f"{server.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert (
        f"lists another index at manifests[1] ({nested['digest']}): nested indexes are not "
        "supported (flatten it)"
    ) in _errors(result)
    assert server.paths() == ["/v2/acme/app/manifests/v1"]

    wide = hostile()
    platforms = [
        _descriptor(n, platform={"os": "linux", "architecture": f"arch{n}"}) for n in range(1000)
    ]
    wide.routes["/v2/acme/app/manifests/v1"] = _serve(_index(platforms), OCI_INDEX)
    with measured("hostile registry: index of 1,000 platform manifests") as m:
        result = _check(_checker(wide.host, work, key), f"{wide.host}/acme/app:v1")
        m["outcome"] = _errors(result)
    assert "lists 1000 platform manifests, more than the 64 sbomgate reads" in _errors(result)
    assert len(wide.requests) == 1


def test_a_tag_or_digest_serving_other_content_is_refused(
    hostile: Callable[[], _Hostile], key: CosignKey, work: Path
) -> None:
    server = hostile()
    manifest = _image_manifest("tagged")
    other = _image_manifest("other")
    # The registry says the tag is `other`'s digest, and serves `manifest`.
    server.routes["/v2/acme/app/manifests/v1"] = _serve(
        manifest, OCI_MANIFEST, **{"Docker-Content-Digest": sha256_digest(other)}
    )
    result = _check(_checker(server.host, work, key), f"{server.host}/acme/app:v1")
    assert (
        f"tag {server.host}/acme/app:v1 served content hashing to {sha256_digest(manifest)}, "
        f"but the registry says {sha256_digest(other)}"
    ) in _errors(result)
    # Asked by digest, it serves other content.
    server.routes[f"/v2/acme/app/manifests/{sha256_digest(other)}"] = _serve(manifest, OCI_MANIFEST)
    result = _check(
        _checker(server.host, work, key), f"{server.host}/acme/app@{sha256_digest(other)}"
    )
    assert "the registry served different content than was asked for" in _errors(result)


# -- 6. XML entities ---------------------------------------------------------------------------


class _Listener:
    """A TCP port that counts connections: proof that nothing was fetched."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


_BOM = '<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1"><components><component type="library"><name>{name}</name></component></components></bom>'
_LAUGHS = "".join(
    f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10 if n else "lol" * 10}">' for n in range(10)
)


@pytest.mark.parametrize(
    ("case", "doctype", "name"),
    [
        ("billion laughs", f"<!DOCTYPE bom [{_LAUGHS}]>", "&l9;"),
        ("quadratic blowup", f'<!DOCTYPE bom [<!ENTITY a "{"x" * 100_000}">]>', "&a;" * 100_000),
        ("external file", '<!DOCTYPE bom [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        (
            "external metadata address",
            '<!DOCTYPE bom [<!ENTITY x SYSTEM "http://169.254.169.254/latest/meta-data/">]>',
            "&x;",
        ),
        ("external http", '<!DOCTYPE bom [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>', "&x;"),
        (
            "parameter entity",
            '<!DOCTYPE bom [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>',
            "x",
        ),
        ("external DTD", '<!DOCTYPE bom SYSTEM "http://127.0.0.1:{port}/bom.dtd">', "x"),
    ],
)
def test_xml_entities_are_refused_before_expansion_or_fetching(
    case: str, doctype: str, name: str
) -> None:
    listener = _Listener()
    try:
        document = '<?xml version="1.0"?>' + doctype.replace("{port}", str(listener.port))
        document += _BOM.format(name=name)
        with measured(f"CycloneDX XML: {case}") as m:
            with pytest.raises(SbomError) as info:
                parse_sbom(document.encode(), source="entities.cdx.xml")
            m["outcome"] = str(info.value)
        assert str(info.value) == (
            "entities.cdx.xml: XML with a DOCTYPE or entity declarations is refused "
            "(DTDForbidden); CycloneDX XML needs neither"
        )
        assert m["seconds"] < 2 and m["peak"] < 16 * MiB
        time.sleep(0.05)
        assert listener.connections() == 0
    finally:
        listener.close()


# -- 7. policies -------------------------------------------------------------------------------


def _rego(body: str) -> str:
    return f"package cloudsmith\nimport rego.v1\n\nmatch if count(reason) > 0\n\n{body}\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'reason contains "x" if http.send({"method": "GET", "url": "http://169.254.169.254/"})',
            "http.send is disabled: policies cannot reach the network",
        ),
        (
            'reason contains "x" if net.lookup_ip_addr("example.com")',
            "net.lookup_ip_addr is disabled: policies cannot reach the network",
        ),
        (
            'reason contains "x" if opa.runtime().env',
            "opa.runtime is disabled: policies cannot read the engine's environment",
        ),
        # Named without being called: a function replaced `with` a forbidden builtin.
        (
            'f(_) := 1\nreason contains "x" if f({"url": "http://127.0.0.1:9/"}) with f as http.send',
            "http.send is disabled: policies cannot reach the network",
        ),
        (
            'reason contains "x" if count([1]) with count as opa.runtime',
            "opa.runtime is disabled",
        ),
        ('runtime := opa.runtime\nreason contains "x" if runtime', "opa.runtime is disabled"),
        # It only signs requests for http.send, with credentials a policy must not hold.
        (
            'reason contains "x" if providers.aws.sign_req({"method": "GET"}, {}, 0)',
            "providers.aws.sign_req is disabled: it signs requests for http.send",
        ),
        (
            'f(_, _, _) := 1\nreason contains "x" if f({}, {}, 0) with f as providers.aws.sign_req',
            "providers.aws.sign_req is disabled",
        ),
    ],
)
def test_network_and_environment_builtins_are_refused_at_load(body: str, message: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy("net.rego", _rego(body))
    assert message in str(info.value)
    assert info.value.line is not None and info.value.line >= 6


def test_builtins_that_could_fetch_do_not(tmp_path: Path) -> None:
    """json.match_schema with a remote or file `$ref`: regorus is built without resolvers, so
    the call fails (undefined, as OPA's builtin errors are) and nothing is fetched."""
    listener = _Listener()
    try:
        policy = load_policy(
            "schema.rego",
            _rego(
                "reason contains msg if {\n"
                f'  [ok, _] := json.match_schema(input.v0.package, {{"$ref": "http://127.0.0.1:{listener.port}/s.json"}})\n'
                '  msg := sprintf("schema %v", [ok])\n}\n'
                "reason contains msg if {\n"
                '  [ok, _] := json.match_schema(input.v0.package, {"$ref": "file:///etc/passwd"})\n'
                '  msg := sprintf("file %v", [ok])\n}'
            ),
        )
        sbom = Sbom(
            source="t",
            format="cyclonedx",
            spec_version="1.6",
            subject=None,
            components=(
                Component(
                    name="a", version="1", purl="pkg:pypi/a@1", purl_type="pypi", format="python"
                ),
            ),
            document={},
        )
        verdict = PolicyEngine([policy]).evaluate_sbom(sbom)
        assert verdict.violations == () and verdict.errors == ()
        time.sleep(0.05)
        assert listener.connections() == 0
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("case", "source", "message"),
    [
        (
            "40 nested array literals",
            "x := " + "[" * 40 + "]" * 40,
            "collection literals nested 33 deep, each the first term of the one around it",
        ),
        (
            "object literals 33 deep",
            "x := " + '{"a":' * 33 + "1" + "}" * 33,
            "collection literals nested 33 deep",
        ),
        (
            "half a million nested array literals",
            "x := " + "[" * 500_000 + "]" * 500_000,
            "collection literals nested 33 deep",
        ),
    ],
)
def test_rego_nested_past_the_literal_chain_limit_is_refused(
    case: str, source: str, message: str
) -> None:
    """Unpatched regorus parsed chains of first-term literals in 2^depth time with the GIL held
    (18 levels: 33 s of a frozen process, from a 40-byte policy); sbomgate's patch reads them in
    length times depth, and chains deeper than any real policy's are refused unread."""
    with measured(f"Rego: {case}") as m:
        with pytest.raises(PolicyLoadError) as info:
            load_policy("bomb.rego", _rego(source))
        m["outcome"] = str(info.value)
    assert message in str(info.value)
    assert m["seconds"] < 1


@pytest.mark.parametrize(
    ("case", "literals"),
    [
        ("array literals 32 deep (the limit)", "x := " + "[" * 32 + "]" * 32),
        ("object literals 32 deep", "x := " + '{"a":' * 32 + "1" + "}" * 32),
        (
            "300 array literals 18 deep",
            "\n".join(f"x{n} := " + "[" * 18 + "]" * 18 for n in range(300)),
        ),
    ],
)
def test_deep_literals_within_the_limit_parse_quickly(case: str, literals: str) -> None:
    """18 levels took unpatched regorus 33 s; 32, days."""
    with measured(f"Rego: {case}") as m:
        # `reason` defined: a policy that uses it undefined is refused for being unsafe.
        load_policy("edge.rego", _rego(literals + '\n\nreason contains "x" if false'))
        m["outcome"] = "loaded"
    # Far above the 0.7 s it takes alone (2.1 s seen under make test's load), far below the
    # 33 s of one exponential chain.
    assert m["seconds"] < 5


@pytest.mark.parametrize(
    ("case", "metadata", "message"),
    [
        (
            "billion laughs",
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
            "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
            "title: *h\n",
            "invalid METADATA: aliases (*name) are not allowed",
        ),
        (
            "10,000 nested brackets",
            "title: x\ncustom:\n  deep: " + "[" * 10_000 + "]" * 10_000 + "\n",
            "invalid METADATA: nested deeper than 16 levels",
        ),
    ],
)
def test_hostile_metadata_yaml_is_refused(case: str, metadata: str, message: str) -> None:
    source = "# METADATA\n" + "".join(f"# {line}\n" for line in metadata.splitlines())
    source += "package cloudsmith\nimport rego.v1\nmatch if false\n"
    with measured(f"METADATA YAML: {case}") as m:
        with pytest.raises(PolicyLoadError) as info:
            load_policy("meta.rego", source)
        m["outcome"] = str(info.value)
    assert message in str(info.value)
    assert m["seconds"] < 5


def test_a_rego_bomb_sent_to_validate_policy_is_refused_and_the_webhook_keeps_answering(
    hook: _Uvicorn,
) -> None:
    """/validate-policy parses what anyone who reaches the port sends it."""
    bomb = _rego("x := " + "[" * 40 + "]" * 40)
    body = {
        "kind": "AdmissionReview",
        "apiVersion": API,
        "request": {
            "uid": "bomb",
            "kind": {"group": "sbomgate.dev", "version": "v1alpha1", "kind": "PackagePolicy"},
            "operation": "CREATE",
            "object": {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "PackagePolicy",
                "metadata": {"name": "bomb"},
                "spec": {"rego": bomb, "action": "Deny"},
            },
        },
    }
    with measured("/validate-policy: PackagePolicy with 40 nested array literals") as m:
        status, raw = hook.request("POST", "/validate-policy", orjson.dumps(body))
        out = _answer(status, raw, "bomb")
        m["outcome"] = out["status"]["message"]
    assert out["allowed"] is False and out["status"]["code"] == 422
    assert "collection literals nested 33 deep" in out["status"]["message"]
    assert m["seconds"] < 5
    assert hook.healthy()


# -- 8. end to end with real attestations: a deep signed SBOM, a policy that errors ------------


@pytest.fixture(scope="module")
def attested(plain_registry: RegistryServer, key: CosignKey, work: Path) -> dict[str, PushedImage]:
    good = json.loads(GOOD_SBOM.read_text())
    deep = dict(good, x=json.loads("[" * 150 + "]" * 150))
    deep_file = work / "deep.cdx.json"
    deep_file.write_text(json.dumps(deep))
    images = {}
    for name, sbom in (("good", GOOD_SBOM), ("deep", deep_file)):
        image = push_image(plain_registry, f"limits/{name}", "v1", seed=f"limits-attested-{name}")
        cosign_attest(
            plain_registry,
            image.digest_ref,
            sbom,
            "cyclonedx",
            key,
            new_bundle_format=True,
            workdir=work / "cosign-home",
        )
        images[name] = image
    return images


def test_a_signed_sbom_nested_too_deep_is_refused_by_the_webhook(
    registry_controller: AdmissionController, attested: dict[str, PushedImage]
) -> None:
    with measured("webhook: image whose signed SBOM nests 150 deep") as m:
        out = _decide(registry_controller, deployment(attested["deep"].ref))
        m["outcome"] = out["status"]["message"]
    assert out["allowed"] is False
    assert "signed SBOM unusable" in out["status"]["message"]
    assert (
        "nested deeper than 100 levels: the policies could not read it" in out["status"]["message"]
    )


def test_a_policy_that_errors_denies_naming_the_policy(
    plain_registry: RegistryServer, key: CosignKey, work: Path, attested: dict[str, PushedImage]
) -> None:
    policies = work / "erroring-policies"
    policies.mkdir(exist_ok=True)
    (policies / "conflict.rego").write_text(
        _rego('level := 1 if true\n\nlevel := 2 if true\n\nreason contains "x" if level == 1')
    )
    (policies / "fine.rego").write_text(
        _rego('reason contains "evil" if input.v0.package.name == "evil"')
    )
    config = ServeConfig(
        policies=policies,
        trust_policies=(trust_file(work, keys=[key]),),
        facts=FACTS,
        allowed_registries=(plain_registry.host,),
        insecure_registries=(plain_registry.host,),
    )
    controller = build_controller(config, Metrics())
    try:
        out = _decide(controller, deployment(attested["good"].ref))
    finally:
        controller.close()
        controller.checker.client.close()
    message = out["status"]["message"]
    assert out["allowed"] is False
    assert "policy conflict failed to evaluate" in message
    assert "policy fine" not in message
