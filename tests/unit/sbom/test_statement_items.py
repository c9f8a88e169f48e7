"""A large statement's components are known again by their JSON as written: the decoder keeps
each item's raw text (jsonpieces), and the CycloneDX reader keys its memo by it rather than
writing each component out again."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sbomgate._internal import jsonpieces
from sbomgate.attest.envelope import parse_statement
from sbomgate.sbom import parse_sbom_in_statement
from sbomgate.sbom.cyclonedx import clear_memos


def statement(versions: dict[int, str]) -> bytes:
    """An in-toto statement over 64 KiB: 600 components, a few nested, in a CycloneDX BOM."""
    components: list[dict[str, Any]] = []
    for i in range(600):
        version = versions.get(i, "1.0.0")
        item: dict[str, Any] = {
            "type": "library",
            "name": f"package-{i}",
            "version": version,
            "purl": f"pkg:pypi/package-{i}@{version}",
            "licenses": [{"license": {"id": "MIT"}}],
        }
        if i % 100 == 0:
            item["components"] = [
                {
                    "type": "library",
                    "name": f"inner-{i}",
                    "version": "2",
                    "purl": f"pkg:npm/inner-{i}@2",
                }
            ]
        components.append(item)
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components}
    return orjson.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "image", "digest": {"sha256": "0" * 64}}],
            "predicateType": "https://cyclonedx.org/bom",
            "predicate": bom,
        }
    )


def test_the_components_are_keyed_by_their_raw_json(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = statement({})
    assert len(payload) > jsonpieces.PIECE_BYTES
    read = parse_statement(payload)
    assert read.items and id(read.predicate["components"]) in read.items
    clear_memos()
    expected = parse_sbom_in_statement(read.predicate, payload, source="a")
    clear_memos()

    written: list[Any] = []
    real = orjson.dumps

    def counting(value: Any, *args: Any, **kwargs: Any) -> bytes:
        written.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(orjson, "dumps", counting)
    again = parse_sbom_in_statement(read.predicate, payload, source="a", items=read.items)
    assert again.components == expected.components
    # Only the nested components (no raw text kept for them) were written out to be keyed.
    assert sorted(c["name"] for c in written) == sorted(f"inner-{i}" for i in range(0, 600, 100))
    assert len(again.components) == 606  # the nested ones too (keyed by their writing out)


def test_a_new_build_reuses_what_the_build_before_read() -> None:
    """The second build's unchanged components are the very objects the first one read; the
    bumped ones are read anew."""
    clear_memos()
    first_payload, second_payload = statement({}), statement({7: "1.0.1", 300: "1.1.0"})
    first_read, second_read = parse_statement(first_payload), parse_statement(second_payload)
    first = parse_sbom_in_statement(
        first_read.predicate, first_payload, source="a", items=first_read.items
    )
    second = parse_sbom_in_statement(
        second_read.predicate, second_payload, source="b", items=second_read.items
    )
    reused = [a is b for a, b in zip(first.components, second.components, strict=True)]
    changed = [i for i, same in enumerate(reused) if not same]
    assert [second.components[i].version for i in changed] == ["1.0.1", "1.1.0"]


def test_items_of_another_list_are_not_used() -> None:
    """Raw texts given for a list of another length (not the one they were read into) are
    ignored: the components are read as they are."""
    payload = statement({})
    read = parse_statement(payload)
    components = read.predicate["components"]
    wrong = {id(components): read.items[id(components)][:10]} if read.items else {}
    clear_memos()
    sbom = parse_sbom_in_statement(read.predicate, payload, source="a", items=wrong)
    assert len(sbom.components) == 606


def test_a_decoy_list_under_a_duplicate_key_is_neither_read_nor_keyed() -> None:
    """Who writes the SBOM chooses its bytes: a predicate naming `components` twice is read as
    orjson reads it (the last one), and the raw texts kept are those of that list, not of the
    decoy before it, so no decoy text keys a component it did not become."""
    good = statement({})
    decoy = orjson.dumps([{"type": "library", "name": "evil", "purl": "pkg:pypi/evil@6.6.6"}] * 900)
    payload = good.replace(b'"predicate":{', b'"predicate":{"components":' + decoy + b",", 1)
    assert len(payload) > jsonpieces.PIECE_BYTES
    read = parse_statement(payload)
    assert read.predicate == orjson.loads(payload)["predicate"]
    assert read.items is not None
    kept = read.items[id(read.predicate["components"])]
    assert len(kept) == 600 and all(b"evil" not in bytes(raw) for raw in kept)
    clear_memos()
    sbom = parse_sbom_in_statement(read.predicate, payload, source="a", items=read.items)
    assert "evil" not in {c.name for c in sbom.components} and len(sbom.components) == 606
