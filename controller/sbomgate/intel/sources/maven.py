"""The Maven repository layout (Maven Central, Nexus, Artifactory, a plain web server).

`<group path>/<artifact>/<version>/<artifact>-<version>.pom` says the version exists (its
`Last-Modified` is the publication time), `maven-metadata.xml` that the artifact does, and the
artifact file's `.sha256` / `.sha1` checksum files are the digests, fetched only when the SBOM
has one to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar
from urllib.parse import quote

from defusedxml import ElementTree

from sbomgate.identity import PackageIdentity
from sbomgate.intel.sources.common import add_hash, frozen_hashes, rfc3339
from sbomgate.intel.sources.interface import (
    NOT_LISTED,
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.sbom.model import Component


class MavenBackend:
    """A Maven repository."""

    kind: ClassVar[SourceKind] = "maven"
    purl_types: ClassVar[tuple[str, ...]] = ("maven",)

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the repository has of the artifact at this version: POM, metadata, checksums."""
        group, artifact, version = identity.namespace, identity.name, identity.version
        if not group or not version:
            return NOT_LISTED
        base = f"{client.config.base}/{quote(group.replace('.', '/'))}/{quote(artifact)}"

        def load_pom() -> VersionInfo | None:
            url = f"{base}/{quote(version)}/{quote(artifact)}-{quote(version)}.pom"
            response = client.get(url, "*/*")
            if response is None:
                return None
            return VersionInfo(published_at=rfc3339(response.header("last-modified")))

        info = client.cached(("maven-pom", group, artifact, version), load_pom)
        if info is None:
            listed = client.cached(("maven-metadata", group, artifact), _metadata(client, base))
            return Listing(found_package=listed is not None)
        wanted = [a for a in ("sha256", "sha1") if component.hashes.get(a)]
        if not wanted:
            return Listing(found_package=True, version=info)
        classifier = component.qualifiers.get("classifier")
        extension = component.qualifiers.get("type") or "jar"
        filename = f"{artifact}-{version}{'-' + classifier if classifier else ''}.{extension}"
        hashes: dict[str, set[str]] = {}
        for algorithm in wanted:
            url = f"{base}/{quote(version)}/{quote(filename)}.{algorithm}"

            def load_sum(url: str = url) -> str | None:
                response = client.get(url, "text/plain, */*")
                if response is None:
                    return None
                words = response.body.decode("ascii", "replace").split()
                return words[0].lower() if words else ""

            add_hash(hashes, algorithm, client.cached(("maven-sum", url), load_sum))
        return Listing(
            found_package=True,
            version=VersionInfo(published_at=info.published_at, hashes=frozen_hashes(hashes)),
        )


def _metadata(client: SourceClient, base: str) -> Callable[[], frozenset[str] | None]:
    """A loader of the versions `maven-metadata.xml` lists (None: no such artifact)."""

    def load() -> frozenset[str] | None:
        response = client.get(f"{base}/maven-metadata.xml", "application/xml, */*")
        if response is None:
            return None
        try:
            root = ElementTree.fromstring(response.body)
        except ElementTree.ParseError as exc:
            raise SourceFault(
                client.config.host, f"invalid maven-metadata.xml under {base}: {exc}"
            ) from None
        return frozenset(
            (v.text or "").strip() for v in root.iter("version") if (v.text or "").strip()
        )

    return load
