"""CycloneDX XML 1.2-1.7 -> the CycloneDX JSON shape, so one reader serves both encodings.

Parsed with defusedxml: a DOCTYPE (and so any entity declaration, internal or external) is
refused before anything is expanded.
"""

from __future__ import annotations

import xml.parsers.expat
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sbomgate.sbom._common import Invalid, shown
from sbomgate.sbom.cyclonedx import PEDIGREE_LISTS, check_spec_version

__all__ = ["CYCLONEDX_XML_NS", "xml_to_cyclonedx"]

CYCLONEDX_XML_NS = "http://cyclonedx.org/schema/bom/"
_TEXT_FIELDS = (
    "author",
    "publisher",
    "group",
    "name",
    "version",
    "description",
    "scope",
    "copyright",
    "cpe",
    "purl",
)


def parse_xml(data: bytes | memoryview) -> Element:
    """The root element of an XML document without a DOCTYPE; Invalid otherwise."""
    try:
        root: Element = fromstring(bytes(data), forbid_dtd=True)
    except ParseError as exc:
        line, column = exc.position
        reason = xml.parsers.expat.ErrorString(exc.code) if exc.code else str(exc)
        raise Invalid(f"invalid XML at line {line}, column {column + 1}: {reason}") from None
    except DefusedXmlException as exc:
        raise Invalid(
            f"XML with a DOCTYPE or entity declarations is refused ({type(exc).__name__}); "
            "CycloneDX XML needs neither"
        ) from None
    except LookupError as exc:  # an encoding declaration Python does not know
        raise Invalid(f"invalid XML: {exc}") from None
    except UnicodeError as exc:  # a declared (non-UTF-8) encoding that does not decode
        raise Invalid(f"invalid XML: {exc.__class__.__name__}: {exc}") from None
    except ValueError as exc:  # expat refuses a declared multi-byte encoding (UTF-7, ...)
        raise Invalid(f"invalid XML: unsupported encoding declaration ({exc})") from None
    return root


def xml_to_cyclonedx(data: bytes | memoryview, max_depth: int) -> dict[str, Any]:
    """A CycloneDX XML document in the CycloneDX JSON shape, nested at most `max_depth` deep."""
    root = parse_xml(data)
    tag = root.tag
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
    else:
        ns, local = "", tag
    if local == "RDF" or "spdx.org" in ns:
        raise Invalid("SPDX RDF/XML is not supported; convert it to SPDX JSON")
    if local != "bom" or not ns.startswith(CYCLONEDX_XML_NS):
        what = f"XML root element <{local}>" + (f" in namespace {shown(ns)}" if ns else "")
        raise Invalid(f"not a CycloneDX or SPDX document ({what})")
    spec = check_spec_version(ns[len(CYCLONEDX_XML_NS) :])
    q = "{" + ns + "}"
    doc: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": spec}
    serial = root.get("serialNumber")
    if serial is not None:
        doc["serialNumber"] = serial
    version = root.get("version")
    if version is not None:
        # An integer as in JSON when it is one: ASCII digits ("²".isdigit() too) and within
        # 64 bits (policies get the document as JSON); else kept as the text.
        small = version.isascii() and version.isdigit() and len(version) <= 18
        doc["version"] = int(version) if small else version
    metadata = root.find(q + "metadata")
    if metadata is not None:
        meta: dict[str, Any] = {}
        timestamp = metadata.find(q + "timestamp")
        if timestamp is not None:
            meta["timestamp"] = (timestamp.text or "").strip()
        main = metadata.find(q + "component")
        if main is not None:
            meta["component"] = _component(main, q, "metadata.component", 1, max_depth)
        doc["metadata"] = meta
    components = root.find(q + "components")
    if components is not None:
        doc["components"] = _components(components, q, "components", 1, max_depth)
    return doc


def _components(elem: Element, q: str, path: str, depth: int, max_depth: int) -> list[Any]:
    if depth > max_depth:
        raise Invalid(f"{path}: components nested deeper than {max_depth} levels")
    return [
        _component(child, q, f"{path}[{i}]", depth, max_depth)
        for i, child in enumerate(elem.iterfind(q + "component"))
    ]


def _component(elem: Element, q: str, path: str, depth: int, max_depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in ("type", "bom-ref", "mime-type"):
        value = elem.get(attr)
        if value is not None:
            out[attr] = value
    for child in elem:
        tag = child.tag
        if not tag.startswith(q):
            continue  # extension elements in other namespaces
        local = tag[len(q) :]
        if local in _TEXT_FIELDS:
            out[local] = (child.text or "").strip()
        elif local == "hashes":
            out["hashes"] = [
                {"alg": h.get("alg"), "content": (h.text or "").strip()}
                for h in child.iterfind(q + "hash")
            ]
        elif local == "licenses":
            out["licenses"] = _licenses(child, q)
        elif local == "properties":
            out["properties"] = [
                {"name": p.get("name"), "value": (p.text or "").strip()}
                for p in child.iterfind(q + "property")
            ]
        elif local == "components":
            out["components"] = _components(child, q, f"{path}.components", depth + 1, max_depth)
        elif local == "pedigree":
            out["pedigree"] = _pedigree(child, q, f"{path}.pedigree", depth + 1, max_depth)
    return out


def _pedigree(elem: Element, q: str, path: str, depth: int, max_depth: int) -> dict[str, Any]:
    """The component lists of a `<pedigree>` (commits, patches and notes are not packages)."""
    out: dict[str, Any] = {}
    for key in PEDIGREE_LISTS:
        found = elem.find(q + key)
        if found is not None:
            out[key] = _components(found, q, f"{path}.{key}", depth, max_depth)
    return out


def _licenses(elem: Element, q: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in elem:
        if child.tag == q + "expression":
            out.append({"expression": (child.text or "").strip()})
        elif child.tag == q + "license":
            lic: dict[str, Any] = {}
            for part in ("id", "name", "url"):
                found = child.find(q + part)
                if found is not None:
                    lic[part] = (found.text or "").strip()
            out.append({"license": lic})
    return out
