"""Section 4: pin what was verified.

A tag is resolved by sbomgate and again by the kubelet. Re-pushed in between, or served
differently to each (a registry that answers by User-Agent), it runs an image nobody judged.
`/mutate` answers with a JSONPatch that pins each container image (containers,
initContainers, ephemeralContainers; Pods, Deployments, CronJobs) to `name@sha256:` of what
was verified; `/validate` refuses a tag that reaches it unpinned (imageReferences: Pin) and
judges exactly the digest it is given; imageReferences: RefuseTags refuses tag references
outright and rewrites nothing.

No real registry lies by User-Agent, so a small Python front (fronts.py) does: it answers the
tag's manifest request of a container runtime (containerd/, cri-o/, docker/) with an unsigned
image and everyone else with the signed one.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hostile.content import CLEAN_SBOM, Lab
from hostile.corpus import (
    PIN_SETTINGS,
    REFUSE_TAGS_SETTINGS,
    SAYS,
    Case,
    Outcome,
    Verdict,
    case_ids,
    check_unique,
    judge,
)
from hostile.doors import Webhook, json_patch, review
from hostile.fronts import Answer, RegistryFront, Seen
from support.oci_builder import ACCEPT_ALL, OCI_MANIFEST, push_image

RUNTIMES = ("containerd/", "cri-o/", "docker/")
C0 = "/spec/containers/0/image"


def mutate(
    id: str,
    description: str,
    object: dict[str, Any],
    pins: dict[str, str | None],
    *,
    refuse_tags: bool = False,
) -> Case:
    """A /mutate case: `pins` maps a JSON path to the reference it must be pinned to, or None
    where nothing may be patched."""
    return Case(
        id=f"s4-mutate-{id}",
        section=4,
        description=description,
        door="mutate",
        expect="allowed",
        build={"object": object, "pins": pins, "refuse_tags": refuse_tags},
    )


def validate(
    id: str,
    description: str,
    expect: Verdict,
    object: dict[str, Any],
    *,
    refuse_tags: bool = False,
    says: tuple[str, ...] = (),
) -> Case:
    return Case(
        id=f"s4-validate-{id}",
        section=4,
        description=description,
        door="validate",
        expect=expect,
        says=says,
        build={"object": object, "refuse_tags": refuse_tags},
    )


def obj(*containers: str, **kwargs: Any) -> dict[str, Any]:
    """What review() is given: containers (placeholders) and its keyword arguments."""
    return {"containers": list(containers), **kwargs}


TAG = (SAYS["tag"],)

CASES = check_unique(
    [
        # -- /mutate pins every tag it verified, at its own path
        mutate(
            "pod-tag-pinned",
            "a Pod's tag becomes the digest it resolved to",
            obj("{app}:v1"),
            {C0: "{app}@{app_digest}"},
        ),
        mutate(
            "deployment-every-path",
            "a Deployment's containers and initContainers, each pinned at its path",
            obj("{app}:v1", "{sidecar}:v2", kind="Deployment", init=["{init}:v1"]),
            {
                "/spec/template/spec/containers/0/image": "{app}@{app_digest}",
                "/spec/template/spec/containers/1/image": "{sidecar}@{sidecar_digest}",
                "/spec/template/spec/initContainers/0/image": "{init}@{init_digest}",
            },
        ),
        mutate(
            "cronjob",
            "a CronJob's job template",
            obj("{app}:v1", kind="CronJob"),
            {"/spec/jobTemplate/spec/template/spec/containers/0/image": "{app}@{app_digest}"},
        ),
        mutate(
            "ephemeral-container",
            "kubectl debug: the ephemeral container's tag, on pods/ephemeralcontainers",
            obj(
                "{app}@{app_digest}",
                ephemeral=["{sidecar}:v2"],
                sub_resource="ephemeralcontainers",
                update=True,
            ),
            {"/spec/ephemeralContainers/0/image": "{sidecar}@{sidecar_digest}", C0: None},
        ),
        mutate(
            "multi-arch-index",
            "a multi-arch tag is pinned to its index digest",
            obj("{index}:v1"),
            {C0: "{index}@{index_digest}"},
        ),
        mutate(
            "registry-lying-by-user-agent",
            "the registry shows sbomgate the signed image and runtimes another: the signed digest is pinned",
            obj("{liar}:v1"),
            {C0: "{liar}@{liar_clean}"},
        ),
        mutate(
            "moved-tag-pins-what-was-verified",
            "a tag re-pushed after /mutate: the patch named what was verified then",
            obj("{moving}:live"),
            {C0: "{moving}@{moving_before}"},
        ),
        mutate(
            "digest-left-alone",
            "a digest reference is not rewritten (control)",
            obj("{app}@{app_digest}"),
            {C0: None},
        ),
        mutate(
            "tag-and-digest-left-alone",
            "name:tag@digest already names a digest (control)",
            obj("{app}:v1@{app_digest}"),
            {C0: None},
        ),
        mutate(
            "refuse-tags-rewrites-nothing",
            "RefuseTags: /mutate patches nothing",
            obj("{app}:v1"),
            {C0: None},
            refuse_tags=True,
        ),
        # -- /validate with pinning on
        validate(
            "tag-reaching-validate-unpinned",
            "a tag that reaches /validate unpinned (the mutating webhook did not run)",
            "denied",
            obj("{app}:v1"),
            says=TAG,
        ),
        validate(
            "moved-tag-pinned-digest",
            "the tag moved after /mutate; the pinned object is what was verified",
            "allowed",
            obj("{moving}@{moving_before}"),
        ),
        validate(
            "moved-tag-unpinned", "the moved tag itself, unpinned", "denied", obj("{moving}:live")
        ),
        validate(
            "moved-tag-new-digest",
            "the digest the tag moved to (unsigned)",
            "denied",
            obj("{moving}@{moving_after}"),
        ),
        validate(
            "liar-signed-digest",
            "the digest sbomgate was shown and verified",
            "allowed",
            obj("{liar}@{liar_clean}"),
        ),
        validate(
            "liar-runtime-digest",
            "the digest the runtime would have been given",
            "denied",
            obj("{liar}@{liar_bad}"),
        ),
        validate("liar-tag", "the lying registry's tag, unpinned", "denied", obj("{liar}:v1")),
        validate(
            "tag-and-digest",
            "name:tag@digest of a signed image",
            "allowed",
            obj("{app}:v1@{app_digest}"),
        ),
        validate(
            "deployment-init-tag-unpinned",
            "a Deployment whose initContainer is still a tag",
            "denied",
            obj("{app}@{app_digest}", kind="Deployment", init=["{init}:v1"]),
            says=TAG,
        ),
        # -- /validate with RefuseTags
        validate(
            "refuse-tags-tag",
            "RefuseTags: a tag reference",
            "denied",
            obj("{app}:v1"),
            refuse_tags=True,
            says=TAG,
        ),
        validate(
            "refuse-tags-digest",
            "RefuseTags: a digest reference (control)",
            "allowed",
            obj("{app}@{app_digest}"),
            refuse_tags=True,
        ),
        validate(
            "refuse-tags-tag-and-digest",
            "RefuseTags: name:tag@digest (control)",
            "allowed",
            obj("{app}:v1@{app_digest}"),
            refuse_tags=True,
        ),
        validate(
            "refuse-tags-init-container",
            "RefuseTags: a Deployment with one tag, in an initContainer",
            "denied",
            obj("{app}@{app_digest}", kind="Deployment", init=["{init}:v1"]),
            refuse_tags=True,
            says=TAG,
        ),
        validate(
            "refuse-tags-ephemeral-container",
            "RefuseTags: kubectl debug with a tag",
            "denied",
            obj(
                "{app}@{app_digest}",
                ephemeral=["{sidecar}:v2"],
                sub_resource="ephemeralcontainers",
                update=True,
            ),
            refuse_tags=True,
            says=TAG,
        ),
        validate(
            "refuse-tags-dry-run",
            "RefuseTags: a dry run of a tag reference",
            "denied",
            obj("{app}:v1", dry_run=True),
            refuse_tags=True,
            says=TAG,
        ),
    ]
)


def review_of(spec: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    def fill(refs: list[str]) -> list[str]:
        return [ref.format_map(values) for ref in refs]

    kwargs = {
        k: v for k, v in spec.items() if k not in ("containers", "init", "ephemeral", "update")
    }
    containers = fill(spec["containers"])
    old = None
    if spec.get("update"):  # the Pod as it was, before `kubectl debug` added a container
        old = review(containers)["request"]["object"]
    return review(
        containers,
        init=fill(spec.get("init", [])),
        ephemeral=fill(spec.get("ephemeral", [])),
        old_object=old,
        **kwargs,
    )


@dataclass
class World:
    values: dict[str, str]
    front: RegistryFront
    trust: Path


def _manifest_digest(host: str, repo: str, reference: str, user_agent: str) -> str:
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            headers={"Accept": ACCEPT_ALL, "User-Agent": user_agent},
        )
        answer = connection.getresponse()
        answer.read()
        return str(answer.getheader("Docker-Content-Digest"))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def world(lab: Lab) -> Iterator[World]:
    server = lab.plain
    values: dict[str, str] = {}
    for key, repo, tag in [
        ("app", "hostile/pin/app", "v1"),
        ("sidecar", "hostile/pin/sidecar", "v2"),
        ("init", "hostile/pin/init", "v1"),
    ]:
        image = push_image(server, repo, tag, seed=f"hostile-{repo}")
        lab.sign(server, image.digest_ref, CLEAN_SBOM)
        values[key], values[f"{key}_digest"] = f"{server.host}/{repo}", image.digest
    index = push_image(
        server,
        "hostile/pin/index",
        "v1",
        platforms=["linux/amd64", "linux/arm64"],
        seed="hostile-pin-index",
    )
    lab.sign(server, index.digest_ref, CLEAN_SBOM)
    values["index"], values["index_digest"] = f"{server.host}/{index.repo}", index.digest
    moving = push_image(server, "hostile/pin/moving", "live", seed="hostile-pin-moving-before")
    lab.sign(server, moving.digest_ref, CLEAN_SBOM)
    values["moving"], values["moving_before"] = f"{server.host}/{moving.repo}", moving.digest
    after = push_image(server, "hostile/pin/moving", "next", seed="hostile-pin-moving-after")
    values["moving_after"] = after.digest

    # The liar: the tag is the signed image; runtimes are shown an unsigned one instead.
    clean = push_image(server, "hostile/pin/liar", "v1", seed="hostile-pin-liar-clean")
    lab.sign(server, clean.digest_ref, CLEAN_SBOM)
    bad = push_image(server, "hostile/pin/liar", "runtime", seed="hostile-pin-liar-bad")

    def lie(front: RegistryFront, seen: Seen) -> Answer | None:
        if seen.path == "/v2/hostile/pin/liar/manifests/v1" and seen.user_agent.lower().startswith(
            RUNTIMES
        ):
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": bad.digest}
            return Answer(200, headers, bad.manifest)
        return None

    front = RegistryFront(server, answer=lie)
    values["liar"], values["liar_clean"], values["liar_bad"] = (
        f"{front.host}/hostile/pin/liar",
        clean.digest,
        bad.digest,
    )
    # The front does lie: containerd is given the unsigned image, anyone else the signed one.
    assert (
        _manifest_digest(front.host, "hostile/pin/liar", "v1", "containerd/v1.7.20") == bad.digest
    )
    assert _manifest_digest(front.host, "hostile/pin/liar", "v1", "curl/8.0") == clean.digest
    try:
        yield World(values, front, lab.trust("pinning", images=["*/hostile/**"]))
    finally:
        front.close()


def _serve(
    lab: Lab, hostile_work: Path, world: World, settings: dict[str, Any], name: str
) -> Iterator[Webhook]:
    served = Webhook(
        hostile_work,
        {**lab.serve_settings([world.trust], insecure=[world.front.host]), **settings},
        name=name,
    )
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def pinning(lab: Lab, hostile_work: Path, world: World) -> Iterator[Webhook]:
    yield from _serve(lab, hostile_work, world, dict(PIN_SETTINGS), "pin")


@pytest.fixture(scope="module")
def refusing(lab: Lab, hostile_work: Path, world: World) -> Iterator[Webhook]:
    yield from _serve(lab, hostile_work, world, dict(REFUSE_TAGS_SETTINGS), "refuse-tags")


@pytest.fixture(scope="module")
def moved(pinning: Webhook, lab: Lab, world: World) -> dict[str, Any]:
    """/mutate the moving tag, then re-push the tag to the unsigned image."""
    answer = pinning.mutate(review([f"{world.values['moving']}:live"]))
    client = lab.client(lab.plain)
    raw, media_type, digest = client.get_manifest(
        "hostile/pin/moving", world.values["moving_after"]
    )
    client.put_manifest("hostile/pin/moving", "live", raw, media_type)
    assert client.get_manifest("hostile/pin/moving", "live")[2] == digest, "the tag did not move"
    return answer


def _pinned_ok(value: str, expected: str) -> bool:
    """name@digest, or name:tag@digest (the tag kept beside the digest)."""
    name, _, digest = expected.rpartition("@")
    head, _, got_digest = value.rpartition("@")
    return got_digest == digest and (head == name or head.startswith(name + ":"))


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_pinning(case: Case, request: pytest.FixtureRequest, world: World) -> None:
    served: Webhook = request.getfixturevalue(
        "refusing" if case.build["refuse_tags"] else "pinning"
    )
    body = review_of(case.build["object"], world.values)
    if case.door == "validate":
        if "moving" in str(case.build["object"]):
            request.getfixturevalue("moved")
        judge(case, served.validate(body), world.values)
        return
    if "moving" in str(case.build["object"]):
        response = request.getfixturevalue("moved")
    else:
        response = served.mutate(body)
    patch = json_patch(response)
    outcome = Outcome("allowed" if response.get("allowed") else "denied", str(patch), str(response))
    judge(case, outcome)
    by_path = {op.get("path"): op for op in patch}
    for path, wanted in case.build["pins"].items():
        if wanted is None:
            assert path not in by_path, f"{case.id}: {path} was patched: {by_path[path]}"
            continue
        expected = wanted.format_map(world.values)
        op = by_path.get(path)
        assert op is not None, (
            f"{case.id}: no patch for {path} (expected {expected}); patch {patch}"
        )
        assert op.get("op") in ("replace", "add") and _pinned_ok(str(op.get("value")), expected), (
            f"{case.id}: {path} became {op.get('value')!r}, expected {expected}"
        )
