"""Trusted-source checks of 1,000 packages against a real pypiserver on loopback, cold and warm.

    .venv/bin/python bench/bench_sources.py [--packages 1000] [--per-host 8]

Cold: a new TrustedSources (empty cache), every package's index page fetched once. Warm: the
same lookups again, answered from the cache. Then what a new build's admission does per
package it shares with the build before: `IntelFacts.prefetch`, then its facts. pypiserver
runs its default (single-threaded wsgiref) server, so the cold figure is mostly its speed,
not ours.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sbomgate.intel.facts import IntelFacts  # noqa: E402
from sbomgate.intel.sources import SourceConfig, TrustedSources  # noqa: E402
from sbomgate.sbom.model import Component  # noqa: E402
from support.index_servers import build_sdist, start_pypiserver  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--per-host", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        packages = Path(tmp) / "packages"
        packages.mkdir()
        started = time.perf_counter()
        for i in range(args.packages):
            build_sdist(packages, f"bench-pkg-{i:04d}", "1.0")
        print(f"built {args.packages} sdists in {time.perf_counter() - started:.2f} s")
        server = start_pypiserver(packages, Path(tmp) / "pypiserver.log")
        try:
            # Half found at the version, a quarter at another version, a quarter unknown.
            components = []
            for i in range(args.packages):
                name = f"bench-pkg-{i:04d}" if i % 4 != 3 else f"absent-pkg-{i:04d}"
                version = "2.0" if i % 4 == 2 else "1.0"
                purl = f"pkg:pypi/{name}@{version}"
                components.append(Component(name, version, purl, "pypi", format="python"))
            config = SourceConfig("bench", "pypi", server.url)
            for per_host in sorted({1, args.per_host}):
                with TrustedSources([config], per_host=per_host) as sources:
                    for phase in ("cold", "warm"):
                        before = sources.requests_sent
                        started = time.perf_counter()
                        answers = sources.lookup_many(components)
                        elapsed = time.perf_counter() - started
                        found = sum(a.found_version for a in answers)
                        errors = sum(a.error is not None for a in answers)
                        print(
                            f"per_host={per_host:<2} {phase}: {len(components)} lookups in "
                            f"{elapsed * 1000:8.1f} ms ({elapsed / len(components) * 1e6:8.1f} µs "
                            f"each), {sources.requests_sent - before} requests, "
                            f"{found} found, {errors} errors"
                        )
                        if errors:
                            first = next(a.error for a in answers if a.error is not None)
                            print(f"  first error: {first}")
                    # What an admission does per package of a new build, whose packages were
                    # asked about for the build before: prefetch, then the facts one by one.
                    facts = IntelFacts(sources=sources)
                    facts.prefetch(components)
                    given = [facts(c) for c in components]
                    started = time.perf_counter()
                    facts.prefetch(components)
                    again = [facts(c) for c in components]
                    elapsed = time.perf_counter() - started
                    same = sum(a is b for a, b in zip(given, again, strict=True))
                    print(
                        f"per_host={per_host:<2} facts of a new build (prefetch, then each "
                        f"package): {elapsed / len(components) * 1e6:6.1f} µs a package, "
                        f"{same} of {len(components)} the same facts object as before"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
