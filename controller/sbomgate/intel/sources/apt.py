"""Debian and Ubuntu repositories as apt reads them (deb.debian.org, archive.ubuntu.com, a
mirror, reprepro, aptly, apt-ftparchive, Artifactory/Nexus apt repositories).

For each configured suite, `dists/<suite>/InRelease` (else `Release` with `Release.gpg`) is
fetched and its OpenPGP signature verified against the source's keyring (`openpgp`); only the
signed text is read. It must name that suite (`Suite` or `Codename`), carry SHA-256 digests, be
dated no later than now, and not be past its `Valid-Until`: apt's own checks, each a fault (the
source cannot be asked), never "not found". The `Packages` indexes it lists for the source's
components and the purl's architecture (`binary-<arch>`, and `binary-all` when the Release
does not fold it into each architecture's) are fetched (by hash when the Release says
`Acquire-By-Hash`, as apt does), compressed as `.xz`, `.gz`, `.bz2` or not, checked against
the SHA-256 digest and size the Release lists, parsed once and kept by that digest
(`indexes.IndexCache`).

A purl names a binary package (`Package:`) at a version (`Version:`, epoch included) and
architecture (`arch`; `Architecture: all` counts for any). Its `upstream` qualifier names the
source package (`Source:`, and its version), which must then agree with the index. The digests
of the `.deb` (`SHA256`, `SHA512`, `SHA1`) are compared with the SBOM's.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from sbomgate.identity import PackageIdentity
from sbomgate.intel.sources.common import add_hash, frozen_hashes
from sbomgate.intel.sources.indexes import (
    BadIndex,
    FlightLocks,
    IndexCache,
    MiB,
    check_digest,
    decompress,
)
from sbomgate.intel.sources.interface import (
    NOT_LISTED,
    Distribution,
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.intel.sources.openpgp import SignatureError, load_keyring
from sbomgate.sbom.model import Component

# Compressed forms of an index, in the order they are asked for (apt's own preference).
_VARIANTS = (".xz", ".gz", ".bz2", "")
# A Release dated later than now by more than this is "not valid yet" (clocks differ a little).
_CLOCK_SKEW = 600.0
_FIELDS = re.compile(
    rb"^(package|version|architecture|source|sha256|sha512|sha1):[ \t]*(\S[^\n]*?)?[ \t]*$",
    re.M | re.I,
)
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


class DebEntry(NamedTuple):
    """One binary package of a `Packages` index."""

    version: str
    arch: str
    source: str
    source_version: str
    sha256: str | None
    sha512: str | None
    sha1: str | None


@dataclass(frozen=True, slots=True)
class PackagesIndex:
    """A parsed `Packages` index: its entries by package name."""

    by_name: Mapping[str, tuple[DebEntry, ...]]
    weight: int

    def get(self, name: str) -> tuple[DebEntry, ...]:
        """The entries of package `name` (every version and architecture listed)."""
        return self.by_name.get(name, ())


def _paragraphs(text: bytes) -> Iterator[bytes]:
    """The stanzas of a deb822 file, without making a list of them all."""
    start = 0
    while start < len(text):
        end = text.find(b"\n\n", start)
        if end < 0:
            end = len(text)
        if end > start:
            yield text[start:end]
        start = end + 2


def parse_packages(text: bytes) -> PackagesIndex:
    """The entries of a `Packages` file (stanzas without `Package:` are skipped)."""
    collected: dict[str, list[DebEntry]] = {}
    count = 0
    for stanza in _paragraphs(text):
        fields: dict[bytes, bytes] = {}
        for key, value in _FIELDS.findall(stanza):
            fields.setdefault(key.lower(), value)
        name = fields.get(b"package", b"").decode("utf-8", "replace").strip().lower()
        version = fields.get(b"version", b"").decode("utf-8", "replace").strip()
        if not name or not version:
            continue
        source, source_version = name, version
        if b"source" in fields:
            m = _SOURCE.match(fields[b"source"].decode("utf-8", "replace").strip())
            if m:
                source, source_version = m.group(1).lower(), m.group(2) or version
        entry = DebEntry(
            version=version,
            arch=fields.get(b"architecture", b"").decode("ascii", "replace").strip().lower(),
            source=source,
            source_version=source_version,
            sha256=_hex(fields.get(b"sha256")),
            sha512=_hex(fields.get(b"sha512")),
            sha1=_hex(fields.get(b"sha1")),
        )
        collected.setdefault(name, []).append(entry)
        count += 1
    return PackagesIndex({k: tuple(v) for k, v in collected.items()}, weight=max(1, count))


def _hex(value: bytes | None) -> str | None:
    if not value:
        return None
    text = value.decode("ascii", "replace").strip().lower()
    return text or None


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """The signed `Release` of one suite: what a lookup needs of it."""

    suite: str
    date: float | None
    valid_until: float | None
    by_hash: bool
    all_folded: bool  # `No-Support-for-Architecture-all: Packages`: arch-all in each arch's
    # path under dists/<suite>/ -> (size, SHA-256)
    files: Mapping[str, tuple[int, str]]

    def expired(self, now: float) -> bool:
        """Past its `Valid-Until`."""
        return self.valid_until is not None and now > self.valid_until


def parse_release(text: bytes, suite: str, where: str) -> Release:
    """The signed text of a `Release`; BadIndex when it is not for `suite` or has no SHA-256."""
    fields: dict[str, str] = {}
    current: str | None = None
    for raw in text.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            if fields:
                break  # one stanza
            continue
        if raw[:1] in (" ", "\t"):
            if current is not None:
                fields[current] += "\n" + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        current = key.strip().lower()
        fields[current] = value.strip()
    names = {fields.get("suite", ""), fields.get("codename", "")} - {""}
    wanted = suite.rsplit("/", 1)[-1] if "/" in suite else suite
    if suite not in names and wanted not in names:
        raise BadIndex(
            f"{where} is the Release of {' / '.join(sorted(names)) or 'an unnamed suite'}, not of "
            f"{suite}: another suite's signed Release was served"
        )
    files: dict[str, tuple[int, str]] = {}
    for line in fields.get("sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            files[parts[2]] = (int(parts[1]), parts[0].lower())
    if not files:
        raise BadIndex(f"{where} lists no SHA-256 digests (apt refuses weaker ones too)")
    folded = fields.get("no-support-for-architecture-all", "").strip().lower() == "packages"
    return Release(
        suite=suite,
        date=_when(fields.get("date")),
        valid_until=_when(fields.get("valid-until")),
        by_hash=fields.get("acquire-by-hash", "").strip().lower() == "yes",
        all_folded=folded,
        files=files,
    )


def _when(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _stamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class AptBackend:
    """An apt repository (see the module docstring)."""

    kind: ClassVar[SourceKind] = "apt"
    purl_types: ClassVar[tuple[str, ...]] = ("deb",)

    def __init__(
        self,
        *,
        indexes: IndexCache | None = None,
        max_index_bytes: int = 512 * MiB,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.indexes = indexes or IndexCache()
        self.max_index_bytes = max_index_bytes
        self.clock = clock
        self._flights = FlightLocks()

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the suites' signed indexes list for the binary package at this version and
        architecture. A suite that cannot be read is a fault unless another suite lists it."""
        dist = client.config.distribution
        version = identity.version
        if dist is None or not version:
            return NOT_LISTED
        arch = (component.qualifiers.get("arch") or "").strip().lower() or None
        found_package = False
        fault: SourceFault | None = None
        for suite in dist.suites:
            try:
                release = self._release(client, suite)
                paths = _index_paths(release, dist, arch)
                indexes = [self._index(client, release, path) for path in paths]
            except SourceFault as exc:
                fault = fault or exc  # another suite may still list it
                continue
            for index in indexes:
                entries = index.get(identity.name)
                if not entries:
                    continue
                found_package = True
                matches = [e for e in entries if _matches(e, identity, version, arch)]
                if matches:
                    hashes: dict[str, set[str]] = {}
                    for entry in matches:
                        add_hash(hashes, "sha256", entry.sha256)
                        add_hash(hashes, "sha512", entry.sha512)
                        add_hash(hashes, "sha1", entry.sha1)
                    return Listing(
                        found_package=True, version=VersionInfo(hashes=frozen_hashes(hashes))
                    )
        if fault is not None:
            raise fault  # not listed where it could be asked, and a suite could not be
        return Listing(found_package=found_package)

    # ------------------------------------------------------------------ the signed Release

    def _release(self, client: SourceClient, suite: str) -> Release:
        key = ("apt-release", suite)
        load = self._release_loader(client, suite)
        with self._flights.lock((client.config.name, *key)):
            release = client.cached(key, load)
            if release is not None and release.expired(self.clock()):
                client.forget(key)  # a newer one may be served by now
                release = client.cached(key, load)
        if release is None:  # not reached: the loader raises instead
            raise SourceFault(client.config.host, f"no Release for suite {suite}")
        if release.valid_until is not None:
            # What it vouches for holds no longer than it does.
            client.holds_for(release.valid_until - self.clock())
        return release

    def _release_loader(self, client: SourceClient, suite: str) -> Callable[[], Release]:
        config = client.config
        host = config.host
        dists = f"{config.base}/dists/{suite}"

        def load() -> Release:
            dist = config.distribution
            assert dist is not None  # SourceConfig checks it for an apt source
            try:
                keyring = load_keyring(dist.keyring)
            except (OSError, SignatureError) as exc:
                raise SourceFault(
                    host, f"source {config.name}: cannot read its keyring: {exc}"
                ) from None
            inrelease = client.get(f"{dists}/InRelease", "*/*")
            try:
                if inrelease is not None:
                    where = f"{dists}/InRelease"
                    text = keyring.verify_cleartext(inrelease.body, where)
                else:
                    where = f"{dists}/Release"
                    release = client.get(where, "*/*")
                    if release is None:
                        raise SourceFault(
                            host, f"{dists}: no InRelease and no Release: is {suite} a suite here?"
                        )
                    signature = client.get(f"{where}.gpg", "*/*")
                    if signature is None:
                        raise SourceFault(
                            host, f"{where} is not signed: no InRelease, no Release.gpg"
                        )
                    keyring.verify_detached(release.body, signature.body, where)
                    text = release.body
                parsed = parse_release(text, suite, where)
            except (SignatureError, BadIndex) as exc:
                raise SourceFault(host, str(exc)) from None
            now = self.clock()
            if parsed.date is not None and parsed.date > now + _CLOCK_SKEW:
                raise SourceFault(
                    host, f"{where} is not valid yet: dated {_stamp(parsed.date)}, later than now"
                )
            if parsed.valid_until is not None and now > parsed.valid_until:
                raise SourceFault(
                    host,
                    f"{where} has expired: Valid-Until {_stamp(parsed.valid_until)} has passed "
                    "(a frozen or stale mirror)",
                )
            return parsed

        return load

    # ------------------------------------------------------------------ the Packages indexes

    def _index(self, client: SourceClient, release: Release, path: str) -> PackagesIndex:
        """The parsed index at `path` (`main/binary-amd64/Packages`), as the Release lists it."""
        config = client.config
        host = config.host
        dists = f"{config.base}/dists/{release.suite}"
        variants = [path + v for v in _VARIANTS if path + v in release.files]
        plain = release.files.get(path)
        digest = plain[1] if plain is not None else release.files[variants[0]][1]

        def load() -> PackagesIndex:
            limit = plain[0] if plain is not None else self.max_index_bytes
            if limit > self.max_index_bytes:
                raise SourceFault(
                    host, f"{dists}/{path} is {limit} bytes, over the {self.max_index_bytes} read"
                )
            for variant in variants:
                size, sha256 = release.files[variant]
                body = self._fetch(client, dists, variant, sha256, release.by_hash)
                if body is None:
                    continue
                where = f"{dists}/{variant}"
                try:
                    check_digest(body, sha256=sha256, size=size, what=where)
                    text = decompress(body, variant, limit)
                    if plain is not None and variant != path:
                        check_digest(text, sha256=plain[1], size=plain[0], what=f"{where} expanded")
                except BadIndex as exc:
                    raise SourceFault(host, str(exc)) from None
                return parse_packages(text)
            raise SourceFault(
                host,
                f"{dists}: its signed Release lists {path}, but none of {', '.join(variants)} "
                "can be fetched",
            )

        return self.indexes.get(("apt", digest), load)

    @staticmethod
    def _fetch(
        client: SourceClient, dists: str, path: str, sha256: str, by_hash: bool
    ) -> bytes | None:
        """The file, by hash first when the Release offers it (a mirror being updated still
        serves the file signed); None when the repository has neither."""
        if by_hash:
            folder = path.rsplit("/", 1)[0]
            response = client.get(f"{dists}/{folder}/by-hash/SHA256/{sha256}", "*/*")
            if response is not None:
                return response.body
        response = client.get(f"{dists}/{path}", "*/*")
        return response.body if response is not None else None


def _index_paths(release: Release, dist: Distribution, arch: str | None) -> Iterator[str]:
    """The `Packages` indexes to read for a purl's architecture, in order, that the Release
    lists (in some compression)."""
    if arch is None or arch == "all":
        arches: Sequence[str] = dist.architectures
    elif arch in dist.architectures:
        arches = (arch,)
    else:
        arches = ()  # not an architecture this source is trusted for
    wanted = [f"binary-{a}" for a in arches]
    if not release.all_folded and (arches or arch == "all"):
        wanted.append("binary-all")
    for component in dist.components:
        for folder in wanted:
            path = f"{component}/{folder}/Packages"
            if any(path + v in release.files for v in _VARIANTS):
                yield path


def _matches(entry: DebEntry, identity: PackageIdentity, version: str, arch: str | None) -> bool:
    if entry.version != version:
        return False
    if arch == "all" and entry.arch != "all":
        return False
    if arch is not None and entry.arch not in (arch, "all"):
        return False
    if identity.source is not None and entry.source != identity.source:
        return False
    return identity.source_version is None or entry.source_version == identity.source_version
