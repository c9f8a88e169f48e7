"""RPM repositories as dnf reads them with `repo_gpgcheck` (createrepo_c's layout: Fedora,
RHEL, Rocky, Alma, openSUSE, Artifactory/Nexus yum repositories, a plain web server).

`<url>/repodata/repomd.xml` is fetched with its detached signature `repomd.xml.asc` and
verified against the source's keyring (`openpgp`): an unsigned or badly signed repomd is a
fault, never "not found". The `primary` index it lists is fetched, checked against the digest
and size repomd lists (and its `open-checksum` once expanded: `.zst` as Fedora writes it, `.gz`,
`.xz`, `.bz2` or none), parsed once and kept by that digest
(`indexes.IndexCache`). repomd carries no expiry (apt's `Valid-Until` has no counterpart), so
a frozen mirror cannot be told from a quiet one.

A purl names a binary package (`<name>`) at `version-release` with the `epoch` qualifier (an
absent epoch is 0, as rpm reads it), for its `arch` (`noarch` counts for any). Its `upstream`
qualifier, when given, must be the package's source rpm file name. The package file's
`pkgid` checksum is compared with the SBOM's digest.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

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
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.intel.sources.openpgp import SignatureError, load_keyring
from sbomgate.sbom.model import Component

_REPO = "{http://linux.duke.edu/metadata/repo}"
_COMMON = "{http://linux.duke.edu/metadata/common}"
_RPM = "{http://linux.duke.edu/metadata/rpm}"


class RpmEntry(NamedTuple):
    """One package of a `primary` index."""

    evr: str  # `epoch:version-release`, the epoch left out when 0
    arch: str
    sourcerpm: str | None
    checksum_type: str | None
    checksum: str | None


@dataclass(frozen=True, slots=True)
class PrimaryIndex:
    """A parsed `primary.xml`: its packages by name."""

    by_name: Mapping[str, tuple[RpmEntry, ...]]
    weight: int

    def get(self, name: str) -> tuple[RpmEntry, ...]:
        """The entries of package `name`."""
        return self.by_name.get(name, ())


@dataclass(frozen=True, slots=True, kw_only=True)
class Repomd:
    """What a lookup needs of a signed `repomd.xml`: where its primary index is."""

    location: str
    checksum_type: str
    checksum: str
    size: int | None
    open_checksum: str | None
    open_size: int | None


def evr(epoch: str | None, version: str, release: str | None) -> str:
    """`epoch:version-release` as a purl spells it, the epoch left out when it is 0."""
    text = f"{version}-{release}" if release else version
    return f"{epoch}:{text}" if epoch and epoch != "0" else text


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def parse_repomd(body: bytes, where: str) -> Repomd:
    """The primary index's location and digests in a (verified) `repomd.xml`."""
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError) as exc:
        raise BadIndex(f"{where} is not XML: {exc}") from None
    for data in root.iter(f"{_REPO}data"):
        if data.get("type") != "primary":
            continue
        location = data.find(f"{_REPO}location")
        checksum = data.find(f"{_REPO}checksum")
        href = location.get("href") if location is not None else None
        if not href or checksum is None or not _text(checksum):
            break
        if href.startswith("/") or ".." in href.split("/") or "://" in href:
            raise BadIndex(f"{where}: the primary index is at {href!r}, outside the repository")
        open_checksum = data.find(f"{_REPO}open-checksum")
        size, open_size = _text(data.find(f"{_REPO}size")), _text(data.find(f"{_REPO}open-size"))
        return Repomd(
            location=href,
            checksum_type=(checksum.get("type") or "sha256").lower(),
            checksum=(_text(checksum) or "").lower(),
            size=int(size) if size and size.isdigit() else None,
            open_checksum=(_text(open_checksum) or "").lower() or None,
            open_size=int(open_size) if open_size and open_size.isdigit() else None,
        )
    raise BadIndex(f"{where} lists no primary index with a location and a checksum")


def parse_primary(text: bytes) -> PrimaryIndex:
    """The packages of a `primary.xml` (read as a stream: the element of each package is let go
    once read)."""
    collected: dict[str, list[RpmEntry]] = {}
    count = 0
    try:
        for _, element in ElementTree.iterparse(io.BytesIO(text), events=("end",)):
            if element.tag != f"{_COMMON}package":
                continue
            name = _text(element.find(f"{_COMMON}name"))
            version = element.find(f"{_COMMON}version")
            if name and version is not None and version.get("ver"):
                checksum = element.find(f"{_COMMON}checksum")
                fmt = element.find(f"{_COMMON}format")
                source = _text(fmt.find(f"{_RPM}sourcerpm")) if fmt is not None else None
                entry = RpmEntry(
                    evr=evr(version.get("epoch"), version.get("ver") or "", version.get("rel")),
                    arch=(_text(element.find(f"{_COMMON}arch")) or "").lower(),
                    sourcerpm=source,
                    checksum_type=checksum.get("type") if checksum is not None else None,
                    checksum=_text(checksum),
                )
                collected.setdefault(name, []).append(entry)
                count += 1
            element.clear()
    except (ElementTree.ParseError, ValueError) as exc:
        raise BadIndex(f"the primary index is not XML: {exc}") from None
    return PrimaryIndex({k: tuple(v) for k, v in collected.items()}, weight=max(1, count))


class RpmBackend:
    """An RPM (yum / dnf) repository (see the module docstring)."""

    kind: ClassVar[SourceKind] = "rpm"
    purl_types: ClassVar[tuple[str, ...]] = ("rpm",)

    def __init__(
        self,
        *,
        indexes: IndexCache | None = None,
        max_index_bytes: int = 1024 * MiB,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.indexes = indexes or IndexCache()
        self.max_index_bytes = max_index_bytes
        self.clock = clock
        self._flights = FlightLocks()

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the repository's signed primary index lists for the package at this
        epoch:version-release and architecture."""
        dist = client.config.distribution
        if dist is None or not identity.version:
            return NOT_LISTED
        arch = (component.qualifiers.get("arch") or "").strip().lower() or None
        if arch is not None and dist.architectures and arch not in (*dist.architectures, "noarch"):
            return NOT_LISTED  # not an architecture this source is trusted for
        wanted = identity.version.removeprefix("0:")
        upstream = (component.qualifiers.get("upstream") or "").strip() or None
        key = ("rpm-repomd",)
        with self._flights.lock((client.config.name, *key)):
            repomd = client.cached(key, self._repomd_loader(client))
        if repomd is None:  # not reached: the loader raises instead
            raise SourceFault(client.config.host, "no repomd.xml")
        index = self._primary(client, repomd)
        entries = index.get(identity.name)
        if not entries:
            return NOT_LISTED
        matches = [
            e
            for e in entries
            if e.evr == wanted
            and (arch is None or e.arch in (arch, "noarch"))
            and (upstream is None or e.sourcerpm == upstream)
        ]
        if not matches:
            return Listing(found_package=True)
        hashes: dict[str, set[str]] = {}
        for entry in matches:
            if entry.checksum_type:
                add_hash(hashes, entry.checksum_type, entry.checksum)
        return Listing(found_package=True, version=VersionInfo(hashes=frozen_hashes(hashes)))

    def _repomd_loader(self, client: SourceClient) -> Callable[[], Repomd]:
        config = client.config
        host = config.host
        where = f"{config.base}/repodata/repomd.xml"

        def load() -> Repomd:
            dist = config.distribution
            assert dist is not None  # SourceConfig checks it for an rpm source
            try:
                keyring = load_keyring(dist.keyring)
            except (OSError, SignatureError) as exc:
                raise SourceFault(
                    host, f"source {config.name}: cannot read its keyring: {exc}"
                ) from None
            repomd = client.get(where, "application/xml, */*")
            if repomd is None:
                raise SourceFault(host, f"{where}: not found: is {config.url} an RPM repository?")
            signature = client.get(f"{where}.asc", "*/*")
            if signature is None:
                raise SourceFault(host, f"{where} is not signed: no repomd.xml.asc")
            try:
                keyring.verify_detached(repomd.body, signature.body, where)
                return parse_repomd(repomd.body, where)
            except (SignatureError, BadIndex) as exc:
                raise SourceFault(host, str(exc)) from None

        return load

    def _primary(self, client: SourceClient, repomd: Repomd) -> PrimaryIndex:
        host = client.config.host
        url = f"{client.config.base}/{repomd.location}"

        def load() -> PrimaryIndex:
            limit = repomd.open_size or self.max_index_bytes
            if limit > self.max_index_bytes:
                raise SourceFault(host, f"{url} expands to {limit} bytes, over the limit")
            response = client.get(url, "*/*")
            if response is None:
                raise SourceFault(
                    host, f"{url}: its signed repomd.xml lists it, but it is not there"
                )
            try:
                check_digest(
                    response.body,
                    sha256=repomd.checksum,
                    size=repomd.size,
                    what=url,
                    algorithm=repomd.checksum_type,
                )
                text = decompress(response.body, repomd.location, limit)
                if repomd.open_checksum:
                    check_digest(
                        text,
                        sha256=repomd.open_checksum,
                        size=repomd.open_size,
                        what=f"{url} expanded",
                        algorithm=repomd.checksum_type,
                    )
                return parse_primary(text)
            except BadIndex as exc:
                raise SourceFault(host, str(exc)) from None

        return self.indexes.get(("rpm", repomd.checksum_type, repomd.checksum), load)
