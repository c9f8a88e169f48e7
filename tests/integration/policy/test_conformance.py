"""Conformance: every bundled policy and a corpus of Cloudsmith-style policies, run through
our engine (regorus) and through a real `opa eval`, must give the same `match` and `reason`,
on every input: versions that are not SemVer (`0.15`) included.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from sbomgate.policy import load_policy
from sbomgate.policy._regorus import RegoEngine
from support.paths import POLICIES as POLICIES_DIR

HERE = Path(__file__).parent
CORPUS = HERE / "conformance"
INPUTS: list[dict[str, Any]] = yaml.safe_load((CORPUS / "inputs.yaml").read_text())
POLICIES = sorted(CORPUS.glob("*.rego")) + sorted(
    p for p in POLICIES_DIR.glob("*.rego") if not p.name.endswith("_test.rego")
)
DATA_VARIANTS: list[dict[str, Any]] = [
    {},
    {
        "sbomgate": {
            "formats": ["maven"],
            "license": {"allow": ["MIT", "Apache-2.0"]},
            "blocklist": ["python:h11:0.14.0", "npm:evil"],
            "allow": ["maven:crit-lib"],
            "vulnerability": {"min_score": 1.0},
            "package_age": {"min_days": 3650},
            "unverified": {"exempt_formats": ["npm"]},
        }
    },
]


def _normalise(value: Any) -> Any:
    """Sets and object-form reasons compare as sorted lists of messages."""
    if value is None:
        return None
    if isinstance(value, dict):
        return sorted(value)
    if isinstance(value, set | frozenset | list | tuple):
        return sorted(json.dumps(v, sort_keys=True) if not isinstance(v, str) else v for v in value)
    return value


def _ours(path: Path, data: dict[str, Any]) -> list[tuple[Any, Any]]:
    policy = load_policy(str(path), path.read_text())
    engine = RegoEngine([policy.module], data)
    out = []
    for document in INPUTS:
        engine.set_input_json(orjson.dumps(document).decode())
        reason = engine.eval_rule(policy.reason_rule)
        match = engine.eval_rule(policy.match_rule)
        out.append((_normalise(match), _normalise(reason)))
    return out


def _opa(opa_bin: str, path: Path, data: dict[str, Any], tmp: Path) -> list[tuple[Any, Any]]:
    """All inputs in one `opa eval`, each evaluated `with input as` it."""
    package = "cloudsmith"
    (tmp / "data.json").write_text(json.dumps({**data, "__inputs": INPUTS}))
    query = (
        f"m := {{i: v | some i, x in data.__inputs; v := data.{package}.match with input as x}}; "
        f"r := {{i: v | some i, x in data.__inputs; v := data.{package}.reason with input as x}}"
    )
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(path), "-d", str(tmp / "data.json"), query],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    bindings = json.loads(proc.stdout)["result"][0]["bindings"]
    m, r = bindings["m"], bindings["r"]
    return [(_normalise(m.get(str(i))), _normalise(r.get(str(i)))) for i in range(len(INPUTS))]


@pytest.mark.parametrize("data", DATA_VARIANTS, ids=["no-data", "with-data"])
@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_regorus_matches_opa(
    path: Path, data: dict[str, Any], opa_bin: str, tmp_path: Path
) -> None:
    ours = _ours(path, data)
    theirs = _opa(opa_bin, path, data, tmp_path)
    for index, (mine, oracle) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == oracle, f"{path.name} input[{index}]: sbomgate {mine} != opa {oracle}"


def test_semver_on_a_version_that_is_not_semver_is_undefined_as_in_opa(
    opa_bin: str, tmp_path: Path
) -> None:
    path = CORPUS / "seed.rego"
    index = 7  # h11 0.15: not SemVer
    mine = _ours(path, {})[index]
    oracle = _opa(opa_bin, path, {}, tmp_path)[index]
    assert mine == oracle == (False, [])  # semver.compare fails: the reason is undefined
