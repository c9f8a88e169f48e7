"""Benchmark: the outcome cache on a release stream (policy/outcomes.py).

The image stream is built from real SBOMs (syft's and trivy's CycloneDX of the Debian root
and the Python venv that `make tools` scans, in .cache/real-sboms): each "build" is the SBOM
before it with 2% of its packages bumped to a new patch version, as a release bumps them.
Per build, the bundled policies evaluate every package, with facts for each (a hosted
repository, a publication date), through the same engine:

- without the cache (`outcome_cache_bytes=0`): every package evaluated, as before;
- with it: the first build fills it, each later build evaluates only the bumped packages
  with every policy and the rest with the policies that read the clock (package age).

Prints, per SBOM, the median evaluation time of the later builds with and without the cache,
the hit ratio and the cache's size. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from sbomgate.intel.model import PackageFacts  # noqa: E402
from sbomgate.policy import PolicyEngine  # noqa: E402
from sbomgate.runtime import load_policies  # noqa: E402
from sbomgate.sbom import Component, Sbom, load_sbom_file  # noqa: E402

CORPUS = ROOT / ".cache" / "real-sboms"
SBOMS = (
    "syft-*/debian-bookworm.cyclonedx-json",
    "trivy-*/debian-bookworm.cyclonedx-json",
    "syft-*/python-env.cyclonedx-json",
)
BUILDS = 8
BUMPED = 0.02


def facts(component: Component) -> PackageFacts:
    """A hosted repository vouches for every package, published long ago."""
    return PackageFacts(
        repository={
            "name": "internal",
            "kind": component.purl_type or "generic",
            "url": "https://repo.internal/",
            "hosting": "hosted",
        },
        published_at="2024-01-01T00:00:00Z",
    )


def bump(component: Component) -> Component:
    """The next patch release of a package (its purl and version both)."""
    version = f"{component.version or '0'}.1"
    purl = component.purl
    if purl is not None:
        purl = purl.replace(f"@{component.version}", f"@{version}")
    return dataclasses.replace(component, version=version, purl=purl)


def stream(sbom: Sbom, rng: random.Random) -> list[Sbom]:
    """BUILDS releases, each bumping BUMPED of the packages of the one before."""
    builds = [sbom]
    for _ in range(BUILDS - 1):
        components = list(builds[-1].components)
        for index in rng.sample(range(len(components)), max(1, int(len(components) * BUMPED))):
            components[index] = bump(components[index])
        builds.append(dataclasses.replace(builds[-1], components=tuple(components)))
    return builds


def run(engine: PolicyEngine, builds: list[Sbom]) -> list[float]:
    """Seconds per build, each as a new image."""
    seconds = []
    for number, build in enumerate(builds):
        image = {"ref": f"registry.internal/app:{number}", "digest": f"sha256:{number:064x}"}
        started = time.perf_counter()
        engine.evaluate_sbom(build, facts=facts, image=image, workload={"namespace": "apps"})
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    policies = load_policies(None)
    rng = random.Random(1)
    print(f"{'SBOM':48} {'packages':>8} {'no cache':>10} {'cache':>10} {'speed-up':>9} "
          f"{'hits':>6} {'cache KiB':>10}")  # fmt: skip
    for pattern in SBOMS:
        found = sorted(CORPUS.glob(pattern))
        if not found:
            sys.exit(f"{CORPUS / pattern} is missing: run `make tools` (sbom-targets)")
        sbom = load_sbom_file(found[-1])
        builds = stream(sbom, rng)
        plain = run(PolicyEngine(policies), builds)
        cached_engine = PolicyEngine(policies)
        cached = run(cached_engine, builds)
        cache = cached_engine.outcomes
        assert cache is not None
        hits = cache.hits / max(1, cache.hits + cache.misses)
        # The first build fills the cache: the later ones are the new builds of the stream.
        without, with_cache = statistics.median(plain[1:]), statistics.median(cached[1:])
        name = str(found[-1].relative_to(CORPUS))
        print(f"{name:48} {len(sbom.components):>8} {without * 1000:>8.1f}ms "
              f"{with_cache * 1000:>8.1f}ms {without / with_cache:>8.1f}x {hits:>6.0%} "
              f"{cache.size_bytes / 1024:>10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
