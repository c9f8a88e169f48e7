"""Which policies the outcome cache may serve (policy/outcomes.py): read from the policy's own
references to `input` and its builtin calls, conservatively."""

from __future__ import annotations

import pytest

from sbomgate.policy import load_policy
from sbomgate.policy._regorus import analyse_module
from sbomgate.policy.loader import Policy
from sbomgate.policy.outcomes import OutcomeCache, context_free, match_projection, reads_field
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
        "match if crypto.x509.parse_and_verify_certificates(input.v0.package.name)[0]",
        'match if io.jwt.decode_verify(input.v0.package.name, {"secret": "s"})[0]',
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


AGE = ("v0", "package", "upstream_metadata", "published_days_ago")
OSV = ("v0", "osv")


@pytest.mark.parametrize(
    ("body", "imports", "paths"),
    [
        # What only the reason reads (the name) is not part of it.
        (
            "match if input.v0.osv[0]\nreason contains input.v0.package.purl if match",
            "",
            (OSV,),
        ),
        # Through rules and functions of the module, by name or as data.<package>.<rule>.
        (f"match if _young\n_young if input.{'.'.join(AGE)} < 3", "", (AGE,)),
        (f"match if data.cloudsmith._young\n_young if input.{'.'.join(AGE)} < 3", "", (AGE,)),
        ("match if f(0)\nf(i) if input.v0.osv[i]", "", (OSV,)),
        ("match if _hits[_]\n_hits[k] contains v if some k, v in input.v0.osv", "", (OSV,)),
        # A rule nothing in `match` refers to is not read.
        ("match if input.v0.osv\nother if input.v0.package.name", "", (OSV,)),
        # Paths under another read path are that path's.
        ("match if input.v0.osv\nm2 if input.v0.osv[0].id\nmatch if m2", "", (OSV,)),
        (
            "match if pkg.upstream_metadata.published_days_ago < 3",
            "import input.v0.package as pkg\n",
            None,
        ),
        ('match if input.v0.package.name == "x"', "", None),
        ("match if input.v0.package", "", None),
        ("match if input.v0.identity.canonical", "", None),
        ("match if input.v0.sbom.metadata", "", None),
        ("match if data.cloudsmith[x]\nr if input.v0.osv", "", None),
        ("match if count(data.cloudsmith) > 0", "", None),
        ("match if input.v0.image.ref", "", None),  # not context-free
        ("match if time.now_ns() > 0", "", None),
        ("match if input.v0.osv\nreason contains 1 if input.v0.sbom", "", None),
        ("reason contains 1 if input.v0.osv", "", ()),  # `default match := false` only
    ],
)
def test_what_decides_match(
    body: str, imports: str, paths: tuple[tuple[str, ...], ...] | None
) -> None:
    assert match_projection(probe(body, imports)) == paths


def test_a_module_without_match_reads_nothing_known() -> None:
    source = "package cloudsmith\n\nimport rego.v1\n\nreason contains 1 if input.v0.osv\n"
    assert analyse_module("p.rego", source).match_reads is None


def test_the_bundled_policies_match_on_what_names_no_package() -> None:
    """Each bundled policy's `match` reads neither the package's purl, name or version (only
    its reason names the package), so its outcome is reused across packages."""
    found = {p.name: match_projection(p) for p in load_policies(None)}
    assert all(paths for paths in found.values()), found
    assert found["license"] == (
        ("v0", "identity", "purl_type"),
        ("v0", "image_subject"),
        ("v0", "package", "format"),
        ("v0", "package", "license"),
    )
    assert found["vulnerability"] == found["malware"] == (OSV,)
    assert found["package-age"] == (AGE,)
