"""A real Kubernetes control plane for end-to-end admission tests, started and stopped by pytest.

Like controller-runtime's envtest: etcd and kube-apiserver only (no controller-manager, scheduler
or kubelet), so objects are stored and admitted (webhooks included) but nothing reconciles them:
a Deployment makes no ReplicaSet and a Pod is never scheduled (tests/support/kube_node.py adds
a real node to a control plane started with ``node_ip``). The binaries (etcd, kube-apiserver,
kubectl, helm) are built by `make tools` into `.cache/bin/` from tools/kube/.

Everything listens on 127.0.0.1 only: etcd over plain HTTP on free ports, the API server over TLS
with certificates from a throw-away CA made here (`KubeCA`), which also signs the admin client
certificate (O=system:masters) and can issue serving certificates for test webhook servers, so
``ca_bundle_pem`` in a webhook configuration is simply ``cluster.ca.cert_pem``.

Webhook configurations take effect through the API server's informer, a moment after they are
stored. `register_validating_webhook` waits until the configuration is live (and
`delete_validating_webhook` until it is gone) with a canary: each configuration carries one
extra webhook that only matches ConfigMaps labelled ``sbomgate.test/webhook-canary=<name>`` and
points at a closed loopback port, so a server-side dry-run create of such a ConfigMap fails
exactly while the configuration is in force.

tests/conftest.py registers its fixtures (pytest_plugins).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support.net import free_port

__all__ = [
    "ETCD_BIN",
    "HELM_BIN",
    "KUBECTL_BIN",
    "KUBE_APISERVER_BIN",
    "KubeCA",
    "KubeCluster",
    "kube_cluster",
    "kube_version",
    "private_kube_cluster",
    "start_kube_cluster",
]

ROOT = Path(__file__).resolve().parents[2]
CACHE_BIN = ROOT / ".cache" / "bin"
ETCD_BIN = CACHE_BIN / "etcd"
KUBE_APISERVER_BIN = CACHE_BIN / "kube-apiserver"
KUBECTL_BIN = CACHE_BIN / "kubectl"
HELM_BIN = CACHE_BIN / "helm"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
WEBHOOK_TIMEOUT = 15.0
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
PR_SET_PDEATHSIG = 1
CANARY_LABEL = "sbomgate.test/webhook-canary"
# Nothing listens on port 1, so a call to the canary webhook fails at once (connection refused).
CANARY_URL = "https://127.0.0.1:1/canary"

# Every kind whose objects carry a pod template (plus ephemeral containers), as sbomgate admits.
DEFAULT_WEBHOOK_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "resources": ["jobs", "cronjobs"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    },
]
DEFAULT_NAMESPACE_SELECTOR: dict[str, Any] = {
    "matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
    ]
}


def kube_version() -> str:
    """The Kubernetes version `make tools` builds: the k8s.io/kubernetes pin in tools/kube."""
    text = (ROOT / "tools" / "kube" / "go.mod").read_text()
    found = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("tools/kube/go.mod does not require k8s.io/kubernetes")
    return found.group(1)


# --------------------------------------------------------------------------- certificates


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _subject(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class KubeCA:
    """The cluster's throw-away CA: signs the API server's, the admin's and test servers' certs."""

    directory: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def create(cls, directory: Path) -> KubeCA:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _subject("sbomgate test cluster CA", "sbomgate tests")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory=directory, cert=cert, key=key)
        ca.cert_file.write_bytes(ca.cert_pem)
        return ca

    @property
    def cert_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        directory: Path,
        stem: str,
        *,
        common_name: str,
        organization: str | None = None,
        hosts: Sequence[str] = (),
        client: bool = False,
    ) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (a leaf for TLS serving, or client auth)."""
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_subject(common_name, organization))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)
        return cert_file, key_file

    def issue_serving_cert(
        self, directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")
    ) -> tuple[Path, Path]:
        """A serving certificate (cert file, key file) for a test server, e.g. a webhook."""
        return self.issue(directory, "serving", common_name=hosts[0], hosts=hosts)


# --------------------------------------------------------------------------- processes


def _require(binary: Path) -> None:
    if not (binary.exists() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)


def _tail(log_file: Path, lines: int = 40) -> str:
    if not log_file.exists():
        return ""
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the control plane and its clients: no proxies, nothing from ~."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not k.startswith(("KUBE", "HELM_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_file: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to this PID (never a process name), then SIGKILL if it does not exit."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT)

    def failure(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"{self.name} {what} (exit code {self.popen.poll()}); "
            f"log {self.log_file}:\n{_tail(self.log_file)}"
        )


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it dies (Linux), so a
    killed pytest leaves no server behind (SIGTERM is not enough: an API server whose etcd
    went away at the same moment hangs in graceful termination)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(name: str, args: list[str], log_file: Path, env: dict[str, str]) -> _Process:
    with log_file.open("ab") as log:
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    return _Process(name, popen, log_file)


def _start_etcd(directory: Path, env: dict[str, str]) -> tuple[_Process, str]:
    """etcd on two free loopback ports; returns the process and its client URL."""
    last: RuntimeError | None = None
    for attempt in range(3):  # a free port can be taken between probe and bind
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        data_dir = directory / "etcd-data"
        log_file = directory / "etcd.log"
        args = [
            str(ETCD_BIN),
            "--name=sbomgate-test",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=sbomgate-test={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
            # Keep memory and disk small: tests write little.
            "--quota-backend-bytes=268435456",
            "--snapshot-count=10000",
        ]
        process = _spawn("etcd", args, log_file, env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.alive():
            if _etcd_healthy(client_url):
                return process, client_url
            time.sleep(0.05)
        last = process.failure(
            f"not healthy after {START_TIMEOUT}s"
            if process.alive()
            else "exited before it was healthy"
        )
        process.stop()
        if "address already in use" not in _tail(log_file):
            break
        with contextlib.suppress(OSError):
            log_file.rename(log_file.with_suffix(f".{attempt}.log"))
        _rmtree(data_dir)
    assert last is not None
    raise last


def _etcd_healthy(client_url: str) -> bool:
    host, port = client_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return False
    finally:
        conn.close()
    if response.status != 200:
        return False
    try:
        return json.loads(body).get("health") == "true"
    except ValueError:
        return False


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- cluster


@dataclass
class KubeCluster:
    """A running etcd + kube-apiserver, with an admin kubeconfig and kubectl/helm runners."""

    directory: Path
    server: str  # https://127.0.0.1:PORT
    kubeconfig: Path
    ca: KubeCA
    etcd_url: str
    version: str
    startup_seconds: float = 0.0
    apiserver_args: list[str] = field(default_factory=list)
    _processes: list[_Process] = field(default_factory=list, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)
    _server_env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ca_file(self) -> Path:
        return self.ca.cert_file

    @property
    def apiserver_log(self) -> Path:
        return self.directory / "kube-apiserver.log"

    @property
    def etcd_log(self) -> Path:
        return self.directory / "etcd.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for any Kubernetes client: KUBECONFIG, kubectl/helm caches in tmp."""
        return dict(self._env)

    # ---------------------------------------------------------------- clients

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run .cache/bin/kubectl against this cluster (text in and out, never raises on exit
        status unless ``check``; a failure with ``check`` shows stdout and stderr)."""
        return self._run(
            [str(KUBECTL_BIN), f"--kubeconfig={self.kubeconfig}", *args], input, check, timeout
        )

    def helm(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run .cache/bin/helm against this cluster, with its cache/config/data dirs in tmp."""
        return self._run(
            [str(HELM_BIN), f"--kubeconfig={self.kubeconfig}", *args], input, check, timeout
        )

    def _run(
        self, args: list[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=True,
            env=self._env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args[:1] + args[2:])} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def apply(
        self, *objects: Mapping[str, Any], args: Sequence[str] = (), check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply -f -` of the given objects (as one YAML stream)."""
        stream = yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False)
        return self.kubectl("apply", *args, "-f", "-", input=stream, check=check)

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Create (or keep) a namespace. The API server adds kubernetes.io/metadata.name."""
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})

    def admin_connection(self, timeout: float = 30) -> http.client.HTTPSConnection:
        """A new HTTPS connection to the API server as the admin (its client certificate),
        for requests kubectl cannot make or would make too slowly."""
        pki = self.directory / "pki"
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        return http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)

    # ---------------------------------------------------------------- webhooks

    def register_validating_webhook(
        self,
        name: str,
        url: str,
        ca_bundle_pem: bytes,
        *,
        failure_policy: str = "Fail",
        timeout_seconds: int = 10,
        side_effects: str = "None",
        rules: Sequence[Mapping[str, Any]] | None = None,
        namespace_selector: Mapping[str, Any] | None = None,
        object_selector: Mapping[str, Any] | None = None,
        match_policy: str = "Equivalent",
        wait: bool = True,
    ) -> dict[str, Any]:
        """Apply an admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration ``name`` that
        sends AdmissionReviews (v1) to ``url`` (clientConfig.url), and wait until it is live.

        The webhook's own name is ``name`` when it is already fully qualified (two dots or
        more), else ``<name>.sbomgate.test``. Default rules: CREATE and UPDATE of pods,
        pods/ephemeralcontainers and every pod-making workload kind; default namespace
        selector: everything but kube-system. Returns the applied object."""
        webhook_name = name if name.count(".") >= 2 else f"{name}.sbomgate.test"
        webhook: dict[str, Any] = {
            "name": webhook_name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "url": url,
                "caBundle": _b64(ca_bundle_pem),
            },
            "rules": [dict(r) for r in (rules if rules is not None else DEFAULT_WEBHOOK_RULES)],
            "failurePolicy": failure_policy,
            "matchPolicy": match_policy,
            "sideEffects": side_effects,
            "timeoutSeconds": timeout_seconds,
            "namespaceSelector": dict(
                namespace_selector if namespace_selector is not None else DEFAULT_NAMESPACE_SELECTOR
            ),
        }
        if object_selector is not None:
            webhook["objectSelector"] = dict(object_selector)
        configuration = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "sbomgate-tests"},
            },
            "webhooks": [webhook, self.canary_webhook(name)],
        }
        self.apply(configuration)
        if wait:
            self.wait_for_canary(name, live=True)
        return configuration

    def delete_validating_webhook(self, name: str, *, wait: bool = True) -> None:
        """Delete the ValidatingWebhookConfiguration ``name`` and wait until it is out of force."""
        self.kubectl(
            "delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=True
        )
        if wait:
            self.wait_for_canary(name, live=False)

    def canary_webhook(self, name: str) -> dict[str, Any]:
        """The webhook that nothing answers, refusing only ConfigMaps labelled `name`: its
        configuration is in force once a probe carrying that label is refused."""
        return {
            "name": f"canary.{name}.sbomgate.test",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": CANARY_URL, "caBundle": _b64(self.ca.cert_pem)},
            "rules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["configmaps"],
                    "operations": ["CREATE"],
                    "scope": "Namespaced",
                }
            ],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 2,
            "objectSelector": {"matchLabels": {CANARY_LABEL: name}},
        }

    def wait_for_canary(self, name: str, *, live: bool) -> None:
        """Wait until the canary webhook `name` is in force (`live`) or gone."""
        probe = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "generateName": "webhook-canary-",
                "namespace": "default",
                "labels": {CANARY_LABEL: name},
            },
        }
        marker = f'"canary.{name}.sbomgate.test"'
        deadline = time.monotonic() + WEBHOOK_TIMEOUT
        while True:
            result = self.kubectl(
                "create", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(probe)
            )
            called = result.returncode != 0 and marker in result.stderr
            if result.returncode != 0 and not called:
                raise AssertionError(f"webhook canary probe failed: {result.stderr}")
            if called == live:
                return
            if time.monotonic() > deadline:
                state = "in force" if live else "gone"
                raise AssertionError(
                    f"webhook configuration {name} not {state} after {WEBHOOK_TIMEOUT}s"
                )
            time.sleep(0.05)

    # ---------------------------------------------------------------- faults

    # For a private cluster (`private_kube_cluster`) only: the session cluster is shared.

    def _process(self, name: str) -> _Process:
        [process] = [p for p in self._processes if p.name == name]
        return process

    def _respawn(self, name: str) -> _Process:
        old = self._process(name)
        if old.alive():
            raise AssertionError(f"{name} is still running")
        args = old.popen.args
        assert isinstance(args, list)
        # The same command line: same ports, data directory and certificates.
        new = _spawn(name, [str(a) for a in args], old.log_file, self._server_env)
        self._processes[self._processes.index(old)] = new
        return new

    def _halt(self, name: str, kill: bool, grace: float) -> None:
        popen = self._process(name).popen
        if popen.poll() is None:
            if kill:
                popen.kill()
            else:
                popen.terminate()
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=STOP_TIMEOUT)

    def stop_apiserver(self, *, kill: bool = False, grace: float = STOP_TIMEOUT) -> None:
        """Stop kube-apiserver: SIGTERM (it stops listening and closes its watches at once),
        then SIGKILL after ``grace`` seconds if it has not exited (with watch clients connected
        it often lingers in its shutdown); or SIGKILL at once with ``kill``. etcd keeps running,
        so everything stored survives."""
        self._halt("kube-apiserver", kill, grace)

    def start_apiserver(self) -> float:
        """Start the stopped kube-apiserver again on the same port, with the same flags, and
        wait for /readyz; returns the seconds it took."""
        started = time.monotonic()
        process = self._respawn("kube-apiserver")
        pki = self.directory / "pki"
        deadline = started + START_TIMEOUT
        status, body = 0, ""
        while time.monotonic() < deadline and process.alive():
            status, body = _readyz(self.server, self.ca_file, pki / "admin.crt", pki / "admin.key")
            if status == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        raise process.failure(f"not ready again after restart; /readyz {status}: {body}")

    def stop_etcd(self, *, kill: bool = False, grace: float = STOP_TIMEOUT) -> None:
        """Stop etcd (the API server keeps running, unable to read or write)."""
        self._halt("etcd", kill, grace)

    def start_etcd(self) -> float:
        """Start the stopped etcd again (same ports, same data); returns the seconds until it
        is healthy."""
        started = time.monotonic()
        process = self._respawn("etcd")
        while time.monotonic() < started + START_TIMEOUT and process.alive():
            if _etcd_healthy(self.etcd_url):
                return time.monotonic() - started
            time.sleep(0.05)
        raise process.failure("not healthy again after restart")

    # ---------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Stop the API server, then etcd (each by its PID)."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {p.name} ({p.log_file}):\n{_tail(p.log_file)}" for p in self._processes
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Flags a node's API server sets otherwise (see start_kube_cluster).
_NODE_REPLACED = (
    "--bind-address",
    "--advertise-address",
    "--authorization-mode",
    "--disable-admission-plugins",
    "--endpoint-reconciler-type",
)


def _readyz(server: str, ca_file: Path, cert: Path, key: Path) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(str(cert), str(key))
    host, port = server.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), timeout=5, context=context)
    try:
        conn.request("GET", "/readyz?verbose")
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


def _write_kubeconfig(path: Path, server: str, ca_file: Path, cert: Path, key: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sbomgate-test",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [
            {"name": "admin", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [
            {
                "name": "sbomgate-test",
                "context": {"cluster": "sbomgate-test", "user": "admin", "namespace": "default"},
            }
        ],
        "current-context": "sbomgate-test",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def start_kube_cluster(directory: Path, *, node_ip: str | None = None) -> KubeCluster:
    """Make certificates, start etcd and kube-apiserver under ``directory``, wait for /readyz.

    With ``node_ip`` (the host's address), the API server is made for a real node
    (tests/support/kube_node.py): it listens on every address and advertises ``node_ip`` (the
    `kubernetes` Service's endpoint, reached from Pods through kube-proxy), authorizes kubelets
    with the Node authorizer, gives Pods service-account tokens, and calls webhook Services'
    endpoints itself (aggregator routing: no Service proxying needed on the host).

    Raises RuntimeError (with the tail of the failing server's log) when a server does not come
    up; the caller owns the returned cluster and must call ``stop()``."""
    for binary in (ETCD_BIN, KUBE_APISERVER_BIN, KUBECTL_BIN, HELM_BIN):
        _require(binary)
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    pki = directory / "pki"
    ca = KubeCA.create(pki)
    serving_cert, serving_key = ca.issue(
        pki,
        "apiserver",
        common_name="kube-apiserver",
        hosts=(
            "127.0.0.1",
            "localhost",
            "10.0.0.1",  # the `kubernetes` Service's ClusterIP in SERVICE_CLUSTER_IP_RANGE
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            *((node_ip,) if node_ip else ()),
        ),
    )
    admin_cert, admin_key = ca.issue(
        pki, "admin", common_name="sbomgate-test-admin", organization="system:masters", client=True
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key_file, sa_pub_file = pki / "sa.key", pki / "sa.pub"
    sa_key_file.write_bytes(_pem_key(sa_key))
    sa_key_file.chmod(0o600)
    sa_pub_file.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    home = directory / "home"
    home.mkdir(exist_ok=True)
    env = _child_env({"HOME": str(home)})
    etcd, etcd_url = _start_etcd(directory, env)
    processes = [etcd]
    try:
        apiserver, server, args = _start_apiserver(
            directory,
            env,
            etcd,
            etcd_url,
            ca,
            serving_cert,
            serving_key,
            admin_cert,
            admin_key,
            sa_key_file,
            sa_pub_file,
            node_ip,
        )
    except BaseException:
        etcd.stop()
        raise
    processes.append(apiserver)
    kubeconfig = directory / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, ca.cert_file, admin_cert, admin_key)
    client_env = _child_env(
        {
            "HOME": str(home),
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(directory / "kube-cache"),
            "KUBERC": "off",
            "HELM_CACHE_HOME": str(directory / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(directory / "helm" / "config"),
            "HELM_DATA_HOME": str(directory / "helm" / "data"),
        }
    )
    return KubeCluster(
        directory=directory,
        server=server,
        kubeconfig=kubeconfig,
        ca=ca,
        etcd_url=etcd_url,
        version=kube_version(),
        startup_seconds=time.monotonic() - started,
        apiserver_args=args,
        _processes=processes,
        _env=client_env,
        _server_env=env,
    )


def _start_apiserver(
    directory: Path,
    env: dict[str, str],
    etcd: _Process,
    etcd_url: str,
    ca: KubeCA,
    serving_cert: Path,
    serving_key: Path,
    admin_cert: Path,
    admin_key: Path,
    sa_key_file: Path,
    sa_pub_file: Path,
    node_ip: str | None,
) -> tuple[_Process, str, list[str]]:
    last: RuntimeError | None = None
    for attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        log_file = directory / "kube-apiserver.log"
        args = [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving_cert}",
            f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={ca.cert_file}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={sa_pub_file}",
            f"--service-account-signing-key-file={sa_key_file}",
            # No token controller runs, so the `default` ServiceAccount never appears; without
            # this, every Pod create would be refused for lack of it.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            # The `kubernetes` Endpoints may not point at loopback; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            "--v=1",
        ]
        if node_ip is not None:
            args = [a for a in args if not a.startswith(_NODE_REPLACED)] + [
                "--bind-address=0.0.0.0",
                f"--advertise-address={node_ip}",
                "--authorization-mode=Node,RBAC",
                "--enable-aggregator-routing=true",
                f"--kubelet-client-certificate={admin_cert}",
                f"--kubelet-client-key={admin_key}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        process = _spawn("kube-apiserver", [str(KUBE_APISERVER_BIN), *args], log_file, env)
        deadline = time.monotonic() + START_TIMEOUT
        status, body = 0, ""
        while time.monotonic() < deadline and process.alive() and etcd.alive():
            status, body = _readyz(server, ca.cert_file, admin_cert, admin_key)
            if status == 200:
                return process, server, args
            time.sleep(0.1)
        if not etcd.alive():
            process.stop()
            raise etcd.failure("exited while kube-apiserver was starting")
        if process.alive():
            last = process.failure(f"not ready after {START_TIMEOUT}s; /readyz {status}: {body}")
        else:
            last = process.failure("exited before it was ready")
        process.stop()
        if "address already in use" not in _tail(log_file):
            break
        with contextlib.suppress(OSError):
            log_file.rename(log_file.with_suffix(f".{attempt}.log"))
    assert last is not None
    raise last


@contextlib.contextmanager
def _running_cluster(directory: Path) -> Iterator[KubeCluster]:
    try:
        cluster = start_kube_cluster(directory)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real etcd + kube-apiserver for the whole session (see the module docstring)."""
    with _running_cluster(tmp_path_factory.mktemp("kube-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def private_kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A control plane of the test module's own, separate from the session's, for tests that
    stop, kill or restart kube-apiserver or etcd (`stop_apiserver`, `start_apiserver`, ...)."""
    with _running_cluster(tmp_path_factory.mktemp("private-kube-cluster")) as cluster:
        yield cluster
