"""`rego.parse_module`: a module's AST as OPA's JSON, built from regorus' own parse.

OPA answers `rego.parse_module(filename, text)` with its parser's `ast.Module` encoded as JSON
(no locations but the comments'). regorus parses the same language into a different tree;
its binding gives that tree as JSON (`Engine.get_ast_as_json`, spans as byte offsets into the
text). This module turns that tree into OPA's: the calls OPA's parser makes of operators
(`x := 1` is `assign(x, 1)`, `a + b` is `plus(a, b)`, `x in s` is `internal.member_2(x, s)`),
rule heads as OPA's parser completes them (a name only where OPA sets one, a generated `true`
value, `p[x]` read as a single-value or a multi-value rule by whether `if` follows), the
generated `true` body of a rule without one, wildcards numbered `$0`, `$1`, ... in the order
OPA's parser meets them, sets and objects in OPA's order, template strings, OPA's
experimental `and`, `or` and `not { ... }` (from regorus' rewrite of them), and the comments
(their text as base64, as Go encodes bytes; OPA's builtin gives no METADATA annotations). What
regorus refuses to parse is an error here, and the builtin's call undefined, as OPA's is for
text its parser refuses.

tests/integration/policy/test_parse_module_against_opa.py compares the result with OPA's for
every module of OPA's conformance cases and sbomgate's own policies.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
from typing import Any

from sbomgate.errors import SbomgateError
from sbomgate.policy._ast import ref_name, walk

Term = dict[str, Any]
Node = dict[str, Any]

_COMPARISONS = {"Lt": "lt", "Le": "lte", "Eq": "equal", "Ge": "gte", "Gt": "gt", "Ne": "neq"}
_ARITHMETIC = {"Add": "plus", "Sub": "minus", "Mul": "mul", "Div": "div", "Mod": "rem"}
_LOGICAL = {"Union": "or", "Intersection": "and"}
_ASSIGNMENTS = {"Eq": "eq", "ColEq": "assign"}
_ROOTS = frozenset({"data", "input"})
# Imports that make `not x` a `not` term in OPA's AST; the last two turn on `and` and `or` too.
_NOT_KEYWORD_IMPORTS = frozenset({"future.keywords", "future.keywords.not", "rego.v2"})
_ALL_LOGIC = frozenset({"future.keywords", "rego.v2"})
# regorus reads OPA's `and`, `or` and `not { ... }` by rewriting each into comprehensions
# (`[1 | q] != []`), which `_Converter.logic` turns back into OPA's terms at the statement
# level, the only place OPA allows them. One met anywhere else is refused, never guessed.
_LOGIC_KEYWORDS_REFUSED = (
    "rego.parse_module: an `and`, `or` or `not { ... }` where OPA's parser has none"
)


MAX_NESTING = 200
_OPENING = frozenset(b"([{")
_CLOSING = frozenset(b")]}")


class ParseModuleError(SbomgateError, ValueError):
    """The text is not a module OPA's parser would read (the builtin's call is undefined)."""


def _var(name: str) -> Term:
    return {"type": "var", "value": name}


def _string(text: str) -> Term:
    return {"type": "string", "value": text}


def _operator(*path: str) -> Term:
    return {"type": "ref", "value": [_var(path[0]), *(_string(p) for p in path[1:])]}


def _true() -> Term:
    return {"type": "boolean", "value": True}


def _generated_true_body() -> list[Node]:
    return [{"generated": True, "index": 0, "terms": _true()}]


def _number(text: str) -> Any:
    """A number literal's value. OPA writes the literal's text into the AST's JSON, so one
    that is not a JSON number (`.5`, `1.`) fails its encoding, and the call with it."""
    try:
        return json.loads(text)
    except ValueError:
        raise ParseModuleError(
            f"rego.parse_module: the number {text} is not one JSON can hold, as OPA writes it"
        ) from None


def _ground(term: Term) -> bool:
    """Whether a term holds no variable (OPA's IsGround)."""
    if term["type"] == "var":
        return False
    value = term.get("value")
    if isinstance(value, list):
        return all(
            _ground(t) for item in value for t in (item if isinstance(item, list) else [item])
        )
    if isinstance(value, dict):
        return all(_ground(t) for t in value.values() if isinstance(t, dict) and "type" in t)
    return True


_SCALARS = frozenset({"String", "RawString", "Number", "Bool", "Null"})
_TEMPLATE_ARG = "__template_arg"


def _joined_strings(parts: list[Any]) -> list[Any]:
    """Adjacent texts of a template string as one, as OPA's parser reads them (regorus ends
    a text at each escaped brace)."""
    out: list[Any] = []
    for part in parts:
        if out and part.get("_text") and out[-1].get("_text"):
            out[-1] = {**out[-1], "value": out[-1]["value"] + part["value"]}
        else:
            out.append(part)
    return [{k: v for k, v in part.items() if k != "_text"} for part in out]


def _restore_template_args(head: Node, bodies: list[Node]) -> None:
    """A function's template-string arguments where OPA keeps them, in its head: regorus
    moves each into the body as `__template_argN == $"..."`."""
    # The names regorus gave the arguments: a statement of the user's is never taken.
    names = {
        str(node["Var"]["value"])
        for node in walk(head.get("args") or [])
        if node.keys() == {"Var"} and str(node["Var"].get("value")).startswith(_TEMPLATE_ARG)
    }
    templates: dict[str, Node] = {}
    for rule_body in bodies if names else []:
        kept = []
        for stmt in rule_body["query"]["stmts"]:
            kind, literal = _kind(stmt["literal"])
            expr_kind, expr = _kind(literal["expr"]) if kind == "Expr" else ("", {})
            is_eq = expr_kind == "BoolExpr" and expr["op"] == "Eq"
            lhs_kind, lhs = _kind(expr["lhs"]) if is_eq else ("", {})
            rhs_kind, rhs = _kind(expr["rhs"]) if is_eq else ("", {})
            name = lhs.get("value")
            template = rhs_kind == "Call" and _is_template(rhs)
            if lhs_kind == "Var" and name in names and template and not stmt.get("with_mods"):
                templates.setdefault(str(name), expr["rhs"])
                continue
            kept.append(stmt)
        rule_body["query"]["stmts"] = kept
    if templates:
        head["args"] = [_replaced_vars(arg, templates) for arg in head.get("args") or []]


def _replaced_vars(node: Any, values: dict[str, Node]) -> Any:
    """A regorus tree with each variable named in `values` replaced by its node."""
    if isinstance(node, list):
        return [_replaced_vars(n, values) for n in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "Var" in node and node["Var"].get("value") in values:
        return values[node["Var"]["value"]]
    return {k: _replaced_vars(v, values) for k, v in node.items()}


def _is_logic_rewrite(compr: Node) -> bool:
    """Whether an array comprehension is regorus' rewrite of `and`, `or` or `not { ... }`:
    `[1 | q]` whose `1` was not written (its span is the whole operand's)."""
    kind, term = _kind(compr["term"])
    return kind == "Number" and term["span"] == compr["span"]


def _with_group(node: Node) -> Node | None:
    """The one statement of regorus' rewrite of a parenthesised group with `with` modifiers,
    `(a or b with input as x)` (`[1 | stmt] != []`), None for any other expression."""
    kind, expr = _kind(node)
    if kind != "BoolExpr" or expr["op"] != "Ne":
        return None
    lhs_kind, lhs = _kind(expr["lhs"])
    if lhs_kind != "ArrayCompr" or not _is_logic_rewrite(lhs):
        return None
    stmts = lhs["query"]["stmts"]
    return stmts[0] if len(stmts) == 1 and stmts[0].get("with_mods") else None


def _is_logic_item(node: Node) -> bool:
    kind, compr = _kind(node)
    return kind == "ArrayCompr" and _is_logic_rewrite(compr)


# What may stand between two operands of an `and`: the keyword, and around it space, comments
# and the brackets of grouped or written-out operands.
_AND_GAP = re.compile(r"(?:[\s(){}]|#[^\n]*)*\band\b(?:[\s(){}]|#[^\n]*)*")


def _is_template(call: Node) -> bool:
    """Whether a regorus call is its rewrite of a template string."""
    kind, fcn = _kind(call["fcn"])
    return (
        kind == "RefDot"
        and fcn["field"][1] == "template_string"
        and _kind(fcn["refr"])[1].get("value") == "internal"
    )


_ORDER = {
    "null": 0, "boolean": 1, "number": 2, "string": 3, "templatestring": 4, "var": 5, "ref": 6,
    "array": 7, "object": 8, "set": 9, "arraycomprehension": 10, "objectcomprehension": 11,
    "setcomprehension": 12, "call": 13,
}  # fmt: skip


def _compare(a: Any, b: Any) -> int:
    """OPA's order of AST terms (ast.Compare): by kind, then by value."""
    ka, kb = _ORDER.get(a["type"], 100), _ORDER.get(b["type"], 100)
    if ka != kb:
        return -1 if ka < kb else 1
    x, y = a.get("value"), b.get("value")
    match a["type"]:
        case "null":
            return 0
        case "string" | "var":
            x, y = x.encode(), y.encode()
        case "ref" | "array" | "call" | "set":
            return _compare_lists(x, y)
        case "object":
            return _compare_pairs(x, y)
        case "boolean" | "number":
            pass
        case _:
            x, y = json.dumps(x, sort_keys=True), json.dumps(y, sort_keys=True)
    return int((x > y) - (x < y))


def _compare_lists(x: list[Term], y: list[Term]) -> int:
    for a, b in zip(x, y, strict=False):
        if c := _compare(a, b):
            return c
    return (len(x) > len(y)) - (len(x) < len(y))


def _compare_pairs(x: list[list[Term]], y: list[list[Term]]) -> int:
    for (ka, va), (kb, vb) in zip(x, y, strict=False):
        if c := _compare(ka, kb) or _compare(va, vb):
            return c
    return (len(x) > len(y)) - (len(x) < len(y))


def _set_elements(terms: Any) -> list[Term]:
    """A set literal's elements as OPA holds them: sorted, each once."""
    out: list[Term] = []
    for term in sorted(terms, key=functools.cmp_to_key(_compare)):
        if not out or _compare(out[-1], term):
            out.append(term)
    return out


def _object_entries(fields: list[tuple[Term, Term]]) -> list[list[Term]]:
    """An object literal's entries as OPA holds them: sorted by key."""

    def by_key(a: tuple[Term, Term], b: tuple[Term, Term]) -> int:
        return _compare(a[0], b[0])

    return [[k, v] for k, v in sorted(fields, key=functools.cmp_to_key(by_key))]


def _kind(node: Node) -> tuple[str, Node]:
    [(kind, body)] = node.items()
    return kind, body


class _Converter:
    """One module's regorus tree to OPA's, wildcards numbered as OPA's parser numbers them."""

    def __init__(self, text: bytes, *, not_bodies: bool = False) -> None:
        self.text = text
        self.wildcards = 0
        # With OPA's `not` keyword imported, `not x` is a `not` term holding a body of `x`.
        self.not_bodies = not_bodies

    def span_text(self, span: Node) -> str:
        return self.text[span["start"] : span["end"]].decode()

    def wildcard(self) -> Term:
        name = f"${self.wildcards}"
        self.wildcards += 1
        return _var(name)

    # ------------------------------------------------------------------ terms

    def var(self, name: str) -> Term:
        return self.wildcard() if name == "_" else _var(name)

    def term(self, node: Node) -> Term:
        kind, body = _kind(node)
        match kind:
            case "String" | "RawString":
                return _string(body["value"])
            case "Number":
                return {"type": "number", "value": _number(self.span_text(body["span"]))}
            case "Bool":
                return {"type": "boolean", "value": body["value"]}
            case "Null":
                return {"type": "null", "value": {}}
            case "Var":
                name = body["value"]
                if name in _ROOTS:
                    return {"type": "ref", "value": [_var(name)]}
                return self.var(name)
            case "Array":
                return {"type": "array", "value": [self.term(i) for i in body["items"]]}
            case "Set":
                return {"type": "set", "value": _set_elements(self.term(i) for i in body["items"])}
            case "Object":
                fields = [(self.term(k), self.term(v)) for _, k, v in body["fields"]]
                return {"type": "object", "value": _object_entries(fields)}
            case "ArrayCompr" if _is_logic_rewrite(body):
                raise ParseModuleError(_LOGIC_KEYWORDS_REFUSED)  # none where OPA has a term
            case "ArrayCompr" | "SetCompr":
                kind_name = "arraycomprehension" if kind == "ArrayCompr" else "setcomprehension"
                term = self.term(body["term"])
                return {
                    "type": kind_name,
                    "value": {"term": term, "body": self.query(body["query"])},
                }
            case "ObjectCompr":
                key, value = self.term(body["key"]), self.term(body["value"])
                query = self.query(body["query"])
                return {
                    "type": "objectcomprehension",
                    "value": {"key": key, "value": value, "body": query},
                }
            case "RefDot" | "RefBrack":
                return {"type": "ref", "value": self.ref(node)}
            case "Call" if _is_template(body):
                return self.template(body)
            case "UnaryExpr":
                negative = self.negative(body)
                if negative is not None:
                    return negative
                return {"type": "call", "value": [_operator("minus"), *self.unary(body)]}
        return {"type": "call", "value": self.call(kind, body)}

    def template(self, body: Node) -> Term:
        """A template string, from regorus' rewrite of it (`internal.template_string` of an
        array of its texts and of `{v | v := expression}` for each expression)."""
        [items] = body["params"]
        parts: list[Any] = []
        for item in _kind(items)[1]["items"]:
            kind, part = _kind(item)
            if kind != "SetCompr":
                text = self.term(item)
                parts.append({**text, "_text": True})
                continue
            # `{e | true}`, or `{v | v := e with ...}` for an expression with modifiers
            [stmt] = part["query"]["stmts"]
            kind, expression = _kind(_kind(stmt["literal"])[1]["expr"])
            inner = expression["rhs"] if kind == "AssignExpr" else part["term"]
            literal = {"literal": {"Expr": {"expr": inner}}, "with_mods": stmt.get("with_mods")}
            if _kind(inner)[0] in _SCALARS and not stmt.get("with_mods"):
                parts.append(self.term(inner))  # OPA holds a constant as the term itself
            else:
                parts.append(self.statement(literal, 0))
        parts = _joined_strings(parts)
        multi_line = self.span_text(body["span"]).startswith("$`")
        value = {"multi_line": multi_line, "parts": parts or None}  # Go's nil slice: null
        return {"type": "templatestring", "value": value}

    def unary(self, body: Node) -> list[Term]:
        return [{"type": "number", "value": 0}, self.term(body["expr"])]

    def negative(self, body: Node) -> Term | None:
        """`-1` (or `- 1`): OPA's parser reads a negative number, not a call of minus."""
        kind, operand = _kind(body["expr"])
        if kind != "Number":
            return None
        return {"type": "number", "value": _number("-" + self.span_text(operand["span"]))}

    def ref(self, node: Node) -> list[Term]:
        kind, body = _kind(node)
        if kind == "RefDot":
            return [*self.ref(body["refr"]), _string(body["field"][1])]
        if kind == "RefBrack":
            return [*self.ref(body["refr"]), self.term(body["index"])]
        if kind == "Var":
            return [self.var(body["value"])]
        return [self.term(node)]

    def call(self, kind: str, body: Node) -> list[Term]:
        """A call's terms: the operator as a ref, then the operands."""
        match kind:
            case "Call":
                operator = {"type": "ref", "value": self.ref(body["fcn"])}
                return [operator, *(self.term(p) for p in body["params"])]
            case "BinExpr":
                return [_operator(_LOGICAL[body["op"]]), *self.operands(body)]
            case "BoolExpr":
                return [_operator(_COMPARISONS[body["op"]]), *self.operands(body)]
            case "ArithExpr":
                return [_operator(_ARITHMETIC[body["op"]]), *self.operands(body)]
            case "AssignExpr":
                return [_operator(_ASSIGNMENTS[body["op"]]), *self.operands(body)]
            case "Membership":
                return self.membership(body)
        raise ParseModuleError(f"rego.parse_module: no OPA form for regorus' {kind}")

    def operands(self, body: Node) -> list[Term]:
        lhs = self.term(body["lhs"])
        return [lhs, self.term(body["rhs"])]

    def membership(self, body: Node) -> list[Term]:
        if body.get("key") is None:
            value = self.term(body["value"])
            return [_operator("internal", "member_2"), value, self.term(body["collection"])]
        key, value = self.term(body["key"]), self.term(body["value"])
        return [_operator("internal", "member_3"), key, value, self.term(body["collection"])]

    # ------------------------------------------------------------------ bodies

    def expression_terms(self, node: Node) -> Term | list[Term]:
        """An expression's terms as OPA holds them: a call's list, or one term."""
        kind, body = _kind(node)
        if kind == "Call" and _is_template(body):
            return self.term(node)
        if kind in ("Call", "BinExpr", "BoolExpr", "ArithExpr", "AssignExpr", "Membership"):
            return self.call(kind, body)
        if kind == "UnaryExpr" and self.negative(body) is None:
            return [_operator("minus"), *self.unary(body)]
        return self.term(node)

    def statement(self, stmt: Node, index: int) -> Node:
        kind, literal = _kind(stmt["literal"])
        expr: Node = {"index": index}
        match kind:
            case "Expr" if (grouped := _with_group(literal["expr"])) is not None:
                # `(a or b with input as x)`: the group's statement, its `with` kept
                expr.update(self.statement(grouped, index))
            case "Expr":
                logic = self.logic(literal["expr"])
                expr["terms"] = self.expression_terms(literal["expr"]) if logic is None else logic
            case "NotExpr" if self.not_bodies:
                inner = {"index": 0, "terms": self.expression_terms(literal["expr"])}
                expr["terms"] = {"type": "not", "body": [inner], "explicit_body": False}
            case "NotExpr":
                expr["negated"] = True
                expr["terms"] = self.expression_terms(literal["expr"])
            case "SomeVars":
                expr["terms"] = {"symbols": [self.var(self.span_text(v)) for v in literal["vars"]]}
            case "SomeIn":
                call = {"type": "call", "value": self.membership(literal)}
                expr["terms"] = {"symbols": [call]}
            case "Every":
                every: Node = {"key": None}
                if literal.get("key") is not None:
                    every["key"] = self.var(self.span_text(literal["key"]))
                every["value"] = self.var(self.span_text(literal["value"]))
                every["domain"] = self.term(literal["domain"])
                every["body"] = self.query(literal["query"])
                expr["terms"] = every
            case _:
                raise ParseModuleError(f"rego.parse_module: no OPA form for regorus' {kind}")
        mods = stmt.get("with_mods") or []
        if mods:
            expr["with"] = [*expr.get("with", []), *(
                {"target": self.term(m["refr"]), "value": self.term(m["as"])} for m in mods
            )]  # fmt: skip
        return expr

    # ------------------------------------------------------------------ and, or, not { }

    def logic(self, node: Node) -> Term | None:
        """OPA's `and`, `or` or `not` term for regorus' rewrite of one, None for any other
        expression. regorus asks each operand whether it has a solution: `[1 | q] != []`
        for an `and` (q holds one statement per operand), `[[1 | a], [1 | b]] != [[], []]`
        for an `or`, `[1 | q] == []` for `not { q }` and `not ( ... )`."""
        kind, expr = _kind(node)
        if kind != "BoolExpr":
            return None
        lhs_kind, lhs = _kind(expr["lhs"])
        if lhs_kind == "ArrayCompr" and _is_logic_rewrite(lhs):
            query = lhs["query"]
            if expr["op"] == "Eq":
                body, explicit = self.operand(query)
                return {"type": "not", "body": body, "explicit_body": explicit}
            if expr["op"] == "Ne":
                return self.chain("and", [self.operand_of(s) for s in query["stmts"]])
        items = lhs.get("items") if lhs_kind == "Array" else None
        if expr["op"] == "Ne" and items and all(_is_logic_item(i) for i in items):
            return self.chain("or", [self.operand(_kind(i)[1]["query"]) for i in items])
        return None

    def operand_of(self, stmt: Node) -> tuple[list[Node], bool]:
        """One operand of an `and`, from its statement in regorus' query of them."""
        expr = _kind(stmt["literal"])[1]["expr"]
        kind, compare = _kind(expr)
        lhs_kind, lhs = _kind(compare["lhs"]) if kind == "BoolExpr" else ("", {})
        if compare.get("op") == "Ne" and lhs_kind == "ArrayCompr" and _is_logic_rewrite(lhs):
            return self.operand(lhs["query"])
        return [self.statement(stmt, 0)], False  # an `or` or `not`, whole

    def operand(self, query: Node) -> tuple[list[Node], bool]:
        """An operand's body, and whether it was written as one (`{ ... }`)."""
        stmts = query["stmts"]
        if len(stmts) > 1 and self.joined_by_and(stmts):
            return [
                {"index": 0, "terms": self.chain("and", [self.operand_of(s) for s in stmts])}
            ], False
        return self.query(query), self.span_text(query["span"]).startswith("{")

    def joined_by_and(self, stmts: list[Node]) -> bool:
        """Whether statements are the operands of an `and` (the text between each two is the
        keyword) rather than the statements of a body."""
        return all(
            _AND_GAP.fullmatch(self.text[a["span"]["end"] : b["span"]["start"]].decode())
            for a, b in itertools.pairwise(stmts)
        )

    def chain(self, op: str, operands: list[tuple[list[Node], bool]]) -> Term:
        """A left-associative chain, as OPA's parser folds one: `a and b and c` is
        `(a and b) and c`."""
        (lhs, lhs_explicit), rest = operands[0], operands[1:]
        term: Term = {}
        for rhs, rhs_explicit in rest:
            term = {"type": op, "lhs": lhs, "rhs": rhs}
            if lhs_explicit:
                term["explicit_lhs"] = True
            if rhs_explicit:
                term["explicit_rhs"] = True
            lhs, lhs_explicit = [{"index": 0, "terms": term}], False
        return term

    def query(self, query: Node) -> list[Node]:
        return [self.statement(s, i) for i, s in enumerate(query["stmts"])]

    # ------------------------------------------------------------------ rules

    def head_ref(self, node: Node) -> list[Term]:
        """A rule head's ref: its first var as a var (not a ref to data), then strings/terms."""
        kind, body = _kind(node)
        if kind == "Var":
            return [_var(body["value"])]
        if kind == "RefDot":
            return [*self.head_ref(body["refr"]), _string(body["field"][1])]
        if kind == "RefBrack":
            return [*self.head_ref(body["refr"]), self.term(body["index"])]
        raise ParseModuleError(f"rego.parse_module: a rule head of regorus' {kind}")

    def rules(self, rule: Node) -> list[Node]:
        """A regorus rule as OPA's rules: one per body (`p if { a } { b }` is two), each with
        its chain of `else`s."""
        kind, body = _kind(rule)
        if kind == "Default":
            return [self.default_rule(body)]
        head_kind, head = _kind(body["head"])
        if head_kind == "Func":
            _restore_template_args(head, body["bodies"])
        bodies = body["bodies"] or [{"assign": None, "is_else": False, "query": {"stmts": []}}]
        has_if = bool(body["bodies"]) and self.span_text(bodies[0]["span"]).startswith("if")
        first = self.head(head_kind, head, has_if)
        out: list[Node] = []
        for position, rule_body in enumerate(bodies):
            if rule_body["is_else"]:
                continue
            converted: Node = {"body": self.body(rule_body)}
            converted["head"] = first if not out else self.copied_head(first)
            chain = []
            for later in bodies[position + 1 :]:
                if not later["is_else"]:
                    break
                chain.append(later)
            if chain:
                converted["else"] = self.else_chain(first, chain)
            out.append(converted)
        return out

    def head(self, head_kind: str, head: Node, has_if: bool) -> Node:
        """A rule's head as OPA's parser completes it (parseHead, then parseRules)."""
        ref = self.head_ref(head["refr"])
        opa: Node = {"ref": ref}
        if len(ref) < 2:
            opa["name"] = ref[0]["value"]
        args = head_kind == "Func"
        if args:
            opa["args"] = [self.term(a) for a in head.get("args") or []]
        if head_kind == "Set" and head.get("key") is not None:
            opa["key"] = self.term(head["key"])
            return opa
        assign = head.get("assign")
        if assign is not None:
            opa["value"] = self.term(assign["value"])
            if assign["op"] == "ColEq":
                opa["assign"] = True
        if "value" not in opa and (len(ref) != 2 or args):
            opa["value"] = _true()
        if len(ref) == 2 and has_if:
            # `p[x] if ...` is a single-value rule p[x]; its key is kept when not ground
            if (not _ground(ref[1]) or ref[1]["type"] == "ref") and not args:
                opa["key"] = ref[1]
            if "value" not in opa:
                opa["value"] = _true()
            else:
                opa["name"] = ref[0]["value"]
        elif len(ref) == 2 and not args:
            # `p[x]` (no `if`) is a multi-value rule p
            opa["name"], opa["key"] = ref[0]["value"], ref[1]
            if "value" not in opa:
                opa["ref"] = ref[:1]
        return opa

    def copied_head(self, head: Node) -> Node:
        """The head of a rule's next body: a copy, its wildcard arguments numbered anew."""
        copy: Node = json.loads(json.dumps(head))
        for i, arg in enumerate(copy.get("args") or []):
            if arg["type"] == "var" and arg["value"].startswith("$"):
                copy["args"][i] = self.wildcard()
        return copy

    def body(self, rule_body: Node) -> list[Node]:
        stmts = rule_body["query"]["stmts"]
        if not stmts:
            return _generated_true_body()
        return self.query(rule_body["query"])

    def else_chain(self, head: Node, chain: list[Node]) -> Node:
        first, rest = chain[0], chain[1:]
        # A copy of the rule's head (its `:=` too); a value of its own, or `true`.
        else_head = self.copied_head(head)
        assign = first.get("assign")
        if assign is None:
            else_head["value"] = _true()
        else:
            else_head["value"] = self.term(assign["value"])
            else_head.pop("assign", None)
            if assign["op"] == "ColEq":
                else_head["assign"] = True
        rule: Node = {"body": self.body(first), "head": else_head}
        if rest:
            rule["else"] = self.else_chain(head, rest)
        return rule

    def default_rule(self, body: Node) -> Node:
        ref = self.head_ref(body["refr"])
        head: Node = {"ref": ref}
        if len(ref) == 1:
            head["name"] = ref[0]["value"]
        if body.get("args"):
            head["args"] = [self.term(a) for a in body["args"]]
        head["value"] = self.term(body["value"])
        if body["op"] == "ColEq":
            head["assign"] = True
        return {"body": _generated_true_body(), "default": True, "head": head}

    # ------------------------------------------------------------------ module

    def module(self, ast: Node) -> Node:
        package = self.head_ref(ast["package"]["refr"])
        path = [_var("data"), *(_string(t["value"]) if t["type"] == "var" else t for t in package)]
        module: Node = {"package": {"path": path}}
        imports = []
        for imported in ast.get("imports") or []:
            entry: Node = {"path": self.import_path(imported["refr"])}
            if imported.get("as") is not None:
                entry["alias"] = self.span_text(imported["as"])
            imports.append(entry)
        if imports:
            module["imports"] = imports
        rules = [r for rule in ast.get("rules") or [] for r in self.rules(rule)]
        if rules:
            module["rules"] = rules
        return module

    def import_path(self, node: Node) -> Term:
        ref = self.head_ref(node)
        if len(ref) == 1 and ref[0]["value"] not in _ROOTS:
            return ref[0]
        return {"type": "ref", "value": ref}


def _scan(text: bytes, filename: str) -> tuple[list[Node], int]:
    """Every `#` comment outside a string, as OPA's JSON of an `ast.Comment`, and the deepest
    nesting of brackets outside strings and comments."""
    comments: list[Node] = []
    depth = deepest = 0
    row, line_start, i, n = 1, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
        elif c in _CLOSING:
            depth -= 1
        elif c == 0x0A:
            row, line_start = row + 1, i + 1
        elif c == 0x22:  # "..."
            i += 1
            while i < n and text[i] not in (0x22, 0x0A):
                i += 2 if text[i] == 0x5C else 1
        elif c == 0x60:  # `...`, newlines included
            i += 1
            while i < n and text[i] != 0x60:
                if text[i] == 0x0A:
                    row, line_start = row + 1, i + 1
                i += 1
        elif c == 0x23:
            end = text.find(b"\n", i)
            end = n if end < 0 else end
            body = text[i + 1 : end]
            comments.append(
                {
                    "Text": base64.b64encode(body).decode(),
                    # a column in characters, as OPA counts them
                    "Location": {
                        "file": filename,
                        "row": row,
                        "col": len(text[line_start:i].decode(errors="replace")) + 1,
                    },
                }
            )
            i = end
            continue
        i += 1
    return comments, deepest


def module_json(filename: str, text: str, ast: Node, comments: list[Node]) -> Node:
    """OPA's JSON for a module, from regorus' tree of it (`get_ast_as_json`'s `ast`) and its
    comments (`_scan`)."""
    raw = text.encode()
    imports = {ref_name(i["refr"]) for i in ast.get("imports") or []}
    keywords = {k for k in ("and", "or") if imports & {f"future.keywords.{k}", *_ALL_LOGIC}}
    for node in walk(ast.get("rules")):
        if node.keys() == {"Var"} and node["Var"].get("value") in keywords:
            # regorus reads it as a variable; OPA's parser refuses a keyword there
            raise ParseModuleError(f"rego_parse_error: unexpected {node['Var']['value']} keyword")
    module = _Converter(raw, not_bodies=bool(imports & _NOT_KEYWORD_IMPORTS)).module(ast)
    if comments:
        module["comments"] = comments
    return module


def parse_module(filename: Any, text: Any) -> Any:
    """OPA's `rego.parse_module`: the module's AST as OPA's JSON (an error, so an undefined
    call, for text OPA's parser would refuse)."""
    if not isinstance(filename, str) or not isinstance(text, str):
        raise TypeError("rego.parse_module: operands must be strings")
    comments, deepest = _scan(text.encode(), filename)
    if deepest > MAX_NESTING:
        raise ParseModuleError(
            f"rego.parse_module: brackets nested {deepest} levels deep; sbomgate reads at most "
            f"{MAX_NESTING}"
        )
    from sbomgate.policy._regorus import _from_json  # its module imports this one

    # A tree deeper than the conversion (or JSON reader) recurses through is refused.
    try:
        [parsed] = _from_json(_regorus_ast(filename, text))
        return module_json(filename, text, parsed["ast"], comments)
    except RecursionError:
        raise ParseModuleError("rego.parse_module: the module's tree is too deep") from None


def _regorus_ast(filename: str, text: str) -> str:
    """regorus' AST of one module as JSON; a ParseModuleError for text it cannot parse."""
    from sbomgate.policy._regorus import regorus_ast_json  # its module imports this one

    try:
        return regorus_ast_json(filename, text)
    except Exception as exc:  # regorus' parse error: OPA's would be a builtin error too
        raise ParseModuleError(f"rego_parse_error: {exc}") from None


__all__ = ["MAX_NESTING", "ParseModuleError", "module_json", "parse_module"]
