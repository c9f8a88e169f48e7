"""The pieces of an input a projection key is made of (engine._pieces), read by walking a tree
of the projected paths: the same as reading each path on its own, whatever the paths (one
ending where another goes on included) and whatever the document holds along them."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.policy import PolicyEngine, build_input, engine
from sbomgate.runtime import load_policies
from sbomgate.sbom import Component

KEYS = ("v0", "package", "license", "osv", "a")

paths = st.lists(
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=4).map(tuple),
    min_size=1,
    max_size=10,
    unique=True,
).map(sorted)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=80),
    st.lists(st.integers(0, 9), max_size=30),
)
documents = st.recursive(
    leaves, lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=5), max_leaves=30
)


def one_path_at_a_time(document: str, wanted: list[tuple[str, ...]]) -> list[str]:
    """Each path read on its own, as the pieces are defined."""
    parsed = orjson.loads(document)
    out = []
    for path in wanted:
        node: Any = parsed
        for step in path:
            if not isinstance(node, dict) or step not in node:
                out.append("")
                break
            node = node[step]
        else:
            text = orjson.dumps(node)
            short = len(text) <= engine._SHORT
            out.append(
                text.decode() if short else "#" + hashlib.blake2b(text, digest_size=32).hexdigest()
            )
    return out


@settings(max_examples=400, deadline=None)
@given(paths, documents)
def test_the_tree_reads_what_each_path_reads(wanted: list[tuple[str, ...]], value: Any) -> None:
    tree = engine._path_tree([(path, i) for i, path in enumerate(wanted)])
    document = orjson.dumps(value).decode()
    assert engine._pieces(document, tree, len(wanted)) == one_path_at_a_time(document, wanted)


def test_a_path_that_ends_where_another_goes_on() -> None:
    wanted = [("v0", "osv"), ("v0", "osv", "a")]
    tree = engine._path_tree([(path, i) for i, path in enumerate(wanted)])
    document = orjson.dumps({"v0": {"osv": {"a": [1]}}}).decode()
    assert engine._pieces(document, tree, 2) == ['{"a":[1]}', "[1]"]


def test_a_number_past_a_doubles_range_gives_no_pieces() -> None:
    tree = engine._path_tree([(("v0",), 0)])
    assert engine._pieces('{"v0": 1e400}', tree, 1) == []


def test_only_the_policies_evaluated_are_announced() -> None:
    """`before` (a worker's progress, which names the policy an overrun stopped) hears of a
    policy only when it is evaluated: not when its projection is one its `match` was false
    for."""
    policies = load_policies(None)
    evaluator = PolicyEngine(policies, outcome_cache_bytes=0)
    component = Component(name="left-pad", version="1.3.0", purl="pkg:npm/left-pad@1.3.0")
    document = orjson.dumps(build_input(component, now_ns=0)).decode()
    first: list[str] = []
    outcomes = evaluator.evaluate_input(document, before=lambda p: first.append(p.name))
    second: list[str] = []
    evaluator.evaluate_input(document, before=lambda p: second.append(p.name))
    assert first == [o.policy.name for o in outcomes]
    # Known now: the projected policies whose `match` was false.
    known = {o.policy.name for o in outcomes if not o.matched and o.error is None}
    known &= set(evaluator._projections)
    assert known
    assert second == [name for name in first if name not in known]
