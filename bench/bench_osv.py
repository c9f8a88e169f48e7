"""Load and match figures for the OSV index.

Synthesises OSV records (PyPI, npm, Maven, Go) in OSV's schema, writes one all.zip per
ecosystem into a temporary directory, then reports load time, memory growth and match time.

    .venv/bin/python bench/bench_osv.py [--records 200000] [--components 5000] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import orjson

from sbomgate.intel.osv import load_osv

ECOSYSTEMS = ("PyPI", "npm", "Maven", "Go")
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "core",
    "util",
    "http",
    "json",
    "yaml",
    "auth",
    "crypto",
    "parse",
    "log",
    "cache",
    "net",
    "data",
    "client",
    "server",
    "async",
    "stream",
    "image",
    "text",
    "xml",
    "sql",
    "orm",
    "test",
    "mock",
    "cli",
    "web",
    "api",
    "grpc",
    "proto",
]
VECTORS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:L/I:L/A:N",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
)


def package_name(rng: random.Random, eco: str, n: int) -> str:
    a, b = rng.choice(WORDS), rng.choice(WORDS)
    if eco == "Maven":
        return f"org.{a}.{b}:{a}-{b}-{n}"
    if eco == "Go":
        return f"github.com/{a}{n}/{b}"
    if eco == "npm":
        return f"@{a}/{b}-{n}" if n % 4 == 0 else f"{a}-{b}-{n}"
    return f"{a}-{b}-{n}"


def version(rng: random.Random, eco: str) -> str:
    v = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    if eco == "PyPI" and rng.random() < 0.05:
        v += rng.choice(("rc1", "b2", ".post1"))
    if eco == "npm" and rng.random() < 0.05:
        v += "-beta.1"
    return v


def sorted_versions(rng: random.Random, eco: str, k: int) -> list[str]:
    from sbomgate.intel.ecosystems import version_key

    vs = {version(rng, eco) for _ in range(k)}
    return sorted(vs, key=lambda v: version_key(eco, v))


def make_record(rng: random.Random, eco: str, i: int, pkg: str) -> dict[str, Any]:
    rid = f"GHSA-{i:04x}-{rng.randrange(1 << 16):04x}-{rng.randrange(1 << 16):04x}"
    ranges: list[dict[str, Any]] = []
    aff: dict[str, Any] = {"package": {"ecosystem": eco, "name": pkg, "purl": f"pkg:x/{pkg}"}}
    shape = rng.random()
    vs = sorted_versions(rng, eco, 4)
    if shape < 0.45:
        ranges.append({"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": vs[-1]}]})
    elif shape < 0.65:
        ranges.append({"type": "ECOSYSTEM", "events": [{"introduced": vs[0]}, {"fixed": vs[-1]}]})
        if len(vs) > 2:
            ranges.append({"type": "ECOSYSTEM", "events": [{"introduced": vs[1]}]})
    elif shape < 0.75:
        ranges.append(
            {"type": "ECOSYSTEM", "events": [{"introduced": vs[0]}, {"last_affected": vs[-1]}]}
        )
    elif shape < 0.85:
        ranges.append(
            {
                "type": "SEMVER" if eco in ("npm", "Go") else "ECOSYSTEM",
                "events": [{"introduced": "0"}, {"fixed": vs[-1]}],
            }
        )
        ranges.append(
            {
                "type": "GIT",
                "repo": f"https://github.com/example/{i}",
                "events": [{"introduced": "0"}, {"fixed": f"{rng.randrange(1 << 64):016x}"}],
            }
        )
    if shape >= 0.6:
        aff["versions"] = sorted_versions(rng, eco, rng.randint(1, 25))
    if ranges:
        aff["ranges"] = ranges
    if "versions" not in aff and not ranges:
        aff["versions"] = vs
    rec: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": "2024-05-01T12:00:00Z",
        "published": "2023-01-01T00:00:00Z",
        "aliases": [f"CVE-20{rng.randint(15, 24)}-{rng.randint(1000, 99999)}"],
        "summary": f"{rng.choice(WORDS)} {rng.choice(WORDS)} vulnerability in {pkg}",
        "details": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))),
        "severity": [
            {"type": "CVSS_V3" if "3.1" in (v := rng.choice(VECTORS)) else "CVSS_V4", "score": v}
        ],
        "affected": [aff],
        "references": [
            {"type": "ADVISORY", "url": f"https://github.com/advisories/{rid}"},
            {"type": "WEB", "url": f"https://example.com/{pkg}/issues/{i}"},
        ],
        "database_specific": {"severity": "HIGH", "cwe_ids": ["CWE-79"], "github_reviewed": True},
    }
    return rec


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--components", type=int, default=5_000)
    ap.add_argument("--tracemalloc", action="store_true", help="also trace allocations (slower)")
    args = ap.parse_args()
    rng = random.Random(42)

    per_eco = args.records // len(ECOSYSTEMS)
    packages: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = []
        total_bytes = 0
        for eco in ECOSYSTEMS:
            # ~3 advisories per package on average, skewed.
            pkgs = [package_name(rng, eco, n) for n in range(per_eco // 3)]
            packages[eco] = pkgs
            path = Path(tmp) / eco / "all.zip"
            path.parent.mkdir()
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for i in range(per_eco):
                    pkg = pkgs[min(int(rng.expovariate(1 / (len(pkgs) / 4))), len(pkgs) - 1)]
                    rec = make_record(rng, eco, i, pkg)
                    data = orjson.dumps(rec, option=orjson.OPT_INDENT_2)
                    total_bytes += len(data)
                    zf.writestr(f"{rec['id']}.json", data)
            paths.append(path)
        zsize = sum(p.stat().st_size for p in paths)
        print(
            f"synthesised {per_eco * len(ECOSYSTEMS):,} records in {time.perf_counter() - t0:.1f} s"
        )
        print(f"  JSON {total_bytes / 2**20:.0f} MiB, zipped {zsize / 2**20:.0f} MiB")

        gc.collect()
        before = rss_kib()
        if args.tracemalloc:
            tracemalloc.start()
        t0 = time.perf_counter()
        index = load_osv(paths)
        load_s = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[0] if args.tracemalloc else None
        if args.tracemalloc:
            tracemalloc.stop()
        gc.collect()
        after = rss_kib()
        print(
            f"load: {len(index):,} records, {index.package_count:,} packages, "
            f"{index.skipped} skipped, {load_s:.1f} s ({len(index) / load_s:,.0f} records/s)"
        )
        print(
            f"RSS: {before / 1024:.0f} MiB -> {after / 1024:.0f} MiB "
            f"(+{(after - before) / 1024:.0f} MiB)"
        )
        if traced is not None:
            print(f"tracemalloc: {traced / 2**20:.0f} MiB held by the index")

        components = []
        for _ in range(args.components):
            eco = rng.choice(ECOSYSTEMS)
            if rng.random() < 0.5:
                # Hits (most of the time): a known package at a random version.
                name = rng.choice(packages[eco][: max(1, len(packages[eco]) // 4)])
            else:
                name = package_name(rng, eco, 10_000_000 + rng.randrange(10**6))
            v = version(rng, eco)
            components.append((eco, "v" + v if eco == "Go" else v, name))
        t0 = time.perf_counter()
        hits = records = 0
        for eco, v, name in components:
            out = index.match(eco, name, v)
            hits += bool(out)
            records += len(out)
        match_s = time.perf_counter() - t0
        print(
            f"match: {len(components):,} components in {match_s * 1000:.0f} ms "
            f"({match_s / len(components) * 1e6:.0f} µs each); {hits:,} affected, "
            f"{records:,} records returned"
        )
        t0 = time.perf_counter()
        for eco, v, name in components:
            index.match(eco, name, v)
        print(f"match again (version keys cached): {(time.perf_counter() - t0) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
