"""OPA's own conformance cases through plain regorus and through sbomgate's engine (issue 17).

The cases are those of the OPA module `make tools` downloads (`OPA_VERSION` in the Makefile):
`v1/test/cases/testdata/v1/**/*.yaml`, each with a query, modules, data, input (or a Rego
`input_term`) and the wanted result or error. Every case runs two ways, each in a worker
process under a per-case timeout (a hang or a crash costs that case, not the run):

- plain regorus: `regorus.Engine()` (strict builtin errors, the binding's default),
  `add_policy` per module, `add_data_json`, the input, then `eval_query(query)`; nothing of
  sbomgate;
- sbomgate: `analyse_module` and `check_calls` as the loader does (a module calling a builtin
  sbomgate refuses on purpose makes the case *refused*), then `RegoEngine.eval_rule` (OPA's default,
  non-strict mode) when the query is `data.<rule> = x` or `x = data.<rule>` and names a
  rule of the modules, else `eval_query` on an engine from `new_engine()`.

Both roads' engines also have the harness's builtins (`HARNESS_BUILTINS`): `test.sleep`, which
OPA's runner registers for its cases and OPA itself (`opa eval`, `opa test`) lacks, so
sbomgate's policies and `sbomgate test` lack it too.

Judged as OPA's runner (v1/topdown/exported_test.go) judges: the rows' bindings of the query's
variables, as a set of rows; values as OPA's JSON (a set is an array in OPA's sort order; an
object key that is not a string is its JSON text); `sort_bindings` sorts each binding's array;
`ignore_generated_vars` drops `__localq*`. A wanted error (`want_error`, `want_error_code`) is
met by any error of evaluation, whatever its text (regorus has no OPA error codes), not by one
loading the case, a missing builtin, a panic or the binding's: OPA's runner compiles first, so
every error it wants is one of evaluation. A row of regorus' `eval_query` with an expression
whose value is `false` is no row (in OPA that expression fails).

`strict_error` cases run in OPA's runner with strict builtin errors (`WithStrictBuiltinErrors`);
sbomgate promises OPA's default, non-strict. Those that want an error are judged by OPA's
non-strict answer instead, asked of the real `opa eval` of the same version (`.cache/bin/opa`;
`--check-oracle` measures how often `opa eval` gives the other cases' own wanted answers);
those that want a result keep it (strictness changes nothing where no builtin errs).

sbomgate's engine takes input as JSON and always sets one: a case without input whose modules
and query never name `input` gets `{}` (nothing can tell it from none); an `input_term` with a
Rego set, which JSON cannot carry, is given the way a policy gives one: the query is asked
`with input as` the term (so the query runs through `eval_query`, not a rule's evaluation).

`--rvm` adds a third road, a measurement only: the rule queries in regorus' compiled mode
(`regorus.Program` and `regorus.Rvm`) on the modules, data and input sbomgate's layer gives,
and a table of the cases sbomgate's engine passes and compiled mode does not.

Usage: `.venv/bin/python tools/opa_conformance.py [--filter DIR] [--json failed.json] [--rvm]`;
a Markdown table on stdout. tests/integration/policy/test_opa_conformance.py runs it in
`make test` against the list of known failures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES_SUBDIR = Path("v1/test/cases/testdata/v1")
DEFAULT_TIMEOUT = 10.0
ROADS = ("plain", "sbomgate")
# Marks a result line of a worker (anything else it prints, say a Rust panic's message, is not).
_MARK = "\x1eRESULT "
_RULE_QUERY = re.compile(
    r"^\s*(?:(?P<path>data(?:\.[A-Za-z_]\w*)+)\s*=\s*(?P<var>[A-Za-z_]\w*)"
    r"|(?P<var2>[A-Za-z_]\w*)\s*=\s*(?P<path2>data(?:\.[A-Za-z_]\w*)+))\s*$"
)
_NOT_VARS = frozenset({"true", "false", "null", "input", "data"})


# --------------------------------------------------------------------------- locating OPA


def opa_version() -> str:
    """OPA's version as the Makefile pins it (`OPA_VERSION := v1.22.2`)."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(r"^OPA_VERSION\s*:=\s*(\S+)", text, re.MULTILINE)
    if not found:
        raise RuntimeError("Makefile: no OPA_VERSION")
    return found.group(1)


def opa_module_dir() -> Path:
    """Where `make tools` (`go install github.com/open-policy-agent/opa@VERSION`) left the OPA
    module: in Go's module cache."""
    cache = os.environ.get("GOMODCACHE")
    go = shutil.which("go")
    if not cache and go:
        done = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True)
        cache = done.stdout.strip() if done.returncode == 0 else None
    if not cache:
        cache = str(Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg" / "mod")
    return Path(cache) / "github.com" / "open-policy-agent" / f"opa@{opa_version()}"


def opa_binary() -> str | None:
    """The `opa` that `make tools` builds (`.cache/bin/opa`), else one on PATH."""
    built = ROOT / ".cache" / "bin" / "opa"
    return str(built) if built.exists() else shutil.which("opa")


# --------------------------------------------------------------------------- the cases


class _Loader(yaml.CSafeLoader):
    """YAML as OPA 1.x reads it (internal/yaml, on go-yaml v3: the YAML 1.2 core schema), not
    as PyYAML's YAML 1.1: only true/false are booleans (`on`, `yes` are strings), `1e3` is a
    number, `1:30` is a string, timestamps stay strings; an integer beyond 64 bits is a float."""


_Loader.yaml_implicit_resolvers = {}  # PyYAML's YAML 1.1 ones out; go-yaml v3's below


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node)).replace("_", "")  # Go drops underscores too


def _go_int(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = _scalar(loader, node)
    digits = text.lstrip("+-")
    bases = {"0x": 16, "0X": 16, "0o": 8, "0b": 2}
    try:
        if digits[:2] in bases:
            value = int(digits[2:], bases[digits[:2]])
        elif len(digits) > 1 and digits.startswith("0"):
            value = int(digits[1:], 8)  # go-yaml v3 still reads 0777 as octal
        else:
            value = int(digits)
    except ValueError:
        try:
            return float(text)  # `08`: not an integer, but a float to Go
        except ValueError:
            return text
    value = -value if text.startswith("-") else value
    return value if -(2**63) <= value < 2**64 else float(value)


def _go_float(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = _scalar(loader, node)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*|0[xX][0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_constructor("tag:yaml.org,2002:int", _go_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _go_float)


@dataclass(frozen=True, slots=True, kw_only=True)
class Want:
    """What a case wants: rows of bindings, or an error."""

    rows: list[dict[str, Any]] | None = None
    error: bool = False
    error_text: str | None = None
    error_code: str | None = None
    # Asked of `opa eval` (non-strict) in place of a strict_error case's wanted error.
    from_oracle: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One conformance case. `id` is its note, made unique (` #2`, ...) where notes repeat."""

    id: str
    note: str
    directory: str
    file: str
    query: str
    modules: tuple[str, ...]
    data_json: str | None
    input_json: str | None
    input_term: str | None
    sort_bindings: bool
    ignore_generated_vars: bool
    strict_error: bool
    want: Want

    def task(self) -> dict[str, Any]:
        """What a worker needs to run the case."""
        return {
            "query": self.query,
            "modules": list(self.modules),
            "data_json": self.data_json,
            "input_json": self.input_json,
            "input_term": self.input_term,
        }


def _want(raw: Mapping[str, Any]) -> Want:
    error = "want_error" in raw or "want_error_code" in raw
    rows = raw.get("want_result")
    return Want(
        rows=list(rows) if isinstance(rows, list) else None,
        error=error,
        error_text=raw.get("want_error"),
        error_code=raw.get("want_error_code"),
    )


def load_cases(module_dir: Path, only: Sequence[str] = ()) -> list[Case]:
    """Every case under the module's v1 test data, sorted by file; `only` keeps those
    directories. Notes are made unique over the whole suite, so ids do not depend on `only`."""
    base = module_dir / CASES_SUBDIR
    if not base.is_dir():
        raise FileNotFoundError(base)
    raw_cases: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted(base.rglob("*.yaml")):
        rel = path.relative_to(base)
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
        for raw in document.get("cases") or []:
            raw_cases.append((rel.parent.as_posix(), rel.as_posix(), raw))
    seen: Counter[str] = Counter()
    cases = []
    for directory, file, raw in raw_cases:
        note = str(raw["note"])
        seen[note] += 1
        if only and directory not in only:
            continue
        data = raw.get("data")
        value = raw.get("input")
        term = raw.get("input_term")
        input_json = json.dumps(value) if value is not None else None
        input_term = None
        if term is not None:
            try:
                input_json = json.dumps(json.loads(term))
            except ValueError:
                input_term = str(term)  # a Rego term that is not JSON (a set, a comma)
        cases.append(
            Case(
                id=note if seen[note] == 1 else f"{note} #{seen[note]}",
                note=note,
                directory=directory,
                file=file,
                query=str(raw["query"]),
                modules=tuple(str(m) for m in raw.get("modules") or ()),
                data_json=json.dumps(data) if data is not None else None,
                input_json=input_json,
                input_term=input_term,
                sort_bindings=bool(raw.get("sort_bindings")),
                ignore_generated_vars=bool(raw.get("ignore_generated_vars")),
                strict_error=bool(raw.get("strict_error")),
                want=_want(raw),
            )
        )
    return cases


# ---------------------------------------------------------------------- OPA's non-strict answer


def ask_opa(opa: str, case: Case, timeout: float) -> Want:
    """OPA's own non-strict answer to a case, from `opa eval`."""
    query = case.query
    if case.input_term is not None:
        # `opa eval` reads input from JSON or YAML only; a Rego term goes in through `with`.
        query = f"{query.strip()} with input as {case.input_term}"
    with tempfile.TemporaryDirectory(prefix="opa-case-") as tmp:
        argv = [opa, "eval", "--format", "json"]
        for i, source in enumerate(case.modules):
            module = Path(tmp) / f"test-{i}.rego"
            module.write_text(source, encoding="utf-8")
            argv += ["--data", str(module)]
        if case.data_json is not None:
            (Path(tmp) / "data.json").write_text(case.data_json, encoding="utf-8")
            argv += ["--data", str(Path(tmp) / "data.json")]
        if case.input_json is not None:
            (Path(tmp) / "input.json").write_text(case.input_json, encoding="utf-8")
            argv += ["--input", str(Path(tmp) / "input.json")]
        argv.append(query)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Want(error=True, error_text="opa eval timed out", from_oracle=True)
    try:
        output = json.loads(done.stdout or "{}")
    except ValueError:
        output = {"errors": [{"message": done.stderr.strip() or done.stdout.strip()}]}
    if output.get("errors"):
        first = output["errors"][0]
        return Want(
            error=True,
            error_text=str(first.get("message")),
            error_code=first.get("code"),
            from_oracle=True,
        )
    rows = [dict(r.get("bindings") or {}) for r in output.get("result") or []]
    return Want(rows=rows, from_oracle=True)


def with_non_strict_wants(cases: Sequence[Case], opa: str, timeout: float) -> list[Case]:
    """The cases, each strict_error case that wants an error given OPA's non-strict answer."""
    out = []
    for case in cases:
        if case.strict_error and case.want.error:
            case = dataclasses.replace(case, want=ask_opa(opa, case, timeout))
        out.append(case)
    return out


# ---------------------------------------------------------------------- values as OPA sees them


def _order(value: Any) -> tuple[Any, ...]:
    """A sort key in OPA's order of values: null < boolean < number < string < array <
    object < set; arrays element-wise then by length; objects by their sorted key/value pairs."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list | tuple):
        return (6, tuple(_order(v) for v in value))
    if isinstance(value, dict):
        return (7, tuple(sorted((_order(k), _order(v)) for k, v in value.items())))
    if isinstance(value, set | frozenset):
        return (8, tuple(sorted(_order(v) for v in value)))
    return (9, repr(value))


def opa_json(value: Any) -> Any:
    """A value from the regorus binding as OPA's `ast.JSON` renders it: a set as an array in
    OPA's order, an object key that is not a string as its JSON text."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            text = key if isinstance(key, str) else json.dumps(opa_json(key), separators=(",", ":"))
            out[text] = opa_json(item)
        return out
    if isinstance(value, set | frozenset):
        return [opa_json(v) for v in sorted(value, key=_order)]
    if isinstance(value, list | tuple):
        return [opa_json(v) for v in value]
    return value


def _canonical(value: Any) -> Any:
    """A hashable form in which equal JSON values are equal (1 == 1.0, but true != 1)."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list | tuple):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        # A key that is not a string (YAML's `1:`, `true:`) is its JSON text, as OPA reads it.
        keys = {k: k if isinstance(k, str) else json.dumps(k) for k in value}
        return ("object", frozenset((keys[k], _canonical(v)) for k, v in value.items()))
    return ("other", repr(value))


def result_set(rows: Iterable[Mapping[str, Any]], *, sort: bool, ignore_generated: bool) -> Any:
    """The rows as OPA's runner compares them: a set of binding objects."""
    out = set()
    for row in rows:
        items = []
        for name, value in row.items():
            if ignore_generated and name.startswith("__localq"):
                continue
            if sort and isinstance(value, list):
                value = sorted(value, key=_order)
            items.append((name, _canonical(value)))
        out.add(frozenset(items))
    return frozenset(out)


# --------------------------------------------------------------------------- the worker side

# Go's time.ParseDuration: a sign, then numbers each with its unit ("1h2m0.5s"), or a bare 0.
_GO_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)[^0-9.]+)+|[-+]?0")
_GO_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([^0-9.]+)")
_GO_UNIT_NS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,  # micro sign
    "\u03bcs": 10**3,  # Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def go_duration_seconds(text: str) -> float | None:
    """The seconds of a Go duration ("10ms", "-1.5h"); None where time.ParseDuration errs (an
    unknown or missing unit, more nanoseconds than an int64 holds)."""
    if _GO_DURATION.fullmatch(text) is None:
        return None
    nanoseconds = 0.0
    for number, unit in _GO_DURATION_PART.findall(text):
        if unit not in _GO_UNIT_NS:
            return None
        nanoseconds += float(number) * _GO_UNIT_NS[unit]
    if nanoseconds >= 2**63:
        return None
    return (-nanoseconds if text.startswith("-") else nanoseconds) / 1e9


def _test_sleep(duration: Any) -> None:
    """`test.sleep(duration)`, a builtin OPA's runner registers for its cases (time/time
    caching: time.now_ns answers one instant all through a query) and OPA itself lacks: sleeps
    for the duration and answers null; a duration Go cannot read sleeps not at all (the runner
    ignores the error)."""
    if not isinstance(duration, str):
        raise TypeError("test.sleep: the duration must be a string")
    seconds = go_duration_seconds(duration)
    if seconds is not None and seconds > 0:
        time.sleep(seconds)


# The harness's own builtins, given to both roads' engines as OPA's runner gives them to its
# own (sbomgate's policies and `sbomgate test`, as `opa eval` and `opa test`, lack them).
HARNESS_BUILTINS: tuple[tuple[str, int, Any], ...] = (("test.sleep", 1, _test_sleep),)


def _rows_of(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bindings of regorus' result rows; a row with a `false` expression is no row."""
    rows = []
    for row in answer.get("result") or []:
        if any(e.get("value") is False for e in row.get("expressions") or []):
            continue
        rows.append({str(k): opa_json(v) for k, v in (row.get("bindings") or {}).items()})
    return rows


def _error(kind: str, exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    message = lines[0].removeprefix("error:").strip() if lines else text.split("\n", 1)[0]
    return {"kind": "error", "stage": kind, "message": f"{type(exc).__name__}: {message}"[:500]}


def _input_value(term: str) -> Any:
    """A Rego input term that is not JSON, as the binding's Python value."""
    import regorus

    engine = regorus.Engine()
    rows = engine.eval_query(f"x := {term}")["result"]
    return rows[0]["bindings"]["x"]


def _no_rsa_signer(alg: str, _jwk: str, _data: bytes) -> bytes:
    raise RuntimeError(f"no RSA signer for {alg}: sbomgate gives regorus its own")


def run_plain(task: Mapping[str, Any]) -> dict[str, Any]:
    """A case through `regorus.Engine()` alone (with the harness's builtins). The RSA signer is
    process-wide and sbomgate's (policy/_rsa_signing.py), so plain regorus is given none, in
    whatever order this process runs the roads."""
    import regorus

    if hasattr(regorus, "set_rsa_signer"):
        regorus.set_rsa_signer(_no_rsa_signer)
    engine = regorus.Engine()
    for path, nargs, fn in HARNESS_BUILTINS:
        engine.add_extension(path, nargs, fn)
    try:
        for i, source in enumerate(task["modules"]):
            engine.add_policy(f"test-{i}.rego", source)
        if task["data_json"] is not None:
            engine.add_data_json(task["data_json"])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # PanicException is a BaseException
        return _error("load", exc)
    try:
        if task["input_term"] is not None:
            # Sets of scalars go in as Python sets; a set of arrays or objects cannot.
            engine.set_input(_input_value(task["input_term"]))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        error = _error("input", exc)
        return {**error, "message": f"input term: {error['message']}"}
    try:
        if task["input_json"] is not None:
            engine.set_input_json(task["input_json"])
        answer = engine.eval_query(task["query"])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return _error("eval", exc)
    return {"kind": "rows", "route": "eval_query", "rows": _rows_of(answer)}


def _names(query: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", query) is not None


def _load_as_sbomgate(task: Mapping[str, Any]) -> dict[str, Any]:
    """A case's modules loaded as sbomgate's loader loads them, its input as sbomgate gives it,
    its data and its rule query (`path`, `var`: None when it is not one), as a dict; or the
    result that ends the case (a load error, a refusal), with its `kind`."""
    from sbomgate.errors import PolicyLoadError
    from sbomgate.policy import _regorus as sg

    query: str = task["query"]
    try:
        modules = [sg.analyse_module(f"test-{i}.rego", s) for i, s in enumerate(task["modules"])]
    except PolicyLoadError as exc:
        return {"kind": "error", "stage": "load", "message": str(exc)[:500]}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return _error("load", exc)
    refused = sorted(
        {name for m in modules for name, _ in m.calls if name in sg.FORBIDDEN_BUILTINS}
        | {name for name in sg.FORBIDDEN_BUILTINS if _names(query, name)}
    )
    if refused:
        return {"kind": "refused", "builtins": refused}
    try:
        sg.check_calls(modules, extra=HARNESS_BUILTINS)
    except PolicyLoadError as exc:
        return {"kind": "error", "stage": "load", "message": str(exc)[:500]}
    input_json = task["input_json"]
    if task["input_term"] is not None:
        # RegoEngine takes input as JSON: a Rego term without sets (a trailing comma) is
        # written as JSON; one with a set cannot be given.
        try:
            value = _input_value(task["input_term"])
            has_set = _has_set(value)
        except TypeError:
            has_set = True  # a set inside a set: the binding's Python set cannot hold it
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            error = _error("input", exc)
            return {**error, "message": f"input term: {error['message']}"}
        if has_set:
            # JSON cannot carry a set: the query takes the term through `with`, as a policy
            # would give one.
            query = f"{query.strip()} with input as {task['input_term']}"
        else:
            input_json = json.dumps(value)
    data = json.loads(task["data_json"]) if task["data_json"] is not None else {}
    match = _RULE_QUERY.match(query)
    path = var = None
    if match:
        path = match.group("path") or match.group("path2")
        var = match.group("var") or match.group("var2")
    # sbomgate always sets an input (a package's document). A case without input whose
    # modules and query never name `input` gets `{}`, which nothing can tell from none; one
    # that names it gets none, as in OPA.
    if input_json is None and not _names("\n".join([query, *task["modules"]]), "input"):
        input_json = "{}"
    rules = {f"data.{m.package}.{r.name}" for m in modules for r in m.rules if not r.is_function}
    if (
        path is None
        or var is None
        or var in _NOT_VARS
        or path not in rules
        or query != task["query"]
    ):
        path = var = None
    return {
        "kind": "loaded",
        "query": query,
        "modules": modules,
        "input_json": input_json,
        "data": data,
        "path": path,
        "var": var,
        "query_path": match is not None,
    }


# What `RegoEngine.eval_rule` answers for a rule with no value (a rule's value may be null).
_UNDEFINED = object()


def run_sbomgate(task: Mapping[str, Any]) -> dict[str, Any]:
    """A case through sbomgate's layer: load as the loader does, then `RegoEngine.eval_rule`
    for a rule query, else `eval_query` on an engine of `new_engine()`."""
    import regorus

    from sbomgate.policy import _regorus as sg
    from sbomgate.policy._rsa_signing import sign_rsa

    regorus.set_rsa_signer(sign_rsa)  # again, after a plain case in this process
    loaded = _load_as_sbomgate(task)
    if loaded["kind"] != "loaded":
        return loaded
    modules, input_json, data = loaded["modules"], loaded["input_json"], loaded["data"]
    path, var = loaded["path"], loaded["var"]
    if path is not None and var is not None:
        try:
            engine = sg.RegoEngine(modules, data, extra=HARNESS_BUILTINS)
            if input_json is not None:
                engine.set_input_json(input_json)
            value = engine.eval_rule(path, undefined=_UNDEFINED)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            return {**_error("eval", exc), "route": "eval_rule"}
        rows = [] if value is _UNDEFINED else [{} if var == "_" else {var: opa_json(value)}]
        result = {"kind": "rows", "route": "eval_rule", "rows": rows}
        if value is _UNDEFINED or not value:
            # An empty or undefined answer may hide what the binding could not say.
            result["diagnosis"] = _diagnose(task, input_json, path)
        return result
    route = "eval_query (data, not a rule)" if loaded["query_path"] else "eval_query"
    try:
        engine = sg.new_engine(HARNESS_BUILTINS)
        for module in modules:
            engine.add_policy(module.path, module.source)
        if data:
            engine.add_data(data)
        if input_json is not None:
            engine.set_input_json(input_json)
        try:
            answer = engine.eval_query(loaded["query"])
        except TypeError:
            # A set of arrays or objects, which the binding's Python set cannot hold: read
            # from its JSON, as RegoEngine reads a rule's value (sets as lists).
            answer = json.loads(engine.eval_query_as_json(loaded["query"]))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return {**_error("eval", exc), "route": route}
    return {"kind": "rows", "route": route, "rows": _rows_of(answer)}


# What the RVM's JSON says for an undefined rule (measured): a string, so the road cannot tell
# it from a rule whose value is that string. No conformance case has that value.
_RVM_UNDEFINED = "<undefined>"


def run_rvm(task: Mapping[str, Any]) -> dict[str, Any]:
    """A rule query through regorus' compiled mode (its RVM: `regorus.Program` and
    `regorus.Rvm`), on the modules, input and data sbomgate's layer gives (`--rvm`; a
    measurement, sbomgate does not evaluate this way). A case that is not a rule query is
    counted as refused: the RVM runs entry points (rules), not queries."""
    import regorus

    from sbomgate.policy._rsa_signing import sign_rsa

    regorus.set_rsa_signer(sign_rsa)  # sbomgate's, as in run_sbomgate
    loaded = _load_as_sbomgate(task)
    if loaded["kind"] != "loaded":
        return loaded
    path, var = loaded["path"], loaded["var"]
    if path is None or var is None:
        return {"kind": "refused", "builtins": ["(not a rule query: the RVM runs rules)"]}
    data_json = json.dumps(loaded["data"])
    try:
        program = regorus.Program.compile_from_modules(
            data_json, [(m.path, m.source) for m in loaded["modules"]], [path]
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return _error("load", exc)
    try:
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json(data_json)
        if loaded["input_json"] is not None:
            vm.set_input_json(loaded["input_json"])
        value = json.loads(vm.execute_entry_point(path))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return {**_error("eval", exc), "route": "rvm"}
    rows = [] if value == _RVM_UNDEFINED else [{} if var == "_" else {var: value}]
    return {"kind": "rows", "route": "rvm", "rows": rows}


def _has_set(value: Any) -> bool:
    if isinstance(value, set | frozenset):
        return True
    if isinstance(value, dict):
        return any(_has_set(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_set(v) for v in value)
    return False


def _diagnose(task: Mapping[str, Any], input_json: str | None, path: str) -> str:
    """What the rule's value is, asked of a plain engine through `eval_query`, when
    `eval_rule` answered nothing: "null" (a null value reads as None, undefined), "unhashable"
    (the binding cannot hand a set of arrays, objects or sets to Python: TypeError, which
    RegoEngine takes for a failed definition) or "" (neither)."""
    import regorus

    engine = regorus.Engine()
    try:
        for i, source in enumerate(task["modules"]):
            engine.add_policy(f"test-{i}.rego", source)
        if task["data_json"] is not None:
            engine.add_data_json(task["data_json"])
        if input_json is not None:
            engine.set_input_json(input_json)
        rows = engine.eval_query(f"__value__ = {path}")["result"]
    except TypeError as exc:
        return "unhashable" if "unhashable" in str(exc) else ""
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        return ""
    if rows and rows[0].get("bindings", {}).get("__value__", 0) is None:
        return "null"
    return ""


def worker_main() -> None:
    """Run the tasks read from stdin (one JSON line each), one result line each."""
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else is printed goes to stderr, away from the results
    runners = {"plain": run_plain, "sbomgate": run_sbomgate, "rvm": run_rvm}
    for line in sys.stdin:
        task = json.loads(line)
        try:
            result = runners[task["road"]](task)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            result = _error("harness", exc)
        try:
            text = json.dumps(result)
        except (TypeError, ValueError) as exc:  # a value JSON cannot carry
            text = json.dumps(_error("result", exc))
        results.write(_MARK + text + "\n")
        results.flush()


# --------------------------------------------------------------------------- the parent side


@dataclass(slots=True)
class _Worker:
    process: subprocess.Popen[bytes]
    fd: int  # its stdout, where its results come
    buffer: bytes = b""
    task: tuple[int, str] | None = None
    deadline: float = 0.0


def _start_worker() -> _Worker:
    env = dict(os.environ)
    # Error texts without Rust backtraces: the same messages, without the cost of capturing
    # a backtrace on every error.
    env["RUST_BACKTRACE"] = "0"
    env.pop("RUST_LIB_BACKTRACE", None)
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    return _Worker(process=process, fd=process.stdout.fileno())


def _stop(worker: _Worker) -> None:
    if worker.process.poll() is None:
        worker.process.kill()
    worker.process.wait()
    for stream in (worker.process.stdin, worker.process.stdout):
        if stream is not None:
            stream.close()


def run_tasks(
    cases: Sequence[Case], roads: Sequence[str], *, jobs: int, timeout: float
) -> dict[tuple[int, str], dict[str, Any]]:
    """Every (case, road) in worker processes; a case that outlives `timeout` seconds or
    kills its worker is a failure of that case, and the worker is replaced."""
    pending = [(i, road) for i in range(len(cases)) for road in roads]
    pending.reverse()
    results: dict[tuple[int, str], dict[str, Any]] = {}
    selector = selectors.DefaultSelector()
    workers: list[_Worker] = []

    def give(worker: _Worker) -> None:
        if not pending:
            return
        index, road = pending.pop()
        line = json.dumps({"road": road, **cases[index].task()}) + "\n"
        assert worker.process.stdin is not None
        worker.task = (index, road)
        worker.deadline = time.monotonic() + timeout
        try:
            worker.process.stdin.write(line.encode())
            worker.process.stdin.flush()
        except BrokenPipeError:
            worker.deadline = 0.0  # dead already: replaced at the next check

    def replace(worker: _Worker, outcome: dict[str, Any]) -> None:
        if worker.task is not None:
            results[worker.task] = outcome
        selector.unregister(worker.fd)
        _stop(worker)
        workers.remove(worker)
        if pending:
            fresh = _start_worker()
            workers.append(fresh)
            selector.register(fresh.fd, selectors.EVENT_READ, fresh)
            give(fresh)

    for _ in range(max(1, min(jobs, len(pending)))):
        worker = _start_worker()
        workers.append(worker)
        selector.register(worker.fd, selectors.EVENT_READ, worker)
        give(worker)
    try:
        while workers:
            now = time.monotonic()
            wait = max(0.0, min(w.deadline for w in workers) - now) if workers else timeout
            for key, _ in selector.select(timeout=min(wait, 1.0)):
                worker = key.data
                chunk = os.read(worker.fd, 1 << 16)
                if not chunk:
                    message = f"the worker died (exit {worker.process.wait()})"
                    replace(worker, {"kind": "crash", "message": message})
                    continue
                worker.buffer += chunk
                while b"\n" in worker.buffer:
                    line, worker.buffer = worker.buffer.split(b"\n", 1)
                    text = line.decode("utf-8", "replace")
                    if not text.startswith(_MARK) or worker.task is None:
                        continue
                    results[worker.task] = json.loads(text[len(_MARK) :])
                    worker.task = None
                    give(worker)
                if worker.task is None and not pending:
                    selector.unregister(worker.fd)
                    _stop(worker)
                    workers.remove(worker)
            now = time.monotonic()
            for worker in list(workers):
                if worker.task is not None and now > worker.deadline:
                    replace(worker, {"kind": "timeout", "message": f"over {timeout:g} s"})
    finally:
        for worker in workers:
            _stop(worker)
        selector.close()
    return results


# --------------------------------------------------------------------------- judging


@dataclass(slots=True, kw_only=True)
class Outcome:
    """One case on one road: passed, failed or refused, with what was wanted and got."""

    case: Case
    road: str
    status: str  # "passed", "failed", "refused"
    got: dict[str, Any]
    kind: str = ""  # why it failed, in a few words


def judge(case: Case, road: str, got: Mapping[str, Any]) -> Outcome:
    """The verdict on one case's answer, as OPA's runner gives it."""
    want = case.want
    kind = str(got.get("kind"))
    if kind == "refused":
        return Outcome(case=case, road=road, status="refused", got=dict(got))
    if kind in ("timeout", "crash"):
        return Outcome(case=case, road=road, status="failed", got=dict(got), kind=kind)
    if kind == "error":
        why = _error_kind(got)
        # Every error a case wants is one of evaluation (OPA's runner compiles the modules
        # first, and a compile error, an unknown function among them, stops it): an error
        # loading the case, a missing builtin, a panic or the binding's cannot meet it.
        if want.error and why == _EVAL_ERROR:
            return Outcome(case=case, road=road, status="passed", got=dict(got))
        return Outcome(case=case, road=road, status="failed", got=dict(got), kind=why)
    if want.error:
        return Outcome(case=case, road=road, status="failed", got=dict(got), kind=_no_error(got))
    wanted = result_set(
        want.rows or [], sort=case.sort_bindings, ignore_generated=case.ignore_generated_vars
    )
    rows = got.get("rows") or []
    answer = result_set(rows, sort=case.sort_bindings, ignore_generated=case.ignore_generated_vars)
    if wanted == answer:
        return Outcome(case=case, road=road, status="passed", got=dict(got))
    if got.get("diagnosis") == "unhashable":
        why = "binding: unhashable set read as empty/undefined"
    elif got.get("diagnosis") == "null":
        why = "null value read as undefined"
    elif not want.rows:
        why = "defined where OPA is undefined"
    elif not rows:
        why = "undefined where OPA is defined"
    else:
        why = "different value"
    return Outcome(case=case, road=road, status="failed", got=dict(got), kind=why)


_EVAL_ERROR = "error where OPA has an answer"
_LOAD_KINDS = (
    ("is not supported by sbomgate", "load: builtin not supported"),
    ("unknown function", "load: unknown function"),
    ("maximum column width", "load: a line over 1,024 columns (regorus' limit)"),
    ("nested", "load: collection literals nested too deep"),
    ("cannot parse number", "load: number out of range"),
)


def _error_kind(got: Mapping[str, Any]) -> str:
    """Why an error is wrong, in a few words."""
    message = str(got.get("message"))
    if got.get("stage") == "input":
        return "input not JSON"
    if got.get("stage") == "load":
        return next((kind for text, kind in _LOAD_KINDS if text in message), "load: parse error")
    if "unhashable type" in message:
        return "binding: unhashable set (TypeError)"
    if "could not find function" in message:
        return "missing builtin (error at evaluation)"
    if message.startswith("PanicException"):
        return "panic"
    return _EVAL_ERROR


def _no_error(got: Mapping[str, Any]) -> str:
    return "no error where OPA errs" if got.get("rows") else "undefined where OPA errs"


# --------------------------------------------------------------------------- the run


@dataclass(slots=True, kw_only=True)
class Run:
    """Every outcome of a run, by road, and what it cost."""

    cases: list[Case]
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    seconds: float = 0.0
    oracle_seconds: float = 0.0

    def failing(self, road: str = "sbomgate") -> set[str]:
        """The ids of the cases that failed on `road`."""
        return {o.case.id for o in self.outcomes[road] if o.status == "failed"}

    def status(self, road: str = "sbomgate") -> dict[str, str]:
        """Each case id's status on `road`."""
        return {o.case.id: o.status for o in self.outcomes[road]}


def run(
    module_dir: Path,
    *,
    only: Sequence[str] = (),
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    opa: str | None = None,
    roads: Sequence[str] = ROADS,
) -> Run:
    """Load the cases, ask OPA for the strict_error cases' non-strict answers, run every case on
    every road and judge it."""
    started = time.perf_counter()
    cases = load_cases(module_dir, only)
    if any(c.strict_error and c.want.error for c in cases):
        opa = opa or opa_binary()
        if opa is None:
            raise FileNotFoundError("opa (the non-strict oracle): run `make tools`")
        cases = with_non_strict_wants(cases, opa, timeout)
    oracle_seconds = time.perf_counter() - started
    answers = run_tasks(cases, roads, jobs=jobs, timeout=timeout)
    result = Run(cases=cases, oracle_seconds=oracle_seconds)
    for road in roads:
        result.outcomes[road] = [judge(c, road, answers[(i, road)]) for i, c in enumerate(cases)]
    result.seconds = time.perf_counter() - started
    return result


def check_oracle(module_dir: Path, opa: str, only: Sequence[str], timeout: float) -> str:
    """How often `opa eval` (non-strict) gives the wanted answer of the cases that are not
    strict_error ones: the trust the non-strict answers deserve."""
    agree = 0
    disagree: list[str] = []
    for case in load_cases(module_dir, only):
        if case.strict_error:
            continue
        want = ask_opa(opa, case, timeout)
        if case.want.error:
            same = want.error
        else:
            same = not want.error and result_set(
                want.rows or [], sort=case.sort_bindings, ignore_generated=True
            ) == result_set(case.want.rows or [], sort=case.sort_bindings, ignore_generated=True)
        if same:
            agree += 1
        else:
            disagree.append(case.id)
    lines = [f"opa eval agrees with {agree} of {agree + len(disagree)} non-strict cases"]
    lines += [f"- {note}" for note in disagree]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the reports


def _rvm_summary(result: Run) -> list[str]:
    """The RVM road (`--rvm`): its totals, and per directory the cases sbomgate's engine
    passes and the RVM does not (where compiled mode would change an answer)."""
    rvm = {o.case.id: o for o in result.outcomes["rvm"]}
    ours = result.status("sbomgate")
    counts = Counter(o.status for o in rvm.values())
    run_here = counts["passed"] + counts["failed"]
    gaps: dict[str, list[str]] = {}
    for case_id, outcome in rvm.items():
        if outcome.status == "failed" and ours.get(case_id) == "passed":
            gaps.setdefault(outcome.case.directory, []).append(f"{case_id} ({outcome.kind})")
    lines = [
        "Compiled mode (regorus' RVM), rule queries only, on the modules as sbomgate loads "
        f"them: {counts['passed']} of {run_here} passed, {counts['refused']} not run or "
        f"refused; {sum(len(v) for v in gaps.values())} cases sbomgate's engine passes fail "
        "there:",
        "",
        "| directory | sbomgate passes, the RVM does not |",
        "|---|---:|",
    ]
    lines += [f"| {d} | {len(ids)} |" for d, ids in sorted(gaps.items())]
    return lines


def markdown(result: Run) -> str:
    """The per-directory table, the totals, the roads taken and the refused builtins."""
    from sbomgate.policy._regorus import FORBIDDEN_BUILTINS

    per: dict[str, Counter[str]] = {}
    for road, outcomes in result.outcomes.items():
        for o in outcomes:
            per.setdefault(o.case.directory, Counter())[f"{road}:{o.status}"] += 1
    for case in result.cases:
        per[case.directory]["cases"] += 1
    header = (
        "| directory | cases | sbomgate passed | sbomgate failed | sbomgate refused "
        "| plain passed | plain failed |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    total: Counter[str] = Counter()
    columns = (
        "cases",
        "sbomgate:passed",
        "sbomgate:failed",
        "sbomgate:refused",
        "plain:passed",
        "plain:failed",
    )
    for directory in sorted(per):
        counts = per[directory]
        total.update(counts)
        cells = " | ".join(str(counts[c]) for c in columns)
        lines.append(f"| {directory} | {cells} |")
    cells = " | ".join(f"**{total[c]}**" for c in columns)
    lines.append(f"| **total ({len(per)} directories)** | {cells} |")
    out = ["# OPA conformance cases: sbomgate's engine and plain regorus", "", *lines, ""]
    if "sbomgate" in result.outcomes:
        routes = Counter(
            str(o.got.get("route", f"none ({o.got.get('kind')}, {o.got.get('stage', '-')})"))
            for o in result.outcomes["sbomgate"]
        )
        out += ["Roads through sbomgate's engine:", ""]
        out += [f"- {route}: {n}" for route, n in sorted(routes.items())]
        refused: Counter[str] = Counter()
        for o in result.outcomes["sbomgate"]:
            if o.status == "refused":
                refused.update(o.got.get("builtins", []))
        if refused:
            out += ["", "Refused builtins (sbomgate refuses them on purpose):", ""]
            out += ["| builtin | cases | reason |", "|---|---:|---|"]
            out += [f"| {b} | {n} | {FORBIDDEN_BUILTINS[b]} |" for b, n in sorted(refused.items())]
    if "rvm" in result.outcomes:
        out += ["", *_rvm_summary(result)]
    for road, outcomes in result.outcomes.items():
        kinds = Counter(o.kind for o in outcomes if o.status == "failed")
        if kinds:
            out += ["", f"Failures of {road} by kind:", ""]
            out += [f"- {kind}: {n}" for kind, n in kinds.most_common()]
    oracle = sum(1 for c in result.cases if c.want.from_oracle)
    texts = Counter(
        o.road
        for outcomes in result.outcomes.values()
        for o in outcomes
        if o.status == "passed"
        and o.case.want.error
        and not o.case.want.from_oracle
        and o.case.want.error_text
        and o.case.want.error_text in str(o.got.get("message"))
    )
    wanted_texts = sum(
        1 for c in result.cases if c.want.error and not c.want.from_oracle and c.want.error_text
    )
    out += [
        "",
        f"{len(result.cases)} cases; {oracle} strict_error cases judged by OPA's non-strict "
        f"answer (opa eval, {result.oracle_seconds:.1f} s); a wanted error is met by any error "
        f"of evaluation (with the wanted text as well: "
        + ", ".join(f"{road} {texts[road]} of {wanted_texts}" for road in result.outcomes)
        + f"); {result.seconds:.1f} s in all.",
    ]
    return "\n".join(out) + "\n"


def failures_json(result: Run) -> list[dict[str, Any]]:
    """Every failed case of every road: its note, what was wanted and what came."""
    out = []
    for road, outcomes in result.outcomes.items():
        for o in outcomes:
            if o.status != "failed":
                continue
            want = o.case.want
            wanted: dict[str, Any] = (
                {"error": want.error_text or want.error_code or True}
                if want.error
                else {"result": want.rows}
            )
            if want.from_oracle:
                wanted["from"] = "opa eval (non-strict) for a strict_error case"
            out.append(
                {
                    "road": road,
                    "id": o.case.id,
                    "note": o.case.note,
                    "directory": o.case.directory,
                    "file": o.case.file,
                    "query": o.case.query,
                    "kind": o.kind,
                    "wanted": wanted,
                    "got": o.got,
                }
            )
    return out


_CAUSES = {
    "load: builtin not supported": "builtins sbomgate does not support",
    "load: parse error": "regorus cannot parse",
    "load: a line over 1,024 columns (regorus' limit)": "a line over 1,024 columns "
    "(regorus' limit)",
    "load: unknown function": "sbomgate refuses a call it takes for an unknown function",
    "load: collection literals nested too deep": "sbomgate's parse-cost guard refuses the nesting",
    "load: number out of range": "regorus cannot read a number (out of range)",
    "binding: unhashable set read as empty/undefined": "a set of arrays/objects/sets reads as "
    "empty (the binding's TypeError, taken for a failed definition)",
    "binding: unhashable set (TypeError)": "the binding cannot return a set of arrays/objects",
    _EVAL_ERROR: "regorus errors where OPA answers",
    "undefined where OPA is defined": "undefined where OPA answers",
    "defined where OPA is undefined": "an answer where OPA is undefined",
    "different value": "a different value",
    "no error where OPA errs": "no error where OPA reports one",
    "undefined where OPA errs": "undefined where OPA reports an error",
    "input not JSON": "the input holds a Rego set (RegoEngine takes JSON input)",
    "null value read as undefined": "a rule whose value is null reads as undefined",
    "missing builtin (error at evaluation)": "a builtin regorus lacks",
    "panic": "regorus panics",
    "timeout": "a timeout",
    "crash": "the worker died",
}
_BUILTIN = re.compile(r"builtin (\S+) is not supported")
_DETAIL = re.compile(r"^(?:test-\d+\.rego:\d+: |\w+: )")


def _cause(outcome: Outcome) -> tuple[str, str]:
    """(why, detail) of a failure: the detail names the builtin, the parse error, ..."""
    text = _CAUSES.get(outcome.kind, outcome.kind)
    message = str(outcome.got.get("message", ""))
    source = outcome.case.query + "".join(outcome.case.modules)
    if outcome.kind == "load: builtin not supported":
        found = _BUILTIN.search(message)
        return text, found.group(1) if found else ""
    if outcome.kind in ("load: parse error", _EVAL_ERROR, "panic"):
        detail = _DETAIL.sub("", message).strip().rstrip(".")
        if "invalid character" in detail and re.search(r"\$[\"`]", source):
            detail = 'template strings $"..."'
        return text, detail[:50]
    return text, ""


def _why(outcomes: Sequence[Outcome]) -> str:
    """One line: the causes with their counts, most frequent first, with up to 4 details."""
    counts: Counter[str] = Counter()
    details: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        cause, detail = _cause(outcome)
        counts[cause] += 1
        if detail:
            details.setdefault(cause, Counter())[detail] += 1
    parts = []
    for cause, n in counts.most_common():
        found = [d for d, _ in details.get(cause, Counter()).most_common()]
        more = ", ..." if len(found) > 4 else ""
        parts.append(f"{cause} ({n})" + (f": {', '.join(found[:4])}{more}" if found else ""))
    return "; ".join(parts)


def known_failures_text(result: Run, road: str = "sbomgate") -> str:
    """The list of known failures of `road`: one case id a line, grouped by directory, each
    group after a one-line comment of why (as the harness can tell)."""
    groups: dict[str, list[Outcome]] = {}
    for outcome in result.outcomes[road]:
        if outcome.status == "failed":
            groups.setdefault(outcome.case.directory, []).append(outcome)
    lines = [
        "# OPA conformance cases that sbomgate's engine fails today (issue 17), one case a line:",
        "# its note, with ` #n` for the n-th case of a repeated note. Grouped by directory of",
        "# v1/test/cases/testdata/v1, each group after a comment of why, as far as the harness",
        "# tells (tools/opa_conformance.py --write-known-failures writes this file; the comments",
        "# may be edited). tests/integration/policy/test_opa_conformance.py fails on a failing",
        "# case that is not listed, and on a listed case that passes: remove it from the list.",
    ]
    for directory in sorted(groups):
        lines += ["", f"# {directory}: {_why(groups[directory])}"]
        # A note may itself begin with `#` ("# 5073 regression test"): it is written after a
        # backslash, which reading drops.
        for outcome in groups[directory]:
            line = outcome.case.id
            lines.append("\\" + line if line.startswith(("#", "\\")) else line)
    return "\n".join(lines) + "\n"


def read_known_failures(path: Path) -> set[str]:
    """The case ids of a known-failures list (comments and blank lines left out, a leading
    `\\` dropped)."""
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            ids.add(line.removeprefix("\\"))
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--filter", action="append", default=[], metavar="DIR", help="this directory only"
    )
    parser.add_argument("--json", type=Path, help="write the failed cases here")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per case and road"
    )
    parser.add_argument("--opa-module", type=Path, help="the OPA module (default: Go's cache)")
    parser.add_argument(
        "--write-known-failures", type=Path, metavar="PATH", help="write sbomgate's failing cases"
    )
    parser.add_argument(
        "--check-oracle", action="store_true", help="opa eval against the non-strict cases"
    )
    parser.add_argument(
        "--rvm", action="store_true", help="also run rule queries in regorus' compiled mode"
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    module_dir = args.opa_module or opa_module_dir()
    if not (module_dir / CASES_SUBDIR).is_dir():
        print(f"{module_dir / CASES_SUBDIR}: not found; run `make tools`", file=sys.stderr)
        return 2
    if args.check_oracle:
        opa = opa_binary()
        if opa is None:
            print("opa not found: run `make tools`", file=sys.stderr)
            return 2
        print(check_oracle(module_dir, opa, args.filter, args.timeout))
        return 0
    roads = (*ROADS, "rvm") if args.rvm else ROADS
    result = run(module_dir, only=args.filter, jobs=args.jobs, timeout=args.timeout, roads=roads)
    if not result.cases:
        print(f"no cases (--filter {args.filter})", file=sys.stderr)
        return 2
    sys.stdout.write(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(failures_json(result), indent=1) + "\n")
    if args.write_known_failures:
        args.write_known_failures.write_text(known_failures_text(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
