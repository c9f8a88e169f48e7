"""Real package indexes on loopback for the trusted-source tests, started once per session.

* ``pypi_server``: pypiserver (the venv's test extra) serving PEP 503 HTML from a directory of
  sdists and wheels built here, with ``--disable-fallback`` so unknown names are 404s.
* ``pypi_fallback``: a "public" pypiserver anyone uploads to (an attacker's package, sent as
  ``twine upload`` sends it) and an organisation's pypiserver that falls back to it for names it
  does not hold (``--fallback-url``: pypiserver redirects there, it does not proxy).
* ``pep691_server``: a static PEP 691 / PEP 503 index (``http.server``), for what pypiserver does
  not do: JSON, yanked files, PEP 700 ``upload-time``. It counts requests and can demand a token.
* ``verdaccio``: Verdaccio 6 from ``.cache/verdaccio`` (``make verdaccio``), offline (no uplinks),
  storage in a temporary directory; a user is created through its API, a scoped package is
  published with ``npm publish`` and the others through the same registry API call npm makes.
* ``npm_proxy``: two Verdaccios, a "public" registry and an organisation's proxy of it (an
  uplink): an attacker publishes a fresh scoped near miss with ``npm publish`` on the public
  one, and an old project's history (published with ``npm publish``, then dated 2019 in the
  public registry's storage) is there too. Verdaccio stamps ``time`` with its own clock, and
  the proxy passes the public registry's ``time`` through.
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
from typing import Any

import pytest

from support.net import free_port

__all__ = [
    "INDEX_TOKEN",
    "VERDACCIO_MODULE",
    "IndexServer",
    "NpmProxy",
    "PypiFallback",
    "StaticIndex",
    "StaticRepo",
    "build_sdist",
    "build_wheel",
    "free_port",
    "npm_proxy",
    "npm_publish",
    "npm_publish_api",
    "pep691_server",
    "pypi_fallback",
    "pypi_server",
    "pypi_upload",
    "start_pypiserver",
    "start_verdaccio",
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


def start_pypiserver(
    directory: Path, log: Path, *, fallback: str | None = None, bind: str = "127.0.0.1"
) -> IndexServer:
    """pypiserver over `directory` on `bind`; unknown names are 404s, or with `fallback`
    redirects there."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "-p",
        str(port),
        "-i",
        bind,
        "-a",
        ".",
        "-P",
        ".",
        *(("--fallback-url", fallback) if fallback else ("--disable-fallback",)),
        "--backend",
        "simple-dir",
        str(directory),
    ]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    server = IndexServer(f"http://{bind}:{port}/simple/", log, process)
    _wait_http(f"http://{bind}:{port}/health", server, "pypiserver")
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


def pypi_upload(index: IndexServer, path: Path) -> None:
    """Upload a distribution as `twine upload` does: the legacy upload API's multipart POST
    (`:action=file_upload`, the file as `content`, its digest) to the index's root."""
    root = index.url.removesuffix("simple/")
    name, version = path.name.removesuffix(".tar.gz").rsplit("-", 1)
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "sdist",
        "pyversion": "source",
        "sha256_digest": _sha256(path),
    }
    boundary = "sbomgate-upload-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + path.read_bytes()
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(root, body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200, response.status


@dataclass
class PypiFallback:
    public: IndexServer  # anyone uploads here
    internal: IndexServer  # the organisation's; unknown names redirect to `public`


@pytest.fixture(scope="session")
def pypi_fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiFallback]:
    """`public`: python-dateutils 0.0.1, uploaded by an "attacker" through the upload API.
    `internal`: Foo_Bar 1.0, falling back to `public` for every other name."""
    base = tmp_path_factory.mktemp("pypi-fallback")
    (base / "public").mkdir()
    (base / "internal").mkdir()
    build_sdist(base / "internal", "Foo_Bar", "1.0")
    public = start_pypiserver(base / "public", base / "public.log")
    try:
        pypi_upload(public, build_sdist(base, "python-dateutils", "0.0.1"))
        internal = start_pypiserver(base / "internal", base / "internal.log", fallback=public.url)
    except BaseException:
        public.stop()
        raise
    try:
        yield PypiFallback(public, internal)
    finally:
        internal.stop()
        public.stop()


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

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def start_static_index(bind: str = "127.0.0.1") -> StaticIndex:
    """A PEP 691 index on `bind` (loopback) serving `StaticIndex.projects` (filename -> file entries, as
    PEP 691 spells them, with PEP 700 `upload-time`)."""
    handler = type("Handler", (_Pep691Handler,), {})
    server = ThreadingHTTPServer((bind, 0), handler)
    index = StaticIndex(f"http://{bind}:{server.server_address[1]}/simple/", server)
    handler.index = index
    _serve(server)
    return index


def index_entry(filename: str, upload: str, **extra: object) -> dict[str, object]:
    """A PEP 691 file entry uploaded at `upload` (RFC 3339); its digest is the name's."""
    digest = hashlib.sha256(filename.encode()).hexdigest()
    files = {"filename": filename, "url": f"/files/{filename}", "hashes": {"sha256": digest}}
    return files | {"upload-time": upload} | extra


def upload_time(days_ago: float) -> str:
    """The RFC 3339 UTC time `days_ago` days before now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days_ago * 86400))


@pytest.fixture(scope="session")
def pep691_server() -> Iterator[StaticIndex]:
    """`yankee` 1.0 (yanked, both files), 1.1 (requires-python), with PEP 700 upload times;
    `fresh-slop` 0.1 (uploaded three days ago) and 0.2 (yesterday), dated when the index starts.
    `/simple/` negotiates JSON or HTML, `/html/simple/` is HTML only, `/private/simple/` needs
    `Authorization: Bearer INDEX_TOKEN`."""
    index = start_static_index()
    entry = index_entry

    index.projects["yankee"] = [
        entry("yankee-1.0.tar.gz", "2023-11-14T22:13:20.123456Z", yanked="broken build"),
        entry("yankee-1.0-py3-none-any.whl", "2023-11-14T22:15:00Z", yanked=True),
        entry("yankee-1.1.tar.gz", "2024-01-02T03:04:05Z", **{"requires-python": ">=3.9"}),
    ]

    # A project first uploaded three days (and an hour) ago, its second release yesterday.
    index.projects["fresh-slop"] = [
        entry("fresh_slop-0.1.tar.gz", upload_time(3.05)),
        entry("fresh_slop-0.2.tar.gz", upload_time(1)),
    ]
    try:
        yield index
    finally:
        index.stop()


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


def start_verdaccio(base: Path, *, uplink: str | None = None) -> IndexServer:
    """Verdaccio with its storage (`base/storage`) and users under `base`: offline, or with
    `uplink` a proxy of that registry for every package (an uplink on each package pattern)."""
    if not (VERDACCIO_MODULE / "package.json").exists():
        pytest.fail(f"Verdaccio is not installed at {VERDACCIO_MODULE}: run `make verdaccio`")
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("npm is not on PATH (Node 20 and npm are needed for the Verdaccio tests)")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = base / "config.yaml"
    uplinks = f"uplinks:\n  public: {{url: '{uplink}'}}\n" if uplink else "uplinks: {}\n"
    proxy = "    proxy: public\n" if uplink else ""
    config.write_text(
        f"storage: {base / 'storage'}\n"
        f"auth:\n  htpasswd:\n    file: {base / 'htpasswd'}\n    max_users: 100\n"
        f"{uplinks}"
        "packages:\n"
        f"  '@*/*':\n    access: $all\n    publish: $authenticated\n{proxy}"
        f"  '**':\n    access: $all\n    publish: $authenticated\n{proxy}"
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
    return server


def verdaccio_user(registry: str, name: str) -> str:
    """Create a user through the registry API (as `npm adduser` does); its token."""
    created = _request(
        "PUT",
        f"{registry}/-/user/org.couchdb.user:{name}",
        {"name": name, "password": "correct-horse-battery", "type": "user"},
    )
    return str(created["token"])


def npm_publish(registry: str, token: str, work: Path, name: str, version: str) -> dict[str, Any]:
    """`npm publish` a one-file package from a directory under `work`; its packument as the
    registry then serves it."""
    project = work / f"{name.replace('/', '+')}-{version}"
    project.mkdir(parents=True)
    (project / "package.json").write_text(
        json.dumps({"name": name, "version": version, "main": "index.js"})
    )
    (project / "index.js").write_text("module.exports = 42;\n")
    npmrc = work / "npmrc"
    npmrc.write_text(f"//{registry.removeprefix('http://')}/:_authToken={token}\n")
    env = dict(os.environ, npm_config_userconfig=str(npmrc), npm_config_cache=str(work / "npm"))
    done = subprocess.run(
        ["npm", "publish", "--registry", registry, "--access", "public"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.fail(f"npm publish {name}@{version} failed:\n{done.stdout}\n{done.stderr}")
    with urllib.request.urlopen(f"{registry}/{name.replace('/', '%2f')}", timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


@pytest.fixture(scope="session")
def verdaccio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """Verdaccio with left-pad-lite 1.0.0 and 1.1.0 (deprecated), and @acme/widget 2.0.0
    (published with `npm publish`). `packages` maps name@version to the sha512 SRI."""
    base = tmp_path_factory.mktemp("verdaccio")
    server = start_verdaccio(base)
    registry = server.url
    try:
        token = verdaccio_user(registry, "sbomgate")
        server.packages["left-pad-lite@1.0.0"] = npm_publish_api(
            registry, token, "left-pad-lite", "1.0.0"
        )
        # A second version goes into the same document, as npm publish of a new version does.
        server.packages["left-pad-lite@1.1.0"] = npm_publish_api(
            registry, token, "left-pad-lite", "1.1.0", deprecated="use left-pad-lite@1.0.0"
        )
        widget = npm_publish(registry, token, base / "publish", "@acme/widget", "2.0.0")
        server.packages["@acme/widget@2.0.0"] = widget["versions"]["2.0.0"]["dist"]["integrity"]
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()


# When the public registry says the old project of `npm_proxy` was published (its history).
OLD_PROJECT_TIME = "2019-03-01T10:00:00.000Z"


@dataclass
class NpmProxy:
    public: IndexServer  # the public registry: anyone publishes there
    proxy: IndexServer  # the organisation's repository, an uplink to `public`
    slopsquat: str  # name@version, published a moment ago by the "attacker"
    old: str  # name@version, a project the public registry has had since 2019
    packuments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name, as published


@pytest.fixture(scope="session")
def npm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NpmProxy]:
    """A public Verdaccio and the organisation's Verdaccio proxying it (see the module docstring).
    `packages` of `proxy` maps name@version to the sha512 SRI."""
    base = tmp_path_factory.mktemp("npm-proxy")
    public = start_verdaccio(base / "public")
    proxy: IndexServer | None = None
    try:
        proxy = start_verdaccio(base / "proxy", uplink=f"{public.url}/")
        token = verdaccio_user(public.url, "attacker")
        slop = npm_publish(
            public.url, token, base / "publish", "@babel/helper-plugin-utlis", "0.0.1"
        )
        old = npm_publish(public.url, token, base / "publish", "left-pad-classic", "1.0.0")
        # The old project's history as a registry that has had it since 2019 holds it (Verdaccio
        # dates a publication by its own clock); the proxy has not asked for it yet.
        stored = base / "public" / "storage" / "left-pad-classic" / "package.json"
        document = json.loads(stored.read_text())
        document["time"] = {key: OLD_PROJECT_TIME for key in ("created", "modified", "1.0.0")}
        stored.write_text(json.dumps(document))
        old["time"] = document["time"]
        for packument, version in ((slop, "0.0.1"), (old, "1.0.0")):
            integrity = packument["versions"][version]["dist"]["integrity"]
            proxy.packages[f"{packument['name']}@{version}"] = integrity
        yield NpmProxy(
            public=public,
            proxy=proxy,
            slopsquat="@babel/helper-plugin-utlis@0.0.1",
            old="left-pad-classic@1.0.0",
            packuments={"@babel/helper-plugin-utlis": slop, "left-pad-classic": old},
        )
    finally:
        if proxy is not None:
            proxy.stop()
        public.stop()
