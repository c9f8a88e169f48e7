"""Discovery asks for every subject's cosign tag and referrers at once, and reads the answers in
the order a one-at-a-time discovery would.

Real cosign v3 attestations (Sigstore bundles) on each platform manifest of an index, on a real
registry (distribution 2.8, which has no referrers API, so a listing is the API's 404
then the fallback tag) behind a forwarding proxy that holds each lookup until the others have
arrived: only lookups that are in flight together get through without waiting out the hold.
A repository whose registry answered the API with 404 is read from the fallback tag alone for a
while (as ORAS remembers a repository's referrers capability); one with the API is asked
through it every time.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from sbomgate.errors import RegistryUnavailableError
from sbomgate.registry import RegistryAccess, RegistryClient, discover, parse_reference
from sbomgate.registry import client as client_module
from support.fault_server import FaultServer
from support.oci_builder import CosignKey, cosign_attest, push_image
from support.paths import GOOD_SBOM
from support.registry_servers import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/s390x"]
# A lookup: a cosign tag, the referrers API, or the referrers fallback tag.
LOOKUP = re.compile(r"/(manifests/sha256-[0-9a-f]{64}(\.att)?|referrers/sha256:[0-9a-f]{64})$")
HOLD_SECONDS = 10.0  # how long the proxy holds a lookup waiting for the others


class HoldingProxy:
    """Forwards GETs to `upstream`; holds each lookup until `expected` were in flight at once
    (or HOLD_SECONDS pass), and records the most that were in flight at once. `fail` names paths
    answered 503 instead."""

    def __init__(self, upstream: RegistryServer, expected: int) -> None:
        self.upstream = upstream
        self.expected = expected
        self.most = 0
        self.paths: list[str] = []  # every path asked for, in order of arrival
        self.fail: re.Pattern[str] | None = None
        self._in_flight = 0
        self._released = False
        self._arrived = threading.Condition()
        self._server = FaultServer(self._respond)
        self.host = self._server.host

    def close(self) -> None:
        self._server.close()

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        self.paths.append(handler.path)
        if self.fail is not None and self.fail.search(handler.path):
            _send(handler, 503, {}, b"")
            return
        if not LOOKUP.search(handler.path):
            self._forward(handler)
            return
        with self._arrived:
            self._in_flight += 1
            self.most = max(self.most, self._in_flight)
            # Once `expected` were in flight together, nothing more is held (the fallback tag
            # asked after the referrers API's 404, say).
            self._released = self._released or self._in_flight >= self.expected
            self._arrived.notify_all()
            self._arrived.wait_for(lambda: self._released, timeout=HOLD_SECONDS)
        try:
            self._forward(handler)
        finally:
            with self._arrived:
                self._in_flight -= 1

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        connection = http.client.HTTPConnection(self.upstream.host, timeout=30)
        try:
            connection.request(
                "GET", handler.path, headers={"Accept": handler.headers.get("Accept", "*/*")}
            )
            answer = connection.getresponse()
            body = answer.read()
            kept = ("Content-Type", "Docker-Content-Digest", "Location")
            headers = {h: v for h in kept if (v := answer.getheader(h)) is not None}
            _send(handler, answer.status, headers, body)
        finally:
            connection.close()


def _send(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _attested(
    server: RegistryServer, repo: str, key: CosignKey, work: Path, *, index: bool
) -> list[str]:
    """An index of PLATFORMS pushed to `server`, each platform manifest (and the index, with
    `index`) attested by the real `cosign attest --new-bundle-format`, which writes a Sigstore
    bundle referrer (through the API where the registry has it, else with the fallback tag);
    the attested digests, index first."""
    image = push_image(server, repo, "v1", platforms=PLATFORMS, seed=f"{repo}-{server.kind}")
    subjects = [image.digest] * index + [image.platform_digests[p] for p in PLATFORMS]
    for digest in subjects:
        cosign_attest(
            server,
            f"{server.host}/{repo}@{digest}",
            GOOD_SBOM,
            "cyclonedx",
            key,
            new_bundle_format=True,
            workdir=work / "cosign-home",
        )
    return subjects


@pytest.fixture(scope="module")
def multi_platform(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> tuple[str, list[str]]:
    """The attested index on distribution 2.8 (no referrers API): its name and subjects."""
    return "acme/multi:v1", _attested(plain_registry, "acme/multi", key, work, index=True)


@pytest.fixture
def proxies(plain_registry: RegistryServer) -> Iterator[Any]:
    made: list[HoldingProxy] = []

    def make(expected: int) -> HoldingProxy:
        made.append(HoldingProxy(plain_registry, expected))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _client(host: str) -> RegistryClient:
    access = RegistryAccess(allowed=(host,), insecure=frozenset({host}))
    return RegistryClient(access, timeout=60.0)


def test_every_subjects_lookups_are_in_flight_together(
    multi_platform: tuple[str, list[str]], proxies: Any
) -> None:
    name, subjects = multi_platform
    # Per subject: its cosign tag and its referrers listing, all at once.
    proxy = proxies(expected=2 * len(subjects))
    client = _client(proxy.host)
    try:
        found = discover(client, parse_reference(f"{proxy.host}/{name}"))
    finally:
        client.close()
    # All of them at once (one at a time, each would wait out the hold, and at most one would
    # be in flight). More is possible: once released, a fallback tag asked after the API's 404
    # may arrive before the others are answered.
    assert proxy.most >= 2 * len(subjects)
    # Read in the order of a discovery one lookup at a time: the index, then each platform.
    assert [a.attached_to for a in found.attestations] == subjects
    assert not found.problems


def test_a_lookup_the_registry_fails_still_fails_discovery(
    multi_platform: tuple[str, list[str]], proxies: Any
) -> None:
    name, subjects = multi_platform
    proxy = proxies(expected=1)  # nothing held
    arm64 = subjects[2].removeprefix("sha256:")
    proxy.fail = re.compile(rf"/manifests/sha256-{arm64}\.att$")
    client = _client(proxy.host)
    try:
        with pytest.raises(RegistryUnavailableError, match="503"):
            discover(client, parse_reference(f"{proxy.host}/{name}"))
    finally:
        client.close()


def test_a_repository_without_the_referrers_api_is_read_from_the_fallback_tag_alone(
    multi_platform: tuple[str, list[str]], proxies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, subjects = multi_platform
    proxy = proxies(expected=1)  # nothing held
    image = parse_reference(f"{proxy.host}/{name}")
    client = _client(proxy.host)

    def api_asked() -> int:
        return sum("/referrers/" in p for p in proxy.paths)

    try:
        # distribution 2.8 answers the API with 404: the fallback tag is read.
        first = client.referrers(image, subjects[1])
        assert first[1] == "tag" and len(first[0]) == 1
        assert api_asked() == 1
        # The repository's other subjects: the fallback tag alone, with the same answer.
        for digest in subjects[2:]:
            descriptors, how = client.referrers(image, digest)
            assert how == "tag" and len(descriptors) == 1
        assert api_asked() == 1
    finally:
        client.close()
    # Once that is no longer remembered (a registry may be upgraded), the API is asked again.
    monkeypatch.setattr(client_module, "NO_REFERRERS_API_TTL", 0.0)
    client = _client(proxy.host)
    try:
        for digest in subjects[1:]:
            assert client.referrers(image, digest)[1] == "tag"
        assert api_asked() == 1 + len(subjects[1:])
    finally:
        client.close()


def test_a_registry_with_the_referrers_api_is_asked_through_it_every_time(
    referrers_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    subjects = _attested(referrers_registry, "acme/api", key, work, index=False)
    access = RegistryAccess(
        allowed=(referrers_registry.host,),
        ca_files=(str(referrers_registry.ca_file),) if referrers_registry.ca_file else (),
    )
    client = RegistryClient(access, timeout=60.0)
    try:
        ref = parse_reference(f"{referrers_registry.host}/acme/api:v1")
        for digest in subjects * 2:
            descriptors, how = client.referrers(ref, digest)
            assert how == "api" and len(descriptors) == 1
    finally:
        client.close()
