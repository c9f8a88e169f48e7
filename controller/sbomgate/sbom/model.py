"""The lean, frozen data the rest of sbomgate sees of an SBOM, whatever its format."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

SbomFormat = Literal["cyclonedx", "spdx"]


class JsonDocument(Mapping[str, Any]):
    """An SBOM's document kept as its JSON text, decoded when read (`json` is what
    `orjson.dumps` wrote of it). Decoded, a 5,000-component document is some 100,000 dicts and
    lists that Python's cyclic GC walks twice before they reach its oldest generation, and
    every full collection after; an admission reads the document only to pass it whole to
    policies that ask for `input.v0.sbom`, which the text serves (`orjson.Fragment`).

    `JsonDocument.in_statement(payload)` is the `predicate` of an in-toto statement kept as the
    statement's JSON: its own text is written only when asked for (no bundled policy reads
    `input.v0.sbom`, and writing 5,000 components' text took a twentieth of a new build's
    admission)."""

    __slots__ = ("_doc", "_json", "_statement")

    def __init__(self, json: bytes) -> None:
        self._json: bytes | None = json
        self._statement: bytes | None = None
        self._doc: dict[str, Any] | None = None

    @classmethod
    def in_statement(cls, payload: bytes) -> JsonDocument:
        """The `predicate` member of the in-toto statement whose JSON is `payload`."""
        document = cls(b"")
        document._json, document._statement = None, payload
        return document

    @property
    def json(self) -> bytes:
        """The document's JSON text (written from the statement's predicate when first asked)."""
        if self._json is None:
            self._json = orjson.dumps(self._decoded())
        return self._json

    def _decoded(self) -> dict[str, Any]:
        # Once read, kept: whoever reads it reads it again (each key would decode it anew).
        if self._doc is None:
            if self._statement is not None:
                statement = orjson.loads(self._statement)
                doc = statement.get("predicate") if type(statement) is dict else None
            else:
                doc = orjson.loads(self.json)
            if type(doc) is not dict:
                raise ValueError("a JsonDocument holds a JSON object")
            self._doc = doc
        return self._doc

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


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
    type: str | None = None
    """The CycloneDX component type (`library`, `file`, `operating-system`, ...; SPDX's
    primaryPackagePurpose is mapped to it), or None when the document gives none."""
    locations: tuple[str, ...] = ()
    """Where the tool found a component without a purl (file paths in the image: CycloneDX
    `evidence.occurrences`, syft's `syft:location:N:path`, syft's SPDX `sourceInfo`); not read
    for components with a purl, which their purl identifies."""


NOT_PACKAGE_TYPES = frozenset(
    {
        "file",
        "data",
        "cryptographic-asset",
        "machine-learning-model",
        "operating-system",
        "device",
        "platform",
        "container",
    }
)
"""Component types that name something other than a package: syft lists every file it saw
(96,779 beside 727 debs in a Debian root filesystem), cdxgen adds data and cryptographic
assets, and the operating system is an entry of its own."""


OS_PURL_TYPES = frozenset({"alpm", "apk", "deb", "rpm"})
"""The purl types of a distribution's own packages, whose `distro` qualifier says which
release of the distribution they belong to."""


def is_package(component: Component) -> bool:
    """Whether `component` is judged as a package: any whose type is not one of
    NOT_PACKAGE_TYPES (no type at all counts as a package), and any other whose purl names a
    package in an ecosystem, whatever type it claims (a `pkg:pypi` purl is a claim to be that
    package). A `pkg:generic` purl names no ecosystem, and without a version it names no
    release either: cdxgen gives `pkg:generic/<file name>` to every file it lists (481 of a
    Debian root filesystem), while a vendored file `pkg:generic/vendor.tar.gz@1` is a raw
    package. cdxgen's apt source (`data`, `pkg:generic/os-repository/...@bookworm`) is not."""
    if component.type not in NOT_PACKAGE_TYPES:
        return True
    if component.purl_type == "generic":
        return component.type == "file" and component.version is not None
    return component.purl_type is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatingSystem:
    """The distribution an SBOM says its packages belong to (its `operating-system` entry):
    `name` as the tools write it (`debian`, `alpine`, `ubuntu`), `version` (`12`, `3.20.3`)."""

    name: str
    version: str | None

    @property
    def distro(self) -> str:
        """The purl `distro` qualifier this distribution's packages carry (`debian-12`)."""
        return f"{self.name}-{self.version}" if self.version else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Sbom:
    """A parsed SBOM: its subject, its flattened packages (`components`), what it lists that
    is not a package (`others`: files, data, the operating system, ...; not judged as
    packages), the distribution it names, and the CycloneDX-JSON-shaped document that
    image-level policies see whole as `input.v0.sbom` (SPDX is converted)."""

    source: str
    format: SbomFormat
    spec_version: str
    subject: Component | None
    components: tuple[Component, ...]
    document: Mapping[str, Any]
    others: tuple[Component, ...] = ()
    operating_system: OperatingSystem | None = None
    declared: Mapping[str, tuple[tuple[str | None, str | None], ...]] | None = None
    """The `name` and `group` each component states beside its purl, by canonical purl, as the
    CycloneDX reader gathered them (`identity.declared_fields` of `document`); None when the
    reader gathered none (then they are read from `document` when needed)."""
