"""Real OCI registries for the test suite, started and stopped by pytest.

Two registry programs, both built or unpacked by `make tools` into `.cache/`:

* ``distribution``: Debian's ``docker-registry`` (distribution 2.8.2). It has no referrers API,
  so clients must use the OCI 1.1 fallback tag (``sha256-<hex>``). Runs plain HTTP, TLS, TLS
  with htpasswd basic auth, or TLS with token auth (a Python token server in this module).
* ``referrers``: ``oci-referrers-registry`` (tools/ociregistry: go-containerregistry's
  ``pkg/registry`` with the native referrers API), over TLS.

Every server listens on 127.0.0.1 with its own temporary storage, is polled on ``/v2/`` until
it answers, writes its log to a file (whose tail is shown when it fails to start) and is stopped
at the end of the session. TLS certificates come from a throw-away CA made here (``registry_ca``).

tests/conftest.py registers its fixtures (pytest_plugins).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from support.net import free_port

__all__ = [
    "DISTRIBUTION_BIN",
    "REFERRERS_BIN",
    "RegistryCA",
    "RegistryServer",
    "TokenServer",
    "basic_auth_registry",
    "make_test_ca",
    "plain_registry",
    "referrers_registry",
    "registry_ca",
    "registry_ca_file",
    "start_distribution",
    "start_referrers_registry",
    "tls_registry",
    "token_auth_registry",
]

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION_BIN = ROOT / ".cache" / "docker-registry" / "usr" / "bin" / "docker-registry"
REFERRERS_BIN = ROOT / ".cache" / "bin" / "oci-referrers-registry"

TEST_USERNAME = "sbomgate"
TEST_PASSWORD = "correct-horse-battery-staple"
# bcrypt of TEST_PASSWORD, used when the stdlib `crypt` module (removed in 3.13) is unavailable.
_TEST_PASSWORD_BCRYPT = "$2b$05$c2JvbWdhdGUtdGVzdC1zYOyI9m9U2t5IKEpL1x4Hg6kH0WOuEVOOi"
TOKEN_SERVICE = "sbomgate-test-registry"
TOKEN_ISSUER = "sbomgate-test-token-issuer"
START_TIMEOUT = 15.0


# --------------------------------------------------------------------------- test CA


@dataclass(frozen=True)
class RegistryCA:
    """A throw-away CA and one server certificate for 127.0.0.1, ::1 and localhost."""

    directory: Path
    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sbomgate tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_test_ca(directory: Path, hosts: tuple[str, ...] = ()) -> RegistryCA:
    """A CA and a serving certificate for 127.0.0.1, localhost, ::1 and `hosts` (IPs)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("sbomgate test CA"))
        .issuer_name(_name("sbomgate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    *(x509.IPAddress(ipaddress.ip_address(host)) for host in hosts),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = RegistryCA(
        directory=directory,
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key_file.write_bytes(_pem_key(key))
    return ca


# --------------------------------------------------------------------------- servers


@dataclass
class RegistryServer:
    """A running registry. ``host`` is what goes in image references ("127.0.0.1:PORT")."""

    host: str
    scheme: str  # "http" | "https"
    kind: str  # "distribution" (no referrers API) | "referrers" (OCI 1.1 referrers API)
    ca_file: Path | None = None
    auth: str = "none"  # "none" | "basic" | "token"
    username: str | None = None
    password: str | None = None
    log_file: Path | None = None
    storage: Path | None = None
    token_server: TokenServer | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, path: str = "/v2/") -> str:
        return f"{self.scheme}://{self.host}{path if path.startswith('/') else '/' + path}"

    @property
    def referrers_api(self) -> bool:
        return self.kind == "referrers"

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.token_server is not None:
            self.token_server.stop()


def _answers_v2(server: RegistryServer) -> bool:
    """True once /v2/ answers at all (200, or 401 for the auth registries)."""
    hostname, port = server.host.rsplit(":", 1)
    conn: http.client.HTTPConnection
    if server.scheme == "https":
        conn = http.client.HTTPSConnection(
            hostname, int(port), timeout=2, context=server.ssl_context()
        )
    else:
        conn = http.client.HTTPConnection(hostname, int(port), timeout=2)
    try:
        conn.request("GET", "/v2/")
        status = conn.getresponse().status
    except OSError:
        return False
    finally:
        conn.close()
    return status in (200, 401)


def _require(binary: Path) -> None:
    if not (binary.exists() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)


def _wait_until_up(server: RegistryServer) -> None:
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if _answers_v2(server):
            return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(
        f"{server.kind} registry on {server.host} did not start "
        f"(exit code {server.process.poll()}); log {server.log_file}:\n{server.log_tail()}"
    )


def _htpasswd_line(username: str, password: str) -> str:
    hashed = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # stdlib until 3.13; glibc/libxcrypt does bcrypt

            hashed = crypt.crypt(password, "$2b$05$" + secrets.token_urlsafe(16)[:22])
        except ImportError:
            hashed = None
    if not hashed or not hashed.startswith("$2b$"):
        if password != TEST_PASSWORD:
            raise RuntimeError("no bcrypt available here for a password other than the default")
        hashed = _TEST_PASSWORD_BCRYPT
    return f"{username}:{hashed}\n"


def start_distribution(
    directory: Path,
    *,
    ca: RegistryCA | None,
    auth: str = "none",
    username: str = TEST_USERNAME,
    password: str = TEST_PASSWORD,
    bind: str = "127.0.0.1",
) -> RegistryServer:
    """Start distribution 2.8 (Debian docker-registry). ``ca`` None means plain HTTP; ``bind``
    is the address it listens on (a node's address for Pods and the node's containerd)."""
    _require(DISTRIBUTION_BIN)
    if auth != "none" and ca is None:
        raise ValueError("auth registries run over TLS")
    directory.mkdir(parents=True, exist_ok=True)
    storage = directory / "storage"
    log_file = directory / "registry.log"
    token_server: TokenServer | None = None
    auth_config: dict[str, object] = {}
    if auth == "basic":
        htpasswd = directory / "htpasswd"
        htpasswd.write_text(_htpasswd_line(username, password))
        auth_config = {"htpasswd": {"realm": "sbomgate-test", "path": str(htpasswd)}}
    elif auth == "token":
        assert ca is not None
        token_server = TokenServer(directory / "token", ca=ca, users={username: password})
        token_server.start()
        auth_config = {
            "token": {
                "realm": token_server.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(token_server.signing_cert_file),
            }
        }
    elif auth != "none":
        raise ValueError(f"unknown auth {auth!r}")

    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        http_config: dict[str, object] = {
            "addr": f"{bind}:{port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if ca is not None:
            http_config["tls"] = {"certificate": str(ca.cert_file), "key": str(ca.key_file)}
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http_config,
        }
        if auth_config:
            config["auth"] = auth_config
        config_file = directory / "config.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [str(DISTRIBUTION_BIN), "serve", str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = RegistryServer(
            host=f"{bind}:{port}",
            scheme="https" if ca is not None else "http",
            kind="distribution",
            ca_file=ca.ca_file if ca is not None else None,
            auth=auth,
            username=username if auth != "none" else None,
            password=password if auth != "none" else None,
            log_file=log_file,
            storage=storage,
            process=process,
        )
        try:
            _wait_until_up(server)
        except RuntimeError as exc:
            last_error = exc
            if "address already in use" in server.log_tail():
                continue
            break
        server.token_server = token_server
        return server
    if token_server is not None:
        token_server.stop()
    raise RuntimeError(str(last_error))


def start_referrers_registry(directory: Path, *, ca: RegistryCA | None) -> RegistryServer:
    """Start tools/ociregistry (OCI 1.1 referrers API) on a port of its own choosing."""
    _require(REFERRERS_BIN)
    directory.mkdir(parents=True, exist_ok=True)
    log_file = directory / "registry.log"
    args = [str(REFERRERS_BIN), "-addr", "127.0.0.1:0", "-blob-dir", str(directory / "blobs")]
    if ca is not None:
        args += ["-tls-cert", str(ca.cert_file), "-tls-key", str(ca.key_file)]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    stdout = process.stdout
    assert stdout is not None
    first_line: list[bytes] = []
    reader = threading.Thread(target=lambda: first_line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    line = first_line[0].decode().strip() if first_line else ""
    server = RegistryServer(
        host=line.removeprefix("listening on ").strip() or "127.0.0.1:0",
        scheme="https" if ca is not None else "http",
        kind="referrers",
        ca_file=ca.ca_file if ca is not None else None,
        log_file=log_file,
        storage=directory / "blobs",
        process=process,
    )
    if not line.startswith("listening on "):
        server.stop()
        raise RuntimeError(
            f"oci-referrers-registry printed no address (got {line!r}); log {log_file}:\n"
            f"{server.log_tail()}"
        )
    _wait_until_up(server)
    return server


# --------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker registry token server (the `realm` of distribution's token auth) on loopback.

    GET /token?service=...&scope=repository:NAME:pull,push (and the OAuth2 POST form) with
    basic credentials returns a JWT (RS256, certificate in the ``x5c`` header) whose ``access``
    claim grants what was asked. No credentials: a token with no access (as public registries
    answer for private repositories). Wrong credentials: 401. Requests are recorded in
    ``requests`` for tests that want to see them.
    """

    def __init__(self, directory: Path, *, ca: RegistryCA, users: dict[str, str]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.users = dict(users)
        self.requests: list[dict[str, object]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name("sbomgate test token signer"))
            .issuer_name(_name("sbomgate test token signer"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.signing_cert_file = directory / "token-signer.pem"
        self.signing_cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        """The realm URL. Its host is ``localhost``, not 127.0.0.1: go-containerregistry (and so
        cosign) refuses a token realm that is a loopback/private IP literal unless it is the
        registry's own host:port (an SSRF guard), and a host name passes that check."""
        assert self._httpd is not None
        return f"https://localhost:{self._httpd.server_address[1]}/token"

    def issue(self, subject: str, scopes: list[str], *, expires_in: int = 300) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _authenticate(self, authorization: str | None, form: dict[str, list[str]]) -> str | None:
        """'' for anonymous, the user name for good credentials, None for bad ones."""
        user = password = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                return None
            user, _, password = decoded.partition(":")
        elif form.get("grant_type") == ["password"]:
            user = form.get("username", [""])[0]
            password = form.get("password", [""])[0]
        if user is None:
            return ""
        if self.users.get(user) == password:
            return user
        return None

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, form: dict[str, list[str]]) -> None:
                if urllib.parse.urlsplit(self.path).path != "/token":
                    self.send_error(404)
                    return
                user = outer._authenticate(self.headers.get("Authorization"), form)
                scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
                outer.requests.append(
                    {"method": self.command, "user": user, "scopes": scopes, "form": form}
                )
                if user is None:
                    body = json.dumps({"errors": [{"code": "UNAUTHORIZED"}]}).encode()
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="sbomgate-test-token"')
                else:
                    token = outer.issue(user, scopes if user else [])
                    body = json.dumps(
                        {
                            "token": token,
                            "access_token": token,
                            "expires_in": 300,
                            "issued_at": dt.datetime.now(dt.UTC).isoformat(),
                        }
                    ).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                self._answer(urllib.parse.parse_qs(raw))

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None and self._thread is not None and self._thread.is_alive():
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)


# --------------------------------------------------------------------------- fixtures


@contextlib.contextmanager
def _running(server: RegistryServer) -> Iterator[RegistryServer]:
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_ca(tmp_path_factory: pytest.TempPathFactory) -> RegistryCA:
    """The session's throw-away CA; every TLS registry's certificate chains to it."""
    return make_test_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def registry_ca_file(registry_ca: RegistryCA) -> Path:
    """PEM file of the test CA (give it to clients as their trust anchor)."""
    return registry_ca.ca_file


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """distribution 2.8, plain HTTP, no auth, no referrers API."""
    with _running(start_distribution(tmp_path_factory.mktemp("reg-plain"), ca=None)) as server:
        yield server


@pytest.fixture(scope="session")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: RegistryCA
) -> Iterator[RegistryServer]:
    """distribution 2.8 over TLS (test CA), no auth."""
    with _running(start_distribution(tmp_path_factory.mktemp("reg-tls"), ca=registry_ca)) as server:
        yield server


@pytest.fixture(scope="session")
def basic_auth_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: RegistryCA
) -> Iterator[RegistryServer]:
    """distribution 2.8 over TLS with htpasswd basic auth (server.username/.password)."""
    directory = tmp_path_factory.mktemp("reg-basic")
    with _running(start_distribution(directory, ca=registry_ca, auth="basic")) as server:
        yield server


@pytest.fixture(scope="session")
def token_auth_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: RegistryCA
) -> Iterator[RegistryServer]:
    """distribution 2.8 over TLS with token auth; the realm is ``server.token_server``."""
    directory = tmp_path_factory.mktemp("reg-token")
    with _running(start_distribution(directory, ca=registry_ca, auth="token")) as server:
        yield server


@pytest.fixture(scope="session")
def referrers_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: RegistryCA
) -> Iterator[RegistryServer]:
    """tools/ociregistry over TLS: the OCI 1.1 referrers API, no auth."""
    directory = tmp_path_factory.mktemp("reg-referrers")
    with _running(start_referrers_registry(directory, ca=registry_ca)) as server:
        yield server
