"""Section 2: a verdict is reused only for exactly what it judged.

The same digest can sit in repositories that different trust policies cover (`dev/`:
allowUnsigned and a dev key; `prod/`: the prod key only), or in two repositories under one
trust policy, each holding its own signed SBOM (one clean, one with known malware). Whatever
was reviewed first (also as a dry run, also as another kind of object, also in the same
review), each reference is judged on its own. A trust policy or policy change takes effect:
the file-based configuration changes when `sbomgate serve` restarts, and each `sbomgate
verify` reads its own.

Webhook cases are scripted reviews against one `sbomgate serve`: the earlier steps are
preconditions (their verdicts are checked too), the last step is the case's verdict. Every
case has digests of its own, so the cases do not share cache entries with each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from hostile import registry_cases
from hostile.content import BAD_SBOM, CLEAN_SBOM, Lab, data_file
from hostile.corpus import Case, Outcome, Verdict, case_ids, check_unique, judge
from hostile.doors import Webhook, in_parallel, review, selected
from support.oci_builder import (
    CYCLONEDX_PREDICATE,
    CosignKey,
    OciClient,
    attach_referrer,
    cosign_keypair,
    in_toto_statement,
    push_buildkit_image,
    push_image,
    push_platform_manifest,
)


@dataclass(frozen=True)
class Step:
    refs: tuple[str, ...]  # placeholders: {dev}, {prod}, {a}, {b}
    expect: Verdict
    dry_run: bool = False
    kind: str = "Pod"


def scripted(
    id: str,
    description: str,
    layout: str,
    *steps: Step,
    says: tuple[str, ...] = (),
    policy: str | None = None,
) -> Case:
    """A webhook case: reviews in order; the last one's verdict is the case's."""
    return Case(
        id=f"s2-validate-{id}",
        section=2,
        description=description,
        door="validate",
        expect=steps[-1].expect,
        says=says,
        policy=policy,
        build={"layout": layout, "steps": steps},
    )


def together(
    id: str,
    description: str,
    layout: str,
    refs: Sequence[str],
    subject: str,
    expect: Verdict,
    **kwargs: Any,
) -> Case:
    """A verify case: one `sbomgate verify` naming several references; `subject`'s verdict."""
    return registry_cases.registry_case(
        2, id, "verify", description, expect, refs, subject=subject, layout=layout, **kwargs
    )


DEV_OK = Step(("{dev}",), "allowed")
DEV_DRY = Step(("{dev}",), "allowed", dry_run=True)
PROD_NO = Step(("{prod}",), "denied")
A_OK = Step(("{a}",), "allowed")
B_NO = Step(("{b}",), "denied")
MALWARE = ("pkg:pypi/ctx@0.2.2",)

CASES = check_unique(
    [
        # -- one digest, a permissive and a strict trust policy
        scripted(
            "dev-signed-then-prod",
            "dev/ (dev key) reviewed, then the same digest in prod/",
            "dev-signed",
            DEV_OK,
            PROD_NO,
            says=("/prod/",),
        ),
        scripted(
            "dev-dry-run-then-prod",
            "a dry run of dev/, then prod/",
            "dev-signed",
            DEV_DRY,
            PROD_NO,
            says=("/prod/",),
        ),
        scripted(
            "dev-unsigned-sbom-then-prod",
            "dev/ admits an unsigned SBOM referrer (allowUnsigned), then prod/",
            "dev-unsigned",
            DEV_OK,
            PROD_NO,
        ),
        scripted(
            "dev-dry-run-unsigned-then-prod",
            "a dry run of dev/'s unsigned SBOM, then prod/",
            "dev-unsigned",
            DEV_DRY,
            PROD_NO,
        ),
        scripted(
            "dev-buildkit-then-prod",
            "a BuildKit index (unsigned attestations) admitted in dev/, then prod/",
            "dev-buildkit",
            DEV_OK,
            PROD_NO,
        ),
        scripted(
            "dev-key-copied-to-prod",
            "prod/ holds a copy of the dev-key attestation",
            "dev-key-in-prod",
            DEV_OK,
            PROD_NO,
        ),
        scripted(
            "prod-dev-prod",
            "prod/ refused, dev/ admitted, prod/ again",
            "dev-signed",
            PROD_NO,
            DEV_OK,
            PROD_NO,
        ),
        scripted(
            "dev-deployment-then-prod-pod",
            "dev/ as a Deployment, then prod/ as a Pod",
            "dev-signed",
            Step(("{dev}",), "allowed", kind="Deployment"),
            PROD_NO,
        ),
        scripted(
            "dev-and-prod-in-one-review",
            "one Pod running the dev/ and the prod/ reference",
            "dev-signed",
            Step(("{dev}", "{prod}"), "denied"),
            says=("/prod/",),
        ),
        scripted(
            "prod-and-dev-in-one-review",
            "one Pod running the prod/ and the dev/ reference",
            "dev-unsigned",
            Step(("{prod}", "{dev}"), "denied"),
            says=("/prod/",),
        ),
        # -- one trust policy, two repositories with different signed SBOMs for one digest
        scripted(
            "clean-repo-then-malware-repo",
            "teams/a (clean SBOM), then teams/b (ctx 0.2.2)",
            "teams",
            A_OK,
            B_NO,
            says=MALWARE,
            policy="malware",
        ),
        scripted(
            "malware-repo-then-clean-repo",
            "teams/b refused, then teams/a is judged on its own",
            "teams",
            B_NO,
            A_OK,
        ),
        scripted(
            "clean-dry-run-then-malware-repo",
            "a dry run of teams/a, then teams/b",
            "teams",
            Step(("{a}",), "allowed", dry_run=True),
            B_NO,
            says=MALWARE,
            policy="malware",
        ),
        scripted(
            "both-repos-in-one-review",
            "one Pod running teams/a and teams/b",
            "teams",
            Step(("{a}", "{b}"), "denied"),
            says=MALWARE,
            policy="malware",
        ),
        # -- the same through one `sbomgate verify` (its images share one process and cache)
        together(
            "dev-then-prod",
            "verify dev/ and prod/ together: prod/ is refused",
            "dev-signed",
            ["{dev}", "{prod}"],
            "{prod}",
            "denied",
        ),
        together(
            "prod-then-dev",
            "verify prod/ and dev/ together: dev/ is admitted",
            "dev-signed",
            ["{prod}", "{dev}"],
            "{dev}",
            "allowed",
        ),
        together(
            "clean-then-malware",
            "verify teams/a and teams/b together: b is refused",
            "teams",
            ["{a}", "{b}"],
            "{b}",
            "denied",
            says=MALWARE,
            policy="malware",
        ),
        together(
            "malware-then-clean",
            "verify teams/b and teams/a together: a is admitted",
            "teams",
            ["{b}", "{a}"],
            "{a}",
            "allowed",
        ),
        # -- configuration changes take effect (serve restarted with new files; verify re-run)
        Case(
            "s2-validate-restart-trust-key-changed",
            2,
            "restarted with a trust policy for another key",
            "validate",
            "denied",
            build={"restart": "other-key"},
        ),
        Case(
            "s2-validate-restart-quarantine-added",
            2,
            "restarted with the image's package quarantined",
            "validate",
            "denied",
            policy="quarantine",
            build={"restart": "quarantine"},
        ),
        Case(
            "s2-validate-restart-reverted",
            2,
            "restarted with the first configuration again",
            "validate",
            "allowed",
            build={"restart": "first"},
        ),
        Case(
            "s2-verify-trust-key-changed",
            2,
            "verify again with a trust policy for another key",
            "verify",
            "denied",
            build={"restart": "other-key"},
        ),
        Case(
            "s2-verify-quarantine-added",
            2,
            "verify again with the image's package quarantined",
            "verify",
            "denied",
            policy="quarantine",
            build={"restart": "quarantine"},
        ),
    ]
)


@dataclass
class Keys:
    dev: CosignKey
    prod: CosignKey
    other: CosignKey


@pytest.fixture(scope="module")
def keys(hostile_work: Path) -> Keys:
    return Keys(
        *(
            cosign_keypair(hostile_work / "keys" / name, "ecdsa")
            for name in ("dev", "prod", "other")
        )
    )


def build_layout(lab: Lab, keys: Keys, layout: str, id: str) -> dict[str, str]:
    """Two references to one digest, pushed and attested as `layout` says."""
    server, seed = lab.plain, f"hostile-cache-{id}"
    if layout == "teams":
        a = push_image(server, f"teams/{id}/a", "v1", seed=seed)
        b = push_image(server, f"teams/{id}/b", "v1", seed=seed)
        assert a.digest == b.digest
        lab.sign(server, a.digest_ref, CLEAN_SBOM)
        lab.sign(server, b.digest_ref, BAD_SBOM)
        return {"a": a.digest_ref, "b": b.digest_ref}
    if layout == "dev-buildkit":
        # The statement names its subject itself, so both repositories get the same index.
        platform_digest, _, _ = push_platform_manifest(
            OciClient(server), f"dev/{id}/app", platform="linux/amd64", seed=seed
        )
        statement = in_toto_statement(CYCLONEDX_PREDICATE, CLEAN_SBOM, platform_digest)
        made = [
            push_buildkit_image(
                server,
                f"{where}/{id}/app",
                "v1",
                platforms=["linux/amd64"],
                sbom_statement=statement,
                seed=seed,
            )
            for where in ("dev", "prod")
        ]
    else:
        made = [
            push_image(server, f"{where}/{id}/app", "v1", seed=seed) for where in ("dev", "prod")
        ]
    dev, prod = made
    assert dev.digest == prod.digest
    if layout in ("dev-signed", "dev-key-in-prod"):
        lab.sign(server, dev.digest_ref, CLEAN_SBOM, key=keys.dev)
    if layout == "dev-key-in-prod":
        lab.sign(server, prod.digest_ref, CLEAN_SBOM, key=keys.dev)
    if layout == "dev-unsigned":
        attach_referrer(
            server,
            dev.repo,
            dev.digest,
            artifact_type="application/vnd.cyclonedx+json",
            blob=json.dumps(CLEAN_SBOM).encode(),
            blob_media_type="application/vnd.cyclonedx+json",
            fallback_tag=True,
        )
    return {"dev": dev.digest_ref, "prod": prod.digest_ref}


@pytest.fixture(scope="module")
def trust(lab: Lab, keys: Keys) -> list[Path]:
    return [
        lab.trust("dev", images=["*/dev/**"], keys=[keys.dev], allow_unsigned=True),
        lab.trust("prod", images=["*/prod/**"], keys=[keys.prod]),
        lab.trust("teams", images=["*/teams/**"]),
    ]


@pytest.fixture(scope="module")
def worlds(
    request: pytest.FixtureRequest, lab: Lab, keys: Keys
) -> dict[str, Future[dict[str, str]]]:
    """Each selected case's own references (its own digest)."""
    cases = [c for c in selected(request) if "layout" in c.build]
    jobs = {
        c.id: partial(build_layout, lab, keys, c.build["layout"], c.id.removeprefix("s2-"))
        for c in cases
    }
    return in_parallel(jobs, workers=2)


def verify_when_built(
    lab: Lab, case: Case, world: Future[dict[str, str]], trust: list[Path]
) -> Outcome:
    return registry_cases.run_verify(lab, case, world.result(), trust)


@pytest.fixture(scope="module")
def verify_outcomes(
    request: pytest.FixtureRequest, lab: Lab, worlds: dict[str, dict[str, str]], trust: list[Path]
) -> dict[str, Future[Outcome]]:
    cases = [c for c in selected(request) if c.door == "verify" and "layout" in c.build]
    return in_parallel(
        {c.id: partial(verify_when_built, lab, c, worlds[c.id], trust) for c in cases}
    )


@pytest.fixture(scope="module")
def webhook(lab: Lab, hostile_work: Path, trust: list[Path]) -> Iterator[Webhook]:
    served = Webhook(hostile_work, lab.serve_settings(trust), name="caches")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def restarts(lab: Lab, keys: Keys, hostile_work: Path) -> dict[str, Outcome]:
    """One image (signed, clean) judged under a sequence of configurations."""
    image = push_image(lab.plain, "teams/restart/app", "v1", seed="hostile-cache-restart")
    lab.sign(lab.plain, image.digest_ref, CLEAN_SBOM)
    first = [lab.trust("restart-first", images=["*/teams/**"])]
    other = [lab.trust("restart-other", images=["*/teams/**"], keys=[keys.other])]
    quarantined = data_file(
        hostile_work / "restart-quarantine.json",
        {"quarantine": [{"purl": "pkg:pypi/requests@2.32.3", "reason": "hostile corpus"}]},
    )
    outcomes: dict[str, Outcome] = {}
    for name, trust, data in [
        ("before", first, ()),
        ("other-key", other, ()),
        ("quarantine", first, (quarantined,)),
        ("first", first, ()),
    ]:
        served = Webhook(hostile_work, lab.serve_settings(trust, data=data), name=f"restart-{name}")
        try:
            outcomes[f"validate-{name}"] = served.validate(review([image.digest_ref]))
        finally:
            served.stop()
        verify = registry_cases.registry_case(2, name, "verify", name, "allowed", image.digest_ref)
        outcomes[f"verify-{name}"] = registry_cases.run_verify(
            lab, verify, {}, trust, data=data[0] if data else None
        )
    return outcomes


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_caches(case: Case, request: pytest.FixtureRequest) -> None:
    if "restart" in case.build:
        outcomes: dict[str, Outcome] = request.getfixturevalue("restarts")
        for door in ("validate", "verify"):
            assert outcomes[f"{door}-before"].verdict == "allowed", (
                f"precondition: the image is admitted under the first configuration\n"
                f"{outcomes[f'{door}-before'].detail}"
            )
        judge(case, outcomes[f"{case.door}-{case.build['restart']}"])
        return
    values = request.getfixturevalue("worlds")[case.id].result()
    if case.door == "verify":
        judge(case, request.getfixturevalue("verify_outcomes")[case.id].result(), values)
        return
    served: Webhook = request.getfixturevalue("webhook")
    steps: tuple[Step, ...] = case.build["steps"]
    for number, step in enumerate(steps, 1):
        refs = [ref.format_map(values) for ref in step.refs]
        namespace = "prod" if "{prod}" in step.refs else "dev"
        outcome = served.validate(
            review(refs, kind=step.kind, namespace=namespace, dry_run=step.dry_run)
        )
        if number < len(steps):
            assert outcome.verdict == step.expect, (
                f"{case.id}: step {number} ({', '.join(refs)}) was {outcome.verdict}, "
                f"expected {step.expect}: the scenario did not happen\n{outcome.detail}"
            )
    judge(case, outcome, values)
