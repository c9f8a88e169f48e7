"""Building `input.v0`, the document a policy sees (Cloudsmith's PolicyInputV0, extended).

Every key is always present; a fact we do not know is `null`, never absent, so policies written
against Cloudsmith's cookbook (whose tests feed `license: null`, `osv: null`) behave the same.

Added to Cloudsmith's shape (its fields are unchanged):
- `identity.canonical`: the package's canonical identity (`sbomgate.identity`), which every
  lookup used: `{type, package, version, origin, source, disagreements}`; null without a purl.
  `disagreements` lists where the SBOM's own name, group or version fields name something else
  than the purl.
- `lists`: `{allow, blocklist, quarantine}`, the entries of `data.sbomgate.<list>` that name
  this package, matched in Python against the canonical identity (`intel/lists.py`), each
  `{entry, version, reason, uncertain}`; `uncertain` says why the version could not be
  compared (deny lists count such a package as listed).
- `package.upstream_metadata.first_published_at`: when the project's first release (any
  version) was published, as the vouching repository says (null: it does not say), next to
  `published_at`, this version's.
- `repository.hosting`: `hosted` or `proxied` (`intel.model.Hosting`), beside the vouching
  repository's `name`, `url` and `kind`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sbomgate.identity import PackageIdentity, identity_of

# Re-exported: the facts lived here, and `from sbomgate.policy.input import PackageFacts` works.
from sbomgate.intel.model import NO_FACTS as NO_FACTS
from sbomgate.intel.model import PackageFacts as PackageFacts
from sbomgate.sbom.model import Component, Sbom

ListMatches = Mapping[str, Sequence[Mapping[str, Any]]]
NO_LIST_MATCHES: ListMatches = {"allow": (), "blocklist": (), "quarantine": ()}


class ListMatcher(Protocol):
    """The compiled data lists (`intel.lists.PackageLists`)."""

    def match(self, identity: PackageIdentity | None) -> ListMatches:
        """The list entries that name `identity`, per list."""


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
    """`input.v0.package`: the component's own fields and what the facts say of it."""
    return {
        "name": component.name,
        "version": component.version,
        "format": component.format,
        "purl": component.purl,
        "license": _license(component),
        "checksum_sha256": component.hashes.get("sha256"),
        "upstream_metadata": {
            "published_at": facts.published_at,
            "first_published_at": facts.first_published_at,
            "checksum_mismatch": facts.checksum_mismatch,
            "yanked": facts.yanked,
        },
        "typosquat_of": facts.typosquat_of,
        "tags": [{"name": t} for t in facts.tags],
        "files": [],
    }


def identity_document(
    component: Component,
    identity: PackageIdentity | None = None,
    disagreements: Sequence[str] = (),
) -> dict[str, Any]:
    """`input.v0.identity`: the SBOM's name fields and the canonical identity."""
    canonical = None
    if identity is not None:
        canonical = identity.to_input()
        canonical["disagreements"] = list(disagreements)
    return {
        "namespace": component.namespace,
        "name": component.name,
        "version": component.version,
        "qualifiers": dict(component.qualifiers),
        "format": component.format,
        "canonical": canonical,
    }


def build_input(
    component: Component | None,
    *,
    sbom: Sbom | None = None,
    facts: PackageFacts = NO_FACTS,
    image: Mapping[str, Any] | None = None,
    workload: Mapping[str, Any] | None = None,
    lists: ListMatcher | None = None,
    disagreements: Sequence[str] = (),
) -> dict[str, Any]:
    """`{"v0": {...}}` for one package; pass `sbom` only for the image-level (subject) input,
    `lists` to match the data lists, `disagreements` from `identity.component_disagreements`."""
    identity = identity_of(component) if component is not None else None
    return {
        "v0": {
            "package": package_document(component, facts) if component else None,
            "identity": (
                identity_document(component, identity, disagreements) if component else None
            ),
            "lists": lists.match(identity) if lists is not None else NO_LIST_MATCHES,
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
