"""Run the atheris targets (fuzz/fuzz_*.py), each in its own process, and report.

    .venv/bin/python fuzz/run.py --seconds 120                  # every target, 120 s each
    .venv/bin/python fuzz/run.py --runs 500 --target cyclonedx_xml
    .venv/bin/python fuzz/run.py --target admission --reproduce PATH/TO/crash-…

The corpus of each target grows in .cache/fuzz/corpus/<target>/ (seeded from the target's own
seeds and fuzz/seeds/<target>/), crash inputs land in .cache/fuzz/crashes/<target>/, the full
libFuzzer output in .cache/fuzz/logs/<target>.log. Prints one row per target (executions,
exec/s, coverage, crashes) and exits 1 if any target crashed, with the input and traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".cache" / "fuzz"
RSS_LIMIT_MB = 2048
UNIT_TIMEOUT = 10  # seconds for one input before libFuzzer calls it a hang

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", re.MULTILINE)
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_WRITTEN = re.compile(r"Test unit written to (\S+)")
_FINDING = re.compile(
    r"(=== Uncaught Python exception: ===.*?)(?:^==\d+== ERROR|\Z)", re.MULTILINE | re.DOTALL
)
_DEADLY = re.compile(r"ERROR: libFuzzer: (\S.*)|ALARM: working on the last Unit|out-of-memory")


def targets() -> list[str]:
    return sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


def script(target: str) -> Path:
    return HERE / f"fuzz_{target}.py"


@dataclass
class Result:
    target: str
    returncode: int
    seconds: float
    executions: int = 0
    exec_per_second: int = 0
    coverage: int = 0
    features: int = 0
    corpus_added: int = 0
    crashed: bool = False
    crash_inputs: list[str] = field(default_factory=list)
    traceback: str = ""
    log: Path | None = None

    @property
    def crashes(self) -> int:
        return len(self.crash_inputs) or int(self.crashed)


def parse_output(target: str, output: str, returncode: int, seconds: float) -> Result:
    result = Result(target, returncode, seconds)
    statuses = _STATUS.findall(output)
    if statuses:
        _, cov, ft = statuses[-1]
        result.coverage, result.features = int(cov), int(ft)
    stats = {k: int(v) for k, v in _STAT.findall(output)}
    result.executions = stats.get("number_of_executed_units", 0)
    if not result.executions and statuses:
        result.executions = int(statuses[-1][0])
    result.corpus_added = stats.get("new_units_added", 0)
    # libFuzzer's average is whole seconds of fuzzing only (0 for a short run): our own clock.
    result.exec_per_second = stats.get("average_exec_per_sec", 0) or int(
        result.executions / max(seconds, 1e-3)
    )
    result.crash_inputs = _WRITTEN.findall(output)
    found = _FINDING.search(output)
    if found:
        result.traceback = found.group(1).strip()
    elif _DEADLY.search(output):
        match = _DEADLY.search(output)
        assert match is not None
        result.traceback = match.group(0)
    result.crashed = bool(result.crash_inputs or found or _DEADLY.search(output)) or (
        returncode != 0
    )
    if result.crashed and not result.traceback:
        result.traceback = output[-3000:]
    return result


def run_target(
    target: str,
    *,
    seconds: float | None = None,
    runs: int | None = None,
    cache: Path = CACHE,
    seed: int | None = None,
    inputs: Sequence[Path] = (),
    extra: Sequence[str] = (),
    path: Path | None = None,
) -> Result:
    """Fuzz one target (or, with `inputs`, run just those inputs once each). `path` is the
    target's script when it is not fuzz/fuzz_<target>.py."""
    corpus = cache / "corpus" / target
    crashes = cache / "crashes" / target
    logs = cache / "logs"
    dictionary = cache / "dicts" / f"{target}.dict"
    for directory in (corpus, crashes, logs):
        directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(path or script(target))]
    if inputs:
        command += [str(p) for p in inputs]
    else:
        command += ["--write-seeds", str(corpus), "--write-dict", str(dictionary), str(corpus)]
        committed = HERE / "seeds" / target
        if committed.is_dir():
            command.append(str(committed))
        command.append(f"-dict={dictionary}")
        if seconds is not None:
            command.append(f"-max_total_time={max(1, round(seconds))}")
        if runs is not None:
            command.append(f"-runs={runs}")
    command += [
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={UNIT_TIMEOUT}",
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
    ]
    if seed is not None:
        command.append(f"-seed={seed}")
    command += list(extra)
    # Own temporary directory: /validate-policy writes inline TrustedRoots to files.
    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-", dir=cache))
    env = {**os.environ, "TMPDIR": str(scratch)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    # Start-up and corpus loading come on top of the fuzzing time; a hung input is stopped by
    # libFuzzer's own -timeout long before this.
    limit = (seconds + 300) if seconds is not None else 3600
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            cwd=REPO,
            timeout=limit,
            check=False,
        )
        output, returncode = completed.stdout, completed.returncode
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        output = raw if isinstance(raw, str) else raw.decode(errors="replace")
        output += f"\nERROR: libFuzzer: the target did not finish within {limit} s\n"
        returncode = -9
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    log = logs / f"{target}.log"
    log.write_text(" ".join(command) + "\n" + output)
    result = parse_output(target, output, returncode, elapsed)
    result.log = log
    return result


def table(results: Sequence[Result]) -> str:
    header = ("target", "executions", "exec/s", "cov", "ft", "new units", "crashes", "seconds")
    rows = [
        (
            r.target,
            str(r.executions),
            str(r.exec_per_second),
            str(r.coverage),
            str(r.features),
            str(r.corpus_added),
            str(r.crashes),
            f"{r.seconds:.0f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="fuzzing time per target")
    parser.add_argument("--runs", type=int, help="executions per target (libFuzzer -runs)")
    parser.add_argument(
        "--target", action="append", choices=targets(), help="a target (repeatable; default all)"
    )
    parser.add_argument("--reproduce", type=Path, help="run the target on this one input")
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed")
    parser.add_argument("--cache", type=Path, default=CACHE, help="corpus/crash/log root")
    args = parser.parse_args(argv)
    chosen = args.target or targets()
    if args.reproduce is not None:
        if len(chosen) != 1:
            parser.error("--reproduce needs exactly one --target")
        result = run_target(chosen[0], inputs=[args.reproduce], cache=args.cache)
        print(result.traceback if result.crashed else f"{chosen[0]}: no crash on {args.reproduce}")
        return 1 if result.crashed else 0
    if args.seconds is None and args.runs is None:
        parser.error("give --seconds and/or --runs")
    results = []
    for target in chosen:
        result = run_target(
            target, seconds=args.seconds, runs=args.runs, cache=args.cache, seed=args.seed
        )
        results.append(result)
        state = "CRASH" if result.crashed else "ok"
        print(
            f"{target}: {state}, {result.executions} executions, cov {result.coverage}",
            file=sys.stderr,
            flush=True,
        )
    print(table(results))
    crashed = [r for r in results if r.crashed]
    for r in crashed:
        print(f"\n== {r.target} crashed (log: {r.log})")
        for path in r.crash_inputs:
            print(f"input: {path}")
            print(f"replay: {sys.executable} fuzz/run.py --target {r.target} --reproduce {path}")
        print(r.traceback)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
