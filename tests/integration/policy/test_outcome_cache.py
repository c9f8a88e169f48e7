"""The outcome cache never changes a verdict (policy/outcomes.py), nor do the policies' sharing
of one engine (policy/_combined.py): the SBOMs real tools wrote,
evaluated by the bundled policies and policies that read the image and the workload, with and
without the cache, across images, give the same verdicts; and what changes the answer (a
policy, data, a fact) takes effect on the next evaluation."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from sbomgate.intel.model import PackageFacts
from sbomgate.policy import PolicyEngine, load_policy
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
    policies = [*load_policies(None), IMAGE_ALLOW, WORKLOAD_DENY, TERMINAL_ALLOW]
    # Also one engine per policy against the policies sharing one engine (policy/_combined.py).
    plain = PolicyEngine(policies, DATA, outcome_cache_bytes=0, combine=False)
    cached = PolicyEngine(policies, DATA)
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


def test_a_changed_fact_policy_or_data_takes_effect_at_once() -> None:
    component = Component(
        name="requests", version="2.0.0", purl="pkg:pypi/requests@2.0.0", purl_type="pypi",
        format="python", license="GPL-3.0-only",
    )  # fmt: skip
    sbom = Sbom(
        source="t.json", format="cyclonedx", spec_version="1.6", subject=None,
        components=(component,), document={"bomFormat": "CycloneDX", "specVersion": "1.6"},
    )  # fmt: skip
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
