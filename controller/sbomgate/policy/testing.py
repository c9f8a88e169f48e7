"""`sbomgate test`: run the `test_*` rules of Rego test files, like `opa test`.

Cloudsmith policies all live in `package cloudsmith`, so several of them cannot share one
engine. Each `<name>_test.rego` is therefore run together with `<name>.rego` (when present) in an
engine of its own; a test file without a partner runs alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sbomgate.errors import InputError
from sbomgate.policy._regorus import RegoEngine, RegoError, analyse_module, check_calls
from sbomgate.policy.loader import is_test_file, read_policy_file


class Outcome(StrEnum):
    """How a Rego test ended."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """One `test_*` rule's result, with the file and package it is in."""

    file: str
    package: str
    name: str
    outcome: Outcome
    seconds: float
    message: str = ""


def _test_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise InputError(f"{target}: no such file or directory")
    return sorted(p for p in target.rglob("*.rego") if is_test_file(p))


def run_tests(target: str | Path, data: Mapping[str, Any] | None = None) -> Iterator[TestResult]:
    """Yield one result per `test_*` rule (and a SKIP per `todo_test_*`), file by file."""
    files = _test_files(Path(target))
    if not files:
        raise InputError(f"{target}: no *_test.rego files found")
    for test_path in files:
        test_module = analyse_module(str(test_path), read_policy_file(test_path))
        modules = [test_module]
        partner = test_path.with_name(test_path.name.removesuffix("_test.rego") + ".rego")
        if partner.exists():
            modules.insert(0, analyse_module(str(partner), read_policy_file(partner)))
        check_calls(modules)
        engine = RegoEngine(modules, data or {})
        engine.set_input_json("{}")
        seen: set[str] = set()
        for rule in test_module.rules:
            if rule.name in seen or rule.is_function:
                continue
            seen.add(rule.name)
            if rule.name.startswith("todo_test_"):
                yield TestResult(
                    file=str(test_path),
                    package=test_module.package,
                    name=rule.name,
                    outcome=Outcome.SKIP,
                    seconds=0.0,
                )
                continue
            if not rule.name.startswith("test_"):
                continue
            started = time.perf_counter()
            try:
                value = engine.eval_rule(f"data.{test_module.package}.{rule.name}")
            except RegoError as exc:
                yield TestResult(
                    file=str(test_path),
                    package=test_module.package,
                    name=rule.name,
                    outcome=Outcome.ERROR,
                    seconds=time.perf_counter() - started,
                    message=str(exc),
                )
                continue
            outcome = Outcome.PASS if value is True else Outcome.FAIL
            yield TestResult(
                file=str(test_path),
                package=test_module.package,
                name=rule.name,
                outcome=outcome,
                seconds=time.perf_counter() - started,
                message=""
                if value is True
                else f"got {value!r}"
                if value is not None
                else "undefined",
            )


__all__ = ["Outcome", "TestResult", "run_tests"]
