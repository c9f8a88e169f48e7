"""`semver.compare` and `semver.is_valid` answer as OPA's do, on every pair of a list of
versions built to hit each rule of OPA's SemVer reading (a leading `v`, int64 bounds, leading
zeros, empty or odd identifiers, pre-release precedence, build metadata, ecosystem versions
that are not SemVer, non-strings), evaluated by sbomgate's engine and by a real `opa eval`.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import orjson

from sbomgate.policy._regorus import new_engine

VERSIONS: list[Any] = [
    # SemVer 2.0's own precedence example, in order
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    # what OPA reads and the Rust semver crate does not, and the other way round
    "v1.0.0",
    "vv1.0.0",
    "V1.0.0",
    "9223372036854775807.0.0",
    "9223372036854775808.0.0",
    "18446744073709551616.0.0",
    # a numeric pre-release identifier beyond int64 (only one: OPA 1.22.2 never returns from
    # comparing two of them that differ, test_clamped_pre_releases_compare_equal)
    "1.0.0-99999999999999999999",
    # leading zeros, empty and odd parts
    "01.0.0",
    "1.00.0",
    "1.0.00",
    "1.0.0-01",
    "1.0.0-0",
    "1.0.0-0a",
    "1.0.0-00a",
    "1.0.0-",
    "1.0.0-a..b",
    "1.0.0-.a",
    "1.0.0+",
    "1.0.0+build.01",
    "1.0.0-rc.1+build.5",
    "1.0.0+a-b",
    "1.0.0-a-b",
    "1.0.0-x+y+z",
    "+1.0.0",
    "-1.0.0",
    "1.+0.0",
    "1.0.0 ",
    " 1.0.0",
    "1.0.0\n",
    "1_0.0.0",
    "\uff11.0.0",  # a fullwidth digit one
    "1.0.0-é",
    # ecosystem versions that are not SemVer
    "0.15",
    "1",
    "1.2.3.4",
    "2.31.0.post1",
    "1.0.0rc1",
    "1!2.0",
    "=1.0.0",
    "latest",
    "",
    # not strings
    None,
    1,
    ["1.0.0"],
]

QUERY = (
    'c := {k: r | some i, a in input; some j, b in input; k := sprintf("%d,%d", [i, j]); '
    "r := semver.compare(a, b)}; "
    'v := {k: r | some i, a in input; k := sprintf("%d", [i]); r := semver.is_valid(a)}'
)


def _ours() -> dict[str, Any]:
    engine = new_engine()
    engine.set_input_json(orjson.dumps(VERSIONS).decode())
    bindings: dict[str, Any] = engine.eval_query(QUERY)["result"][0]["bindings"]
    return bindings


def _opa(opa_bin: str) -> dict[str, Any]:
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "--stdin-input", QUERY],
        input=json.dumps(VERSIONS),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    bindings: dict[str, Any] = json.loads(proc.stdout)["result"][0]["bindings"]
    return bindings


def test_semver_builtins_answer_as_opa(opa_bin: str) -> None:
    ours, theirs = _ours(), _opa(opa_bin)
    assert ours["v"] == theirs["v"]
    # the same pairs defined, with the same order, and the same ones undefined
    differ = {
        f"{VERSIONS[int(i)]!r} vs {VERSIONS[int(j)]!r}": (ours["c"].get(k), theirs["c"].get(k))
        for k in ours["c"].keys() | theirs["c"].keys()
        for i, j in [k.split(",")]
        if ours["c"].get(k) != theirs["c"].get(k)
    }
    assert differ == {}
    # the list has what it is for: valid and invalid versions, orders both ways
    assert sum(theirs["v"].values()) >= 15
    assert {-1, 0, 1} <= set(theirs["c"].values())


def test_semver_precedence_example_is_in_order() -> None:
    ours = _ours()["c"]
    for i in range(7):
        assert ours[f"{i},{i + 1}"] == -1
        assert ours[f"{i + 1},{i}"] == 1


def test_clamped_pre_releases_compare_equal() -> None:
    # Go's strconv.Atoi leaves both at int64's maximum, so OPA finds them equal identifier by
    # identifier, and then loops for ever (OPA 1.22.2); sbomgate says equal and returns.
    engine = new_engine()
    result = engine.eval_query(
        'x := semver.compare("1.0.0-99999999999999999999", "1.0.0-99999999999999999998")'
    )
    assert result["result"][0]["bindings"]["x"] == 0
