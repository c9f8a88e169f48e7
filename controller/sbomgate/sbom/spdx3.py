"""SPDX 3.0 JSON-LD (what cdxgen writes for `--format spdx`) -> subject, components, and a
CycloneDX-JSON-shaped document, as spdx.py does for SPDX 2.

An SPDX 3 document is a graph of elements (`@graph`). The packages are its `software_Package`
elements: name, `software_packageVersion`, the purl (`software_packageUrl`, else a
`packageUrl` external identifier), `software_primaryPurpose` (mapped to a CycloneDX component
type: an `operatingSystem` or `file` purpose is not a package), and hashes (`verifiedUsing`).
A package's license is the element its `hasConcludedLicense` relationship points to, else
`hasDeclaredLicense` (a license expression, a listed license or a custom one); cdxgen writes
none of those but keeps the CycloneDX `licenses` of each package in an extension property,
which is read when the relationships say nothing. `software_File` and `software_Snippet`
elements are files, not packages: they are not read (as SPDX 2's `files[]` is not).
"""

from __future__ import annotations

from typing import Any

import orjson

from sbomgate.sbom._common import (
    Invalid,
    Limits,
    component_from_parts,
    describe,
    purl_or_error,
    read_hashes,
    shown,
)
from sbomgate.sbom.cyclonedx import read_licenses
from sbomgate.sbom.licenses import (
    UNKNOWN_LICENSES,
    LicenseLibraryError,
    LicenseSyntaxError,
    normalise_expression,
)
from sbomgate.sbom.model import NOT_PACKAGE_TYPES, Component
from sbomgate.sbom.spdx import to_cyclonedx

__all__ = ["SUPPORTED_VERSIONS", "is_spdx3", "read_spdx3"]

SUPPORTED_VERSIONS = ("3.0.0", "3.0.1")
_PACKAGE = "software_Package"
# SPDX 3 software_primaryPurpose -> CycloneDX component type.
_PURPOSE = {
    "application": "application",
    "framework": "framework",
    "library": "library",
    "container": "container",
    "operatingSystem": "operating-system",
    "device": "device",
    "deviceDriver": "device-driver",
    "firmware": "firmware",
    "file": "file",
    "data": "data",
    "model": "machine-learning-model",
}
_LICENSE_RELATIONSHIPS = ("hasConcludedLicense", "hasDeclaredLicense")
_LISTED_PREFIX = "https://spdx.org/licenses/"


def is_spdx3(doc: dict[str, Any]) -> bool:
    """Whether a JSON object is an SPDX 3 JSON-LD document (its context is SPDX 3's)."""
    context = doc.get("@context")
    texts = context if isinstance(context, list) else [context]
    return any(isinstance(t, str) and "spdx.org/rdf/3." in t for t in texts)


def read_spdx3(
    doc: dict[str, Any], limits: Limits
) -> tuple[str, Component | None, tuple[Component, ...], dict[str, Any]]:
    """Return (spec version, subject, components, CycloneDX-shaped document)."""
    graph = doc.get("@graph")
    if graph is None:
        raise Invalid("SPDX 3 document has no @graph (its elements)")
    if type(graph) is not list:
        raise Invalid(f"@graph: expected an array, got {describe(graph)}")
    by_id: dict[str, dict[str, Any]] = {}
    spec: str | None = None
    roots: list[str] = []
    relationships: dict[str, dict[str, list[str]]] = {}
    for i, element in enumerate(graph):
        if type(element) is not dict:
            raise Invalid(f"@graph[{i}]: expected an object, got {describe(element)}")
        kind = element.get("type")
        if kind == "CreationInfo" and spec is None:
            spec = element.get("specVersion")
        elif kind == "SpdxDocument":
            root = element.get("rootElement")
            if type(root) is list:
                roots.extend(r for r in root if type(r) is str)
        elif kind == "Relationship":
            _relationship(element, i, relationships)
        ident = element.get("spdxId") or element.get("@id")
        if type(ident) is str:
            by_id[ident] = element
    if spec is None:
        raise Invalid("SPDX 3 document has no CreationInfo with a specVersion")
    if spec not in SUPPORTED_VERSIONS:
        raise Invalid(f"SPDX version {shown(spec)} is not supported (3.0.0 and 3.0.1 are)")

    packages = [
        (i, e) for i, e in enumerate(graph) if type(e) is dict and e.get("type") == _PACKAGE
    ]
    limits.add(len(packages))
    subject: Component | None = None
    subject_doc: dict[str, Any] | None = None
    components: list[Component] = []
    converted: list[dict[str, Any]] = []
    root = roots[0] if roots else None
    for i, element in packages:
        component = _package(element, i, by_id, relationships)
        kind = component.type or "library"
        if subject is None and root is not None and component.bom_ref == root:
            subject = component
            subject_doc = to_cyclonedx(component, component.type or "application")
            continue
        components.append(component)
        converted.append(to_cyclonedx(component, kind))

    metadata: dict[str, Any] = {
        "properties": [{"name": "sbomgate:converted-from", "value": f"SPDX-{spec}"}],
    }
    if subject_doc is not None:
        metadata["component"] = subject_doc
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": metadata,
        "components": converted,
    }
    return spec, subject, tuple(components), document


def _relationship(element: dict[str, Any], i: int, out: dict[str, dict[str, list[str]]]) -> None:
    kind = element.get("relationshipType")
    if kind not in _LICENSE_RELATIONSHIPS:
        return
    source = element.get("from")
    targets = element.get("to")
    if type(source) is not str or type(targets) is not list:
        raise Invalid(f"@graph[{i}]: a {kind} relationship needs `from` and `to`")
    out.setdefault(source, {}).setdefault(kind, []).extend(t for t in targets if type(t) is str)


def _package(
    element: dict[str, Any],
    i: int,
    by_id: dict[str, dict[str, Any]],
    relationships: dict[str, dict[str, list[str]]],
) -> Component:
    path = f"@graph[{i}]"
    get = element.get
    name = get("name")
    if name is not None and type(name) is not str:
        raise Invalid(f"{path}.name: expected a string, got {describe(name)}")
    version = get("software_packageVersion")
    if version is not None and type(version) is not str:
        raise Invalid(f"{path}.software_packageVersion: expected a string, got {describe(version)}")
    ident = get("spdxId")
    if ident is not None and type(ident) is not str:
        raise Invalid(f"{path}.spdxId: expected a string, got {describe(ident)}")
    purl = _purl(element, path)
    parsed = purl_or_error(purl[1], purl[0]) if purl else None
    if parsed is None and not name:
        raise Invalid(f"{path}: package has neither a name nor a purl")
    purpose = get("software_primaryPurpose")
    kind = _PURPOSE.get(purpose) if isinstance(purpose, str) else _cdxgen_type(element)
    hashes = _hashes(get("verifiedUsing"), path)
    license_, raw, error = _license(ident, relationships, by_id, element, path)
    return component_from_parts(
        parsed,
        name=name,
        version=version,
        license_=license_,
        raw_license=raw,
        license_error=error,
        hashes=hashes,
        bom_ref=ident,
        type_=kind,
    )


def _purl(element: dict[str, Any], path: str) -> tuple[str, str] | None:
    """(where, purl) of the package's purl: software_packageUrl, else a packageUrl identifier."""
    purl = element.get("software_packageUrl")
    if purl is not None:
        if type(purl) is not str:
            raise Invalid(f"{path}.software_packageUrl: expected a string, got {describe(purl)}")
        return f"{path}.software_packageUrl", purl
    identifiers = element.get("externalIdentifier")
    if type(identifiers) is not list:
        return None
    for j, identifier in enumerate(identifiers):
        if type(identifier) is dict and identifier.get("externalIdentifierType") == "packageUrl":
            value = identifier.get("identifier")
            where = f"{path}.externalIdentifier[{j}].identifier"
            if type(value) is not str:
                raise Invalid(f"{where}: expected a string, got {describe(value)}")
            return where, value
    return None


def _hashes(verified: Any, path: str) -> dict[str, str]:
    if verified is None:
        return {}
    if type(verified) is not list:
        raise Invalid(f"{path}.verifiedUsing: expected an array, got {describe(verified)}")
    hashes = [v for v in verified if type(v) is dict and v.get("type") == "Hash"]
    return read_hashes(hashes, f"{path}.verifiedUsing", "algorithm", "hashValue")


def _license(
    ident: str | None,
    relationships: dict[str, dict[str, list[str]]],
    by_id: dict[str, dict[str, Any]],
    element: dict[str, Any],
    path: str,
) -> tuple[str | None, str | None, str | None]:
    """(expression, raw text, license error): the concluded license, else the declared one,
    else cdxgen's CycloneDX `licenses` kept in an extension property."""
    related = relationships.get(ident or "", {})
    for kind in _LICENSE_RELATIONSHIPS:
        texts = [t for target in related.get(kind, ()) if (t := _license_text(by_id.get(target)))]
        if not texts:
            continue
        text = " AND ".join(f"({t})" if " " in t else t for t in texts)
        if text in UNKNOWN_LICENSES:
            continue
        try:
            return normalise_expression(text), text, None
        except LicenseSyntaxError as exc:
            raise Invalid(
                f"{path}: {kind}: invalid SPDX license expression {text!r}: {exc}"
            ) from None
        except LicenseLibraryError as exc:
            return None, text, str(exc)
    cyclonedx = _cdxgen_licenses(element)
    if cyclonedx is not None:
        return read_licenses(cyclonedx, f"{path}.extension(licenses)")
    return None, None, None


def _license_text(target: dict[str, Any] | None) -> str | None:
    """The license an SPDX 3 license element stands for, as expression text."""
    if target is None:
        return None
    kind = target.get("type")
    if kind == "simplelicensing_LicenseExpression":
        text = target.get("simplelicensing_licenseExpression")
        return text.strip() if isinstance(text, str) else None
    ident = target.get("spdxId")
    if not isinstance(ident, str):
        return None
    if kind == "expandedlicensing_ListedLicense" and ident.startswith(_LISTED_PREFIX):
        return ident[len(_LISTED_PREFIX) :]
    if kind == "expandedlicensing_CustomLicense":
        name = ident.rpartition("#")[2] or ident.rpartition("/")[2]
        return name if name.startswith("LicenseRef-") else f"LicenseRef-{name}"
    return None


def _cdxgen_licenses(element: dict[str, Any]) -> Any:
    """The CycloneDX `licenses` array cdxgen keeps in an extension property, or None."""
    return _cdxgen_property(element, "licenses")


def _cdxgen_type(element: dict[str, Any]) -> str | None:
    """The component type cdxgen keeps among its `tags` when SPDX 3 has no purpose for it
    (`cryptographic-asset` for the keys and certificates of a root filesystem)."""
    tags = _cdxgen_property(element, "tags")
    if type(tags) is list:
        for tag in tags:
            if tag in NOT_PACKAGE_TYPES:
                return str(tag)
    return None


def _cdxgen_property(element: dict[str, Any], name: str) -> Any:
    """The JSON value of one of cdxgen's CycloneDX extension properties, or None."""
    extensions = element.get("extension")
    if type(extensions) is not list:
        return None
    for extension in extensions:
        if type(extension) is not dict:
            continue
        entries = extension.get("extension_cdxProperty")
        if type(entries) is not list:
            continue
        for entry in entries:
            if type(entry) is dict and entry.get("extension_cdxPropName") == name:
                value = entry.get("extension_cdxPropValue")
                if isinstance(value, str):
                    try:
                        return orjson.loads(value)
                    except orjson.JSONDecodeError:
                        return None
    return None
