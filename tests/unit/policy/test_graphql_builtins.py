"""OPA's graphql.* builtins (sbomgate.policy._graphql), against a real `opa eval`.

Each call is a rule of one module, evaluated by sbomgate's engine (OPA's default mode: a
builtin's error makes the call undefined) and by OPA in one run: the same value (the ASTs
compared whole), or undefined in both. The GraphQL texts and AST objects reach both engines as
the input document, so no Rego string escaping stands between them and the builtins.

Left out: inputs on which OPA itself crashes (gqlparser panics and OPA's process exits), such as
an AST object whose directive sits where it may not; sbomgate answers those as an error, which
`test_what_crashes_opa_is_an_error_here` shows.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sbomgate.policy._graphql import (
    GraphQLBuiltinError,
    TooMuchWork,
    graphql_is_valid,
    graphql_parse,
)
from sbomgate.policy._regorus import RegoEngine, analyse_module, check_calls

# --------------------------------------------------------------------------- schemas

LIBRARY = '''
"""A lending library."""
schema @audit { query: Query mutation: Mutation subscription: Events }

"Anything with an id" interface Entity { id: ID! }
interface Titled implements Entity { id: ID! title(lang: Lang = EN): String! }
type Book implements Entity & Titled @cache(seconds: 60) @cache(seconds: 5) {
  id: ID!
  title(lang: Lang = EN): String!
  authors(first: Int = 3, after: String): [Person!]!
  isbn: String @deprecated(reason: "use codes")
  codes: [String!]
  shelf: Shelf
}
type Person implements Entity { id: ID! name: String born: Date }
type Magazine implements Entity & Titled { id: ID! title(lang: Lang = EN, issue: Int): String! }
union Item = | Book | Magazine
union Shelf = Book
enum Lang { EN FR @deprecated DE }
input Filter { lang: Lang = FR, text: String, ids: [ID!], and: Filter }
input Pick @oneOf { id: ID isbn: String }
scalar Date @specifiedBy(url: "https://example.org/date")
directive @cache(seconds: Int!) repeatable on OBJECT | FIELD
directive @audit(level: Int = 1) on SCHEMA | QUERY | MUTATION | FIELD_DEFINITION
type Query {
  item(id: ID!): Item
  entity(pick: Pick): Entity
  books(filter: Filter!, limit: Int): [Book]
  search(text: String!): [Titled!]!
  numbers(i: Int, f: Float, b: Boolean, s: String, l: [Int], m: [[Int!]]): Float
  today: Date @audit
}
type Mutation { lend(book: ID!, to: ID!): Book renew(books: [ID!]!, until: Date): [Book] }
type Events { returned: Book overdue(days: Int): [Book!] }
extend type Person { books: [Book] }
extend enum Lang { ES }
extend input Filter { after: Date }
extend union Shelf = Magazine
'''

FLAT = "type Query { a: Int b(x: Int!): String c: [Int] }"

SCHEMAS = {"library": LIBRARY, "flat": FLAT}

INVALID_SCHEMAS = [
    "type Query",
    "type Query { a: Unknown }",
    "type Query { a: Int } type Query { b: Int }",
    "scalar Int",
    "interface I { a: Int! } type Query implements I { a: Int }",
    "interface I { a(x: Int): Int } type Query implements I { a: Int }",
    "interface I { a: Int } type Query implements I { a(x: Int!): Int }",
    "interface J { a: Int } interface I implements J { a: Int } type Query implements I { a: Int }",
    "union U = Int type Query { u: U }",
    "union U = A | A type A { a: Int } type Query { u: U }",
    "enum E { A A } type Query { e: E }",
    "enum E { null } type Query { e: E }",
    "input I { q: Query } type Query { a(i: I): Int }",
    "type Query { a(q: Query): Int }",
    "type Query { __hidden: Int }",
    "type Query { a: Int @nowhere }",
    "type Query { a: Int @deprecated @deprecated }",
    "directive @d(a: Int!) on FIELD_DEFINITION type Query { a: Int @d }",
    "directive @d(a: Int!) on FIELD_DEFINITION type Query { a: Int @d(a: null) }",
    "directive @d on FIELD directive @d on FIELD type Query { a: Int }",
    "directive @d(a: Int @d) on ARGUMENT_DEFINITION type Query { a: Int }",
    "schema { query: Q } schema { query: Q } type Q { a: Int }",
    "schema { query: Missing } type Query { a: Int }",
    "type Query { a: Int } extend enum Query { A }",
    "input A { b: B! } input B { a: A! } type Query { x(a: A): Int }",
    "type Query @deprecated { a: Int }",
]

VALID_ODDITIES = [
    "",  # an empty document is a schema (of the prelude only)
    "# nothing but a comment\n",
    "directive @skip(if: Boolean!) on FIELD type Query { a: Int }",  # a builtin declared again
    "extend type Query { a: Int } extend type Query { b: Int }",  # extending what is not there
    "input A { b: [A!]! } input B { a: A } type Query { x(a: A, b: B): Int }",
    "directive @r repeatable on OBJECT type Query @r @r { a: Int }",
    "directive @r on OBJECT type Query @r { a: Int } extend type Query @r",
    "union U type Query { a: Int }",  # a union without members
    "schema { query: Q } type Q { a: Int } type Query { b: Int }",
]

SYNTAX = [
    'type A { "field" # c1\n  a(  "arg" x: Int = 1 @deprecated): [Int!]! # c2\n} # c3\n',
    '# before\n"""\n    Block\n      indented\n    """\n# between\ntype A @d(x: {k: [1, 2.5]}) { a: Int }',
    "schema @d",  # gqlparser needs no operation types after `schema`
    '"" extend type A @d',
    '"desc" extend type A @d',
    "extend interface A implements B { a: Int }",
    "extend directive @a @b",
    "directive @a @b on FIELD",
    "directive @a repeatable on | FIELD | QUERY",
    "enum E { true false }",
    "type A { a: Int @d(x: $v) }",
    "extend input I @d(x: $v)",
    "type A implements & B & C { a: Int }",
    "union U = A ||",
    "input I { a(x: Int): Int }",
    "enum E {}",
    "type A { a: Int } query { a }",
    'type A { a: String @d(x: "\\u00e9\\uD83D\\uDE00 \\n\\"") }',
    'type A { a: String @d(x: "\\u{1F600}") }',
    'type A { a: String @d(x: """  first\n    second\n\n""") }',
    'type A { a: String @d(x: """ends with a quote"""") }',
    "type A { a: Int @d(x: 12abc: 1) }",
    "type A { a: Int @d(x: 0x1) }",
    "type A { a: Int @d(x: 007) }",
    "type A { a: Int }\r\n# windows\r\ntype B { b: Int }",
    "\ufefftype A { a: Int }",
]

# --------------------------------------------------------------------------- queries

LIBRARY_QUERIES = [
    # valid
    """query Shelf($id: ID!, $lang: Lang = FR, $f: Filter!) @audit {
      item(id: $id) { __typename ... on Book { title(lang: $lang) authors(first: 2) { name } }
                      ...Titles }
      books(filter: {lang: DE, ids: [$id], and: {text: "x"}}) { id codes }
      more: books(filter: $f) @cache(seconds: 1) { id }
    }
    fragment Titles on Titled { id t: title }""",
    "{ item(id: 1) { ... on Book { id } ... on Magazine { id } } }",
    '{ entity(pick: {isbn: "1"}) { id ... on Person { books { shelf { __typename } } } } }',
    '{ search(text: """block""") { id ...B } } fragment B on Book { isbn }',
    '{ numbers(i: 1, f: 1, b: false, s: "s", l: 1, m: [[1, 2]]) }',
    "query ($l: [[Int!]]) { numbers(m: $l) }",
    "query ($i: Int!) { numbers(l: [$i], m: [[$i]]) }",
    "query ($f: Filter = {}) { books(filter: $f) { id } }",
    "mutation Lend($b: ID!) @audit { lend(book: $b, to: 2) { id } renew(books: [$b]) { id } }",
    "subscription { returned { id } }",
    "subscription { ... on Events { overdue(days: 3) { id } } }",
    "{ __schema { types { name fields { name } } } }",
    '{ __type(name: "Book") { fields { type { name } } } }',
    "{ today @skip(if: true) item(id: 1) { __typename } }",
    "{ a: today b: today }",
    "{ item(id: 1) { ... on Book { x: id } ... on Magazine { x: title } } }",
    "query ($skip: Boolean = false) { today @skip(if: $skip) }",
    "",
    # invalid
    "{ nope }",
    "{ item { __typename } }",
    "{ item(id: 1) }",
    "{ today { x } }",
    "{ item(id: 1) { id } }",
    "{ item(id: 1) { ... on Person { id } } }",
    "{ item(id: 1) { ... on Lang { id } } }",
    "{ item(id: 1) { ... on Missing { id } } }",
    "{ ...Missing }",
    "{ today } fragment Unused on Query { today }",
    "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    "{ ...A } fragment A on Query { today } fragment A on Query { today }",
    "query A { today } query A { today }",
    "{ today } { today }",
    "query ($x: Int) { today }",
    "{ numbers(i: $undefined) }",
    "query ($x: Int, $x: Int) { numbers(i: $x) }",
    "query ($x: Book) { today }",
    "query ($x: Missing) { today }",
    "query ($x: Int) { numbers(f: $x) }",
    "query ($x: [Int]) { numbers(m: $x) }",
    "query ($l: Lang) { books(filter: {lang: $l}) { id } }",
    "{ numbers(i: 2147483648) }",
    "{ numbers(i: 9223372036854775808) }",
    "{ numbers(i: 1.5) }",
    "{ numbers(f: 1e400) }",
    '{ numbers(b: "true") }',
    "{ numbers(s: EN) }",
    "{ numbers(l: [[1]]) }",
    '{ books(filter: {lang: "EN"}) { id } }',
    "{ books(filter: {lang: XX}) { id } }",
    "{ books(filter: {nope: 1}) { id } }",
    '{ books(filter: {text: "a", text: "b"}) { id } }',
    "{ books(filter: null) { id } }",
    "{ books { id } }",
    '{ entity(pick: {id: 1, isbn: "2"}) { id } }',
    "{ entity(pick: {id: null}) { id } }",
    "query ($p: ID) { entity(pick: {id: $p}) { id } }",
    "{ today(x: 1) }",
    "{ numbers(i: 1, i: 2) }",
    "{ today @skip }",
    "{ today @skip(if: true) @skip(if: false) }",
    "{ today @deprecated }",
    "{ today @unknown }",
    "{ today @skip(if: true, extra: 1) }",
    "{ a: today a: numbers }",
    "{ numbers(i: 1) numbers(i: 2) }",
    "{ item(id: 1) { ... on Book { x: id } ... on Book { x: title } } }",
    "{ ...A ...B } fragment A on Query { x: today } fragment B on Query { x: item(id: 1) { id } }",
    "subscription { returned { id } overdue { id } }",
    "subscription { __typename }",
    '{ __type(name: "Book") { fields { type { fields { type { fields { name } } } } } } }',
]

FLAT_QUERIES = [
    "{ a }",
    "{ a b(x: 1) c }",
    "{ b }",
    "{ b(x: null) }",
    "mutation { a }",
    "{ a: b(x: 1) a }",
    "{ b(x: 1) b(x: 1) }",
    "query { a } fragment F on Query { a }",
    "{ ... { a } ... on Query { c } }",
]

PARSE_ONLY = [
    '# leading\nquery Named($v: [Int!]! = [1]) @d(x: 1) { # inside\n  alias: f(a: $v, b: "é") }',
    "{ a } # trailing\nquery B { b }",
    "query A { a(x: $v # after a variable\n  y: 1) }",
    "{ a(x: # before a list\n [1, # inside\n 2], y: # before an object\n {k: # value\n 1}) }",
    "fragment F($v: Boolean = false) on T { f(v: $v) }",
    "{ ... @skip(if: true) { a } ...Named @defer }",
    "query on { ...on }",
    "query true { true(true: $true) @true(true: true) }",
    "query ($a: Int @d(x: $b)) { f }",
    "{ f(a: 123abc: 1) }",
    '{ f(a: "\\uD800") }',
    '{ f(a: "\\u{41}") }',
    '{ f(a: """a""""") }',
    '{ f(a: """\n    x\n  y\n""") }',
    "{ f(a: 1.5.3) }",
    "{ }",
    "{ a() }",
    '"described" query { a }',
    "{ ...F(x: 1) }",
    "type T { a: Int }",
    "query",
    "{ a",
    "{ a(x: 00) }",
    "# only comments\n# here",
]

# --------------------------------------------------------------------------- AST objects


def _field(name: str, **more: Any) -> dict[str, Any]:
    return {"Alias": name, "Name": name, **more}


def _query(*selections: dict[str, Any], **operation: Any) -> dict[str, Any]:
    return {"Operations": [{"Operation": "query", "SelectionSet": list(selections), **operation}]}


QUERY_OBJECTS = [
    {},
    _query(_field("a")),
    _query(_field("b", Arguments=[{"Name": "x", "Value": {"Kind": 1, "Raw": "2"}}])),
    _query(_field("b", Arguments=[{"name": "x", "value": {"KIND": 1, "raw": "+2"}}])),
    _query(_field("b", Arguments=[{"Name": "x", "Value": {"Kind": 1, "Raw": "two"}}])),
    _query(_field("b", Arguments=[{"Name": "x", "Value": {"Kind": "1", "Raw": "2"}}])),
    _query({"name": "a"}),  # a field decodes by exact key names only: no name
    {"operations": [{"operation": "query", "SelectionSet": [_field("a")]}]},
    _query(_field("a", Comment={"List": [{"Value": "# dropped"}]})),
    {"Comment": {"List": [{"Value": "# kept", "Position": {"Line": 3}}]}, **_query(_field("a"))},
    _query(_field("a", Position="not a position")),
    _query({"Alias": 5, "Name": "a"}),  # not a field: read as a fragment spread
    _query({"TypeCondition": "Query", "SelectionSet": [_field("a")]}),  # a field named ""
    _query(_field("a"), 5, "x", None, []),
    _query(_field("a"), Operation="mutation"),
    _query(_field("a"), VariableDefinitions=[{"Variable": "v", "Type": {"NamedType": "Int"}}]),
    _query(
        _field("a"),
        VariableDefinitions=[{"Variable": "v", "Type": {"NamedType": "Int"}, "Used": True}],
    ),
    {"Operations": "not a list"},
    {"Fragments": [{"Name": "F", "TypeCondition": "Query", "SelectionSet": [_field("a")]}]},
]

SCHEMA_OBJECTS = [
    {},
    {
        "Definitions": [
            {"Kind": "OBJECT", "Name": "Query", "Fields": [{"Name": "a", "Type": "Int"}]}
        ]
    },
    {
        "definitions": [
            {
                "kind": "OBJECT",
                "name": "Query",
                "fields": [{"name": "a", "type": {"namedType": "Int"}}],
            }
        ]
    },
    {
        "Definitions": [
            {
                "Kind": "OBJECT",
                "Name": "__Query",
                "BuiltIn": True,
                "Fields": [{"Name": "a", "Type": {"NamedType": "Int"}}],
            },
            {
                "Kind": "OBJECT",
                "Name": "Query",
                "Fields": [{"Name": "a", "Type": {"NamedType": "Int"}}],
            },
        ]
    },
    {
        "Schema": [{"OperationTypes": [{"Operation": "query", "Type": "Root"}]}],
        "Definitions": [
            {
                "Kind": "OBJECT",
                "Name": "Root",
                "Fields": [{"Name": "a", "Type": {"NamedType": "Int"}}],
            }
        ],
    },
    {
        "Extensions": [
            {
                "Kind": "OBJECT",
                "Name": "Query",
                "Fields": [{"Name": "a", "Type": {"NamedType": "Int"}}],
            }
        ]
    },
    {"Definitions": [{"Kind": "OBJECT", "Name": "Query", "BuiltIn": "no"}]},
    {"Definitions": "not a list"},
]

# --------------------------------------------------------------------------- the calls

CALLS: list[tuple[str, list[Any]]] = []
for _schema in [*SCHEMAS.values(), *INVALID_SCHEMAS, *VALID_ODDITIES, *SYNTAX]:
    CALLS += [("graphql.parse_schema({})", [_schema]), ("graphql.schema_is_valid({})", [_schema])]
for _schema_name, _queries in (("library", LIBRARY_QUERIES), ("flat", FLAT_QUERIES)):
    for _text in _queries:
        _pair = [_text, SCHEMAS[_schema_name]]
        CALLS += [
            ("graphql.parse_query({})", [_text]),
            ("graphql.is_valid({}, {})", _pair),
            ("graphql.parse({}, {})", _pair),
            ("graphql.parse_and_verify({}, {})", _pair),
        ]
        if "@deprecated" not in _text:  # as an object (no positions), it crashes OPA
            CALLS.append(
                ("graphql.parse(graphql.parse_query({}), graphql.parse_schema({}))", _pair)
            )
for _text in PARSE_ONLY:
    CALLS += [("graphql.parse_query({})", [_text]), ("graphql.parse_schema({})", [_text])]
for _object in QUERY_OBJECTS:
    CALLS += [
        ("graphql.parse({}, {})", [_object, FLAT]),
        ("graphql.is_valid({}, {})", [_object, FLAT]),
        ("graphql.parse_and_verify({}, {})", [_object, FLAT]),
    ]
for _object in SCHEMA_OBJECTS:
    CALLS += [
        ("graphql.parse({}, {})", ["{ a }", _object]),
        ("graphql.schema_is_valid({})", [_object]),
        ("graphql.parse_and_verify({}, {})", ["{ a }", _object]),
    ]
for _wrong in (None, 1, True, ["{ a }"]):  # neither a string nor an object
    CALLS += [
        ("graphql.parse_query({})", [_wrong]),
        ("graphql.parse_schema({})", [_wrong]),
        ("graphql.schema_is_valid({})", [_wrong]),
        ("graphql.parse({}, {})", [_wrong, FLAT]),
        ("graphql.is_valid({}, {})", ["{ a }", _wrong]),
        ("graphql.parse_and_verify({}, {})", [_wrong, FLAT]),
    ]


def _expression(index: int) -> str:
    template, arguments = CALLS[index]
    return template.format(*(f"input.calls[{index}][{i}]" for i in range(len(arguments))))


MODULE = "package t\n\n" + "\n".join(f"r{i} := {_expression(i)}" for i in range(len(CALLS)))
INPUT = {"calls": [arguments for _, arguments in CALLS]}


def _ours() -> dict[int, Any]:
    module = analyse_module("t.rego", MODULE)
    check_calls([module])  # the graphql builtins are no longer refused
    engine = RegoEngine([module], {})
    engine.set_input_json(json.dumps(INPUT))
    return {index: engine.eval_rule(f"data.t.r{index}") for index in range(len(CALLS))}


def _opa(opa_bin: str, tmp: Path) -> dict[int, Any]:
    (tmp / "t.rego").write_text(MODULE)
    (tmp / "input.json").write_text(json.dumps(INPUT))
    proc = subprocess.run(
        [opa_bin, "eval", "-f", "json", "-d", str(tmp / "t.rego"), "-i", str(tmp / "input.json"),
         "data.t"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    values = json.loads(proc.stdout)["result"][0]["expressions"][0]["value"]
    return {index: values.get(f"r{index}") for index in range(len(CALLS))}


@pytest.fixture(scope="module")
def answers(opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], ...]:
    return _ours(), _opa(opa_bin, tmp_path_factory.mktemp("graphql"))


@pytest.mark.parametrize(
    "index", range(len(CALLS)), ids=[f"{i}-{t.split('(')[0]}" for i, (t, _) in enumerate(CALLS)]
)
def test_the_value_is_opas(index: int, answers: tuple[dict[int, Any], ...]) -> None:
    ours, theirs = answers
    assert ours[index] == theirs[index], f"{_expression(index)} on {CALLS[index][1]!r}"


def test_the_comparison_is_not_vacuous(answers: tuple[dict[int, Any], ...]) -> None:
    _, theirs = answers
    values = list(theirs.values())
    assert sum(v is True for v in values) > 20
    assert sum(v is False for v in values) > 50
    assert sum(v is None for v in values) > 50  # errors are undefined, in both
    assert sum(isinstance(v, dict) and bool(v) for v in values) > 50  # ASTs, compared whole
    parsed = [v for v in values if isinstance(v, list) and len(v) == 3 and v[0] is True]
    assert parsed  # parse_and_verify succeeded somewhere


def test_what_crashes_opa_is_an_error_here() -> None:
    """gqlparser dereferences a directive's position when it sits where it may not; an AST
    object has no positions, so OPA's process dies. Here the call is an error (undefined)."""
    query = _query(_field("a", Directives=[{"Name": "deprecated"}]))
    assert graphql_is_valid(query, FLAT) is False
    with pytest.raises(GraphQLBuiltinError):
        graphql_parse(query, FLAT)
    # the same query as a string has positions: OPA answers, and so does sbomgate
    assert graphql_is_valid("{ a @deprecated }", FLAT) is False


def test_a_policy_calling_graphql_loads() -> None:
    source = 'package p\n\nok if graphql.is_valid("{ a }", "type Query { a: Int }")\n'
    module = analyse_module("p.rego", source)
    check_calls([module])
    assert RegoEngine([module], {}).eval_rule("data.p.ok") is True


def test_a_query_too_costly_to_check_is_an_error_not_an_answer() -> None:
    """The overlapping-fields check grows with the square of same-named fields (and, through
    fragments, faster): past a bound the call is undefined, never `false` for a valid query."""
    query = "{ " + " ".join("a: a" for _ in range(800)) + " }"
    with pytest.raises(TooMuchWork):
        graphql_is_valid(query, "type Query { a: Int }")
    assert graphql_is_valid("{ " + " ".join("a: a" for _ in range(50)) + " }", FLAT) is True
