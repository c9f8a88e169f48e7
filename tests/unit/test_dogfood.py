"""Dogfood: sbomgate's own environment, as a CycloneDX SBOM made by cyclonedx-python-lib,
evaluated by sbomgate with the bundled policies. Every installed distribution must be pinned
by the project's lock files (the trusted source here), and no license may be refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sbomgate_admits_its_own_environment(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "own_sbom.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbomgate.cli",
            "eval",
            "--sbom",
            str(tmp_path / "sbomgate.cdx.json"),
            "--facts",
            str(tmp_path / "facts.yaml"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdict = json.loads(result.stdout)
    problems = [f"{f['purl']}: {f['policy']}: {f['reasons']}" for f in verdict["violations"]]
    assert result.returncode == 0 and verdict["allowed"], "\n".join(problems) or result.stderr
    assert verdict["summary"]["components"] > 50
