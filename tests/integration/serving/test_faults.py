"""Registry and trusted-source faults through a real fault-injecting proxy (Toxiproxy).

Between sbomgate and (a) a real OCI registry (Debian's distribution, images with real cosign
attestations) and (b) a real package index (pypiserver) sits toxiproxy; each test adds one
fault and checks that the answer is a *fault* (the registry or source could not be asked:
"cannot verify", never a policy finding, never an allow), that the message names the host and
what happened, and that it comes back within the deadline plus a generous margin: nothing
hangs and nothing crashes. HTTP statuses (429 / 503 with Retry-After) cannot be made by a TCP
proxy, so a small real HTTP server stands in front of the registry or index for those.

Deadlines are short here (1.5 s per image, 1 s per source request) so the suite stays fast;
they are set through the same options users have (RegistryClient/ImageChecker timeout,
RegistryLimits, TrustedSources timeout, admissionDeadline / registryTimeout for `serve`).

Set SBOMGATE_FAULT_TABLE=<file> to have every outcome appended to that file as a table row.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.imagecheck import ImageChecker, ImageResult
from sbomgate.intel.sources import SourceAnswer, SourceConfig, TrustedSources
from sbomgate.registry import RegistryAccess, RegistryClient, RegistryLimits
from sbomgate.sbom.model import Component
from support.index_servers import IndexServer, free_port
from support.oci_builder import CosignKey, PushedImage, cosign_attest, push_image
from support.paths import FACTS, GOOD_SBOM
from support.registry_servers import RegistryServer, make_test_ca
from support.toxiproxy import Proxy, Toxiproxy
from support.trust import trust_file

DEADLINE = 1.5  # seconds per image check
SOURCE_TIMEOUT = 1.0  # seconds per trusted-source request
MARGIN = 3.0  # "answered within the deadline plus this": a hang bound, not a timing claim
HANG = 30.0  # a check still running after this long is a hang: the test fails, not waits


@pytest.fixture(scope="module")
def trust(work: Path, key: CosignKey) -> Path:
    return trust_file(work, keys=[key])


def big_sbom(path: Path, components: int = 5000) -> Path:
    """A CycloneDX SBOM of about 1 MB: its attestation blob takes many seconds to trickle."""
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [
            {
                "type": "library",
                "bom-ref": f"c{n}",
                "name": f"package-number-{n}",
                "version": f"1.{n % 97}.{n % 13}",
                "purl": f"pkg:pypi/package-number-{n}@1.{n % 97}.{n % 13}",
                "licenses": [{"license": {"id": "MIT"}}],
                "hashes": [{"alg": "SHA-256", "content": f"{n:064x}"}],
            }
            for n in range(components)
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def _attested(
    server: RegistryServer, repo: str, key: CosignKey, work: Path, sbom: Path
) -> PushedImage:
    image = push_image(server, repo, "v1", seed=f"faults-{repo}")
    cosign_attest(
        server,
        image.digest_ref,
        sbom,
        "cyclonedx",
        key,
        new_bundle_format=True,
        workdir=work / "cosign-home",
    )
    return image


@pytest.fixture(scope="module")
def images(plain_registry: RegistryServer, key: CosignKey, work: Path) -> dict[str, PushedImage]:
    big = big_sbom(work / "big.cdx.json")
    made = {
        name: _attested(plain_registry, f"faults/{name}", key, work, GOOD_SBOM)
        for name in ("small", "cached", "unseen", "hook-good", "hook-latency", "hook-reset")
    }
    made["big"] = _attested(plain_registry, "faults/big", key, work, big)
    return made


@pytest.fixture
def registry_proxy(toxiproxy: Toxiproxy, plain_registry: RegistryServer) -> Proxy:
    return toxiproxy.create(f"registry-{uuid.uuid4().hex[:8]}", plain_registry.host)


@pytest.fixture
def index_proxy(toxiproxy: Toxiproxy, pypi_server: IndexServer) -> Proxy:
    upstream = pypi_server.url.split("/")[2]
    return toxiproxy.create(f"index-{uuid.uuid4().hex[:8]}", upstream)


# --------------------------------------------------------------------------- helpers


def _table(fault: str, target: str, outcome: str, seconds: float) -> None:
    path = os.environ.get("SBOMGATE_FAULT_TABLE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            short = outcome.replace("\n", " ")[:300]
            out.write(f"| {fault} | {target} | {short} | {seconds:.2f} s |\n")


def in_time(call: Callable[[], Any], bound: float = HANG) -> tuple[Any, float]:
    """Run `call` on a thread; fail (rather than hang the suite) if it runs past `bound`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # re-raised on the test's thread
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    seconds = time.monotonic() - started
    if thread.is_alive():
        pytest.fail(f"still running after {bound:.0f} s: a hang")
    if "error" in box:
        raise box["error"]
    return box["value"], seconds


def make_checker(
    host: str, trust: Path, *, deadline: float = DEADLINE, read_timeout: float = 10.0
) -> ImageChecker:
    access = RegistryAccess(allowed=(host,), insecure=frozenset({host}))
    limits = RegistryLimits(connect_timeout=1.0, read_timeout=read_timeout)
    client = RegistryClient(access, limits=limits, timeout=deadline)
    return ImageChecker(client, AttestationVerifier(load_trust_policies([trust])), timeout=deadline)


def ref_via(host: str, image: PushedImage, *, pinned: bool = False) -> str:
    return f"{host}/{image.repo}@{image.digest}" if pinned else f"{host}/{image.repo}:{image.tag}"


def errors(result: ImageResult) -> str:
    return "\n".join(result.report.errors)


def assert_registry_fault(
    result: ImageResult, seconds: float, host: str, *, deadline: float = DEADLINE
) -> str:
    message = errors(result)
    assert result.report.fault and not result.report.ok, message
    assert not result.sboms and not result.cached
    assert message.count("\n") == 0 and message.endswith(": cannot verify"), message
    assert f"registry {host}: " in message, message
    assert seconds < deadline + MARGIN, (seconds, message)
    return message


def pypi(name: str, version: str) -> Component:
    return Component(name, version, f"pkg:pypi/{name}@{version}", "pypi", format="python")


def sources_via(host: str, *, timeout: float = SOURCE_TIMEOUT) -> TrustedSources:
    return TrustedSources(
        [SourceConfig("internal", "pypi", f"http://{host}/simple/")], timeout=timeout
    )


def assert_source_fault(answer: SourceAnswer, seconds: float, host: str) -> str:
    assert answer.error is not None, answer
    assert answer.repository is None and not answer.found_package and not answer.found_version
    assert answer.error.startswith(f"internal ({host}): "), answer.error
    assert seconds < SOURCE_TIMEOUT + MARGIN, (seconds, answer.error)
    return answer.error


# --------------------------------------------------------------------------- registry faults


@dataclass(frozen=True)
class Fault:
    name: str
    image: str  # which image: "small" or "big"
    toxics: tuple[tuple[str, dict[str, Any]], ...]
    expect: tuple[str, ...]  # any of these in the message
    later: tuple[str, dict[str, Any]] | None = None  # a toxic added mid-blob
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY_FAULTS = [
    Fault("latency", "small", (("latency", {"latency": 5000}),), ("no answer from",)),
    Fault("bandwidth", "big", (("bandwidth", {"rate": 64}),), ("was incomplete when",)),
    Fault(
        "trickle",  # one byte every 100 ms, headers included: no single read ever times out
        "small",
        (("slicer", {"average_size": 1, "size_variation": 0, "delay": 100_000}),),
        ("was incomplete when",),
    ),
    Fault(
        "limit_data", "big", (("limit_data", {"bytes": 200_000}),), ("was closed in the middle",)
    ),
    Fault("reset_peer", "small", (("reset_peer", {"timeout": 0}),), ("was reset before",)),
    Fault(
        # reset_peer resets on the next data it sees: added while the blob trickles in.
        "reset_peer mid-body",
        "big",
        (("bandwidth", {"rate": 64}),),
        # A reset mid-stream reaches the client as a reset or an early end, by timing.
        ("was reset in the middle", "was closed in the middle"),
        later=("reset_peer", {"timeout": 0}),
    ),
    # Upstream: the request never reaches the registry, which so never answers nor closes.
    Fault(
        "half-open",
        "small",
        (("timeout", {"timeout": 0, "stream": "upstream"}),),
        ("no answer from",),
    ),
    Fault(
        "half-open mid-body",
        "big",
        (("bandwidth", {"rate": 64}),),
        ("was incomplete when",),
        later=("timeout", {"timeout": 0}),
    ),
]


def add_once_the_blob_streams(
    checker: ImageChecker, proxy: Proxy, kind: str, attributes: dict[str, Any]
) -> None:
    """Add a toxic 0.3 s after the attestation blob's download began (the bandwidth toxic
    makes it last many seconds): the fault lands in the middle of a body, not between requests."""
    client = checker.client
    started = threading.Event()
    get_blob = client.get_blob

    def watched(*args: Any, **kwargs: Any) -> bytes:
        started.set()
        return get_blob(*args, **kwargs)

    client.get_blob = watched  # type: ignore[method-assign]

    def later() -> None:
        if started.wait(HANG):
            time.sleep(0.3)
            proxy.add_toxic(kind, name="later", **attributes)

    threading.Thread(target=later, daemon=True).start()


@pytest.mark.parametrize("fault", REGISTRY_FAULTS, ids=[f.name for f in REGISTRY_FAULTS])
def test_registry_fault_is_a_bounded_specific_refusal(
    fault: Fault, registry_proxy: Proxy, images: dict[str, PushedImage], trust: Path
) -> None:
    host = registry_proxy.listen
    for kind, attributes in fault.toxics:
        registry_proxy.add_toxic(kind, **attributes)
    checker = make_checker(host, trust)
    try:
        if fault.later is not None:
            add_once_the_blob_streams(checker, registry_proxy, *fault.later)
        result, seconds = in_time(lambda: checker.check(ref_via(host, images[fault.image])))
        message = assert_registry_fault(result, seconds, host)
        assert any(
            f"{host} {word}" in message or f"{word} {host}" in message for word in fault.expect
        ), message
        _table(fault.name, "registry", message, seconds)
    finally:
        checker.client.close()


def test_registry_refusing_connections_is_unreachable(
    registry_proxy: Proxy, images: dict[str, PushedImage], trust: Path
) -> None:
    host = registry_proxy.listen
    registry_proxy.set_enabled(False)
    checker = make_checker(host, trust)
    try:
        result, seconds = in_time(lambda: checker.check(ref_via(host, images["small"])))
        message = assert_registry_fault(result, seconds, host)
        assert f"unreachable: {host} refused the connection" in message, message
        _table("proxy disabled (connection refused)", "registry", message, seconds)
    finally:
        checker.client.close()


def test_registry_recovers_after_the_fault(
    registry_proxy: Proxy, images: dict[str, PushedImage], trust: Path
) -> None:
    """The same client, after a reset mid-conversation: the next check gets through (no
    poisoned pooled connection, no cached fault)."""
    host = registry_proxy.listen
    checker = make_checker(host, trust)
    try:
        assert checker.check(ref_via(host, images["small"])).report.ok
        name = registry_proxy.add_toxic("reset_peer", timeout=0)
        checker.cache.clear()
        result, seconds = in_time(lambda: checker.check(ref_via(host, images["small"])))
        assert_registry_fault(result, seconds, host)
        registry_proxy.remove_toxic(name)
        again, _ = in_time(lambda: checker.check(ref_via(host, images["small"])))
        assert again.report.ok, errors(again)
    finally:
        checker.client.close()


def test_registry_name_that_never_resolves_is_a_bounded_fault(
    monkeypatch: pytest.MonkeyPatch, images: dict[str, PushedImage], trust: Path
) -> None:
    """A resolver that hangs (an overloaded cluster DNS): the lookup is given up on at the
    deadline. DNS cannot be made to hang for real here, so getaddrinfo is patched."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stuck.corp.example":
            release.wait(HANG)
            raise socket.gaierror("released")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    host = "stuck.corp.example:5000"
    checker = make_checker(host, trust)
    try:
        result, seconds = in_time(lambda: checker.check(ref_via(host, images["small"])))
        message = assert_registry_fault(result, seconds, host)
        assert "unreachable: stuck.corp.example could not be resolved within" in message
        _table("DNS lookup hangs", "registry", message, seconds)
    finally:
        release.set()
        checker.client.close()


def test_cached_verdict_answers_while_the_registry_is_down(
    registry_proxy: Proxy, images: dict[str, PushedImage], trust: Path
) -> None:
    host = registry_proxy.listen
    checker = make_checker(host, trust)
    try:
        first = checker.check(ref_via(host, images["cached"], pinned=True))
        assert first.report.ok and not first.cached, errors(first)
        requests = checker.client.requests
        registry_proxy.add_toxic("timeout", stream="upstream", timeout=0)  # half-open

        again, seconds = in_time(
            lambda: checker.check(ref_via(host, images["cached"], pinned=True))
        )
        assert again.cached and again.report.ok and again.sboms
        assert checker.client.requests == requests  # nothing was asked of the registry
        _table("half-open, digest verified before", "registry", "allowed from cache", seconds)

        unseen, seconds = in_time(
            lambda: checker.check(ref_via(host, images["unseen"], pinned=True))
        )
        message = assert_registry_fault(unseen, seconds, host)
        assert f"timed out: no answer from {host}" in message, message
        _table("half-open, digest not seen before", "registry", message, seconds)

        # A tag must be resolved (it may have moved): a fault too, even for a cached digest.
        by_tag, seconds = in_time(lambda: checker.check(ref_via(host, images["cached"])))
        assert_registry_fault(by_tag, seconds, host)
    finally:
        checker.client.close()


# --------------------------------------------------------------------------- 429 / 503


class StatusFront:
    """A real HTTP server in front of an upstream: answers the scripted statuses first, then
    forwards every request upstream (plain HTTP) and relays the answer."""

    def __init__(self, upstream: str, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.upstream = upstream
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.script:
            status, headers = self.script.pop(0)
            self.statuses.append(status)
            body = b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            connection.request("GET", handler.path, headers=headers)
            upstream = connection.getresponse()
            body = upstream.read()
            self.statuses.append(upstream.status)
            handler.send_response(upstream.status)
            for name, value in upstream.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        finally:
            connection.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def front() -> Iterator[Callable[[str, list[tuple[int, dict[str, str]]]], StatusFront]]:
    made: list[StatusFront] = []

    def make(upstream: str, script: list[tuple[int, dict[str, str]]]) -> StatusFront:
        made.append(StatusFront(upstream, script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, "1"), (503, "1"), (429, "date+3")],
    ids=["429-seconds", "503-seconds", "429-http-date"],
)
def test_short_retry_after_is_honoured_once(
    status: int,
    retry_after: str,
    front: Any,
    plain_registry: RegistryServer,
    images: dict[str, PushedImage],
    trust: Path,
) -> None:
    header = http_date(3) if retry_after == "date+3" else retry_after
    server = front(plain_registry.host, [(status, {"Retry-After": header})])
    checker = make_checker(server.host, trust, deadline=8.0)  # waits up to 4 s: a date fits
    try:
        result, seconds = in_time(lambda: checker.check(ref_via(server.host, images["small"])))
        assert result.report.ok, errors(result)
        assert server.statuses[:2] == [status, 200]
        assert 0.9 <= seconds < 8.0 + MARGIN  # it did wait for the server's Retry-After
        _table(f"{status} Retry-After {header} (once)", "registry", "allowed", seconds)
    finally:
        checker.client.close()


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        (
            [(429, {"Retry-After": "30"})],
            (
                "answered 429 (rate limited) for manifest v1",
                "; Retry-After 30 s is longer than the ",
            ),
        ),
        (
            [(503, {"Retry-After": "30"})],
            (
                "answered 503 (unavailable) for manifest v1",
                "; Retry-After 30 s is longer than the ",
            ),
        ),
        ([(503, {})], ("answered 503 (unavailable) for manifest v1",)),
        ([(502, {})], ("answered 502 (server error) for manifest v1",)),
        (
            [(429, {"Retry-After": "soon"})],
            ("answered 429 (rate limited)", "; Retry-After 'soon' is not a delay"),
        ),
        (
            [(503, {"Retry-After": "1"}), (503, {"Retry-After": "1"})],
            ("answered 503 (unavailable)", "again after waiting 1 s (Retry-After)"),
        ),
    ],
    ids=["429-long", "503-long", "503-bare", "502", "429-bad-header", "503-twice"],
)
def test_rate_limits_and_5xx_are_refused_at_once_and_named(
    script: list[tuple[int, dict[str, str]]],
    expect: tuple[str, ...],
    front: Any,
    plain_registry: RegistryServer,
    images: dict[str, PushedImage],
    trust: Path,
) -> None:
    server = front(plain_registry.host, script)
    checker = make_checker(server.host, trust, deadline=3.0)
    try:
        result, seconds = in_time(lambda: checker.check(ref_via(server.host, images["small"])))
        message = assert_registry_fault(result, seconds, server.host, deadline=3.0)
        assert all(part in message for part in expect), message
        assert len(server.statuses) == len(script)  # one retry at most, none when it cannot fit
        if len(script) == 1:
            assert seconds < 1.0 + MARGIN  # refused at once, not after waiting 30 s
        _table(f"{script[0][0]} {script[0][1] or ''}".strip(), "registry", message, seconds)
    finally:
        checker.client.close()


# --------------------------------------------------------------------------- trusted sources


SOURCE_FAULTS = [
    ("latency", (("latency", {"latency": 5000}),), ("no answer from",)),
    (
        "trickle",
        (("slicer", {"average_size": 1, "size_variation": 0, "delay": 100_000}),),
        ("was incomplete when",),
    ),
    ("bandwidth", (("bandwidth", {"rate": 0}),), ("no answer from", "was incomplete when")),
    ("limit_data", (("limit_data", {"bytes": 150}),), ("was closed in the middle",)),
    ("reset_peer", (("reset_peer", {"timeout": 0}),), ("was reset before",)),
    ("half-open", (("timeout", {"timeout": 0, "stream": "upstream"}),), ("no answer from",)),
]


@pytest.mark.parametrize(
    ("name", "toxics", "expect"), SOURCE_FAULTS, ids=[f[0] for f in SOURCE_FAULTS]
)
def test_source_fault_is_an_error_not_not_found(
    name: str,
    toxics: tuple[tuple[str, dict[str, Any]], ...],
    expect: tuple[str, ...],
    index_proxy: Proxy,
) -> None:
    host = index_proxy.listen
    with sources_via(host) as sources:
        assert sources.lookup(pypi("foo-bar", "1.0")).found_version  # healthy first
        sources.clear_cache()
        for kind, attributes in toxics:
            index_proxy.add_toxic(kind, **attributes)
        answer, seconds = in_time(lambda: sources.lookup(pypi("foo-bar", "1.0")))
        message = assert_source_fault(answer, seconds, host)
        assert any(f"{host} {word}" in message or f"{word} {host}" in message for word in expect), (
            message
        )
        _table(name, "pypiserver", message, seconds)
        index_proxy.heal()
        # Faults are not cached: with the fault gone, the same source answers again.
        recovered, _ = in_time(lambda: sources.lookup(pypi("foo-bar", "1.0")))
        assert recovered.found_version and recovered.error is None, recovered


def test_source_refusing_connections_is_unreachable(index_proxy: Proxy) -> None:
    host = index_proxy.listen
    index_proxy.set_enabled(False)
    with sources_via(host) as sources:
        answer, seconds = in_time(lambda: sources.lookup(pypi("foo-bar", "1.0")))
    message = assert_source_fault(answer, seconds, host)
    assert f"unreachable: {host} refused the connection" in message, message
    _table("proxy disabled (connection refused)", "pypiserver", message, seconds)


def test_source_answers_from_its_cache_while_the_index_is_down(index_proxy: Proxy) -> None:
    host = index_proxy.listen
    with sources_via(host) as sources:
        assert sources.lookup(pypi("foo-bar", "1.0")).found_version
        sent = sources.requests_sent
        index_proxy.add_toxic("timeout", stream="upstream", timeout=0)  # half-open
        # The project page is cached (positive TTL): any version of it is answered from it.
        cached, seconds = in_time(lambda: sources.lookup(pypi("foo-bar", "2.0")))
        assert cached.found_version and cached.error is None and sources.requests_sent == sent
        _table("half-open, package asked before", "pypiserver", "found (cache)", seconds)
        other, seconds = in_time(lambda: sources.lookup(pypi("tiny-pkg", "0.1")))
        message = assert_source_fault(other, seconds, host)
        _table("half-open, package not asked before", "pypiserver", message, seconds)


def test_source_rate_limits(front: Any, pypi_server: IndexServer) -> None:
    upstream = pypi_server.url.split("/")[2]
    short = front(upstream, [(429, {"Retry-After": "1"})])
    with TrustedSources(
        [SourceConfig("internal", "pypi", f"http://{short.host}/simple/")], timeout=3.0
    ) as sources:
        answer, seconds = in_time(lambda: sources.lookup(pypi("foo-bar", "1.0")))
    assert answer.found_version and answer.error is None, answer
    assert short.statuses[:2] == [429, 200] and seconds >= 0.9
    _table("429 Retry-After 1 (once)", "pypiserver", "found", seconds)

    cases: list[tuple[list[tuple[int, dict[str, str]]], str]] = [
        ([(429, {"Retry-After": "30"})], "; Retry-After 30 s is longer than the "),
        ([(503, {})], "answered 503 (unavailable) for http://"),
    ]
    for script, expect in cases:
        server = front(upstream, script)
        with TrustedSources(
            [SourceConfig("internal", "pypi", f"http://{server.host}/simple/")], timeout=3.0
        ) as sources:
            answer, seconds = in_time(lambda: sources.lookup(pypi("foo-bar", "1.0")))
        assert answer.error is not None and expect in answer.error, answer
        assert answer.error.startswith(f"internal ({server.host}): ")
        assert not answer.found_package and answer.repository is None
        assert seconds < 1.0 + MARGIN  # at once
        _table(f"{script[0][0]} {script[0][1] or ''}".strip(), "pypiserver", answer.error, seconds)


# --------------------------------------------------------------------------- the webhook


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    context: ssl.SSLContext

    def post(self, body: dict[str, Any], timeout: float = HANG) -> tuple[dict[str, Any], float]:
        request = urllib.request.Request(
            f"{self.url}/validate",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, context=self.context, timeout=timeout) as r:
            answer = json.loads(r.read())
        return answer, time.monotonic() - started

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/healthz", context=self.context, timeout=5) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def serve(work: Path, trust: Path, registry: str, deadline: float) -> Served:
    ca = make_test_ca(work / "serve-ca")
    port = free_port()
    config = work / "serve.yaml"
    config.write_text(
        json.dumps(
            {
                "trustPolicies": [str(trust)],
                "facts": str(FACTS),
                "allowedRegistries": [registry],
                "insecureRegistries": [registry],
                "admissionDeadline": deadline,
                "registryTimeout": 1,
                # Tags judged as tags: this test is about faults, not pinning (test_mutate.py).
                "imageReferences": "Resolve",
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
        f"https://127.0.0.1:{port}",
        process,
        log,
        ssl.create_default_context(cafile=str(ca.ca_file)),
    )
    until = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{served.url}/readyz", context=served.context, timeout=2):
                return served
        except OSError:
            if time.monotonic() > until or process.poll() is not None:
                served.stop()
                tail = log.read_text()[-3000:]
                raise AssertionError(f"sbomgate serve did not start:\n{tail}") from None
            time.sleep(0.2)


def review(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": "team",
            "name": "web",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "team"},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "dryRun": False,
            "userInfo": {"username": "tester"},
        },
    }


def check_answer(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = dict(answer["response"])
    assert response["uid"] == body["request"]["uid"]
    return response


def test_webhook_answers_faults_in_time_and_keeps_answering(
    registry_proxy: Proxy, images: dict[str, PushedImage], trust: Path, work: Path
) -> None:
    host = registry_proxy.listen
    deadline = 2.0
    served = serve(work / "serve", trust, host, deadline)
    try:
        good = review(ref_via(host, images["hook-good"], pinned=True))
        response = check_answer(good, served.post(good)[0])
        assert response["allowed"] is True, response

        cases: list[tuple[str, str, tuple[str, dict[str, Any]]]] = [
            ("latency 5 s", "hook-latency", ("latency", {"latency": 5000})),
            ("reset_peer", "hook-reset", ("reset_peer", {"timeout": 0})),
        ]
        for name, image, (kind, attributes) in cases:
            registry_proxy.add_toxic(kind, **attributes)
            body = review(ref_via(host, images[image]))
            answer, seconds = served.post(body)
            response = check_answer(body, answer)
            message = response["status"]["message"]
            assert response["allowed"] is False and response["status"]["code"] == 403, response
            assert f"image {host}/faults/{image}:v1" in message, message
            assert "cannot verify" in message and "policy" not in message, message
            assert seconds < deadline + MARGIN, (seconds, message)
            if kind == "reset_peer":
                assert f"registry {host}: connection to {host} was reset" in message, message
            _table(name, "webhook (sbomgate serve)", message, seconds)

            # The verified image is answered from the cache while the fault lasts.
            cached = review(ref_via(host, images["hook-good"], pinned=True))
            response = check_answer(cached, served.post(cached)[0])
            assert response["allowed"] is True, response
            registry_proxy.heal()

        assert served.healthy() and served.process.poll() is None
        fresh = review(ref_via(host, images["small"]))
        response = check_answer(fresh, served.post(fresh)[0])
        assert response["allowed"] is True, response
    finally:
        served.stop()
        assert "Traceback" not in served.log.read_text(), served.log.read_text()[-3000:]
