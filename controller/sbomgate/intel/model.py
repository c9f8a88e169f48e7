"""What package intelligence says of one package: the facts every source produces and the
policy engine reads (`input.v0` is built from them in `sbomgate.policy.input`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sbomgate.sbom.model import Component

# What a trusted repository serves (`input.v0.repository.hosting`): only what the organisation
# put there (`hosted`), or also whatever a public registry it proxies lists (`proxied`:
# Artifactory remotes, Nexus proxies, Cloudsmith upstreams, Verdaccio uplinks, devpi mirrors),
# where anyone may have registered a name last week. A repository that does not say is
# `proxied`: the assumption that cannot let a slopsquat in by mistake. (pypiserver's fallback
# redirects instead, and an answer from another host is a fault, never a vouch.)
Hosting = Literal["hosted", "proxied"]
HOSTINGS: tuple[Hosting, ...] = get_args(Hosting)
DEFAULT_HOSTING: Hosting = "proxied"


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageFacts:
    """What intelligence sources know of one package; all unknown by default."""

    repository: Mapping[str, Any] | None = None
    published_at: str | None = None
    # When the project's first release was published (any version): a name registered last
    # month is what a slopsquat looks like. None: the repository does not say.
    first_published_at: str | None = None
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

# Whatever answers for a component: the snapshot, the combined sources (`intel.facts`).
FactSource = Callable[[Component], PackageFacts]
