"""Load-time rewrites that make regorus evaluate a module as OPA does, expression by expression.

Both write only on the statement's own line, so every error's line stays the user's.

`some v in X` (and `some k, v in X`): OPA compiles it into a reference, `v = X[_]`
(`v = X[k]`), so a collection that is not one (`null`, a string, a number: `osv: null` in a
facts record) makes the expression undefined. regorus raises an error instead, which fails the
whole rule (a helper used under `every` or `not` then answers what OPA's does not), also in the
patched binding, whose non-strict mode covers builtins only. regorus evaluates the reference
form as OPA does (measured: null, strings and numbers give undefined, arrays, sets and objects
the same bindings), so the statement is rewritten into that form before regorus sees it:

    some v in X        ->  v := X[_]
    some k, v in X     ->  v := X[__sbomgate_in_k0]; k := __sbomgate_in_k0
    some "a", v in X   ->  v := X["a"]
    some [a, _] in X   ->  [a, _] := X[_]

`:=` declares as `some` does; `some v; v = X[_]` would be closer to OPA's own form, but regorus
fails a `some` declaration that follows an iteration in the same body (measured: "duplicated
definition of local variable" on the loop's second pass). When X reads a variable the
statement declares (`some x in x.items`: X reads the outer `x`), or is an infix expression, X
is bound first to a fresh variable: `__sbomgate_in_0 := X; x := __sbomgate_in_0[_]`. A
brace-less body (`r contains v if some v in X`) gains braces. The rewrite only replaces text on
the statement's own line, so every error's line stays the user's. A statement whose spans cannot
be trusted (regorus' span of a string stops before its closing quote; a `with` modifier), and
patterns with constants in them, are left as they were (regorus then fails the rule on what is
not a collection: the policy errs, and the verdict denies).

`not f(x)`: OPA's compiler evaluates a negated call's arguments before the `not`: the calls
nested in them (`not count(input.osv) > 0`: `count(input.osv)` first) and, unless the
expression is `==` or `=` (unification), its references (`not startswith(input.name, "x")`:
`input.name` first). One of them undefined (a missing field, a builtin's error) then fails the
body, where regorus, evaluating all of it under the `not`, made the `not` succeed: a helper
or exemption that matched where OPA's does not. Those terms are bound to fresh variables before
the `not`, on its line:

    not count(input.osv) > 0  ->  __sbomgate_not_0 := count(input.osv); not __sbomgate_not_0 > 0
    not startswith(input.n, "x")
                              ->  __sbomgate_not_0 := input.n; not startswith(__sbomgate_not_0, "x")

A bare name counts as a reference when it names a rule or an import (`not x in allowed`).
`import future.keywords.not` gives `not` a body of its own, which keeps its terms: modules with
it are left alone. So are statements with `with`, and terms whose spans cannot be trusted.

`f(x, out)`: OPA lets a call give its value as one more argument. regorus schedules that form
for its own builtins only, so a call of one sbomgate provides (an extension: graphql.*,
crypto.x509.*, regex.globs_match, strings.render_template) is written `out = f(x)`, which is
what OPA makes of it (a comparison when `out` is already bound).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from sbomgate.policy._ast import ref_name, walk

FRESH_PREFIX = "__sbomgate_in_"
# Term kinds that can be followed by `[...]` in Rego; anything else (an infix expression such as
# `a | b`, whose span leaves out its parentheses) goes through a fresh variable.
_INDEXABLE = frozenset(
    {"Var", "RefDot", "RefBrack", "Call", "Array", "Set", "Object", "ArrayCompr", "SetCompr",
     "ObjectCompr"}
)  # fmt: skip
_AFTER_COLLECTION = frozenset(b";\n\r}]|#")
_SCALARS = frozenset({"String", "RawString", "Number", "Bool", "Null"})


def _kind(node: Any) -> tuple[str, Any]:
    kind, body = next(iter(node.items()))
    return str(kind), body


def _vars(node: Any) -> list[str]:
    """The variables in a term (`_` excepted), in source order."""
    found: list[tuple[int, str]] = []
    for item in walk(node):
        var = item.get("Var")
        if isinstance(var, dict) and var.get("value") != "_":
            found.append((int(var["span"]["start"]), str(var["value"])))
    return list(dict.fromkeys(name for _, name in sorted(found)))


def _next_token(raw: bytes, at: int) -> bytes:
    """The two bytes after the blanks at `at` (without copying the rest of the source: this
    runs once per statement, and a policy may hold 50,000 of them)."""
    while raw[at : at + 1] in (b" ", b"\t"):
        at += 1
    return raw[at : at + 2]


def _after_if(raw: bytes, at: int) -> bool:
    """Whether the keyword `if` (not `diff`, not `x.if`) ends just before `at`, blanks aside."""
    while at > 0 and raw[at - 1 : at] in (b" ", b"\t", b"\r", b"\n"):
        at -= 1
    before = raw[at - 3 : at - 2] if at >= 3 else b""
    return raw[at - 2 : at] == b"if" and not (before.isalnum() or before in (b"_", b"."))


def _assignable(node: Any) -> bool:
    """A pattern `:=` can take: a variable, or arrays and objects (with scalar keys) of them."""
    kind, body = _kind(node)
    if kind == "Var":
        return True
    if kind == "Array":
        return all(_assignable(item) for item in body["items"])
    if kind == "Object":
        return all(_kind(k)[0] in _SCALARS and _assignable(v) for _, k, v in body["fields"])
    return False


def _scalar(node: Any) -> bool:
    return _kind(node)[0] in _SCALARS


def _text(raw: bytes, node: Any, follows: bytes) -> str | None:
    """The source of a `some` pattern, or None when its span cannot be trusted: a string is
    rendered from its value (its span leaves out the quotes), anything else must be followed by
    `follows` (`,` after a key, `in` after a value)."""
    kind, body = _kind(node)
    if kind in ("String", "RawString"):
        return orjson.dumps(body["value"]).decode()
    span = body["span"]
    if not _next_token(raw, int(span["end"])).startswith(follows):
        return None
    return raw[int(span["start"]) : int(span["end"])].decode()


def _some_in_edit(raw: bytes, stmt: dict[str, Any], fresh: int) -> tuple[int, int, str] | None:
    """(start, end, replacement) for one `some .. in` statement, or None to leave it."""
    some_in = stmt["literal"]["SomeIn"]
    key, value, collection = some_in.get("key"), some_in["value"], some_in["collection"]
    coll_kind, coll_body = _kind(collection)
    start, end = int(stmt["span"]["start"]), int(stmt["span"]["end"])
    if int(coll_body["span"]["end"]) != end:
        return None
    after = _next_token(raw, end)[:1]
    if after and after[0] not in _AFTER_COLLECTION:  # the span stopped short (a string's quote)
        return None
    key_ok = key is None or _scalar(key) or _assignable(key)
    if not key_ok or not _assignable(value) or not _vars(value):
        return None  # `some 1 in X`, `some [1, a] in X`, `some _ in X`: rare, left as they are
    value_text = _text(raw, value, b"in")
    key_text = _text(raw, key, b",") if key else None
    if value_text is None or (key and key_text is None):
        return None
    coll_text = raw[int(coll_body["span"]["start"]) : end].decode()
    parts = []
    declared = _vars([key, value])
    if coll_kind not in _INDEXABLE or set(declared) & set(_vars(collection)):
        temp = f"{FRESH_PREFIX}{fresh}"
        parts.append(f"{temp} := {coll_text}")
        coll_text = temp
    if key is None or (not _vars(key) and not _scalar(key)):  # no key, or `_`
        parts.append(f"{value_text} := {coll_text}[_]")
    elif _scalar(key):
        parts.append(f"{value_text} := {coll_text}[{key_text}]")
    else:
        # The key is a fresh variable the reference binds, then assigned: a declaration
        # (`some k; ...`) after an iteration fails in regorus ("duplicated definition").
        index = f"{FRESH_PREFIX}k{fresh}"
        parts.append(f"{value_text} := {coll_text}[{index}]")
        parts.append(f"{key_text} := {index}")
    return start, end, "; ".join(parts)


def _splice(source: str, raw: bytes, edits: list[tuple[int, int, str]]) -> tuple[str, bool]:
    """`source` with the outermost edits made, and whether edits nested in them were left."""
    # Only statements outside every other's span: in start order, one that starts before the
    # end of the last kept lies inside it (spans nest or are apart). Linear after the sort: a
    # policy of 50,000 statements (the 1 MiB limit) is anyone's to send to /validate-policy.
    outermost: list[tuple[int, int, str]] = []
    for edit in sorted(edits, key=lambda e: (e[0], -e[1])):
        if not outermost or edit[0] >= outermost[-1][1]:
            outermost.append(edit)
    if not outermost:
        return source, False
    pieces, at = [], 0  # joined once: splicing each edit in would copy the source per edit
    for start, end, text in outermost:
        pieces += [raw[at:start], text.encode()]
        at = end
    pieces.append(raw[at:])
    return b"".join(pieces).decode(), len(outermost) < len(edits)


def _rewrite_statements(
    source: str,
    rules: Any,
    literal: str,
    prefix: str,
    edit: Callable[[bytes, dict[str, Any], int], tuple[int, int, str] | None],
) -> tuple[str, bool]:
    """`source` with each outermost statement whose literal is `literal` replaced as `edit`
    says (given the source's bytes, the statement and the first free number for fresh names
    made of `prefix`), and whether statements nested in an edited one were left for another
    pass. A statement with a `with` modifier is left as it is; a replacement that was a rule's
    one-statement body (`r if some v in X`) gains braces."""
    raw = source.encode()
    edits: list[tuple[int, int, str]] = []
    taken = [int(n) for n in re.findall(re.escape(prefix) + r"(\d+)", source)]
    fresh = max(taken, default=-1) + 1  # never reuse a name the source holds
    for node in walk(rules):
        if not isinstance(node.get("stmts"), list) or "span" not in node:
            continue
        for stmt in node["stmts"]:
            if literal not in stmt.get("literal", {}) or set(stmt) != {"span", "literal", "sidx"}:
                continue
            found = edit(raw, stmt, fresh)
            if found is None:
                continue
            start, end, text = found
            fresh += text.count(" := ")
            query_start = int(node["span"]["start"])
            if query_start == start and _after_if(raw, query_start):
                text = "{ " + text + " }"
            edits.append((start, end, text))
    return _splice(source, raw, edits)


def rewrite_some_in(source: str, rules: Any) -> tuple[str, bool]:
    """`source` with its outermost `some .. in` statements in reference form (module doc), the
    same string when there is none it can rewrite; and whether statements nested in another's
    collection were left for another pass, on the rewritten source's AST."""
    return _rewrite_statements(source, rules, "SomeIn", FRESH_PREFIX, _some_in_edit)


# --------------------------------------------------------------------------- not f(x)

NOT_PREFIX = "__sbomgate_not_"
# Comparisons and membership are calls in OPA (`gt`, `internal.member_2`); `==` and `=` are
# unification, whose references OPA leaves in place.
_UNIFICATIONS = frozenset({"Eq"})
# Whatever may follow a term that stands as an argument: its span is then trusted to be whole.
_AFTER_ARGUMENT = frozenset(b",)]}:;\n\r\t =!<>|&+-*/%#")


def _hoisted(node: Any, *, refs: bool, names: frozenset[str]) -> list[Any]:
    """The terms of a negated expression's argument that OPA evaluates before the `not`: every
    call (an operator is one), and with `refs`, every reference (a rule, `input`, `data` or a
    path), looking inside array, set and object literals."""
    if not isinstance(node, dict) or len(node) != 1:
        return []
    kind, body = _kind(node)
    if kind in ("Call", "ArithExpr", "BinExpr", "BoolExpr"):
        return [node]
    if kind in ("RefDot", "RefBrack"):
        return [node] if refs else []
    if kind == "Var":
        return [node] if refs and body["value"] in names else []
    if kind in ("Array", "Set"):
        return [t for item in body["items"] for t in _hoisted(item, refs=refs, names=names)]
    if kind == "Object":
        return [
            t for _, k, v in body["fields"] for t in [
                *_hoisted(k, refs=refs, names=names), *_hoisted(v, refs=refs, names=names)
            ]
        ]  # fmt: skip
    return []


def _operands(expr: Any) -> tuple[list[Any], bool] | None:
    """The arguments of a negated expression, and whether OPA evaluates their references
    before the `not` (a call's, not unification's); None for what OPA keeps whole (a
    reference, a literal)."""
    kind, body = _kind(expr)
    if kind == "Call":
        return list(body["params"]), True
    if kind == "BoolExpr":
        return [body["lhs"], body["rhs"]], body["op"] not in _UNIFICATIONS
    if kind == "AssignExpr" and body.get("op") == "Eq":
        return [body["lhs"], body["rhs"]], False
    if kind == "Membership":
        return [t for t in (body.get("key"), body["value"], body["collection"]) if t], True
    return None


def _not_edit(
    raw: bytes, stmt: dict[str, Any], fresh: int, names: frozenset[str]
) -> tuple[int, int, str] | None:
    """(start, end, replacement) for one `not` statement, or None to leave it."""
    expr = stmt["literal"]["NotExpr"]["expr"]
    found = _operands(expr)
    if found is None:
        return None
    operands, refs = found
    terms = [t for operand in operands for t in _hoisted(operand, refs=refs, names=names)]
    if not terms:
        return None
    start, end = int(stmt["span"]["start"]), int(stmt["span"]["end"])
    spans = sorted(
        (int(_kind(t)[1]["span"]["start"]), int(_kind(t)[1]["span"]["end"])) for t in terms
    )
    parts, pieces, at = [], [], start
    for index, (t_start, t_end) in enumerate(spans):
        after = raw[t_end : t_end + 1]
        if t_start < at or (after and after[0] not in _AFTER_ARGUMENT):
            return None  # overlapping, or a span that stopped short (a string's quote)
        name = f"{NOT_PREFIX}{fresh + index}"
        parts.append(f"{name} := {raw[t_start:t_end].decode()}")
        pieces += [raw[at:t_start].decode(), name]
        at = t_end
    pieces.append(raw[at:end].decode())
    return start, end, "; ".join([*parts, "".join(pieces)])


def rewrite_negations(source: str, rules: Any, names: frozenset[str]) -> tuple[str, bool]:
    """`source` with the terms OPA evaluates before a `not` bound first (section doc; `names`:
    the module's rules and imports, which a bare name may refer to); and whether statements
    nested in another's were left for another pass."""
    known = names | {"input", "data"}
    return _rewrite_statements(
        source,
        rules,
        "NotExpr",
        NOT_PREFIX,
        lambda raw, stmt, fresh: _not_edit(raw, stmt, fresh, known),
    )


# --------------------------------------------------------------------------- f(x, out)

_OUTPUT_PREFIX = "__sbomgate_out_"  # never made: the driver wants a prefix for fresh names


def _output_edit(
    raw: bytes, stmt: dict[str, Any], arities: dict[str, int]
) -> tuple[int, int, str] | None:
    """(start, end, replacement) for a call of one of `arities`' builtins given its output as
    one more argument (`f(x, out)`), or None to leave it."""
    kind, call = _kind(stmt["literal"]["Expr"]["expr"])
    if kind != "Call":
        return None
    name = ref_name(call["fcn"])
    params = call["params"]
    if name not in arities or len(params) != arities[name] + 1 or len(params) < 2:
        return None
    out = _text(raw, params[-1], b")")
    if out is None:
        return None
    start, end = int(call["span"]["start"]), int(call["span"]["end"])
    last_start = int(_kind(params[-1])[1]["span"]["start"])
    if _kind(params[-1])[0] in ("String", "RawString"):
        last_start -= 1  # its span leaves out the opening quote
    head = raw[start:last_start].decode().rstrip()
    if not head.endswith(","):
        return None
    return start, end, f"{out} = {head[:-1].rstrip()})"


def rewrite_output_arguments(source: str, rules: Any, arities: dict[str, int]) -> tuple[str, bool]:
    """`source` with each call of a builtin sbomgate provides itself (`arities`: name and
    number of arguments) that passes its output as one more argument, `f(x, out)`, written as
    `out = f(x)`, as OPA reads it: regorus schedules the output form only for its own builtins.
    And whether statements nested in an edited one were left for another pass."""
    return _rewrite_statements(
        source,
        rules,
        "Expr",
        _OUTPUT_PREFIX,
        lambda raw, stmt, _fresh: _output_edit(raw, stmt, arities),
    )
