"""What package intelligence says of one package: the facts every source produces and the
policy engine reads (`input.v0` is built from them in `sbomgate.policy.input`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sbomgate.sbom.model import Component


@dataclass(frozen=True, slots=True, kw_only=True)
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

# Whatever answers for a component: the snapshot, the combined sources (`intel.facts`).
FactSource = Callable[[Component], PackageFacts]
