"""The repository's paths the tests read: the examples, the bundled policies, the fixtures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICIES = ROOT / "policies"
SBOM_FIXTURES = ROOT / "tests" / "fixtures" / "sbom"

# The two example workloads' SBOMs and the facts that make the good one's packages trusted.
GOOD_SBOM = EXAMPLES / "good-app.cdx.json"
BAD_SBOM = EXAMPLES / "bad-app.spdx.json"
FACTS = EXAMPLES / "trusted-facts.yaml"
