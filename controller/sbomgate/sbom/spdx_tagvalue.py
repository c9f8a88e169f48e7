"""SPDX 2.2 / 2.3 tag-value (syft's `spdx-tag-value`) -> the SPDX JSON shape, so the one SPDX 2
reader (spdx.py) serves both encodings.

Only what that reader uses is carried over: the document's version, name, namespace, creation
time and DESCRIBES relationships, and per package its SPDXID, name, version, purls
(`ExternalRef: PACKAGE-MANAGER purl ...`), concluded and declared licenses, checksums and
primary purpose. File, snippet and other-licensing sections are skipped, as `files[]` is in
JSON. A value may span lines inside `<text>...</text>`.
"""

from __future__ import annotations

from typing import Any

from sbomgate.sbom._common import Invalid

__all__ = ["is_tag_value", "tag_value_to_spdx_json"]

_SECTION_STARTS = {"PackageName": "package", "FileName": "file", "SnippetSPDXID": "snippet"}
_SECTION_STARTS["LicenseID"] = "license"
_PACKAGE_FIELDS = {
    "SPDXID": "SPDXID",
    "PackageVersion": "versionInfo",
    "PackageLicenseConcluded": "licenseConcluded",
    "PackageLicenseDeclared": "licenseDeclared",
    "PrimaryPackagePurpose": "primaryPackagePurpose",
    "PackageSourceInfo": "sourceInfo",
}


def is_tag_value(head: bytes) -> bool:
    """Whether a document's first bytes are SPDX tag-value."""
    return head.lstrip().startswith(b"SPDXVersion:")


def tag_value_to_spdx_json(text: str) -> dict[str, Any]:
    """The SPDX JSON-shaped dict of a tag-value document; Invalid names the line of a problem."""
    doc: dict[str, Any] = {"packages": [], "relationships": []}
    package: dict[str, Any] | None = None
    section = "document"
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise Invalid(f"SPDX tag-value line {number}: expected `Tag: value`")
        tag, value = tag.strip(), value.strip()
        if value.startswith("<text>"):
            value, number = _text(value, lines, number)
        if tag in _SECTION_STARTS:
            section = _SECTION_STARTS[tag]
            package = None
            if section == "package":
                package = {"name": value}
                doc["packages"].append(package)
            continue
        if tag == "Relationship":
            _relationship(value, number, doc)
        elif section == "document":
            _document_field(tag, value, doc)
        elif section == "package" and package is not None:
            _package_field(tag, value, number, package)
    return doc


def _text(value: str, lines: list[str], number: int) -> tuple[str, int]:
    """A `<text>` value, which may go on over the next lines until `</text>`."""
    body = value[len("<text>") :]
    parts = []
    while "</text>" not in body:
        parts.append(body)
        if number >= len(lines):
            raise Invalid(f"SPDX tag-value line {number}: <text> is never closed")
        body = lines[number]
        number += 1
    parts.append(body[: body.index("</text>")])
    return "\n".join(parts).strip(), number


def _document_field(tag: str, value: str, doc: dict[str, Any]) -> None:
    if tag == "SPDXVersion":
        doc["spdxVersion"] = value
    elif tag == "DocumentName":
        doc["name"] = value
    elif tag == "DocumentNamespace":
        doc["documentNamespace"] = value
    elif tag == "Created":
        doc["creationInfo"] = {"created": value}


def _package_field(tag: str, value: str, number: int, package: dict[str, Any]) -> None:
    if tag in _PACKAGE_FIELDS:
        package[_PACKAGE_FIELDS[tag]] = value
    elif tag == "ExternalRef":
        parts = value.split()
        if len(parts) < 3:
            raise Invalid(
                f"SPDX tag-value line {number}: ExternalRef needs category, type, locator"
            )
        package.setdefault("externalRefs", []).append(
            {"referenceCategory": parts[0], "referenceType": parts[1], "referenceLocator": parts[2]}
        )
    elif tag == "PackageChecksum":
        algorithm, sep, checksum = value.partition(":")
        if not sep:
            raise Invalid(f"SPDX tag-value line {number}: PackageChecksum needs `ALG: value`")
        package.setdefault("checksums", []).append(
            {"algorithm": algorithm.strip(), "checksumValue": checksum.strip()}
        )


def _relationship(value: str, number: int, doc: dict[str, Any]) -> None:
    parts = value.split()
    if len(parts) != 3:
        raise Invalid(f"SPDX tag-value line {number}: Relationship needs `A TYPE B`")
    element, kind, related = parts
    doc["relationships"].append(
        {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}
    )
