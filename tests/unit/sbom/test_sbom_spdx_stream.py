"""Large SPDX JSON is streamed (only the packages and what names the subject are built): it
reads exactly as the same document parsed whole. syft's own large SPDX output is read in
tests/integration/sbom/test_real_sboms.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate.errors import SbomError
from sbomgate.sbom import parse as parse_module
from sbomgate.sbom import parse_sbom
from support.paths import SBOM_FIXTURES

SPDX_FIXTURES = sorted(
    p for p in SBOM_FIXTURES.glob("*.json") if b'"spdxVersion"' in p.read_bytes()[:65536]
)


@pytest.fixture
def always_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "STREAM_FROM_BYTES", 0)


def whole_and_streamed(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    whole = parse_sbom(data, source="s")
    monkeypatch.setattr(parse_module, "STREAM_FROM_BYTES", 0)
    return whole, parse_sbom(data, source="s")


def test_the_fixtures_exist() -> None:
    assert len(SPDX_FIXTURES) >= 2


@pytest.mark.parametrize("path", SPDX_FIXTURES, ids=lambda p: p.name)
def test_streamed_reads_as_parsed_whole(path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, streamed = whole_and_streamed(path.read_bytes(), monkeypatch)
    assert streamed == whole


def test_files_and_their_relationships_are_read_past(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "rootfs",
        "files": [{"fileName": f"/usr/bin/{i}", "SPDXID": f"SPDXRef-File-{i}"} for i in range(50)],
        "packages": [
            {"SPDXID": "SPDXRef-root", "name": "rootfs", "primaryPackagePurpose": "FILE"},
            {"SPDXID": "SPDXRef-a", "name": "a", "versionInfo": "1", "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": "pkg:deb/debian/a@1"}]},
        ],
        "relationships": [
            *({"spdxElementId": "SPDXRef-a", "relationshipType": "CONTAINS",
               "relatedSpdxElement": f"SPDXRef-File-{i}"} for i in range(50)),
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": "SPDXRef-root"},
        ],
    }  # fmt: skip
    whole, streamed = whole_and_streamed(orjson.dumps(doc), monkeypatch)
    assert streamed == whole
    assert streamed.subject is not None and streamed.subject.name == "rootfs"
    assert [c.purl for c in streamed.components] == ["pkg:deb/debian/a@1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"spdxVersion": "SPDX-2.3", "packages": [', "invalid JSON"),
        (b'{"spdxVersion": "SPDX-2.3", "packages": {}}', "packages: expected an array"),
        (b'{"spdxVersion": "SPDX-2.3", "packages": 3}', "packages: expected an array"),
        (b'{"spdxVersion": 2.3}', "spdxVersion: expected a string"),
        (b'{"spdxVersion": "SPDX-2.3", "name": "\xff"}', "invalid JSON: lexical error"),
        (b'{"spdxVersion": "SPDX-2.3"} trailing', "invalid JSON: parse error: trailing garbage"),
    ],
)
def test_broken_documents_are_refused_when_streamed(
    data: bytes, message: str, always_streamed: None
) -> None:
    with pytest.raises(SbomError) as caught:
        parse_sbom(data, source="s")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)  # one line, as every SBOM error


def test_other_formats_past_the_whole_parse_limit_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parse_module, "MAX_PARSED_BYTES", 100)
    data = orjson.dumps({"bomFormat": "CycloneDX", "specVersion": "1.7", "components": []}) + (
        b" " * 200
    )
    with pytest.raises(SbomError) as caught:
        parse_sbom(data, source="s")
    assert "over the 100 bytes limit for documents parsed whole" in str(caught.value)


def test_packages_are_counted_as_they_are_streamed(always_streamed: None) -> None:
    doc = {"spdxVersion": "SPDX-2.3", "packages": [{"name": f"p{i}"} for i in range(5)]}
    with pytest.raises(SbomError) as caught:
        parse_sbom(orjson.dumps(doc), source="s", max_components=3)
    assert "more than 3 components (the limit)" in str(caught.value)
