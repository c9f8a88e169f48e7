"""Real package indexes on loopback for the trusted-source tests, started once per session.

* ``pypi_server``: pypiserver (the venv's test extra) serving PEP 503 HTML from a directory of
  sdists and wheels built here, with ``--disable-fallback`` so unknown names are 404s.
* ``pep691_server``: a static PEP 691 / PEP 503 index (``http.server``), for what pypiserver does
  not do: JSON, yanked files, PEP 700 ``upload-time``. It counts requests and can demand a token.
* ``verdaccio``: Verdaccio 6 from ``.cache/verdaccio`` (``make verdaccio``), offline (no uplinks),
  storage in a temporary directory; a user is created through its API, a scoped package is
  published with ``npm publish`` and the others through the same registry API call npm makes.
* ``static_repo``: a Maven repository layout and a Go module proxy, as static files.

A server that cannot start fails the test with the tail of its log; nothing is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support.net import free_port

__all__ = [
    "INDEX_TOKEN",
    "VERDACCIO_MODULE",
    "IndexServer",
    "StaticIndex",
    "StaticRepo",
    "build_sdist",
    "build_wheel",
    "free_port",
    "npm_publish_api",
    "pep691_server",
    "pypi_server",
    "start_pypiserver",
    "static_repo",
    "verdaccio",
]

ROOT = Path(__file__).resolve().parents[2]
VERDACCIO_MODULE = ROOT / ".cache" / "verdaccio" / "node_modules" / "verdaccio"
_VERDACCIO_LAUNCHER = """
const [module, config, port] = process.argv.slice(1);
require(module).runServer(config).then(
  (app) => app.listen(Number(port), "127.0.0.1", () => console.log("listening on " + port)),
  (error) => { console.error(error); process.exit(1); },
);
"""
START_TIMEOUT = 30.0
INDEX_TOKEN = "sbomgate-test-token"  # the bearer token /private/ paths of the PEP 691 index need
# When the Maven and PEP 691 fixtures say their files were published.
PUBLISHED = 1_700_000_000  # 2023-11-14T22:13:20Z


@dataclass
class IndexServer:
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    packages: dict[str, str] = field(default_factory=dict)  # name@version -> sha256 hex

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


def _wait_http(url: str, server: IndexServer, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"{what} did not start at {url}; its log:\n{_tail(server.log)}")


# --------------------------------------------------------------------------- Python packages


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (2023, 11, 14, 0, 0, 0)), data)
    return out.getvalue()


def build_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal valid wheel: a module, METADATA, WHEEL and RECORD."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    files = {
        f"{name.replace('-', '_')}.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: sbomgate-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = directory / f"{dist}-py3-none-any.whl"
    target.write_bytes(_zip_bytes(files))
    return target


def build_sdist(directory: Path, name: str, version: str) -> Path:
    """A minimal sdist: PKG-INFO and a pyproject.toml in `<name>-<version>/`."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        "pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for path, data in files.items():
            member = tarfile.TarInfo(f"{dist}/{path}")
            member.size = len(data)
            member.mtime = PUBLISHED
            tf.addfile(member, io.BytesIO(data))
    target = directory / f"{dist}.tar.gz"
    target.write_bytes(out.getvalue())
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_pypiserver(directory: Path, log: Path) -> IndexServer:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "-p",
        str(port),
        "-i",
        "127.0.0.1",
        "-a",
        ".",
        "-P",
        ".",
        "--disable-fallback",
        "--backend",
        "simple-dir",
        str(directory),
    ]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    server = IndexServer(f"http://127.0.0.1:{port}/simple/", log, process)
    _wait_http(f"http://127.0.0.1:{port}/health", server, "pypiserver")
    return server


@pytest.fixture(scope="session")
def pypi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """pypiserver with Foo_Bar 1.0 (sdist + wheel) and 2.0 (wheel), and tiny-pkg 0.1."""
    base = tmp_path_factory.mktemp("pypiserver")
    packages = base / "packages"
    packages.mkdir()
    built = {
        "foo-bar@1.0": build_sdist(packages, "Foo_Bar", "1.0"),
        "foo-bar@1.0+wheel": build_wheel(packages, "Foo_Bar", "1.0"),
        "foo-bar@2.0": build_wheel(packages, "Foo_Bar", "2.0"),
        "tiny-pkg@0.1": build_sdist(packages, "tiny-pkg", "0.1"),
    }
    server = start_pypiserver(packages, base / "pypiserver.log")
    server.packages = {key: _sha256(path) for key, path in built.items()}
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- static servers


class _QuietStatic(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Pep691Handler(BaseHTTPRequestHandler):
    index: StaticIndex

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        index = self.index
        with index.lock:
            index.requests.append(self.path)
        path = self.path
        private = path.startswith("/private/")
        if private and self.headers.get("Authorization") != f"Bearer {INDEX_TOKEN}":
            self._send(401, "text/plain", b"token required\n")
            return
        html_only = path.startswith("/html/")
        path = path.removeprefix("/private").removeprefix("/html")
        project = path.strip("/").removeprefix("simple/").strip("/")
        files = index.projects.get(project)
        if files is None:
            self._send(404, "text/plain", b"not found\n")
            return
        accept = self.headers.get("Accept") or ""
        if not html_only and "application/vnd.pypi.simple.v1+json" in accept:
            body = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
            self._send(200, "application/vnd.pypi.simple.v1+json", json.dumps(body).encode())
            return
        anchors = []
        for f in files:
            attrs = f' href="/files/{f["filename"]}#sha256={f["hashes"]["sha256"]}"'
            if f.get("yanked"):
                reason = f["yanked"] if isinstance(f["yanked"], str) else ""
                attrs += f' data-yanked="{reason}"'
            if f.get("requires-python"):
                attrs += f' data-requires-python="{f["requires-python"].replace(">", "&gt;")}"'
            anchors.append(f"<a{attrs}>{f['filename']}</a><br/>")
        html = f"<!DOCTYPE html><html><body>{''.join(anchors)}</body></html>"
        self._send(200, "text/html", html.encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class StaticIndex:
    url: str
    server: ThreadingHTTPServer
    projects: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def _serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def pep691_server() -> Iterator[StaticIndex]:
    """`yankee` 1.0 (yanked, both files), 1.1 (requires-python), with PEP 700 upload times.
    `/simple/` negotiates JSON or HTML, `/html/simple/` is HTML only, `/private/simple/` needs
    `Authorization: Bearer INDEX_TOKEN`."""
    handler = type("Handler", (_Pep691Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    index = StaticIndex(f"http://127.0.0.1:{server.server_address[1]}/simple/", server)
    handler.index = index

    def entry(filename: str, upload: str, **extra: object) -> dict[str, object]:
        digest = hashlib.sha256(filename.encode()).hexdigest()
        files = {"filename": filename, "url": f"/files/{filename}", "hashes": {"sha256": digest}}
        return files | {"upload-time": upload} | extra

    index.projects["yankee"] = [
        entry("yankee-1.0.tar.gz", "2023-11-14T22:13:20.123456Z", yanked="broken build"),
        entry("yankee-1.0-py3-none-any.whl", "2023-11-14T22:15:00Z", yanked=True),
        entry("yankee-1.1.tar.gz", "2024-01-02T03:04:05Z", **{"requires-python": ">=3.9"}),
    ]
    _serve(server)
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class StaticRepo:
    maven_url: str
    go_url: str
    jar_sha1: str
    jar_sha256: str


@pytest.fixture(scope="session")
def static_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticRepo]:
    """Maven: com.example:demo 1.0 and 1.1 (pom, jar, .sha1, .sha256, maven-metadata.xml).
    Go proxy: example.com/My/mod v1.0.0 (case-encoded as example.com/!my/mod)."""
    root = tmp_path_factory.mktemp("static-repo")
    artifact = root / "maven" / "com" / "example" / "demo"
    jar = b"PK\x05\x06" + b"\0" * 18  # an empty zip
    for version in ("1.0", "1.1"):
        d = artifact / version
        d.mkdir(parents=True)
        (d / f"demo-{version}.pom").write_text(
            "<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId>"
            f"<artifactId>demo</artifactId><version>{version}</version></project>\n"
        )
        (d / f"demo-{version}.jar").write_bytes(jar)
        (d / f"demo-{version}.jar.sha1").write_text(hashlib.sha1(jar).hexdigest() + "\n")
        (d / f"demo-{version}.jar.sha256").write_text(
            f"{hashlib.sha256(jar).hexdigest()}  demo-{version}.jar\n"
        )
        for f in d.iterdir():
            os.utime(f, (PUBLISHED, PUBLISHED))
    (artifact / "maven-metadata.xml").write_text(
        "<metadata><groupId>com.example</groupId><artifactId>demo</artifactId><versioning>"
        "<latest>1.1</latest><release>1.1</release>"
        "<versions><version>1.0</version><version>1.1</version></versions>"
        "</versioning></metadata>\n"
    )
    go = root / "go" / "example.com" / "!my" / "mod" / "@v"
    go.mkdir(parents=True)
    (go / "list").write_text("v1.0.0\n")
    (go / "v1.0.0.info").write_text('{"Version":"v1.0.0","Time":"2022-03-04T05:06:07Z"}')
    (go / "v1.0.0.mod").write_text("module example.com/My/mod\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietStatic, directory=str(root)))
    _serve(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield StaticRepo(
            f"{base}/maven",
            f"{base}/go",
            hashlib.sha1(jar).hexdigest(),
            hashlib.sha256(jar).hexdigest(),
        )
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- Verdaccio


def _npm_tarball(name: str, version: str) -> bytes:
    data = json.dumps({"name": name, "version": version}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        member = tarfile.TarInfo("package/package.json")
        member.size = len(data)
        member.mtime = PUBLISHED
        tf.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _request(method: str, url: str, body: object, token: str | None = None) -> dict[str, object]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method=method)
    with urllib.request.urlopen(request, timeout=20) as response:
        result: dict[str, object] = json.loads(response.read() or b"{}")
        return result


def npm_publish_api(registry: str, token: str, name: str, version: str, **extra: object) -> str:
    """Publish as `npm publish` does (PUT /<name> with the tarball attached); returns sha512 SRI."""
    tarball = _npm_tarball(name, version)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    filename = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
    path = name.replace("/", "%2f")
    manifest = {
        "name": name,
        "version": version,
        "_id": f"{name}@{version}",
        "dist": {
            "integrity": integrity,
            "shasum": hashlib.sha1(tarball).hexdigest(),
            "tarball": f"{registry}/{name}/-/{filename}",
        },
    } | extra
    document = {
        "_id": name,
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: manifest},
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode(),
                "length": len(tarball),
            }
        },
    }
    _request("PUT", f"{registry}/{path}", document, token)
    return integrity


@pytest.fixture(scope="session")
def verdaccio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """Verdaccio with left-pad-lite 1.0.0 and 1.1.0 (deprecated), and @acme/widget 2.0.0
    (published with `npm publish`). `packages` maps name@version to the sha512 SRI."""
    if not (VERDACCIO_MODULE / "package.json").exists():
        pytest.fail(f"Verdaccio is not installed at {VERDACCIO_MODULE}: run `make verdaccio`")
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("npm is not on PATH (Node 20 and npm are needed for the Verdaccio tests)")
    base = tmp_path_factory.mktemp("verdaccio")
    port = free_port()
    config = base / "config.yaml"
    config.write_text(
        f"storage: {base / 'storage'}\n"
        f"auth:\n  htpasswd:\n    file: {base / 'htpasswd'}\n    max_users: 100\n"
        "uplinks: {}\n"
        "packages:\n"
        "  '@*/*':\n    access: $all\n    publish: $authenticated\n"
        "  '**':\n    access: $all\n    publish: $authenticated\n"
        "log: {type: stdout, format: pretty, level: warn}\n"
    )
    log = base / "verdaccio.log"
    # Verdaccio 6.10's CLI refuses Node < 22; its library entry point (runServer, which the CLI
    # calls) runs on Node 20, so the server is started through it.
    process = subprocess.Popen(
        ["node", "-e", _VERDACCIO_LAUNCHER, str(VERDACCIO_MODULE), str(config), str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=base,
    )
    registry = f"http://127.0.0.1:{port}"
    server = IndexServer(registry, log, process)
    _wait_http(f"{registry}/-/ping", server, "Verdaccio")
    try:
        created = _request(
            "PUT",
            f"{registry}/-/user/org.couchdb.user:sbomgate",
            {"name": "sbomgate", "password": "correct-horse-battery", "type": "user"},
        )
        token = str(created["token"])
        server.packages["left-pad-lite@1.0.0"] = npm_publish_api(
            registry, token, "left-pad-lite", "1.0.0"
        )
        # A second version goes into the same document, as npm publish of a new version does.
        server.packages["left-pad-lite@1.1.0"] = npm_publish_api(
            registry, token, "left-pad-lite", "1.1.0", deprecated="use left-pad-lite@1.0.0"
        )
        project = base / "widget"
        project.mkdir()
        (project / "package.json").write_text(
            json.dumps({"name": "@acme/widget", "version": "2.0.0", "main": "index.js"})
        )
        (project / "index.js").write_text("module.exports = 42;\n")
        npmrc = base / "npmrc"
        npmrc.write_text(f"//127.0.0.1:{port}/:_authToken={token}\n")
        env = dict(os.environ, npm_config_userconfig=str(npmrc), npm_config_cache=str(base / "npm"))
        done = subprocess.run(
            ["npm", "publish", "--registry", registry, "--access", "public"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            pytest.fail(f"npm publish @acme/widget failed:\n{done.stdout}\n{done.stderr}")
        with urllib.request.urlopen(f"{registry}/@acme%2fwidget", timeout=10) as response:
            widget = json.loads(response.read())
        server.packages["@acme/widget@2.0.0"] = widget["versions"]["2.0.0"]["dist"]["integrity"]
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()
