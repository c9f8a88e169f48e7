"""A large CycloneDX statement's components are not decoded when it is verified: the decoder
leaves them as their items' raw JSON (jsonpieces.PartlyDecoded, Statement.predicate_source),
and the SBOM reader decodes only the runs of items it does not know (a new build's bumped
packages). What the statement says must not change for it: the predicate's value is orjson's,
the SBOM read is the one its bytes give, and JSON that orjson refuses is refused (later, by
the reader, naming the item), never read."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate._internal import jsonpieces
from sbomgate.attest.envelope import FormatError, parse_statement
from sbomgate.errors import SbomError
from sbomgate.sbom import parse_sbom, parse_sbom_in_statement
from sbomgate.sbom.cyclonedx import clear_memos
from sbomgate.sbom.parse import MAX_DOCUMENT_DEPTH
from support.hidden_levels import HIDDEN_LEVELS_VALUE, hide_levels

DEFER = ("predicate", "components")
CYCLONEDX = "https://cyclonedx.org/bom"


def component(i: int, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "type": "library",
        "name": f"package-{i}",
        "version": version,
        "purl": f"pkg:npm/package-{i}@{version}",
        "licenses": [{"license": {"id": "MIT"}}],
        "description": "x" * (i % 23),
    }


def bom(components: list[Any], **more: Any) -> dict[str, Any]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"type": "container", "name": "app"}},
        "components": components,
        **more,
    }


def statement(predicate: Any, predicate_type: str = CYCLONEDX, indent: bool = False) -> bytes:
    value = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": "0" * 64}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)


def sboms_equal(a: Any, b: Any) -> None:
    assert a.components == b.components
    assert list((a.declared or {}).items()) == list((b.declared or {}).items())
    assert a.subject == b.subject and a.others == b.others


@pytest.mark.parametrize("indent", [False, True])
def test_the_predicate_is_orjsons_and_its_components_wait(indent: bool) -> None:
    payload = statement(bom([component(i) for i in range(800)]), indent=indent)
    items: jsonpieces.ArrayItems = {}
    doc = jsonpieces.loads(payload, items, DEFER)
    partly = doc["predicate"]
    assert type(partly) is jsonpieces.PartlyDecoded
    assert type(partly.members["components"]) is jsonpieces.RawArray
    assert len(partly.array.raws) == 800
    assert all(len(raws) == 1 for raws in items.values())  # only the subject's list
    whole = orjson.loads(payload)
    assert list(doc) == list(whole) and doc["subject"] == whole["subject"]
    completed = partly.complete()
    assert orjson.dumps(completed) == orjson.dumps(whole["predicate"])  # key order too
    assert partly.complete() is completed  # once
    assert items[id(completed["components"])] is partly.array.raws


def test_what_is_not_deferred() -> None:
    """Small statements, components that are not a large array, and other members."""
    small = statement(bom([component(i) for i in range(3)]))
    assert type(jsonpieces.loads(small, {}, DEFER)["predicate"]) is dict
    for odd in ({"a": [component(i) for i in range(800)]}, "x" * 100_000):
        payload = statement(bom(odd))  # type: ignore[arg-type]
        assert jsonpieces.loads(payload, {}, DEFER) == orjson.loads(payload)
    other = statement({"dependencies": [component(i) for i in range(800)]})
    assert jsonpieces.loads(other, {}, DEFER) == orjson.loads(other)


def test_the_last_of_duplicate_keys_is_deferred_as_orjson_keeps_it() -> None:
    good = statement(bom([component(i) for i in range(800)]))
    decoy = orjson.dumps([component(666, "6.6.6")] * 900)
    payload = good.replace(b'"predicate":{', b'"predicate":{"components":' + decoy + b",", 1)
    partly = jsonpieces.loads(payload, {}, DEFER)["predicate"]
    assert partly.complete() == orjson.loads(payload)["predicate"]
    assert len(partly.array.raws) == 800
    assert all(b"6.6.6" not in bytes(raw) for raw in partly.array.raws)
    read = parse_statement(payload)
    clear_memos()
    sbom = parse_sbom_in_statement(read.predicate_source, payload, source="s", items=read.items)
    assert "6.6.6" not in {c.version for c in sbom.components}
    assert len(sbom.components) == 800


def test_an_item_that_is_not_json_gives_orjsons_error_for_the_document() -> None:
    components = [component(i) for i in range(800)]
    payload = statement(bom(components)).replace(b"package-321@", b"package-\xff@", 1)
    with pytest.raises(orjson.JSONDecodeError) as whole:
        orjson.loads(payload)
    partly = jsonpieces.loads(payload, {}, DEFER)["predicate"]
    with pytest.raises(orjson.JSONDecodeError) as deferred:
        partly.complete()
    assert str(deferred.value) == str(whole.value)


def test_the_statement_keeps_a_cyclonedx_predicate_partly_decoded_only() -> None:
    components = [component(i) for i in range(800)]
    read = parse_statement(statement(bom(components)))
    assert type(read.predicate_source) is jsonpieces.PartlyDecoded
    assert read.items is not None
    assert read.predicate == bom(components)
    assert read.items[id(read.predicate["components"])]  # recorded when completed
    versioned = parse_statement(statement(bom(components), CYCLONEDX + "/v1.6"))
    assert type(versioned.predicate_source) is jsonpieces.PartlyDecoded
    other = parse_statement(statement(bom(components), "https://example.com/custom"))
    assert type(other.predicate_source) is dict
    assert other.predicate == bom(components)


def test_json_that_orjson_refuses_is_refused_by_the_statement_or_by_the_reader() -> None:
    """Not JSON in an item: a statement of another predicate type is refused as it was when it
    is parsed; a CycloneDX one when its predicate is asked for (FormatError) or read
    (SbomError naming the item), never read as something else."""
    components = [component(i) for i in range(800)]
    for predicate_type in ("https://example.com/custom", CYCLONEDX):
        payload = statement(bom(components), predicate_type).replace(b"package-321@", b"\xff@")
        if predicate_type != CYCLONEDX:
            with pytest.raises(FormatError, match="in-toto statement is not JSON"):
                parse_statement(payload)
            continue
        read = parse_statement(payload)
        with pytest.raises(FormatError, match="in-toto statement is not JSON"):
            _ = read.predicate
        for _ in range(2):  # the run is not kept: refused each time
            with pytest.raises(SbomError, match=r"components\[321\]: not JSON"):
                parse_sbom_in_statement(read.predicate_source, payload, source="s")


def test_known_runs_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    components = [component(i) for i in range(2000)]
    clear_memos()
    first = parse_statement(statement(bom(components)))
    parse_sbom_in_statement(first.predicate_source, statement(bom(components)), source="a")
    components[700] = component(700, "1.0.1")
    payload = statement(bom(components))
    read = parse_statement(payload)
    decoded: list[int] = []
    real = jsonpieces.RawArray.decode

    def counting(self: jsonpieces.RawArray, start: int = 0, end: int | None = None) -> list[Any]:
        out = real(self, start, end)
        decoded.append(len(out))
        return out

    monkeypatch.setattr(jsonpieces.RawArray, "decode", counting)
    sbom = parse_sbom_in_statement(read.predicate_source, payload, source="b")
    assert 0 < sum(decoded) <= 32  # the bumped package's run
    assert [c.version for c in sbom.components if c.name == "package-700"] == ["1.0.1"]
    sboms_equal(sbom, parse_sbom(orjson.dumps(bom(components)), source="b"))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), indent=st.booleans())
def test_builds_read_partly_decoded_are_the_sboms_their_bytes_give(seed: int, indent: bool) -> None:
    """A stream of builds, each bumping or dropping or adding a few packages, read from empty
    memos and then from what the builds before left."""
    rng = random.Random(seed)
    components: list[Any] = [component(i) for i in range(rng.randrange(600, 900))]
    clear_memos()
    for _ in range(3):
        for _ in range(rng.randrange(1, 12)):
            index = rng.randrange(len(components))
            action = rng.randrange(3)
            if action == 0:
                components[index] = component(index, f"2.{rng.randrange(99)}")
            elif action == 1:
                del components[index]
            else:
                components.insert(index, component(10_000 + rng.randrange(99)))
        payload = statement(bom(components), indent=indent)
        read = parse_statement(payload)
        assert type(read.predicate_source) is jsonpieces.PartlyDecoded
        sbom = parse_sbom_in_statement(read.predicate_source, payload, source="s", items=read.items)
        sboms_equal(sbom, parse_sbom(orjson.dumps(bom(components)), source="s"))
        assert sbom.document is not read.predicate_source.members  # the statement's


def test_brackets_in_strings_leave_a_statement_read_a_run_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Brackets in a string (`/usr/bin/[`, a Maven range) are not nesting: the statement is
    still read as it is, never completed."""
    components = [component(i) for i in range(800)]
    components[5]["description"] = "[" * 300 + "/usr/bin/["
    payload = statement(bom(components))
    read = parse_statement(payload)
    assert type(read.predicate_source) is jsonpieces.PartlyDecoded

    def never(self: jsonpieces.PartlyDecoded) -> Any:
        raise AssertionError("completed")

    monkeypatch.setattr(jsonpieces.PartlyDecoded, "complete", never)
    sbom = parse_sbom_in_statement(read.predicate_source, payload, source="s")
    sboms_equal(sbom, parse_sbom(orjson.dumps(bom(components)), source="s"))


def test_a_statement_nested_too_deep_is_refused_as_its_bytes_are() -> None:
    """A component nested past the limit (in a property, not in its strings): completed and
    refused with the message the SBOM's own bytes get."""
    components = [component(i) for i in range(800)]
    deep: Any = "leaf"
    for _ in range(MAX_DOCUMENT_DEPTH):
        deep = [deep]
    components[5]["x"] = deep
    payload = statement(bom(components))
    read = parse_statement(payload)
    with pytest.raises(SbomError) as deferred:
        parse_sbom_in_statement(read.predicate_source, payload, source="s")
    with pytest.raises(SbomError) as from_bytes:
        parse_sbom(orjson.dumps(bom(components)), source="s")
    assert deferred.value.message == from_bytes.value.message
    assert "nested deeper than 100 levels" in deferred.value.message


def test_levels_hidden_by_strings_in_a_deferred_statement_are_refused() -> None:
    """A hostile SBOM: a string of closing brackets deep in a component and one reopening
    them later (which hid levels from a count of brackets), in a statement whose components
    verification left undecoded. Refused with the message its own bytes get."""
    components = [component(i) for i in range(800)]
    components[5]["x"] = HIDDEN_LEVELS_VALUE
    document = hide_levels(orjson.dumps(bom(components)))
    payload = statement(orjson.loads(document))
    read = parse_statement(payload)
    assert type(read.predicate_source) is jsonpieces.PartlyDecoded
    with pytest.raises(SbomError) as deferred:
        parse_sbom_in_statement(read.predicate_source, payload, source="s", items=read.items)
    with pytest.raises(SbomError) as from_bytes:
        parse_sbom(document, source="s")
    assert deferred.value.message == from_bytes.value.message
    assert "nested deeper than 100 levels" in deferred.value.message


def test_a_partly_decoded_predicate_that_is_not_cyclonedx_is_read_whole() -> None:
    """A CycloneDX predicate type over a document that says it is something else: completed
    and read (refused) as the document is."""
    document = bom([component(i) for i in range(800)])
    document["bomFormat"] = "NotCycloneDX"
    payload = statement(document)
    read = parse_statement(payload)
    with pytest.raises(SbomError) as deferred:
        parse_sbom_in_statement(read.predicate_source, payload, source="s")
    with pytest.raises(SbomError) as whole:
        parse_sbom_in_statement(read.predicate, payload, source="s")
    assert deferred.value.message == whole.value.message


def test_a_deferred_predicate_asked_for_whole_is_refused_as_an_sbom_error() -> None:
    """The image checker's other road (`_sbom_bytes`, the predicate written out) turns the
    statement's JSON error into the SBOM's: the image is refused, nothing crashes."""
    from sbomgate.attest.verifier import VerifiedDocument
    from sbomgate.imagecheck import _parse

    payload = statement(bom([component(i) for i in range(800)])).replace(b"package-9@", b"\xff@")
    read = parse_statement(payload)
    document = VerifiedDocument("sha256:" + "0" * 64, CYCLONEDX, read.predicate_source, "here")
    with pytest.raises(SbomError, match="in-toto statement is not JSON"):
        _parse(document, "s")


def test_a_builder_check_of_a_deferred_predicate_refuses_what_is_not_json() -> None:
    """A requirement with builders asks for the predicate's value: a deferred one whose
    components are not JSON is a refusal with the reason, not an error out of the verifier."""
    from sbomgate.attest.trust import AttestationRequirement
    from sbomgate.attest.verifier import AttestationCheck, _provenance_problem

    payload = statement(bom([component(i) for i in range(800)])).replace(b"package-9@", b"\xff@")
    check = AttestationCheck(
        location="here",
        layout="bundle",
        attached_to="sha256:" + "0" * 64,
        predicate_type=CYCLONEDX,
        verified=True,
        signer="key",
        error=None,
        statement=parse_statement(payload),
    )
    requirement = AttestationRequirement(
        name="sbom", predicate_types=(CYCLONEDX,), builder_ids=("https://builder.example",)
    )
    assert "in-toto statement is not JSON" in _provenance_problem(requirement, check)
    good = replace_statement(check, statement(bom([component(i) for i in range(800)])))
    assert "builder" in _provenance_problem(requirement, good)


def replace_statement(check: Any, payload: bytes) -> Any:
    from dataclasses import replace

    return replace(check, statement=parse_statement(payload))
