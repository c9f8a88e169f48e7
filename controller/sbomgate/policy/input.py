"""Building `input.v0`, the document a policy sees (Cloudsmith's PolicyInputV0, extended).

Every key is always present; a fact we do not know is `null`, never absent, so policies written
against Cloudsmith's cookbook (whose tests feed `license: null`, `osv: null`) behave the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sbomgate.sbom.model import Component, Sbom


@dataclass(frozen=True, slots=True)
class PackageFacts:
    """What intelligence sources know of one package; all unknown by default."""

    repository: Mapping[str, Any] | None = None
    published_at: str | None = None
    osv: tuple[Mapping[str, Any], ...] | None = None
    vulnerabilities: tuple[Mapping[str, Any], ...] | None = None
    tags: tuple[str, ...] = ()
    # The closest well-known name when this one looks like a typo of it (typosquat signal).
    typosquat_of: str | None = None
    # The trusted repository lists other hashes for this version than the SBOM: which.
    checksum_mismatch: str | None = None
    yanked: bool | None = None
    # Why no trusted repository could be asked about it (a fault, not "not found").
    unavailable: str | None = None


NO_FACTS = PackageFacts()


def _license(component: Component) -> dict[str, Any] | None:
    if component.license is None and component.raw_license is None:
        return None
    return {
        "oss_license": (
            {"spdx_identifier": component.license} if component.license is not None else None
        ),
        "raw_license": component.raw_license,
    }


def package_document(component: Component, facts: PackageFacts = NO_FACTS) -> dict[str, Any]:
    return {
        "name": component.name,
        "version": component.version,
        "format": component.format,
        "purl": component.purl,
        "license": _license(component),
        "checksum_sha256": component.hashes.get("sha256"),
        "upstream_metadata": {
            "published_at": facts.published_at,
            "checksum_mismatch": facts.checksum_mismatch,
            "yanked": facts.yanked,
        },
        "typosquat_of": facts.typosquat_of,
        "tags": [{"name": t} for t in facts.tags],
        "files": [],
    }


def identity_document(component: Component) -> dict[str, Any]:
    return {
        "namespace": component.namespace,
        "name": component.name,
        "version": component.version,
        "qualifiers": dict(component.qualifiers),
        "format": component.format,
    }


def build_input(
    component: Component | None,
    *,
    sbom: Sbom | None = None,
    facts: PackageFacts = NO_FACTS,
    image: Mapping[str, Any] | None = None,
    workload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`{"v0": {...}}` for one package; pass `sbom` only for the image-level (subject) input."""
    return {
        "v0": {
            "package": package_document(component, facts) if component else None,
            "identity": identity_document(component) if component else None,
            "osv": list(facts.osv) if facts.osv is not None else None,
            "vulnerabilities": (
                list(facts.vulnerabilities) if facts.vulnerabilities is not None else None
            ),
            "repository": facts.repository,
            "sbom": sbom.document if sbom is not None else None,
            "image": image,
            "workload": workload,
        }
    }
