"""Benchmark: the cold path of policy evaluation (issue 16), with OPA as the peer.

The image streams are built from real SBOMs (syft's, trivy's and cdxgen's output over the
Debian root, the Python venv and the npm project that `make tools` scans, in .cache/real-sboms),
and one "application image" of about 1,000 real packages: their union with syft's SBOMs of real
folders of this machine (the Debian root, the project's venv, the node_modules of the SBOM tools
and of Verdaccio), as real images are layered. Each new build is the one before with 2% of its
packages bumped to a new patch version, as a release bumps them. Synthetic SBOMs
(bench/sbomgen.py) only for the 5,000-component size. Every package gets facts (a repository
that vouches for it, a publication date, some advisories), so every policy has work to do.

    per policy   µs per package of each bundled policy's `match`, regorus in this process
                 against `opa bench` (OPA v1.22.2) on the same policy and the same inputs
    streams      per real SBOM: a new build's evaluation time without the outcome cache, and
                 with it (filled by the build before), in one process
    5,000        an image no one has seen, and a new build of it (2% bumped): in one process,
                 and on the server's two evaluation worker processes (EvaluatorPool), cold
                 cache and warm
    memory       RSS of this process after 1,000 distinct images (40 builds each of 25
                 applications), the outcome cache within its default bound

Figures only: nothing here asserts a timing. Run with `make bench`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from sbomgate._internal.gcpause import settle_long_lived  # noqa: E402
from sbomgate.intel.model import PackageFacts  # noqa: E402
from sbomgate.policy import PolicyEngine, build_input  # noqa: E402
from sbomgate.policy._fold import fold_constants  # noqa: E402
from sbomgate.policy._regorus import RegoEngine  # noqa: E402
from sbomgate.policy.isolated import EvaluatorPool, IsolatedPolicyEngine  # noqa: E402
from sbomgate.runtime import load_policies  # noqa: E402
from sbomgate.sbom import Component, Sbom, load_sbom_file, parse_sbom  # noqa: E402
from sbomgen import make_cyclonedx  # noqa: E402

CORPUS = ROOT / ".cache" / "real-sboms"
OPA = ROOT / ".cache" / "bin" / "opa"
STREAMS = (
    "syft-*/debian-bookworm.cyclonedx-json",
    "trivy-*/debian-bookworm.cyclonedx-json",
    "syft-*/python-env.cyclonedx-json",
    "cdxgen-*/node-app.cyclonedx-json",
)
# The layers of the "application image" (union by purl).
LAYERS = (
    "syft-*/debian-bookworm.cyclonedx-json",
    "trivy-*/debian-bookworm.spdx-json",
    "syft-*/python-env.cyclonedx-json",
    "trivy-*/python-env.cyclonedx-json",
    "syft-*/node-app.cyclonedx-json",
    "cdxgen-*/node-app.cyclonedx-json",
)
# Real folders syft scans for the application image (Debian base, Python, two Node trees).
APP_DIRS = (
    ".cache/sbom-targets/debian-bookworm",
    ".venv",
    ".cache/sbom-tools",
    ".cache/verdaccio",
)
SYFT = ROOT / ".cache" / "bin" / "syft"
BUILDS = 8
BUMPED = 0.02
BIG = 5_000
OPA_INPUTS = 8  # inputs per policy for `opa bench` (one run each)
MEMORY_APPS, MEMORY_BUILDS = 25, 40
NOW = 1_796_212_800_000_000_000  # 2026-12-02T12:00:00Z: ages do not move during the run


def facts(component: Component) -> PackageFacts:
    """Varied but deterministic facts: a repository (mostly hosted), a publication date (some
    young), an advisory for some."""
    digest = hashlib.sha256((component.purl or component.name).encode()).digest()
    osv = (
        {
            "id": f"GHSA-{digest.hex()[:4]}",
            "aliases": [f"CVE-2025-{digest[4]:04d}"],
            "severity": [{"type": "CVSS_V3", "score": "x", "numerical_score": 5 + digest[5] % 5}],
            "affected": [{"ranges": [{"events": [{"introduced": "0"}, {"fixed": "99.0"}]}]}],
        },
    )
    return PackageFacts(
        repository={
            "name": "internal",
            "kind": component.purl_type or "generic",
            "url": "https://repo.internal/",
            "hosting": "proxied" if digest[0] % 4 == 0 else "hosted",
        },
        published_at="2026-11-28T00:00:00Z" if digest[1] % 10 == 0 else "2024-01-01T00:00:00Z",
        first_published_at="2019-01-01T00:00:00Z",
        osv=osv if digest[2] % 8 == 0 else (),
    )


def bump(component: Component) -> Component:
    """The next patch release of a package (its purl and version both)."""
    version = f"{component.version or '0'}.1"
    purl = component.purl
    if purl is not None and component.version:
        purl = purl.replace(f"@{component.version}", f"@{version}")
    return dataclasses.replace(component, version=version, purl=purl)


def next_build(sbom: Sbom, rng: random.Random) -> Sbom:
    components = list(sbom.components)
    for index in rng.sample(range(len(components)), max(1, int(len(components) * BUMPED))):
        components[index] = bump(components[index])
    return dataclasses.replace(sbom, components=tuple(components))


def stream(sbom: Sbom, rng: random.Random, builds: int = BUILDS) -> list[Sbom]:
    """`builds` releases, each bumping BUMPED of the packages of the one before."""
    found = [sbom]
    while len(found) < builds:
        found.append(next_build(found[-1], rng))
    return found


# Whether this engine counts ages itself (issue 16; older ones read the clock in Rego): the
# same script measures the engine before the change, for the before/after table.
_TAKES_NOW = "now_ns" in inspect.signature(PolicyEngine.evaluate_sbom).parameters
_POOL_CACHE = "outcome_cache_bytes" in inspect.signature(IsolatedPolicyEngine).parameters


def pooled_engine(policies: Any, pool: EvaluatorPool, *, cache: bool) -> PolicyEngine:
    """An engine on the pool's workers, with or without the outcome cache."""
    if _POOL_CACHE:
        return IsolatedPolicyEngine(
            policies, pool=pool, outcome_cache_bytes=(64 << 20) if cache else 0
        )
    return IsolatedPolicyEngine(policies, pool=pool)


def timed(engine: PolicyEngine, sbom: Sbom, number: int) -> float:
    image = {"ref": f"registry.internal/app:{number}", "digest": f"sha256:{number:064x}"}
    clock = {"now_ns": NOW} if _TAKES_NOW else {}
    started = time.perf_counter()
    engine.evaluate_sbom(sbom, facts=facts, image=image, workload={"namespace": "apps"}, **clock)
    return time.perf_counter() - started


def new_builds(engine: Callable[[], PolicyEngine], builds: list[Sbom]) -> float:
    """The median seconds of builds 2..n on one engine (the first fills its cache)."""
    one = engine()
    seconds = [timed(one, build, number) for number, build in enumerate(builds)]
    return statistics.median(seconds[1:])


def find(pattern: str) -> Path:
    found = sorted(CORPUS.glob(pattern))
    if not found:
        sys.exit(f"{CORPUS / pattern} is missing: run `make test` (its real-SBOM tests make it)")
    return found[-1]


def scanned(directory: Path) -> Path:
    """syft's CycloneDX of a real directory of this machine, made once and cached."""
    out = CORPUS / "bench-app" / f"{directory.name.lstrip('.')}.cyclonedx-json"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        if not SYFT.exists() or not directory.exists():
            sys.exit(f"{SYFT} or {directory} is missing: run `make tools`")
        subprocess.run(
            [str(SYFT), "scan", f"dir:{directory}", "-q", "-o", f"cyclonedx-json={out}"],
            check=True,
            env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
        )
    return out


def application_image() -> Sbom:
    """One image of real packages: the union by purl of LAYERS and of syft's SBOMs of real
    folders of this machine (a Debian root, the project's venv, two node_modules trees)."""
    seen: dict[str, Component] = {}
    first: Sbom | None = None
    paths = [find(pattern) for pattern in LAYERS] + [scanned(ROOT / d) for d in APP_DIRS]
    for path in paths:
        sbom = load_sbom_file(path)
        first = first or sbom
        for component in sbom.components:
            seen.setdefault(component.purl or component.name, component)
    assert first is not None
    return dataclasses.replace(first, components=tuple(seen.values()))


# --------------------------------------------------------------------------- per policy


def regorus_us(
    policy: Any, documents: Sequence[str], data: dict[str, Any], *, fold: bool = False
) -> float:
    """µs per document of `match` on a regorus engine of the one policy: as written, or with
    the rules that depend on data alone folded into literals, as PolicyEngine runs it."""
    modules = fold_constants([policy.module], data) if fold else [policy.module]
    engine = RegoEngine(modules, data)
    for document in documents:  # warm
        engine.set_input_json(document)
        engine.eval_rule(policy.match_rule)
    rounds = max(1, 2000 // len(documents))
    started = time.perf_counter()
    for _ in range(rounds):
        for document in documents:
            engine.set_input_json(document)
            engine.eval_rule(policy.match_rule)
    return (time.perf_counter() - started) / (rounds * len(documents)) * 1e6


def opa_us(policy_file: Path, documents: Sequence[str], work: Path) -> float:
    """µs per document of `match` by `opa bench`, one run per input, averaged."""
    if not OPA.exists():
        sys.exit(f"{OPA} is missing: run `make tools`")
    per_op = []
    for index, document in enumerate(documents):
        input_file = work / f"input-{index}.json"
        input_file.write_text(document)
        proc = subprocess.run(
            [
                str(OPA),
                "bench",
                "--format",
                "json",
                "-d",
                str(policy_file),
                "-i",
                str(input_file),
                "data.cloudsmith.match",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout)
        per_op.append(result["T"] / result["N"] / 1000)
    return statistics.mean(per_op)


def per_policy(sbom: Sbom) -> None:
    policies = load_policies(None)
    rng = random.Random(3)
    components = rng.sample(list(sbom.components), min(OPA_INPUTS, len(sbom.components)))
    clock = {"now_ns": NOW} if _TAKES_NOW else {}
    documents = [orjson.dumps(build_input(c, facts=facts(c), **clock)).decode() for c in components]
    print(
        f"\nper policy: µs per package for `match`, {len(documents)} packages of the "
        f"application image, regorus in-process vs `opa bench` (same policy, same input)"
    )
    print("  (regorus: as written; folded: its constant rules folded, as sbomgate runs it)")
    print(f"  {'policy':<22}{'regorus':>10}{'folded':>10}{'OPA':>10}{'folded/OPA':>12}")
    total_r = total_f = total_o = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for policy in policies:
            policy_file = work / f"{policy.name}.rego"
            policy_file.write_text(policy.module.written)
            r = regorus_us(policy, documents, {})
            f = regorus_us(policy, documents, {}, fold=True)
            o = opa_us(policy_file, documents, work)
            total_r, total_f, total_o = total_r + r, total_f + f, total_o + o
            print(f"  {policy.name:<22}{r:>10.1f}{f:>10.1f}{o:>10.1f}{f / o:>11.2f}x")
    print(
        f"  {'all ten, in sum':<22}{total_r:>10.1f}{total_f:>10.1f}{total_o:>10.1f}"
        f"{total_f / total_o:>11.2f}x"
    )


# --------------------------------------------------------------------------- streams


def streams(app: Sbom) -> float:
    policies = load_policies(None)
    rng = random.Random(1)
    print(
        f"\nrelease streams from real SBOMs: a new build ({BUMPED:.0%} of packages bumped), "
        f"median of {BUILDS - 1}, one process"
    )
    print(
        f"  {'SBOM':<44}{'packages':>9}{'no cache':>11}{'cache':>10}{'speed-up':>10}{'µs/pkg':>8}"
    )
    rows: list[tuple[str, Sbom]] = [
        (str(find(p).relative_to(CORPUS)), load_sbom_file(find(p))) for p in STREAMS
    ]
    rows.append(("application image (real, union)", app))
    per_package = 0.0
    for name, sbom in rows:
        builds = stream(sbom, rng)
        without = new_builds(lambda: PolicyEngine(policies, outcome_cache_bytes=0), builds)
        with_cache = new_builds(lambda: PolicyEngine(policies), builds)
        per_package = with_cache / len(sbom.components) * 1e6
        print(
            f"  {name:<44}{len(sbom.components):>9}{without * 1000:>9.1f}ms"
            f"{with_cache * 1000:>8.1f}ms{without / with_cache:>9.1f}x{per_package:>8.1f}"
        )
    return per_package


# --------------------------------------------------------------------------- 5,000


def big(pool: EvaluatorPool) -> None:
    policies = load_policies(None)
    rng = random.Random(5)
    unseen = [
        parse_sbom(orjson.dumps(make_cyclonedx(BIG, seed=seed)), source=f"big-{seed}")
        for seed in (11, 12, 13)
    ]
    print(f"\n{BIG:,} components: evaluation only (no registry, no verification)")
    print(f"  {'':<46}{'one process':>12}{'2 workers':>12}")
    # Each engine's policies compiled before the clock starts (in this process, and in each
    # worker), as the server compiles a policy set before its first review; and the heap made
    # so far settled as the server settles its own at start (_internal/gcpause.py). Measured
    # with both in the figure, the first image took some 200 ms more.
    local_engine = PolicyEngine(policies, outcome_cache_bytes=0)
    pooled_engine_ = pooled_engine(policies, pool, cache=False)
    warm = parse_sbom(orjson.dumps(make_cyclonedx(BIG, seed=10)), source="big-10")
    for engine in (local_engine, pooled_engine_):
        timed(engine, warm, 10)
    settle_long_lived()
    local = [timed(local_engine, s, i) for i, s in enumerate(unseen)]
    pooled = [timed(pooled_engine_, s, i) for i, s in enumerate(unseen)]
    print(
        f"  {'an image no one has seen (median of 3)':<46}"
        f"{statistics.median(local) * 1000:>10.0f}ms{statistics.median(pooled) * 1000:>10.0f}ms"
    )
    builds = stream(unseen[0], rng, 6)
    one = PolicyEngine(policies)
    two = pooled_engine(policies, pool, cache=True)
    local_builds = [timed(one, b, i) for i, b in enumerate(builds)]
    pooled_builds = [timed(two, b, i) for i, b in enumerate(builds)]
    print(
        f"  {'a new build of it, 2% bumped (median of 5)':<46}"
        f"{statistics.median(local_builds[1:]) * 1000:>10.0f}ms"
        f"{statistics.median(pooled_builds[1:]) * 1000:>10.0f}ms"
    )


# --------------------------------------------------------------------------- memory


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(app: Sbom) -> None:
    policies = load_policies(None)
    rng = random.Random(7)
    engine = PolicyEngine(policies)
    before = rss_mib()
    started = time.perf_counter()
    apps = []
    for number in range(MEMORY_APPS):
        # Each application: the shared base and a share of its own packages, renamed apart.
        own = [
            dataclasses.replace(
                c,
                name=f"{c.name}-app{number}",
                purl=c.purl.replace(f"/{c.name}@", f"/{c.name}-app{number}@") if c.purl else None,
            )
            for c in app.components
            if c.purl_type in ("pypi", "npm")
        ]
        base = [c for c in app.components if c.purl_type not in ("pypi", "npm")]
        apps.append(dataclasses.replace(app, components=tuple(base + own)))
    images = 0
    current = list(apps)
    for _ in range(MEMORY_BUILDS):
        for index, sbom in enumerate(current):
            timed(engine, sbom, images)
            images += 1
            current[index] = next_build(sbom, rng)
    cache = engine.outcomes
    assert cache is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nmemory: {images:,} distinct images ({MEMORY_APPS} applications x {MEMORY_BUILDS} "
        f"builds, {len(app.components):,} packages each) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    ratio = cache.hits / max(1, cache.hits + cache.misses)
    print(
        f"  outcome cache: {len(cache):,} entries, {cache.size_bytes / 2**20:.1f} MiB of "
        f"{cache.max_bytes / 2**20:.0f} MiB; hit ratio {ratio:.0%}"
    )
    print(f"  RSS {before:.0f} MiB before, {rss_mib():.0f} MiB after (peak {peak:.0f} MiB)")


def main() -> None:
    app = application_image()
    print(
        f"application image: {len(app.components):,} packages from {len(LAYERS)} real SBOMs and "
        f"syft over {', '.join(APP_DIRS)}"
    )
    per_policy(app)
    streams(app)
    pool = EvaluatorPool(processes=2, budget=600.0)
    try:
        pool.start()
        big(pool)
    finally:
        pool.close()
    memory(app)


if __name__ == "__main__":
    main()
