"""No amplification and no attacker-made faults (issue 12, section 3, and section 8's empty
SBOMs and referrer pages).

What an image's own registry content causes (too big, too many, repeated, junk, wrong digests)
is the image's failure, never a fault: only a registry that cannot be reached or answers
5xx/429 is a fault. Each digest is fetched once per image; nothing is fetched for an image no
trust policy covers; unsigned content no covering policy accepts is not downloaded; the bytes
of attestation bodies are bounded per image and per process.

The registry is the real distribution registry; a counting reverse proxy in front of it (a few
lines here) records what sbomgate asked for. Endless referrer pages and a registry that holds
its answers cannot be had from a real registry, so those come from small servers of the test.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.config import Faults, ServeConfig
from sbomgate.imagecheck import ImageChecker, ImageResult
from sbomgate.registry import RegistryAccess, RegistryClient, RegistryLimits
from sbomgate.registry.budget import BodyBudgetBusyError, ImageBodies, ProcessBodyBudget
from sbomgate.runtime import build_controller
from sbomgate.serving.metrics import Metrics
from support.oci_builder import (
    DSSE_MEDIA_TYPE,
    OCI_MANIFEST,
    CosignKey,
    OciClient,
    PushedImage,
    attach_referrer,
    canonical_json,
    cosign_attest,
    cosign_tag,
    push_image,
    sha256_digest,
)
from support.paths import FACTS
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import RegistryServer
from support.trust import trust_file
from support.workloads import answer, deployment, review

# CPU time, deadlines and in-flight bounds: run after the parallel tests, alone (Makefile).
pytestmark = pytest.mark.alone

MiB = 1024 * 1024


class CountingProxy:
    """A reverse proxy to a plain-HTTP registry that counts each GET by path."""

    def __init__(self, upstream: RegistryServer) -> None:
        outer = self
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        upstream_host = upstream.host

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer._lock:
                    outer.requests[self.path.split("?", 1)[0]] += 1
                connection = http.client.HTTPConnection(upstream_host, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("GET", self.path, headers=headers)
                response = connection.getresponse()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                        self.send_header(name, value)
                body = response.read()
                if response.getheader("content-length") is None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # the client may hang up: what a capped reader does
                connection.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def gets(self, fragment: str) -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if fragment in path)

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def proxy(plain_registry: RegistryServer) -> Iterator[CountingProxy]:
    made = CountingProxy(plain_registry)
    yield made
    made.close()


def _checker(
    host: str, trust: Path, *, limits: RegistryLimits | None = None, **kwargs: Any
) -> ImageChecker:
    access = RegistryAccess(allowed=(host,), insecure=frozenset({host}))
    client = RegistryClient(access, limits=limits, timeout=20)
    return ImageChecker(
        client, AttestationVerifier(load_trust_policies([trust])), timeout=20, **kwargs
    )


def _check(checker: ImageChecker, ref: str) -> ImageResult:
    try:
        return checker.check(ref)
    finally:
        checker.client.close()


def _errors(result: ImageResult) -> str:
    return "\n".join(result.report.errors)


def _repeat_att_layers(server: RegistryServer, image: PushedImage, times: int) -> str:
    """Rewrite the image's cosign `.att` manifest to list its first layer `times` times."""
    client = OciClient(server)
    tag = cosign_tag(image.digest, "att")
    manifest = client.manifest_or_none(image.repo, tag)
    assert manifest is not None
    layer = manifest["layers"][0]
    manifest["layers"] = [layer] * times
    client.put_manifest(image.repo, tag, canonical_json(manifest), OCI_MANIFEST)
    return str(layer["digest"])


def _att_of_blobs(server: RegistryServer, image: PushedImage, blobs: list[bytes]) -> list[str]:
    """A cosign-style `.att` manifest on the image whose DSSE layers are the given blobs."""
    client = OciClient(server)
    layers = [client.push_blob(image.repo, blob, DSSE_MEDIA_TYPE) for blob in dict.fromkeys(blobs)]
    by_blob = {blob: layer for blob, layer in zip(dict.fromkeys(blobs), layers, strict=True)}
    config = client.push_blob(image.repo, b"{}", "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [by_blob[blob] for blob in blobs],
    }
    client.put_manifest(
        image.repo, cosign_tag(image.digest, "att"), canonical_json(manifest), OCI_MANIFEST
    )
    return [str(layer["digest"]) for layer in layers]


# -- each digest once -------------------------------------------------------------------------


@pytest.mark.parametrize("times", [2, 24])
def test_a_signed_attestation_listed_many_times_is_fetched_and_counted_once(
    plain_registry: RegistryServer,
    proxy: CountingProxy,
    key: CosignKey,
    work: Path,
    times: int,
) -> None:
    image = push_image(plain_registry, f"amp/repeated-{times}", "v1")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        GOOD,
        "cyclonedx",
        key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    blob = _repeat_att_layers(plain_registry, image, times)
    proxy.reset()
    result = _check(
        _checker(proxy.host, trust_file(work, keys=[key])),
        f"{proxy.host}/{image.repo}:v1",
    )
    assert result.report.ok, _errors(result)
    assert proxy.gets(f"/blobs/{blob}") == 1
    assert len(result.report.attestations) == 1
    assert len(result.sboms) == 1
    print(f"\nFIGURE {times} listings of one blob: {proxy.gets('/blobs/')} blob GETs")


def test_one_raw_sbom_behind_24_referrers_is_fetched_once(
    plain_registry: RegistryServer, proxy: CountingProxy, work: Path
) -> None:
    image = push_image(plain_registry, "amp/referrers-24", "v1")
    blob = GOOD.read_bytes()
    for n in range(24):
        attach_referrer(
            plain_registry,
            image.repo,
            image.digest,
            artifact_type="application/vnd.cyclonedx+json",
            blob=blob,
            blob_media_type="application/vnd.cyclonedx+json",
            annotations={"n": str(n)},  # 24 distinct referrer manifests, one layer blob
            fallback_tag=True,
        )
    proxy.reset()
    result = _check(
        _checker(proxy.host, trust_file(work, allow_unsigned=True, name="unsigned-ok")),
        f"{proxy.host}/{image.repo}:v1",
    )
    assert result.report.ok, _errors(result)
    assert proxy.gets(f"/blobs/{sha256_digest(blob)}") == 1
    assert len(result.sboms) == 1


# -- coverage first, unsigned not downloaded ---------------------------------------------------


def test_an_image_no_trust_policy_covers_is_refused_without_a_request(
    plain_registry: RegistryServer, proxy: CountingProxy, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "amp/uncovered", "v1")
    trust = trust_file(work, keys=[key], images=(f"{proxy.host}/elsewhere/**",), name="narrow")
    proxy.reset()
    for ref in (f"{proxy.host}/{image.repo}:v1", f"{proxy.host}/{image.repo}@{image.digest}"):
        result = _check(_checker(proxy.host, trust), ref)
        assert not result.report.ok and not result.report.fault
        assert "no trust policy covers" in _errors(result)
    assert proxy.total() == 0


def test_unsigned_content_is_not_downloaded_when_no_covering_policy_accepts_it(
    plain_registry: RegistryServer, proxy: CountingProxy, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "amp/unsigned-not-read", "v1")
    blob = GOOD.read_bytes() + b" " * 1024  # its own digest
    attach_referrer(
        plain_registry,
        image.repo,
        image.digest,
        artifact_type="application/vnd.cyclonedx+json",
        blob=blob,
        blob_media_type="application/vnd.cyclonedx+json",
        fallback_tag=True,
    )
    proxy.reset()
    result = _check(
        _checker(proxy.host, trust_file(work, keys=[key])), f"{proxy.host}/{image.repo}:v1"
    )
    assert not result.report.ok and not result.report.fault
    assert "unsigned SBOM, and the trust policy does not allow unsigned" in _errors(result)
    assert proxy.gets(f"/blobs/{sha256_digest(blob)}") == 0


# -- junk is the image's failure ---------------------------------------------------------------


def test_53_mib_of_junk_listed_40_times_is_the_images_failure_even_when_faults_are_allowed(
    plain_registry: RegistryServer, proxy: CountingProxy, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "amp/junk", "v1")
    junk = bytes(range(256)) * (53 * MiB // 256)
    [digest] = _att_of_blobs(plain_registry, image, [junk] * 40)
    config = ServeConfig(
        trust_policies=(trust_file(work, keys=[key]),),
        facts=FACTS,
        allowed_registries=(proxy.host,),
        insecure_registries=(proxy.host,),
        faults=Faults.ALLOW,
    )
    controller = build_controller(config, Metrics())
    proxy.reset()
    try:
        ref = f"{proxy.host}/{image.repo}@{image.digest}"
        started = time.monotonic()
        response = answer(controller, review(deployment(ref, namespace="team")))
        seconds = time.monotonic() - started
    finally:
        controller.close()
        controller.checker.client.close()
    assert not response["allowed"], "junk attestations made a fault that faults: Allow admitted"
    message = response["status"]["message"]
    assert "cannot verify" not in message and "cannot be read" in message, message
    assert proxy.gets(f"/blobs/{digest}") == 1
    print(f"\nFIGURE 40 listings of a 53 MiB junk blob: refused in {seconds:.2f} s, 1 download")


def test_attestations_over_the_images_byte_budget_are_its_failure(
    plain_registry: RegistryServer, proxy: CountingProxy, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "amp/over-budget", "v1")
    blobs = [bytes([n]) * (2 * MiB) for n in range(4)]
    digests = _att_of_blobs(plain_registry, image, blobs)
    limits = RegistryLimits(max_attestation_bytes=5 * MiB)
    proxy.reset()
    result = _check(
        _checker(proxy.host, trust_file(work, keys=[key]), limits=limits),
        f"{proxy.host}/{image.repo}:v1",
    )
    assert not result.report.ok and not result.report.fault
    assert "over the 5.0 MiB sbomgate reads per image" in _errors(result)
    # The two that fit were read; nothing was downloaded past the budget.
    assert sum(proxy.gets(f"/blobs/{d}") for d in digests) == 2


def test_a_full_process_budget_refuses_without_a_fault_and_is_not_cached(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = push_image(plain_registry, "amp/process-budget", "v1")
    cosign_attest(
        plain_registry,
        image.digest_ref,
        GOOD,
        "cyclonedx",
        key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    checker = _checker(
        plain_registry.host,
        trust_file(work, keys=[key]),
        limits=RegistryLimits(max_bytes_in_flight=4 * MiB),
    )
    checker.timeout = 1.0  # how long a check waits for room
    try:
        assert checker.client.bodies.acquire(4 * MiB, 0)  # other checks hold it all
        busy = checker.check(image.ref)
        assert not busy.report.ok and not busy.report.fault
        assert "of attestations sbomgate holds at once" in _errors(busy)
        checker.client.bodies.release(4 * MiB)
        again = checker.check(image.ref)
        assert again.report.ok and not again.cached, _errors(again)
        assert checker.client.bodies.held == 0  # released once the check was over
    finally:
        checker.client.close()


def test_process_budget_waits_for_room_and_gives_up_at_the_deadline() -> None:
    budget = ProcessBodyBudget(10)
    holder = ImageBodies(budget, 100, image="a", registry="r")
    holder.reserve(8, "blob", 0)
    waiting = ImageBodies(budget, 100, image="b", registry="r")
    threading.Timer(0.2, holder.close).start()
    waiting.reserve(5, "blob", 5.0)  # room comes when the holder is done
    assert budget.held == 5
    with pytest.raises(BodyBudgetBusyError):
        ImageBodies(budget, 100, image="c", registry="r").reserve(6, "blob", 0.1)
    waiting.close()
    assert budget.held == 0


# -- empty SBOMs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []},
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {"component": {"type": "container", "name": "app"}},
        },
    ],
    ids=["no-components", "only-the-subject"],
)
def test_a_signed_sbom_that_lists_nothing_proves_nothing(
    plain_registry: RegistryServer, key: CosignKey, work: Path, document: dict[str, Any]
) -> None:
    name = "empty-" + str(abs(hash(json.dumps(document))))
    image = push_image(plain_registry, f"amp/{name}", "v1")
    predicate = work / f"{name}.cdx.json"
    predicate.write_text(json.dumps(document))
    cosign_attest(
        plain_registry,
        image.digest_ref,
        predicate,
        "cyclonedx",
        key,
        new_bundle_format=False,
        workdir=work / "cosign-home",
    )
    trust = trust_file(work, keys=[key])
    refused = _check(_checker(plain_registry.host, trust), image.ref)
    assert not refused.report.ok and not refused.report.fault
    assert "lists no packages" in _errors(refused)
    allowed = _check(_checker(plain_registry.host, trust, allow_empty_sbom=True), image.ref)
    assert allowed.report.ok, _errors(allowed)


# -- referrer pages and hosts ------------------------------------------------------------------


class _PagingRegistry:
    """A registry serving one image whose referrers listing pages on and on (a real registry
    does not do this; an attacker's proxy or a broken one can)."""

    def __init__(self, next_page: Callable[[int], str], *, delay: float = 0.0) -> None:
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256_digest(b"{}"),
                    "size": 2,
                },
                "layers": [],
            }
        )
        self.digest = sha256_digest(manifest)
        self.pages = 0
        self.in_flight = 0
        self.most_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                try:
                    time.sleep(delay)
                finally:
                    # Out of flight before the answer is written: once the client has it, it may
                    # send the next request on the slot it frees, before this thread runs again.
                    with lock:
                        outer.in_flight -= 1
                self._answer()

            def _answer(self) -> None:
                path = self.path
                if path.endswith("/manifests/v1") or path.endswith(f"/manifests/{outer.digest}"):
                    self._send(200, manifest, {"Content-Type": OCI_MANIFEST})
                elif "/referrers/" in path:
                    with lock:
                        outer.pages += 1
                        page = outer.pages
                    index = canonical_json(
                        {
                            "schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [],
                        }
                    )
                    self._send(
                        200,
                        index,
                        {
                            "Content-Type": "application/vnd.oci.image.index.v1+json",
                            "Link": f'<{next_page(page)}>; rel="next"',
                        },
                    )
                else:
                    self._send(404, b'{"errors":[{"code":"NOT_FOUND"}]}', {})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    ("name", "next_page", "message"),
    [
        ("ever-new", lambda n: f"/v2/acme/app/referrers/x?page={n}", "more than 32 pages"),
        ("to-itself", lambda n: "/v2/acme/app/referrers/x?page=1", "link back"),
        ("in-a-ring", lambda n: f"/v2/acme/app/referrers/x?page={n % 3}", "link back"),
    ],
)
def test_endless_referrer_pages_are_refused_within_bounded_pages(
    key: CosignKey, work: Path, name: str, next_page: Callable[[int], str], message: str
) -> None:
    server = _PagingRegistry(next_page)
    try:
        result = _check(
            _checker(server.host, trust_file(work, keys=[key])), f"{server.host}/acme/app:v1"
        )
    finally:
        server.close()
    assert not result.report.ok and not result.report.fault, _errors(result)
    assert message in _errors(result)
    assert server.pages <= 33


def test_requests_in_flight_to_one_registry_are_bounded(key: CosignKey, work: Path) -> None:
    server = _PagingRegistry(lambda n: f"/v2/acme/app/referrers/x?page={n}", delay=0.2)
    limits = RegistryLimits(max_requests_per_host=3, max_referrer_pages=2)
    checker = _checker(server.host, trust_file(work, keys=[key]), limits=limits)
    try:
        refs = [f"{server.host}/acme/app:v1"] * 12
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(checker.check, refs))
    finally:
        checker.client.close()
        server.close()
    assert server.most_in_flight <= 3
    assert all(not r.report.ok for r in results)
    print(f"\nFIGURE 12 concurrent checks, limit 3: at most {server.most_in_flight} in flight")
