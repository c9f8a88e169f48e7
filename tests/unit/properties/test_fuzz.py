"""The short CI run of the atheris targets (fuzz/): each target replays its seeds and committed
crash inputs and fuzzes a few hundred inputs more, with no crash; and a crash found by a long
run (`make fuzz`) can be replayed from its input file.

The long runs are `make fuzz` (fuzz/run.py --seconds N per target).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[3] / "fuzz"
_spec = importlib.util.spec_from_file_location("sbomgate_fuzz_run", FUZZ / "run.py")
assert _spec is not None and _spec.loader is not None
fuzz_run = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fuzz_run  # dataclasses look their module up
_spec.loader.exec_module(fuzz_run)

TARGETS = fuzz_run.targets()
RUNS = 300  # libFuzzer counts the seeds in: every mode of every target runs many times


def test_every_parser_family_has_a_target() -> None:
    assert set(TARGETS) == {
        "admission",
        "attestation",
        "cyclonedx_json",
        "cyclonedx_xml",
        "image_reference",
        "oci_manifest",
        "spdx_json",
        "workload",
    }


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, fuzz_run.Result]]:
    """Every target once, two at a time (one per core), from a fresh corpus: the seeds."""
    cache = tmp_path_factory.mktemp("fuzz")

    def run(target: str) -> fuzz_run.Result:
        return fuzz_run.run_target(target, runs=RUNS, cache=cache, seed=1)

    with ThreadPoolExecutor(max_workers=2) as pool:
        yield dict(zip(TARGETS, pool.map(run, TARGETS), strict=True))


@pytest.mark.parametrize("target", TARGETS)
def test_a_short_run_finds_no_crash(short_runs: dict[str, fuzz_run.Result], target: str) -> None:
    result = short_runs[target]
    assert not result.crashed, f"{target} crashed:\n{result.traceback}\n(log: {result.log})"
    assert result.returncode == 0
    assert result.executions >= RUNS, result.executions
    assert result.coverage > 0 and result.features > 0  # the parsers are instrumented


PLANTED = """\
import fuzzlib


def test_one_input(data: bytes) -> None:
    if data[1:2] == b"!":
        raise ValueError("the planted bug")


if __name__ == "__main__":
    fuzzlib.main(test_one_input, seeds=lambda: [b"\\x00abc"])
"""


def test_a_crash_found_by_fuzzing_is_replayed_from_its_input_file(tmp_path: Path) -> None:
    """The whole loop on a planted bug: fuzzing finds it, writes the input, reports it with its
    traceback; replaying that file reproduces it; a fixed input replays clean."""
    planted = tmp_path / "fuzz_planted.py"
    planted.write_text(PLANTED)
    found = fuzz_run.run_target("planted", runs=100_000, cache=tmp_path, seed=1, path=planted)
    assert found.crashed
    assert "ValueError: the planted bug" in found.traceback
    (crash,) = found.crash_inputs
    assert Path(crash).read_bytes()[1:2] == b"!"
    assert Path(crash).parent == tmp_path / "crashes" / "planted"

    replayed = fuzz_run.run_target("planted", inputs=[Path(crash)], cache=tmp_path, path=planted)
    assert replayed.crashed and replayed.returncode != 0
    assert "ValueError: the planted bug" in replayed.traceback

    # A crash input of a real target, committed after its fix (fuzz/seeds/): replays clean.
    fixed = next((FUZZ / "seeds" / "spdx_json").glob("crash-*"))
    clean = fuzz_run.run_target("spdx_json", inputs=[fixed], cache=tmp_path)
    assert not clean.crashed and clean.returncode == 0, clean.traceback
    assert clean.executions >= 1


def test_run_py_replays_from_the_command_line(tmp_path: Path) -> None:
    fixed = next((FUZZ / "seeds" / "spdx_json").glob("crash-*"))
    done = subprocess.run(
        [sys.executable, str(FUZZ / "run.py"), "--target", "spdx_json", "--reproduce",
         str(fixed), "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"spdx_json: no crash on {fixed}" in done.stdout


CRASH_OUTPUT = """\
INFO: Seed: 1
#2\tINITED cov: 10 ft: 12 corp: 1/1b exec/s: 0 rss: 40Mb

 === Uncaught Python exception: ===
TypeError: unhashable type: 'dict'
Traceback (most recent call last):
  File "fuzz/fuzz_spdx_json.py", line 39, in test_one_input
TypeError: unhashable type: 'dict'

==1== ERROR: libFuzzer: fuzz target exited
SUMMARY: libFuzzer: fuzz target exited
artifact_prefix='c/'; Test unit written to c/crash-8317
stat::number_of_executed_units: 7
stat::average_exec_per_sec:     0
"""


def test_parse_output_reports_the_crash_input_and_traceback() -> None:
    result = fuzz_run.parse_output("spdx_json", CRASH_OUTPUT, 1, 2.0)
    assert result.crashed
    assert result.crash_inputs == ["c/crash-8317"]
    assert result.traceback.startswith("=== Uncaught Python exception: ===")
    assert "TypeError: unhashable type: 'dict'" in result.traceback
    assert (result.executions, result.coverage, result.features) == (7, 10, 12)
    assert result.exec_per_second == 3  # libFuzzer said 0 for a sub-second run: our clock


def test_parse_output_reports_a_hang_and_running_out_of_memory() -> None:
    hang = "ALARM: working on the last Unit for 11 seconds\nTest unit written to c/timeout-1\n"
    assert fuzz_run.parse_output("x", hang, 1, 12.0).crash_inputs == ["c/timeout-1"]
    oom = "==1== ERROR: libFuzzer: out-of-memory (used: 2100Mb; exceeds: 2048Mb)\n"
    result = fuzz_run.parse_output("x", oom, 1, 5.0)
    assert result.crashed and "out-of-memory" in result.traceback
