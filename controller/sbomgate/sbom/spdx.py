"""SPDX 2.2 / 2.3 JSON -> subject, components, and a CycloneDX-JSON-shaped document."""

from __future__ import annotations

from typing import Any

from sbomgate.sbom._common import (
    Invalid,
    Limits,
    component_from_parts,
    describe,
    hash_alg_cyclonedx,
    purl_or_error,
    read_hashes,
    shown,
)
from sbomgate.sbom.licenses import (
    UNKNOWN_LICENSES,
    LicenseLibraryError,
    LicenseSyntaxError,
    normalise_expression,
)
from sbomgate.sbom.model import Component
from sbomgate.sbom.purl import ParsedPurl

__all__ = ["SUPPORTED_VERSIONS", "read_spdx", "to_cyclonedx"]

SUPPORTED_VERSIONS = ("SPDX-2.2", "SPDX-2.3")
_PURL_CATEGORIES = frozenset({"PACKAGE-MANAGER", "PACKAGE_MANAGER"})
_DOCUMENT = "SPDXRef-DOCUMENT"
# SPDX 2.3 primaryPackagePurpose -> CycloneDX component type.
_PURPOSE = {
    "APPLICATION": "application",
    "FRAMEWORK": "framework",
    "LIBRARY": "library",
    "CONTAINER": "container",
    "OPERATING-SYSTEM": "operating-system",
    "DEVICE": "device",
    "FIRMWARE": "firmware",
    "FILE": "file",
}


def check_spec_version(spec: Any) -> str:
    """The spdxVersion when it is one we read; Invalid otherwise."""
    if not isinstance(spec, str):
        raise Invalid(f"spdxVersion: expected a string, got {describe(spec)}")
    if spec not in SUPPORTED_VERSIONS:
        raise Invalid(f"SPDX version {shown(spec)} is not supported (SPDX-2.2 and SPDX-2.3 are)")
    return spec


def read_spdx(
    doc: dict[str, Any], limits: Limits
) -> tuple[str, Component | None, tuple[Component, ...], dict[str, Any]]:
    """Return (spec version without the `SPDX-` prefix, subject, components, document)."""
    spec = check_spec_version(doc.get("spdxVersion"))
    packages = doc.get("packages")
    if packages is None:
        packages = []
    if type(packages) is not list:
        raise Invalid(f"packages: expected an array, got {describe(packages)}")
    limits.add(len(packages))
    described = _described(doc)

    subject: Component | None = None
    subject_doc: dict[str, Any] | None = None
    components: list[Component] = []
    converted: list[dict[str, Any]] = []
    for i, pkg in enumerate(packages):
        found, purpose = _package(pkg, i)
        limits.add(len(found) - 1)
        if subject is None and described is not None and found[0].bom_ref == described:
            # The described package's first purl is the subject; any other purl it lists
            # is judged as a package like every other.
            subject = found[0]
            subject_doc = to_cyclonedx(subject, purpose or "application")
            found = found[1:]
        for component in found:
            components.append(component)
            converted.append(to_cyclonedx(component, purpose or "library"))

    metadata: dict[str, Any] = {
        "properties": [{"name": "sbomgate:converted-from", "value": spec}],
    }
    name = doc.get("name")
    if isinstance(name, str):
        metadata["properties"].append({"name": "spdx:document:name", "value": name})
    info = doc.get("creationInfo")
    if isinstance(info, dict) and isinstance(info.get("created"), str):
        metadata["timestamp"] = info["created"]
    if subject_doc is not None:
        metadata["component"] = subject_doc
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": metadata,
        "components": converted,
    }
    namespace = doc.get("documentNamespace")
    if isinstance(namespace, str):
        document["serialNumber"] = namespace
    return spec[len("SPDX-") :], subject, tuple(components), document


def _described(doc: dict[str, Any]) -> str | None:
    """The SPDXID the document describes: documentDescribes[0], else the first DESCRIBES
    relationship from SPDXRef-DOCUMENT (or DESCRIBED_BY towards it)."""
    describes = doc.get("documentDescribes")
    if describes is not None:
        if type(describes) is not list or not all(type(d) is str for d in describes):
            raise Invalid("documentDescribes: expected an array of strings")
        if describes:
            first: str = describes[0]
            return first
    relationships = doc.get("relationships")
    if relationships is None:
        return None
    if type(relationships) is not list:
        raise Invalid(f"relationships: expected an array, got {describe(relationships)}")
    for rel in relationships:
        if type(rel) is not dict:
            continue
        kind = rel.get("relationshipType")
        element = rel.get("spdxElementId")
        related = rel.get("relatedSpdxElement")
        if kind == "DESCRIBES" and element == _DOCUMENT and isinstance(related, str):
            return related
        if kind == "DESCRIBED_BY" and related == _DOCUMENT and isinstance(element, str):
            return element
    return None


def _package(pkg: Any, i: int) -> tuple[tuple[Component, ...], str | None]:
    """One Component per distinct package-manager purl the package lists (each keeping the
    package's name, version, license and hashes: a second purl is not a detail to drop, it
    may name another package), or one without a purl."""
    path = f"packages[{i}]"
    if type(pkg) is not dict:
        raise Invalid(f"{path}: expected an object, got {describe(pkg)}")
    get = pkg.get
    name = get("name")
    if name is not None and type(name) is not str:
        raise Invalid(f"{path}.name: expected a string, got {describe(name)}")
    version = get("versionInfo")
    if version is not None and type(version) is not str:
        raise Invalid(f"{path}.versionInfo: expected a string, got {describe(version)}")
    spdx_id = get("SPDXID")
    if spdx_id is not None and type(spdx_id) is not str:
        raise Invalid(f"{path}.SPDXID: expected a string, got {describe(spdx_id)}")

    purls = _purls(get("externalRefs"), path)
    if not purls and not name:
        raise Invalid(f"{path}: package has neither a name nor a purl")
    license_, raw_license, license_error = _license(get, path)

    checksums = get("checksums")
    hashes = (
        read_hashes(checksums, f"{path}.checksums", "algorithm", "checksumValue")
        if checksums is not None
        else {}
    )

    purpose = get("primaryPackagePurpose")
    kind = _PURPOSE.get(purpose) if isinstance(purpose, str) else None
    targets: list[ParsedPurl | None] = [*purls] if purls else [None]
    components = tuple(
        component_from_parts(
            parsed,
            name=name,
            version=version,
            license_=license_,
            raw_license=raw_license,
            license_error=license_error,
            hashes=hashes,
            bom_ref=spdx_id,
            type_=kind,
            locations=() if purls else _source_paths(get("sourceInfo")),
        )
        for parsed in targets
    )
    return components, kind


def _source_paths(info: Any) -> tuple[str, ...]:
    """The file paths a package's `sourceInfo` names, as syft writes it ("acquired package info
    from the following paths: /a, /b"); none from text of another shape."""
    if type(info) is not str or ": /" not in info:
        return ()
    paths = info.split(": /", 1)[1]
    return tuple("/" + p if i == 0 else p for i, p in enumerate(paths.split(", ")))


def _purls(refs: Any, path: str) -> list[ParsedPurl]:
    """Every package-manager purl in `externalRefs`, in order, each once."""
    if refs is None:
        return []
    if type(refs) is not list:
        raise Invalid(f"{path}.externalRefs: expected an array, got {describe(refs)}")
    found: dict[str, ParsedPurl] = {}
    for j, ref in enumerate(refs):
        if type(ref) is not dict:
            raise Invalid(f"{path}.externalRefs[{j}]: expected an object, got {describe(ref)}")
        if ref.get("referenceType") != "purl":
            continue
        category = ref.get("referenceCategory")
        if not isinstance(category, str) or category not in _PURL_CATEGORIES:
            continue  # not a package manager reference (a list or object is no category)
        locator = ref.get("referenceLocator")
        where = f"{path}.externalRefs[{j}].referenceLocator"
        if type(locator) is not str:
            raise Invalid(f"{where}: expected a string, got {describe(locator)}")
        parsed = purl_or_error(locator, where)
        found.setdefault(parsed.canonical, parsed)
    return list(found.values())


def _license(get: Any, path: str) -> tuple[str | None, str | None, str | None]:
    """(normalised expression, raw text, license error): licenseConcluded, else
    licenseDeclared; NOASSERTION and NONE say nothing."""
    license_: str | None = None
    raw_license: str | None = None
    for field in ("licenseConcluded", "licenseDeclared"):
        value = get(field)
        if value is None:
            continue
        if type(value) is not str:
            raise Invalid(f"{path}.{field}: expected a string, got {describe(value)}")
        text = value.strip()
        if raw_license is None:
            raw_license = text
        if text in UNKNOWN_LICENSES:
            continue
        try:
            license_ = normalise_expression(text)
        except LicenseSyntaxError as exc:
            raise Invalid(
                f"{path}.{field}: invalid SPDX license expression {text!r}: {exc}"
            ) from None
        except LicenseLibraryError as exc:
            return None, text, str(exc)
        if license_ is not None:
            return license_, text, None
    return None, raw_license, None


def to_cyclonedx(c: Component, kind: str) -> dict[str, Any]:
    """A Component in CycloneDX JSON shape (absent facts are omitted, as CycloneDX does)."""
    out: dict[str, Any] = {"type": kind, "name": c.name}
    if c.bom_ref is not None:
        out["bom-ref"] = c.bom_ref
    if c.purl_type == "maven" and c.namespace:
        out["group"] = c.namespace
    if c.version is not None:
        out["version"] = c.version
    if c.purl is not None:
        out["purl"] = c.purl
    if c.license is not None:
        if " " in c.license or "LicenseRef-" in c.license:
            out["licenses"] = [{"expression": c.license}]
        else:
            out["licenses"] = [{"license": {"id": c.license}}]
    if c.hashes:
        out["hashes"] = [
            {"alg": hash_alg_cyclonedx(alg), "content": content}
            for alg, content in c.hashes.items()
        ]
    return out
