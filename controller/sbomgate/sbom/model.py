"""The lean, frozen data the rest of sbomgate sees of an SBOM, whatever its format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SbomFormat = Literal["cyclonedx", "spdx"]


@dataclass(frozen=True, slots=True)
class Component:
    """One package listed in an SBOM.

    `name` follows the ecosystem's own spelling (npm scoped packages are `@scope/name`; maven
    and other namespaced types keep the bare name, with the group in `namespace`).
    `format` is Cloudsmith's slug derived from the purl type (`python`, `npm`, ...) or None when
    there is no purl. `license` is one SPDX expression, or None when unknown
    (absent, NOASSERTION, NONE); `raw_license` is what the document said, verbatim-ish.
    Licenses not on the SPDX list are `LicenseRef-...` in `license` (sbom/licenses.py says
    exactly what it holds). `license_error` is set when license-expression failed on the
    license text: its license cannot be judged, which is an error for the package.
    `hashes` maps a lower-case algorithm name without dashes (`sha256`, `sha1`, `sha512`, `md5`)
    to a lower-case hex digest.
    """

    name: str
    version: str | None = None
    purl: str | None = None
    purl_type: str | None = None
    namespace: str | None = None
    qualifiers: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    license: str | None = None
    raw_license: str | None = None
    hashes: Mapping[str, str] = field(default_factory=dict)
    bom_ref: str | None = None
    license_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sbom:
    """A parsed SBOM: its subject, its flattened components, and the CycloneDX-JSON-shaped
    document that image-level policies see as `input.v0.sbom` (SPDX is converted)."""

    source: str
    format: SbomFormat
    spec_version: str
    subject: Component | None
    components: tuple[Component, ...]
    document: Mapping[str, Any]
