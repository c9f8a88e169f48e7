"""Registry access for `sbomgate verify`: auth, host allow-list, size caps, faults, cache, CLI.

Auth and size caps run against the real registries. Faults a real registry will not produce
on demand (a server that never answers, a 500, a redirect to the metadata address) come from
small servers on loopback made here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.imagecheck import ImageChecker
from sbomgate.registry import (
    CredentialStore,
    RegistryAccess,
    RegistryClient,
    RegistryLimits,
)
from support.fault_server import FaultServer
from support.images import attested_image
from support.oci_builder import (
    CosignKey,
    attach_referrer,
)
from support.paths import BAD_SBOM, FACTS, GOOD_SBOM
from support.registry_servers import RegistryServer
from support.trust import check, checker_for, errors, trust_file


def docker_credentials(server: RegistryServer, password: str | None = None) -> CredentialStore:
    store = CredentialStore()
    store.add_docker_config(
        {
            "auths": {
                server.host: {"username": server.username, "password": password or server.password}
            }
        },
        "test config",
    )
    return store


# -- auth -----------------------------------------------------------------------------


def test_basic_auth_with_and_without_credentials(
    basic_auth_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = attested_image(basic_auth_registry, "acme/private", GOOD_SBOM, key, work)
    policy = trust_file(work, keys=[key])
    result = check(
        basic_auth_registry, policy, image.ref, credentials=docker_credentials(basic_auth_registry)
    )
    assert result.report.ok, errors(result)

    anonymous = check(basic_auth_registry, policy, image.ref)
    assert not anonymous.report.ok and not anonymous.report.fault
    assert "needs credentials (add a pull secret or docker config)" in errors(anonymous)

    wrong = check(
        basic_auth_registry,
        policy,
        image.ref,
        credentials=docker_credentials(basic_auth_registry, "nope"),
    )
    assert "authentication failed" in errors(wrong)


def test_bearer_token_flow_with_a_pull_secret(
    token_auth_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = attested_image(token_auth_registry, "acme/token", GOOD_SBOM, key, work)
    policy = trust_file(work, keys=[key])
    store = CredentialStore()
    config = {
        "auths": {
            token_auth_registry.host: {
                "username": token_auth_registry.username,
                "password": token_auth_registry.password,
            }
        }
    }
    import base64

    store.add_pull_secret(
        {
            "metadata": {"namespace": "team", "name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        }
    )
    assert token_auth_registry.token_server is not None
    realm_host = token_auth_registry.token_server.realm.split("/")[2]
    access = RegistryAccess(
        # The token service is named exactly: it runs on loopback like the registry.
        allowed=(token_auth_registry.host, realm_host),
        ca_files=(str(token_auth_registry.ca_file),),
    )
    client = RegistryClient(access, store)
    checker = ImageChecker(client, AttestationVerifier(load_trust_policies([policy])))
    try:
        before = len(token_auth_registry.token_server.requests)
        result = checker.check(image.ref)
        assert result.report.ok, errors(result)
        # One token for the repository, reused for every request after it.
        assert len(token_auth_registry.token_server.requests) - before == 1
    finally:
        client.close()

    # Without the realm's host allowed, the token service (a loopback address reached by
    # name) is refused: a registry cannot send us to an internal address.
    anonymous = check(token_auth_registry, policy, image.ref, credentials=store)
    assert "private, loopback or link-local addresses are refused" in errors(anonymous)


# -- host allow-list and SSRF -------------------------------------------------------------


class _Listener:
    """A TCP port that records whether anything connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

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


def _checker(allowed: tuple[str, ...], work: Path, key: CosignKey, **limits: Any) -> ImageChecker:
    access = RegistryAccess(allowed=allowed, insecure=frozenset(allowed))
    client = RegistryClient(access, limits=RegistryLimits(**limits) if limits else None, timeout=5)
    return ImageChecker(
        client, AttestationVerifier(load_trust_policies([trust_file(work, keys=[key])]))
    )


@pytest.mark.parametrize(
    "allowed",
    [(), ("registry.example",), ("*",), ("127.0.0.*",)],
    ids=["nothing-allowed", "other-host", "glob-everything", "glob-loopback"],
)
def test_disallowed_and_private_hosts_get_no_connection(
    allowed: tuple[str, ...], work: Path, key: CosignKey
) -> None:
    listener = _Listener()
    checker = _checker(allowed, work, key)
    try:
        result = checker.check(f"127.0.0.1:{listener.port}/acme/app:v1")
        assert not result.report.ok and not result.report.fault
        message = errors(result)
        assert ("not in the allowed registries" in message) or (
            "private, loopback or link-local addresses are refused" in message
        )
        assert listener.connections() == 0
    finally:
        checker.client.close()
        listener.close()


@pytest.mark.parametrize(
    "ref",
    [
        "169.254.169.254/latest/meta-data:v1",
        "[::1]:5000/acme/app:v1",
        "10.0.0.1:5000/acme/app:v1",
        "localhost:5000/acme/app:v1",
    ],
)
def test_private_addresses_refused_under_a_glob(ref: str, work: Path, key: CosignKey) -> None:
    checker = _checker(("*",), work, key)
    try:
        result = checker.check(ref)
        # The guard's own message: the address was refused, not a connection that failed.
        assert "private, loopback or link-local addresses are refused" in errors(result)
        assert not result.report.fault
    finally:
        checker.client.close()


def test_bad_references_are_refused_with_the_reason(work: Path, key: CosignKey) -> None:
    checker = _checker(("*",), work, key)
    for ref, why in [
        ("https://ghcr.io/acme/app:v1", "no scheme"),
        ("user:pw@ghcr.io/acme/app", "bad digest"),
        ("ghcr.io/Acme/app:v1", "bad repository name component"),
        ("ghcr.io/acme/app@sha256:abc", "bad digest"),
    ]:
        assert why in errors(checker.check(ref)), ref
    checker.client.close()


# -- size caps ------------------------------------------------------------------------------


def test_manifest_blob_and_referrer_caps(
    referrers_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = attested_image(referrers_registry, "acme/caps", GOOD_SBOM, key, work)
    policy = trust_file(work, keys=[key])
    small_manifests = check(
        referrers_registry, policy, image.ref, limits=RegistryLimits(max_manifest_bytes=200)
    )
    assert "over the 200 byte limit" in errors(small_manifests)

    small_blobs = check(
        referrers_registry, policy, image.ref, limits=RegistryLimits(max_blob_bytes=1000)
    )
    assert "over the 1000 byte limit" in errors(small_blobs)
    assert not small_blobs.report.ok

    for n in range(3):
        attach_referrer(
            referrers_registry,
            image.repo,
            image.digest,
            artifact_type="application/vnd.example.note",
            blob=f"note {n}".encode(),
            blob_media_type="text/plain",
            fallback_tag=False,
        )
    few_referrers = check(
        referrers_registry, policy, image.ref, limits=RegistryLimits(max_referrers=2)
    )
    assert "has more than 2 referrers" in errors(few_referrers)


# -- faults ---------------------------------------------------------------------------------


@pytest.fixture
def fault_server() -> Iterator[Any]:
    servers: list[FaultServer] = []

    def make(respond: Any) -> FaultServer:
        servers.append(FaultServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Any:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def _fault_check(server: FaultServer, work: Path, key: CosignKey, **limits: Any) -> Any:
    checker = _checker((server.host,), work, key, **limits)
    try:
        started = time.monotonic()
        result = checker.check(f"{server.host}/acme/app:v1")
        return result, time.monotonic() - started
    finally:
        checker.client.close()


def test_registry_that_never_answers_is_a_bounded_fault(
    fault_server: Any, work: Path, key: CosignKey
) -> None:
    server = fault_server(lambda handler: time.sleep(5))
    result, seconds = _fault_check(server, work, key, read_timeout=1.0)
    assert result.report.fault and not result.report.ok
    assert f"no answer from {server.host} within 1.0 s" in errors(result)
    assert "cannot verify" in errors(result)
    assert seconds < 5  # gave up on its read timeout, did not wait for the server


def test_500_and_429_are_faults_not_policy_failures(
    fault_server: Any, work: Path, key: CosignKey
) -> None:
    result, _ = _fault_check(fault_server(_answer(500)), work, key)
    assert result.report.fault and "answered 500" in errors(result)
    result, _ = _fault_check(fault_server(_answer(429, {"Retry-After": "7"})), work, key)
    assert (
        result.report.fault
        and "answered 429" in errors(result)
        and "Retry-After 7" in errors(result)
    )


def test_connection_refused_is_a_fault(work: Path, key: CosignKey) -> None:
    listener = _Listener()
    host = f"127.0.0.1:{listener.port}"
    listener.close()  # nothing listens there now
    checker = _checker((host,), work, key)
    result = checker.check(f"{host}/acme/app:v1")
    checker.client.close()
    assert result.report.fault and "unreachable" in errors(result)


def test_redirects_are_bounded_and_checked(fault_server: Any, work: Path, key: CosignKey) -> None:
    metadata = fault_server(_answer(307, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    result, _ = _fault_check(metadata, work, key)
    assert "refused plain HTTP to 169.254.169.254" in errors(result)

    https_metadata = fault_server(_answer(307, {"Location": "https://169.254.169.254/x"}))
    result, _ = _fault_check(https_metadata, work, key)
    assert "private, loopback or link-local addresses are refused" in errors(result)

    holder: dict[str, str] = {}
    loop = fault_server(
        lambda h: _answer(302, {"Location": f"http://{holder['host']}/v2/again"})(h)
    )
    holder["host"] = loop.host
    result, _ = _fault_check(loop, work, key)
    assert "more than 3 redirects" in errors(result)
    assert loop.hits == 4


def test_oversized_response_is_cut_off(fault_server: Any, work: Path, key: CosignKey) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        handler.end_headers()  # no length: the body just keeps coming
        try:
            for _ in range(10_000):
                handler.wfile.write(b" " * 65536)
        except OSError:
            pass

    result, _ = _fault_check(fault_server(endless), work, key, max_manifest_bytes=1 << 20)
    assert "response is over the 1048576 byte limit" in errors(result)


# -- cache ----------------------------------------------------------------------------------


def test_verified_digests_are_cached_and_shared(
    referrers_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = attested_image(referrers_registry, "acme/cached", GOOD_SBOM, key, work)
    checker = checker_for(referrers_registry, trust_file(work, keys=[key]))
    try:
        first = checker.check(image.digest_ref)
        assert first.report.ok and not first.cached
        requests = checker.client.requests
        second = checker.check(image.digest_ref)
        assert second.cached and second.report.ok and checker.client.requests == requests
        by_tag = checker.check(image.ref)  # a tag costs one resolve, then the cache
        assert by_tag.cached and checker.client.requests == requests + 1
        assert len(by_tag.sboms[0].sbom.components) == len(first.sboms[0].sbom.components)
    finally:
        checker.client.close()


def test_concurrent_checks_of_one_digest_load_it_once(
    referrers_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    image = attested_image(referrers_registry, "acme/concurrent", GOOD_SBOM, key, work)
    checker = checker_for(referrers_registry, trust_file(work, keys=[key]))
    single = checker_for(referrers_registry, trust_file(work, keys=[key]))
    try:
        single.check(image.digest_ref)
        one_load = single.client.requests
        barrier = threading.Barrier(8)
        results = []

        def run() -> None:
            barrier.wait()
            results.append(checker.check(image.digest_ref))

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r.report.ok for r in results) and len(results) == 8
        assert checker.client.requests == one_load
        assert checker.cache.misses == 1
    finally:
        checker.client.close()
        single.client.close()


# -- the command line -------------------------------------------------------------------------


def sbomgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbomgate.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NO_COLOR": "1"},
    )


def test_cli_verify_json_contract_and_exit_codes(
    plain_registry: RegistryServer, key: CosignKey, work: Path
) -> None:
    good = attested_image(plain_registry, "acme/cli-good", GOOD_SBOM, key, work)
    bad = attested_image(plain_registry, "acme/cli-bad", BAD_SBOM, key, work)
    policy = trust_file(work, keys=[key])
    common = [
        "--trust",
        str(policy),
        "--insecure-registry",
        plain_registry.host,
        "--facts",
        str(FACTS),
    ]

    ok = sbomgate("verify", good.ref, *common, "--format", "json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["allowed"] is True and doc["summary"]["images"] == 1
    [image] = doc["images"]
    assert image["ref"] == good.ref and image["digest"] == good.digest and image["error"] is None
    [attestation] = image["attestations"]
    assert attestation["verified"] is True and attestation["signer"] == "key key-0"
    assert attestation["predicateType"] == "https://cyclonedx.org/bom"

    denied = sbomgate("verify", good.ref, bad.ref, *common, "--format", "json")
    assert denied.returncode == 1, denied.stderr
    doc = json.loads(denied.stdout)
    assert doc["allowed"] is False
    assert {v["image"] for v in doc["violations"]} == {
        f"{plain_registry.host}/acme/cli-bad@{bad.digest}"
    }

    table = sbomgate("verify", good.ref, *common, "--timings")
    assert table.returncode == 0 and "ALLOWED" in table.stdout
    for phase in ("resolve", "discover", "verify", "parse", "evaluate"):
        assert phase in table.stderr

    sarif = sbomgate("verify", bad.ref, *common, "--format", "sarif")
    assert sarif.returncode == 1 and json.loads(sarif.stdout)["runs"][0]["results"]

    missing = sbomgate("verify", f"{plain_registry.host}/acme/none:v1", *common, "--format", "json")
    assert missing.returncode == 1
    assert "not found" in json.loads(missing.stdout)["images"][0]["error"]

    broken = work / "broken.yaml"
    broken.write_text(
        "apiVersion: sbomgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: x}\nspec: {images: []}\n"
    )
    error = sbomgate("verify", good.ref, "--trust", str(broken))
    assert error.returncode == 2
    assert "(TrustPolicy x): spec.images: must not be empty" in error.stderr
    assert "Traceback" not in error.stderr
