"""Bad input: always SbomError with a precise one-line message, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from sbomgate.errors import InputError, SbomError
from sbomgate.sbom import load_sbom_file, parse_sbom
from support.hidden_levels import HIDDEN_LEVELS_VALUE, hide_levels

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sbom"


def error_of(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(SbomError) as err:
        parse_sbom(data, source="img.json", **kwargs)
    assert err.value.source == "img.json"
    assert str(err.value) == f"img.json: {err.value.message}"
    assert "\n" not in err.value.message
    return err.value.message


def cdx(components: Any, **extra: Any) -> bytes:
    return orjson.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components, **extra}
    )


def lib(name: str, **fields: Any) -> dict[str, Any]:
    return {"type": "library", "name": name, **fields}


def test_sbom_error_is_an_input_error() -> None:
    assert issubclass(SbomError, InputError)


def test_invalid_json_reports_line_and_column() -> None:
    assert (
        error_of(b'{\n  "bomFormat": "CycloneDX",\n}')
        == "invalid JSON at line 2, column 27: trailing comma is not allowed"
    )
    assert error_of(b'{"a": 1} x').startswith("invalid JSON at line 1, column 10: ")


def test_json_nested_too_deep() -> None:
    message = error_of(b"[" * 2000 + b"]" * 2000)
    assert message == "invalid JSON at line 1, column 1026: nested deeper than 1024 levels"


def test_invalid_xml_reports_line() -> None:
    data = b'<?xml version="1.0"?>\n<bom xmlns="http://cyclonedx.org/schema/bom/1.6">\n<x></y>'
    assert error_of(data) == "invalid XML at line 3, column 6: mismatched tag"


@pytest.mark.parametrize(
    "data",
    [
        b"[1, 2]",
        b'{"hello": "world"}',
        b'{"bomFormat": "SWID"}',
        b"<html><body/></html>",
        b"just some text",
        b"\x00\x01\x02binary",
    ],
)
def test_not_an_sbom(data: bytes) -> None:
    assert error_of(data).startswith("not a CycloneDX or SPDX document")


def test_helpful_hints_for_near_misses() -> None:
    # SPDX tag-value is read (tests/unit/sbom/test_sbom_tagvalue.py), from its SPDXVersion line
    assert error_of(b"DocumentName: x\nSPDXVersion: SPDX-2.3\n") == (
        "SPDX tag-value must start with its SPDXVersion line"
    )
    statement = orjson.dumps(
        {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "predicate": {}}
    )
    assert "in-toto statement" in error_of(statement)
    assert "SPDX 3" in error_of(b'{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}')
    assert error_of(b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>") == (
        "SPDX RDF/XML is not supported; convert it to SPDX JSON"
    )
    assert error_of(b"<bom/>") == "not a CycloneDX or SPDX document (XML root element <bom>)"


def test_empty() -> None:
    assert error_of(b"") == "SBOM is empty"
    assert error_of(b" \n\t ") == "SBOM is empty"
    assert error_of(b"\xef\xbb\xbf") == "SBOM is empty"


def test_unsupported_versions() -> None:
    assert (
        error_of(b'{"bomFormat": "CycloneDX", "specVersion": "1.1"}')
        == "CycloneDX specVersion 1.1 is not supported (1.2–1.7 are)"  # noqa: RUF001
    )
    assert (
        error_of(b'<bom xmlns="http://cyclonedx.org/schema/bom/1.1" version="1"/>')
        == "CycloneDX specVersion 1.1 is not supported (1.2–1.7 are)"  # noqa: RUF001
    )
    assert (
        error_of(b'{"spdxVersion": "SPDX-2.1", "packages": []}')
        == "SPDX version SPDX-2.1 is not supported (SPDX-2.2 and SPDX-2.3 are)"
    )
    assert error_of(b'{"bomFormat": "CycloneDX"}') == "CycloneDX document has no specVersion"
    assert (
        error_of(b'{"bomFormat": "CycloneDX", "specVersion": 1.5}')
        == "specVersion: expected a string, got a number"
    )


def test_invalid_purl_has_its_path() -> None:
    comps = [lib(f"p{i}", purl=f"pkg:npm/p{i}@1") for i in range(13)]
    comps[12]["purl"] = "npm/left-pad@1.0.0"
    assert error_of(cdx(comps)) == (
        'components[12].purl: invalid purl: purl is missing the required "pkg" scheme '
        "component: 'npm/left-pad@1.0.0'."
    )


def test_nested_path() -> None:
    comps = [
        lib("a"),
        lib("b"),
        lib("c", components=[lib("d", purl="pkg:/nope")]),
    ]
    assert error_of(cdx(comps)).startswith("components[2].components[0].purl: invalid purl: ")


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ({"a": 1}, "components: expected an array, got an object"),
        (
            [lib("a"), lib("b"), lib("c"), {"name": 5}],
            "components[3].name: expected a string, got a number",
        ),
        ([lib("a", version=1.0)], "components[0].version: expected a string, got a number"),
        ([lib("a", purl=["x"])], "components[0].purl: expected a string, got an array"),
        (["pkg:npm/a@1"], "components[0]: expected an object, got a string"),
        ([{"type": "library"}], "components[0]: component has neither a name nor a purl"),
        (
            [lib("a", licenses={"id": "MIT"})],
            "components[0].licenses: expected an array, got an object",
        ),
        (
            [lib("a", licenses=["MIT"])],
            "components[0].licenses[0]: expected an object, got a string",
        ),
        (
            [lib("a", licenses=[{"license": {"id": 7}}])],
            "components[0].licenses[0].license.id: expected a string, got a number",
        ),
        (
            [lib("a", hashes=[{"alg": "SHA-256"}])],
            'components[0].hashes[0]: expected an object with string "alg" and "content"',
        ),
        ([lib("a", **{"bom-ref": 3})], "components[0].bom-ref: expected a string, got a number"),
        (
            [lib("a", components={"x": 1})],
            "components[0].components: expected an array, got an object",
        ),
    ],
)
def test_field_errors(components: Any, message: str) -> None:
    assert error_of(cdx(components)) == message


def test_metadata_errors() -> None:
    assert error_of(cdx([], metadata=[])) == "metadata: expected an object, got an array"
    assert (
        error_of(cdx([], metadata={"component": {"name": None}}))
        == "metadata.component: component has neither a name nor a purl"
    )


def test_spdx_field_errors() -> None:
    packages: list[dict[str, Any]] = [{"SPDXID": f"SPDXRef-{i}", "name": f"p{i}"} for i in range(5)]
    packages[4]["externalRefs"] = [
        {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "x"}
    ]
    doc = {"spdxVersion": "SPDX-2.3", "packages": packages}
    assert error_of(orjson.dumps(doc)).startswith(
        "packages[4].externalRefs[0].referenceLocator: invalid purl: "
    )
    bad: dict[str, Any] = {"spdxVersion": "SPDX-2.2", "packages": {"a": 1}}
    assert error_of(orjson.dumps(bad)) == "packages: expected an array, got an object"
    bad = {"spdxVersion": "SPDX-2.2", "packages": [{"name": "a", "versionInfo": 2}]}
    assert error_of(orjson.dumps(bad)) == "packages[0].versionInfo: expected a string, got a number"
    bad = {"spdxVersion": "SPDX-2.2", "documentDescribes": "SPDXRef-a", "packages": []}
    assert error_of(orjson.dumps(bad)) == "documentDescribes: expected an array of strings"


def test_size_limit_parse() -> None:
    data = cdx([lib("a")])
    assert error_of(data, max_size=10) == f"SBOM is {len(data)} bytes, over the 10 bytes limit"
    big = b" " * (3 * 1024 * 1024 + 200 * 1024) + data
    assert error_of(big, max_size=3 * 1024 * 1024) == "SBOM is 3.2 MiB, over the 3 MiB limit"


def test_size_limit_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as f:  # sparse: costs no disk
        f.truncate(int(130.1 * 1024 * 1024))
    with pytest.raises(SbomError) as err:
        load_sbom_file(path)
    assert err.value.message == "SBOM is 130.1 MiB, over the 128 MiB limit"
    assert err.value.source == str(path)


def test_only_spdx_json_and_tag_value_are_read_past_64_mib(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as f:  # sparse: costs no disk
        f.write(b'{"bomFormat": "CycloneDX", "specVersion": "1.7", "components": []}')
        f.truncate(int(70.1 * 1024 * 1024))
    with pytest.raises(SbomError) as err:
        load_sbom_file(path)
    assert err.value.message == (
        "SBOM is 70.1 MiB, over the 64 MiB limit for documents parsed whole "
        "(only SPDX JSON and tag-value are read past it)"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SbomError) as err:
        load_sbom_file(tmp_path / "nope.json")
    assert err.value.message == "cannot read: No such file or directory"


def nested(depth: int) -> list[dict[str, Any]]:
    comp = lib(f"c{depth}")
    for i in range(depth - 1, 0, -1):
        comp = lib(f"c{i}", components=[comp])
    return [comp]


def test_component_depth_limit() -> None:
    assert len(parse_sbom(cdx(nested(32)), source="x").components) == 32
    message = error_of(cdx(nested(33)))
    assert message == (
        "components" + "[0].components" * 32 + ": components nested deeper than 32 levels"
    )
    assert error_of(cdx(nested(4)), max_depth=3).endswith("nested deeper than 3 levels")


def test_component_depth_limit_xml() -> None:
    inner = "<component type='library'><name>leaf</name></component>"
    for _ in range(40):
        inner = (
            f"<component type='library'><name>n</name><components>{inner}</components></component>"
        )
    data = (
        f"<bom xmlns='http://cyclonedx.org/schema/bom/1.6'><components>{inner}</components></bom>"
    )
    assert error_of(data.encode()).endswith(": components nested deeper than 32 levels")


def test_component_count_limit() -> None:
    data = cdx([lib(f"a{i}") for i in range(11)])
    assert error_of(data, max_components=10) == "more than 10 components (the limit)"
    assert len(parse_sbom(data, source="x", max_components=11).components) == 11
    packages = [{"SPDXID": f"SPDXRef-{i}", "name": f"p{i}"} for i in range(11)]
    spdx = orjson.dumps({"spdxVersion": "SPDX-2.3", "packages": packages})
    assert error_of(spdx, max_components=10) == "more than 10 components (the limit)"


def test_billion_laughs_refused() -> None:
    data = (FIXTURES / "billion-laughs.xml").read_bytes()
    message = error_of(data)
    assert message.startswith("XML with a DOCTYPE or entity declarations is refused")


def test_external_entity_refused() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE bom [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6"><components><component>'
        b"<name>&x;</name></component></components></bom>"
    )
    assert error_of(data).startswith("XML with a DOCTYPE or entity declarations is refused")


def test_encodings() -> None:
    assert error_of(b'{"bomFormat": "Cyclone\xff"}') == (
        "not valid UTF-8 at line 1, column 23 (byte 22): SBOMs must be UTF-8"
    )
    utf16 = '{"bomFormat": "CycloneDX"}'.encode("utf-16")
    assert error_of(utf16) == "SBOM is UTF-16 or UTF-32 encoded; only UTF-8 is supported"
    assert error_of(b'{"a": "\\ud800"}').startswith("invalid JSON")


def test_unknown_xml_encoding() -> None:
    data = b'<?xml version="1.0" encoding="ATF-8"?><bom/>'
    assert error_of(data) == "invalid XML: unknown encoding: ATF-8"


def test_garbage_collector_is_restored() -> None:
    import gc

    from sbomgate._internal.gcpause import wait_freed

    assert wait_freed(30)  # no statement an earlier test checked is still paused for
    assert gc.isenabled()
    parse_sbom((FIXTURES / "cyclonedx-1.6.json").read_bytes(), source="x")
    assert gc.isenabled()
    error_of(b"{")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_sbom((FIXTURES / "cyclonedx-1.6.json").read_bytes(), source="x")
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_components_read_before_are_remembered_and_errors_still_name_their_place() -> None:
    """The parser remembers what it read of each component object (sbom/cyclonedx.py): a new
    build lists the same objects again. A remembered component is the one reading it gives,
    and a broken one is never remembered: its error names where it is in this document."""
    from sbomgate.sbom.cyclonedx import clear_memos

    clear_memos()
    comps = [
        lib(f"p{i}", version="1", purl=f"pkg:npm/p{i}@1", licenses=[{"license": {"id": "MIT"}}])
        for i in range(5)
    ]
    first = parse_sbom(cdx(comps), source="a.json")
    again = parse_sbom(cdx(list(reversed(comps))), source="b.json")
    assert again.components == tuple(reversed(first.components))
    assert all(a is b for a, b in zip(again.components, reversed(first.components), strict=True))
    clear_memos()
    assert parse_sbom(cdx(comps), source="c.json").components == first.components
    # The same broken object at another place: each error says where it is.
    broken = lib("q", purl="npm/q@1")
    assert error_of(cdx([broken])).startswith("components[0].purl: invalid purl")
    assert error_of(cdx([*comps, broken])).startswith("components[5].purl: invalid purl")
    # An object that differs in a field read (the licence) is read again.
    relicensed = [dict(comps[0], licenses=[{"license": {"id": "GPL-3.0-only"}}])]
    assert parse_sbom(cdx(relicensed), source="d.json").components[0].license == "GPL-3.0-only"


def test_brackets_in_strings_do_not_hide_levels() -> None:
    """A string of closing brackets, deep levels, then a string reopening them once hid those
    levels from the depth measure, which counted brackets in strings too (123 read as 95)."""
    data = cdx([lib("a")])[:-1] + b',"x":' + orjson.dumps(HIDDEN_LEVELS_VALUE) + b"}"
    data = hide_levels(data)
    assert error_of(data) == (
        "nested deeper than 100 levels: the policies could not read it (SBOMs need far fewer)"
    )
