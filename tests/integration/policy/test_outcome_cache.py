"""The outcome cache never changes a verdict (policy/outcomes.py), nor do the policies' sharing
of one engine (policy/_combined.py): the SBOMs real tools wrote,
evaluated by the bundled policies and policies that read the image and the workload, with and
without the cache, across images, give the same verdicts; and what changes the answer (a
policy, data, a fact) takes effect on the next evaluation."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from sbomgate.identity import identity_from_purl
from sbomgate.intel.ecosystems import identity_ecosystem, osv_name, osv_version
from sbomgate.intel.facts import IntelFacts
from sbomgate.intel.model import PackageFacts
from sbomgate.intel.osv import ReloadingOsvIndex
from sbomgate.intel.snapshot import load_facts_snapshot
from sbomgate.policy import PolicyEngine, load_policy
from sbomgate.policy import engine as engine_module
from sbomgate.runtime import load_policies
from sbomgate.sbom import Component, Sbom, load_sbom_file
from sbomgate.verdict import Verdict
from support.real_sboms import outputs, real_sbom

CORPUS = [o for o in outputs() if o.format in ("cyclonedx-json", "spdx-json")]
DATA = {"sbomgate": {"license": {"deny": ["GPL-3.0-only", "AGPL-3.0-only"]}}}


def _rego(name: str, meta: str, body: str) -> Any:
    source = (
        f"# METADATA\n# title: {name}\n# custom:\n{meta}package cloudsmith\n\nimport rego.v1\n\n"
        f"default match := false\n\n{body}\n"
    )
    return load_policy(f"{name}.rego", source)


# Sees the image: a terminal Allow ahead of everything for one image, so the context-free
# policies after it are not evaluated there, and must be for the others.
IMAGE_ALLOW = _rego(
    "trusted-image",
    "#   action: Allow\n#   precedence: 1\n#   terminal: true\n",
    'match if {\n  endswith(input.v0.image.ref, ":blessed")\n  startswith(input.v0.package.name, "lib")\n}',
)
# Sees the workload.
WORKLOAD_DENY = _rego(
    "no-prod-curl",
    "#   action: Deny\n#   precedence: 50\n",
    'match if {\n  input.v0.workload.namespace == "prod"\n  contains(input.v0.package.name, "curl")\n}',
)
# Context-free, and its `match` is decided by a few paths read through a rule and a function of
# its own (policy/outcomes.py: match_projection), while its reason names each package.
YOUNG_THROUGH_A_PROXY = _rego(
    "young-through-a-proxy",
    "#   action: Warn\n#   precedence: 75\n",
    "match if {\n  _proxied\n  _young(input.v0.package.upstream_metadata.published_days_ago)\n}\n"
    '_proxied if input.v0.repository.hosting == "proxied"\n'
    "_young(days) if days < 30\n"
    'reason contains sprintf("%s is young", [input.v0.package.purl]) if match',
)
# Context-free and terminal: cuts the evaluation short for what it matches.
TERMINAL_ALLOW = _rego(
    "allow-zlib",
    "#   action: Allow\n#   precedence: 2\n#   terminal: true\n",
    'match if startswith(input.v0.package.name, "zlib")',
)


def facts_for(component: Component) -> PackageFacts:
    """Deterministic, varied facts: some packages brand new, some with advisories, some from
    a pass-through repository."""
    digest = hashlib.sha256(component.purl.encode() if component.purl else b"").digest()
    osv = ({"id": f"GHSA-{digest.hex()[:4]}", "aliases": [], "affected": []},)
    return PackageFacts(
        repository={
            "name": "mirror",
            "kind": component.purl_type or "generic",
            "url": "https://mirror.example",
            "hosting": "proxied" if digest[0] % 3 == 0 else "hosted",
        },
        published_at="2026-11-30T00:00:00Z" if digest[1] % 5 == 0 else "2020-01-01T00:00:00Z",
        first_published_at="2026-11-29T00:00:00Z" if digest[2] % 7 == 0 else None,
        osv=osv if digest[3] % 4 == 0 else (),
    )


def verdicts(engine: PolicyEngine, sbom: Sbom, images: list[str]) -> list[Verdict]:
    """One verdict per image (and workload namespace, alternating)."""
    found = []
    for i, ref in enumerate(images):
        found.append(
            engine.evaluate_sbom(
                sbom,
                facts=facts_for,
                image={"ref": ref, "digest": "sha256:" + "0" * 64},
                workload={"namespace": "prod" if i % 2 else "dev", "kind": "Deployment"},
            )
        )
    return found


@pytest.mark.parametrize("output", CORPUS, ids=lambda o: o.id)
def test_the_cache_never_changes_a_verdict(output: Any) -> None:
    sbom = load_sbom_file(real_sbom(output))
    policies = [
        *load_policies(None),
        IMAGE_ALLOW,
        WORKLOAD_DENY,
        TERMINAL_ALLOW,
        YOUNG_THROUGH_A_PROXY,
    ]
    # Also one engine per policy against the policies sharing one engine (policy/_combined.py),
    # every `match` evaluated against `match` kept per projection, and the rules that depend on
    # data alone as written against folded into literals (policy/_fold.py).
    plain = PolicyEngine(
        policies, DATA, outcome_cache_bytes=0, combine=False, projections=False, fold=False
    )
    cached = PolicyEngine(policies, DATA)
    assert set(cached._projections) == {p.name for p in load_policies(None)} | {
        YOUNG_THROUGH_A_PROXY.name
    }
    assert len(cached._combined.shared) == len(policies)
    images = ["reg/app:1", "reg/app:blessed", "reg/app:2", "reg/app:blessed", "reg/app:3"]
    assert plain.outcomes is None and cached.outcomes is not None
    expected = verdicts(plain, sbom, images)
    assert verdicts(cached, sbom, images) == expected
    # Again: now every package's context-free outcomes come from the cache.
    before = cached.outcomes.hits
    assert verdicts(cached, sbom, images) == expected
    if sbom.components:
        assert cached.outcomes.hits > before
    assert any(v.violations or v.warnings or v.exemptions for v in expected) or not sbom.components


def one_package(name: str, version: str, license_: str) -> tuple[Component, Sbom]:
    """A PyPI package, and an SBOM that lists it alone."""
    component = Component(
        name=name, version=version, purl=f"pkg:pypi/{name}@{version}", purl_type="pypi",
        format="python", license=license_,
    )  # fmt: skip
    sbom = Sbom(
        source="t.json", format="cyclonedx", spec_version="1.6", subject=None,
        components=(component,), document={"bomFormat": "CycloneDX", "specVersion": "1.6"},
    )  # fmt: skip
    return component, sbom


def test_a_changed_fact_policy_or_data_takes_effect_at_once() -> None:
    component, sbom = one_package("requests", "2.0.0", "GPL-3.0-only")
    policies = load_policies(None)
    engine = PolicyEngine(policies, DATA)
    vouched = PackageFacts(
        repository={"name": "internal", "kind": "pypi", "url": "https://pypi.internal/simple/",
                    "hosting": "hosted"},
        published_at="2020-01-01T00:00:00Z",
    )  # fmt: skip
    first = engine.evaluate_sbom(sbom, facts=lambda c: vouched)
    assert any(f.policy == "license" for f in first.violations)
    # A fact: the repository now lists other hashes for this version.
    advised = dataclasses.replace(vouched, checksum_mismatch="sha256:" + "1" * 64)
    later = engine.evaluate_sbom(sbom, facts=lambda c: advised)
    assert later != first and any(f.policy == "integrity" for f in later.violations)
    assert later == PolicyEngine(policies, DATA, outcome_cache_bytes=0).evaluate_sbom(
        sbom, facts=lambda c: advised
    )
    # Data: the licence allowed now (a new engine, as a reload makes: its cache is empty).
    relaxed = PolicyEngine(policies, {"sbomgate": {"license": {"deny": []}}})
    again = relaxed.evaluate_sbom(sbom, facts=lambda c: vouched)
    assert not any(f.policy == "license" for f in again.violations)
    # The component itself changed (another licence): another key.
    changed = dataclasses.replace(component, license="MIT")
    other = dataclasses.replace(sbom, components=(changed,))
    assert not any(
        f.policy == "license"
        for f in engine.evaluate_sbom(other, facts=lambda c: vouched).violations
    )


# A value of another kind for each field of a component and of its facts.
_OTHER_COMPONENT = {
    "name": "request",
    "version": "2.0.1",
    "purl": "pkg:pypi/requests@2.0.1",
    "purl_type": "npm",
    "namespace": "acme",
    "qualifiers": {"distro": "debian-12"},
    "format": "npm",
    "license": "MIT",
    "raw_license": "MIT License",
    "hashes": {"sha256": "2" * 64},
    "bom_ref": "urn:uuid:7e0c9a86-4b0e-4bb4-9a35-8d1d2c53c2f1",
    "license_error": "the licence library failed",
    "type": "file",
    "locations": ("/usr/lib/x",),
}
_OTHER_FACTS = {
    "repository": {
        "name": "other",
        "kind": "pypi",
        "url": "https://o.example",
        "hosting": "hosted",
    },
    "published_at": "2019-06-01T00:00:00Z",
    "first_published_at": "2018-01-01T00:00:00Z",
    "osv": ({"id": "GHSA-xxxx", "aliases": [], "affected": []},),
    "vulnerabilities": ({"id": "CVE-2024-1"},),
    "tags": ("deprecated",),
    "typosquat_of": "requests",
    "checksum_mismatch": "sha256:" + "3" * 64,
    "yanked": True,
    "unavailable": "the repository timed out",
}


def test_the_cache_key_holds_every_part_of_the_input() -> None:
    """`input_fingerprint`, which the outcome cache is keyed by, changes with every field the
    input is built from; the fields it leaves out change nothing in the input. A field added to
    Component or PackageFacts fails here until it is placed on one side."""
    from sbomgate.policy.input import (
        UNREAD_COMPONENT_FIELDS,
        UNREAD_FACT_FIELDS,
        build_input,
        input_fingerprint,
    )

    now = 1_796_212_800_000_000_000
    component = Component(
        name="requests", version="2.0.0", purl="pkg:pypi/requests@2.0.0", purl_type="pypi",
        format="python", license="Apache-2.0", hashes={"sha256": "1" * 64},
    )  # fmt: skip
    facts = PackageFacts(
        repository={"name": "internal", "kind": "pypi", "url": "https://pypi.internal/",
                    "hosting": "proxied"},
        published_at="2026-11-30T00:00:00Z", first_published_at="2026-11-01T00:00:00Z",
    )  # fmt: skip
    lists = PolicyEngine(load_policies(None), {"sbomgate": {"blocklist": ["pkg:pypi/request"]}})

    def built(c: Component, f: PackageFacts, problems: tuple[str, ...] = ()) -> Any:
        return build_input(c, facts=f, lists=lists.lists, disagreements=problems, now_ns=now)

    base = input_fingerprint(component, facts=facts, now_ns=now)
    assert set(_OTHER_COMPONENT) == {f.name for f in dataclasses.fields(Component)}
    assert set(_OTHER_FACTS) == {f.name for f in dataclasses.fields(PackageFacts)}
    changes = [
        (dataclasses.replace(component, **{name: value}), facts, name in UNREAD_COMPONENT_FIELDS)
        for name, value in _OTHER_COMPONENT.items()
    ] + [
        (component, dataclasses.replace(facts, **{name: value}), name in UNREAD_FACT_FIELDS)
        for name, value in _OTHER_FACTS.items()
    ]
    for (other, other_facts, unread), name in zip(
        changes, [*_OTHER_COMPONENT, *_OTHER_FACTS], strict=True
    ):
        if unread:
            assert built(other, other_facts) == built(component, facts), name
        else:
            assert input_fingerprint(other, facts=other_facts, now_ns=now) != base, name
    # The hashes the input does not hold are left out; its SHA-256 is in.
    sha1 = dataclasses.replace(component, hashes={"sha256": "1" * 64, "sha1": "4" * 40})
    assert built(sha1, facts) == built(component, facts)
    assert input_fingerprint(sha1, facts=facts, now_ns=now) == base
    # The identity disagreements are in, and the clock is in as the day counts: the same
    # counts an hour later, new ones a day later.
    assert input_fingerprint(component, facts=facts, disagreements=("x",), now_ns=now) != base
    hour, day = 3_600 * 10**9, 86_400 * 10**9
    assert input_fingerprint(component, facts=facts, now_ns=now + hour) == base
    assert build_input(component, facts=facts, lists=lists.lists, now_ns=now + hour) == built(
        component, facts
    )
    assert input_fingerprint(component, facts=facts, now_ns=now + day) != base


def test_a_package_that_ages_a_day_is_evaluated_again() -> None:
    """A policy about age sees the day counts: its cached outcome is not reused once they
    change (the key holds them)."""
    _, sbom = one_package("fresh", "1.0.0", "MIT")
    published = 1_796_212_800_000_000_000  # 2026-12-02T12:00:00Z
    facts = PackageFacts(
        repository={"name": "internal", "kind": "pypi", "url": "https://pypi.internal/",
                    "hosting": "hosted"},
        published_at="2026-12-02T12:00:00Z", first_published_at="2020-01-01T00:00:00Z",
    )  # fmt: skip
    engine = PolicyEngine(load_policies(None), DATA)
    day = 86_400 * 10**9

    def aged(days: int) -> Verdict:
        return engine.evaluate_sbom(sbom, facts=lambda c: facts, now_ns=published + days * day)

    young = aged(1)
    assert any(f.policy == "package-age" for f in young.violations + young.warnings)
    old = aged(400)
    assert not any(f.policy == "package-age" for f in old.violations + old.warnings)
    assert aged(1) == young  # from the cache, the same


def test_what_an_engine_remembers_of_a_component_follows_its_document_facts_and_clock() -> None:
    """An engine remembers a component object's disagreements and key (a new build hands it
    the same objects): another document naming its purl otherwise, other facts, or a clock
    past a day boundary is judged anew, and the verdicts are those of a fresh engine."""
    from sbomgate.policy.input import day_window

    _, sbom = one_package("requests", "2.0.0", "MIT")
    renamed = dataclasses.replace(
        sbom,
        document={
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "components": [{"name": "reqeusts", "purl": "pkg:pypi/requests@2.0.0"}],
        },
    )
    vouched = PackageFacts(
        repository={"name": "internal", "kind": "pypi", "url": "https://pypi.internal/",
                    "hosting": "hosted"},
        published_at="2026-12-01T00:00:00Z",
    )  # fmt: skip
    advised = dataclasses.replace(vouched, checksum_mismatch="sha256:" + "1" * 64)
    now = 1_796_212_800_000_000_000  # 2026-12-02T12:00:00Z
    engine = PolicyEngine(load_policies(None), DATA)
    steps = [
        (sbom, vouched, now),
        (renamed, vouched, now),  # the same component object, named otherwise beside its purl
        (sbom, advised, now),  # other facts
        (sbom, vouched, now + 20 * 86_400 * 10**9),  # older by twenty days
        (sbom, vouched, now),
    ]
    for document, facts, clock in steps:
        remembered = engine.evaluate_sbom(document, facts=lambda c, f=facts: f, now_ns=clock)
        fresh = PolicyEngine(load_policies(None), DATA).evaluate_sbom(
            document, facts=lambda c, f=facts: f, now_ns=clock
        )
        assert remembered == fresh
    verdicts = [engine.evaluate_sbom(d, facts=lambda c, f=f: f, now_ns=t) for d, f, t in steps[:3]]
    named = [[w for w in v.warnings if w.policy == "sbomgate/identity"] for v in verdicts]
    assert not named[0] and named[1] and not named[2]
    assert any(v.policy == "integrity" for v in verdicts[2].violations)
    # The day counts of a package published at midnight change at midnight.
    midnight = 1_796_169_600_000_000_000  # 2026-12-02T00:00:00Z
    assert day_window(vouched, now) == (midnight, midnight + 86_400 * 10**9)
    assert day_window(PackageFacts(), now)[0] < now < day_window(PackageFacts(), now)[1]


def _custom_data(components: list[Component]) -> dict[str, Any]:
    """Data that sets every option, with list entries naming some of these packages."""
    named = [
        f"{c.purl_type}:{c.name}"
        for c in components
        if c.purl_type in ("pypi", "npm", "deb", "apk") and c.name and ":" not in c.name
    ]
    return {
        "sbomgate": {
            "allow": named[::11],
            "blocklist": named[3::13],
            "quarantine": [
                {"purl": c.purl.split("@")[0], "reason": "incident 7"}
                for c in components[5::17]
                if c.purl
            ],
            "unverified": {"allow_no_purl": True, "exempt_formats": ["deb"]},
            "vulnerability": {"min_score": 5, "require_fix": False},
            "license": {"allow": ["MIT", "Apache-*", "BSD-*"], "os_packages": True},
            "package_age": {"min_days": 400, "min_project_days": 3650},
        }
    }


def _awkward_facts(component: Component) -> PackageFacts:
    """Facts that make every bundled policy match some packages: no repository, malware and
    fixed advisories, a checksum that differs, a typosquat, a repository that was down."""
    digest = hashlib.sha256((component.purl or component.name).encode()).digest()
    base = facts_for(component)
    kind = digest[4] % 8
    if kind == 0:
        return dataclasses.replace(base, repository=None, typosquat_of="requests")
    if kind == 1:
        malware = {"id": "MAL-2025-1", "aliases": ["GHSA-x"], "summary": "steals tokens"}
        return dataclasses.replace(base, osv=(malware,))
    if kind == 2:
        fixed = {
            "id": "GHSA-abcd", "aliases": ["CVE-2024-9"],
            "severity": [{"type": "CVSS_V3", "numerical_score": 9.1}],
            "affected": [{"ranges": [{"events": [{"introduced": "0"}, {"fixed": "9"}]}]}],
        }  # fmt: skip
        return dataclasses.replace(base, osv=(fixed,))
    if kind == 3:
        return dataclasses.replace(base, checksum_mismatch="sha256:" + "5" * 64)
    if kind == 4:
        return dataclasses.replace(base, repository=None, tags=("trusted-source-unavailable",))
    if kind == 5:
        return dataclasses.replace(base, published_at="2199-01-01T00:00:00Z")
    return base


@pytest.mark.parametrize("data_name", ["none", "deny", "custom"])
def test_each_bundled_match_holds_exactly_when_it_gives_a_reason(data_name: str) -> None:
    """The bundled policies' `match` reads only what decides it (so that it is kept per
    projection), and must say what `count(reason) > 0` says: on the inputs sbomgate builds
    for the packages real tools listed, with facts and data that make each policy match."""
    from sbomgate.policy._regorus import RegoEngine
    from sbomgate.policy.input import build_input

    policies = load_policies(None)
    components = [
        c for output in CORPUS for c in load_sbom_file(real_sbom(output)).components[:120]
    ]
    data = {"none": None, "deny": DATA, "custom": _custom_data(components)}[data_name]
    lists = PolicyEngine(policies, data).lists
    documents = [
        build_input(c, facts=_awkward_facts(c), lists=lists, now_ns=1_796_212_800 * 10**9)
        for c in components
    ]
    subject, image = one_package("app", "1.0.0", "GPL-3.0-only")
    documents.append(build_input(subject, sbom=image, facts=PackageFacts()))
    matched: dict[str, int] = {}
    for policy in policies:
        engine = RegoEngine([policy.module], data or {})
        for document in documents:
            engine.set_input_json(orjson.dumps(document).decode())
            match = engine.eval_rule(policy.match_rule)
            reasons = engine.eval_rule(policy.reason_rule)
            assert match is (bool(reasons) if reasons is not None else False), (
                policy.name,
                document["v0"]["package"],
                reasons,
            )
            matched[policy.name] = matched.get(policy.name, 0) + bool(match)
    # Each policy matched somewhere (the allow, block and quarantine lists only with data).
    listed = {"allow-list", "blocklist", "quarantine"}
    assert {n for n, count in matched.items() if count} >= (
        {p.name for p in policies} - (set() if data_name == "custom" else listed)
    ), matched


def test_a_projection_is_evaluated_once_and_each_package_keeps_its_reason() -> None:
    """Two packages whose `match` is decided by the same values: the second is not evaluated
    for `match`, and each finding names its own package."""
    first, sbom = one_package("alpha", "1.0.0", "GPL-3.0-only")
    second = dataclasses.replace(first, name="beta", purl="pkg:pypi/beta@1.0.0")
    third = dataclasses.replace(first, name="gamma", purl="pkg:pypi/gamma@1.0.0", license="MIT")
    sbom = dataclasses.replace(sbom, components=(first, second, third))
    vouched = PackageFacts(repository={"name": "internal", "hosting": "hosted"})
    policies = load_policies(None)
    engine = PolicyEngine(policies, DATA, outcome_cache_bytes=0)
    verdict = engine.evaluate_sbom(sbom, facts=lambda c: vouched)
    found = sorted(r for f in verdict.violations if f.policy == "license" for r in f.reasons)
    assert len(found) == 2
    assert "pkg:pypi/alpha@1.0.0" in found[0] and "pkg:pypi/beta@1.0.0" in found[1]
    plain = PolicyEngine(policies, DATA, outcome_cache_bytes=0, projections=False)
    assert verdict == plain.evaluate_sbom(sbom, facts=lambda c: vouched)
    # Evaluated again on the same three packages: `match` is known for all of them, and only
    # the two that matched are evaluated, for their reasons.
    calls: list[tuple[str, bool | None]] = []
    original = engine_module._evaluate

    def spy(engine: Any, policy: Any, known: bool | None = None) -> Any:
        calls.append((policy.name, known))
        return original(engine, policy, known)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "_evaluate", spy)
        assert engine.evaluate_sbom(sbom, facts=lambda c: vouched) == verdict
    assert [c for c in calls if c[0] == "license"] == [("license", True)] * 2
    assert all(known is True for _, known in calls)


def test_with_an_osv_index_a_new_build_reuses_its_packages_and_a_new_advisory_counts(
    tmp_path: Path,
) -> None:
    """With an OSV index beside the snapshot, a package's facts are the same object from one
    build to the next (so the engine reuses what it remembers of the package), until the index
    is reloaded: an advisory added to the export is in the very next evaluation."""
    snapshot_file = tmp_path / "facts.json"
    snapshot_file.write_text(
        orjson.dumps(
            {
                "packages": {
                    "pkg:pypi/requests@2.0.0": {
                        "repository": {"name": "internal", "kind": "pypi",
                                       "url": "https://pypi.internal/simple/", "hosting": "hosted"},
                        "published_at": "2020-01-01T00:00:00Z",
                    }
                }
            }
        ).decode()
    )  # fmt: skip
    exports = tmp_path / "osv"
    exports.mkdir()
    (exports / "OTHER-1.json").write_text(
        orjson.dumps(
            {"id": "OTHER-1", "modified": "2024-01-01T00:00:00Z",
             "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"}, "versions": ["1.0"]}]}
        ).decode()
    )  # fmt: skip
    now = [0.0]
    index = ReloadingOsvIndex([exports], check_interval=1.0, clock=lambda: now[0])
    facts = IntelFacts(snapshot=load_facts_snapshot(snapshot_file), osv=index)
    component, sbom = one_package("requests", "2.0.0", "MIT")
    policies = load_policies(None)
    engine = PolicyEngine(policies, DATA)
    first = engine.evaluate_sbom(sbom, facts=facts)
    assert not any(f.policy == "vulnerability" for f in first.violations)
    given = facts(component)
    assert facts(component) is given and not given.osv
    # An advisory for it, with a fix and a high score; the export changes, the index reloads.
    advisory = {
        "id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-06-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3",
                      "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": "2.0.1"}]}]}],
    }  # fmt: skip
    (exports / "GHSA-aaaa-bbbb-cccc.json").write_text(orjson.dumps(advisory).decode())
    stat = exports.stat()
    os.utime(exports, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    now[0] = 2.0
    assert index.maybe_reload() and index.wait(10)
    assert index.generation >= 2
    later = engine.evaluate_sbom(sbom, facts=facts)
    assert [f.policy for f in later.violations if f.policy == "vulnerability"] == ["vulnerability"]
    assert later == PolicyEngine(policies, DATA, outcome_cache_bytes=0).evaluate_sbom(
        sbom, facts=IntelFacts(snapshot=load_facts_snapshot(snapshot_file), osv=index)
    )
    assert facts(component) is not given and facts(component) is facts(component)


@pytest.mark.parametrize("output", CORPUS, ids=lambda o: o.id)
def test_real_sboms_with_a_snapshot_and_an_osv_export_keep_their_facts_and_verdicts(
    output: Any, tmp_path: Path
) -> None:
    """What syft, trivy and cdxgen wrote, with a snapshot that places every package and an OSV
    export with an advisory (with a fix) for one package in three, by its OSV ecosystem, name
    and version (Debian's source packages, npm scopes, PyPI's normal names): each package's
    facts are the same object on the next build, and the verdicts with the outcome cache, the
    second time from what the engine remembers, are those of an engine without it."""
    sbom = load_sbom_file(real_sbom(output))
    purls = sorted({c.purl for c in sbom.components if c.purl})
    vouched = {"name": "mirror", "kind": "generic", "url": "https://mirror.example",
               "hosting": "hosted"}  # fmt: skip
    snapshot_file = tmp_path / "facts.json"
    snapshot_file.write_bytes(
        orjson.dumps(
            {"packages": {p: {"repository": vouched, "published_at": "2020-01-01"} for p in purls}}
        )
    )
    exports = tmp_path / "osv"
    exports.mkdir()
    for number, purl in enumerate(purls[::3]):
        identity = identity_from_purl(purl)
        ecosystem, version = identity_ecosystem(identity), osv_version(identity)
        if ecosystem is None or version is None:
            continue
        affected = {"package": {"ecosystem": ecosystem, "name": osv_name(identity)},
                    "versions": [version],
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                                {"fixed": "99999"}]}]}  # fmt: skip
        record = {"id": f"GHSA-real-{number}", "modified": "2024-01-01T00:00:00Z",
                  "severity": [{"type": "CVSS_V3",
                                "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                  "affected": [affected]}  # fmt: skip
        (exports / f"{record['id']}.json").write_bytes(orjson.dumps(record))
    index = ReloadingOsvIndex([exports])
    facts = IntelFacts(snapshot=load_facts_snapshot(snapshot_file), osv=index)
    given = [facts(c) for c in sbom.components]
    assert all(facts(c) is f for c, f in zip(sbom.components, given, strict=True))
    if purls:
        assert any(f.osv for f in given)  # the export matched what the tool wrote
    # Apart from the advisories, the facts are those given without an OSV index.
    without = IntelFacts(snapshot=load_facts_snapshot(snapshot_file))
    for component, found in zip(sbom.components, given, strict=True):
        assert dataclasses.replace(found, osv=None) == without(component)
    policies = load_policies(None)
    plain = PolicyEngine(policies, DATA, outcome_cache_bytes=0)
    expected = plain.evaluate_sbom(
        sbom, facts=IntelFacts(snapshot=load_facts_snapshot(snapshot_file), osv=index)
    )
    cached = PolicyEngine(policies, DATA)
    assert cached.evaluate_sbom(sbom, facts=facts) == expected
    assert cached.evaluate_sbom(sbom, facts=facts) == expected
    if purls:
        assert any(f.policy == "vulnerability" for f in expected.violations)
