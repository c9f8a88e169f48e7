"""Which policies the outcome cache may serve (policy/outcomes.py): read from the policy's own
references to `input` and its builtin calls, conservatively."""

from __future__ import annotations

import pytest

from sbomgate.policy import load_policy
from sbomgate.policy.loader import Policy
from sbomgate.policy.outcomes import OutcomeCache, context_free, reads_field
from sbomgate.runtime import load_policies


def probe(body: str, imports: str = "") -> Policy:
    source = f"package cloudsmith\n\nimport rego.v1\n{imports}\ndefault match := false\n\n{body}\n"
    return load_policy("probe.rego", source)


def policy(body: str) -> bool:
    """Whether a policy with this body is context-free."""
    return context_free(probe(body))


@pytest.mark.parametrize(
    ("imports", "free"),
    [
        ("import input.v0.image as img\n", False),
        ("import input.v0 as v\n", False),
        ("import input\n", False),
        ("import input.v0.package as pkg\n", True),
    ],
)
def test_imports_of_input_count_as_reads(imports: str, free: bool) -> None:
    body = "match if img.ref" if "img" in imports else "match if count(input.v0.osv) > 0"
    assert context_free(probe(body, imports)) is free


@pytest.mark.parametrize(
    ("body", "imports", "reads"),
    [
        ("match if input.v0.sbom.metadata", "", True),
        ('match if input.v0["sbom"] != null', "", True),
        ("match if input.v0.image_subject == true", "", False),
        ("match if count(input.v0) > 0", "", True),
        ("match if sbom.metadata", "import input.v0.sbom\n", True),
        ('match if f with input as {"v0": {}}\nf if true', "", True),
        ("match if input.v0.package.name", "", False),
    ],
)
def test_which_policies_read_the_sbom(body: str, imports: str, reads: bool) -> None:
    assert reads_field(probe(body, imports), "sbom") is reads


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
    # None needs the whole SBOM: the image subject is told apart by input.v0.image_subject.
    assert not any(reads_field(p, "sbom") for p in load_policies(None))


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
