"""Real OS package repositories on loopback for the OS trusted-source tests, made by the
distributions' own tools (``make os-repo-tools`` unpacks them into ``.cache/os-repo-tools``):

* apt: real Debian packages (``.cache/os-repo-samples``: hostname amd64, netbase all, libpopt0
  amd64 built from the source package popt) in a pool, ``Packages`` indexes and the ``Release``
  written by ``apt-ftparchive``, signed with ``gpg`` (``InRelease`` and ``Release.gpg``) by a key
  made for the session; then, one repository per case, what goes wrong in the field: a
  signature by a key nobody trusts, a tampered ``InRelease``, an expired ``Valid-Until`` (and
  one valid for a day), a
  ``Release`` dated in the future, an index that is not the one signed, another suite's signed
  ``Release`` replayed, and a repository with only ``Release`` + ``Release.gpg`` and no ``.xz``.
* rpm: two packages built by ``rpmbuild`` (one ``noarch``; one ``x86_64`` with an epoch), indexed
  by ``createrepo_c``, ``repomd.xml`` signed by ``gpg --detach-sign --armor``; and an unsigned,
  a tampered and a foreign-key copy, and one whose primary index is not the one signed.
* the Debian archive's own index as apt keeps it on this machine (``/var/lib/apt/lists``), served
  as it was signed, for the large-index figures.

One threaded ``http.server`` serves them all, each under its own path, and records the paths
asked for. A missing tool fails the test with what to run; nothing is skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "APT_LISTS",
    "DEBIAN_KEYRING",
    "AptLists",
    "Gpg",
    "ImageArchive",
    "OsRepos",
    "apt_lists_repo",
    "debian_image_archive",
    "os_repos",
]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "os-repo-tools"
SAMPLES = ROOT / ".cache" / "os-repo-samples"
APT_LISTS = Path("/var/lib/apt/lists")
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE = "bookworm"
ARCHES = ("amd64", "arm64")


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'usr' / 'bin'}:{env.get('PATH', '')}"
    env["LD_LIBRARY_PATH"] = str(TOOLS / "usr" / "lib" / "x86_64-linux-gnu")
    env["RPM_CONFIGDIR"] = str(TOOLS / "usr" / "lib" / "rpm")
    return env


def _run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> bytes:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}"
        )
    return done.stdout


def _need_tools() -> None:
    ready = (TOOLS / ".installed").exists() and (TOOLS / "usr" / "bin" / "zstd").exists()
    if not ready or not list(SAMPLES.glob("*.deb")):
        pytest.fail(f"the OS repository tools are not in {TOOLS}: run `make os-repo-tools`")
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not on PATH: `apt-get install gnupg` (Debian's OpenPGP tool)")


class Gpg:
    """gpg with a home directory of its own and keys made for the session."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __call__(self, *args: str, cwd: Path | None = None) -> bytes:
        return _run(["gpg", "--batch", "--quiet", "--homedir", str(self.home), *args], cwd=cwd)

    def new_key(self, uid: str) -> str:
        """An RSA signing key with no passphrase; its fingerprint."""
        self("--passphrase", "", "--quick-gen-key", uid, "rsa3072", "sign", "1y")
        for line in self("--with-colons", "--list-keys", uid).decode().splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        pytest.fail(f"gpg made no key for {uid}")

    def export(self, fingerprint: str, target: Path, armor: bool = False) -> Path:
        """The public key as a keyring file (binary, as apt's `.gpg`, or armored)."""
        target.write_bytes(self(*(["--armor"] if armor else []), "--export", fingerprint))
        return target

    def stop(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            capture_output=True,
            timeout=30,
        )


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.requests.append(self.path)
        super().do_GET()


@dataclass
class OsRepos:
    """The repositories, each under `base`/<name>, and what they hold."""

    base: str
    root: Path
    keyring: Path  # the trusted archive key (binary keyring)
    armored_keyring: Path  # the same key, armored, alone in a directory
    other_keyring: Path  # a key nobody configured as trusted
    debs: dict[str, dict[str, str]]  # package -> Package, Version, Architecture, SHA256, Source
    rpms: dict[str, dict[str, str]]  # name -> evr, arch, sha256, sourcerpm
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def asked(self, prefix: str) -> list[str]:
        with self.lock:
            return [p for p in self.requests if p.startswith(prefix)]


def _stanzas(text: str) -> list[dict[str, str]]:
    out = []
    for stanza in text.strip().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        out.append(fields)
    return out


def _compress(path: Path) -> None:
    data = path.read_bytes()
    path.with_name(path.name + ".xz").write_bytes(lzma.compress(data))
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, mtime=0))


def _apt_repo(
    root: Path,
    gpg: Gpg,
    key: str,
    suite: str = SUITE,
    debs: Path = SAMPLES,
    **release_fields: str,
) -> dict[str, dict[str, str]]:
    """A signed apt repository at `root` made by apt-ftparchive from the .debs in `debs` (the
    sample packages unless said)."""
    env = _tool_env()
    pool = root / "pool" / "main"
    pool.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        shutil.copy(deb, pool / deb.name)
    dists = root / "dists" / suite
    listed: dict[str, dict[str, str]] = {}
    for arch in ARCHES:
        folder = dists / "main" / f"binary-{arch}"
        folder.mkdir(parents=True)
        text = _run(["apt-ftparchive", "--arch", arch, "packages", "pool/main"], root, env)
        (folder / "Packages").write_bytes(text)
        _compress(folder / "Packages")
        for stanza in _stanzas(text.decode()):
            listed[stanza["Package"]] = stanza
    options = {
        "Origin": "sbomgate-test",
        "Label": "sbomgate-test",
        "Suite": suite,
        "Codename": suite,
        "Architectures": " ".join(ARCHES),
        "Components": "main",
    } | release_fields
    args = ["apt-ftparchive"]
    for name, value in options.items():
        args += ["-o", f"APT::FTPArchive::Release::{name}={value}"]
    release = _run([*args, "release", f"dists/{suite}"], root, env)
    (dists / "Release").write_bytes(release)
    gpg("--local-user", key, "--clearsign", "-o", "InRelease", "Release", cwd=dists)
    gpg("--local-user", key, "--armor", "--detach-sign", "-o", "Release.gpg", "Release", cwd=dists)
    return listed


def _build_apt(top: Path, gpg: Gpg, trusted: str, other: str) -> dict[str, dict[str, str]]:
    debs = _apt_repo(top / "good", gpg, trusted)
    # Only Release + Release.gpg, and no .xz although the Release lists it (apt falls back).
    _apt_repo(top / "detached", gpg, trusted)
    detached = top / "detached" / "dists" / SUITE
    (detached / "InRelease").unlink()
    for xz in detached.glob("main/*/Packages.xz"):
        xz.unlink()
    _apt_repo(top / "unknown-key", gpg, other)
    # A valid-looking InRelease whose signed text was changed after signing.
    _apt_repo(top / "tampered", gpg, trusted)
    inrelease = top / "tampered" / "dists" / SUITE / "InRelease"
    inrelease.write_bytes(
        inrelease.read_bytes().replace(b"Label: sbomgate-test", b"Label: sbomgate-evil")
    )
    # apt-ftparchive writes Valid-Until (Date + ValidTime); the field's value is overridden.
    _apt_repo(
        top / "expired",
        gpg,
        trusted,
        ValidTime="86400",
        **{"Valid-Until": "Sat, 01 Jan 2000 00:00:00 UTC", "Date": "Fri, 31 Dec 1999 00:00:00 UTC"},
    )
    _apt_repo(top / "future", gpg, trusted, Date="Fri, 01 Jan 2100 00:00:00 UTC")
    # Valid for a day from now (apt-ftparchive writes Valid-Until = Date + ValidTime).
    _apt_repo(top / "a-day", gpg, trusted, ValidTime="86400")
    # Indexes that are not the ones signed: libpopt0 left out after signing.
    _apt_repo(top / "mismatch", gpg, trusted)
    for folder in (top / "mismatch" / "dists" / SUITE / "main").iterdir():
        packages = folder / "Packages"
        stanzas = packages.read_text().strip().split("\n\n")
        packages.write_text("\n\n".join(s for s in stanzas if "Package: libpopt0" not in s) + "\n")
        _compress(packages)
    # bookworm's signed Release served as bullseye's.
    replay = top / "replay" / "dists"
    replay.mkdir(parents=True)
    shutil.copytree(top / "good" / "dists" / SUITE, replay / "bullseye")
    return debs


_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: sbomgate test package
License: MIT
BuildArch: {arch}
%global debug_package %{{nil}}
%description
A package built for sbomgate's trusted-source tests.
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/README
%files
/usr/share/{name}/README
"""


def _rpm_repo(root: Path, rpms: list[Path], gpg: Gpg, key: str, zstd: bool = False) -> None:
    root.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, root / rpm.name)
    _run(["createrepo_c", "--no-database", str(root)], root, _tool_env())
    repodata = root / "repodata"
    if zstd:
        _primary_as_zstd(repodata)
    gpg(
        "--local-user",
        key,
        "--armor",
        "--detach-sign",
        "-o",
        "repomd.xml.asc",
        "repomd.xml",
        cwd=repodata,
    )


def _primary_as_zstd(repodata: Path) -> None:
    """The primary index compressed by Debian's `zstd` as Fedora's createrepo_c does (Debian's
    createrepo_c 0.17 writes no zstd), listed in repomd.xml in its place (digest, size and
    location; the expanded digest and size are createrepo_c's)."""
    [gz] = repodata.glob("*-primary.xml.gz")
    plain = repodata / "primary.xml"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    _run(["zstd", "-q", "-19", str(plain), "-o", str(plain) + ".zst"], env=_tool_env())
    packed = (repodata / "primary.xml.zst").read_bytes()
    digest = hashlib.sha256(packed).hexdigest()
    target = repodata / f"{digest}-primary.xml.zst"
    (repodata / "primary.xml.zst").rename(target)
    plain.unlink()
    gz.unlink()
    repomd = (repodata / "repomd.xml").read_text()
    head, _, rest = repomd.partition('<data type="primary">')
    entry, _, tail = rest.partition("</data>")
    entry = re.sub(r'(<checksum type="sha256">)[0-9a-f]+', rf"\g<1>{digest}", entry)
    entry = re.sub(r'(<location href=")[^"]+', rf"\g<1>repodata/{target.name}", entry)
    entry = re.sub(r"(<size>)\d+", rf"\g<1>{len(packed)}", entry)
    (repodata / "repomd.xml").write_text(f'{head}<data type="primary">{entry}</data>{tail}')


def _build_rpm(
    top: Path, work: Path, gpg: Gpg, trusted: str, other: str
) -> dict[str, dict[str, str]]:
    env = _tool_env()
    packages = [
        {"name": "sbg-hello", "version": "1.0", "release": "1", "epoch": "", "arch": "noarch"},
        {
            "name": "sbg-tool",
            "version": "3.1",
            "release": "4",
            "epoch": "Epoch: 2\n",
            "arch": "x86_64",
        },
    ]
    built: list[Path] = []
    for package in packages:
        spec = work / f"{package['name']}.spec"
        spec.write_text(_SPEC.format(**package))
        _run(
            ["rpmbuild", "-bb", "--define", f"_topdir {work / 'rpmbuild'}", str(spec)],
            work,
            env,
        )
    built = sorted((work / "rpmbuild" / "RPMS").glob("*/*.rpm"))
    _rpm_repo(top / "rpm-good", built, gpg, trusted)
    _rpm_repo(top / "rpm-zstd", built, gpg, trusted, zstd=True)  # as Fedora compresses them
    _rpm_repo(top / "rpm-unknown-key", built, gpg, other)
    _rpm_repo(top / "rpm-unsigned", built, gpg, trusted)
    (top / "rpm-unsigned" / "repodata" / "repomd.xml.asc").unlink()
    _rpm_repo(top / "rpm-tampered", built, gpg, trusted)
    repomd = top / "rpm-tampered" / "repodata" / "repomd.xml"
    repomd.write_bytes(repomd.read_bytes().replace(b"<revision>", b"<revision>1"))
    _rpm_repo(top / "rpm-mismatch", built, gpg, trusted)
    for primary in (top / "rpm-mismatch" / "repodata").glob("*primary.xml*"):
        text = gzip.decompress(primary.read_bytes()).replace(b"sbg-tool", b"sbg-toot")
        primary.write_bytes(gzip.compress(text))
    rpms: dict[str, dict[str, str]] = {}
    query = [
        "rpm",
        "-qp",
        "--nosignature",
        "--qf",
        "%{NAME} %{EPOCHNUM} %{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}",
    ]
    for rpm in built:
        name, epoch, vr, arch, source = _run([*query, str(rpm)], work, env).decode().split()
        evr = f"{epoch}:{vr}" if epoch != "0" else vr
        digest = _run(["sha256sum", str(rpm)]).decode().split()[0]
        rpms[name] = {
            "evr": evr,
            "arch": arch,
            "sha256": digest,
            "sourcerpm": source,
            "epoch": epoch,
        }
    return rpms


@pytest.fixture(scope="session")
def os_repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsRepos]:
    """Every apt and rpm repository above, served on loopback; see the module docstring."""
    _need_tools()
    work = tmp_path_factory.mktemp("os-repos")
    top = work / "www"
    top.mkdir()
    gpg = Gpg(work / "gnupg")
    try:
        trusted = gpg.new_key("sbomgate test archive <archive@sbomgate.test>")
        other = gpg.new_key("someone else <other@sbomgate.test>")
        keyring = gpg.export(trusted, work / "archive-keyring.gpg")
        armored = work / "trusted.gpg.d"
        armored.mkdir()
        gpg.export(trusted, armored / "archive.asc", armor=True)
        other_keyring = gpg.export(other, work / "other-keyring.gpg")
        debs = _build_apt(top, gpg, trusted, other)
        rpms = _build_rpm(top, work, gpg, trusted, other)
    finally:
        gpg.stop()
    handler: type[_Handler] = type(
        "Handler", (_Handler,), {"requests": [], "lock": threading.Lock()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(top)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    repos = OsRepos(
        base=f"http://127.0.0.1:{server.server_address[1]}",
        root=top,
        keyring=keyring,
        armored_keyring=armored,
        other_keyring=other_keyring,
        debs=debs,
        rpms=rpms,
        requests=handler.requests,
        lock=handler.lock,
    )
    try:
        yield repos
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- a base image's own


DEBIAN_IMAGE_DEBS = ROOT / ".cache" / "sbom-targets" / "debian-bookworm-debs"


@dataclass
class ImageArchive:
    """A signed apt repository holding exactly the packages a Debian base image was built from
    (the .debs debootstrap downloaded for tests/support/real_sboms.py's root filesystem): the
    organisation's mirror of what its base image is made of."""

    url: str
    keyring: Path
    debs: dict[str, dict[str, str]]

    def source(self, name: str = "debian") -> dict[str, Any]:
        """Its `trustedSources` entry."""
        return {
            "name": name,
            "kind": "apt",
            "url": self.url,
            "vendor": "debian",
            "distro": ["debian-12", SUITE],
            "suites": [SUITE],
            "components": ["main"],
            "architectures": ["amd64"],
            "keyring": str(self.keyring),
            "hosting": "hosted",
        }


@contextmanager
def serve_image_archive(work: Path, debs: Path, bind: str = "127.0.0.1") -> Iterator[ImageArchive]:
    """The .debs in `debs` as a signed apt repository on `bind` (loopback), built in `work`:
    the organisation's mirror of what its base image is made of."""
    _need_tools()
    if not list(debs.glob("*.deb")):
        raise RuntimeError(f"no .deb in {debs}: run `make sbom-targets demo-image`")
    top = work / "www"
    gpg = Gpg(work / "gnupg")
    try:
        key = gpg.new_key("sbomgate test mirror <mirror@sbomgate.test>")
        keyring = gpg.export(key, work / "mirror-keyring.gpg")
        listed = _apt_repo(top / "debian", gpg, key, debs=debs)
    finally:
        gpg.stop()
    handler: type[_Handler] = type(
        "Handler", (_Handler,), {"requests": [], "lock": threading.Lock()}
    )
    server = ThreadingHTTPServer((bind, 0), partial(handler, directory=str(top)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ImageArchive(
            url=f"http://{bind}:{server.server_address[1]}/debian", keyring=keyring, debs=listed
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def debian_image_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageArchive]:
    """The base image's packages as a signed apt repository on loopback."""
    if not list(DEBIAN_IMAGE_DEBS.glob("*.deb")):
        pytest.fail(
            f"the base image's packages are not in {DEBIAN_IMAGE_DEBS}: run `make sbom-targets`"
        )
    with serve_image_archive(tmp_path_factory.mktemp("image-archive"), DEBIAN_IMAGE_DEBS) as a:
        yield a


# --------------------------------------------------------------------------- the real archive


@dataclass
class AptLists:
    """Debian's own signed index of this machine's apt lists, served as it was signed."""

    url: str
    suite: str
    packages: Path  # the expanded Packages file served
    size: int


def _lists_files() -> tuple[Path, Path]:
    inreleases = sorted(APT_LISTS.glob("*_debian_dists_*_InRelease"))
    for inrelease in inreleases:
        stem = inrelease.name.removesuffix("_InRelease")
        found = sorted(APT_LISTS.glob(f"{stem}_main_binary-amd64_Packages*"))
        if found and "-updates" not in stem and "-security" not in stem:
            return inrelease, found[0]
    pytest.fail(f"no Debian main/binary-amd64 index in {APT_LISTS}: run `apt-get update`")


@pytest.fixture(scope="session")
def apt_lists_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptLists]:
    """`dists/<suite>/InRelease` and `main/binary-amd64/Packages` as apt keeps them here
    (expanded from apt's `.lz4` with the lz4 tool when so stored), served on loopback."""
    if not DEBIAN_KEYRING.exists():
        pytest.fail(f"{DEBIAN_KEYRING} is missing: apt-get install debian-archive-keyring")
    inrelease, packages = _lists_files()
    suite = inrelease.name.removesuffix("_InRelease").rsplit("_dists_", 1)[1]
    top = tmp_path_factory.mktemp("apt-lists")
    dists = top / "dists" / suite
    folder = dists / "main" / "binary-amd64"
    folder.mkdir(parents=True)
    shutil.copy(inrelease, dists / "InRelease")
    target = folder / "Packages"
    if packages.suffix == ".lz4":
        if shutil.which("lz4") is None:
            pytest.fail(
                "apt keeps its lists as .lz4 here and lz4 is not on PATH: apt-get install lz4"
            )
        with target.open("wb") as out:
            subprocess.run(["lz4", "-dc", str(packages)], stdout=out, check=True, timeout=120)
    elif packages.suffix in (".xz", ".gz"):
        opener = lzma.open if packages.suffix == ".xz" else gzip.open
        with opener(packages, "rb") as src, target.open("wb") as out:
            shutil.copyfileobj(src, out)
    else:
        shutil.copy(packages, target)
    handler: type[_Handler] = type(
        "Handler", (_Handler,), {"requests": [], "lock": threading.Lock()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(top)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield AptLists(
            url=f"http://127.0.0.1:{server.server_address[1]}",
            suite=suite,
            packages=target,
            size=target.stat().st_size,
        )
    finally:
        server.shutdown()
        server.server_close()
