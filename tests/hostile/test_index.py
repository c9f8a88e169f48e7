"""Section 1: everything runnable in an index is judged.

containerd picks a platform manifest by platform alone (first match wins), so an index that
pairs an unsigned image with a signed one for the same platform runs the unsigned one whatever
its annotations say. Only an entry on `unknown/unknown` whose media type (an OCI image
manifest) and annotation (`vnd.docker.reference.type: attestation-manifest`) agree is a
BuildKit attestation; every other entry is runnable and must pass on its own. Nested indexes
are refused (a runtime could pick an unverified image from one).

Each index here is composed as an attacker would (tests/support/oci_builder.py's client, on the real
registries), around platform manifests signed with the real cosign; the genuine BuildKit
layouts (attestation manifests on unknown/unknown) around signed images are the controls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from hostile import registry_cases
from hostile.content import (
    ATTESTATION_ANNOTATIONS,
    CLEAN_SBOM,
    DOCKER_MANIFEST,
    UNKNOWN_PLATFORM,
    Lab,
    descriptor,
    platform,
    push_docker_image,
    push_index,
    push_statement_manifest,
)
from hostile.corpus import Case, Door, Outcome, Verdict, case_ids, check_unique, judge
from hostile.doors import Webhook, in_parallel, review, selected
from support.oci_builder import (
    CYCLONEDX_PREDICATE,
    DOCKER_LIST,
    OCI_INDEX,
    OciClient,
    in_toto_statement,
    push_buildkit_image,
    push_platform_manifest,
)
from support.registry_servers import RegistryServer

REPO = "hostile/index"
DOORS: tuple[Door, ...] = ("verify", "validate")
AMD64 = platform("linux/amd64")
ARM64 = platform("linux/arm64/v8")


@dataclass
class Parts:
    """What one index is composed of: pushed on demand, signed images shared by all."""

    lab: Lab
    server: RegistryServer
    client: OciClient
    signed: dict[str, tuple[str, int]]
    seed: str

    def sign_new(self, name: str, plat: str) -> tuple[str, int]:
        if name not in self.signed:
            digest, manifest, _ = push_platform_manifest(
                self.client, REPO, platform=plat, seed=f"hostile-index-{name}"
            )
            ref = f"{self.server.host}/{REPO}@{digest}"
            self.lab.sign(self.server, ref, CLEAN_SBOM, legacy=self.server is self.lab.plain)
            self.signed[name] = (digest, len(manifest))
        return self.signed[name]

    def signed_amd64(self) -> dict[str, Any]:
        return descriptor(*self.sign_new("signed-amd64", "linux/amd64"), platform=AMD64)

    def signed_amd64_b(self) -> dict[str, Any]:
        return descriptor(*self.sign_new("signed-amd64-b", "linux/amd64"), platform=AMD64)

    def signed_arm64(self) -> dict[str, Any]:
        return descriptor(*self.sign_new("signed-arm64", "linux/arm64/v8"), platform=ARM64)

    def unsigned(
        self, plat: dict[str, str] | None, annotations: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], str]:
        digest, manifest, _ = push_platform_manifest(
            self.client, REPO, platform="linux/amd64", seed=f"{self.seed}-unsigned"
        )
        return descriptor(digest, len(manifest), platform=plat, annotations=annotations), digest

    def unsigned_docker(
        self, plat: dict[str, str], annotations: dict[str, str] | None
    ) -> tuple[dict[str, Any], str]:
        digest, size = push_docker_image(self.client, REPO, f"{self.seed}-docker")
        return descriptor(
            digest, size, DOCKER_MANIFEST, platform=plat, annotations=annotations
        ), digest

    def statement(
        self, plat: dict[str, str], annotations: dict[str, str]
    ) -> tuple[dict[str, Any], str]:
        statement = in_toto_statement(
            CYCLONEDX_PREDICATE, CLEAN_SBOM, self.signed_amd64()["digest"]
        )
        digest, size = push_statement_manifest(self.client, REPO, statement)
        return descriptor(digest, size, platform=plat, annotations=annotations), digest

    def nested(
        self, plat: dict[str, str] | None, annotations: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], str]:
        inner, _ = self.unsigned(AMD64)
        digest, size = push_index(self.client, REPO, f"{self.seed}-inner", [inner])
        return descriptor(digest, size, OCI_INDEX, platform=plat, annotations=annotations), digest


# An attacker's index: entries made from Parts; returns (entries, the entry that must fail).
Compose = Callable[[Parts], tuple[list[dict[str, Any]], str | None]]
BUILDKIT_ATT = ATTESTATION_ANNOTATIONS


def first(
    entry: tuple[dict[str, Any], str], *others: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    return [entry[0], *others], entry[1]


def last(
    entry: tuple[dict[str, Any], str], *others: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    return [*others, entry[0]], entry[1]


INDEXES: dict[str, tuple[str, Verdict, Compose]] = {
    "annotated-amd64-first": (
        "an unsigned linux/amd64 image annotated as an attestation, before the signed one",
        "denied",
        lambda p: first(p.unsigned(AMD64, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "annotated-amd64-second": (
        "the signed image first, the annotated unsigned linux/amd64 one second",
        "denied",
        lambda p: last(p.unsigned(AMD64, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "annotated-no-platform": (
        "an unsigned image annotated as an attestation, with no platform",
        "denied",
        lambda p: first(p.unsigned(None, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "annotated-arm64-variant": (
        "an unsigned linux/arm64/v8 image annotated as an attestation",
        "denied",
        lambda p: last(p.unsigned(ARM64, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "annotated-with-reference-digest": (
        "annotated exactly as BuildKit does (reference digest too), but on linux/amd64",
        "denied",
        lambda p: first(
            p.unsigned(
                AMD64, {**BUILDKIT_ATT, "vnd.docker.reference.digest": p.signed_amd64()["digest"]}
            ),
            p.signed_amd64(),
        ),
    ),
    "attestation-content-on-amd64": (
        "a real attestation manifest (in-toto layers) listed on linux/amd64",
        "denied",
        lambda p: first(p.statement(AMD64, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "unknown-platform-docker-media-type": (
        "unknown/unknown and annotated, but a Docker v2 image manifest",
        "denied",
        lambda p: last(p.unsigned_docker(UNKNOWN_PLATFORM, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "unknown-platform-no-annotation": (
        "unknown/unknown without the attestation annotation",
        "denied",
        lambda p: last(p.unsigned(UNKNOWN_PLATFORM), p.signed_amd64()),
    ),
    "unknown-platform-other-annotation": (
        "unknown/unknown annotated with another reference type",
        "denied",
        lambda p: last(
            p.unsigned(UNKNOWN_PLATFORM, {"vnd.docker.reference.type": "signature"}),
            p.signed_amd64(),
        ),
    ),
    "same-platform-unsigned-second": (
        "two runnable linux/amd64 entries, the second unsigned",
        "denied",
        lambda p: last(p.unsigned(AMD64), p.signed_amd64()),
    ),
    "same-platform-unsigned-first": (
        "two runnable linux/amd64 entries, the first unsigned",
        "denied",
        lambda p: first(p.unsigned(AMD64), p.signed_amd64()),
    ),
    "windows-entry-unsigned": (
        "an unsigned windows/amd64 entry next to a signed linux one",
        "denied",
        lambda p: last(p.unsigned(platform("windows/amd64")), p.signed_amd64()),
    ),
    "annotated-nested-index": (
        "a nested index annotated as an attestation on unknown/unknown",
        "denied",
        lambda p: last(p.nested(UNKNOWN_PLATFORM, BUILDKIT_ATT), p.signed_amd64()),
    ),
    "nested-index": (
        "a nested index on linux/amd64",
        "denied",
        lambda p: last(p.nested(AMD64), p.signed_amd64()),
    ),
    "nested-index-no-platform": (
        "a nested index with no platform, listed first",
        "denied",
        lambda p: first(p.nested(None), p.signed_amd64()),
    ),
    # controls
    "same-platform-both-signed": (
        "two runnable linux/amd64 entries, both signed (control)",
        "allowed",
        lambda p: ([p.signed_amd64(), p.signed_amd64_b()], None),
    ),
    "multi-arch-signed": (
        "linux/amd64 and linux/arm64, both signed (control)",
        "allowed",
        lambda p: ([p.signed_amd64(), p.signed_arm64()], None),
    ),
}


def index_case(door: Door, id: str, description: str, expect: Verdict) -> Case:
    """The index `id` through one door; a denial must name the entry that fails."""
    return registry_cases.registry_case(
        1,
        id,
        door,
        description,
        expect,
        f"{{{id}}}",
        says=(f"{{{id}-refused}}",) if expect == "denied" else (),
    )


BUILDKIT = {
    "buildkit-platforms-signed": (
        "a genuine BuildKit index, each platform manifest signed (control)",
        "allowed",
    ),
    "buildkit-index-signed": ("a genuine BuildKit index, the index signed (control)", "allowed"),
    "buildkit-one-platform-unsigned": (
        "a genuine BuildKit index, linux/arm64 not signed",
        "denied",
    ),
}
REFERRERS = {
    "referrers-annotated-amd64-first": (
        "OCI referrers registry: an annotated unsigned linux/amd64 image first",
        "denied",
    ),
    "referrers-buildkit-platforms-signed": (
        "OCI referrers registry: a genuine BuildKit index, platforms signed (control)",
        "allowed",
    ),
}

CASES = check_unique(
    [
        *(
            index_case(door, id, description, expect)
            for id, (description, expect, _) in INDEXES.items()
            for door in DOORS
        ),
        *(
            index_case(door, id, description, expect)
            for id, (description, expect) in {**BUILDKIT, **REFERRERS}.items()
            for door in DOORS
        ),
        registry_cases.registry_case(
            1,
            "single-signed-manifest",
            "verify",
            "the signed linux/amd64 image on its own (control)",
            "allowed",
            "{single-signed-manifest}",
        ),
        registry_cases.registry_case(
            1,
            "docker-list-annotated-amd64",
            "verify",
            "a Docker manifest list: an annotated unsigned Docker image first",
            "denied",
            "{docker-list-annotated-amd64}",
            says=("{docker-list-annotated-amd64-refused}",),
        ),
    ]
)


def _buildkit(lab: Lab, server: RegistryServer, name: str, sign: str) -> dict[str, str]:
    """A BuildKit-shaped index (tests/support/oci_builder.py), signed as `sign` says."""
    statement = in_toto_statement(CYCLONEDX_PREDICATE, CLEAN_SBOM)
    image = push_buildkit_image(
        server,
        REPO,
        name,
        platforms=["linux/amd64", "linux/arm64"],
        sbom_statement=statement,
        seed=f"hostile-{name}",
    )
    signed = {
        "index": [image.digest_ref],
        "platforms": [image.platform_ref("linux/amd64"), image.platform_ref("linux/arm64")],
        "amd64": [image.platform_ref("linux/amd64")],
    }[sign]
    for ref in signed:
        lab.sign(server, ref, CLEAN_SBOM, legacy=server is lab.plain)
    return {name: image.digest_ref, f"{name}-refused": image.platform_digests["linux/arm64"]}


@pytest.fixture(scope="module")
def world(lab: Lab) -> dict[str, str]:
    values: dict[str, str] = {}
    plain = Parts(lab, lab.plain, lab.client(lab.plain), {}, "")
    for id, (_, _, compose) in INDEXES.items():
        plain.seed = f"hostile-index-{id}"
        entries, refused = compose(plain)
        digest, _ = push_index(plain.client, REPO, id, entries)
        values[id] = f"{lab.plain.host}/{REPO}@{digest}"
        values[f"{id}-refused"] = refused or ""
    values["single-signed-manifest"] = f"{lab.plain.host}/{REPO}@{plain.signed_amd64()['digest']}"
    plain.seed = "hostile-index-docker-list"
    entries, refused = first(plain.unsigned_docker(AMD64, BUILDKIT_ATT), plain.signed_amd64())
    digest, _ = push_index(plain.client, REPO, "docker-list", entries, media_type=DOCKER_LIST)
    values["docker-list-annotated-amd64"] = f"{lab.plain.host}/{REPO}@{digest}"
    values["docker-list-annotated-amd64-refused"] = refused
    values.update(_buildkit(lab, lab.plain, "buildkit-platforms-signed", "platforms"))
    values.update(_buildkit(lab, lab.plain, "buildkit-index-signed", "index"))
    values.update(_buildkit(lab, lab.plain, "buildkit-one-platform-unsigned", "amd64"))
    values.update(_buildkit(lab, lab.referrers, "referrers-buildkit-platforms-signed", "platforms"))
    on_referrers = Parts(
        lab, lab.referrers, lab.client(lab.referrers), {}, "hostile-index-referrers"
    )
    entries, refused = first(
        on_referrers.unsigned(AMD64, BUILDKIT_ATT), on_referrers.signed_amd64()
    )
    digest, _ = push_index(on_referrers.client, REPO, "referrers-annotated", entries)
    values["referrers-annotated-amd64-first"] = f"{lab.referrers.host}/{REPO}@{digest}"
    values["referrers-annotated-amd64-first-refused"] = refused or ""
    return values


@pytest.fixture(scope="module")
def trust(lab: Lab) -> Path:
    return lab.trust("index", images=["*/hostile/**"])


@pytest.fixture(scope="module")
def verify_outcomes(
    request: pytest.FixtureRequest, lab: Lab, world: dict[str, str], trust: Path
) -> dict[str, Future[Outcome]]:
    cases = [c for c in selected(request) if c.door == "verify"]
    return in_parallel(
        {c.id: partial(registry_cases.run_verify, lab, c, world, [trust]) for c in cases}
    )


@pytest.fixture(scope="module")
def webhook(lab: Lab, hostile_work: Path, trust: Path) -> Iterator[Webhook]:
    served = Webhook(hostile_work, lab.serve_settings([trust]), name="index")
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_index(case: Case, request: pytest.FixtureRequest, world: dict[str, str]) -> None:
    if case.door == "verify":
        outcome = request.getfixturevalue("verify_outcomes")[case.id].result()
    else:
        served: Webhook = request.getfixturevalue("webhook")
        outcome = served.validate(review(registry_cases.refs_of(case, world)))
    judge(case, outcome, world)
