"""A cached answer is reused only for exactly what it judged (issue 12, section 2).

The same digest in two repositories, under two trust policies or with two different signed
SBOMs, is judged twice; a change of trust policy or policy set is a different key. Real
registry, real cosign; the keys are written down in sbomgate/cache_keys.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbomgate._internal.cache import DigestCache
from sbomgate.admission import AdmissionController
from sbomgate.attest import AttestationVerifier, load_trust_policies
from sbomgate.cache_keys import reads_workload
from sbomgate.config import ServeConfig
from sbomgate.imagecheck import ImageChecker
from sbomgate.registry import RegistryAccess, RegistryClient
from sbomgate.runtime import build_controller
from sbomgate.serving.metrics import Metrics
from support.images import attested_image
from support.oci_builder import (
    CosignKey,
    PushedImage,
    attach_referrer,
    cosign_keypair,
    push_image,
)
from support.paths import BAD_SBOM as BAD
from support.paths import FACTS
from support.paths import GOOD_SBOM as GOOD
from support.registry_servers import RegistryServer
from support.trust import trust_file
from support.workloads import answer, deployment, review


@pytest.fixture(scope="module")
def same_digest(plain_registry: RegistryServer, key: CosignKey, work: Path) -> dict[str, Any]:
    """One digest in four repositories: dev (an unsigned clean SBOM), prod (a signed SBOM
    with refused packages), a (signed clean), b (signed with refused packages)."""
    seed = "cache-keys-same-content"
    dev = push_image(plain_registry, "cache/dev/app", "v1", seed=seed)
    attach_referrer(
        plain_registry,
        dev.repo,
        dev.digest,
        artifact_type="application/vnd.cyclonedx+json",
        blob=GOOD.read_bytes(),
        blob_media_type="application/vnd.cyclonedx+json",
        fallback_tag=True,
    )
    prod = attested_image(
        plain_registry, "cache/prod/app", BAD, key, work, seed=seed, new_bundle_format=False
    )
    a = attested_image(
        plain_registry, "cache/a/app", GOOD, key, work, seed=seed, new_bundle_format=False
    )
    b = attested_image(
        plain_registry, "cache/b/app", BAD, key, work, seed=seed, new_bundle_format=False
    )
    assert dev.digest == prod.digest == a.digest == b.digest
    return {"dev": dev, "prod": prod, "a": a, "b": b}


def _trust_dir(server: RegistryServer, key: CosignKey, work: Path) -> Path:
    directory = work / "trust-dev-prod"
    if directory.exists():
        return directory
    directory.mkdir()
    dev = {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "dev"},
        "spec": {"images": [f"{server.host}/cache/dev/**"], "allowUnsigned": True},
    }
    prod = {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "strict"},
        "spec": {
            "images": [
                f"{server.host}/cache/prod/**",
                f"{server.host}/cache/a/**",
                f"{server.host}/cache/b/**",
            ],
            "authorities": [{"name": "ci", "key": {"file": str(key.public_key_path)}}],
        },
    }
    (directory / "dev.yaml").write_text(json.dumps(dev))
    (directory / "strict.yaml").write_text(json.dumps(prod))
    return directory


@pytest.fixture
def controller(plain_registry: RegistryServer, key: CosignKey, work: Path) -> Iterator[Any]:
    config = ServeConfig(
        trust_policies=(_trust_dir(plain_registry, key, work),),
        facts=FACTS,
        allowed_registries=(plain_registry.host,),
        insecure_registries=(plain_registry.host,),
    )
    made = build_controller(config, Metrics())
    yield made
    made.close()
    made.checker.client.close()


def _decide(controller: AdmissionController, image: PushedImage, *, dry_run: bool = False):
    # By digest, as the mutating webhook pins it (the verdict is what is cached by it).
    return answer(
        controller, review(deployment(image.digest_ref, namespace="team"), dry_run=dry_run)
    )


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_permissive_repository_does_not_vouch_for_a_strict_one(
    controller: AdmissionController, same_digest: dict[str, PushedImage], dry_run: bool
) -> None:
    dev = _decide(controller, same_digest["dev"], dry_run=dry_run)
    assert dev["allowed"], dev["status"]["message"]
    prod = _decide(controller, same_digest["prod"])
    assert not prod["allowed"], "the dev verdict was reused for prod"
    message = prod["status"]["message"]
    assert "cache/prod/app" in message and "policy" in message


@pytest.mark.parametrize("order", ["clean-first", "refused-first"])
def test_two_repositories_with_different_signed_sboms_are_judged_apart(
    controller: AdmissionController, same_digest: dict[str, PushedImage], order: str
) -> None:
    names = ["a", "b"] if order == "clean-first" else ["b", "a"]
    answers = {name: _decide(controller, same_digest[name]) for name in names}
    assert answers["a"]["allowed"], answers["a"]
    assert not answers["b"]["allowed"], "the clean repository's verdict was reused"
    # Asked again (from the caches now): still apart.
    assert _decide(controller, same_digest["a"])["allowed"]
    assert not _decide(controller, same_digest["b"])["allowed"]


def test_a_verdict_is_not_reused_across_the_same_image_in_a_pod_and_a_dry_run(
    controller: AdmissionController, same_digest: dict[str, PushedImage]
) -> None:
    assert not _decide(controller, same_digest["prod"], dry_run=True)["allowed"]
    assert _decide(controller, same_digest["dev"])["allowed"]
    assert not _decide(controller, same_digest["prod"])["allowed"]


def test_an_image_check_is_not_reused_under_another_trust_policy(
    plain_registry: RegistryServer, same_digest: dict[str, PushedImage], key: CosignKey, work: Path
) -> None:
    """One process-wide image cache, two policy sets: what key K verified does not count for
    a trust policy that wants key L, and the entry of K is kept for K."""
    other = cosign_keypair(work / "other-key", "ecdsa")
    shared: DigestCache[Any] = DigestCache()
    access = RegistryAccess(
        allowed=(plain_registry.host,), insecure=frozenset({plain_registry.host})
    )
    client = RegistryClient(access, timeout=20)
    try:
        checkers = {
            name: ImageChecker(
                client,
                AttestationVerifier(
                    load_trust_policies([trust_file(work / name, keys=[k], name="same-name")])
                ),
                shared,
            )
            for name, k in (("k", key), ("l", other))
        }
        ref = same_digest["a"].ref
        assert checkers["k"].check(ref).report.ok
        refused = checkers["l"].check(ref)
        assert not refused.report.ok and not refused.cached
        again = checkers["k"].check(ref)
        assert again.report.ok and again.cached
    finally:
        client.close()


def _without_uid(response: Any) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "uid"}


def test_a_review_from_the_caches_alone_is_the_one_a_thread_gives(
    controller: AdmissionController, same_digest: dict[str, PushedImage]
) -> None:
    """What the event loop answers (`review_cached`, serving/app.py) needs the image's check
    and verdict cached by digest: before, it gives up and counts nothing; after, its answer is
    the thread's. A tag, or the same digest in a repository not judged yet, needs the registry.
    """
    metrics = controller.observer
    assert isinstance(metrics, Metrics)

    def answered() -> float:
        samples = metrics.registry.collect()
        return sum(s.value for m in samples for s in m.samples if s.name.endswith("_total")
                   and m.name == "sbomgate_admission_requests")  # fmt: skip

    for name in ("a", "b"):
        ref = same_digest[name].digest_ref
        before = answered()
        assert controller.review_cached(review(deployment(ref))) is None
        assert answered() == before, "a review given up on was counted"
        thread = _decide(controller, same_digest[name])
        body = review(deployment(ref))
        loop = controller.review_cached(body)
        assert loop is not None and loop["response"]["uid"] == body["request"]["uid"]
        assert _without_uid(loop["response"]) == _without_uid(thread)
        assert answered() == before + 2
    assert not thread["allowed"]  # b: refused from the caches too
    tag = same_digest["a"].ref
    assert "@" not in tag and controller.review_cached(review(deployment(tag))) is None
    # prod: the same digest as a, under another repository and trust policy.
    assert controller.review_cached(review(deployment(same_digest["prod"].digest_ref))) is None
    skipped = controller.review_cached(review(deployment(tag, namespace="kube-system")))
    assert skipped is not None and skipped["response"]["allowed"]


def test_policies_reading_the_workload_are_found_conservatively() -> None:
    keyed = 'package x\nmatch if input.v0.package.name == "a"\n# input.v0.workload in a comment\n'
    assert not reads_workload(keyed)
    # The subject flag is keyed through the documents (the bundled policies read it).
    assert not reads_workload("match if input.v0.image_subject == true\n")
    assert reads_workload("match if input.v0.image_subjectx\n")
    for source in (
        'match if input.v0.workload.namespace == "x"',
        "match if is_object(input.v0)",
        'match if input["v0"]["workload"]',
        "match if walk(input, _)",
        'match if x := input.v0[k]; k == "workload"',
        'match if input.v0.package.name == "#"; input.v0.image == input.v0[concat("", ["work", "load"])]',
    ):
        assert reads_workload(source), source
