"""Benchmark: `sbomgate verify` of an image whose cosign-signed SBOM has 5,000 components.

Real components on loopback: Debian's distribution 2.8 registry (legacy `.att` tag and the
v3 bundle through the fallback tag) and the OCI 1.1 referrers registry (v3 bundle through
the referrers API), real `cosign attest --key`. For each, prints the time of each phase,
cold (new client, new connections, empty cache) and warm (same process, digest cached),
median of several runs:

    resolve   tag -> digest (GET manifest)
    discover  .att tag, referrers API or fallback tag, attestation manifests and blobs
    verify    DSSE signature, in-toto subject binding, trust policy requirements
    parse     the SBOM predicate into components
    evaluate  the bundled policies over every component (synthetic facts, as bench_eval)

Peer in the same run: `cosign verify-attestation` (the real cosign binary, same key, same
image), which resolves, fetches and verifies but does not parse or evaluate.

Then a registry REMOTE_LATENCY_MS away (toxiproxy adds it to every answer), where round trips,
not CPU, make a cold check's time: an index of three platforms, each with its own attestation
(the v3 bundle through the fallback tag), checked cold (resolve, discover, verify, parse; no
evaluation); the peer is `cosign verify-attestation` of each platform manifest in turn, one
process each, as cosign checks one manifest per call.

Figures only: nothing here asserts a timing. Run with `make bench`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_eval import synthetic_facts  # noqa: E402
from sbomgate.attest import AttestationVerifier, load_trust_policies  # noqa: E402
from sbomgate.imagecheck import ImageChecker, ImageResult, judge_images  # noqa: E402
from sbomgate.policy import PolicyEngine, load_policy_dir  # noqa: E402
from sbomgate.registry import RegistryAccess, RegistryClient  # noqa: E402
from sbomgen import make_cyclonedx  # noqa: E402
from support.oci_builder import (  # noqa: E402
    COSIGN_BIN,
    CosignKey,
    PushedImage,
    cosign_attest,
    cosign_env,
    cosign_keypair,
    cosign_registry_flags,
    push_image,
)
from support.registry_servers import (  # noqa: E402
    RegistryServer,
    make_test_ca,
    start_distribution,
    start_referrers_registry,
)
from support.toxiproxy import start_toxiproxy  # noqa: E402

COMPONENTS = 5000
RUNS = 5
REMOTE_LATENCY_MS = 20
REMOTE_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x")
PHASES = ("resolve", "discover", "verify", "parse", "evaluate")


def trust_policy(directory: Path, key: CosignKey) -> Path:
    path = directory / "trust.yaml"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "sbomgate.dev/v1alpha1",
                "kind": "TrustPolicy",
                "metadata": {"name": "bench"},
                "spec": {
                    "images": ["**"],
                    "authorities": [{"name": "ci", "key": {"file": str(key.public_key_path)}}],
                },
            }
        )
    )
    return path


def checker(server: RegistryServer, trust: Path) -> ImageChecker:
    access = RegistryAccess(
        allowed=(server.host,),
        insecure=frozenset({server.host}) if server.scheme == "http" else frozenset(),
        ca_files=(str(server.ca_file),) if server.ca_file else (),
    )
    return ImageChecker(RegistryClient(access), AttestationVerifier(load_trust_policies([trust])))


def run_once(
    image_checker: ImageChecker, ref: str, evaluate: Callable[..., Any]
) -> tuple[dict[str, float], ImageResult, float]:
    started = time.perf_counter()
    result = image_checker.check(ref)
    if not result.report.ok:
        raise SystemExit(f"verify failed: {result.report.errors}")
    verdict, evaluated = judge_images([result], evaluate)
    total = time.perf_counter() - started
    phases = {**result.seconds, **evaluated}
    if verdict.components != COMPONENTS:
        raise SystemExit(f"expected {COMPONENTS} components, evaluated {verdict.components}")
    return phases, result, total


def median_phases(runs: list[tuple[dict[str, float], float]]) -> tuple[dict[str, float], float]:
    phases = {p: statistics.median(r[0].get(p, 0.0) for r in runs) for p in PHASES}
    return phases, statistics.median(r[1] for r in runs)


def row(label: str, phases: dict[str, float], total: float) -> str:
    cells = "".join(f"{phases[p] * 1000:>10.1f}" for p in PHASES)
    return f"{label:<38}{cells}{total * 1000:>10.1f}"


def cosign_verify_seconds(
    server: RegistryServer, image: PushedImage | str, key: CosignKey, home: Path
) -> float:
    args = [
        str(COSIGN_BIN),
        "verify-attestation",
        "--key",
        str(key.public_key_path),
        "--type",
        "cyclonedx",
        "--insecure-ignore-tlog=true",
        "--insecure-ignore-sct=true",
        "--use-signed-timestamps=false",
        *cosign_registry_flags(server),
        image if isinstance(image, str) else image.ref,
    ]
    env = cosign_env(server, None, home)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        proc = subprocess.run(
            args, env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
        )
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            print(f"  (cosign verify-attestation failed: {proc.stderr.strip().splitlines()[-1:]})")
            return float("nan")
    return statistics.median(times)


def remote(
    work: Path, distribution: RegistryServer, key: CosignKey, trust: Path, sbom_file: Path
) -> None:
    """The three-platform image behind REMOTE_LATENCY_MS of latency: cold checks, and the peer."""
    image = push_image(
        distribution, "bench/remote", "v1", seed="remote", platforms=[*REMOTE_PLATFORMS]
    )
    platforms = [image.platform_digests[p] for p in REMOTE_PLATFORMS]
    for digest in platforms:
        cosign_attest(
            distribution,
            f"{distribution.host}/bench/remote@{digest}",
            sbom_file,
            "cyclonedx",
            key,
            new_bundle_format=True,
            workdir=work / "cosign-home",
        )
    toxiproxy = start_toxiproxy(work / "toxiproxy")
    try:
        proxy = toxiproxy.create("registry", distribution.host)
        proxy.add_toxic("latency", latency=REMOTE_LATENCY_MS)
        far = dataclasses.replace(distribution, host=proxy.listen, process=None)
        runs = []
        for _ in range(RUNS):
            fresh = checker(far, trust)
            started = time.perf_counter()
            result = fresh.check(f"{far.host}/bench/remote:v1")
            total = time.perf_counter() - started
            fresh.client.close()
            if not result.report.ok or len(result.sboms) != len(platforms):
                raise SystemExit(f"remote check failed: {result.report.errors}")
            runs.append(({**result.seconds, "evaluate": 0.0}, total))
        print()
        print(
            f"a registry {REMOTE_LATENCY_MS} ms away: an index of {len(platforms)} platforms, each "
            f"with its own attestation; cold, no evaluation; median of {RUNS} runs, milliseconds"
        )
        print(row("sbomgate, the whole index", *median_phases(runs)))
        peer = sum(
            cosign_verify_seconds(far, f"{far.host}/bench/remote@{d}", key, work / "cosign-far")
            for d in platforms
        )
        print(
            f"  peer: cosign verify-attestation of each platform manifest in turn: "
            f"{peer * 1000:.1f} ms (process starts included)"
        )
    finally:
        toxiproxy.stop()


def main() -> None:
    engine = PolicyEngine(load_policy_dir(ROOT / "policies"), {})

    def evaluate(sbom: Any, image: Any) -> Any:
        return engine.evaluate_sbom(sbom, facts=synthetic_facts, image=image)

    with tempfile.TemporaryDirectory(prefix="sbomgate-bench-verify-") as tmp:
        work = Path(tmp)
        ca = make_test_ca(work / "ca")
        sbom_file = work / "sbom.cdx.json"
        sbom_file.write_text(json.dumps(make_cyclonedx(COMPONENTS, seed=7)))
        key = cosign_keypair(work / "keys", "ecdsa")
        trust = trust_policy(work, key)
        distribution = start_distribution(work / "distribution", ca=None)
        referrers = start_referrers_registry(work / "referrers", ca=ca)
        try:
            cases = []
            for label, server, new_bundle in (
                ("legacy .att tag (distribution)", distribution, False),
                ("v3 bundle, fallback tag (distr.)", distribution, True),
                ("v3 bundle, referrers API (TLS)", referrers, True),
            ):
                image = push_image(server, f"bench/app-{len(cases)}", "v1", seed=label)
                cosign_attest(
                    server,
                    image.digest_ref,
                    sbom_file,
                    "cyclonedx",
                    key,
                    new_bundle_format=new_bundle,
                    workdir=work / "cosign-home",
                )
                cases.append((label, server, image))
            size = sbom_file.stat().st_size
            print(
                f"sbomgate verify: {COMPONENTS} components ({size / 1e6:.1f} MB SBOM), ECDSA P-256 "
                f"cosign attestation, 8 bundled policies; median of {RUNS} runs, milliseconds"
            )
            print(f"{'':<38}" + "".join(f"{p:>10}" for p in PHASES) + f"{'total':>10}")
            for label, server, image in cases:
                cold = []
                for _ in range(RUNS):
                    fresh = checker(server, trust)
                    phases, _, total = run_once(fresh, image.ref, evaluate)
                    fresh.client.close()
                    cold.append((phases, total))
                print(row(f"{label} cold", *median_phases(cold)))
                warm_checker = checker(server, trust)
                run_once(warm_checker, image.ref, evaluate)
                warm = []
                for _ in range(RUNS):
                    phases, result, total = run_once(warm_checker, image.ref, evaluate)
                    assert result.cached
                    warm.append((phases, total))
                warm_checker.client.close()
                print(row(f"{label} warm", *median_phases(warm)))
            print()
            print("peer: cosign verify-attestation (resolve, fetch, verify; no parse/evaluate)")
            for label, server, image in cases[:1] + cases[2:]:
                seconds = cosign_verify_seconds(server, image, key, work / "cosign-verify")
                print(f"  {label:<38}{seconds * 1000:>10.1f} ms (process start included)")
            remote(work, distribution, key, trust, sbom_file)
        finally:
            distribution.stop()
            referrers.stop()


if __name__ == "__main__":
    main()
