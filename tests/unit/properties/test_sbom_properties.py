"""Property: whatever the bytes, parse_sbom returns an Sbom or raises SbomError."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from hypothesis import given
from hypothesis import strategies as st
from strategies import json_values, settings_for, words

from sbomgate.errors import SbomError
from sbomgate.sbom import Sbom, parse_sbom

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sbom"
FIXTURE_BYTES = [p.read_bytes() for p in sorted(FIXTURES.iterdir()) if p.is_file()]

SETTINGS = settings_for(300)

TEXT = words(
    ["MIT", "mit", "NOASSERTION", "NONE", "", "Apache-2.0 OR MIT", "MIT AND", "(", "pkg:npm/a@1",
     "pkg:npm/%40s/n@1+2", "pkg:", "SHA-256", "SHA3-256", "CycloneDX", "1.6", "1.1", "SPDX-2.3",
     "PACKAGE-MANAGER", "PACKAGE_MANAGER", "purl", "DESCRIBES", "SPDXRef-DOCUMENT", "SPDXRef-a"],
)  # fmt: skip
JSONISH = json_values(TEXT)


def keyed(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


LICENSE = keyed(["id", "name", "url"], JSONISH | TEXT)
LICENSE_ENTRY = keyed(["license", "expression"], LICENSE | TEXT | JSONISH)
HASH = keyed(["alg", "content"], TEXT | JSONISH)
COMPONENT = st.recursive(
    keyed(
        ["type", "name", "version", "purl", "bom-ref", "group", "licenses", "hashes"],
        TEXT | JSONISH | st.lists(LICENSE_ENTRY, max_size=3) | st.lists(HASH, max_size=3),
    ),
    lambda inner: st.builds(
        lambda base, kids: {**base, "components": kids}, inner, st.lists(inner, max_size=3)
    ),
    max_leaves=8,
)
CYCLONEDX = st.builds(
    lambda spec, comps, meta: {
        "bomFormat": "CycloneDX",
        "specVersion": spec,
        "components": comps,
        "metadata": meta,
    },
    st.sampled_from(["1.2", "1.4", "1.6"]) | JSONISH,
    st.lists(COMPONENT, max_size=4) | JSONISH,
    st.builds(lambda c: {"component": c}, COMPONENT) | JSONISH,
)
REF = keyed(["referenceCategory", "referenceType", "referenceLocator"], TEXT | JSONISH)
PACKAGE = keyed(
    ["SPDXID", "name", "versionInfo", "licenseConcluded", "licenseDeclared", "externalRefs",
     "checksums"],
    TEXT | JSONISH | st.lists(REF, max_size=2)
    | st.lists(keyed(["algorithm", "checksumValue"], TEXT | JSONISH), max_size=2),
)  # fmt: skip
SPDX = st.builds(
    lambda spec, packages, describes, rels: {
        "spdxVersion": spec,
        "packages": packages,
        "documentDescribes": describes,
        "relationships": rels,
    },
    st.sampled_from(["SPDX-2.2", "SPDX-2.3"]) | JSONISH,
    st.lists(PACKAGE, max_size=4) | JSONISH,
    st.lists(TEXT, max_size=2) | JSONISH,
    st.lists(keyed(["spdxElementId", "relationshipType", "relatedSpdxElement"], TEXT), max_size=3)
    | JSONISH,
)


def outcome(data: bytes) -> None:
    try:
        sbom = parse_sbom(data, source="prop")
    except SbomError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(sbom, Sbom)
    for c in sbom.components:
        assert isinstance(c.name, str)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@SETTINGS
@given(JSONISH)
def test_arbitrary_json(value: Any) -> None:
    outcome(orjson.dumps(value))


@SETTINGS
@given(CYCLONEDX)
def test_cyclonedx_shaped_json(doc: dict[str, Any]) -> None:
    outcome(orjson.dumps(doc))


@SETTINGS
@given(SPDX)
def test_spdx_shaped_json(doc: dict[str, Any]) -> None:
    outcome(orjson.dumps(doc))


def _xml_component(comp: dict[str, Any]) -> str:
    parts = [f"<component type={quoteattr(str(comp.get('type', 'library')))}>"]
    for key in ("name", "version", "purl", "group"):
        if key in comp:
            parts.append(f"<{key}>{escape(str(comp[key]))}</{key}>")
    if "licenses" in comp:
        parts.append(f"<licenses><license><id>{escape(str(comp['licenses']))}</id></license>")
        parts.append(f"<expression>{escape(str(comp['licenses']))}</expression></licenses>")
    if "hashes" in comp:
        parts.append(f"<hashes><hash alg={quoteattr(str(comp['hashes']))}>AB</hash></hashes>")
    kids = comp.get("components")
    if isinstance(kids, list):
        parts.append("<components>")
        parts.extend(_xml_component(k) for k in kids if isinstance(k, dict))
        parts.append("</components>")
    parts.append("</component>")
    return "".join(parts)


@SETTINGS
@given(st.sampled_from(["1.2", "1.4", "1.6", "1.1", "2.0"]), st.lists(COMPONENT, max_size=4))
def test_cyclonedx_xml(spec: str, components: list[dict[str, Any]]) -> None:
    body = "".join(_xml_component(c) for c in components)
    xml = (
        f'<bom xmlns="http://cyclonedx.org/schema/bom/{spec}"><components>{body}</components></bom>'
    )
    outcome(xml.encode())


@SETTINGS
@given(st.sampled_from(FIXTURE_BYTES), st.data())
def test_mutated_fixtures(original: bytes, data: st.DataObject) -> None:
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "truncate", "insert"]))
        if action == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del raw[at]
        elif action == "truncate":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.sampled_from([b"{", b"]", b"<", b'"', b"\\", b"&", b"\xff"]))
    outcome(bytes(raw))
