"""`serve`'s cold path in a process of its own (serving/coldpath.py).

A controller whose uncached checks and evaluations run in the cold process answers exactly as
one that does them itself; afterwards it answers the same images from its own caches, without
asking; what the cold process observed is counted in this process's metrics; and a cold
process that dies refuses what was waiting on it (never allows it), then comes back with every
policy set. Real registry, real cosign, the bundled policies, a real child process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbomgate._internal.cache import DigestCache, Expiry
from sbomgate.admission import AdmissionController
from sbomgate.config import ServeConfig
from sbomgate.errors import ColdPathError
from sbomgate.imagecheck import ImageResult
from sbomgate.runtime import build_controller
from sbomgate.serving.coldpath import ColdProcess
from sbomgate.serving.metrics import Metrics
from support.images import attested_image
from support.oci_builder import CosignKey, PushedImage, push_image
from support.paths import BAD_SBOM as BAD
from support.paths import FACTS
from support.paths import GOOD_SBOM as GOOD
from support.real_sboms import DEBIAN, Output, real_sbom
from support.registry_servers import RegistryServer
from support.trust import trust_file
from support.workloads import deployment, review


@pytest.fixture(scope="module")
def images(plain_registry: RegistryServer, key: CosignKey, work: Path) -> dict[str, PushedImage]:
    return {
        "good": attested_image(plain_registry, "cold/good", GOOD, key, work),
        "bad": attested_image(plain_registry, "cold/bad", BAD, key, work),
        "unsigned": push_image(plain_registry, "cold/unsigned", "v1", seed="cold-unsigned"),
        "good2": attested_image(plain_registry, "cold/good2", GOOD, key, work),
        "good3": attested_image(plain_registry, "cold/good3", GOOD, key, work),
        # What real tools write of a Debian root filesystem (hundreds of OS packages).
        "syft": attested_image(plain_registry, "cold/syft", real_sbom(SYFT_CDX), key, work),
        "trivy": attested_image(plain_registry, "cold/trivy", real_sbom(TRIVY_SPDX), key, work),
    }


@pytest.fixture
def config(plain_registry: RegistryServer, key: CosignKey, work: Path) -> ServeConfig:
    directory = work / "cold-trust"
    directory.mkdir(exist_ok=True)
    return ServeConfig(
        trust_policies=(trust_file(directory, keys=[key]),),
        facts=FACTS,
        allowed_registries=(plain_registry.host,),
        insecure_registries=(plain_registry.host,),
    )


@pytest.fixture
def cold(config: ServeConfig) -> Iterator[tuple[AdmissionController, ColdProcess, Metrics]]:
    metrics = Metrics()
    host = ColdProcess(config, metrics)
    host.start()
    controller = build_controller(config, metrics, cold=host)
    yield controller, host, metrics
    controller.close()
    controller.checker.client.close()
    host.close()


@pytest.fixture
def local(config: ServeConfig) -> Iterator[AdmissionController]:
    controller = build_controller(config, Metrics())
    yield controller
    controller.close()
    controller.checker.client.close()


SYFT_CDX = Output("syft", DEBIAN.name, "cyclonedx-json", "cyclonedx-json")
TRIVY_SPDX = Output("trivy", DEBIAN.name, "spdx-json", "spdx-json")


def _body(image: PushedImage, *, by_digest: bool = True) -> dict[str, Any]:
    ref = image.digest_ref if by_digest else image.ref
    return review(deployment(ref, namespace="team"))


def _response(controller: AdmissionController, body: dict[str, Any]) -> dict[str, Any]:
    return dict(controller.review(body)["response"])


def _said(response: dict[str, Any]) -> tuple[Any, ...]:
    return (
        response["allowed"],
        response.get("status", {}).get("message"),
        response.get("warnings"),
    )


def test_the_cold_process_judges_as_this_process_does(
    cold: tuple[AdmissionController, ColdProcess, Metrics],
    local: AdmissionController,
    images: dict[str, PushedImage],
) -> None:
    controller, _, _ = cold
    for name in ("good", "bad", "unsigned", "syft", "trivy"):
        body = _body(images[name])
        there, here = _response(controller, body), _response(local, body)
        assert _said(there) == _said(here), name
        if name in ("good", "bad", "unsigned"):
            assert there["allowed"] is (name == "good"), (name, there)
        # The entries came back with the answer: the next review needs no one else.
        again = controller.review_cached(body)
        assert again is not None, f"{name}: not answered from this process's caches"
        assert _said(dict(again["response"])) == _said(there)


def test_a_tag_is_checked_there_and_its_digest_answered_here(
    cold: tuple[AdmissionController, ColdProcess, Metrics], images: dict[str, PushedImage]
) -> None:
    controller, _, _ = cold
    by_tag = _response(controller, _body(images["bad"], by_digest=False))
    assert not by_tag["allowed"]
    cached = controller.review_cached(_body(images["bad"]))
    assert cached is not None and not cached["response"]["allowed"]


def test_what_the_cold_process_observed_is_counted_here(
    cold: tuple[AdmissionController, ColdProcess, Metrics], images: dict[str, PushedImage]
) -> None:
    controller, _, metrics = cold
    _response(controller, _body(images["good"]))
    assert sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "sbomgate_registry_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    ), "the cold process's registry requests were not counted"
    evaluations = metrics.registry.get_sample_value("sbomgate_policy_evaluation_seconds_count")
    assert (evaluations or 0) >= 1, "the cold process's evaluation was not timed here"


def test_a_verdict_about_to_expire_is_evaluated_again_there(
    cold: tuple[AdmissionController, ColdProcess, Metrics], images: dict[str, PushedImage]
) -> None:
    controller, _, _ = cold
    body = _body(images["bad"])
    assert not _response(controller, body)["allowed"]
    [key] = list(controller.verdicts._entries)
    verdict = controller.verdicts.get(key)
    assert verdict is not None and verdict.violations
    # Within the refresh-ahead window (a minute): the next cached review renews it. Here the
    # server has no SBOMs to evaluate (an `elsewhere` copy): only the cold process can.
    controller.verdicts.put(key, verdict, Expiry(size=512, negative=False, seconds_left=5.0))
    again = controller.review_cached(body)
    assert again is not None and not again["response"]["allowed"]
    until = time.monotonic() + 30
    while time.monotonic() < until:
        expiry = controller.verdicts.expiry(key)
        if expiry is not None and expiry.seconds_left > 60:
            break
        time.sleep(0.05)
    expiry = controller.verdicts.expiry(key)
    assert expiry is not None and expiry.seconds_left > 60, "the verdict was not renewed"
    renewed = controller.verdicts.get(key)
    assert renewed is not None and renewed.violations == verdict.violations


def test_a_dead_cold_process_refuses_what_waited_then_comes_back(
    cold: tuple[AdmissionController, ColdProcess, Metrics], images: dict[str, PushedImage]
) -> None:
    controller, host, _ = cold
    pid = host._process.pid if host._process is not None else 0
    assert pid
    os.kill(pid, signal.SIGSTOP)  # the request below waits on it for sure
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(_response(controller, _body(images["good2"])))
    )
    waiting.start()
    sent = time.monotonic() + 20
    while not host._pending and time.monotonic() < sent:  # the request is on its way there
        time.sleep(0.01)
    assert host._pending, "the review never asked the cold-path process"
    os.kill(pid, signal.SIGKILL)
    waiting.join(timeout=30)
    assert answers, "the review never finished"
    refused = answers[0]
    assert not refused["allowed"], "an image whose check was lost was allowed"
    assert "cold-path process stopped" in refused["status"]["message"]
    # The next cold review starts a new process, with the policy set installed again.
    after = _response(controller, _body(images["good3"]))
    assert after["allowed"], after
    assert host._process is not None and host._process.pid != pid


def test_a_retired_policy_set_is_dropped_there(
    cold: tuple[AdmissionController, ColdProcess, Metrics],
    config: ServeConfig,
    images: dict[str, PushedImage],
) -> None:
    _, host, metrics = cold
    second = build_controller(config, metrics, cold=host)
    assert len(host._sets) == 2
    assert _response(second, _body(images["good"]))["allowed"]
    second.close()
    second.checker.client.close()
    assert len(host._sets) == 1
    assert second.cold is not None
    with pytest.raises(ColdPathError, match="not installed"):
        second.cold.check_image(images["good"].digest_ref, 5.0, {}, None)


def test_a_copy_without_sboms_is_never_evaluated(
    cold: tuple[AdmissionController, ColdProcess, Metrics], images: dict[str, PushedImage]
) -> None:
    controller, _, _ = cold
    _response(controller, _body(images["good"]))
    result = controller.checker.check_cached(images["good"].digest_ref)
    assert isinstance(result, ImageResult) and result.verified is not None
    assert result.verified.elsewhere and not result.verified.kept
    with pytest.raises(ColdPathError, match="another process"):
        _ = result.sboms


def test_an_entry_is_kept_as_long_as_it_was_there() -> None:
    now = [100.0]
    cache: DigestCache[str] = DigestCache(ttl=60, negative_ttl=5, clock=lambda: now[0])
    cache.put("k", "v", Expiry(size=10, negative=False, seconds_left=7.5))
    expiry = cache.expiry("k")
    assert expiry == Expiry(size=10, negative=False, seconds_left=7.5)
    now[0] += 7.4
    assert cache.get("k") == "v"
    now[0] += 0.2
    assert cache.get("k") is None and cache.expiry("k") is None


def test_settings_the_cold_process_cannot_use_stop_the_server_at_start(
    config: ServeConfig, work: Path
) -> None:
    facts = work / "broken-facts.yaml"
    facts.write_text("repositories: [unclosed\n")
    host = ColdProcess(config.model_copy(update={"facts": facts}), Metrics())
    try:
        with pytest.raises(ColdPathError, match=r"could not start: .*broken-facts\.yaml"):
            host.start()
    finally:
        host.close()
