"""OPA's own conformance cases through sbomgate's engine (tools/opa_conformance.py, issue 17).

Every case of the OPA module `make tools` downloads runs through sbomgate's layer (and through
plain regorus, for the figures). No case may fail that is not in
opa_conformance_known_failures.txt, and a listed case that passes must leave the list, so the
list only shrinks as issue 17 progresses. `.venv/bin/python tools/opa_conformance.py` prints
the per-directory table.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import opa_conformance as harness
import pytest

KNOWN_FAILURES = Path(__file__).with_name("opa_conformance_known_failures.txt")


def _synthetic(note: str, query: str, module: str, row: dict[str, object]) -> harness.Case:
    """A case of the harness's own, not from OPA's files: one module, no data or input."""
    return harness.Case(
        id=note,
        note=note,
        directory="synthetic",
        file="synthetic.yaml",
        query=query,
        modules=(module,),
        data_json=None,
        input_json=None,
        input_term=None,
        sort_bindings=False,
        ignore_generated_vars=False,
        strict_error=False,
        want=harness.Want(rows=[row]),
    )


def _cases_dir() -> Path:
    """The OPA module's v1 cases; a failure (not a skip) telling what to run when missing."""
    module = harness.opa_module_dir()
    if not (module / harness.CASES_SUBDIR).is_dir():
        pytest.fail(
            f"OPA's conformance cases are missing ({module / harness.CASES_SUBDIR}): run "
            "`make tools` (it downloads the OPA module; with .cache/bin/opa already built, "
            "remove it first so that `go install` runs)",
            pytrace=False,
        )
    return module


@pytest.fixture(scope="module")
def conformance() -> harness.Run:
    """Every case on both roads, once for the module (about 20 s on one core)."""
    module = _cases_dir()
    opa = harness.opa_binary()
    if opa is None:
        pytest.fail("OPA is not built: run `make tools` (make test does it for you)")
    return harness.run(module, jobs=1, opa=opa)


def assert_no_regression(run: harness.Run, known: set[str]) -> None:
    """AssertionError naming every case that fails unlisted, and every listed case that does
    not fail any more."""
    status = run.status("sbomgate")
    kinds = {o.case.id: o.kind for o in run.outcomes["sbomgate"]}
    problems = [
        f"fails and is not a known failure: {case} ({kinds[case]})"
        for case, state in sorted(status.items())
        if state == "failed" and case not in known
    ]
    for case in sorted(known):
        state = status.get(case, "not in OPA's suite")
        if state != "failed":
            problems.append(f"{state} now: {case}: remove it from the list {KNOWN_FAILURES.name}")
    assert not problems, "\n".join(problems)


def test_no_case_regresses(conformance: harness.Run) -> None:
    assert_no_regression(conformance, harness.read_known_failures(KNOWN_FAILURES))


def test_a_listed_case_that_passes_fails_the_test(conformance: harness.Run) -> None:
    passing = next(o.case.id for o in conformance.outcomes["sbomgate"] if o.status == "passed")
    known = harness.read_known_failures(KNOWN_FAILURES) | {passing}
    with pytest.raises(AssertionError, match="remove it from the list"):
        assert_no_regression(conformance, known)


def test_an_unlisted_failure_fails_the_test(conformance: harness.Run) -> None:
    # The list may be empty: one passing case made to fail stands for a regression.
    outcomes = list(conformance.outcomes["sbomgate"])
    first = next(i for i, o in enumerate(outcomes) if o.status == "passed")
    passed = outcomes[first]
    outcomes[first] = harness.Outcome(
        case=passed.case, road=passed.road, status="failed", got=passed.got, kind="regressed"
    )
    regressed = harness.Run(cases=conformance.cases, outcomes={"sbomgate": outcomes})
    with pytest.raises(AssertionError, match="is not a known failure"):
        assert_no_regression(regressed, harness.read_known_failures(KNOWN_FAILURES))


def test_the_list_is_grouped_and_explained() -> None:
    text = KNOWN_FAILURES.read_text(encoding="utf-8")
    groups = text.split("\n\n")[1:]  # the first block is the file's header (no group: none fails)
    for group in groups:
        comment, *cases = group.strip().splitlines()
        assert comment.startswith("# ") and ": " in comment, comment
        assert cases and not any(c.startswith("# ") and ": " in c for c in cases), group


def test_missing_cases_fail_with_what_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOMODCACHE", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="run `make tools`"):
        _cases_dir()


def test_a_hanging_case_costs_only_itself() -> None:
    # Ten billion pairs to try, none of which holds: hours of evaluation.
    nested = "1 if { numbers.range(1, 100000)[a]; numbers.range(1, 100000)[b]; a + b < 0 }"
    cases = [
        _synthetic(note, "data.t.p = x", f"package t\n\np := {value}\n", {"x": 1})
        for note, value in (("hangs", nested), ("answers", "1"))
    ]
    answers = harness.run_tasks(cases, ["plain"], jobs=1, timeout=2.0)
    assert answers[(0, "plain")]["kind"] == "timeout"
    assert answers[(1, "plain")] == {"kind": "rows", "route": "eval_query", "rows": [{"x": 1}]}


def test_the_compiled_mode_road_measures_where_it_differs() -> None:
    """`--rvm` runs rule queries in regorus' compiled mode (a measurement: sbomgate does not
    evaluate that way). Its report names the cases sbomgate's engine passes and it does not:
    a conflict between a complete rule's values, which OPA reports as an error, reads as
    undefined there."""
    module = _cases_dir()
    opa = harness.opa_binary()
    if opa is None:
        pytest.fail("OPA is not built: run `make tools` (make test does it for you)")
    run = harness.run(
        module, only=["disjunction", "aggregates"], jobs=1, opa=opa, roads=(*harness.ROADS, "rvm")
    )
    rvm = run.status("rvm")
    assert sum(1 for s in rvm.values() if s == "passed") > 50
    assert rvm["disjunction/complete: error"] == "failed"
    assert run.status("sbomgate")["disjunction/complete: error"] == "passed"
    report = harness.markdown(run)
    assert "Compiled mode (regorus' RVM)" in report
    assert "| disjunction |" in report.split("Compiled mode")[1]


def test_test_sleep_sleeps_and_time_stands_still_within_a_query() -> None:
    """The harness's test.sleep (OPA's runner's, for time/time caching) on both roads: it
    sleeps, answers null, and time.now_ns answers one instant all through the query."""
    module = (
        'package t\n\np if {\n  time.now_ns(t0)\n  test.sleep("50ms")\n'
        '  time.now_ns(t1)\n  t0 == t1\n}\n\nq := test.sleep("1ms")\n'
    )
    cases = [
        _synthetic(query, query, module, {"x": want})
        for query, want in (("data.t.p = x", True), ("data.t.q = x", None))
    ]
    started = time.monotonic()
    answers = harness.run_tasks(cases[:1], ["sbomgate"], jobs=1, timeout=10.0)
    assert time.monotonic() - started >= 0.05
    assert answers[(0, "sbomgate")]["rows"] == [{"x": True}]
    answers = harness.run_tasks(cases, ["plain"], jobs=1, timeout=10.0)
    assert [answers[(i, "plain")]["rows"] for i in range(2)] == [[{"x": True}], [{"x": None}]]


def test_durations_are_read_as_go_reads_them() -> None:
    """test.sleep's duration as Go's time.ParseDuration reads it, compared with OPA's
    time.parse_duration_ns (which calls it): None where Go refuses the text."""
    opa = harness.opa_binary()
    if opa is None:
        pytest.fail("OPA is not built: run `make tools` (make test does it for you)")
    texts = [
        "10ms", "1h2m0.5s", "-1.5h", "0", "+0", "1", ".5s", "5.s", "1\u00b5s", "1\u03bcs",
        "", "s", ".s", "1x", "1e3s", "3m2", "1h-2m", "9223372036s", "9223372037s",
        "2562047h", "2562048h", "0.000000001s",
    ]  # fmt: skip
    query = (
        "x := ["
        + ", ".join(f"[d | d := time.parse_duration_ns({json.dumps(t)})]" for t in texts)
        + "]"
    )
    done = subprocess.run(
        [opa, "eval", "-f", "json", query], capture_output=True, text=True, check=True
    )
    theirs = json.loads(done.stdout)["result"][0]["bindings"]["x"]
    for text, answer in zip(texts, theirs, strict=True):
        mine = harness.go_duration_seconds(text)
        wanted = answer[0] / 1e9 if answer else None
        assert mine == pytest.approx(wanted), text
