"""OCI image manifests and indexes (and their Docker v2 twins) as frozen data.

Only what discovery needs is kept. Parsing never trusts the document: every field is checked
for its type, digests for their syntax, and counts are capped by the caller's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from sbomgate.errors import SbomgateError
from sbomgate.registry.reference import is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT_MANIFESTS = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"

# BuildKit marks its attestation manifests inside the image index with these annotations.
BUILDKIT_REFERENCE_TYPE = "vnd.docker.reference.type"
BUILDKIT_REFERENCE_DIGEST = "vnd.docker.reference.digest"
BUILDKIT_ATTESTATION = "attestation-manifest"
IN_TOTO_PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


# Objects and arrays a manifest may hold, counted on the bytes before parsing: 4 MiB of
# `[[],[],...]` would parse to 1.4 million lists (100 MB) from anyone's registry. A descriptor
# holds at most 3 (itself, annotations, platform).
VALUES_PER_ENTRY = 8
VALUES_BESIDES = 1000


def max_values(max_entries: int) -> int:
    """How many JSON objects and arrays a document listing `max_entries` entries may hold."""
    return VALUES_PER_ENTRY * max_entries + VALUES_BESIDES


def too_many_values(data: bytes, max_entries: int) -> bool:
    """Whether the document holds more objects and arrays than a manifest of `max_entries`
    entries can (brackets in strings count too: an upper bound)."""
    return data.count(b"{") + data.count(b"[") > max_values(max_entries)


class ManifestFormatError(SbomgateError):
    """The document is not a usable manifest or index; the message says which field.

    The registry content's fault, not the user's: the client reports it as a RegistryError
    of the registry that served it."""


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform: os, architecture, variant."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: media type, digest and size of what it points at."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform: Platform | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageManifest:
    """An OCI image manifest (or Docker v2 schema 2 manifest)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    artifact_type: str | None = None
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_artifact_type(self) -> str:
        """artifactType, else the config media type (as the referrers API defines it)."""
        return self.artifact_type or self.config.media_type


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageIndex:
    """An OCI image index (or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


Manifest = ImageManifest | ImageIndex


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestFormatError(f"{where}: annotations must map strings to strings")
    return value


def _optional_string(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestFormatError(f"{where}.{key} must be a string")
    return value


def parse_descriptor(value: Any, where: str) -> Descriptor:
    """A descriptor from parsed JSON; ManifestFormatError naming `where` otherwise."""
    if not isinstance(value, dict):
        raise ManifestFormatError(f"{where} must be an object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestFormatError(f"{where}.mediaType is missing")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ManifestFormatError(f"{where}.digest is missing or not a sha256/sha512 digest")
    if type(size) is not int or size < 0:
        raise ManifestFormatError(f"{where}.size must be a non-negative integer")
    platform = None
    raw_platform = value.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, dict):
            raise ManifestFormatError(f"{where}.platform must be an object")
        os_name = raw_platform.get("os")
        arch = raw_platform.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise ManifestFormatError(f"{where}.platform needs os and architecture strings")
        variant = _optional_string(raw_platform, "variant", f"{where}.platform")
        platform = Platform(os=os_name, architecture=arch, variant=variant)
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_string_map(value.get("annotations"), where),
        artifact_type=_optional_string(value, "artifactType", where),
        platform=platform,
    )


def _descriptors(value: Any, where: str, limit: int) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise ManifestFormatError(f"{where} must be a list")
    if len(value) > limit:
        raise ManifestFormatError(f"{where} lists {len(value)} entries, over the limit of {limit}")
    return tuple(parse_descriptor(item, f"{where}[{i}]") for i, item in enumerate(value))


def parse_manifest(data: bytes, content_type: str | None, *, max_entries: int = 1000) -> Manifest:
    """An image manifest or index from its bytes; the media type comes from the document,
    else from the Content-Type header."""
    if too_many_values(data, max_entries):
        raise ManifestFormatError(
            f"holds over {max_values(max_entries)} objects and arrays, over the limit for "
            f"{max_entries} entries: refused unread"
        )
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestFormatError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise ManifestFormatError("not a JSON object")
    version = doc.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise ManifestFormatError("schemaVersion is not 2 (Docker schema 1 is not supported)")
    media_type = doc.get("mediaType")
    if media_type is None:
        header = (content_type or "").split(";")[0].strip()
        if header in INDEX_TYPES or header in MANIFEST_TYPES:
            media_type = header
        elif "manifests" in doc:
            media_type = OCI_INDEX
        else:
            media_type = OCI_MANIFEST
    if not isinstance(media_type, str):
        raise ManifestFormatError("mediaType must be a string")
    raw_subject = doc.get("subject")
    subject = parse_descriptor(raw_subject, "subject") if raw_subject is not None else None
    annotations = _string_map(doc.get("annotations"), "manifest")
    if media_type in INDEX_TYPES:
        return ImageIndex(
            media_type=media_type,
            manifests=_descriptors(doc.get("manifests"), "manifests", max_entries),
            subject=subject,
            annotations=annotations,
        )
    if media_type in MANIFEST_TYPES:
        return ImageManifest(
            media_type=media_type,
            config=parse_descriptor(doc.get("config"), "config"),
            layers=_descriptors(doc.get("layers", []), "layers", max_entries),
            artifact_type=_optional_string(doc, "artifactType", "manifest"),
            subject=subject,
            annotations=annotations,
        )
    raise ManifestFormatError(f"unsupported manifest media type {media_type!r}")
