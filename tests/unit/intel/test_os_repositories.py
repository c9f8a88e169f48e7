"""The OS repository backends' parts without a server: distribution matching, configuration,
Release / Packages / repomd parsing, bounded decompression, the shared index cache, OpenPGP
verification (keys and signatures made with Sequoia here), and the apt backend over an in-memory
client (expiry while cached, by-hash, the compressions it falls back through)."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pysequoia
import pytest
import zstandard

from sbomgate.errors import InputError
from sbomgate.identity import distro_matches, identity_from_purl
from sbomgate.intel.facts import source_configs
from sbomgate.intel.sources.apt import AptBackend, parse_packages, parse_release
from sbomgate.intel.sources.indexes import BadIndex, IndexCache, check_digest, decompress
from sbomgate.intel.sources.interface import Distribution, SourceConfig, SourceFault
from sbomgate.intel.sources.openpgp import Keyring, SignatureError, load_keyring
from sbomgate.intel.sources.rpm import evr, parse_primary, parse_repomd
from sbomgate.registry.transport import Response
from sbomgate.sbom.model import Component

# --------------------------------------------------------------------------- which purls


@pytest.mark.parametrize(
    ("distro", "vendor", "releases", "expected"),
    [
        ("debian-12", "debian", ("debian-12",), True),
        ("debian-12.5", "debian", ("debian-12",), True),  # Trivy: the point release
        ("Bookworm", "debian", ("debian-12", "bookworm"), True),
        ("debian-11", "debian", ("debian-12", "bookworm"), False),
        ("debian-1", "debian", ("debian-12",), False),
        ("debian-120", "debian", ("debian-12",), False),
        ("3.18.4", "alpine", ("alpine-3.18",), True),  # Trivy: a bare version
        ("ubuntu-22.04", "ubuntu", ("ubuntu-22.04", "jammy"), True),
        ("ubuntu-22.04", "ubuntu", ("ubuntu-24.04",), False),
        ("debian-12", "debian", (), False),
    ],
)
def test_distro_matches(
    distro: str, vendor: str, releases: tuple[str, ...], expected: bool
) -> None:
    assert distro_matches(distro, vendor, releases) is expected


def test_a_source_vouches_only_for_its_vendor_and_releases() -> None:
    config = apt_config("http://deb.example/debian")
    url = "http://deb.example/debian"
    for purl, expected in (
        ("pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12", True),
        ("pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64", True),  # says nothing: may be asked
        ("pkg:deb/debian/bash@5.2.15-2%2Bb7?distro=debian-11", False),
        ("pkg:deb/ubuntu/bash@5.2.15-2%2Bb7?distro=debian-12", False),
        (
            "pkg:deb/debian/bash@5.2.15?distro=debian-12&download_url=https://evil.example/b.deb",
            False,
        ),
    ):
        assert config.may_vouch_for(identity_from_purl(purl)) is expected, purl
    # Without a distribution (language sources, snapshots), a distro qualifier is another origin.
    assert not identity_from_purl("pkg:deb/debian/x@1?distro=debian-12").comes_from(url)


def test_a_deb_epoch_qualifier_is_part_of_the_version() -> None:
    assert identity_from_purl("pkg:deb/debian/libgcrypt20@1.10.1-3?epoch=1").version == (
        "1:1.10.1-3"
    )
    assert identity_from_purl("pkg:deb/debian/libgcrypt20@1%3A1.10.1-3").version == "1:1.10.1-3"


def apt_config(url: str, keyring: str = "/nonexistent.gpg", **changes: Any) -> SourceConfig:
    fields: dict[str, Any] = {
        "vendor": "debian",
        "releases": ("debian-12", "bookworm"),
        "keyring": keyring,
        "suites": ("bookworm",),
        "components": ("main",),
        "architectures": ("amd64",),
    } | changes
    return SourceConfig("debian", "apt", url, distribution=Distribution(**fields))


def entry(**changes: object) -> dict[str, object]:
    return {
        "name": "debian",
        "kind": "apt",
        "url": "https://deb.debian.org/debian",
        "vendor": "debian",
        "distro": "debian-12",
        "suites": ["bookworm", "bookworm-updates"],
        "components": ["main"],
        "architectures": "amd64",
        "keyring": "/usr/share/keyrings/debian-archive-keyring.gpg",
    } | changes


def test_source_configuration() -> None:
    (config,) = source_configs([entry()])
    assert config.distribution == Distribution(
        vendor="debian",
        releases=("debian-12",),
        keyring="/usr/share/keyrings/debian-archive-keyring.gpg",
        suites=("bookworm", "bookworm-updates"),
        components=("main",),
        architectures=("amd64",),
    )
    (rpm,) = source_configs(
        [
            {
                "name": "f",
                "kind": "rpm",
                "url": "https://f.example/40/x86_64/os",
                "vendor": "fedora",
                "distro": "fedora-40",
                "keyring": "/etc/pki/rpm-gpg/key",
            }
        ]
    )
    assert rpm.distribution is not None and rpm.distribution.suites == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keyring": None}, "needs vendor and keyring"),
        ({"distro": []}, "distro must name the releases"),
        ({"suites": []}, "suites must be a list of names"),
        ({"suites": ["../../etc"]}, "suites must be a list of names"),
        ({"components": 3}, "components must be a name or a list"),
        ({"architectures": []}, "architectures must be a list of names"),
        ({"vendor": "debian/evil"}, "vendor must be a purl namespace"),
        ({"kind": "pypi"}, "only apt and rpm sources have a distribution"),
        ({"kind": "rpm"}, "an rpm source's url is the repository"),
    ],
)
def test_source_configuration_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=r"trustedSources\[0\]: .*" + message):
        source_configs([entry(**changes)])


def test_an_apt_source_needs_its_distribution() -> None:
    with pytest.raises(InputError, match="needs vendor, distro and keyring"):
        source_configs([{"name": "d", "kind": "apt", "url": "https://deb.example/debian"}])


# --------------------------------------------------------------------------- parsing

RELEASE = b"""Origin: Debian
Suite: oldstable
Codename: bookworm
Date: Sat, 11 Jul 2026 10:16:37 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 main/binary-amd64/Packages
SHA256:
 515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz
"""


def test_parse_release() -> None:
    release = parse_release(RELEASE, "bookworm", "R")
    assert release.by_hash and release.all_folded and release.valid_until is None
    assert release.files["main/binary-amd64/Packages.xz"] == (
        8790396,
        "9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5",
    )
    assert "main/binary-amd64/Packages" in release.files  # the MD5 section is not read
    assert parse_release(RELEASE, "oldstable", "R").suite == "oldstable"
    with pytest.raises(BadIndex, match="not of bullseye"):
        parse_release(RELEASE, "bullseye", "R")
    with pytest.raises(BadIndex, match="no SHA-256"):
        parse_release(RELEASE.split(b"SHA256:")[0], "bookworm", "R")


PACKAGES = b"""Package: libssl3
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1
Architecture: amd64
Description: Secure Sockets Layer toolkit
 Package: not-a-package
SHA256: AA11

Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all
SHA256: bb22
sha512: cc33

Version: 1.0
Architecture: amd64

package: Bash
version: 1:5.2.15-2+b7
architecture: amd64
"""


def test_parse_packages() -> None:
    index = parse_packages(PACKAGES)
    assert index.weight == 3
    (ssl,) = index.get("libssl3")
    assert (ssl.source, ssl.source_version, ssl.sha256) == ("openssl", "3.0.11-1~deb12u2", "aa11")
    (tz,) = index.get("tzdata")
    assert (tz.arch, tz.source, tz.source_version, tz.sha512) == (
        "all",
        "tzdata",
        "2024a-0+deb12u1",
        "cc33",
    )
    assert index.get("bash")[0].version == "1:5.2.15-2+b7"  # field names in any case
    assert index.get("not-a-package") == ()


def test_parse_repomd_and_primary() -> None:
    repomd = b"""<?xml version="1.0"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
 <data type="filelists"><checksum type="sha256">00</checksum><location href="repodata/f.xml.gz"/></data>
 <data type="primary"><checksum type="sha256">AB</checksum><open-checksum type="sha256">cd</open-checksum>
  <location href="repodata/p-primary.xml.gz"/><size>10</size><open-size>20</open-size></data>
</repomd>"""
    parsed = parse_repomd(repomd, "R")
    assert (parsed.location, parsed.checksum, parsed.size, parsed.open_size) == (
        "repodata/p-primary.xml.gz",
        "ab",
        10,
        20,
    )
    with pytest.raises(BadIndex, match="outside the repository"):
        parse_repomd(repomd.replace(b"repodata/p-", b"../p-"), "R")
    with pytest.raises(BadIndex, match="not XML"):
        parse_repomd(b"<!DOCTYPE x [<!ENTITY a 'b'>]><repomd>&a;</repomd>", "R")
    primary = b"""<metadata xmlns="http://linux.duke.edu/metadata/common"
 xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm"><name>curl</name><arch>x86_64</arch>
 <version epoch="0" ver="8.6.0" rel="1.fc40"/><checksum type="sha256" pkgid="YES">EE</checksum>
 <format><rpm:sourcerpm>curl-8.6.0-1.fc40.src.rpm</rpm:sourcerpm></format></package>
<package type="rpm"><name>gnutls</name><arch>x86_64</arch>
 <version epoch="1" ver="3.8" rel="2"/></package>
</metadata>"""
    index = parse_primary(primary)
    (curl,) = index.get("curl")
    assert (curl.evr, curl.sourcerpm, curl.checksum) == (
        "8.6.0-1.fc40",
        "curl-8.6.0-1.fc40.src.rpm",
        "EE",
    )
    assert index.get("gnutls")[0].evr == "1:3.8-2"
    assert evr("0", "1", None) == "1"


def test_decompress_is_bounded() -> None:
    data = b"Package: x\n" * 1000
    for name, packed in (
        ("Packages.xz", lzma.compress(data)),
        ("Packages.gz", gzip.compress(data)),
        ("Packages", data),
    ):
        assert decompress(packed, name, len(data)) == data
        with pytest.raises(BadIndex, match=r"beyond|over"):
            decompress(packed, name, len(data) - 1)
    with pytest.raises(BadIndex, match="cut short"):
        decompress(lzma.compress(data)[:-20], "Packages.xz", len(data))
    with pytest.raises(BadIndex, match="does not decompress"):
        decompress(b"not gzip", "Packages.gz", 100)
    with pytest.raises(BadIndex, match="compression is not read"):
        decompress(b"", "primary.xml.lz4", 100)


def test_zstd_is_bounded_whole_and_single() -> None:
    data = b"<package/>" * 1000
    declared = zstandard.ZstdCompressor().compress(data)
    undeclared = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    for packed in (declared, undeclared):
        assert decompress(packed, "primary.xml.zst", len(data)) == data
        with pytest.raises(BadIndex, match=r"beyond|within"):
            decompress(packed, "primary.xml.zst", len(data) - 1)
        with pytest.raises(BadIndex, match="does not decompress"):
            decompress(packed[:-8], "primary.xml.zst", len(data))  # cut short
    # Anything after the frame is refused (zstd checks it for frames that declare their size;
    # for others, the signed `open-checksum` of what was expanded does: rpm.py).
    with pytest.raises(BadIndex, match="does not decompress"):
        decompress(declared + declared, "primary.xml.zst", 2 * len(data))
    # A bomb that says its size is refused before anything is expanded.
    bomb = zstandard.ZstdCompressor().compress(bytes(64 << 20))
    with pytest.raises(BadIndex, match="beyond"):
        decompress(bomb, "primary.xml.zst", 1 << 20)
    with pytest.raises(BadIndex, match="does not decompress"):
        decompress(b"not zstd", "primary.xml.zst", 100)


def test_check_digest() -> None:
    body = b"index"
    check_digest(body, sha256=hashlib.sha256(body).hexdigest(), size=5, what="x")
    with pytest.raises(BadIndex, match="is 5 bytes, not the 6"):
        check_digest(body, sha256=hashlib.sha256(body).hexdigest(), size=6, what="x")
    with pytest.raises(BadIndex, match="not the index that was signed"):
        check_digest(body, sha256="00" * 32, size=None, what="x")
    with pytest.raises(BadIndex, match="sha256 is needed"):
        check_digest(body, sha256="00", size=None, what="x", algorithm="sha1")


@dataclass
class _Weighed:
    weight: int


def test_index_cache_loads_once_and_drops_the_least_recently_used() -> None:
    cache = IndexCache(max_weight=10)
    loads: list[str] = []
    gate = threading.Event()

    def load(name: str, weight: int) -> Callable[[], _Weighed]:
        def run() -> _Weighed:
            loads.append(name)
            gate.wait(5)
            return _Weighed(weight)

        return run

    threads = [threading.Thread(target=cache.get, args=(("a",), load("a", 4))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    gate.set()
    for thread in threads:
        thread.join()
    assert loads == ["a"]
    cache.get(("b",), load("b", 4))
    cache.get(("a",), load("a", 4))  # a is now the most recently used
    cache.get(("c",), load("c", 4))  # 12 > 10: b goes
    cache.get(("a",), load("a", 4))
    cache.get(("b",), load("b", 4))
    assert loads == ["a", "b", "c", "b"]

    def fail() -> _Weighed:
        raise SourceFault("h", "down")

    with pytest.raises(SourceFault):
        cache.get(("d",), fail)
    assert cache.get(("d",), load("d", 1)).weight == 1  # a failure is not kept


# --------------------------------------------------------------------------- OpenPGP


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("keys")
    archive = pysequoia.Tsk.generate("archive <archive@example.test>")
    other = pysequoia.Tsk.generate("other <other@example.test>")
    keyring = folder / "archive.gpg"
    keyring.write_bytes(bytes(archive.extract_certificate()))
    armored = folder / "d"
    armored.mkdir()
    (armored / "archive.asc").write_text(str(archive.extract_certificate()))
    return {"archive": archive, "other": other, "keyring": keyring, "dir": armored}


def clearsign(key: pysequoia.Tsk, text: bytes) -> bytes:
    return pysequoia.sign(key.signer(), text, mode=pysequoia.SignatureMode.CLEAR)


def detached(key: pysequoia.Tsk, text: bytes) -> bytes:
    return pysequoia.sign(key.signer(), text, mode=pysequoia.SignatureMode.DETACHED, armor=False)


def test_openpgp_verification(keys: dict[str, Any]) -> None:
    keyring = load_keyring(str(keys["keyring"]))
    assert load_keyring(str(keys["keyring"])) is keyring  # read once while unchanged
    assert isinstance(load_keyring(str(keys["dir"])), Keyring)
    signed = clearsign(keys["archive"], b"Suite: bookworm\n")
    assert keyring.verify_cleartext(signed, "InRelease") == b"Suite: bookworm\n"
    # Text outside the signature is never returned.
    assert keyring.verify_cleartext(b"Suite: evil\n" + signed, "InRelease") == b"Suite: bookworm\n"
    with pytest.raises(SignatureError, match="does not verify against the keyring"):
        keyring.verify_cleartext(signed.replace(b"bookworm", b"bullseye"), "InRelease")
    with pytest.raises(SignatureError, match=r"which the keyring .* does not hold"):
        keyring.verify_cleartext(clearsign(keys["other"], b"x\n"), "InRelease")
    with pytest.raises(SignatureError, match="is not signed"):
        keyring.verify_cleartext(b"Suite: bookworm\n", "InRelease")
    # Detached: one good signature among several is enough; none is not.
    # (One armored block of two signatures, as `gpg -u A -u B --armor --detach-sign` writes.)
    both = pysequoia.armor(
        detached(keys["other"], b"data") + detached(keys["archive"], b"data"),
        pysequoia.ArmorKind.Signature,
    ).encode()
    keyring.verify_detached(b"data", both, "Release")
    with pytest.raises(SignatureError, match="does not verify"):
        keyring.verify_detached(b"changed", both, "Release")
    with pytest.raises(SignatureError, match="does not hold"):
        keyring.verify_detached(b"data", detached(keys["other"], b"data"), "Release")
    with pytest.raises(SignatureError, match=r"holds no signature|not OpenPGP"):
        keyring.verify_detached(b"data", b"", "Release")


def test_a_revoked_key_signs_nothing(keys: dict[str, Any], tmp_path: Path) -> None:
    key = pysequoia.Tsk.generate("revoked <r@example.test>")
    signed = clearsign(key, b"x\n")
    revocation = key.extract_certificate().revoke(key.certifier())
    revoked = tmp_path / "revoked.gpg"
    cert = pysequoia.Cert.from_bytes(bytes(key.extract_certificate()) + bytes(revocation))
    assert cert.is_revoked
    revoked.write_bytes(bytes(cert))
    with pytest.raises(SignatureError, match="does not verify"):
        load_keyring(str(revoked)).verify_cleartext(signed, "InRelease")


def test_a_file_that_is_not_a_keyring(tmp_path: Path) -> None:
    junk = tmp_path / "pubring.kbx"
    junk.write_bytes(b"KBXf junk")
    with pytest.raises(SignatureError, match="holds no OpenPGP certificates"):
        load_keyring(str(junk))


# --------------------------------------------------------------------------- the apt backend


@dataclass
class FakeClient:
    """A source served from memory (`files`: URL -> body), with the cache TrustedSources keeps."""

    config: SourceConfig
    files: dict[str, bytes]
    asked: list[str] = field(default_factory=list)
    kept: dict[tuple[str, ...], Any] = field(default_factory=dict)
    holds: list[float] = field(default_factory=list)

    def get(self, url: str, accept: str) -> Response | None:
        self.asked.append(url.removeprefix(self.config.base))
        body = self.files.get(url)
        return None if body is None else Response(status=200, headers={}, body=body, url=url)

    def cached(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        if key not in self.kept:
            self.kept[key] = load()
        return self.kept[key]

    def forget(self, key: tuple[str, ...]) -> None:
        self.kept.pop(key, None)

    def holds_for(self, seconds: float) -> None:
        self.holds.append(seconds)


def _release(files: dict[str, bytes], *, valid_until: str | None, by_hash: bool) -> bytes:
    lines = ["Suite: bookworm", "Codename: bookworm", "Date: Sat, 01 Jan 2000 00:00:00 UTC"]
    if valid_until:
        lines.append(f"Valid-Until: {valid_until}")
    if by_hash:
        lines.append("Acquire-By-Hash: yes")
    lines.append("SHA256:")
    for path, body in files.items():
        lines.append(f" {hashlib.sha256(body).hexdigest()} {len(body)} {path}")
    return ("\n".join(lines) + "\n").encode()


def _served(
    keys: dict[str, Any], *, valid_until: str | None = None, by_hash: bool = False
) -> dict[str, bytes]:
    packages = (
        b"Package: bash\nVersion: 5.2.15-2+b7\nArchitecture: amd64\nSHA256: " + b"ab" * 32 + b"\n"
    )
    listed = {
        "main/binary-amd64/Packages": packages,
        "main/binary-amd64/Packages.xz": lzma.compress(packages),
        "main/binary-amd64/Packages.gz": gzip.compress(packages),
    }
    base = "http://deb.example/debian/dists/bookworm"
    release = _release(listed, valid_until=valid_until, by_hash=by_hash)
    served = {f"{base}/InRelease": clearsign(keys["archive"], release)}
    gz = listed["main/binary-amd64/Packages.gz"]
    if by_hash:  # only the gzip form, and only by hash
        served[f"{base}/main/binary-amd64/by-hash/SHA256/{hashlib.sha256(gz).hexdigest()}"] = gz
    else:
        served[f"{base}/main/binary-amd64/Packages.gz"] = gz
    return served


def bash(**hashes: str) -> tuple[Any, Component]:
    purl = "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"
    component = Component(
        "bash",
        "5.2.15-2+b7",
        purl,
        "deb",
        "debian",
        qualifiers={"arch": "amd64", "distro": "debian-12"},
        hashes=hashes,
    )
    return identity_from_purl(purl), component


def test_apt_backend_by_hash_and_compression_fallback(keys: dict[str, Any]) -> None:
    backend = AptBackend(indexes=IndexCache())
    client = FakeClient(
        apt_config("http://deb.example/debian", str(keys["keyring"])), _served(keys, by_hash=True)
    )
    listing = backend.ask(client, *bash())
    assert listing.version is not None and listing.version.hashes == {
        "sha256": frozenset({"ab" * 32})
    }
    # By hash first (the .xz is served neither way), then by name, then the .gz by hash.
    folder = "/dists/bookworm/main/binary-amd64"
    assert [p.split("/SHA256/")[0] for p in client.asked] == [
        "/dists/bookworm/InRelease",
        f"{folder}/by-hash",
        f"{folder}/Packages.xz",
        f"{folder}/by-hash",
    ]
    # The SBOM's digest is compared by TrustedSources; a second ask reads nothing.
    backend.ask(client, *bash(sha256="ab" * 32))
    assert len(client.asked) == 4


def test_apt_backend_rereads_a_release_that_expired_while_cached(keys: dict[str, Any]) -> None:
    now = [946_684_800.0 + 3600]  # 2000-01-01 01:00 UTC
    backend = AptBackend(indexes=IndexCache(), clock=lambda: now[0])
    config = apt_config("http://deb.example/debian", str(keys["keyring"]))
    client = FakeClient(config, _served(keys, valid_until="Sat, 01 Jan 2000 02:00:00 UTC"))
    assert backend.ask(client, *bash()).version is not None
    assert client.asked.count("/dists/bookworm/InRelease") == 1
    # What it vouches for holds no longer than the Release: an hour from now.
    assert client.holds == [3600.0]
    now[0] += 7200  # past Valid-Until: the cached Release is dropped and read again
    with pytest.raises(SourceFault, match="has expired: Valid-Until 2000-01-01 02:00:00 UTC"):
        backend.ask(client, *bash())
    assert client.asked.count("/dists/bookworm/InRelease") == 2
    client.files = _served(keys, valid_until="Sun, 02 Jan 2000 00:00:00 UTC")  # re-signed
    assert backend.ask(client, *bash()).version is not None
