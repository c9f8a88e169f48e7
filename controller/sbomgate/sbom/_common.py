"""Pieces shared by the CycloneDX and SPDX readers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sbomgate.errors import InputError
from sbomgate.sbom.model import Component
from sbomgate.sbom.purl import ParsedPurl, format_for_purl_type, parse_purl

__all__ = [
    "Invalid",
    "Limits",
    "component_from_parts",
    "describe",
    "hash_alg",
    "hash_alg_cyclonedx",
    "purl_or_error",
    "read_hashes",
    "shown",
]


class Invalid(InputError):
    """Raised inside the readers (the document's fault); parse_sbom turns it into
    SbomError(source, message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Limits:
    """Per-parse limits and the running component count."""

    __slots__ = ("count", "max_components", "max_depth")

    def __init__(self, max_depth: int, max_components: int) -> None:
        self.max_depth = max_depth
        self.max_components = max_components
        self.count = 0

    def add(self, n: int = 1) -> None:
        """Count `n` more components; Invalid over the limit."""
        self.count += n
        if self.count > self.max_components:
            raise Invalid(f"more than {self.max_components} components (the limit)")


def describe(value: Any) -> str:
    """The JSON type of a value, for "expected a string, got a number" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def shown(text: str, limit: int = 80) -> str:
    """A document's text for an error message: as given when short and printable, else its
    repr, cut (a message is one line, whatever the document holds)."""
    if len(text) <= limit and text.isprintable():
        return text
    cut = text[:limit]
    return repr(cut) + ("…" if len(text) > limit else "")


_HASH_SPECIAL = {"sha3", "blake2b", "blake2s"}


@lru_cache(maxsize=256)
def hash_alg(alg: str) -> str:
    """`SHA-256`/`SHA256` -> `sha256`, `SHA3-256` -> `sha3_256`, `BLAKE2b-256` -> `blake2b_256`."""
    lowered = alg.strip().lower().replace("_", "-")
    head, sep, tail = lowered.partition("-")
    if sep and head in _HASH_SPECIAL:
        return f"{head}_{tail.replace('-', '')}"
    return lowered.replace("-", "")


_CDX_ALGS = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
    "sha3_256": "SHA3-256",
    "sha3_384": "SHA3-384",
    "sha3_512": "SHA3-512",
    "blake2b_256": "BLAKE2b-256",
    "blake2b_384": "BLAKE2b-384",
    "blake2b_512": "BLAKE2b-512",
    "blake3": "BLAKE3",
}


def read_hashes(entries: Any, where: str, alg_key: str, value_key: str) -> dict[str, str]:
    """A list of {alg_key, value_key} objects (CycloneDX `hashes`, SPDX `checksums`) as a
    normalised algorithm -> lower-case hex mapping; Invalid names the offending entry."""
    if type(entries) is not list:
        raise Invalid(f"{where}: expected an array, got {describe(entries)}")
    hashes: dict[str, str] = {}
    for j, entry in enumerate(entries):
        alg = value = None
        if type(entry) is dict:
            alg = entry.get(alg_key)
            value = entry.get(value_key)
        if type(alg) is not str or type(value) is not str:
            raise Invalid(
                f'{where}[{j}]: expected an object with string "{alg_key}" and "{value_key}"'
            )
        hashes[hash_alg(alg)] = value.strip().lower()
    return hashes


def hash_alg_cyclonedx(alg: str) -> str:
    """Our normalised algorithm name back to CycloneDX's spelling (for converted documents)."""
    return _CDX_ALGS.get(alg, alg.upper())


def purl_or_error(purl: str, path: str) -> ParsedPurl:
    """The parsed purl; Invalid naming `path` when it is not one."""
    try:
        return parse_purl(purl)
    except ValueError as exc:
        raise Invalid(f"{path}: invalid purl: {exc}") from None


def component_from_parts(
    parsed: ParsedPurl | None,
    *,
    name: str | None,
    version: str | None,
    license_: str | None,
    raw_license: str | None,
    license_error: str | None,
    hashes: dict[str, str],
    bom_ref: str | None,
    type_: str | None = None,
    locations: tuple[str, ...] = (),
) -> Component:
    """Build a Component; the purl (when there is one) decides name, namespace and format;
    `locations` are kept for a component without one."""
    if parsed is None:
        return Component(
            name=name or "",
            version=version,
            license=license_,
            raw_license=raw_license,
            license_error=license_error,
            hashes=hashes,
            bom_ref=bom_ref,
            type=type_,
            locations=locations,
        )
    ptype = parsed.type
    namespace = parsed.namespace
    pname = parsed.name
    if namespace is not None and (ptype == "npm" or ptype == "golang"):
        pname = f"{namespace}/{pname}"
    return Component(
        name=pname,
        version=version if version else parsed.version,
        purl=parsed.canonical,
        purl_type=ptype,
        namespace=namespace,
        qualifiers=dict(parsed.qualifiers) if parsed.qualifiers else {},
        format=format_for_purl_type(ptype),
        license=license_,
        raw_license=raw_license,
        license_error=license_error,
        hashes=hashes,
        bom_ref=bom_ref,
        type=type_,
    )
