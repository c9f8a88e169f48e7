"""Everything that knows about the regorus binding.

Why gordon-to-regorus 0.13.0 and not celine-regorus 0.9.1 (both install the module `regorus`;
the facts are in ../shared/DESIGN.md and were re-checked here): celine-regorus cannot parse
`input.v0.package` (a keyword used as a field, as Cloudsmith's seed policy does), turns Python
booleans into 1/0, and has no custom builtins, so `semver.compare` could not be made OPA's own.
gordon-to-regorus parses the seed verbatim and has `Engine.add_extension`. Its source is pinned
by hash and built with sbomgate's patch (below) by tools/regorus/build.sh.

Why the interpreter (`Engine`) and not the binding's RVM (`Program`/`Rvm`): the RVM returns
undefined on builtin errors like OPA, but its compiler rejects `with`, and, measured, it let
an undefined value leak into a partial set as the string "<undefined>" - a false match.

OPA's default mode is non-strict: a builtin's error (`count(null)`, `to_number("x")`) makes
that expression undefined, and everything around it (`not`, `every`, comprehensions, partial
rules, functions, `else`) follows. regorus can do the same (`set_strict_builtin_errors(False)`),
but the binding on PyPI does not expose the setting, so sbomgate builds the binding from source
with a patch (tools/regorus/sbomgate.patch, whose header lists each change: the setting,
operations that erred or panicked either way, OPA syntax regorus could not read, builtins it
lacked). `some x in null`, which regorus' interpreter fails on in both modes, is
rewritten at load time (_rewrite.py). What still fails is an error in OPA too (a conflict,
recursion) or one of regorus' own: the policy failed to evaluate, and the verdict denies.
(Before, errors were caught per rule, and each of its definitions evaluated again alone in a
copy of the module: exact only per definition, and seconds for one unlucky package.)

Engines are bound to the thread that made them (another thread gets a PanicException), so a
`RegoEngine` must only be used on its creating thread; `PolicyEngine` keeps one set per thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import regorus

from sbomgate.errors import EvaluationError, PolicyLoadError, SbomgateError
from sbomgate.policy._annotations import (
    METADATA_BUILTINS,
    MetadataCall,
    ModuleAnnotations,
    read_annotations,
    resolve,
)
from sbomgate.policy._ast import ref_name as _ref_name
from sbomgate.policy._ast import walk
from sbomgate.policy._deepstack import on_deep_stack
from sbomgate.policy._globs import globs_match
from sbomgate.policy._gotemplate import render_template
from sbomgate.policy._graphql import extensions as graphql_extensions
from sbomgate.policy._regoast import parse_module
from sbomgate.policy._rewrite import (
    rewrite_negations,
    rewrite_output_arguments,
    rewrite_some_in,
)
from sbomgate.policy._rsa_signing import sign_rsa
from sbomgate.policy._semver import semver_compare, semver_is_valid
from sbomgate.policy._x509 import extensions as x509_extensions

_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_ERROR_LINE = re.compile(r"^error:\s*(?P<msg>.+)$", re.MULTILINE)

# OPA 1.22 builtins that regorus 0.13 lacks (probed against `opa capabilities`) and sbomgate's
# patch does not add. A policy calling one is refused at load time, naming the builtin.
UNSUPPORTED_OPA_BUILTINS = frozenset(
    {
        "net.cidr_overlap",
    }
)  # fmt: skip

# Builtins OPA 1.x removed (deprecated in 0.x): OPA refuses a policy calling one, and so does
# sbomgate, naming what replaces it.
DEPRECATED_BUILTINS = {
    "all": "`every`",
    "any": "`some ... in`",
    "re_match": "regex.match",
    "set_diff": "the `-` operator",
    "cast_array": "an array comprehension",
    "cast_set": "a set comprehension",
    "cast_string": "is_string",
    "cast_boolean": "is_boolean",
    "cast_null": "is_null",
    "cast_object": "is_object",
}

# Builtins that would let a policy reach the network or the host, or that serve only that:
# refused at load time.
FORBIDDEN_BUILTINS = {
    "http.send": "http.send is disabled: policies cannot reach the network",
    "net.lookup_ip_addr": "net.lookup_ip_addr is disabled: policies cannot reach the network",
    "opa.runtime": "opa.runtime is disabled: policies cannot read the engine's environment",
    "providers.aws.sign_req": (
        "providers.aws.sign_req is disabled: it signs requests for http.send, which is disabled, "
        "with AWS credentials a policy must not hold"
    ),
}


class RegoError(EvaluationError):
    """regorus refused a module or failed an evaluation; message and line extracted."""

    def __init__(self, message: str, *, file: str | None, line: int | None) -> None:
        where = f"{file}:{line}: " if file and line else ""
        super().__init__(f"{where}{message}")
        self.message = message
        self.file = file
        self.line = line


def rego_error(exc: BaseException) -> RegoError:
    """The one-line message and location inside regorus' multi-line error (with backtrace)."""
    text = str(exc)
    loc = _LOCATION.search(text)
    msg = _ERROR_LINE.search(text)
    message = msg.group("msg").strip() if msg else text.strip().splitlines()[0] if text else ""
    return RegoError(
        message or type(exc).__name__,
        file=loc.group("file") if loc else None,
        line=int(loc.group("line")) if loc else None,
    )


def _globs_match(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError("regex.globs_match: operands must be strings")
    return globs_match(a, b)


def _forbidden(name: str) -> Callable[..., Any]:
    def refuse(*_args: Any) -> Any:
        raise PermissionError(FORBIDDEN_BUILTINS[name])

    return refuse


BINDING_VERSION = "0.13.0+sbomgate.18"
_UNPATCHED_BINDING = (
    "the installed regorus binding is not the build of sbomgate's current patch, which "
    "evaluates as OPA does (builtin errors, numbers): sbomgate needs gordon-to-regorus "
    f"{BINDING_VERSION}, built from source with sbomgate's patch by `make venv` "
    "(tools/regorus/build.sh)"
)

# A builtin sbomgate adds through regorus' extensions: (path, arity, callable).
Extension = tuple[str, int, Callable[..., Any]]

# Extensions installed in every engine.
_EXTENSIONS: tuple[Extension, ...] = (
    # OPA's SemVer reading, not the Rust crate's (policy/_semver.py)
    ("semver.compare", 2, semver_compare),
    ("semver.is_valid", 1, semver_is_valid),
    ("regex.globs_match", 2, _globs_match),
    ("strings.render_template", 2, render_template),
    # OPA's AST of a module as JSON, from regorus' parse of it (policy/_regoast.py)
    ("rego.parse_module", 2, parse_module),
    ("http.send", 1, _forbidden("http.send")),
    ("net.lookup_ip_addr", 1, _forbidden("net.lookup_ip_addr")),
    # OPA's graphql.* builtins, which regorus lacks (policy/_graphql.py)
    *graphql_extensions(),
    # OPA's crypto.x509.* and crypto.parse_private_keys, which regorus lacks (policy/_x509.py)
    *x509_extensions(),
)


# RSA keys in io.jwt.encode_sign(_raw) are signed over OpenSSL (_rsa_signing), process-wide; a
# binding without the hook is refused by new_engine (_UNPATCHED_BINDING).
if hasattr(regorus, "set_rsa_signer"):
    regorus.set_rsa_signer(sign_rsa)


# regorus refuses a line over 1,024 columns by default; OPA has no such limit, and policies
# with a key, a certificate or generated data on one line are common. The file's size is what
# bounds the work (regorus' own 1 MiB, sbomgate's MAX_POLICY_BYTES), so a line may be as long.
_MAX_FILE_BYTES = 1 << 20
_MAX_LINES = 20_000  # regorus' default, kept


def _bare_engine() -> Any:
    """A regorus engine that reads lines as long as the file may be."""
    engine = regorus.Engine()
    engine.set_policy_length_config(
        max_col=_MAX_FILE_BYTES, max_file_bytes=_MAX_FILE_BYTES, max_lines=_MAX_LINES
    )
    return engine


@cache
def _binding_is_current() -> bool:
    """Whether the installed binding is the build of sbomgate's current patch (an older one
    reads numbers, for one, as regorus did: see the patch's header)."""
    try:
        return importlib.metadata.version("gordon-to-regorus") == BINDING_VERSION
    except importlib.metadata.PackageNotFoundError:
        return False


def new_engine(extra: Sequence[Extension] = ()) -> Any:
    """A regorus engine in OPA's default mode (a builtin's error makes its call undefined) with
    our extensions: OPA's semver.compare and semver.is_valid, the refused network builtins;
    and `extra` ones, which only a tool gives (the conformance harness's test.sleep), never a
    policy."""
    engine = _bare_engine()
    try:
        engine.set_strict_builtin_errors(False)
    except AttributeError:
        raise SbomgateError(_UNPATCHED_BINDING) from None
    if not hasattr(regorus, "set_rsa_signer") or not _binding_is_current():
        raise SbomgateError(_UNPATCHED_BINDING)  # an older sbomgate build
    for path, nargs, fn in (*_EXTENSIONS, *extra):
        engine.add_extension(path, nargs, fn)
    return engine


@cache
def regorus_builtins() -> frozenset[str]:
    """The builtins this regorus build provides (it reports them through opa.runtime)."""
    engine = _bare_engine()
    runtime = engine.eval_query("x := opa.runtime()")
    names = runtime["result"][0]["bindings"]["x"]["builtins"]
    return frozenset(str(n) for n in names)


# --------------------------------------------------------------------------- module analysis


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDefinition:
    """One definition of a rule (a head with its body and else-chain): its byte span.

    `kind` is "complete", "set" (`r contains x`), "object" (`r[k]` / `r[k] := v`),
    "function" or "default".
    """

    name: str
    start: int
    end: int
    line: int
    kind: str

    @property
    def is_default(self) -> bool:
        """True for a `default` definition."""
        return self.kind == "default"

    @property
    def is_function(self) -> bool:
        """True for a function definition (`f(x) := ...`)."""
        return self.kind == "function"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegoModule:
    """A Rego module as analysed: its package, rule definitions, imports and builtin calls."""

    path: str
    # What regorus is given: `written` after the load-time rewrites (_rewrite.py), which keep
    # every line where it was.
    source: str
    package: str
    rules: tuple[RuleDefinition, ...]
    imports: frozenset[str]
    calls: tuple[tuple[str, int], ...] = field(default=())
    # Every path the module reads `input` through, up to its first computed key (`()`: the
    # whole of `input`), and whether it replaces any of it (`with input...`).
    input_reads: frozenset[tuple[str, ...]] = field(default=frozenset({()}))
    replaces_input: bool = True
    # The same for `data`: the documents and the packages' rules it reads (`()`: all of data).
    data_reads: frozenset[tuple[str, ...]] = field(default=frozenset({()}))
    # The paths under `input` that the `match` rule and every rule and function it refers to
    # (within the module, transitively) read; None when that cannot be told (no `match`, a
    # rule of the module named through a computed key, `data` or the package read whole).
    match_reads: frozenset[tuple[str, ...]] | None = None
    # The complete rules whose value cannot depend on `input` (see ConstantRule).
    constants: tuple[ConstantRule, ...] = ()
    # When the module calls rego.metadata.rule() or .chain(): its METADATA blocks and the
    # calls, which `source` has replaced by their values from this module's blocks alone
    # (RegoEngine replaces them again from every module it evaluates together).
    annotations: ModuleAnnotations | None = None
    # The module as its author wrote it (shown back to users: manifests, OPA as the peer).
    written: str

    def definitions(self, name: str) -> list[RuleDefinition]:
        """Every definition of the rule `name`, in source order."""
        return [r for r in self.rules if r.name == name]


def _static_ref(node: Any) -> tuple[tuple[str, ...], str | None, list[Any]]:
    """A reference's static path from its root (cut at the first computed key), the root's
    name (None when the root is not a variable), and the parts still to walk (computed keys,
    a non-variable root)."""
    fields: list[str] = []
    rest: list[Any] = []
    while isinstance(node, dict) and len(node) == 1:
        kind, body = next(iter(node.items()))
        if kind == "RefDot":
            fields.append(str(body["field"][1]))
        elif kind == "RefBrack":
            index = body["index"]
            literal = index.get("String") if isinstance(index, dict) else None
            if isinstance(literal, dict):
                fields.append(str(literal["value"]))
            else:
                fields.clear()  # what lies beyond a computed key is not static
                rest.append(index)
        elif kind == "Var":
            return tuple(reversed(fields)), str(body["value"]), rest
        else:
            break
        node = body["refr"]
    rest.append(node)
    return tuple(reversed(fields)), None, rest


def _input_reads(node: Any) -> Iterator[tuple[str, ...]]:
    """The static paths under `input` that `node` reads (`()` for `input` itself)."""
    return _root_reads(node, "input")


def _root_reads(node: Any, root_name: str) -> Iterator[tuple[str, ...]]:
    """The static paths under the root document `root_name` (`input`, `data`) that `node`
    reads (`()` for the root itself, or a computed key right under it)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if len(item) == 1:
            kind, body = next(iter(item.items()))
            if kind in ("RefDot", "RefBrack"):
                path, root, rest = _static_ref(item)
                if root == root_name:
                    yield path
                stack.extend(rest)
                continue
            if kind == "Var" and isinstance(body, dict) and body.get("value") == root_name:
                yield ()
                continue
        stack.extend(item.values())


_WITH_INPUT = re.compile(r"\bwith\s+input\b")


def _rule_head(rule: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """(name, kind, span) of a rule from regorus' AST."""
    kind, body = next(iter(rule.items()))
    if kind == "Default":
        return _ref_name(body["refr"]) or "", "default", body["span"]
    head_kind, head = next(iter(body["head"].items()))
    refr = head["refr"]
    if head_kind == "Func":
        return _ref_name(refr) or "", "function", body["span"]
    if head_kind == "Set":
        return _ref_name(refr) or "", "set", body["span"]
    if isinstance(refr, dict) and "RefBrack" in refr:
        return _ref_name(refr["RefBrack"]["refr"]) or "", "object", body["span"]
    return _ref_name(refr) or "", "complete", body["span"]


# regorus read the first term of a collection literal once as a comprehension's head and, when
# no `|` followed, again as the literal's first element: a chain of literals each the first term
# of the one around it (`[[[[...]]]]`) took exponential time with the GIL held (18 levels: 33 s,
# from a 40-byte policy). sbomgate's patch now looks for a top-level `|` first, so each level is
# read once, and the scan makes the parse grow with length times depth (400 levels: 0.12 s).
# The chain is capped, far above any real policy's (the bundled policies' deepest is 7, OPA's
# own test corpus 11), so that the product stays small.
MAX_LITERAL_CHAIN = 32
_SCAN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|`[^`]*`|[\[\]{}(),|\n]')


def check_parse_cost(path: str, source: str) -> None:
    """PolicyLoadError (with the line) for a chain of collection literals nested deeper than
    MAX_LITERAL_CHAIN, each the first term of the one around it."""
    stack: list[list[Any]] = []  # [opener, still in its first term]
    line = 1
    for match in _SCAN.finditer(source):
        token = match.group()
        if len(token) != 1 or token == "\n":  # a comment, a string, a raw string, a newline
            line += token.count("\n")
            continue
        if token in "[{(":
            if token != "(":  # parentheses are read once
                chain = 1 + sum(1 for opener, first in stack if first and opener != "(")
                if chain > MAX_LITERAL_CHAIN:
                    raise PolicyLoadError(
                        path,
                        f"collection literals nested {chain} deep, each the first term of the "
                        f"one around it (the limit is {MAX_LITERAL_CHAIN}); move the value into "
                        "data",
                        line,
                    )
            stack.append([token, True])
        elif token in "]})":
            if stack:
                stack.pop()
        elif stack:  # `,` or `|`: the first term of the innermost collection is over
            stack[-1][1] = False


_MAX_REWRITE_PASSES = 8
# The imports after which `not` is left as written: those that give it OPA's newer meaning, a
# body of its own (all future keywords, and rego.v2, include `not`), and OPA's logic operators,
# whose operands regorus evaluates as comprehensions (the patch): a term bound before a `not`
# inside an operand would land outside it.
_NOT_BODIES = frozenset(
    {
        "future.keywords",
        "future.keywords.not",
        "future.keywords.and",
        "future.keywords.or",
        "rego.v2",
    }
)


def _from_json(text: str) -> Any:
    """regorus' JSON as Python values. A number beyond f64's range (`1e400`, which OPA and
    sbomgate's regorus hold exactly) is one orjson refuses: the standard library reads it
    (an integer exactly, anything else as the nearest float, `inf` beyond)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def regorus_ast_json(path: str, source: str) -> str:
    """regorus' AST of one module as its JSON, parsed on a deep stack (_deepstack.py); regorus'
    own error when it cannot parse. Shared by policy loading and rego.parse_module."""

    def parse() -> str:
        engine = _bare_engine()  # dropped on the deep stack too: a deep tree's drop recurses
        try:
            engine.add_policy(path, source)
            return str(engine.get_ast_as_json())
        finally:
            del engine  # here, on the thread that made it

    return on_deep_stack(parse)


def _parse(path: str, source: str) -> Any:
    """regorus' AST of one module; PolicyLoadError with file and line when it cannot parse,
    and for one nested deeper than its tree can be read (about 300 levels), which would
    otherwise crash the process in the engines that load it (see _deepstack.py)."""
    try:
        ast = _from_json(regorus_ast_json(path, source))
    except RecursionError:
        raise PolicyLoadError(
            path, "expressions nested too deeply to read (about 300 levels at most)", None
        ) from None
    except Exception as exc:  # regorus raises RuntimeError with a rendered, multi-line report
        err = rego_error(exc)
        raise PolicyLoadError(path, err.message, err.line) from None
    return next(m for m in ast if m["source"]["file"] == path)["ast"]


def _names(module: Any) -> frozenset[str]:
    """The names a bare variable of the module may refer to outside it: its rules, its
    imports."""
    names = {_rule_head(rule)[0].split(".")[0] for rule in module["rules"]}
    for imp in module.get("imports", []):
        alias = imp.get("as")
        names.add(str(alias) if alias else (_ref_name(imp["refr"]) or "").rsplit(".", 1)[-1])
    return frozenset(names)


def analyse_module(path: str, source: str) -> RegoModule:
    """Parse a module (PolicyLoadError with file and line on failure) and map its rules."""
    check_parse_cost(path, source)
    written = source
    module = _parse(path, source)
    # `some .. in` into the reference form regorus evaluates as OPA does (_rewrite.py); a
    # statement nested in another's collection takes one more pass.
    for _ in range(_MAX_REWRITE_PASSES):
        rewritten, nested = rewrite_some_in(source, module["rules"])
        if rewritten == source:
            break
        try:
            module, source = _parse(path, rewritten), rewritten
        except PolicyLoadError:
            break  # never a load error of our making: the statement stays as written
        if not nested:
            break
    # Then the terms OPA evaluates before a `not` (`not f(input.x)`: input.x first), bound to
    # fresh variables before it (_rewrite.py); not where `import future.keywords.not` makes
    # `not` a body of its own, which keeps them.
    not_bodies = {_ref_name(i["refr"]) for i in module.get("imports", [])} & _NOT_BODIES
    for _ in range(0 if not_bodies else _MAX_REWRITE_PASSES):
        rewritten, nested = rewrite_negations(source, module["rules"], _names(module))
        if rewritten == source:
            break
        try:
            module, source = _parse(path, rewritten), rewritten
        except PolicyLoadError:
            break  # never a load error of our making
        if not nested:
            break
    # Then `f(x, out)` for the builtins sbomgate provides: `out = f(x)` (_rewrite.py).
    arities = {name: nargs for name, nargs, _ in _EXTENSIONS}
    if any(name in source for name in arities):
        rewritten, _ = rewrite_output_arguments(source, module["rules"], arities)
        if rewritten != source:
            with contextlib.suppress(PolicyLoadError):  # never a load error of our making
                module, source = _parse(path, rewritten), rewritten
    annotations = _metadata_calls(path, source, module)
    if annotations is not None and annotations.calls:
        # Each call becomes its value, here from this module's blocks alone (see RegoEngine).
        source = resolve(annotations, [annotations])
        module = _parse(path, source)
    package = _ref_name(module["package"]["refr"]) or ""
    rules = []
    for rule in module["rules"]:
        name, kind, span = _rule_head(rule)
        rules.append(
            RuleDefinition(
                name=name,
                start=int(span["start"]),
                end=int(span["end"]),
                line=int(span["line"]),
                kind=kind,
            )
        )
    imports = set()
    for imp in module.get("imports", []):
        alias = imp.get("as")
        name = _ref_name(imp["refr"]) or ""
        imports.add(str(alias) if alias else name.rsplit(".", 1)[-1])
    calls = []
    for node in walk(module["rules"]):
        call = node.get("Call")
        if isinstance(call, dict):
            callee = _ref_name(call.get("fcn"))
            if callee:
                calls.append((callee, int(call["span"]["line"])))
        dotted = node.get("RefDot")
        if isinstance(dotted, dict) and _ref_name(node) in FORBIDDEN_BUILTINS:
            # Named without a call (`with f as http.send`): refused like a call.
            calls.append((str(_ref_name(node)), int(dotted["span"]["line"])))
    graph = _rule_graph(module, package)
    return RegoModule(
        path=path,
        source=source,
        written=written,
        package=package,
        rules=tuple(rules),
        imports=frozenset(imports),
        calls=tuple(calls),
        # An import of input (`import input.v0.image as img`) reads its path wherever the
        # alias is used: counted as a read of that path.
        input_reads=frozenset(
            _input_reads([module["rules"], [i["refr"] for i in module.get("imports", [])]])
        ),
        replaces_input=_WITH_INPUT.search(source) is not None,
        data_reads=frozenset(
            _root_reads([module["rules"], [i["refr"] for i in module.get("imports", [])]], "data")
        ),
        match_reads=_match_reads(module, graph),
        constants=_constants(module, graph),
        annotations=annotations,
    )


def _references(
    node: Any,
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]], set[str], set[str]]:
    """In one walk: the static paths under `input` and under `data` that `node` reads (as
    `_root_reads` gives them), every other variable it names, and what it calls."""
    inputs: set[tuple[str, ...]] = set()
    data: set[tuple[str, ...]] = set()
    names: set[str] = set()
    calls: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if len(item) == 1:
            kind, body = next(iter(item.items()))
            if kind in ("RefDot", "RefBrack"):
                path, root, rest = _static_ref(item)
                if root == "input":
                    inputs.add(path)
                elif root == "data":
                    data.add(path)
                elif root is not None:
                    names.add(root)
                stack.extend(rest)
                continue
            if kind == "Var" and isinstance(body, dict) and "value" in body:
                value = str(body["value"])
                {"input": inputs, "data": data}.get(value, set()).add(())
                names.add(value)
                continue
            if kind == "Call" and isinstance(body, dict):
                calls.add(_ref_name(body.get("fcn")) or "")
        stack.extend(item.values())
    return inputs, data, names, calls


def _head_root(rule: Mapping[str, Any]) -> str | None:
    """The variable a rule's head starts with (`a` of `a.b[c] contains d`): what a reference
    to any rule it defines names first."""
    _, body = next(iter(rule.items()))
    refr = body["refr"] if "refr" in body else next(iter(body["head"].values()))["refr"]
    return _static_ref(refr)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstantRule:
    """A complete rule of a module whose value can depend on `data` only (`RegoModule.constants`):
    nothing it or what it refers to in the module reads `input`. Whether it is folded into a
    literal also depends on what else it reads of `data` and what it calls (`fold_constants`)."""

    name: str
    data_reads: frozenset[tuple[str, ...]]
    calls: frozenset[str]


@dataclass(frozen=True, slots=True)
class _RuleGraph:
    """Per rule name (a head's first variable) of a module: the names it refers to, the paths
    under `input` and under other documents of `data` it reads, what it calls, its kinds."""

    refers: dict[str, set[str]]
    inputs: dict[str, set[tuple[str, ...]]]
    data: dict[str, set[tuple[str, ...]]]
    calls: dict[str, set[str]]
    kinds: dict[str, set[str]]

    def closure(self, root: str) -> set[str]:
        seen = {root}
        pending = [root]
        while pending:
            for name in self.refers[pending.pop()] & self.inputs.keys():
                if name not in seen:
                    seen.add(name)
                    pending.append(name)
        return seen


def _rule_graph(module: Any, package: str) -> _RuleGraph | None:
    """The module's `_RuleGraph`; None when which rule a reference names cannot be told (`data`,
    the package or a computed key right under it, an import of the package, a head that starts
    with no variable). Rules are grouped by the variable their head starts with; a bare variable
    of that name counts as a reference to them (a local of the same name only adds to the
    estimate), and so does `data.<package>.<name>`."""
    own = tuple(package.split("."))
    imports = [i["refr"] for i in module.get("imports", [])]
    for path in _root_reads(imports, "data"):
        if path[: len(own)] == own[: len(path)]:
            return None
    graph = _RuleGraph({}, {}, {}, {}, {})
    for rule in module["rules"]:
        name = _head_root(rule)
        if name is None:
            return None
        inputs, data, names, calls = _references(rule)
        graph.inputs.setdefault(name, set()).update(inputs)
        graph.calls.setdefault(name, set()).update(calls)
        graph.kinds.setdefault(name, set()).add(_rule_head(rule)[1])
        others = graph.data.setdefault(name, set())
        for path in data:
            if path[: len(own)] != own[: len(path)]:
                others.add(path)  # another document
            elif len(path) <= len(own):
                return None  # the package (or more) whole, or through a computed key
            else:
                names.add(path[len(own)])
        graph.refers.setdefault(name, set()).update(names)
    return graph


def _match_reads(module: Any, graph: _RuleGraph | None) -> frozenset[tuple[str, ...]] | None:
    """`RegoModule.match_reads`: an over-estimate, never an under-estimate."""
    if graph is None or "match" not in graph.inputs:
        return None
    imports = [i["refr"] for i in module.get("imports", [])]
    reads: set[tuple[str, ...]] = set(_input_reads(imports))  # an alias reads its path anywhere
    for name in graph.closure("match"):
        reads.update(graph.inputs[name])
    return frozenset(reads)


def _constants(module: Any, graph: _RuleGraph | None) -> tuple[ConstantRule, ...]:
    """`RegoModule.constants`: none in a module that imports from `input` (an alias reads it
    where no reference to `input` shows) or that says `with` anywhere (a replaced document
    changes what a rule is worth)."""
    imports = [i["refr"] for i in module.get("imports", [])]
    if graph is None or any(True for _ in _input_reads(imports)):
        return ()
    if any(node.get("with_mods") for node in walk(module["rules"])):
        return ()
    imported = set(_root_reads(imports, "data"))
    found = []
    for name, kinds in graph.kinds.items():
        if not kinds <= {"complete", "default"}:
            continue
        closure = graph.closure(name)
        if any(graph.inputs[n] for n in closure):
            continue
        found.append(
            ConstantRule(
                name=name,
                data_reads=frozenset(imported.union(*(graph.data[n] for n in closure))),
                calls=frozenset().union(*(graph.calls[n] for n in closure)),
            )
        )
    return tuple(found)


def _ground_path(refr: Any) -> tuple[str, ...]:
    """A rule head's reference up to its first computed key (`p[q].r`: `p`)."""
    fields, root, _ = _static_ref(refr)
    return (root, *fields) if root is not None else fields


def _metadata_calls(path: str, source: str, module: Any) -> ModuleAnnotations | None:
    """The module's METADATA blocks and rego.metadata.*() calls, None when it has neither
    (blocks are kept without calls: a package's annotations may serve another module's)."""
    package = tuple((_ref_name(module["package"]["refr"]) or "").split("."))
    calls: list[MetadataCall] = []
    rule_paths: dict[int, tuple[str, ...]] = {}
    statements = [("package", int(module["package"]["span"]["line"]))]
    statements += [("import", int(i["span"]["line"])) for i in module.get("imports", [])]
    for rule in module["rules"]:
        kind, body = next(iter(rule.items()))
        refr = body["refr"] if kind == "Default" else next(iter(body["head"].values()))["refr"]
        line = int(body["span"]["line"])
        rule_path = (*package, *_ground_path(refr))
        rule_paths[line] = rule_path
        statements.append(("rule", line))
        for node in walk(rule):
            call = node.get("Call")
            if isinstance(call, dict) and _ref_name(call.get("fcn")) in METADATA_BUILTINS:
                span = call["span"]
                calls.append(
                    MetadataCall(
                        start=int(span["start"]),
                        end=int(span["end"]),
                        builtin=str(_ref_name(call.get("fcn"))),
                        rule_path=rule_path,
                        rule_line=line,
                    )
                )
    if not calls and "METADATA" not in source:
        return None
    return read_annotations(
        path,
        source,
        package=package,
        package_line=statements[0][1],
        statements=statements,
        rule_paths=rule_paths,
        calls=calls,
    )


def check_compiles(module: RegoModule) -> None:
    """PolicyLoadError (with the line) for a module regorus parses but cannot compile, as OPA
    refuses it: an unsafe variable (`msg := sprintf("%s", [nmae])`). regorus compiles only when
    first asked anything, and then fails every evaluation; the definition alone would have been
    undefined, a deny rule that never matches."""
    engine = new_engine()
    engine.add_policy(module.path, module.source)
    try:
        engine.eval_query("true")  # compiles every module
    except Exception as exc:
        err = rego_error(exc)
        raise PolicyLoadError(module.path, err.message, err.line) from None


def check_calls(modules: Sequence[RegoModule], *, extra: Sequence[Extension] = ()) -> None:
    """Refuse, at load time, calls the engine cannot or must not make; `extra`: the
    extensions the engine will be given besides sbomgate's own (see new_engine)."""
    # A function may have only a `default` definition (`default f(_) := 1`); a call of a
    # default that is not a function fails when evaluated (an error, so a denial).
    defined = {r.name for m in modules for r in m.rules if r.is_function or r.is_default}
    defined |= {f"data.{m.package}.{r.name}" for m in modules for r in m.rules if r.is_function}
    available = regorus_builtins() | {path for path, _, _ in (*_EXTENSIONS, *extra)}
    for module in modules:
        for name, line in module.calls:
            if name in FORBIDDEN_BUILTINS:
                raise PolicyLoadError(module.path, FORBIDDEN_BUILTINS[name], line)
            if name in defined or name.startswith("data.") or name.split(".")[0] in module.imports:
                continue
            if name in DEPRECATED_BUILTINS:
                raise PolicyLoadError(
                    module.path,
                    f"{name} is a deprecated builtin that OPA 1.x no longer has: use "
                    f"{DEPRECATED_BUILTINS[name]} instead",
                    line,
                )
            if name in UNSUPPORTED_OPA_BUILTINS:
                raise PolicyLoadError(
                    module.path,
                    f"builtin {name} is not supported by sbomgate's Rego engine (regorus)",
                    line,
                )
            if name not in available:
                raise PolicyLoadError(module.path, f"unknown function {name}", line)


# --------------------------------------------------------------------------- evaluation


def rego_literal(value: Any) -> str:
    """A Rego term for a JSON-ish Python value (sets become Rego sets)."""
    if isinstance(value, set | frozenset):
        if not value:
            return "set()"
        return "{" + ", ".join(rego_literal(v) for v in sorted(value, key=repr)) + "}"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _with_every_annotation(modules: Sequence[RegoModule]) -> tuple[RegoModule, ...]:
    """The modules, each rego.metadata.*() call given its value from the blocks of all of them
    (a package's annotations may sit in another module of the package)."""
    every = [m.annotations for m in modules if m.annotations is not None]
    if len(every) < 2 or not any(a.calls for a in every):
        return tuple(modules)
    return tuple(
        dataclasses.replace(m, source=resolve(m.annotations, every))
        if m.annotations is not None and m.annotations.calls
        else m
        for m in modules
    )


class RegoEngine:
    """One module set (a policy and its helpers) on one thread, in OPA's default mode."""

    def __init__(
        self,
        modules: Sequence[RegoModule],
        data: Mapping[str, Any],
        *,
        extra: Sequence[Extension] = (),
    ) -> None:
        self._thread = threading.get_ident()
        self._modules = _with_every_annotation(modules)
        self._data = data
        self._extra = tuple(extra)
        self._input: str | None = None
        self._engine = self._build()

    def _build(self) -> Any:
        engine = new_engine(self._extra)
        for module in self._modules:
            engine.add_policy(module.path, module.source)
        if self._data:
            engine.add_data(dict(self._data))
        return engine

    def set_input_json(self, document: str) -> None:
        """Set `input` for the next evaluations (on the engine's own thread only)."""
        if threading.get_ident() != self._thread:
            # regorus would panic (a BaseException) on a foreign thread; say so plainly instead.
            raise RuntimeError("a RegoEngine is bound to the thread that created it")
        self._engine.set_input_json(document)
        self._input = document

    def eval_rule(self, path: str, *, undefined: Any = None) -> Any:
        """The rule's value, `undefined` when it has none (by default None, as for `null`: no
        verdict tells the two apart, and telling them costs a second evaluation of a rule
        whose value reads None); a RegoError when evaluation fails."""
        try:
            return _rule_value(self._engine, path, undefined)
        except Exception as exc:
            # Never bound to a name here: this frame (which holds the engine) would then hold
            # the error holding the frame, a cycle that the collector breaks later, maybe on
            # another thread, where regorus engines must not be dropped (PyO3 "unsendable").
            raise rego_error(exc) from None
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise  # KeyboardInterrupt, SystemExit
            panic = str(exc).strip() or "no message"
        # A bug of regorus' own (it panicked): this evaluation failed, as any error fails it,
        # never the process; the engine, maybe left half-way, is replaced.
        self._engine = self._build()
        if self._input is not None:
            self._engine.set_input_json(self._input)
        raise RegoError(f"the Rego engine failed (regorus panicked: {panic})", file=None, line=None)


def _rule_value(engine: Any, path: str, undefined: Any = None) -> Any:
    """regorus' `eval_rule`; a value Python cannot hold as the binding builds it (a set of
    objects or arrays: unhashable, a TypeError) is read from its JSON instead, sets as lists
    (before, that TypeError was taken for an undefined rule: the values were lost). A rule
    whose definitions all have ref heads (`p["x"] := 1`) is no "rule path" to `eval_rule`:
    it is asked as a query."""
    try:
        value = engine.eval_rule(path)
        if value is None and undefined is not None and engine.eval_rule_as_json(path) != "null":
            return undefined  # the binding's None is both undefined and null; its JSON is not
        return value
    except TypeError:
        return _from_json(engine.eval_rule_as_json(path))
    except RuntimeError as exc:
        if "not a valid rule path" not in str(exc):
            raise
    try:
        rows = engine.eval_query(path).get("result", [])
    except TypeError:  # as above
        rows = _from_json(engine.eval_query_as_json(path)).get("result", [])
    return rows[0]["expressions"][0]["value"] if rows else undefined
