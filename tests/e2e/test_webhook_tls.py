"""`sbomgate serve` over real TLS (a subprocess, as in production): TLS 1.2 and 1.3 only, no
plaintext listener, no start without a usable certificate, and certificate rotation without
dropping connections, a broken new pair leaving the old one serving.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from support.kube_cluster import KubeCA
from support.net import free_port
from support.oci_builder import offline_trust_file

RELOAD_INTERVAL = 2.0  # serving.tls.ReloadingCertificate's


@dataclass
class Gate:
    port: int
    ca: KubeCA
    cert: Path
    key: Path
    log: Path
    process: subprocess.Popen[bytes]
    work: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.cert_file))

    def serial(self) -> int:
        """The serial a new connection is served."""
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            self.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == name:
                    out.append(entry)
        return out

    def issue(self, stem: str) -> tuple[Path, Path, int]:
        cert, key = self.ca.issue(
            self.work / "issued", stem, common_name="127.0.0.1", hosts=["127.0.0.1"]
        )
        return cert, key, x509.load_pem_x509_certificate(cert.read_bytes()).serial_number

    def install(self, cert: Path, key: Path) -> None:
        """Replace both files at once (rename), as a Secret volume update does."""
        for source, target in ((cert, self.cert), (key, self.key)):
            temporary = target.with_suffix(".new")
            temporary.write_bytes(source.read_bytes())
            os.replace(temporary, target)


def _serve(work: Path, config: dict[str, Any], name: str) -> tuple[subprocess.Popen[bytes], Path]:
    config_file = work / f"{name}.json"
    config_file.write_text(json.dumps(config))
    log = work / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(config_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def _base_config(work: Path) -> dict[str, Any]:
    return {
        "trustPolicies": [str(offline_trust_file(work))],
        "allowedRegistries": ["registry.invalid"],
    }


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    work = tmp_path_factory.mktemp("tls")
    ca = KubeCA.create(work / "ca")
    issued_cert, issued_key = ca.issue(
        work / "issued", "first", common_name="127.0.0.1", hosts=["127.0.0.1"]
    )
    tls = work / "tls"
    tls.mkdir()
    cert, key = tls / "tls.crt", tls / "tls.key"
    cert.write_bytes(issued_cert.read_bytes())
    key.write_bytes(issued_key.read_bytes())
    port = free_port()
    config = {
        **_base_config(work),
        "tls": {"certFile": str(cert), "keyFile": str(key)},
        "listen": {"host": "127.0.0.1", "port": port},
    }
    process, log = _serve(work, config, "serve")
    served = Gate(port, ca, cert, key, log, process, work)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=2, context=served.context()
            )
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"sbomgate serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield served
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers exactly `version` (old ones need OpenSSL's security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 and TLSv1_1
        context.minimum_version = version
        context.maximum_version = version
    return context


def _handshake_with_a_permissive_server(gate: Gate, client: ssl.SSLContext) -> str:
    """The version `client` negotiates with a server that accepts anything: proof that the
    client really offers that version."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.load_cert_chain(gate.cert, gate.key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        result: dict[str, Any] = {}

        def accept() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    result["version"] = tls.version()
            except (ssl.SSLError, OSError) as exc:
                result["error"] = exc

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client.wrap_socket(raw) as tls,
        ):
            version = str(tls.version())
        thread.join(10)
    return version


@pytest.mark.parametrize(("version", "name"), [("TLSv1", "TLSv1"), ("TLSv1_1", "TLSv1.1")])
def test_tls_1_0_and_1_1_are_refused_by_the_server(gate: Gate, version: str, name: str) -> None:
    client = _client(ssl.TLSVersion[version])
    assert _handshake_with_a_permissive_server(gate, client) == name
    with (
        socket.create_connection(("127.0.0.1", gate.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        client.wrap_socket(raw)
    assert gate.process.poll() is None


@pytest.mark.parametrize(("version", "name"), [("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_served(gate: Gate, version: str, name: str) -> None:
    context = _client(ssl.TLSVersion[version])
    conn = http.client.HTTPSConnection("127.0.0.1", gate.port, timeout=10, context=context)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
        assert conn.sock.version() == name  # type: ignore[union-attr]
    finally:
        conn.close()


def test_there_is_no_plaintext_listener(gate: Gate) -> None:
    with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: sbomgate\r\nConnection: close\r\n\r\n")
        answer = b""
        try:
            while chunk := raw.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not answer.startswith(b"HTTP/")  # at most a TLS alert record
    assert gate.process.poll() is None


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "no certificate",
            "error: a TLS certificate and key are required (tls.certFile / --tls-cert)",
        ),
        (
            "missing file",
            "error: cannot read the TLS certificate or key: [Errno 2] No such file or directory",
        ),
        ("key of another certificate", "is not the key of the certificate in"),
        ("half-written certificate", "half.crt: no complete PEM certificate in it"),
    ],
    ids=["no-certificate", "missing-file", "key-of-another-certificate", "half-written"],
)
def test_serve_does_not_start_without_a_usable_certificate(
    gate: Gate, case: str, message: str
) -> None:
    work = gate.work / case.replace(" ", "-")
    work.mkdir()
    cert, key, _ = gate.issue(f"start-{uuid.uuid4().hex[:8]}")
    other_cert, other_key, _ = gate.issue(f"other-{uuid.uuid4().hex[:8]}")
    half = work / "half.crt"
    half.write_bytes(cert.read_bytes()[:200])
    tls = {
        "no certificate": None,
        "missing file": {"certFile": str(work / "absent.crt"), "keyFile": str(key)},
        "key of another certificate": {"certFile": str(cert), "keyFile": str(other_key)},
        "half-written certificate": {"certFile": str(half), "keyFile": str(key)},
    }[case]
    config = {**_base_config(work), "listen": {"host": "127.0.0.1", "port": free_port()}}
    if tls is not None:
        config["tls"] = tls
    process, log = _serve(work, config, "refused")
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    del other_cert


def test_rotation_keeps_open_connections_and_new_ones_get_the_new_certificate(
    gate: Gate,
) -> None:
    context = gate.context()
    conn = http.client.HTTPSConnection("127.0.0.1", gate.port, timeout=10, context=context)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok"
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket)
    old = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True) or b"").serial_number

    cert, key, new = gate.issue(f"rotated-{uuid.uuid4().hex[:8]}")
    assert new != old
    gate.install(cert, key)
    rotated = time.monotonic()
    answered = 0
    seen = None
    while time.monotonic() - rotated < 4 * RELOAD_INTERVAL + 5:
        # The open connection: still answered, on the same socket, with its certificate.
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b"ok"
        assert conn.sock is sock
        answered += 1
        seen = gate.serial()
        if seen == new:
            break
        time.sleep(0.1)
    took = time.monotonic() - rotated
    print(
        f"\nFIGURE TLS rotation: new connections served the new certificate {took:.2f} s after "
        f"the files changed; {answered} requests answered meanwhile on the open connection"
    )
    assert seen == new, f"not reloaded within {took:.1f} s:\n{gate.log.read_text()[-2000:]}"

    # A review on the old connection, after the rotation: answered as usual.
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "after-rotation",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "team",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "ghcr.io/acme/web:1"}]},
            },
        },
    }
    conn.request(
        "POST", "/validate", body=json.dumps(review), headers={"Content-Type": "application/json"}
    )
    out = json.loads(conn.getresponse().read())
    assert conn.sock is sock
    assert out["response"]["uid"] == "after-rotation" and out["response"]["allowed"] is False
    conn.close()
    assert any(e.get("serial") == f"{new:x}" for e in gate.events("certificate reloaded"))


def _wait_for_event(gate: Gate, name: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 4 * RELOAD_INTERVAL + 5
    while time.monotonic() < deadline:
        events = gate.events(name)
        if len(events) >= count:
            return events
        time.sleep(0.1)
    raise AssertionError(f"no {name!r} in the log:\n{gate.log.read_text()[-2000:]}")


def test_a_broken_new_pair_keeps_the_old_certificate_serving(gate: Gate) -> None:
    serving = gate.serial()
    before = len(gate.events("certificate reload failed"))

    # A certificate whose key was not (yet) written.
    cert, key, fresh = gate.issue(f"unmatched-{uuid.uuid4().hex[:8]}")
    gate.install(cert, gate.key)
    failed = _wait_for_event(gate, "certificate reload failed", before + 1)[-1]
    assert "is not the key of the certificate in" in failed["error"]
    assert failed["serving"] == f"the previous certificate (serial {serving:x})"
    assert gate.serial() == serving  # new handshakes still succeed, with the old pair

    # A half-written certificate file.
    gate.cert.write_bytes(cert.read_bytes()[:150])
    failed = _wait_for_event(gate, "certificate reload failed", before + 2)[-1]
    assert "no complete PEM certificate in it" in failed["error"]
    assert gate.serial() == serving
    # Logged once per broken state, not at every check.
    time.sleep(RELOAD_INTERVAL + 0.5)
    assert len(gate.events("certificate reload failed")) == before + 2

    # Completed: picked up.
    gate.install(cert, key)
    deadline = time.monotonic() + 4 * RELOAD_INTERVAL + 5
    while gate.serial() != fresh:
        assert time.monotonic() < deadline, gate.log.read_text()[-2000:]
        time.sleep(0.2)
    assert gate.process.poll() is None
