"""What the three SBOM targets (CycloneDX JSON, CycloneDX XML, SPDX JSON) share: the check of
one parse, the words of the formats, and the templates the structured modes edit.

Imported after the target has imported sbomgate under instrumentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from fuzzlib import check, expect, fixture_bytes, text

from sbomgate.errors import SbomError
from sbomgate.sbom import MAX_COMPONENTS, Sbom, parse_sbom, parse_sbom_document
from sbomgate.sbom.purl import parse_purl

VOCABULARY = [
    # CycloneDX
    "bomFormat", "CycloneDX", "specVersion", "1.2", "1.3", "1.4", "1.5", "1.6", "1.1", "2.0",
    "metadata", "component", "components", "name", "version", "purl", "bom-ref", "group",
    "type", "library", "application", "licenses", "license", "id", "url", "expression",
    "hashes", "alg", "content", "properties", "value", "serialNumber", "timestamp",
    # SPDX
    "spdxVersion", "SPDX-2.2", "SPDX-2.3", "SPDX-3.0", "SPDXID", "SPDXRef-DOCUMENT",
    "SPDXRef-Package-a", "packages", "versionInfo", "licenseConcluded", "licenseDeclared",
    "externalRefs", "referenceCategory", "referenceType", "referenceLocator",
    "PACKAGE-MANAGER", "PACKAGE_MANAGER", "checksums", "algorithm", "checksumValue",
    "documentDescribes", "relationships", "spdxElementId", "relationshipType",
    "relatedSpdxElement", "DESCRIBES", "DESCRIBED_BY", "primaryPackagePurpose", "CONTAINER",
    "documentNamespace", "creationInfo", "created", "@context", "https://spdx.org/rdf/3.0",
    # purls, licenses, hashes
    "pkg:npm/%40scope/name@1.0.0", "pkg:pypi/Requests_x@2.31.0", "pkg:maven/g/a@1?type=jar",
    "pkg:golang/github.com/a/b@v1.2.3", "pkg:deb/debian/curl@7.0?arch=amd64&distro=x",
    "pkg:oci/app@sha256%3Aab", "pkg:generic/x@1#sub/path", "pkg:cpan/A::B@1", "pkg:", "pkg:/",
    "pkg:mlflow/m@1?repository_url=x", "pkg:swift/github.com/a/b@1", "pkg:hackage/a_b@1",
    "%2B", "%40", "%", "MIT", "mit", "Apache-2.0", "MIT OR Apache-2.0", "(MIT AND BSD-3-Clause)",
    "GPL-2.0+", "GPL-2.0-or-later WITH Classpath-exception-2.0", "LicenseRef-x",
    "DocumentRef-a:LicenseRef-b", "NOASSERTION", "NONE", "MIT AND", "(", ")", "WITH", "OR",
    "SHA-256", "SHA256", "sha3-256", "BLAKE2b-256", "MD5", "abcdef0123",
]  # fmt: skip

XML_NAMESPACE = "http://cyclonedx.org/schema/bom/"


def check_sbom(data: bytes) -> None:
    """parse_sbom answers an Sbom or raises SbomError (one line); nothing else."""
    sbom = expect(lambda: parse_sbom(data, source="fuzz"), (SbomError,))
    if sbom is not None:
        check_parsed(sbom)


def check_document(document: Any) -> None:
    """An already-decoded document (an attestation's predicate) the same way."""
    sbom = expect(lambda: parse_sbom_document(document, source="fuzz"), (SbomError,))
    if sbom is not None:
        check_parsed(sbom)


def check_parsed(sbom: Sbom) -> None:
    check(isinstance(sbom, Sbom), f"parse_sbom returned {type(sbom).__name__}")
    check(len(sbom.components) <= MAX_COMPONENTS, "more components than the limit")
    for component in (*sbom.components, *([sbom.subject] if sbom.subject else [])):
        check(isinstance(component.name, str), f"component name {component.name!r}")
        check(component.version is None or isinstance(component.version, str), "version type")
        if component.purl is not None:
            # The canonical purl is what policies and the facts index key on: it must be a
            # fixed point, or one package would have two names.
            again = parse_purl(component.purl).canonical
            check(again == component.purl, f"purl {component.purl!r} canonicalises to {again!r}")
        for alg, value in component.hashes.items():
            check(isinstance(alg, str) and isinstance(value, str), "hash types")
    # Policies get the document as input: it must serialise.
    orjson.dumps(sbom.document)


def json_templates(*patterns: str) -> list[Any]:
    return [orjson.loads(raw) for raw in fixture_bytes(*patterns)]


# -- CycloneDX XML written from a CycloneDX JSON-shaped document --------------------------

_ATTRIBUTES = frozenset({"type", "bom-ref", "mime-type", "alg", "serialNumber", "version"})
_TEXT_KEYS = ("content", "value", "expression")
_SINGULAR = {
    "components": "component",
    "hashes": "hash",
    "licenses": "license",
    "properties": "property",
}


def _tag(name: str) -> str:
    ok = name[:1].isalpha() and all(c.isalnum() or c in "-_." for c in name)
    return name if ok and name.isascii() else "x"


def xml_element(tag: str, value: Any, depth: int = 0) -> str:
    tag = _tag(tag)
    if depth > 40:
        return f"<{tag}/>"
    if isinstance(value, list):
        child = _SINGULAR.get(tag, tag)
        inner = "".join(xml_element(child, item, depth + 1) for item in value)
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, dict):
        attributes = "".join(
            f" {_tag(k)}={quoteattr(str(v))}"
            for k, v in value.items()
            if k in _ATTRIBUTES and not isinstance(v, dict | list)
        )
        body = "".join(
            escape(str(v))
            if k in _TEXT_KEYS and not isinstance(v, dict | list)
            # a license entry's expression is an element of its own in XML
            else xml_element(k, v, depth + 1)
            for k, v in value.items()
            if k not in _ATTRIBUTES
        )
        return f"<{tag}{attributes}>{body}</{tag}>"
    if value is None:
        return f"<{tag}/>"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def cyclonedx_xml(fdp: Any, document: Any, vocabulary: Sequence[str]) -> bytes:
    """A CycloneDX XML document from a JSON-shaped one, with the namespace, attributes and a
    raw (unescaped) insertion chosen by the fuzzer."""
    spec = document.get("specVersion") if isinstance(document, dict) else None
    namespace = XML_NAMESPACE + (spec if isinstance(spec, str) else text(fdp, vocabulary))
    body = ""
    if isinstance(document, dict):
        body = "".join(
            xml_element(k, v)
            for k, v in document.items()
            if k not in ("bomFormat", "specVersion", "serialNumber", "version")
        )
    attributes = ""
    if isinstance(document, dict):
        for key in ("serialNumber", "version"):
            if key in document and not isinstance(document[key], dict | list):
                attributes += f" {key}={quoteattr(str(document[key]))}"
    xml = f"<bom xmlns={quoteattr(namespace)}{attributes}>{body}</bom>"
    if fdp.ConsumeBool():
        at = fdp.ConsumeIntInRange(0, len(xml))
        xml = xml[:at] + text(fdp, ["<", ">", "&", "&amp;", "<!--", "]]>", "<![CDATA["]) + xml[at:]
    encoding = fdp.PickValueInList(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16"])
    head = "" if encoding == "utf-8" else f'<?xml version="1.0" encoding="{encoding}"?>'
    try:
        return (head + xml).encode(encoding)
    except UnicodeEncodeError:
        return xml.encode()
