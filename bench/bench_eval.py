"""Benchmark: parse and evaluate 5,000- and 20,000-component SBOMs, with peers in the same run.

Prints, per size:
- sbomgate parse + normalise time (median of 3),
- sbomgate full evaluation with the bundled policies (every component, every policy in
  precedence order, with synthetic facts so that every policy has work to do),
- cyclonedx-python-lib's `Bom.from_json` on the same document (5,000 only: it is slow),
- `opa eval` (the real OPA, v1.22.2) evaluating the same inputs against each bundled policy
  (one process per policy, all inputs `with input as` in a comprehension; process start and
  compilation included, as a CLI user pays them).

Figures only: nothing here asserts a timing. Run with `make bench`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from sbomgate.policy import PackageFacts, PolicyEngine, build_input, load_policy_dir  # noqa: E402
from sbomgate.sbom import Component, parse_sbom  # noqa: E402
from sbomgen import make_cyclonedx  # noqa: E402

MALWARE = {"id": "MAL-2025-0001", "summary": "malicious"}
VULN = {
    "id": "GHSA-bench-0001",
    "aliases": ["CVE-2025-0001"],
    "summary": "bench vulnerability",
    "severity": [
        {
            "type": "CVSS_V3",
            "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "numerical_score": 9.8,
        }
    ],
    "affected": [
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99"}]}]}
    ],
}


def synthetic_facts(component: Component) -> PackageFacts:
    """Deterministic facts: 2% unverified, 1% malware, 5% vulnerable, the rest clean."""
    bucket = (
        int(hashlib.sha256((component.purl or component.name).encode()).hexdigest()[:4], 16) % 100
    )
    if bucket < 2:
        return PackageFacts(repository=None, osv=())
    osv: tuple[dict[str, Any], ...] = ()
    if bucket < 3:
        osv = (MALWARE,)
    elif bucket < 8:
        osv = (VULN,)
    return PackageFacts(
        repository={"name": "trusted", "url": "https://repo.example/", "hosting": "hosted"},
        published_at="2024-01-01T00:00:00Z",
        osv=osv,
    )


def median_seconds(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def opa_seconds(opa: str, policies_dir: Path, inputs: list[dict[str, Any]]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "inputs.json"
        data.write_bytes(orjson.dumps({"__inputs": inputs}))
        query = (
            "m := {i: v | some i, x in data.__inputs; v := data.cloudsmith.match with input as x}; "
            "r := {i: v | some i, x in data.__inputs; v := data.cloudsmith.reason with input as x}"
        )
        started = time.perf_counter()
        for policy in sorted(policies_dir.glob("*.rego")):
            if policy.name.endswith("_test.rego"):
                continue
            proc = subprocess.run(
                [opa, "eval", "-f", "json", "-d", str(policy), "-d", str(data), query],
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"opa eval failed on {policy.name}: {proc.stderr.decode()[:300]}")
            json.loads(proc.stdout)
        return time.perf_counter() - started


def main() -> None:
    policies_dir = ROOT / "policies"
    policies = load_policy_dir(policies_dir)
    opa = str(ROOT / ".cache" / "bin" / "opa")
    if not Path(opa).exists():
        opa = shutil.which("opa") or ""
    print(f"bundled policies: {len(policies)}; python {sys.version.split()[0]}")
    print(f"{'components':>10} {'parse ms':>9} {'eval s':>8} {'µs/comp':>8} "
          f"{'cdx-lib s':>10} {'opa eval s':>11}")  # fmt: skip
    for n in (5000, 20000):
        raw = orjson.dumps(make_cyclonedx(n, seed=1))
        parse = median_seconds(lambda raw=raw: parse_sbom(raw, source="bench.json"), 3)
        sbom = parse_sbom(raw, source="bench.json")
        engine = PolicyEngine(policies)
        # Warm up: build this thread's regorus engines on a small SBOM first.
        engine.evaluate_sbom(parse_sbom(orjson.dumps(make_cyclonedx(20)), source="warm.json"))
        evaluation = median_seconds(
            lambda sbom=sbom, engine=engine: engine.evaluate_sbom(sbom, facts=synthetic_facts), 1
        )
        verdict = engine.evaluate_sbom(sbom, facts=synthetic_facts)
        cdx = "-"
        if n == 5000:
            from cyclonedx.model.bom import Bom

            started = time.perf_counter()
            Bom.from_json(orjson.loads(raw))  # type: ignore[attr-defined]
            cdx = f"{time.perf_counter() - started:.2f}"
        opa_s = "-"
        if opa:
            inputs = [build_input(c, facts=synthetic_facts(c)) for c in sbom.components]
            opa_s = f"{opa_seconds(opa, policies_dir, inputs):.2f}"
        print(
            f"{n:>10} {parse * 1000:>9.1f} {evaluation:>8.2f} "
            f"{evaluation / n * 1e6:>8.0f} {cdx:>10} {opa_s:>11}"
        )
        print(
            f"{'':>10} verdict: {len(verdict.violations)} violations, "
            f"{len(verdict.warnings)} warnings, {len(verdict.errors)} errors"
        )


if __name__ == "__main__":
    main()
