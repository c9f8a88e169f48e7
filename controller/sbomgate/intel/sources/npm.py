"""The npm registry API (registry.npmjs.org, Verdaccio, Artifactory, Nexus).

`GET <base>/<name>` (a scoped name as `@scope%2fname`): `versions`, `time` (publication),
`dist.integrity` (Subresource Integrity) and `dist.shasum` (digests), `deprecated`.

The project's first release is the packument's `time.created`, else the earliest version time
in `time` (unpublished versions keep theirs there); None when neither is there. A proxy passes
the upstream's `time` through (Verdaccio uplinks do), so a name registered last week on the
public registry shows as created last week.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson

from sbomgate.identity import PackageIdentity
from sbomgate.intel.sources.common import add_hash, frozen_hashes, rfc3339
from sbomgate.intel.sources.interface import (
    HASH_ALGORITHMS,
    NOT_LISTED,
    Listing,
    SourceClient,
    SourceFault,
    SourceKind,
    VersionInfo,
)
from sbomgate.sbom.model import Component


class NpmBackend:
    """An npm registry."""

    kind: ClassVar[SourceKind] = "npm"
    purl_types: ClassVar[tuple[str, ...]] = ("npm",)

    def ask(self, client: SourceClient, identity: PackageIdentity, component: Component) -> Listing:
        """What the registry's packument lists for the package at this version."""
        name = identity.package  # `@scope/name`, case kept: npm names are case-sensitive
        host = client.config.host

        def load() -> tuple[dict[str, VersionInfo], str | None] | None:
            response = client.get(
                f"{client.config.base}/{quote(name, safe='@')}", "application/json"
            )
            if response is None:
                return None
            try:
                document = orjson.loads(response.body)
            except orjson.JSONDecodeError as exc:
                raise SourceFault(host, f"invalid JSON for {name}: {exc}") from None
            if not isinstance(document, dict):
                raise SourceFault(host, f"the document for {name} is not an object")
            versions = document.get("versions")
            times = document.get("time")
            times = times if isinstance(times, dict) else {}
            out: dict[str, VersionInfo] = {}
            for number, manifest in (versions if isinstance(versions, dict) else {}).items():
                if not isinstance(manifest, dict):
                    continue
                hashes: dict[str, set[str]] = {}
                dist = manifest.get("dist")
                if isinstance(dist, dict):
                    if isinstance(dist.get("integrity"), str):
                        for algorithm, digest in sri_to_hex(dist["integrity"]).items():
                            add_hash(hashes, algorithm, digest)
                    add_hash(hashes, "sha1", dist.get("shasum"))
                deprecated = manifest.get("deprecated")
                published = times.get(number)
                out[str(number)] = VersionInfo(
                    published_at=rfc3339(published) if isinstance(published, str) else None,
                    deprecated=deprecated if isinstance(deprecated, str) and deprecated else None,
                    hashes=frozen_hashes(hashes),
                )
            return out, first_publication(times)

        packument = client.cached(("npm", name), load)
        if packument is None:
            return NOT_LISTED
        versions, first = packument
        version = identity.version or ""
        return Listing(
            found_package=True,
            version=versions.get(version.removeprefix("v")),
            first_published_at=first,
        )


# `time` keys that are not versions.
_NOT_VERSIONS = frozenset({"created", "modified", "unpublished"})


def first_publication(times: Mapping[str, object]) -> str | None:
    """When the package was first published: `time.created`, else the earliest version time
    (RFC 3339 UTC), else None."""
    created = times.get("created")
    if isinstance(created, str) and (when := rfc3339(created)) is not None:
        return when
    published = [
        when
        for key, value in times.items()
        if key not in _NOT_VERSIONS and isinstance(value, str)
        if (when := rfc3339(value)) is not None
    ]
    return min(published) if published else None


def sri_to_hex(integrity: str) -> dict[str, str]:
    """`sha512-<base64> sha1-<base64>` (Subresource Integrity) as {algorithm: hex}."""
    out: dict[str, str] = {}
    for token in integrity.split():
        algorithm, _, b64 = token.partition("-")
        algorithm = algorithm.lower()
        if algorithm not in HASH_ALGORITHMS or not b64:
            continue
        try:
            out[algorithm] = base64.b64decode(b64.split("?", 1)[0], validate=True).hex()
        except (binascii.Error, ValueError):
            continue
    return out
