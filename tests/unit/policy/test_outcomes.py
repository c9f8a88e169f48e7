"""Which policies the outcome cache may serve (policy/outcomes.py): read from the policy's own
references to `input` and its builtin calls, conservatively."""

from __future__ import annotations

import pytest

from sbomgate.policy import load_policy
from sbomgate.policy.outcomes import OutcomeCache, context_free
from sbomgate.runtime import load_policies


def policy(body: str) -> bool:
    """Whether a policy with this body is context-free."""
    source = f"package cloudsmith\n\nimport rego.v1\n\ndefault match := false\n\n{body}\n"
    return context_free(load_policy("probe.rego", source))


@pytest.mark.parametrize(
    "body",
    [
        'match if input.v0.package.name == "evil"',
        'match if input.v0["package"].name == "evil"',
        "match if count(input.v0.osv) > 0",
        'match if {\n  some x in input.v0.lists.blocklist\n  x.entry == "a"\n}',
        # The subject's SBOM is part of the key (null for every package).
        "match if input.v0.sbom.metadata",
        "match if data.sbomgate.allow[input.v0.package.name]",
    ],
)
def test_package_only_policies_are_context_free(body: str) -> None:
    assert policy(body)


@pytest.mark.parametrize(
    "body",
    [
        'match if input.v0.image.ref == "x"',
        'match if input.v0.workload.namespace == "x"',
        'match if input["v0"]["image"]',
        'match if {\n  k := "image"\n  input.v0[k]\n}',  # a computed key: anything
        "match if input.v0",  # the whole of v0 (image and workload in it)
        "match if {\n  x := input\n  x.v0.image\n}",
        "match if count(input) > 0",
        'match if f with input as {"v0": {}}\nf if true',
        "match if time.now_ns() > 0",
        'match if rand.intn("x", 2) == 1',
        'match if trace("x")',
    ],
)
def test_policies_that_may_see_more_are_not(body: str) -> None:
    assert not policy(body)


def test_the_bundled_policies() -> None:
    """Every bundled policy is context-free: the package-age policies read ages sbomgate counts
    into the input (`published_days_ago`), not the clock."""
    found = {p.name: context_free(p) for p in load_policies(None)}
    assert {name for name, free in found.items() if not free} == set()
    assert len(found) == 10


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = OutcomeCache(max_bytes=1000)
    keys = [OutcomeCache.key(f"doc{i}") for i in range(10)]
    for key in keys[:5]:  # five entries of 200 bytes fill it
        cache.put(key, [])
    assert cache.get(keys[0]) == ()  # used: now the most recent
    for key in keys[5:7]:
        cache.put(key, [])
    assert cache.size_bytes <= 1000 and len(cache) == 5
    assert cache.get(keys[0]) is not None
    assert cache.get(keys[1]) is None and cache.get(keys[2]) is None
    assert (cache.hits, cache.misses) == (2, 2)
