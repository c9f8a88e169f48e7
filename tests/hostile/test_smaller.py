"""Section 8: the smaller holes.

* A signed SBOM that lists nothing proves nothing: refused by default.
* SPDX packages with several purl references: every purl is judged, not only the first.
* CycloneDX `pedigree` ancestors, variants and descendants are walked.
* A name-only allow-list entry never exempts known malware (only an explicit version does).
* Referrers pagination is bounded in pages: a registry whose `Link: rel=next` leads back to
  itself or to ever-new pages is refused (the image's failure, not a fault: it is refused also
  under `faults: Allow`) after a bounded number of pages. No real registry does that, so a
  small Python front (fronts.py) answers the referrers API in front of the real one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from hostile import registry_cases
from hostile.content import (
    EMPTY_SBOM,
    Lab,
    component,
    cyclonedx,
    fake_digest,
    osv_record,
    spdx,
    spdx_package,
)
from hostile.corpus import (
    REFERRERS_PAGE_BOUND,
    SAYS,
    Case,
    Door,
    Outcome,
    Verdict,
    case_ids,
    check_unique,
    judge,
)
from hostile.doors import Webhook, in_parallel, review, selected
from hostile.fronts import Answer, RegistryFront, Seen
from hostile.sbom_cases import eval_case, one, quarantine
from support.oci_builder import OCI_INDEX, SIGSTORE_BUNDLE_V03, push_image

CTX_MAL = [osv_record("MAL-2022-7440", "PyPI", "ctx", versions=["0.2.2"])]
NPM_MAL = [osv_record("MAL-2026-8001", "npm", "evil-npm", versions=["1.0.0"])]
EVIL_Q = quarantine("pkg:pypi/evil-anc@1.0")
REQUESTS = "pkg:pypi/requests@2.32.3"


def two_purls(first: str, second: str, *, category: str = "PACKAGE-MANAGER") -> dict[str, Any]:
    return spdx(spdx_package("requests", "2.32.3", [first, second], category=category))


def with_pedigree(kind: str, inner: dict[str, Any]) -> list[dict[str, Any]]:
    return [component(REQUESTS, expression="Apache-2.0", pedigree={kind: [inner]})]


EVIL_ANCESTOR = component("pkg:pypi/evil-anc@1.0", expression="MIT")


def both(id: str, description: str, expect: Verdict, ref: str, **kwargs: Any) -> list[Case]:
    return registry_cases.both(8, id, description, expect, ref, **kwargs)


def registry_case(
    id: str, door: Door, description: str, expect: Verdict, ref: str, **kwargs: Any
) -> Case:
    return registry_cases.registry_case(8, id, door, description, expect, ref, **kwargs)


CASES = check_unique(
    [
        # -- an SBOM that lists nothing
        eval_case(
            "empty-cyclonedx",
            8,
            "CycloneDX with components: []",
            "denied",
            cyclonedx(),
            says=(SAYS["empty"],),
        ),
        eval_case(
            "empty-cyclonedx-no-components-key",
            8,
            "CycloneDX without a components key",
            "denied",
            {k: v for k, v in cyclonedx().items() if k != "components"},
            says=(SAYS["empty"],),
        ),
        eval_case(
            "empty-cyclonedx-only-subject",
            8,
            "CycloneDX naming only its own subject",
            "denied",
            cyclonedx(
                extra={
                    "metadata": {"component": {"type": "container", "name": "app", "version": "1"}}
                }
            ),
            says=(SAYS["empty"],),
        ),
        eval_case(
            "empty-spdx", 8, "SPDX with no packages", "denied", spdx(), says=(SAYS["empty"],)
        ),
        *both(
            "empty-cyclonedx-signed",
            "a signed CycloneDX SBOM with zero components",
            "denied",
            "{empty_cdx}",
            says=(SAYS["empty"],),
        ),
        registry_case(
            "empty-spdx-signed",
            "verify",
            "a signed SPDX document with no packages",
            "denied",
            "{empty_spdx}",
            says=(SAYS["empty"],),
        ),
        # -- SPDX packages with several purls
        eval_case(
            "spdx-second-purl-malware",
            8,
            "the second purl is known malware",
            "denied",
            two_purls(REQUESTS, "pkg:pypi/ctx@0.2.2"),
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "spdx-first-purl-malware",
            8,
            "the first purl is known malware",
            "denied",
            two_purls("pkg:pypi/ctx@0.2.2", REQUESTS),
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "spdx-second-purl-quarantined",
            8,
            "the second purl is quarantined",
            "denied",
            two_purls(REQUESTS, "pkg:pypi/evil-anc@1.0"),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "spdx-second-purl-unverified",
            8,
            "the second purl is in no trusted repository",
            "denied",
            two_purls(REQUESTS, "pkg:pypi/reqeusts@2.32.3"),
            vouch=[REQUESTS],
            policy="unverified",
        ),
        eval_case(
            "spdx-second-purl-malware-underscore-category",
            8,
            "PACKAGE_MANAGER (SPDX 2.3 spelling), second purl malware",
            "denied",
            two_purls(REQUESTS, "pkg:pypi/ctx@0.2.2", category="PACKAGE_MANAGER"),
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "spdx-two-clean-purls",
            8,
            "both purls clean (control)",
            "allowed",
            two_purls(REQUESTS, "pkg:pypi/idna@3.10"),
        ),
        # -- CycloneDX pedigree
        eval_case(
            "pedigree-ancestor-quarantined",
            8,
            "a quarantined pedigree ancestor",
            "denied",
            with_pedigree("ancestors", EVIL_ANCESTOR),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "pedigree-variant-quarantined",
            8,
            "a quarantined pedigree variant",
            "denied",
            with_pedigree("variants", EVIL_ANCESTOR),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "pedigree-descendant-quarantined",
            8,
            "a quarantined pedigree descendant",
            "denied",
            with_pedigree("descendants", EVIL_ANCESTOR),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "pedigree-ancestor-of-ancestor",
            8,
            "the ancestor of an ancestor",
            "denied",
            with_pedigree(
                "ancestors",
                component(
                    "pkg:pypi/mid-anc@1.0",
                    expression="MIT",
                    pedigree={"ancestors": [EVIL_ANCESTOR]},
                ),
            ),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "pedigree-ancestor-subcomponent",
            8,
            "a component inside an ancestor",
            "denied",
            with_pedigree(
                "ancestors",
                component("pkg:pypi/mid-anc@1.0", expression="MIT", components=[EVIL_ANCESTOR]),
            ),
            data=EVIL_Q,
            policy="quarantine",
        ),
        eval_case(
            "pedigree-ancestor-malware",
            8,
            "a pedigree ancestor that is known malware",
            "denied",
            with_pedigree("ancestors", component("pkg:pypi/ctx@0.2.2", expression="MIT")),
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "pedigree-clean",
            8,
            "a clean pedigree (control)",
            "allowed",
            with_pedigree("ancestors", component("pkg:pypi/idna@3.10", expression="MIT")),
        ),
        # -- allow-list entries and malware
        eval_case(
            "allow-name-only-keeps-malware",
            8,
            "python:ctx does not exempt MAL-2022-7440",
            "denied",
            one("pkg:pypi/ctx@0.2.2"),
            data={"allow": ["python:ctx"]},
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "allow-every-version-keeps-malware",
            8,
            "python:ctx:* does not exempt malware",
            "denied",
            one("pkg:pypi/ctx@0.2.2"),
            data={"allow": ["python:ctx:*"]},
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "allow-name-only-other-spelling-keeps-malware",
            8,
            "python:CTX does not exempt malware",
            "denied",
            one("pkg:pypi/ctx@0.2.2"),
            data={"allow": ["python:CTX"]},
            osv=CTX_MAL,
            policy="malware",
        ),
        eval_case(
            "allow-npm-name-only-keeps-malware",
            8,
            "npm:evil-npm does not exempt malware",
            "denied",
            one("pkg:npm/evil-npm@1.0.0"),
            data={"allow": ["npm:evil-npm"]},
            osv=NPM_MAL,
            policy="malware",
        ),
        eval_case(
            "allow-explicit-version-exempts",
            8,
            "python:ctx:0.2.2 is an explicit exemption (control)",
            "allowed",
            one("pkg:pypi/ctx@0.2.2"),
            data={"allow": ["python:ctx:0.2.2"]},
            osv=CTX_MAL,
        ),
        # -- referrers pagination that never ends (a Python front; under faults: Allow)
        *both(
            "pages-link-to-itself",
            "every referrers page links to itself, empty",
            "denied",
            "{self_empty}",
            pages="hostile/pages/self-empty",
        ),
        *both(
            "pages-ever-new-empty",
            "every referrers page links to a new one, empty",
            "denied",
            "{new_empty}",
            pages="hostile/pages/new-empty",
        ),
        registry_case(
            "pages-link-to-itself-one-referrer",
            "verify",
            "every page lists the same referrer and links to itself",
            "denied",
            "{self_one}",
            pages="hostile/pages/self-one",
        ),
        registry_case(
            "pages-ever-new-referrers",
            "verify",
            "every page lists a new referrer and links to a new page",
            "denied",
            "{new_one}",
            pages="hostile/pages/new-one",
        ),
        registry_case(
            "pages-unavailable-is-a-fault",
            "verify",
            "a referrers API answering 503 is a fault (control)",
            "fault",
            "{unavailable}",
            says=(SAYS["fault"],),
        ),
    ]
)


def _page(front: RegistryFront, seen: Seen) -> Answer | None:
    """The referrers API of the hostile/pages/* repositories; everything else is relayed."""
    path = seen.path.partition("?")[0]
    if "/referrers/" not in path or not path.startswith("/v2/hostile/pages/"):
        return None
    repo = path.removeprefix("/v2/").split("/referrers/")[0]
    mode = repo.rsplit("/", 1)[-1]
    if mode == "unavailable":
        return Answer(503, {"Content-Type": "application/json"}, b'{"errors":[]}')
    number = front.count("GET", path)
    manifests = []
    if mode.endswith("-one"):
        seed = repo if mode.startswith("self") else f"{repo}-{number}"
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": fake_digest(seed),
                "size": 512,
                "artifactType": SIGSTORE_BUNDLE_V03,
            }
        )
    following = path if mode.startswith("self") else f"{path}?n=1&last=page-{number}"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    headers = {"Content-Type": OCI_INDEX, "Link": f'<{following}>; rel="next"'}
    return Answer(200, headers, body.encode())


@pytest.fixture(scope="module")
def world(lab: Lab) -> Iterator[tuple[dict[str, str], RegistryFront, Path]]:
    values = {}
    empty = push_image(lab.plain, "hostile/smaller/empty-cdx", "v1", seed="hostile-empty-cdx")
    lab.sign(lab.plain, empty.digest_ref, EMPTY_SBOM)
    values["empty_cdx"] = empty.digest_ref
    empty_spdx = push_image(
        lab.plain, "hostile/smaller/empty-spdx", "v1", seed="hostile-empty-spdx"
    )
    lab.sign(lab.plain, empty_spdx.digest_ref, spdx(), predicate="spdxjson")
    values["empty_spdx"] = empty_spdx.digest_ref
    front = RegistryFront(lab.referrers, answer=_page)
    for key, mode in [
        ("self_empty", "self-empty"),
        ("new_empty", "new-empty"),
        ("self_one", "self-one"),
        ("new_one", "new-one"),
        ("unavailable", "unavailable"),
    ]:
        image = push_image(
            lab.referrers, f"hostile/pages/{mode}", "v1", seed=f"hostile-pages-{mode}"
        )
        values[key] = f"{front.host}/{image.repo}@{image.digest}"
    trust = lab.trust("smaller", images=["*/hostile/**"])
    try:
        yield values, front, trust
    finally:
        front.close()


@pytest.fixture(scope="module")
def verify_outcomes(
    request: pytest.FixtureRequest, lab: Lab, world: tuple[dict[str, str], RegistryFront, Path]
) -> dict[str, Future[Outcome]]:
    values, front, trust = world
    cases = [c for c in selected(request) if c.door == "verify"]
    jobs = {
        c.id: partial(registry_cases.run_verify, lab, c, values, [trust], insecure=[front.host])
        for c in cases
    }
    return in_parallel(jobs)


@pytest.fixture(scope="module")
def webhook(
    lab: Lab, hostile_work: Path, world: tuple[dict[str, str], RegistryFront, Path]
) -> Iterator[Webhook]:
    _, front, trust = world
    # faults: Allow: what the image's own registry content causes must deny all the same
    served = Webhook(
        hostile_work,
        lab.serve_settings([trust], insecure=[front.host], faults="Allow"),
        name="smaller",
    )
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_smaller(case: Case, request: pytest.FixtureRequest) -> None:
    if case.door == "eval":
        judge(case, request.getfixturevalue("eval_outcomes")[case.id].result())
        return
    values, front, _ = request.getfixturevalue("world")
    pages = f"/v2/{case.build['pages']}/referrers/" if case.build.get("pages") else None
    if case.door == "verify":
        outcome = request.getfixturevalue("verify_outcomes")[case.id].result()
        asked = front.count("GET", pages) if pages else 0  # the verify runs come first
    else:
        served: Webhook = request.getfixturevalue("webhook")
        before = front.count("GET", pages) if pages else 0
        outcome = served.validate(review(registry_cases.refs_of(case, values)))
        asked = front.count("GET", pages) - before if pages else 0
    if pages:
        outcome.figures["referrers pages asked"] = asked
    judge(case, outcome, values)
    assert asked <= REFERRERS_PAGE_BOUND, f"{asked} referrers pages asked: not bounded in pages"
