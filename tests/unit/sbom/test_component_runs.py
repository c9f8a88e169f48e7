"""A large statement's components are read a run of items at a time (sbom/cyclonedx.py,
`_walk_runs`): a run whose items' JSON was read before is taken whole from RUN_MEMO. Runs are
cut by the items' own lengths, so a new build's bumped packages change their runs only. What a
run gives must be what reading its items one by one gives: the components, nested ones too,
the names they declare (in order), the limits' counts and every error."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate._internal import jsonpieces
from sbomgate.errors import SbomError
from sbomgate.identity import declared_fields
from sbomgate.sbom import parse_sbom, parse_sbom_in_statement
from sbomgate.sbom._common import Invalid, Limits
from sbomgate.sbom.cyclonedx import (
    _RUN_END,
    _RUN_MAX,
    RUN_MEMO,
    _run_ends,
    clear_memos,
    read_cyclonedx,
)


def component(i: int, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    name = f"package-{i}"
    return {
        "type": "library",
        "name": name,
        "version": version,
        "purl": f"pkg:npm/{name}@{version}",
        "licenses": [{"license": {"id": "MIT"}}],
        **extra,
    }


def bom(components: list[Any]) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components}


def statement(document: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "image", "digest": {"sha256": "0" * 64}}],
            "predicateType": "https://cyclonedx.org/bom",
            "predicate": document,
        }
    )


def decoded(document: dict[str, Any]) -> tuple[bytes, dict[str, Any], jsonpieces.ArrayItems]:
    """The statement's bytes, its predicate and the raw items, as the verifier decodes them."""
    payload = statement(document)
    assert len(payload) > jsonpieces.PIECE_BYTES  # so that it is decoded in pieces
    items: jsonpieces.ArrayItems = {}
    predicate = jsonpieces.loads(payload, items)["predicate"]
    assert id(predicate["components"]) in items
    return payload, predicate, items


def read(document: dict[str, Any], limits: Limits | None = None) -> Any:
    """(components, declared names in order) read from raw items, as a new build is read."""
    _, predicate, items = decoded(document)
    _, _, components, declared = read_cyclonedx(predicate, limits or Limits(64, 10**6), items)
    return components, list(declared.items())


def alone(document: dict[str, Any]) -> Any:
    """The same, read item by item from a document decoded whole (no raw items, no runs)."""
    _, _, components, declared = read_cyclonedx(
        orjson.loads(orjson.dumps(document)), Limits(64, 10**6)
    )
    return components, list(declared.items())


def many(count: int = 700, seed: int = 1) -> list[dict[str, Any]]:
    """Components of all sizes (so runs end here and there), some nested, some with a
    pedigree, some naming another's purl under other names (one purl, several names)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        item = component(i, version=f"1.{rng.randrange(30)}.{rng.randrange(300)}")
        item["description"] = "x" * rng.randrange(40)
        if i % 37 == 0:
            item["components"] = [component(10_000 + i), component(20_000 + i)]
        if i % 53 == 0:
            item["pedigree"] = {"ancestors": [component(30_000 + i)]}
        if i % 29 == 0 and out:
            other = out[rng.randrange(len(out))]
            item = {**item, "purl": other["purl"], "group": "someone-else"}
        out.append(item)
    return out


def test_the_runs_end_where_the_items_say_and_no_run_is_too_long() -> None:
    sizes = [8, 3, 5, 16, *([7] * 70), 24, 1]
    raws = [b"x" * n for n in sizes]
    ends = _run_ends(raws)
    assert ends[:2] == [1, 4]  # after the items of 8 and 16 bytes
    assert ends[-1] == len(raws)
    starts = [0, *ends[:-1]]
    assert all(0 < end - start <= _RUN_MAX for start, end in zip(starts, ends, strict=True))
    # Where no item ends a run, the runs are cut every _RUN_MAX items.
    assert ends[2:5] == [4 + _RUN_MAX, 4 + 2 * _RUN_MAX, 75]
    assert _run_ends([]) == []
    assert _run_ends([b"x" * _RUN_END]) == [1]


def test_a_run_gives_what_its_items_give_one_by_one() -> None:
    """Read from empty memos, again from full ones, and item by item from the document
    decoded whole: the same components (nested and pedigree ones in their places) and the
    same declared names in the same order (as identity.declared_fields reads them)."""
    document = bom(many())
    expected = alone(document)
    clear_memos()
    first = read(document)
    assert len(RUN_MEMO._items) > 50
    again = read(document)
    assert first == expected and again == expected
    assert again[1] == list(declared_fields(document).items())
    assert all(a is b for a, b in zip(first[0], again[0], strict=True))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    bumps=st.lists(st.integers(0, 699), max_size=20),
)
def test_a_new_build_reads_as_it_would_alone(seed: int, bumps: list[int]) -> None:
    """Builds that bump a few packages (their runs change) and rename others (a purl whose
    names change after a run was kept) read as each would alone."""
    components = many(seed=seed)
    clear_memos()
    read(bom(components))
    for index in bumps:
        item = components[index] = dict(components[index])
        if index % 2:
            item["version"] += ".1"
            item["purl"] += ".1"
        else:
            item["name"] = "renamed"
    document = bom(components)
    assert read(document) == alone(document)


def test_a_bump_changes_its_own_run_only() -> None:
    components = [component(i) for i in range(800)]
    clear_memos()
    read(bom(components))
    kept = len(RUN_MEMO._items)
    components[100] = component(100, version="1.0.1")
    components[500] = component(500, version="1.0.10")  # one byte longer: its run ends elsewhere
    read(bom(components))
    assert len(RUN_MEMO._items) - kept <= 4


def test_a_known_run_counts_its_nested_components_against_the_limit() -> None:
    components = [component(i) for i in range(600)]
    components[10]["components"] = [component(9000 + i) for i in range(5)]
    document = bom(components)
    clear_memos()
    assert len(read(document)[0]) == 605
    with pytest.raises(Invalid, match="more than 604 components"):
        read(document, Limits(64, 604))


def test_a_run_read_within_one_nesting_limit_is_not_known_under_another() -> None:
    components = [component(i) for i in range(600)]
    components[10]["components"] = [component(9000, components=[component(9001)])]
    document = bom(components)
    clear_memos()
    assert len(read(document, Limits(3, 10**6))[0]) == 602
    with pytest.raises(Invalid, match="nested deeper than 2 levels"):
        read(document, Limits(2, 10**6))


def test_a_run_with_a_broken_item_is_never_kept_and_errors_name_their_place() -> None:
    components = [component(i) for i in range(600)]
    components[321]["purl"] = "npm/not-a-purl@1"
    document = bom(components)
    clear_memos()
    for _ in range(2):
        with pytest.raises(Invalid, match=r"^components\[321\]\.purl: invalid purl"):
            read(document)
    components[321]["purl"] = "pkg:npm/fixed@1"
    assert len(read(bom(components))[0]) == 600


def test_the_statement_path_reads_as_the_bytes_do() -> None:
    """Through parse_sbom_in_statement (the webhook's path), twice: the SBOM its bytes give."""
    document = bom(many(seed=7))
    payload, predicate, items = decoded(document)
    clear_memos()
    expected = parse_sbom(orjson.dumps(document), source="s")
    for _ in range(2):
        sbom = parse_sbom_in_statement(predicate, payload, source="s", items=items)
        assert sbom.components == expected.components
        assert sbom.declared == expected.declared
        assert list(sbom.declared or {}) == list(expected.declared or {})
    with pytest.raises(SbomError):
        bad = bom([*many(seed=7), "not an object"])
        payload, predicate, items = decoded(bad)
        parse_sbom_in_statement(predicate, payload, source="s", items=items)


def test_a_known_sbom_leaves_few_objects_for_the_cyclic_gc() -> None:
    """Every object a read leaves alive is one each collection of Python's cyclic GC scans
    until it is freed: reading a document whose runs are all known leaves the Sbom and a few
    containers (no object per component, per run or per declared purl), and a new build
    leaves only what its changed runs make."""
    import gc

    from sbomgate.sbom import parse_sbom_in_statement

    components = [component(i) for i in range(2000)]
    clear_memos()
    kept = []
    for _ in range(2):
        payload, predicate, items = decoded(bom(components))
        kept.append(parse_sbom_in_statement(predicate, payload, source="s", items=items))

    def left_by(document: dict[str, Any]) -> int:
        payload, predicate, items = decoded(document)
        gc.collect()
        gc.disable()
        try:
            before = len(gc.get_objects())
            sbom = parse_sbom_in_statement(predicate, payload, source="s", items=items)
            after = len(gc.get_objects())
        finally:
            gc.enable()
        assert len(sbom.components) == len(document["components"])
        return after - before

    assert left_by(bom(components)) < 40
    components[1000] = component(1000, version="1.0.1")
    # The bumped package's run: a Component, its read, the run (about ten objects).
    assert left_by(bom(components)) < 40
    # Known components in new runs (the same packages, in another order), as when images are
    # made of one universe of packages: a few objects a run, none per component or purl (21 a
    # run when each run's declared names were tuples of its own).
    random.Random(5).shuffle(components)
    payload, predicate, items = decoded(bom(components))
    runs = len(_run_ends(items[id(predicate["components"])]))
    assert runs > 50
    assert left_by(bom(components)) < 4 * runs
