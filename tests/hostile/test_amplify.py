"""Section 3: no amplification, and no attacker-made faults.

* One attestation blob listed 24 times (in a `.att` manifest; by 24 referrers) is fetched once
  per image, and the server's peak RSS stays far below what 24 copies would take (VmHWM of the
  `sbomgate serve` process, /proc/<pid>/status; the CLI's own peak from wait4).
* An image no trust policy covers is refused before any of its attestations is downloaded
  (blob GETs counted in distribution's access log, or by a counting front for the referrers
  registry, which keeps no log).
* What the image's own registry content causes (a 53 MiB junk blob listed 40 times, too many
  attestations, descriptors that lie, blobs that are not there) is the image's failure, never a
  fault: refused also under `faults: Allow`, where a real fault (a 503) is admitted (control).
* 48 concurrent reviews against a registry that answers after 5 s (toxiproxy): every answer
  comes before the webhook's 10 s timeout, and /healthz answers within 1 s meanwhile.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from hostile import registry_cases
from hostile.content import (
    CLEAN_SBOM,
    Lab,
    cyclonedx,
    dsse_layer,
    fake_digest,
    layer_of,
    push_att_tag,
    registry_gets,
)
from hostile.corpus import (
    HEALTHZ_BOUND,
    RSS_GROWTH_BOUND_MB,
    SAYS,
    WEBHOOK_TIMEOUT,
    Case,
    Door,
    Outcome,
    Verdict,
    case_ids,
    check_unique,
    judge,
)
from hostile.doors import Webhook, in_parallel, review, run_cli, selected
from hostile.fronts import Answer, RegistryFront, Seen
from support.oci_builder import (
    OCI_MANIFEST,
    OciClient,
    canonical_json,
    cosign_tag,
    push_image,
    sha256_digest,
)
from support.registry_servers import RegistryServer
from support.toxiproxy import Toxiproxy

PADDING = 16 << 20  # bytes of padding in the signed SBOM: a ~21 MB attestation blob
JUNK = 53 << 20
SLOW = 5000  # ms: every registry answer comes this late (two in a row exceed the deadline)
CONCURRENT = 48


def one_door(
    id: str, door: Door, description: str, expect: Verdict, ref: str, **build: Any
) -> Case:
    return registry_cases.registry_case(3, id, door, description, expect, ref, **build)


def both(id: str, description: str, expect: Verdict, ref: str, **build: Any) -> list[Case]:
    return registry_cases.both(3, id, description, expect, ref, **build)


NOT_COVERED = (SAYS["uncovered"],)

CASES = check_unique(
    [
        # -- one blob, many listings: fetched once, memory bounded
        *both(
            "att-blob-listed-24-times",
            "a signed ~21 MB attestation listed 24 times in the .att manifest",
            "allowed",
            "{att24}",
            blob="att24",
            rss=True,
        ),
        *both(
            "referrers-blob-listed-24-times",
            "24 referrers sharing one signed ~21 MB bundle layer",
            "allowed",
            "{ref24}",
            blob="ref24",
            rss=True,
        ),
        # -- coverage before download
        *both(
            "uncovered-att-not-downloaded",
            "an image no trust policy covers, with a .att attestation",
            "denied",
            "{uncovered}",
            says=NOT_COVERED,
            none_from="uncovered",
        ),
        *both(
            "uncovered-referrers-not-downloaded",
            "an image no trust policy covers, with a referrer bundle",
            "denied",
            "{uncovered_ref}",
            says=NOT_COVERED,
            none_from="uncovered_ref",
        ),
        # -- the image's own content is the image's failure (the webhook runs with faults: Allow)
        *both(
            "junk-53mib-listed-40-times",
            "an unsigned image whose .att lists a 53 MiB junk blob 40 times",
            "denied",
            "{junk40}",
            rss=True,
        ),
        *both(
            "junk-70-distinct-layers",
            "70 distinct junk attestation layers (more than 64)",
            "denied",
            "{junk70}",
        ),
        one_door(
            "descriptor-over-the-blob-cap",
            "validate",
            "a .att layer declared 129 MiB (over the 128 MiB cap)",
            "denied",
            "{too_big}",
        ),
        one_door(
            "descriptor-size-lies",
            "validate",
            "a .att layer declared 100 bytes whose blob is 53 MiB",
            "denied",
            "{size_lies}",
        ),
        one_door(
            "descriptor-blob-missing",
            "validate",
            "a .att layer whose blob the registry does not have",
            "denied",
            "{missing}",
        ),
        one_door(
            "junk-referrers-listed-40-times",
            "validate",
            "40 referrers sharing one 53 MiB junk layer",
            "denied",
            "{junk_ref40}",
        ),
        # -- a real fault, for contrast: admitted under faults: Allow, a fault for the CLI
        one_door(
            "registry-503-admitted-under-faults-allow",
            "validate",
            "a registry answering 503 (control: faults: Allow)",
            "allowed",
            "{unavailable}",
        ),
        one_door(
            "registry-503-is-a-fault",
            "verify",
            "a registry answering 503 (control)",
            "fault",
            "{unavailable}",
            says=(SAYS["fault"],),
        ),
        # -- a slow registry, many reviews at once
        one_door(
            "slow-registry-48-reviews",
            "validate",
            f"{CONCURRENT} concurrent reviews, each of its own image, every answer 5 s late",
            "fault",
            "{slow}",
            concurrent="distinct",
        ),
        one_door(
            "slow-registry-48-reviews-4-images-each",
            "validate",
            f"{CONCURRENT} concurrent reviews of 4 images each",
            "fault",
            "{slow}",
            concurrent="four",
        ),
        one_door(
            "slow-registry-48-reviews-one-image",
            "validate",
            f"{CONCURRENT} concurrent reviews of the same image",
            "fault",
            "{slow}",
            concurrent="same",
        ),
    ]
)


# --------------------------------------------------------------------------- content


def _padded_sbom() -> dict[str, Any]:
    return cyclonedx(
        *CLEAN_SBOM["components"],
        extra={"properties": [{"name": "hostile:padding", "value": "A" * PADDING}]},
    )


def _referrer_copies(
    lab: Lab, repo: str, subject: str, copies: int, layer: dict[str, Any] | None
) -> str:
    """`copies` referrers of `subject` sharing one layer: cosign's own (layer None), copied
    with a distinguishing annotation, or a given (junk) layer."""
    client = lab.client(lab.referrers)
    if layer is None:
        listed = client.referrers(repo, subject).json()["manifests"]
        raw, _, _ = client.get_manifest(repo, listed[0]["digest"])
        template = json.loads(raw)
    else:
        empty = client.push_blob(repo, b"{}", "application/vnd.oci.empty.v1+json")
        subject_raw, subject_type, _ = client.get_manifest(repo, subject)
        template = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": empty,
            "layers": [layer],
            "subject": {"mediaType": subject_type, "digest": subject, "size": len(subject_raw)},
        }
    for n in range(copies - (1 if layer is None else 0)):
        manifest = {
            **template,
            "annotations": {**template.get("annotations", {}), "hostile.copy": str(n)},
        }
        raw = canonical_json(manifest)
        client.put_manifest(repo, sha256_digest(raw), raw, OCI_MANIFEST)
    return str(template["layers"][0]["digest"])


@dataclass
class World:
    values: dict[str, str]
    blobs: dict[str, tuple[RegistryServer | RegistryFront, str]]  # case key -> where, path
    front: RegistryFront  # counting front of the referrers registry
    trust: Path


@pytest.fixture(scope="module")
def world(lab: Lab) -> Iterator[World]:
    plain, client = lab.plain, lab.client(lab.plain)
    front = RegistryFront(lab.referrers, answer=_unavailable)
    values: dict[str, str] = {}
    blobs: dict[str, tuple[RegistryServer | RegistryFront, str]] = {}
    padded = _padded_sbom()

    # A signed attestation, then its .att manifest rewritten to list its layer 24 times.
    image = push_image(plain, "hostile/amplify/att24", "v1", seed="hostile-amplify-att24")
    lab.sign(plain, image.digest_ref, padded)
    tag = cosign_tag(image.digest, "att")
    layer = layer_of(client, image.repo, tag)
    push_att_tag(client, image.repo, image.digest, [layer] * 24)
    values["att24"] = image.digest_ref
    blobs["att24"] = (plain, f"/v2/{image.repo}/blobs/{layer['digest']}")

    # 24 referrers (cosign v3 bundles) sharing one layer, counted through the front.
    image = push_image(lab.referrers, "hostile/amplify/ref24", "v1", seed="hostile-amplify-ref24")
    lab.sign(lab.referrers, image.digest_ref, padded, legacy=False)
    shared = _referrer_copies(lab, image.repo, image.digest, 24, None)
    values["ref24"] = f"{front.host}/{image.repo}@{image.digest}"
    blobs["ref24"] = (front, f"/v2/{image.repo}/blobs/{shared}")

    # Signed images no trust policy covers (outside hostile/).
    image = push_image(plain, "hostile-uncovered/app", "v1", seed="hostile-uncovered")
    lab.sign(plain, image.digest_ref, CLEAN_SBOM)
    values["uncovered"] = image.digest_ref
    blobs["uncovered"] = (plain, f"/v2/{image.repo}/blobs/")
    image = push_image(lab.referrers, "hostile-uncovered/app", "v1", seed="hostile-uncovered-ref")
    lab.sign(lab.referrers, image.digest_ref, CLEAN_SBOM, legacy=False)
    values["uncovered_ref"] = f"{front.host}/{image.repo}@{image.digest}"
    blobs["uncovered_ref"] = (front, f"/v2/{image.repo}/blobs/")

    # Unsigned images whose attestations are junk, too many, or lie. distribution refuses a
    # manifest naming blobs it does not have, go-containerregistry's registry takes it (as a
    # registry an attacker runs would): the descriptors that lie go there.
    junk = client.push_blob("hostile/junk", os.urandom(JUNK), "application/octet-stream")
    for key, layers in {
        "junk40": [dsse_layer(junk["digest"], JUNK)] * 40,
        "junk70": [dsse_layer(**_small_junk(client, n)) for n in range(70)],
    }.items():
        image = push_image(plain, "hostile/junk", key, seed=f"hostile-junk-{key}")
        push_att_tag(client, "hostile/junk", image.digest, layers)
        values[key] = image.digest_ref
    liar = lab.client(lab.referrers)
    big = liar.push_blob("hostile/junk-lies", os.urandom(JUNK), "application/octet-stream")
    for key, layers in {
        "too_big": [dsse_layer(fake_digest("too-big"), 129 << 20)],
        "size_lies": [dsse_layer(big["digest"], 100)],
        "missing": [dsse_layer(fake_digest("missing"), 2048)],
    }.items():
        image = push_image(lab.referrers, "hostile/junk-lies", key, seed=f"hostile-junk-{key}")
        push_att_tag(liar, "hostile/junk-lies", image.digest, layers)
        values[key] = f"{lab.referrers.host}/{image.repo}@{image.digest}"
    image = push_image(lab.referrers, "hostile/junk-ref", "v1", seed="hostile-junk-ref")
    junk_ref = lab.client(lab.referrers).push_blob(
        "hostile/junk-ref", os.urandom(JUNK), "application/vnd.dev.sigstore.bundle.v0.3+json"
    )
    _referrer_copies(lab, image.repo, image.digest, 40, junk_ref)
    values["junk_ref40"] = image.digest_ref

    image = push_image(lab.referrers, "hostile/amplify/unavailable", "v1", seed="hostile-503")
    values["unavailable"] = f"{front.host}/{image.repo}@{image.digest}"
    trust = lab.trust("amplify", images=["*/hostile/**"])
    try:
        yield World(values, blobs, front, trust)
    finally:
        front.close()


def _small_junk(client: OciClient, n: int) -> dict[str, Any]:
    blob = client.push_blob("hostile/junk", f"junk {n} ".encode() * 64, "application/octet-stream")
    return {"digest": blob["digest"], "size": blob["size"]}


def _unavailable(front: RegistryFront, seen: Seen) -> Answer | None:
    if "/hostile/amplify/unavailable/" in seen.path:
        return Answer(503, {"Content-Type": "application/json"}, b'{"errors":[]}')
    return None


def gets(where: RegistryServer | RegistryFront, path: str) -> int:
    if isinstance(where, RegistryFront):
        return where.count("GET", path)
    return registry_gets(where, path)


# --------------------------------------------------------------------------- the doors


@pytest.fixture(scope="module")
def verify_baseline_kb(lab: Lab) -> int:
    """The CLI's peak RSS verifying an ordinary signed image (what +300 MB is measured from)."""
    image = push_image(lab.plain, "hostile/amplify/baseline", "v1", seed="hostile-baseline")
    lab.sign(lab.plain, image.digest_ref, CLEAN_SBOM)
    trust = lab.trust("baseline", images=["*/hostile/**"])
    run = run_cli(lab.verify_args([image.digest_ref], [trust]))
    assert run.code == 0, run.stdout + run.stderr
    return run.max_rss_kb


def _verify(lab: Lab, case: Case, world: World) -> tuple[Outcome, int]:
    where = world.blobs.get(case.build.get("blob") or case.build.get("none_from") or "")
    before = gets(*where) if where else 0
    outcome = registry_cases.run_verify(
        lab, case, world.values, [world.trust], insecure=[world.front.host]
    )
    return outcome, (gets(*where) - before if where else 0)


@pytest.fixture(scope="module")
def verify_outcomes(
    request: pytest.FixtureRequest, lab: Lab, world: World
) -> dict[str, Future[tuple[Outcome, int]]]:
    # One at a time: blob counts are per run, and these runs download much.
    cases = [c for c in selected(request) if c.door == "verify"]
    return in_parallel({c.id: partial(_verify, lab, c, world) for c in cases}, workers=1)


@dataclass
class Served:
    webhook: Webhook
    baseline_kb: int


@pytest.fixture(scope="module")
def served(lab: Lab, hostile_work: Path, world: World) -> Iterator[Served]:
    webhook = Webhook(
        hostile_work,
        lab.serve_settings([world.trust], insecure=[world.front.host], faults="Allow"),
        name="amplify",
    )
    try:
        # Warm: one ordinary review first, so the baseline includes a loaded server.
        image = push_image(lab.plain, "hostile/amplify/warm", "v1", seed="hostile-warm")
        lab.sign(lab.plain, image.digest_ref, CLEAN_SBOM)
        assert webhook.validate(review([image.digest_ref])).verdict == "allowed"
        yield Served(webhook, webhook.memory_kb("VmHWM"))
    finally:
        webhook.stop()


@pytest.fixture(scope="module")
def slow(
    lab: Lab, hostile_work: Path, toxiproxy_server: Toxiproxy
) -> Iterator[tuple[Webhook, dict[str, list[list[str]]]]]:
    """A registry whose every answer is 5 s late, and a webhook that uses only it."""
    proxy = toxiproxy_server.create("hostile-slow-registry", lab.plain.host)
    images = [
        push_image(lab.plain, f"hostile/slow/app-{n}", "v1", seed=f"hostile-slow-{n}")
        for n in range(CONCURRENT * 5 + 1)
    ]
    refs = [f"{proxy.listen}/{i.repo}@{i.digest}" for i in images]
    groups = {
        "distinct": [[r] for r in refs[:CONCURRENT]],
        "four": [refs[CONCURRENT + 4 * n : CONCURRENT + 4 * n + 4] for n in range(CONCURRENT)],
        "same": [[refs[-1]]] * CONCURRENT,
    }
    trust = lab.trust("slow", images=["*/hostile/**"])
    settings = lab.serve_settings([trust], insecure=[proxy.listen])
    settings["allowedRegistries"] = [proxy.listen]
    webhook = Webhook(hostile_work, settings, name="slow")
    proxy.add_toxic("latency", latency=SLOW)
    try:
        yield webhook, groups
    finally:
        webhook.stop()
        toxiproxy_server.delete(proxy.name)


def concurrent_reviews(webhook: Webhook, groups: list[list[str]]) -> Outcome:
    """All reviews at once while /healthz is polled; one outcome summing them up."""
    stop = threading.Event()
    health: list[float] = []

    def poll() -> None:
        while not stop.is_set():
            health.append(webhook.healthz_seconds())
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        outcomes = list(pool.map(lambda refs: webhook.validate(review(refs)), groups))
    stop.set()
    poller.join(30)
    slowest = max(o.figures["answer (s)"] for o in outcomes)
    verdicts = {o.verdict for o in outcomes}
    verdict = "allowed" if "allowed" in verdicts else "fault" if "fault" in verdicts else "denied"
    late = [o for o in outcomes if o.figures["answer (s)"] >= WEBHOOK_TIMEOUT]
    problems = []
    if late:
        problems.append(f"{len(late)} of {len(outcomes)} answers came after {WEBHOOK_TIMEOUT:g} s")
    if not health or max(health) >= HEALTHZ_BOUND:
        problems.append(f"/healthz took {max(health or [0]):.2f} s while reviews ran")
    if problems:
        verdict = "late: " + "; ".join(problems)
    text = "\n".join(o.text for o in outcomes)
    figures = {
        "slowest answer (s)": slowest,
        "slowest /healthz (s)": round(max(health or [0.0]), 3),
    }
    return Outcome(
        verdict, text, f"verdicts {sorted(verdicts)}; {verdict}\n{outcomes[0].detail}", figures
    )


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_amplify(case: Case, request: pytest.FixtureRequest) -> None:
    if "concurrent" in case.build:
        webhook, groups = request.getfixturevalue("slow")
        judge(case, concurrent_reviews(webhook, groups[case.build["concurrent"]]))
        return
    world: World = request.getfixturevalue("world")
    where = world.blobs.get(case.build.get("blob") or case.build.get("none_from") or "")
    if case.door == "verify":
        outcome, fetched = request.getfixturevalue("verify_outcomes")[case.id].result()
        if case.build.get("rss"):
            baseline = request.getfixturevalue("verify_baseline_kb")
            peak = outcome.figures["peak RSS of the command (MB)"]
            outcome.figures["peak RSS above an ordinary verify (MB)"] = round(
                peak - baseline / 1024, 1
            )
    else:
        served: Served = request.getfixturevalue("served")
        before = gets(*where) if where else 0
        outcome = served.webhook.validate(review(registry_cases.refs_of(case, world.values)))
        fetched = gets(*where) - before if where else 0
        if case.build.get("rss"):
            grown = (served.webhook.memory_kb("VmHWM") - served.baseline_kb) / 1024
            outcome.figures["server VmHWM above its warm baseline (MB)"] = round(grown, 1)
    if where:
        outcome.figures["blob GETs"] = fetched
    judge(case, outcome, world.values)
    for name, value in outcome.figures.items():
        if "above" in name:
            assert value < RSS_GROWTH_BOUND_MB, f"{name}: {value:.0f} MB"
    if case.build.get("blob"):
        assert fetched == 1, f"the shared attestation blob was fetched {fetched} times"
    if case.build.get("none_from"):
        assert fetched == 0, f"{fetched} blobs of an image no trust policy covers were fetched"
