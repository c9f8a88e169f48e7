"""What an SBOM file says, read with json and xml.etree alone: the side of the comparison that is
independent of sbomgate's parser (tests/integration/sbom/test_real_sboms.py).

Each reader returns the document's subject and its components as the format defines them, in
document order, with the facts as written: name, version, purl, licences (each entry as the
document gives it: an SPDX id, a free-text name or an expression) and type.

- CycloneDX (JSON and XML): `metadata.component` is the subject; the components are its nested
  ones, then `components[]` depth-first, each followed by its nested components and its
  pedigree's ancestors, descendants and variants (each one is a component too). `type` is the
  component's type as written (`library`, `file`, `data`, ...).
- SPDX 2 (JSON and tag-value): the described package (`documentDescribes[0]`, else the first
  DESCRIBES relationship of the document) is the subject; the other packages are the components,
  one per package-manager purl (a package without one is one component). The licence is
  `licenseConcluded`, else `licenseDeclared` (NOASSERTION and NONE say nothing). The type is
  `primaryPackagePurpose`, lower-cased (`OPERATING-SYSTEM` -> `operating-system`). Files (the
  `files` array) are not packages: they are listed apart.
- SPDX 3.0 JSON-LD: `rootElement` of the SBOM (or of the document) is the subject; every other
  `software_Package` is a component and every `software_File` a file. The licence is the
  `hasConcludedLicense` relationship's, else `hasDeclaredLicense`'s. The type is
  `software_primaryPurpose` (`operatingSystem` -> `operating-system`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_LICENSE = frozenset({"NOASSERTION", "NONE"})
PEDIGREE = ("ancestors", "descendants", "variants")


@dataclass(frozen=True)
class Written:
    """One component (or the subject, or an SPDX file) as the document says it."""

    where: str
    name: str | None
    version: str | None
    purl: str | None
    type: str | None
    licenses: tuple[tuple[str, str], ...] = ()  # (id | name | expression, text)
    ref: str | None = None
    group: str | None = None
    # cdxgen's SPDX 3 keeps the CycloneDX licences and type in extension properties (the type
    # among its `tags`) where SPDX 3 has none.
    extension_licenses: tuple[tuple[str, str], ...] = ()
    extension_type: str | None = None
    # Where syft says it found the component (its `syft:location:N:path` properties; its
    # SPDX `sourceInfo` after "from the following paths: ").
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenSbom:
    """An SBOM as written: its format, spec version, subject, components and (SPDX) files."""

    format: str  # cyclonedx | spdx
    spec: str
    subject: Written | None
    components: tuple[Written, ...]
    files: tuple[Written, ...] = ()


def read_written(path: Path, kind: str) -> WrittenSbom:
    """Read `path` as `kind`: cyclonedx-json, cyclonedx-xml, spdx-json, spdx-tag-value or
    spdx3-jsonld."""
    if kind == "cyclonedx-json":
        return cyclonedx_json(json.loads(path.read_bytes()))
    if kind == "cyclonedx-xml":
        return cyclonedx_xml(ET.parse(path).getroot())
    if kind == "spdx-json":
        return spdx_json(json.loads(path.read_bytes()))
    if kind == "spdx-tag-value":
        return spdx_json(tag_value_to_json(path.read_text(encoding="utf-8")))
    if kind == "spdx3-jsonld":
        return spdx3_jsonld(json.loads(path.read_bytes()))
    raise ValueError(kind)


# CycloneDX JSON


def _cdx_licenses(entries: Any) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for entry in entries or ():
        if "expression" in entry:
            out.append(("expression", entry["expression"]))
            continue
        lic = entry.get("license") or {}
        for key in ("id", "name"):
            if key in lic:
                out.append((key, lic[key]))
                break
    return tuple(out)


def _cdx_component(obj: dict[str, Any], where: str) -> Written:
    return Written(
        where=where,
        name=obj.get("name"),
        version=obj.get("version"),
        purl=obj.get("purl") or None,
        type=obj.get("type"),
        licenses=_cdx_licenses(obj.get("licenses")),
        ref=obj.get("bom-ref"),
        group=obj.get("group") or None,
        locations=tuple(
            p["value"]
            for p in obj.get("properties") or ()
            if re.fullmatch(r"syft:location:\d+:path", p.get("name", ""))
        ),
    )


def _cdx_children(obj: dict[str, Any], where: str) -> Iterator[Written]:
    for i, child in enumerate(obj.get("components") or ()):
        yield from _cdx_walk(child, f"{where}.components[{i}]")
    pedigree = obj.get("pedigree") or {}
    for key in PEDIGREE:
        for i, child in enumerate(pedigree.get(key) or ()):
            yield from _cdx_walk(child, f"{where}.pedigree.{key}[{i}]")


def _cdx_walk(obj: dict[str, Any], where: str) -> Iterator[Written]:
    yield _cdx_component(obj, where)
    yield from _cdx_children(obj, where)


def cyclonedx_json(doc: dict[str, Any]) -> WrittenSbom:
    """A CycloneDX JSON document as written."""
    main = (doc.get("metadata") or {}).get("component")
    subject = _cdx_component(main, "metadata.component") if main else None
    components = list(_cdx_children(main, "metadata.component")) if main else []
    for i, obj in enumerate(doc.get("components") or ()):
        components.extend(_cdx_walk(obj, f"components[{i}]"))
    return WrittenSbom("cyclonedx", doc["specVersion"], subject, tuple(components))


# CycloneDX XML


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else (child.text or "")


def _xml_licenses(element: ET.Element) -> tuple[tuple[str, str], ...]:
    licenses = _child(element, "licenses")
    out: list[tuple[str, str]] = []
    for entry in () if licenses is None else licenses:
        if _local(entry.tag) == "expression":
            out.append(("expression", entry.text or ""))
        elif _local(entry.tag) == "license":
            for key in ("id", "name"):
                value = _text(entry, key)
                if value is not None:
                    out.append((key, value))
                    break
    return tuple(out)


def _xml_component(element: ET.Element, where: str) -> Written:
    return Written(
        where=where,
        name=_text(element, "name"),
        version=_text(element, "version"),
        purl=_text(element, "purl") or None,
        type=element.get("type"),
        licenses=_xml_licenses(element),
        ref=element.get("bom-ref"),
        group=_text(element, "group") or None,
        locations=tuple(
            (p.text or "").strip()
            for props in element
            if _local(props.tag) == "properties"
            for p in props
            if re.fullmatch(r"syft:location:\d+:path", p.get("name", ""))
        ),
    )


def _xml_list(parent: ET.Element | None, where: str) -> Iterator[Written]:
    for i, child in enumerate(
        c for c in (() if parent is None else parent) if _local(c.tag) == "component"
    ):
        yield from _xml_walk(child, f"{where}[{i}]")


def _xml_children(element: ET.Element, where: str) -> Iterator[Written]:
    yield from _xml_list(_child(element, "components"), f"{where}.components")
    pedigree = _child(element, "pedigree")
    if pedigree is not None:
        for key in PEDIGREE:
            yield from _xml_list(_child(pedigree, key), f"{where}.pedigree.{key}")


def _xml_walk(element: ET.Element, where: str) -> Iterator[Written]:
    yield _xml_component(element, where)
    yield from _xml_children(element, where)


def cyclonedx_xml(root: ET.Element) -> WrittenSbom:
    """A CycloneDX XML document as written (any spec version: the namespace says which)."""
    spec = root.tag.partition("}")[0].rpartition("/")[2]
    metadata = _child(root, "metadata")
    main = None if metadata is None else _child(metadata, "component")
    subject = None if main is None else _xml_component(main, "metadata.component")
    components = [] if main is None else list(_xml_children(main, "metadata.component"))
    components.extend(_xml_list(_child(root, "components"), "components"))
    return WrittenSbom("cyclonedx", spec, subject, tuple(components))


# SPDX 2


def _spdx_license(
    obj: dict[str, Any], concluded: str, declared: str
) -> tuple[tuple[str, str], ...]:
    for key in (concluded, declared):
        value = obj.get(key)
        if isinstance(value, str) and value.strip() not in NO_LICENSE:
            return (("expression", value.strip()),)
    return ()


def _purpose(value: str | None) -> str | None:
    return value.lower().replace("_", "-") if value else None


def _described(doc: dict[str, Any]) -> str | None:
    describes = doc.get("documentDescribes")
    if describes:
        first: str = describes[0]
        return first
    for rel in doc.get("relationships") or ():
        kind = rel.get("relationshipType")
        if kind == "DESCRIBES" and rel.get("spdxElementId") == "SPDXRef-DOCUMENT":
            related: str = rel["relatedSpdxElement"]
            return related
        if kind == "DESCRIBED_BY" and rel.get("relatedSpdxElement") == "SPDXRef-DOCUMENT":
            element: str = rel["spdxElementId"]
            return element
    return None


def spdx_json(doc: dict[str, Any]) -> WrittenSbom:
    """An SPDX 2.x JSON document (or tag-value turned into its JSON shape) as written."""
    described = _described(doc)
    subject: Written | None = None
    components: list[Written] = []
    for i, pkg in enumerate(doc.get("packages") or ()):
        purls = list(
            dict.fromkeys(
                ref["referenceLocator"]
                for ref in pkg.get("externalRefs") or ()
                if ref.get("referenceType") == "purl"
                and ref.get("referenceCategory") in ("PACKAGE-MANAGER", "PACKAGE_MANAGER")
            )
        )
        found = [
            Written(
                where=f"packages[{i}]",
                name=pkg.get("name"),
                version=pkg.get("versionInfo"),
                purl=purl,
                type=_purpose(pkg.get("primaryPackagePurpose")),
                licenses=_spdx_license(pkg, "licenseConcluded", "licenseDeclared"),
                ref=pkg.get("SPDXID"),
                locations=_syft_source_paths(pkg.get("sourceInfo")),
            )
            for purl in (purls or [None])
        ]
        if subject is None and described is not None and pkg.get("SPDXID") == described:
            subject, found = found[0], found[1:]
        components.extend(found)
    files = tuple(
        Written(
            where=f"files[{i}]",
            name=f.get("fileName"),
            version=None,
            purl=None,
            type="file",
            licenses=_spdx_license(f, "licenseConcluded", "licenseConcluded"),
            ref=f.get("SPDXID"),
        )
        for i, f in enumerate(doc.get("files") or ())
    )
    spec = str(doc["spdxVersion"]).removeprefix("SPDX-")
    return WrittenSbom("spdx", spec, subject, tuple(components), files)


def _syft_source_paths(info: str | None) -> tuple[str, ...]:
    marker = "from the following paths: "
    if not info or marker not in info:
        return ()
    return tuple(info.split(marker, 1)[1].split(", "))


# SPDX 2 tag-value, turned into the JSON shape (only the fields read above).

_PACKAGE_TAGS = {
    "SPDXID": "SPDXID",
    "PackageVersion": "versionInfo",
    "PackageLicenseConcluded": "licenseConcluded",
    "PackageLicenseDeclared": "licenseDeclared",
    "PrimaryPackagePurpose": "primaryPackagePurpose",
    "PackageSourceInfo": "sourceInfo",
}
_FILE_TAGS = {"SPDXID": "SPDXID", "LicenseConcluded": "licenseConcluded"}
_TAG = re.compile(r"^([A-Za-z][A-Za-z0-9]*):\s?(.*)$")


def _tag_values(text: str) -> Iterator[tuple[str, str]]:
    """(tag, value) pairs; a value may span lines between <text> and </text>."""
    lines = iter(text.splitlines())
    for line in lines:
        match = _TAG.match(line)
        if not match:
            continue
        tag, value = match.group(1), match.group(2)
        if value.startswith("<text>"):
            parts = [value[len("<text>") :]]
            while "</text>" not in parts[-1]:
                parts.append(next(lines, "</text>"))
            value = "\n".join(parts).split("</text>", 1)[0]
        yield tag, value.strip()


def tag_value_to_json(text: str) -> dict[str, Any]:
    """SPDX 2 tag-value -> the JSON fields read by spdx_json."""
    doc: dict[str, Any] = {"packages": [], "files": [], "relationships": []}
    current: dict[str, Any] | None = None
    tags: dict[str, str] = {}
    for tag, value in _tag_values(text):
        if tag == "SPDXVersion":
            doc["spdxVersion"] = value
        elif tag == "PackageName":
            current = {"name": value, "externalRefs": []}
            tags = _PACKAGE_TAGS
            doc["packages"].append(current)
        elif tag == "FileName":
            current = {"fileName": value}
            tags = _FILE_TAGS
            doc["files"].append(current)
        elif tag in ("SnippetSPDXID", "LicenseID"):
            current = None  # snippets and extracted licences are neither
        elif tag == "Relationship":
            element, kind, related = value.split()[:3]
            doc["relationships"].append(
                {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}
            )
        elif tag == "ExternalRef" and current is not None and "externalRefs" in current:
            category, kind, locator = value.split(None, 2)
            current["externalRefs"].append(
                {"referenceCategory": category, "referenceType": kind, "referenceLocator": locator}
            )
        elif current is not None and tag in tags:
            current[tags[tag]] = value
    return doc


# SPDX 3.0 JSON-LD

_SPDX3_TYPES = {"operatingSystem": "operating-system", "deviceDriver": "device-driver"}


def _spdx3_type(value: str | None) -> str | None:
    if not value:
        return None
    return _SPDX3_TYPES.get(value, re.sub(r"(?<!^)([A-Z])", r"-\1", value).lower())


def _spdx3_purl(element: dict[str, Any]) -> str | None:
    purl = element.get("software_packageUrl")
    if purl:
        return str(purl)
    for ident in element.get("externalIdentifier") or ():
        if ident.get("externalIdentifierType") == "packageUrl":
            return str(ident["identifier"])
    return None


CYCLONEDX_TYPES = frozenset(
    {
        "application",
        "framework",
        "library",
        "container",
        "platform",
        "operating-system",
        "device",
        "device-driver",
        "firmware",
        "file",
        "machine-learning-model",
        "data",
        "cryptographic-asset",
    }
)


def _extension(element: dict[str, Any], name: str) -> Any:
    for extension in element.get("extension") or ():
        for prop in extension.get("extension_cdxProperty") or ():
            if prop.get("extension_cdxPropName") == name:
                return json.loads(prop["extension_cdxPropValue"])
    return None


def _extension_type(element: dict[str, Any]) -> str | None:
    return next((t for t in _extension(element, "tags") or () if t in CYCLONEDX_TYPES), None)


def spdx3_jsonld(doc: dict[str, Any]) -> WrittenSbom:
    """An SPDX 3.0 JSON-LD document as written."""
    graph: list[dict[str, Any]] = doc["@graph"]
    by_id = {e.get("spdxId"): e for e in graph if e.get("spdxId")}
    spec = next((e["specVersion"] for e in graph if e.get("type") == "CreationInfo"), "3")
    roots = [e for e in graph if e.get("type") == "software_Sbom"] or [
        e for e in graph if e.get("type") == "SpdxDocument"
    ]
    root_ids = (roots[0].get("rootElement") or []) if roots else []
    licenses: dict[str, dict[str, str]] = {}
    for rel in graph:
        kind = rel.get("relationshipType")
        if rel.get("type") != "Relationship" or kind not in (
            "hasConcludedLicense",
            "hasDeclaredLicense",
        ):
            continue
        for target in rel.get("to") or ():
            lic = by_id.get(target, {})
            text = lic.get("simplelicensing_licenseExpression") or lic.get("name") or target
            licenses.setdefault(rel["from"], {})[kind] = text

    def written(e: dict[str, Any], where: str) -> Written:
        found = licenses.get(e.get("spdxId", ""), {})
        text = found.get("hasConcludedLicense") or found.get("hasDeclaredLicense")
        lic = (("expression", text),) if text and text not in NO_LICENSE else ()
        is_file = e.get("type") == "software_File"
        return Written(
            where=where,
            name=e.get("name"),
            version=e.get("software_packageVersion"),
            purl=None if is_file else _spdx3_purl(e),
            type=_spdx3_type(e.get("software_primaryPurpose")) or ("file" if is_file else None),
            licenses=lic,
            ref=e.get("spdxId"),
            extension_licenses=_cdx_licenses(_extension(e, "licenses")),
            extension_type=_extension_type(e),
        )

    subject: Written | None = None
    components: list[Written] = []
    files: list[Written] = []
    for i, e in enumerate(graph):
        if e.get("type") == "software_Package":
            w = written(e, f"@graph[{i}]")
            if subject is None and root_ids and e.get("spdxId") == root_ids[0]:
                subject = w
            else:
                components.append(w)
        elif e.get("type") == "software_File":
            files.append(written(e, f"@graph[{i}]"))
    return WrittenSbom("spdx", spec, subject, tuple(components), tuple(files))
