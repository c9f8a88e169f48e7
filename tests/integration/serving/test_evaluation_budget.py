"""Policy evaluation in worker processes: the same verdicts, an evaluation budget that stops a
runaway policy and names it, and a webhook that keeps answering meanwhile."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sbomgate.config import load_config
from sbomgate.errors import InputError
from sbomgate.intel.facts import build_facts
from sbomgate.intel.model import PackageFacts
from sbomgate.policy import PolicyEngine, isolated, load_policy_dir
from sbomgate.policy.isolated import EvaluatorPool, IsolatedPolicyEngine
from sbomgate.runtime import bundled_policies_dir
from sbomgate.sbom import Component, load_sbom_file
from support.net import free_port
from support.oci_builder import CosignKey, PushedImage
from support.paths import FACTS
from support.registry_servers import ROOT, RegistryServer, make_test_ca
from support.trust import trust_file
from support.workloads import deployment, review

# CPU time, deadlines and in-flight bounds: run after the parallel tests, alone (Makefile).
pytestmark = pytest.mark.alone

FACT_SOURCE = build_facts(snapshot=FACTS, osv=[], sources=[], typosquat=True)

# CPU only, no memory: 10^10 candidate pairs, hours of work if nothing stops it.
RUNAWAY = """\
# METADATA
# title: Runs away
# custom:
#   action: Deny
package runaway

import rego.v1

default match := false

match if {
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j == -1
}
"""


@pytest.fixture
def pool() -> Iterator[EvaluatorPool]:
    pool = EvaluatorPool(processes=1, budget=1.0)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def runaway_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("runaway-policies")
    for policy in bundled_policies_dir().glob("*.rego"):
        if not policy.name.endswith("_test.rego"):
            shutil.copy(policy, directory / policy.name)
    (directory / "runaway.rego").write_text(RUNAWAY)
    return directory


def test_isolated_verdicts_equal_in_process_ones(pool: EvaluatorPool) -> None:
    pool.budget = 60.0  # a loaded machine must not turn this into a budget test
    policies = load_policy_dir(bundled_policies_dir())
    facts = FACT_SOURCE
    for sbom_file in ("good-app.cdx.json", "bad-app.spdx.json"):
        sbom = load_sbom_file(ROOT / "examples" / sbom_file)
        local = PolicyEngine(policies).evaluate_sbom(sbom, facts=facts)
        isolated = IsolatedPolicyEngine(policies, pool=pool).evaluate_sbom(sbom, facts=facts)
        assert isolated == local
    bad = load_sbom_file(ROOT / "examples" / "bad-app.spdx.json")
    assert PolicyEngine(policies).evaluate_sbom(bad, facts=facts).violations  # not vacuous


def test_a_runaway_policy_is_stopped_named_and_denies(
    pool: EvaluatorPool, runaway_dir: Path
) -> None:
    sbom = load_sbom_file(ROOT / "examples" / "good-app.cdx.json")
    engine = IsolatedPolicyEngine(load_policy_dir(runaway_dir), pool=pool)
    started = time.monotonic()
    verdict = engine.evaluate_sbom(sbom, facts=FACT_SOURCE)
    elapsed = time.monotonic() - started
    assert not verdict.allowed
    [failure] = verdict.errors
    assert failure.policy == "runaway"
    assert failure.message.startswith("used up its 1 s evaluation budget (CPU time)")
    assert "evaluationBudget" in failure.message
    assert pool.stopped == 1
    assert elapsed < 30  # stopped, not run for hours

    # The worker was replaced: the next evaluation (other policies) works.
    good = IsolatedPolicyEngine(load_policy_dir(bundled_policies_dir()), pool=pool)
    pool.budget = 60.0
    assert good.evaluate_sbom(sbom, facts=FACT_SOURCE).allowed


def test_the_budget_is_cpu_time_with_a_wall_time_backstop(
    pool: EvaluatorPool, runaway_dir: Path
) -> None:
    """A worker that gets no CPU (here: stopped with SIGSTOP, as a starved one would be) is
    not charged for the wait, but is stopped after three budgets of wall time."""
    import os
    import signal

    pool.budget = 0.5
    sbom = load_sbom_file(ROOT / "examples" / "good-app.cdx.json")
    engine = IsolatedPolicyEngine(load_policy_dir(runaway_dir), pool=pool)
    pool.start()
    [worker] = pool._workers

    def starve() -> None:
        time.sleep(0.2)
        os.kill(worker.process.pid, signal.SIGSTOP)

    starver = threading.Thread(target=starve)
    starver.start()
    verdict = engine.evaluate_sbom(sbom)
    starver.join()
    [failure] = verdict.errors
    assert failure.message.startswith("was stopped after 1.5 s without finishing")
    assert "too busy" in failure.message
    assert worker.process.poll() is not None  # killed, though stopped


def test_a_dead_worker_is_an_evaluation_error_and_is_replaced(
    pool: EvaluatorPool, runaway_dir: Path
) -> None:
    pool.budget = 60.0
    sbom = load_sbom_file(ROOT / "examples" / "good-app.cdx.json")
    engine = IsolatedPolicyEngine(load_policy_dir(runaway_dir), pool=pool)

    def kill_the_worker() -> None:
        time.sleep(1.0)
        for worker in list(pool._workers):
            worker.process.kill()

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    verdict = engine.evaluate_sbom(sbom)
    killer.join()
    assert not verdict.allowed
    assert [e.message for e in verdict.errors] == [
        "the policy evaluation process died (see the server log)"
    ]
    good = IsolatedPolicyEngine(load_policy_dir(bundled_policies_dir()), pool=pool)
    assert good.evaluate_sbom(sbom, facts=FACT_SOURCE).allowed


# Reads the image: evaluated per image, beside the outcomes the cache keeps.
IMAGE_POLICY = """\
# METADATA
# title: Image tag
# custom:
#   action: Warn
package image_tag

import rego.v1

default match := false

match if {
	endswith(input.v0.image.ref, ":latest")
	startswith(input.v0.package.name, "pkg-1")
}
"""


def _large_sbom(tmp_path: Path, count: int) -> Path:
    """A CycloneDX SBOM of `count` npm packages with licences of every kind the license policy
    tells apart (so that evaluations differ from document to document)."""
    licences = ["MIT", "GPL-3.0-only", "MIT OR GPL-2.0-only", "LicenseRef-acme", "Apache-2.0"]
    components = [
        {
            "type": "library",
            "name": f"pkg-{i}",
            "version": f"1.{i % 7}.0",
            "purl": f"pkg:npm/pkg-{i}@1.{i % 7}.0",
            "licenses": [{"expression": licences[i % len(licences)]}],
        }
        for i in range(count)
    ]
    path = tmp_path / f"large-{count}.cdx.json"
    document = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components}
    path.write_text(json.dumps(document))
    return path


def _vouched(component: Component) -> PackageFacts:
    """Every package found in a hosted repository (so no policy stops at `unverified`)."""
    return PackageFacts(
        repository={"name": "npm-internal", "kind": "npm", "url": "https://npm.internal/",
                    "hosting": "hosted"},
        published_at="2020-01-01T00:00:00Z",
        first_published_at="2019-01-01T00:00:00Z",
    )  # fmt: skip


def test_a_large_image_is_shared_out_among_the_free_workers(tmp_path: Path) -> None:
    """1,000 packages on a pool of two: both workers evaluate a share, the verdict is the
    in-process one, and the second evaluation (outcomes from the cache, the image policy
    evaluated again) is one call to the pool too, so one budget."""
    pool = EvaluatorPool(processes=2, budget=60.0)
    try:
        pool.start()
        sbom = load_sbom_file(_large_sbom(tmp_path, 1000))
        policy_dir = tmp_path / "policies"
        shutil.copytree(bundled_policies_dir(), policy_dir)
        (policy_dir / "image_tag.rego").write_text(IMAGE_POLICY)
        policies = load_policy_dir(policy_dir)
        engine = IsolatedPolicyEngine(policies, pool=pool)
        calls: list[int] = []
        evaluate = pool.evaluate_stream

        def counted(
            engine: IsolatedPolicyEngine, work: Iterable[Any], context: str | None = None
        ) -> Any:
            calls.append(0)

            def documents() -> Iterator[Any]:
                for item in work:
                    calls[-1] += 1
                    yield item

            return evaluate(engine, documents(), context)

        pool.evaluate_stream = counted  # type: ignore[method-assign]
        before = {w.process.pid: w.cpu_seconds() for w in pool._workers}
        image = {"ref": "reg.example/app:latest", "digest": "sha256:" + "1" * 64}
        first = engine.evaluate_sbom(sbom, facts=_vouched, image=image)
        used = {w.process.pid: w.cpu_seconds() - before[w.process.pid] for w in pool._workers}
        assert len(used) == 2 and all(seconds > 0.05 for seconds in used.values()), used
        local = PolicyEngine(policies, outcome_cache_bytes=0)
        assert first == local.evaluate_sbom(sbom, facts=_vouched, image=image)
        assert first.violations and first.warnings  # not vacuous
        assert any(f.policy == "image-tag" for f in first.warnings)
        again = engine.evaluate_sbom(sbom, facts=_vouched, image=image)
        assert again == first
        assert engine.outcomes is not None and engine.outcomes.hits >= 1000
        # One call each: all documents the first time; the image policy's share the second.
        assert len(calls) == 2 and calls[0] == 1001 and calls[1] >= 1000, calls
    finally:
        pool.close()


def _cpu_seconds(pid: int) -> float | None:
    """A process's CPU time (user + system), from /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_budget_covers_every_share(
    tmp_path: Path, runaway_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runaway policy on both workers' shares: their CPU time together is the budget, and
    both are stopped and replaced. Told by the workers' CPU time, not the wall clock, and with
    the wall-time backstop far off: the machine may be busy with other tests."""
    monkeypatch.setattr(isolated, "_WALL_FACTOR", 20.0)
    pool = EvaluatorPool(processes=2, budget=2.0)
    try:
        pool.start()
        pids = {w.process.pid for w in pool._workers}
        spent: dict[int, float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid in pids:
                    seconds = _cpu_seconds(pid)
                    if seconds is not None:
                        spent[pid] = seconds
                time.sleep(0.02)

        # What the workers spent before (starting Python) is not the evaluation's.
        before = {pid: _cpu_seconds(pid) or 0.0 for pid in pids}
        sampler = threading.Thread(target=sample)
        sampler.start()
        sbom = load_sbom_file(_large_sbom(tmp_path, 800))
        engine = IsolatedPolicyEngine(load_policy_dir(runaway_dir), pool=pool)
        try:
            verdict = engine.evaluate_sbom(sbom, facts=_vouched)
        finally:
            done.set()
            sampler.join()
        [failure] = verdict.errors
        assert failure.policy == "runaway"
        assert failure.message.startswith("used up its 2 s evaluation budget (CPU time)")
        # Two workers spent it together, about 1 s each (and compiling the policies): not 2 s
        # each.
        used = {pid: spent[pid] - before[pid] for pid in spent}
        assert len(used) == 2 and all(s > 0.3 for s in used.values()), used
        assert sum(used.values()) < 3.5, used
        print(f"\nworkers CPU during the evaluation: {used}")
        assert pool.stopped == 1
        assert not pids & {w.process.pid for w in pool._workers}  # both replaced
        good = IsolatedPolicyEngine(load_policy_dir(bundled_policies_dir()), pool=pool)
        pool.budget = 60.0
        assert good.evaluate_sbom(sbom, facts=_vouched).components == 800
    finally:
        pool.close()


def test_budget_and_processes_are_configurable(tmp_path: Path) -> None:
    config_file = tmp_path / "sbomgate.yaml"
    config_file.write_text("evaluationBudget: 2.5\nevaluationProcesses: 3\n")
    config = load_config(config_file)
    assert (config.evaluation_budget, config.evaluation_processes) == (2.5, 3)
    for bad in ("evaluationBudget: 0", "evaluationBudget: .nan", "evaluationProcesses: 0.5"):
        config_file.write_text(bad + "\n")
        with pytest.raises(InputError, match=bad.split(":")[0]):
            load_config(config_file)


def test_serve_keeps_answering_while_a_policy_runs_away(
    plain_registry: RegistryServer,
    key: CosignKey,
    work: Path,
    hook_images: dict[str, PushedImage],
    runaway_dir: Path,
) -> None:
    ca = make_test_ca(work / "budget-ca")
    port = free_port()
    config = work / "budget.yaml"
    config.write_text(
        json.dumps(
            {
                "policies": str(runaway_dir),
                "trustPolicies": [str(trust_file(work, keys=[key]))],
                "facts": str(FACTS),
                "allowedRegistries": [plain_registry.host],
                "insecureRegistries": [plain_registry.host],
                "tls": {"certFile": str(ca.cert_file), "keyFile": str(ca.key_file)},
                "listen": {"host": "127.0.0.1", "port": port},
                # Room for the 3 s budget and its 9 s wall-time backstop when other tests keep
                # the machine busy (make test runs two workers).
                "admissionDeadline": 25,
                "evaluationBudget": 3,
                "evaluationProcesses": 1,
            }
        )
    )
    log_path = work / "budget-serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sbomgate.cli", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    context = ssl.create_default_context(cafile=str(ca.ca_file))

    def get(path: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}{path}", context=context, timeout=timeout
        ) as r:
            body: bytes = r.read()
            return body

    def validate(image: str) -> dict[str, object]:
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/validate",
            data=json.dumps(review(deployment(image))).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as r:
            answer: dict[str, object] = json.loads(r.read())["response"]
            return answer

    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get("/readyz", timeout=2) == b"ready"
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.2)

        answers: list[dict[str, object]] = []
        reviewer = threading.Thread(
            target=lambda: answers.append(validate(hook_images["good"].ref))
        )
        reviewer.start()
        # While the policy runs away in its worker, the server itself is free: health checks
        # are answered at once (with evaluation in-process they would wait for the GIL).
        health_checks = 0
        while reviewer.is_alive():
            assert get("/healthz", timeout=2) == b"ok"
            health_checks += 1
            time.sleep(0.1)
        reviewer.join()
        assert health_checks >= 2  # answered while the policy ran, not after
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True)
        workers = [int(pid) for pid in children.stdout.split()]
        assert len(workers) == 1  # evaluationProcesses: 1 (the stopped one was replaced)
        [answer] = answers
        assert answer["allowed"] is False
        status = answer["status"]
        assert isinstance(status, dict)
        message = str(status["message"])
        assert "policy runaway failed to evaluate" in message
        # Its CPU budget, or (the machine too busy to give it that) the wall-time backstop:
        # test_the_budget_is_cpu_time_with_a_wall_time_backstop tells the two apart.
        assert (
            "used up its 3 s evaluation budget (CPU time) and was stopped" in message
            or "too busy to give it its 3 s evaluation budget of CPU time" in message
        ), message

        # The replaced worker serves the next image (and the runaway policy is stopped again).
        again = validate(hook_images["bad"].ref)
        assert again["allowed"] is False
        assert "evaluation budget" in str(again["status"])
        assert b"sbomgate_policy_evaluation_seconds_count" in get("/metrics")
    finally:
        process.terminate()
        process.wait(timeout=15)
    # No worker outlives the server.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived the server"
        time.sleep(0.1)


LATE_RUNAWAY = """\
# METADATA
# title: Runs away on one package
# custom:
#   action: Deny
package late_runaway

import rego.v1

default match := false

match if {
	input.v0.package.name == "pkg-900"
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j == -1
}
"""


def test_a_runaway_in_a_later_chunk_names_its_package(tmp_path: Path) -> None:
    """A large image goes to the workers in chunks while its inputs are still being built: an
    overrun on the 901st package (in the fourth chunk) names that package and the policy."""
    pool = EvaluatorPool(processes=2, budget=1.0)
    try:
        pool.start()
        sbom = load_sbom_file(_large_sbom(tmp_path, 1000))
        policy_dir = tmp_path / "policies"
        policy_dir.mkdir()
        (policy_dir / "late_runaway.rego").write_text(LATE_RUNAWAY)
        engine = IsolatedPolicyEngine(load_policy_dir(policy_dir), pool=pool)
        verdict = engine.evaluate_sbom(sbom, facts=_vouched)
        assert not verdict.allowed
        [failure] = verdict.errors
        assert failure.policy == "late-runaway", failure
        assert failure.purl == "pkg:npm/pkg-900@1.4.0"
        assert failure.message.startswith("used up its 1 s evaluation budget (CPU time)")
        assert pool.stopped == 1
        # The stopped worker was replaced and the other one is still usable.
        pool.budget = 60.0
        good = IsolatedPolicyEngine(load_policy_dir(bundled_policies_dir()), pool=pool)
        assert good.evaluate_sbom(sbom, facts=_vouched).errors == ()
    finally:
        pool.close()


def test_the_last_chunk_is_shared_among_the_free_workers(tmp_path: Path) -> None:
    """A new build's hundred or so changed packages are one chunk, the last: it goes to both
    workers, as a whole image of that size did before chunks, not to one while the other
    idles; the verdict is the in-process one."""
    pool = EvaluatorPool(processes=2, budget=60.0)
    try:
        pool.start()
        sbom = load_sbom_file(_large_sbom(tmp_path, 100))
        policies = load_policy_dir(bundled_policies_dir())
        engine = IsolatedPolicyEngine(policies, pool=pool)
        sent: list[tuple[int, int]] = []
        send = pool._send

        def counted(worker: Any, engine: Any, documents: Any, scopes: Any, context: Any) -> None:
            sent.append((worker.process.pid, len(documents)))
            send(worker, engine, documents, scopes, context)

        pool._send = counted  # type: ignore[method-assign]
        verdict = engine.evaluate_sbom(sbom, facts=_vouched)
        assert verdict == PolicyEngine(policies).evaluate_sbom(sbom, facts=_vouched)
        assert len({pid for pid, _ in sent}) == 2, sent
        assert sum(n for _, n in sent) == 101 and all(n >= 16 for _, n in sent), sent
    finally:
        pool.close()
