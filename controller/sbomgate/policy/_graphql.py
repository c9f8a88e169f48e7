"""OPA's graphql.* builtins for regorus, evaluated as OPA 1.22 evaluates them.

OPA reads GraphQL with github.com/vektah/gqlparser/v2 (v2.5.58 in OPA 1.22.2) and hands a
policy the JSON of gqlparser's Go structs: Go's field names, `Position` dropped, and every
null, empty list and empty object pruned (an empty string, `false` and `0` stay). Kinds are
what the structs marshal: a definition's `Kind` is a string ("OBJECT"), a value's `Kind` a number
(0 variable, 1 int, 2 float, 3 string, 4 block string, 5 boolean, 6 null, 7 enum, 8 list,
9 object). An AST passed back in as an object is read as Go's encoding/json reads it into those
structs (fields matched case-insensitively, unknown keys ignored, a wrong JSON type an error),
except where gqlparser decodes by hand: a field, operation, inline fragment or fragment
definition takes its exact key names only, and every object in a selection set is read as a
field first (so a fragment spread or an inline fragment given as an object becomes a field).

Why graphql-core: it is the reference implementation (GraphQL.js) in Python, kept in step with
the specification, so its lexer and parser read what gqlparser reads, and it is the one place
the grammar lives here. Its `Lexer` and `Parser` are subclassed where gqlparser reads otherwise,
which is on input the specification does not allow and gqlparser takes anyway: a number may be
followed by a name (`1a` is `1` and `a`), a block string ends at the last of three or more
quotes, `\\u` takes four hex digits only and a surrogate half is U+FFFD, no control character
but a tab in a string or a comment, a block string's common indentation counts its first line,
a document may be empty, `true`/`false`/`null` parse as enum values, variables may sit in a
variable definition's directives, `schema @d` needs no operation types, an empty description may
precede `extend`. What graphql-core reads and gqlparser refuses (descriptions on operations,
fragment arguments, `extend directive`, directives on a directive definition) is refused after
parsing. Validation is gqlparser's own, not GraphQL.js's: its schema checks
(ValidateSchemaDocument) differ from GraphQL.js's throughout, and its query rules are driven by a
walk that records each field's definition, each variable's use and each value's expected type on
the nodes (a fragment is walked inside each operation that spreads it, once, and once alone), so
the rules are written anew here on that walk, one for each of gqlparser's 27 default rules, from
what gqlparser does; graphql-core's validation is not used. Only validity matters to OPA (an
error's text never reaches a policy in OPA's default mode), so validation stops at the first
error.

Known differences: nesting deeper than graphql-core's 200 levels (or Python's recursion limit,
for an AST object) is an error here and read by gqlparser; where gqlparser panics (OPA's process
exits: an AST object without positions reaching a rule that reads one, a fragment cycle that
OPA's overlapping-fields check follows without end), the call is an error here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any, cast

from graphql.error import GraphQLError, GraphQLSyntaxError
from graphql.language import ast as gql
from graphql.language.ast import Token
from graphql.language.lexer import EscapeSequence, Lexer, read_16_bit_hex_code
from graphql.language.parser import Parser
from graphql.language.source import Source
from graphql.language.token_kind import TokenKind

from sbomgate.errors import EvaluationError

__all__ = [
    "GraphQLBuiltinError",
    "graphql_is_valid",
    "graphql_parse",
    "graphql_parse_and_verify",
    "graphql_parse_query",
    "graphql_parse_schema",
    "graphql_schema_is_valid",
]


# Field pairs the overlapping-fields check may compare in one call (about 0.2 s measured).
MAX_OVERLAP_STEPS = 200_000


class GraphQLBuiltinError(EvaluationError):
    """A graphql.* builtin failed (the call is undefined, as OPA's builtin error is)."""


class TooMuchWork(EvaluationError):
    """A check would take longer than sbomgate allows one call: an error (undefined), never
    an answer, so is_valid is not false for a valid query."""


class _DecodeError(GraphQLBuiltinError):
    """An AST object does not decode into gqlparser's Go structs."""


class _Invalid(GraphQLBuiltinError):
    """A schema or query fails gqlparser's validation."""


# --------------------------------------------------------------------------- gqlparser's structs

# Each struct's fields as Go declares them (their JSON names), with their Go types: string, bool,
# int, *T, []T, or SelectionSet ([]Selection: *Field, *FragmentSpread or *InlineFragment).
# Fields tagged `json:"-"` (Position, Definition.TypePositions) are left out: JSON never sees them.
_STRUCT_TEXT = {
    "QueryDocument": "Operations []*OperationDefinition; Fragments []*FragmentDefinition;"
    " Comment *CommentGroup",
    "SchemaDocument": "Schema []*SchemaDefinition; SchemaExtension []*SchemaDefinition;"
    " Directives []*DirectiveDefinition; Definitions []*Definition; Extensions []*Definition;"
    " Comment *CommentGroup",
    "SchemaDefinition": "Description string; Directives []*Directive;"
    " OperationTypes []*OperationTypeDefinition; BeforeDescriptionComment *CommentGroup;"
    " AfterDescriptionComment *CommentGroup; EndOfDefinitionComment *CommentGroup",
    "OperationTypeDefinition": "Operation string; Type string; Comment *CommentGroup",
    "Definition": "Kind string; Description string; Name string; Directives []*Directive;"
    " Interfaces []string; Fields []*FieldDefinition; Types []string;"
    " EnumValues []*EnumValueDefinition; BuiltIn bool; BeforeDescriptionComment *CommentGroup;"
    " AfterDescriptionComment *CommentGroup; EndOfDefinitionComment *CommentGroup",
    "FieldDefinition": "Description string; Name string; Arguments []*ArgumentDefinition;"
    " DefaultValue *Value; Type *Type; Directives []*Directive;"
    " BeforeDescriptionComment *CommentGroup; AfterDescriptionComment *CommentGroup",
    "ArgumentDefinition": "Description string; Name string; DefaultValue *Value; Type *Type;"
    " Directives []*Directive; BeforeDescriptionComment *CommentGroup;"
    " AfterDescriptionComment *CommentGroup",
    "EnumValueDefinition": "Description string; Name string; Directives []*Directive;"
    " BeforeDescriptionComment *CommentGroup; AfterDescriptionComment *CommentGroup",
    "DirectiveDefinition": "Description string; Name string; Arguments []*ArgumentDefinition;"
    " Locations []string; IsRepeatable bool; BeforeDescriptionComment *CommentGroup;"
    " AfterDescriptionComment *CommentGroup",
    "Directive": "Name string; Arguments []*Argument; ParentDefinition *Definition;"
    " Definition *DirectiveDefinition; Location string",
    "OperationDefinition": "Operation string; Name string;"
    " VariableDefinitions []*VariableDefinition; Directives []*Directive;"
    " SelectionSet SelectionSet; Comment *CommentGroup",
    "VariableDefinition": "Variable string; Type *Type; DefaultValue *Value;"
    " Directives []*Directive; Comment *CommentGroup; Definition *Definition; Used bool",
    "FragmentDefinition": "Name string; VariableDefinition []*VariableDefinition;"
    " TypeCondition string; Directives []*Directive; SelectionSet SelectionSet;"
    " Definition *Definition; Comment *CommentGroup",
    "Field": "Alias string; Name string; Arguments []*Argument; Directives []*Directive;"
    " SelectionSet SelectionSet; Comment *CommentGroup; Definition *FieldDefinition;"
    " ObjectDefinition *Definition",
    "FragmentSpread": "Name string; Directives []*Directive; ObjectDefinition *Definition;"
    " Definition *FragmentDefinition; Comment *CommentGroup",
    "InlineFragment": "TypeCondition string; Directives []*Directive; SelectionSet SelectionSet;"
    " ObjectDefinition *Definition; Comment *CommentGroup",
    "Argument": "Name string; Value *Value; Comment *CommentGroup",
    "Value": "Raw string; Children []*ChildValue; Kind int; Comment *CommentGroup;"
    " Definition *Definition; VariableDefinition *VariableDefinition; ExpectedType *Type;"
    " ExpectedTypeHasDefault bool",
    "ChildValue": "Name string; Value *Value; Comment *CommentGroup",
    "Type": "NamedType string; Elem *Type; NonNull bool",
    "CommentGroup": "List []*Comment",
    "Comment": "Value string; Position *Position",
    "Position": "Start int; End int; Line int; Column int; Src *Source",
    "Source": "Name string; Input string; BuiltIn bool",
}
_STRUCTS: dict[str, dict[str, str]] = {
    name: dict(tuple(part.split()) for part in text.split(";"))  # type: ignore[misc]
    for name, text in _STRUCT_TEXT.items()
}

# The structs gqlparser decodes by hand (ast/decode.go): these keys only, matched exactly.
_HAND_DECODED = {
    "Field": (
        "Alias", "Name", "Arguments", "Directives", "SelectionSet", "Position", "Definition",
        "ObjectDefinition",
    ),
    "OperationDefinition": (
        "Operation", "Name", "VariableDefinitions", "Directives", "SelectionSet", "Position",
    ),
    "InlineFragment": (
        "TypeCondition", "Directives", "SelectionSet", "ObjectDefinition", "Position",
    ),
    "FragmentDefinition": (
        "Name", "VariableDefinition", "TypeCondition", "Directives", "SelectionSet", "Definition",
        "Position",
    ),
}  # fmt: skip

# ast.ValueKind, in Go's order.
VARIABLE, INT, FLOAT, STRING, BLOCK, BOOLEAN, NULL, ENUM, LIST, OBJECT = range(10)
# ast.DefinitionKind.
_SCALAR, _OBJECT, _INTERFACE, _UNION, _ENUM, _INPUT = (
    "SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM", "INPUT_OBJECT",
)  # fmt: skip


def _zero(go_type: str) -> Any:
    if go_type == "string":
        return ""
    if go_type == "bool":
        return False
    if go_type == "int":
        return 0
    if go_type.startswith("*"):
        return None
    return []  # a slice or a selection set (nil and empty marshal alike once pruned)


class _Node:
    """One value of a gqlparser struct: its fields by their Go names (identity equality)."""

    __slots__ = ("fields", "go")

    def __init__(self, go: str, /, **fields: Any) -> None:
        self.go = go
        self.fields = {name: _zero(kind) for name, kind in _STRUCTS[go].items()}
        self.fields.update(fields)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.fields[name] = value

    def __repr__(self) -> str:
        return f"{self.go}({self.fields.get('Name', self.fields.get('Raw', ''))!r})"


_PRUNED = object()


def _encode(value: Any) -> Any:
    """The Rego value OPA makes of a struct: its JSON, without Position, nulls and empties."""
    if isinstance(value, _Node):
        out = {}
        for name, field in value.fields.items():
            if name != "Position" and (encoded := _encode(field)) is not _PRUNED:
                out[name] = encoded
        return out or _PRUNED
    if isinstance(value, list):
        items = [encoded for item in value if (encoded := _encode(item)) is not _PRUNED]
        return items or _PRUNED
    return _PRUNED if value is None else value


def _encode_document(doc: _Node) -> dict[str, Any]:
    encoded = _encode(doc)
    return {} if encoded is _PRUNED else dict(encoded)


def _go_fold(name: str) -> str:
    """encoding/json's case folding of a key (the Kelvin sign and long s fold to ASCII)."""
    return name.upper().replace("\u212a", "K").replace("\u017f", "S")


_FOLDED = {go: {_go_fold(name): name for name in fields} for go, fields in _STRUCTS.items()}


def _elements(value: Any) -> Iterable[Any] | None:
    """A Rego array's items (a set is an array once OPA makes it JSON), or None."""
    if isinstance(value, list):
        return value
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return None


def _decode(value: Any, go_type: str, where: str) -> Any:
    """A JSON value decoded into a Go type as encoding/json does (null leaves the zero value)."""
    if value is None:
        return _zero(go_type)
    if go_type == "string" and isinstance(value, str):
        return value
    if go_type == "bool" and isinstance(value, bool):
        return value
    if go_type == "int" and isinstance(value, int) and not isinstance(value, bool):
        if -(1 << 63) <= value < 1 << 63:
            return value
    elif go_type == "SelectionSet":
        return _decode_selections(value, where)
    elif go_type.startswith("[]") and (items := _elements(value)) is not None:
        return [_decode(item, go_type[2:], where) for item in items]
    elif go_type.startswith("*") and isinstance(value, dict):
        return _decode_struct(value, go_type[1:], where)
    raise _DecodeError(f"json: cannot unmarshal {_json_kind(value)} into {where} of type {go_type}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def _decode_struct(value: dict[str, Any], go: str, where: str) -> _Node:
    if go in _HAND_DECODED:
        return _hand_decode(value, go)
    node = _Node(go)
    fields = _STRUCTS[go]
    for key in sorted(value):  # OPA marshals an object's keys sorted; the last match wins
        name = key if key in fields else _FOLDED[go].get(_go_fold(key))
        if name is not None:
            node[name] = _decode(value[key], fields[name], f"Go struct field {go}.{name}")
    return node


def _hand_decode(value: Any, go: str) -> _Node:
    """gqlparser's own UnmarshalJSON: exact keys only (null is the empty struct)."""
    if value is None:
        return _Node(go)
    if not isinstance(value, dict):
        raise _DecodeError(f"json: cannot unmarshal {_json_kind(value)} into {go}")
    node = _Node(go)
    for key in _HAND_DECODED[go]:
        if key not in value:
            continue
        if key == "Position":
            _decode(value[key], "*Position", f"{go}.Position")
        else:
            node[key] = _decode(value[key], _STRUCTS[go][key], f"Go struct field {go}.{key}")
    return node


def _decode_selections(value: Any, where: str) -> list[_Node]:
    """ast.UnmarshalSelectionSet: each item a field if it reads as one, else a fragment spread,
    else an inline fragment; an item that is none of them is dropped."""
    items = _elements(value)
    if items is None:
        raise _DecodeError(f"json: cannot unmarshal {_json_kind(value)} into {where}")
    selections = []
    for item in items:
        for go in ("Field", "FragmentSpread", "InlineFragment"):
            try:
                if go in _HAND_DECODED:
                    selections.append(_hand_decode(item, go))
                else:
                    selections.append(_decode(item, f"*{go}", go))
                break
            except _DecodeError:
                continue
    return selections


def _object_document(value: dict[str, Any], go: str) -> _Node:
    """An AST object read back into a QueryDocument or SchemaDocument."""
    try:
        return _decode_struct(value, go, go)
    except RecursionError:
        raise _DecodeError("GraphQL AST object nested too deeply") from None


# --------------------------------------------------------------------------- parsing


_NUMBER = re.compile(r"-?(?:0(?![0-9])|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _control(char: str) -> bool:
    return char < " " and char != "\t"


class _GqlparserLexer(Lexer):
    """graphql-core's lexer, reading tokens as gqlparser's lexer reads them where the two differ:
    a number needs no separator from a name after it (`1a` is `1` and `a`); no control character
    but a tab in a string or a comment; only `\\uXXXX` escapes, a surrogate half each U+FFFD;
    a block string ends at the last of three or more quotes; values as gqlparser decodes them."""

    def read_comment(self, start: int) -> Token:
        """A comment, refused when it holds a control character other than a tab."""
        token = super().read_comment(start)
        self.refuse_control(start, token.end)
        return token

    def read_number(self, start: int, first_char: str) -> Token:
        """`-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?`, whatever follows it."""
        body = self.source.body
        match = _NUMBER.match(body, start)
        if match is None or body[match.end() : match.end() + 1] in (".", "e", "E"):
            return super().read_number(start, first_char)  # an invalid number: its error
        kind = TokenKind.FLOAT if match.group(1) or match.group(2) else TokenKind.INT
        return self.create_token(kind, start, match.end(), match.group())

    def read_string(self, start: int) -> Token:
        """A string, its value decoded as gqlparser decodes it."""
        token = super().read_string(start)
        self.refuse_control(start, token.end)
        value = _string_value(self.source.body[start + 1 : token.end - 1])
        return self.create_token(TokenKind.STRING, start, token.end, value)

    def read_escaped_unicode_variable_width(self, position: int) -> EscapeSequence:
        """`\\u{...}` is not an escape gqlparser knows."""
        raise GraphQLSyntaxError(self.source, position, "Invalid character escape sequence.")

    def read_escaped_unicode_fixed_width(self, position: int) -> EscapeSequence:
        """A surrogate half stands alone (gqlparser writes U+FFFD for it)."""
        code = read_16_bit_hex_code(self.source.body, position + 2)
        if 0xD800 <= code <= 0xDFFF:
            return EscapeSequence("\ufffd", 6)
        return super().read_escaped_unicode_fixed_width(position)

    def read_block_string(self, start: int) -> Token:
        """A block string: it ends at the last quote of the first run of three or more."""
        body = self.source.body
        position = start + 3
        while position < len(body):
            char = body[position]
            if char == '"':
                run = len(body[position:]) - len(body[position:].lstrip('"'))
                if run >= 3:
                    end = position + run
                    raw = body[start + 3 : end - 3]
                    token = self.create_token(
                        TokenKind.BLOCK_STRING, start, end, _block_string_value(raw)
                    )
                    lines = re.split(r"\r\n|\r|\n", raw)
                    if len(lines) > 1:
                        self.line += len(lines) - 1
                        self.line_start = end - 3 - len(lines[-1])
                    return token
                position += run
            elif char == "\\" and body.startswith('"""', position + 1):
                position += 4
            elif char not in "\r\n" and _control(char):
                raise GraphQLSyntaxError(self.source, position, "Invalid character within String.")
            else:
                position += 1
        raise GraphQLSyntaxError(self.source, position, "Unterminated string.")

    def refuse_control(self, start: int, end: int) -> None:
        """A syntax error at the first control character other than a tab in a token."""
        body = self.source.body
        for position in range(start, end):
            if _control(body[position]):
                raise GraphQLSyntaxError(self.source, position, "Invalid character.")


class _GqlparserGrammar(Parser):
    """graphql-core's parser, reading the few things gqlparser's grammar reads differently."""

    def parse_document(self) -> gql.DocumentNode:
        """A document may be empty (gqlparser reads one without definitions)."""
        start = self._lexer.token
        return gql.DocumentNode(
            definitions=self.any(TokenKind.SOF, self.parse_definition, TokenKind.EOF),
            loc=self.loc(start),
        )

    def parse_definition(self) -> gql.DefinitionNode:
        """An empty description before `extend` is read and dropped (any other is refused)."""
        if self.peek_description() and not self._lexer.token.value:
            keyword = self._lexer.lookahead()
            if keyword.kind is TokenKind.NAME and keyword.value == "extend":
                self.advance_lexer()
        return super().parse_definition()

    def parse_enum_value_name(self) -> gql.NameNode:
        """`true`, `false` and `null` parse as enum values (schema validation refuses them)."""
        return self.parse_name()

    def parse_variable_definition(self) -> gql.VariableDefinitionNode:
        """A variable definition's directives may hold variables."""
        start = self._lexer.token
        description = self.parse_description()
        variable = self.parse_variable()
        self.expect_token(TokenKind.COLON)
        type_ = self.parse_type_reference()
        default = (
            self.parse_const_value_literal()
            if self.expect_optional_token(TokenKind.EQUALS)
            else None
        )
        return gql.VariableDefinitionNode(
            description=description,
            variable=variable,
            type=type_,
            default_value=default,
            directives=cast(
                "tuple[gql.ConstDirectiveNode, ...] | None", self.parse_directives(False)
            ),
            loc=self.loc(start),
        )

    def parse_schema_definition(self) -> gql.SchemaDefinitionNode:
        """`schema @d` needs no operation types (with braces, at least one)."""
        start = self._lexer.token
        description = self.parse_description()
        self.expect_keyword("schema")
        directives = self.parse_const_directives()
        operation_types = self.optional_many(
            TokenKind.BRACE_L, self.parse_operation_type_definition, TokenKind.BRACE_R
        )
        return gql.SchemaDefinitionNode(
            description=description,
            directives=directives,
            operation_types=operation_types or (),
            loc=self.loc(start),
        )

    def parse_input_object_type_extension(self) -> gql.InputObjectTypeExtensionNode:
        """An input object's extension may hold variables in its directives."""
        start = self._lexer.token
        self.expect_keyword("extend")
        self.expect_keyword("input")
        name = self.parse_name()
        directives = cast("tuple[gql.ConstDirectiveNode, ...] | None", self.parse_directives(False))
        fields = self.parse_input_fields_definition()
        if not (directives or fields):
            raise self.unexpected()
        return gql.InputObjectTypeExtensionNode(
            name=name, directives=directives, fields=fields, loc=self.loc(start)
        )


def _syntax_error(message: str, source: Source, offset: int) -> GraphQLBuiltinError:
    line, column = _line_column(source.body, offset)
    return GraphQLBuiltinError(f"{message} in GraphQL string at location {line}:{column}")


def _line_column(body: str, offset: int) -> tuple[int, int]:
    before = re.split(r"\r\n|\r|\n", body[:offset])
    return len(before), len(before[-1]) + 1


def _parse(text: str) -> tuple[gql.DocumentNode, Source]:
    source = Source(text)
    parser = _GqlparserGrammar(
        source,
        experimental_fragment_arguments=True,
        allow_empty_selection_sets=False,
        lexer=_GqlparserLexer(source),
    )
    try:
        return parser.parse_document(), source
    except GraphQLError as exc:
        message = exc.message.removeprefix("Syntax Error: ").removesuffix(".")
        if exc.locations:
            line, column = exc.locations[0].line, exc.locations[0].column
            message += f" in GraphQL string at location {line}:{column}"
        raise GraphQLBuiltinError(message) from None
    except RecursionError:
        raise GraphQLBuiltinError("GraphQL document nested too deeply") from None


class _Converter:
    """graphql-core's AST to gqlparser's structs, with the comments gqlparser keeps.

    gqlparser gives a node the comments just before the token it starts at (its name, its
    keyword, its `...`); a description's comments are those before the description, and a
    definition's closing comments those before its closing brace."""

    def __init__(self, source: Source) -> None:
        self.body = source.body

    def refuse(self, node: gql.Node, message: str) -> GraphQLBuiltinError:
        token = node.loc.start_token if node.loc else None
        return _syntax_error(message, Source(self.body), token.start if token else 0)

    def comments(self, token: Any) -> _Node | None:
        group = []
        previous = token.prev
        while previous is not None and previous.kind is TokenKind.COMMENT:
            group.append(_Node("Comment", Value=self.body[previous.start : previous.end]))
            previous = previous.prev
        return _Node("CommentGroup", List=group[::-1]) if group else None

    def start(self, node: gql.Node) -> Any:
        assert node.loc is not None
        return node.loc.start_token

    # ---- shared

    def string(self, token: Any) -> str:
        if token.value is None:  # the lexer refuses an escape gqlparser does not know
            raise _syntax_error("Invalid character escape sequence", Source(self.body), token.start)
        return str(token.value)

    def value(self, node: gql.ValueNode) -> _Node:
        if isinstance(node, gql.VariableNode):
            return _Node("Value", Raw=node.name.value, Kind=VARIABLE)
        if isinstance(node, gql.ListValueNode):
            children = [_Node("ChildValue", Value=self.value(item)) for item in node.values]
            return _Node(
                "Value", Children=children, Kind=LIST, Comment=self.comments(self.start(node))
            )
        if isinstance(node, gql.ObjectValueNode):
            children = [
                _Node(
                    "ChildValue",
                    Name=field.name.value,
                    Value=self.value(field.value),
                    Comment=self.comments(self.start(field)),
                )
                for field in node.fields
            ]
            return _Node(
                "Value", Children=children, Kind=OBJECT, Comment=self.comments(self.start(node))
            )
        if isinstance(node, gql.StringValueNode):
            token = self.start(node)
            kind = BLOCK if token.kind is TokenKind.BLOCK_STRING else STRING
            return _Node("Value", Raw=self.string(token), Kind=kind)
        kinds = {
            gql.IntValueNode: INT,
            gql.FloatValueNode: FLOAT,
            gql.BooleanValueNode: BOOLEAN,
            gql.NullValueNode: NULL,
            gql.EnumValueNode: ENUM,
        }
        return _Node("Value", Raw=self.start(node).value, Kind=kinds[type(node)])

    def type(self, node: gql.TypeNode) -> _Node:
        if isinstance(node, gql.NonNullTypeNode):
            inner = self.type(node.type)
            inner["NonNull"] = True
            return inner
        if isinstance(node, gql.ListTypeNode):
            return _Node("Type", Elem=self.type(node.type))
        assert isinstance(node, gql.NamedTypeNode)
        return _Node("Type", NamedType=node.name.value)

    def directives(self, nodes: Iterable[gql.DirectiveNode] | None) -> list[_Node]:
        return [
            _Node("Directive", Name=node.name.value, Arguments=self.arguments(node.arguments))
            for node in nodes or ()
        ]

    def arguments(self, nodes: Iterable[gql.ArgumentNode] | None) -> list[_Node]:
        return [
            _Node(
                "Argument",
                Name=node.name.value,
                Value=self.value(node.value),
                Comment=self.comments(self.start(node)),
            )
            for node in nodes or ()
        ]

    # ---- executable documents

    def query_document(self, doc: gql.DocumentNode) -> _Node:
        out = _Node("QueryDocument")
        for definition in doc.definitions:
            if isinstance(definition, gql.OperationDefinitionNode):
                out["Operations"].append(self.operation(definition))
            elif isinstance(definition, gql.FragmentDefinitionNode):
                out["Fragments"].append(self.fragment(definition))
            else:
                raise self.refuse(definition, f"Unexpected Name {self.start(definition).value!r}")
        return out

    def operation(self, node: gql.OperationDefinitionNode) -> _Node:
        if node.description is not None:
            raise self.refuse(node, "Unexpected String")
        token = self.start(node)
        return _Node(
            "OperationDefinition",
            Operation=node.operation.value,
            Name=node.name.value if node.name else "",
            VariableDefinitions=self.variables(node.variable_definitions),
            Directives=self.directives(node.directives),
            SelectionSet=self.selections(node.selection_set),
            # gqlparser reads the comments of a `{ ... }` operation after its selections
            Comment=None if token.kind is TokenKind.BRACE_L else self.comments(token),
        )

    def variables(self, nodes: Iterable[gql.VariableDefinitionNode] | None) -> list[_Node]:
        out = []
        for node in nodes or ():
            if node.description is not None:
                raise self.refuse(node, "Unexpected String")
            out.append(
                _Node(
                    "VariableDefinition",
                    Variable=node.variable.name.value,
                    Type=self.type(node.type),
                    DefaultValue=self.value(node.default_value) if node.default_value else None,
                    Directives=self.directives(node.directives),
                    Comment=self.comments(self.start(node)),
                )
            )
        return out

    def selections(self, node: gql.SelectionSetNode | None) -> list[_Node]:
        out = []
        for selection in node.selections if node else ():
            comment = self.comments(self.start(selection))
            if isinstance(selection, gql.FieldNode):
                out.append(
                    _Node(
                        "Field",
                        Alias=(selection.alias or selection.name).value,
                        Name=selection.name.value,
                        Arguments=self.arguments(selection.arguments),
                        Directives=self.directives(selection.directives),
                        SelectionSet=self.selections(selection.selection_set),
                        Comment=comment,
                    )
                )
            elif isinstance(selection, gql.FragmentSpreadNode):
                if selection.arguments:
                    raise self.refuse(selection, "Expected {, found (")
                out.append(
                    _Node(
                        "FragmentSpread",
                        Name=selection.name.value,
                        Directives=self.directives(selection.directives),
                        Comment=comment,
                    )
                )
            else:
                assert isinstance(selection, gql.InlineFragmentNode)
                condition = selection.type_condition
                out.append(
                    _Node(
                        "InlineFragment",
                        TypeCondition=condition.name.value if condition else "",
                        Directives=self.directives(selection.directives),
                        SelectionSet=self.selections(selection.selection_set),
                        Comment=comment,
                    )
                )
        return out

    def fragment(self, node: gql.FragmentDefinitionNode) -> _Node:
        if node.description is not None:
            raise self.refuse(node, "Unexpected String")
        return _Node(
            "FragmentDefinition",
            Name=node.name.value,
            VariableDefinition=self.variables(node.variable_definitions),
            TypeCondition=node.type_condition.name.value,
            Directives=self.directives(node.directives),
            SelectionSet=self.selections(node.selection_set),
            Comment=self.comments(self.start(node)),
        )

    # ---- schema documents

    def schema_document(self, doc: gql.DocumentNode) -> _Node:
        out = _Node("SchemaDocument")
        for node in doc.definitions:
            if isinstance(node, gql.SchemaDefinitionNode):
                out["Schema"].append(self.schema(node))
            elif isinstance(node, gql.SchemaExtensionNode):
                out["SchemaExtension"].append(self.schema(node))
            elif isinstance(node, gql.DirectiveDefinitionNode):
                out["Directives"].append(self.directive_definition(node))
            elif isinstance(node, gql.TypeDefinitionNode):
                out["Definitions"].append(self.definition(node))
            elif isinstance(node, gql.TypeExtensionNode):
                out["Extensions"].append(self.definition(node))
            else:  # an operation, a fragment or `extend directive`
                raise self.refuse(node, "Unexpected Name")
        assert doc.loc is not None
        out["Comment"] = self.comments(doc.loc.end_token)  # those before the end of the file
        return out

    def described(self, node: Any) -> dict[str, Any]:
        """A definition's description and its comments: before the description, and before its
        keyword (`type`, `schema`, `extend`...) after the description."""
        start = self.start(node)
        if getattr(node, "description", None) is None:
            return {"AfterDescriptionComment": self.comments(start)}
        keyword = start.next
        while keyword.kind is TokenKind.COMMENT:
            keyword = keyword.next
        return {
            "Description": self.string(start),
            "BeforeDescriptionComment": self.comments(start),
            "AfterDescriptionComment": self.comments(keyword),
        }

    def member_described(self, node: Any) -> dict[str, Any]:
        """A field's, argument's or enum value's description and comments (gqlparser keeps
        the description's comments only for a non-empty description)."""
        out: dict[str, Any] = {"AfterDescriptionComment": self.comments(self.start(node.name))}
        if node.description is not None:
            text = self.string(self.start(node.description))
            if text:
                out["Description"] = text
                out["BeforeDescriptionComment"] = self.comments(self.start(node.description))
        return out

    def closing(self, node: Any, block: Any) -> _Node | None:
        """The comments before a definition's closing brace, when it has a block."""
        assert node.loc is not None
        return self.comments(node.loc.end_token) if block else None

    def schema(self, node: gql.SchemaDefinitionNode | gql.SchemaExtensionNode) -> _Node:
        operation_types = [
            _Node(
                "OperationTypeDefinition",
                Operation=op.operation.value,
                Type=op.type.name.value,
                Comment=self.comments(self.start(op)),
            )
            for op in node.operation_types or ()
        ]
        return _Node(
            "SchemaDefinition",
            Directives=self.directives(node.directives),
            OperationTypes=operation_types,
            EndOfDefinitionComment=self.closing(node, operation_types),
            **self.described(node),
        )

    def directive_definition(self, node: gql.DirectiveDefinitionNode) -> _Node:
        if node.directives:
            raise self.refuse(node.directives[0], 'Expected Name "on", found @')
        return _Node(
            "DirectiveDefinition",
            Name=node.name.value,
            Arguments=self.argument_definitions(node.arguments),
            Locations=[location.value for location in node.locations],
            IsRepeatable=node.repeatable,
            **self.described(node),
        )

    def argument_definitions(
        self, nodes: Iterable[gql.InputValueDefinitionNode] | None, go: str = "ArgumentDefinition"
    ) -> list[_Node]:
        return [
            _Node(
                go,
                Name=node.name.value,
                Type=self.type(node.type),
                DefaultValue=self.value(node.default_value) if node.default_value else None,
                Directives=self.directives(node.directives),
                **self.member_described(node),
            )
            for node in nodes or ()
        ]

    def definition(self, node: Any) -> _Node:
        kind = {
            "scalar": _SCALAR, "object": _OBJECT, "interface": _INTERFACE, "union": _UNION,
            "enum": _ENUM, "input_object": _INPUT,
        }[node.kind.removesuffix("_type_definition").removesuffix("_type_extension")]  # fmt: skip
        if isinstance(node, gql.InterfaceTypeExtensionNode) and node.interfaces:
            raise self.refuse(node.interfaces[0], 'Unexpected Name "implements"')
        out = _Node("Definition", Kind=kind, Name=node.name.value, **self.described(node))
        out["Directives"] = self.directives(node.directives)
        out["Interfaces"] = [named.name.value for named in getattr(node, "interfaces", None) or ()]
        out["Types"] = [named.name.value for named in getattr(node, "types", None) or ()]
        fields = getattr(node, "fields", None) or ()
        if kind == _INPUT:
            out["Fields"] = self.argument_definitions(fields, "FieldDefinition")
        else:
            out["Fields"] = [
                _Node(
                    "FieldDefinition",
                    Name=field.name.value,
                    Arguments=self.argument_definitions(field.arguments),
                    Type=self.type(field.type),
                    Directives=self.directives(field.directives),
                    **self.member_described(field),
                )
                for field in fields
            ]
        values = getattr(node, "values", None) or ()
        out["EnumValues"] = [
            _Node(
                "EnumValueDefinition",
                Name=value.name.value,
                Directives=self.directives(value.directives),
                **self.member_described(value),
            )
            for value in values
        ]
        if kind != _UNION and kind != _SCALAR:
            out["EndOfDefinitionComment"] = self.closing(node, fields or values)
        return out


def _string_value(raw: str) -> str | None:
    """A quoted string's value as gqlparser's lexer decodes it (None: a bad escape): only
    `\\uXXXX`, whose surrogate halves are each U+FFFD as Go writes them."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = raw[i + 1 : i + 2]
        if escape == "u":
            digits = raw[i + 2 : i + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                return None
            code = int(digits, 16)
            out.append("\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code))
            i += 6
            continue
        simple = {'"': '"', "/": "/", "\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r"}
        simple["t"] = "\t"
        if escape not in simple:
            return None
        out.append(simple[escape])
        i += 2
    return "".join(out)


def _block_string_value(raw: str) -> str:
    """A block string's value as gqlparser computes it: `\\\"""` unescaped, line ends made
    `\\n`, the common indentation of the lines that are not blank (the first line counts)
    removed from every line but the first, and blank lines trimmed at both ends."""
    text = re.sub(r"\r\n|\r", "\n", raw.replace('\\"""', '"""'))
    lines = text.split("\n")

    def indent(line: str) -> int | None:  # None: spaces and tabs only
        stripped = len(line) - len(line.lstrip(" \t"))
        return None if stripped == len(line) else stripped

    indents = [n for n in map(indent, lines) if n is not None]
    if indents:
        common = min(indents)
        lines[1:] = ["" if len(line) < common else line[common:] for line in lines[1:]]
    while lines and indent(lines[0]) is None:
        lines.pop(0)
    while lines and indent(lines[-1]) is None:
        lines.pop()
    return "\n".join(lines)


def parse_query_document(text: str) -> _Node:
    """A query string as gqlparser's ParseQuery reads it."""
    doc, source = _parse(text)
    return _Converter(source).query_document(doc)


def parse_schema_document(text: str) -> _Node:
    """A schema string as gqlparser's ParseSchema reads it (not validated)."""
    doc, source = _parse(text)
    return _Converter(source).schema_document(doc)


# --------------------------------------------------------------------------- schema validation

# What gqlparser merges before every schema it validates (its prelude): the built-in scalars
# and directives and the introspection types, as gqlparser 2.5.58 declares them. Descriptions
# are left out: nothing reads them.
_PRELUDE = """
scalar Int
scalar Float
scalar String
scalar Boolean
scalar ID
directive @defer(if: Boolean = true, label: String) on FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @deprecated(reason: String = "No longer supported")
  on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE
directive @specifiedBy(url: String!) on SCALAR
directive @oneOf on INPUT_OBJECT
type __Schema {
  description: String
  types: [__Type!]!
  queryType: __Type!
  mutationType: __Type
  subscriptionType: __Type
  directives: [__Directive!]!
}
type __Type {
  kind: __TypeKind!
  name: String
  description: String
  specifiedByURL: String
  fields(includeDeprecated: Boolean = false): [__Field!]
  interfaces: [__Type!]
  possibleTypes: [__Type!]
  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!]
  ofType: __Type
  isOneOf: Boolean
}
enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }
type __Field {
  name: String!
  description: String
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type!
  isDeprecated: Boolean!
  deprecationReason: String
}
type __InputValue {
  name: String!
  description: String
  type: __Type!
  defaultValue: String
  isDeprecated: Boolean!
  deprecationReason: String
}
type __EnumValue {
  name: String!
  description: String
  isDeprecated: Boolean!
  deprecationReason: String
}
type __Directive {
  name: String!
  description: String
  isRepeatable: Boolean!
  locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]!
}
enum __DirectiveLocation {
  QUERY MUTATION SUBSCRIPTION FIELD FRAGMENT_DEFINITION FRAGMENT_SPREAD INLINE_FRAGMENT
  VARIABLE_DEFINITION SCHEMA SCALAR OBJECT FIELD_DEFINITION ARGUMENT_DEFINITION INTERFACE UNION
  ENUM ENUM_VALUE INPUT_OBJECT INPUT_FIELD_DEFINITION
}
"""

# Directives a schema may declare again (the last declaration is kept); any other twice is an error.
_REDECLARABLE = frozenset({"include", "skip", "deprecated", "specifiedBy", "defer", "oneOf"})
_NOT_ENUM_VALUES = frozenset({"true", "false", "null"})


@cache
def _prelude() -> _Node:
    doc = parse_schema_document(_PRELUDE)
    for definition in doc["Definitions"]:
        definition["BuiltIn"] = True
    return doc


def _for_name(nodes: Iterable[Any], name: str, key: str = "Name") -> Any:
    """gqlparser's ForName: the first node of that name."""
    return next((node for node in nodes if node[key] == name), None)


def _type_name(typ: _Node) -> str:
    """ast.Type.Name: the named type inside any lists."""
    while not typ["NamedType"]:
        if typ["Elem"] is None:
            raise _Invalid("a type without a name")
        typ = typ["Elem"]
    return str(typ["NamedType"])


def _type_string(typ: _Node) -> str:
    bang = "!" if typ["NonNull"] else ""
    if typ["NamedType"]:
        return f"{typ['NamedType']}{bang}"
    return f"[{_type_string(typ['Elem'])}]{bang}"


def _is_input(definition: _Node) -> bool:
    return definition["Kind"] in (_SCALAR, _ENUM, _INPUT)


def _is_composite(definition: _Node) -> bool:
    return definition["Kind"] in (_OBJECT, _INTERFACE, _UNION)


def _is_leaf(definition: _Node) -> bool:
    return definition["Kind"] in (_ENUM, _SCALAR)


class _Schema:
    """ast.Schema: the validated schema, the prelude merged in."""

    def __init__(self) -> None:
        self.query: _Node | None = None
        self.mutation: _Node | None = None
        self.subscription: _Node | None = None
        self.types: dict[str, _Node] = {}
        self.directives: dict[str, _Node] = {}
        self.possible_types: dict[str, list[Any]] = {}
        self.implements: dict[str, list[Any]] = {}

    def root(self, operation: str) -> _Node | None:
        """The root type of an operation type (`""` is a query)."""
        if operation in ("query", ""):
            return self.query
        if operation == "mutation":
            return self.mutation
        if operation == "subscription":
            return self.subscription
        raise _Invalid(f'got unknown operation type "{operation}"')  # gqlparser panics

    def set_root(self, operation: str, definition: _Node) -> None:
        """Set a root type from a schema definition or extension (another name: no root)."""
        if operation == "query":
            self.query = definition
        elif operation == "mutation":
            self.mutation = definition
        elif operation == "subscription":
            self.subscription = definition


def _copy_definition(definition: _Node) -> _Node:
    """A definition validation may extend without changing the document it came from."""
    copy = _Node(definition.go, **definition.fields)
    for name in ("Directives", "Interfaces", "Fields", "Types", "EnumValues"):
        copy[name] = list(definition[name])
    return copy


def validate_schema(doc: _Node) -> _Schema:
    """gqlparser's ValidateSchemaDocument of the prelude merged with `doc` (_Invalid if not)."""
    try:
        return _SchemaValidator(doc).schema
    except (TypeError, AttributeError, KeyError, RecursionError):  # gqlparser panics
        raise _Invalid("GraphQL schema cannot be validated") from None


class _SchemaValidator:
    def __init__(self, doc: _Node) -> None:
        prelude = _prelude()
        self.schema = schema = _Schema()
        definitions = [_copy_definition(d) for d in prelude["Definitions"] + doc["Definitions"]]
        directives = prelude["Directives"] + doc["Directives"]
        for definition in definitions:
            if definition["Name"] in schema.types:
                raise _Invalid(f"Cannot redeclare type {definition['Name']}.")
            schema.types[definition["Name"]] = definition
        every = list(definitions)
        for extension in doc["Extensions"]:
            base = schema.types.get(extension["Name"])
            if base is None:
                base = _Node("Definition", Kind=extension["Kind"], Name=extension["Name"])
                schema.types[base["Name"]] = base
                every.append(base)
            if base["Kind"] != extension["Kind"]:
                raise _Invalid(f"Cannot extend type {extension['Name']}: not a {base['Kind']}.")
            for name in ("Directives", "Interfaces", "Fields", "Types", "EnumValues"):
                base[name] = base[name] + extension[name]
        for definition in every:
            kind, name = definition["Kind"], definition["Name"]
            if kind == _UNION:
                for member in definition["Types"]:
                    schema.possible_types.setdefault(name, []).append(schema.types.get(member))
                    schema.implements.setdefault(member, []).append(definition)
            elif kind in (_INPUT, _OBJECT, _INTERFACE):
                for interface in definition["Interfaces"]:
                    schema.possible_types.setdefault(interface, []).append(definition)
                    schema.implements.setdefault(name, []).append(schema.types.get(interface))
                if kind != _INTERFACE:
                    schema.possible_types.setdefault(name, []).append(definition)
        for directive in directives:
            if directive["Name"] in schema.directives and directive["Name"] not in _REDECLARABLE:
                raise _Invalid(f"Cannot redeclare directive {directive['Name']}.")
            schema.directives[directive["Name"]] = directive
        if len(doc["Schema"]) > 1:
            raise _Invalid("Cannot have multiple schema entry points.")
        for entry in doc["Schema"] + doc["SchemaExtension"]:
            for operation_type in entry["OperationTypes"]:
                root = schema.types.get(operation_type["Type"])
                if root is None:
                    raise _Invalid(f"Schema root type {operation_type['Type']} does not exist.")
                schema.set_root(operation_type["Operation"], root)
            self.directives(entry["Directives"], "SCHEMA", None, single=True)
        for name in sorted(schema.types):
            self.definition(schema.types[name])
        self.input_cycles()
        for name in sorted(schema.directives):
            directive = schema.directives[name]
            _check_name(directive["Name"])
            self.arguments(directive["Arguments"], directive)
        if not doc["Schema"]:
            schema.query = schema.query or schema.types.get("Query")
            schema.mutation = schema.mutation or schema.types.get("Mutation")
            schema.subscription = schema.subscription or schema.types.get("Subscription")
        if schema.query is not None:
            schema.query["Fields"] = [
                *schema.query["Fields"],
                _Node("FieldDefinition", Name="__schema", Type=_named("__Schema", non_null=True)),
                _Node(
                    "FieldDefinition",
                    Name="__type",
                    Type=_named("__Type"),
                    Arguments=[
                        _Node("ArgumentDefinition", Name="name", Type=_named("String", True))
                    ],
                ),
            ]

    def type_ref(self, typ: _Node) -> _Node:
        definition = self.schema.types.get(_type_name(typ))
        if definition is None:
            raise _Invalid(f"Undefined type {_type_name(typ)}.")
        return definition

    def definition(self, definition: _Node) -> None:
        kind = definition["Kind"]
        types = self.schema.types
        for field in definition["Fields"]:
            _check_name(field["Name"])
            self.type_ref(field["Type"])
            self.arguments(field["Arguments"], None)
            location = "INPUT_FIELD_DEFINITION" if kind == _INPUT else "FIELD_DEFINITION"
            self.directives(field["Directives"], location, None, single=True)
        for member in definition["Types"]:
            member_type = types.get(member)
            if member_type is None or member_type["Kind"] != _OBJECT:
                raise _Invalid(f'{kind} type "{member}" must be OBJECT.')
        for interface in definition["Interfaces"]:
            self.implements(definition, interface)
        if kind in (_OBJECT, _INTERFACE, _INPUT):
            if not definition["Fields"]:
                raise _Invalid(f"{kind} {definition['Name']}: must define one or more fields.")
            allowed = (
                (_SCALAR, _ENUM, _INPUT)
                if kind == _INPUT
                else (_SCALAR, _OBJECT, _INTERFACE, _UNION, _ENUM)
            )
            for field in definition["Fields"]:
                field_type = types.get(_type_name(field["Type"]))
                if field_type is not None and field_type["Kind"] not in allowed:
                    raise _Invalid(f"{kind} {definition['Name']}: field must be one of {allowed}.")
        elif kind == _ENUM:
            if not definition["EnumValues"]:
                raise _Invalid(f"ENUM {definition['Name']}: must define one or more unique values.")
            for value in definition["EnumValues"]:
                if value["Name"] in _NOT_ENUM_VALUES:
                    raise _Invalid(f"ENUM {definition['Name']}: non-enum value {value['Name']}.")
                self.directives(value["Directives"], "ENUM_VALUE", None, single=True)
        for key, what in (("Fields", "Field"), ("EnumValues", "Enum value")):
            names = [member["Name"] for member in definition[key]]
            if len(set(names)) != len(names):
                raise _Invalid(f"{what} of {definition['Name']} can only be defined once.")
        if len(set(definition["Types"])) != len(definition["Types"]):
            raise _Invalid(f"Union type {definition['Name']} can only include a type once.")
        if not definition["BuiltIn"]:
            _check_name(definition["Name"])
        # a type's directives are merged from its definition and extensions: not unique
        self.directives(definition["Directives"], kind, None, single=False)

    def arguments(self, arguments: list[_Node], directive: _Node | None) -> None:
        for argument in arguments:
            _check_name(argument["Name"])
            if not _is_input(self.type_ref(argument["Type"])):
                raise _Invalid(f"cannot use {_type_string(argument['Type'])} as an argument")
            self.directives(argument["Directives"], "ARGUMENT_DEFINITION", directive, single=True)

    def directives(
        self, directives: list[_Node], location: str, current: _Node | None, *, single: bool
    ) -> None:
        seen: set[str] = set()
        for directive in directives:
            name = directive["Name"]
            _check_name(name)
            if current is not None and name == current["Name"]:
                raise _Invalid(f"Directive {name} cannot refer to itself.")
            definition = self.schema.directives.get(name)
            if definition is None:
                raise _Invalid(f"Undefined directive {name}.")
            if single:
                if name in seen and not definition["IsRepeatable"]:
                    raise _Invalid(f"The directive {name} can only be used once at this location.")
                seen.add(name)
            if location not in definition["Locations"]:
                raise _Invalid(f"Directive {name} is not applicable on {location}.")
            for argument in directive["Arguments"]:
                if _for_name(definition["Arguments"], argument["Name"]) is None:
                    raise _Invalid(f"Undefined argument {argument['Name']} for directive {name}.")
            for wanted in definition["Arguments"]:
                if wanted["Type"]["NonNull"] and wanted["DefaultValue"] is None:
                    given = _for_name(directive["Arguments"], wanted["Name"])
                    if given is None or given["Value"]["Kind"] == NULL:
                        raise _Invalid(
                            f"Argument {wanted['Name']} for directive {name} cannot be null."
                        )
            directive["Definition"] = definition

    def implements(self, definition: _Node, interface_name: str) -> None:
        name = definition["Name"]
        interface = self.schema.types.get(interface_name)
        if interface is None:
            raise _Invalid(f'Undefined type "{interface_name}".')
        if interface["Kind"] != _INTERFACE:
            raise _Invalid(f'"{interface_name}" is a non interface type {interface["Kind"]}.')
        for wanted in interface["Fields"]:
            found = _for_name(definition["Fields"], wanted["Name"])
            if found is None:
                raise _Invalid(f"{name} lacks the field {wanted['Name']} of {interface_name}.")
            if not self.covariant(wanted["Type"], found["Type"]):
                raise _Invalid(f"{name}.{wanted['Name']} must be of {interface_name}'s type.")
            for wanted_argument in wanted["Arguments"]:
                found_argument = _for_name(found["Arguments"], wanted_argument["Name"])
                if found_argument is None or not _compatible(
                    wanted_argument["Type"], found_argument["Type"]
                ):
                    raise _Invalid(
                        f"{name}.{wanted['Name']} must take {interface_name}'s arguments."
                    )
            for extra in found["Arguments"]:
                if (
                    _for_name(wanted["Arguments"], extra["Name"]) is None
                    and extra["Type"]["NonNull"]
                    and extra["DefaultValue"] is None
                ):
                    raise _Invalid(f"{name}.{wanted['Name']}({extra['Name']}:) must be optional.")
        for transitive in interface["Interfaces"]:
            if transitive not in definition["Interfaces"]:
                raise _Invalid(f"Type {name} must implement {transitive} as {interface_name} does.")

    def covariant(self, wanted: _Node, actual: _Node) -> bool:
        """gqlparser's isCovariant: may a field of type `actual` stand for one of `wanted`?"""
        if wanted["NonNull"] and not actual["NonNull"]:
            return False
        if wanted["NamedType"]:
            if wanted["NamedType"] == actual["NamedType"]:
                return True
            possible = self.schema.possible_types.get(wanted["NamedType"], [])
            return any(p["Name"] == actual["NamedType"] for p in possible)
        if wanted["Elem"] is not None and actual["Elem"] is None:
            return False
        return self.covariant(wanted["Elem"], actual["Elem"])

    def input_cycles(self) -> None:
        """Input objects may not hold themselves through non-null, non-list fields."""
        types = self.schema.types
        visited: set[str] = set()
        on_path: set[str] = set()

        def visit(definition: _Node) -> None:
            if definition["Name"] in visited:
                return
            visited.add(definition["Name"])
            on_path.add(definition["Name"])
            for field in definition["Fields"]:
                typ = field["Type"]
                if not typ["NonNull"] or not typ["NamedType"]:
                    continue
                field_type = types.get(typ["NamedType"])
                if field_type is None or field_type["Kind"] != _INPUT:
                    continue
                if field_type["Name"] in on_path:
                    raise _Invalid(
                        f'Cannot reference Input Object "{field_type["Name"]}" within itself.'
                    )
                visit(field_type)
            on_path.discard(definition["Name"])

        for name in sorted(types):
            if types[name]["Kind"] == _INPUT:
                visit(types[name])


def _named(name: str, non_null: bool = False) -> _Node:
    return _Node("Type", NamedType=name, NonNull=non_null)


def _check_name(name: str) -> None:
    if name.startswith("__"):
        raise _Invalid(f'Name "{name}" must not begin with "__" (reserved for introspection).')


def _compatible(typ: _Node, other: _Node) -> bool:
    """ast.Type.IsCompatible, as gqlparser defines it."""
    if typ["NamedType"] != other["NamedType"]:
        return False
    if typ["Elem"] is not None and (
        other["Elem"] is None or not _compatible(typ["Elem"], other["Elem"])
    ):
        return False
    return bool(typ["NonNull"]) if other["NonNull"] else True


# --------------------------------------------------------------------------- query validation


def validate_query(schema: _Schema, doc: _Node) -> None:
    """gqlparser's default validation rules on `doc` (_Invalid at the first error). The walk
    records definitions, expected types and variable use on the document's nodes."""
    try:
        _QueryValidator(schema, doc).walk()
    except (TypeError, AttributeError, KeyError, RecursionError):  # gqlparser panics
        raise _Invalid("GraphQL query cannot be validated") from None


def _leaf_value(value: _Node | None) -> None:
    """ast.Value.Value without variables: only whether it errs (a number Go cannot parse)."""
    if value is None:
        return
    kind, raw = value["Kind"], value["Raw"]
    if kind == VARIABLE:
        definition = value["VariableDefinition"]
        if definition is not None and definition["DefaultValue"] is not None:
            _leaf_value(definition["DefaultValue"])
    elif kind == INT:
        if not re.fullmatch(r"[+-]?[0-9]+", raw) or not -(1 << 63) <= int(raw) < 1 << 63:
            raise _Invalid(f"Int cannot represent non-integer value: {raw}")
    elif kind == FLOAT:
        if not _go_float(raw):
            raise _Invalid(f"Float cannot represent non numeric value: {raw}")
    elif kind == BOOLEAN:
        if raw not in _GO_BOOLS:
            raise _Invalid(f"Boolean cannot represent a non boolean value: {raw}")
    elif kind == LIST:
        for child in value["Children"]:
            _leaf_value(child["Value"])
    elif kind == OBJECT:
        for child in value["Children"]:
            inner = child["Value"]
            if inner["Kind"] == VARIABLE and (
                inner["VariableDefinition"] is None
                or inner["VariableDefinition"]["DefaultValue"] is None
            ):
                continue  # an unset variable: absent
            _leaf_value(inner)
    elif kind not in (STRING, BLOCK, NULL, ENUM):
        raise _Invalid(f"unknown value kind {kind}")  # gqlparser panics


_GO_BOOLS = frozenset(
    {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
)
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9](?:_?[0-9])*)?\.?[0-9]*(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.I
)


def _go_float(raw: str) -> bool:
    """Whether strconv.ParseFloat(raw, 64) succeeds (decimal forms; a value out of range errs)."""
    if not _GO_FLOAT.fullmatch(raw) or not re.search(r"[0-9]|inf|nan", raw, re.I):
        return False
    try:
        number = float(raw.replace("_", ""))
    except ValueError:
        return False
    return not math.isinf(number) or "inf" in raw.lower()


class _FieldsMap:
    """The fields of a selection set (inline fragments flattened) by response name, in order,
    and its fragment spreads."""

    def __init__(self, selections: list[_Node]) -> None:
        self.fields: dict[str, list[_Node]] = {}
        self.spreads: list[_Node] = []
        self.collect(selections)

    def collect(self, selections: list[_Node]) -> None:
        for selection in selections:
            if selection.go == "Field":
                name = selection["Alias"] or selection["Name"]
                self.fields.setdefault(name, []).append(selection)
            elif selection.go == "InlineFragment":
                self.collect(selection["SelectionSet"])
            else:
                self.spreads.append(selection)

    def same(self, other: _FieldsMap) -> bool:
        """Whether both hold the very same fields (reflect.DeepEqual on fields that each have a
        position: the same nodes)."""
        if list(self.fields) != list(other.fields):
            return False
        return all(
            len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs, strict=True))
            for mine, theirs in zip(self.fields.values(), other.fields.values(), strict=True)
        )


class _OverlappingFields:
    """OverlappingFieldsCanBeMerged as gqlparser runs it; `_Invalid` at the first conflict.

    Its memory is gqlparser's: fragment pairs compared (with whether under mutually exclusive
    parents) for the whole validation, and the fragments compared with a set of fields, which
    comparing two fields' sub-selections starts afresh."""

    def __init__(self, schema: _Schema) -> None:
        self.schema = schema
        self.pairs: dict[str, dict[str, bool]] = {}
        self.compared: set[str] = set()
        self.steps = 0

    def within(self, selections: list[_Node]) -> None:
        if not selections:
            return
        fields = _FieldsMap(selections)
        for same_name in fields.fields.values():
            for i, a in enumerate(same_name):
                for b in same_name[i + 1 :]:
                    self.conflict(False, a, b)
        self.compared = set()
        for i, spread in enumerate(fields.spreads):
            self.fields_and_fragment(False, fields, spread)
            for other in fields.spreads[i + 1 :]:
                self.fragments(False, spread, other)

    def fields_and_fragment(self, exclusive: bool, fields: _FieldsMap, spread: _Node) -> None:
        if spread["Name"] in self.compared:
            return
        self.compared.add(spread["Name"])
        if spread["Definition"] is None:
            return
        theirs = _FieldsMap(spread["Definition"]["SelectionSet"])
        if fields.same(theirs):
            return
        self.between(exclusive, fields, theirs)
        for nested in theirs.spreads:
            if nested["Name"] != spread["Name"]:
                self.fields_and_fragment(exclusive, fields, nested)

    def fragments(self, exclusive: bool, a: _Node, b: _Node) -> None:
        if a["Name"] == b["Name"]:
            return
        known = self.pairs.get(a["Name"], {}).get(b["Name"])
        if known is not None and (exclusive or not known):
            return
        self.pairs.setdefault(a["Name"], {})[b["Name"]] = exclusive
        self.pairs.setdefault(b["Name"], {})[a["Name"]] = exclusive
        if a["Definition"] is None or b["Definition"] is None:
            return
        fields_a = _FieldsMap(a["Definition"]["SelectionSet"])
        fields_b = _FieldsMap(b["Definition"]["SelectionSet"])
        self.between(exclusive, fields_a, fields_b)
        for nested in fields_b.spreads:
            self.fragments(exclusive, a, nested)
        for nested in fields_a.spreads:
            self.fragments(exclusive, nested, b)

    def sub_selections(self, exclusive: bool, set_a: list[_Node], set_b: list[_Node]) -> None:
        fields_a, fields_b = _FieldsMap(set_a), _FieldsMap(set_b)
        self.between(exclusive, fields_a, fields_b)
        for spread in fields_b.spreads:
            self.compared = set()
            self.fields_and_fragment(exclusive, fields_a, spread)
        for spread in fields_a.spreads:
            self.compared = set()
            self.fields_and_fragment(exclusive, fields_b, spread)
        for spread_a in fields_a.spreads:
            for spread_b in fields_b.spreads:
                self.fragments(exclusive, spread_a, spread_b)

    def between(self, exclusive: bool, fields_a: _FieldsMap, fields_b: _FieldsMap) -> None:
        for name, mine in fields_a.fields.items():
            for a in mine:
                for b in fields_b.fields.get(name, ()):
                    self.conflict(exclusive, a, b)

    def conflict(self, parents_exclusive: bool, a: _Node, b: _Node) -> None:
        # Fragments can make this check exponential (in OPA too): the input may be anyone's
        # (an SBOM's field), and the webhook's process must not stall on it.
        self.steps += 1
        if self.steps > MAX_OVERLAP_STEPS:
            raise TooMuchWork(
                f"the query's fields compare in more than {MAX_OVERLAP_STEPS:,} steps: refused"
            )
        parent_a, parent_b = a["ObjectDefinition"], b["ObjectDefinition"]
        if parent_a is None or parent_b is None:
            return
        definition_a, definition_b = a["Definition"], b["Definition"]
        exclusive = parents_exclusive or (
            parent_a["Name"] != parent_b["Name"]
            and parent_a["Kind"] == _OBJECT
            and parent_b["Kind"] == _OBJECT
            and definition_a is not None
            and definition_b is not None
        )
        response = a["Alias"] or a["Name"]
        if not exclusive:
            if a["Name"] != b["Name"]:
                raise _Invalid(f'Fields "{response}" conflict: different fields.')
            if not _same_arguments(a["Arguments"], b["Arguments"]):
                raise _Invalid(f'Fields "{response}" conflict: differing arguments.')
        if (
            definition_a is not None
            and definition_b is not None
            and self.types_conflict(definition_a["Type"], definition_b["Type"])
        ):
            raise _Invalid(f'Fields "{response}" conflict: conflicting types.')
        self.sub_selections(exclusive, a["SelectionSet"], b["SelectionSet"])

    def types_conflict(self, a: _Node, b: _Node) -> bool:
        if a["Elem"] is not None or b["Elem"] is not None:
            if a["Elem"] is None or b["Elem"] is None:
                return True
            return self.types_conflict(a["Elem"], b["Elem"])
        if a["NonNull"] != b["NonNull"]:
            return True
        type_a = self.schema.types[a["NamedType"]]
        type_b = self.schema.types[b["NamedType"]]
        if _is_leaf(type_a) and _is_leaf(type_b):
            return bool(type_a["Name"] != type_b["Name"])
        return False


def _same_arguments(args_a: list[_Node], args_b: list[_Node]) -> bool:
    return len(args_a) == len(args_b) and all(
        any(a["Name"] == b["Name"] and _same_value(a["Value"], b["Value"]) for b in args_b)
        for a in args_a
    )


def _same_value(a: _Node, b: _Node) -> bool:
    if a["Kind"] != b["Kind"] or a["Raw"] != b["Raw"] or len(a["Children"]) != len(b["Children"]):
        return False
    children_a, children_b = a["Children"], b["Children"]
    if a["Kind"] == OBJECT:  # an object's fields compare in name order, a list's in its own
        children_a = sorted(children_a, key=lambda child: str(child["Name"]))
        children_b = sorted(children_b, key=lambda child: str(child["Name"]))
    return all(
        x["Name"] == y["Name"] and _same_value(x["Value"], y["Value"])
        for x, y in zip(children_a, children_b, strict=True)
    )


_OPERATION_LOCATIONS = {
    "": "QUERY", "query": "QUERY", "mutation": "MUTATION", "subscription": "SUBSCRIPTION",
}  # fmt: skip
_INTROSPECTION_LISTS = frozenset({"fields", "interfaces", "possibleTypes", "inputFields"})
_SCALAR_NAMES = ("Int", "Float", "String", "Boolean", "ID")


class _QueryValidator:
    """gqlparser's walk of a query document with its 27 default rules' checks at its events."""

    def __init__(self, schema: _Schema, doc: _Node) -> None:
        self.schema = schema
        self.doc = doc
        self.operation: _Node | None = None
        self.walked_spreads: set[str] = set()
        self.overlapping = _OverlappingFields(schema)
        self.spread_names_used: set[str] = set()
        self.in_fragment_definitions = False
        self.fragment_names_seen: set[str] = set()
        self.operation_names_seen: set[str] = set()
        self.cycle_checked: set[str] = set()

    # ---- the walk (core/walk.go)

    def walk(self) -> None:
        for operation in self.doc["Operations"]:
            self.walked_spreads = set()
            self.walk_operation(operation)
        for fragment in self.doc["Fragments"]:
            self.walked_spreads = set()
            self.walk_fragment(fragment)

    def walk_operation(self, operation: _Node) -> None:
        types = self.schema.types
        self.operation = operation
        for variable in operation["VariableDefinitions"]:
            variable["Definition"] = types.get(_type_name(variable["Type"]))
            self.on_variable(variable)
            if variable["DefaultValue"] is not None:
                variable["DefaultValue"]["ExpectedType"] = variable["Type"]
                variable["DefaultValue"]["Definition"] = types.get(_type_name(variable["Type"]))
        kind = operation["Operation"]
        location = _OPERATION_LOCATIONS.get(kind, "")
        root = self.schema.root(kind) if location else None  # another kind: KnownRootType panics
        for variable in operation["VariableDefinitions"]:
            if variable["DefaultValue"] is not None:
                self.walk_value(variable["DefaultValue"])
            self.walk_directives(
                variable["Definition"], variable["Directives"], "VARIABLE_DEFINITION"
            )
        self.walk_directives(root, operation["Directives"], location)
        self.walk_selections(root, operation["SelectionSet"])
        self.on_operation(operation)
        self.operation = None

    def walk_fragment(self, fragment: _Node) -> None:
        definition = self.schema.types.get(fragment["TypeCondition"])
        fragment["Definition"] = definition
        self.walk_directives(definition, fragment["Directives"], "FRAGMENT_DEFINITION")
        self.walk_selections(definition, fragment["SelectionSet"])
        self.on_fragment(fragment)

    def walk_directives(self, parent: _Node | None, directives: list[_Node], location: str) -> None:
        for directive in directives:
            definition = self.schema.directives.get(directive["Name"])
            directive["Definition"] = definition
            directive["ParentDefinition"] = parent
            directive["Location"] = location
            for argument in directive["Arguments"]:
                wanted = (
                    None
                    if definition is None
                    else _for_name(definition["Arguments"], argument["Name"])
                )
                self.walk_argument(wanted, argument)
            self.on_directive(directive)
        self.on_directive_list(directives)

    def walk_argument(self, wanted: _Node | None, argument: _Node) -> None:
        if wanted is not None:
            self.expect(argument["Value"], wanted)
        self.walk_value(argument["Value"])

    def expect(self, value: _Node, wanted: _Node) -> None:
        """Record on a value the type of the argument or input field it is given to."""
        default = wanted["DefaultValue"]
        value["ExpectedType"] = wanted["Type"]
        value["ExpectedTypeHasDefault"] = default is not None and default["Kind"] != NULL
        value["Definition"] = self.schema.types.get(_type_name(wanted["Type"]))

    def walk_value(self, value: _Node) -> None:
        kind = value["Kind"]
        if kind == VARIABLE and self.operation is not None:
            definition = _for_name(self.operation["VariableDefinitions"], value["Raw"], "Variable")
            value["VariableDefinition"] = definition
            if definition is not None:
                definition["Used"] = True
        if kind == OBJECT:
            for child in value["Children"]:
                if value["Definition"] is not None:
                    wanted = _for_name(value["Definition"]["Fields"], child["Name"])
                    if wanted is not None:
                        self.expect(child["Value"], wanted)
                self.walk_value(child["Value"])
        if kind == LIST:
            for child in value["Children"]:
                expected = value["ExpectedType"]
                if expected is not None and expected["Elem"] is not None:
                    child["Value"]["ExpectedType"] = expected["Elem"]
                    child["Value"]["Definition"] = value["Definition"]
                self.walk_value(child["Value"])
        self.on_value(value)

    def walk_selections(self, parent: _Node | None, selections: list[_Node]) -> None:
        for selection in selections:
            if selection.go == "Field":
                self.walk_field(parent, selection)
            elif selection.go == "InlineFragment":
                selection["ObjectDefinition"] = parent
                inner = parent
                if selection["TypeCondition"]:
                    inner = self.schema.types.get(selection["TypeCondition"])
                self.walk_directives(inner, selection["Directives"], "INLINE_FRAGMENT")
                self.walk_selections(inner, selection["SelectionSet"])
                self.on_inline_fragment(selection)
            else:
                self.walk_spread(parent, selection)

    def walk_field(self, parent: _Node | None, field: _Node) -> None:
        definition = None
        if field["Name"] == "__typename":
            definition = _Node("FieldDefinition", Name="__typename", Type=_named("String"))
        elif parent is not None:
            definition = _for_name(parent["Fields"], field["Name"])
        field["Definition"] = definition
        field["ObjectDefinition"] = parent
        inner = None
        if definition is not None:
            inner = self.schema.types.get(_type_name(definition["Type"]))
        for argument in field["Arguments"]:
            wanted = None
            if definition is not None:
                wanted = _for_name(definition["Arguments"], argument["Name"])
            self.walk_argument(wanted, argument)
        self.walk_directives(inner, field["Directives"], "FIELD")
        self.walk_selections(inner, field["SelectionSet"])
        self.on_field(field)

    def walk_spread(self, parent: _Node | None, spread: _Node) -> None:
        fragment = _for_name(self.doc["Fragments"], spread["Name"])
        spread["Definition"] = fragment
        spread["ObjectDefinition"] = parent
        inner = None
        if fragment is not None:
            inner = self.schema.types.get(fragment["TypeCondition"])
        self.walk_directives(inner, spread["Directives"], "FRAGMENT_SPREAD")
        if fragment is not None and fragment["Name"] not in self.walked_spreads:
            self.walked_spreads.add(fragment["Name"])  # each fragment once per operation
            self.walk_directives(inner, fragment["Directives"], "FRAGMENT_DEFINITION")
            self.walk_selections(inner, fragment["SelectionSet"])
        self.on_fragment_spread(spread)

    # ---- the rules, at the walk's events

    def on_variable(self, variable: _Node) -> None:
        if variable["Definition"] is None:  # KnownTypeNames
            raise _Invalid(f'Unknown type "{_type_name(variable["Type"])}".')

    def on_operation(self, operation: _Node) -> None:
        name = operation["Name"]
        if self.schema.root(operation["Operation"]) is None:  # KnownRootType
            raise _Invalid(f'Schema does not support operation type "{operation["Operation"]}"')
        if not name and len(self.doc["Operations"]) > 1:  # LoneAnonymousOperation
            raise _Invalid("This anonymous operation must be the only defined operation.")
        variables = operation["VariableDefinitions"]
        for variable in variables:  # NoUnusedVariables
            if not variable["Used"]:
                raise _Invalid(f'Variable "${variable["Variable"]}" is never used.')
        self.overlapping.within(operation["SelectionSet"])
        if self.schema.subscription is not None and operation["Operation"] == "subscription":
            self.single_field_subscription(operation)
        if name in self.operation_names_seen:  # UniqueOperationNames
            raise _Invalid(f'There can be only one operation named "{name}".')
        self.operation_names_seen.add(name)
        names = [variable["Variable"] for variable in variables]
        if len(set(names)) != len(names):  # UniqueVariableNames
            raise _Invalid("There can be only one variable of a name.")
        for variable in variables:  # VariablesAreInputTypes
            if variable["Definition"] is not None and not _is_input(variable["Definition"]):
                raise _Invalid(f'Variable "${variable["Variable"]}" cannot be non-input type.')

    def single_field_subscription(self, operation: _Node) -> None:
        names: list[str] = []
        entered: set[str] = set()

        def collect(selections: list[_Node]) -> None:
            for selection in selections:
                if selection.go == "Field":
                    names.append(selection["Name"])
                elif selection.go == "InlineFragment":
                    collect(selection["SelectionSet"])
                else:
                    fragment = selection["Definition"]
                    if fragment is None:
                        return  # gqlparser stops reading this selection set here
                    if fragment["Name"] not in entered:
                        entered.add(fragment["Name"])
                        collect(fragment["SelectionSet"])

        collect(operation["SelectionSet"])
        if len(set(names)) > 1:
            raise _Invalid("A subscription must select only one top level field.")
        if any(name.startswith("__") for name in names):
            raise _Invalid("A subscription must not select an introspection top level field.")

    def on_field(self, field: _Node) -> None:
        definition, parent = field["Definition"], field["ObjectDefinition"]
        if parent is not None and definition is None:  # FieldsOnCorrectType
            raise _Invalid(f'Cannot query field "{field["Name"]}" on type "{parent["Name"]}".')
        if definition is not None:
            if parent is not None:  # KnownArgumentNames
                self.known_arguments(field["Arguments"], definition)
            self.required_arguments(field["Arguments"], definition)  # ProvidedRequiredArguments
            field_type = self.schema.types.get(_type_name(definition["Type"]))
            if field_type is not None:  # ScalarLeafs
                if _is_leaf(field_type) and field["SelectionSet"]:
                    raise _Invalid(f'Field "{field["Name"]}" must not have a selection.')
                if not _is_leaf(field_type) and not field["SelectionSet"]:
                    raise _Invalid(f'Field "{field["Name"]}" must have a selection of subfields.')
        if field["Name"] in ("__schema", "__type") and self.introspection_too_deep(field, set(), 0):
            raise _Invalid("Maximum introspection depth exceeded")  # MaxIntrospectionDepth
        if self.operation is not None:
            self.overlapping.within(field["SelectionSet"])
        self.unique_arguments(field["Arguments"])

    def known_arguments(self, arguments: list[_Node], definition: _Node) -> None:
        for argument in arguments:
            if _for_name(definition["Arguments"], argument["Name"]) is None:
                raise _Invalid(f'Unknown argument "{argument["Name"]}".')

    def required_arguments(self, arguments: list[_Node], definition: _Node) -> None:
        for wanted in definition["Arguments"]:
            required = wanted["Type"]["NonNull"] and wanted["DefaultValue"] is None
            if required and not any(arg["Name"] == wanted["Name"] for arg in arguments):
                raise _Invalid(f'Argument "{wanted["Name"]}" is required, but not provided.')

    def unique_arguments(self, arguments: list[_Node]) -> None:
        names = [argument["Name"] for argument in arguments]
        if len(set(names)) != len(names):  # UniqueArgumentNames
            raise _Invalid("There can be only one argument of a name.")

    def introspection_too_deep(self, field: _Node, entered: set[str], depth: int) -> bool:
        if field["Name"] in _INTROSPECTION_LISTS:
            depth += 1
            if depth >= 3:
                return True
        return self.introspection_selections(field["SelectionSet"], entered, depth)

    def introspection_selections(
        self, selections: list[_Node], entered: set[str], depth: int
    ) -> bool:
        for selection in selections:
            if selection.go == "Field":
                if self.introspection_too_deep(selection, entered, depth):
                    return True
            elif selection.go == "InlineFragment":
                if self.introspection_selections(selection["SelectionSet"], entered, depth):
                    return True
            elif selection["Name"] not in entered and selection["Definition"] is not None:
                entered.add(selection["Name"])
                deep = self.introspection_selections(
                    selection["Definition"]["SelectionSet"], entered, depth
                )
                entered.discard(selection["Name"])
                if deep:
                    return True
        return False

    def on_fragment(self, fragment: _Node) -> None:
        definition, condition = fragment["Definition"], fragment["TypeCondition"]
        if definition is not None and condition and not _is_composite(definition):
            raise _Invalid(f'Fragment cannot condition on non composite type "{condition}".')
        if self.schema.types.get(condition) is None:  # KnownTypeNames
            raise _Invalid(f'Unknown type "{condition}".')
        self.fragment_cycles(fragment)
        self.in_fragment_definitions = True  # NoUnusedFragments
        if fragment["Name"] not in self.spread_names_used:
            raise _Invalid(f'Fragment "{fragment["Name"]}" is never used.')
        self.overlapping.within(fragment["SelectionSet"])
        if fragment["Name"] in self.fragment_names_seen:  # UniqueFragmentNames
            raise _Invalid(f'There can be only one fragment named "{fragment["Name"]}".')
        self.fragment_names_seen.add(fragment["Name"])

    def fragment_cycles(self, fragment: _Node) -> None:
        """NoFragmentCycles, with gqlparser's memory of the fragments already followed."""
        path: dict[str, int] = {}

        def follow(fragment: _Node) -> None:
            if fragment["Name"] in self.cycle_checked:
                return
            self.cycle_checked.add(fragment["Name"])
            spreads = _spreads_in(fragment["SelectionSet"])
            if not spreads:
                return
            path[fragment["Name"]] = len(path)
            for spread in spreads:
                if spread["Name"] in path:
                    raise _Invalid(f'Cannot spread fragment "{spread["Name"]}" within itself.')
                target = _for_name(self.doc["Fragments"], spread["Name"])
                if target is not None:
                    follow(target)
            del path[fragment["Name"]]

        follow(fragment)

    def on_inline_fragment(self, fragment: _Node) -> None:
        condition = fragment["TypeCondition"]
        definition = self.schema.types.get(condition)
        if definition is not None and not _is_composite(definition):
            raise _Invalid(f'Fragment cannot condition on non composite type "{condition}".')
        if condition and definition is None:  # KnownTypeNames
            raise _Invalid(f'Unknown type "{condition}".')
        self.overlapping.within(fragment["SelectionSet"])
        self.possible_spread(fragment["ObjectDefinition"], condition)

    def on_fragment_spread(self, spread: _Node) -> None:
        fragment = spread["Definition"]
        if fragment is None:  # KnownFragmentNames
            raise _Invalid(f'Unknown fragment "{spread["Name"]}".')
        if not self.in_fragment_definitions:  # NoUnusedFragments
            self.spread_names_used.add(spread["Name"])
        self.possible_spread(spread["ObjectDefinition"], fragment["TypeCondition"])

    def possible_spread(self, parent: _Node | None, condition: str) -> None:
        """PossibleFragmentSpreads: some type the parent may be is one the fragment may be."""
        if parent is None or parent["Kind"] not in (_OBJECT, _INTERFACE, _UNION):
            return
        parents = [parent] if parent["Kind"] == _OBJECT else self.possible(parent)
        fragment_type = self.schema.types.get(condition)
        if fragment_type is None or not _is_composite(fragment_type):
            return
        names = {p["Name"] for p in parents}
        if not any(f["Name"] in names for f in self.possible(fragment_type)):
            raise _Invalid(
                f'Fragment cannot be spread here: "{parent["Name"]}" is never "{condition}".'
            )

    def possible(self, definition: _Node) -> list[_Node]:
        return self.schema.possible_types.get(definition["Name"], [])

    def on_directive(self, directive: _Node) -> None:
        definition = directive["Definition"]
        if definition is None:  # KnownDirectives
            raise _Invalid(f'Unknown directive "@{directive["Name"]}".')
        self.known_arguments(directive["Arguments"], definition)  # KnownArgumentNames
        if directive["Location"] not in definition["Locations"]:
            raise _Invalid(
                f'Directive "@{directive["Name"]}" may not be used on {directive["Location"]}.'
            )
        self.required_arguments(directive["Arguments"], definition)
        self.unique_arguments(directive["Arguments"])

    def on_directive_list(self, directives: list[_Node]) -> None:
        seen: set[str] = set()
        for directive in directives:  # UniqueDirectivesPerLocation
            definition = directive["Definition"]
            if (definition is None or not definition["IsRepeatable"]) and directive["Name"] in seen:
                raise _Invalid(f'The directive "@{directive["Name"]}" can only be used once here.')
            seen.add(directive["Name"])

    def on_value(self, value: _Node) -> None:
        kind = value["Kind"]
        if kind == VARIABLE and self.operation is not None and value["VariableDefinition"] is None:
            raise _Invalid(f'Variable "${value["Raw"]}" is not defined.')  # NoUndefinedVariables
        if kind == OBJECT:
            names = [child["Name"] for child in value["Children"]]
            if len(set(names)) != len(names):  # UniqueInputFieldNames
                raise _Invalid("There can be only one input field of a name.")
        self.values_of_correct_type(value)
        self.variable_in_allowed_position(value)

    def values_of_correct_type(self, value: _Node) -> None:
        definition, expected = value["Definition"], value["ExpectedType"]
        if definition is None or expected is None:
            return
        kind, name = value["Kind"], definition["Name"]
        wrong = _Invalid(
            f'Expected value of type "{_type_string(expected)}", found {value["Raw"]}.'
        )
        if kind == NULL and expected["NonNull"]:
            raise wrong
        if definition["Kind"] == _SCALAR and name not in _SCALAR_NAMES:
            return  # a custom scalar takes anything
        _leaf_value(value)
        if kind == LIST:
            if expected["Elem"] is None:
                raise wrong
        elif kind == INT:
            if name not in ("Int", "Float", "ID"):
                raise wrong
        elif kind == FLOAT:
            if name != "Float":
                raise wrong
        elif kind in (STRING, BLOCK):
            if definition["Kind"] == _ENUM or name not in ("String", "ID"):
                raise wrong
        elif kind == ENUM:
            if (
                definition["Kind"] != _ENUM
                or _for_name(definition["EnumValues"], value["Raw"]) is None
            ):
                raise wrong
        elif kind == BOOLEAN:
            if name != "Boolean":
                raise wrong
        elif kind == OBJECT:
            self.object_value(value, definition)
        elif kind not in (NULL, VARIABLE):
            raise _Invalid(f"unhandled value kind {kind}")  # gqlparser panics

    def object_value(self, value: _Node, definition: _Node) -> None:
        children = value["Children"]
        for field in definition["Fields"]:
            if field["Type"]["NonNull"] and field["DefaultValue"] is None:
                given = _for_name(children, field["Name"])
                if given is None or given["Value"] is None:
                    raise _Invalid(
                        f'Field "{definition["Name"]}.{field["Name"]}" was not provided.'
                    )
        for directive in definition["Directives"]:
            if directive["Name"] == "oneOf":
                if len(children) != 1:
                    raise _Invalid(
                        f'OneOf Input Object "{definition["Name"]}" must specify exactly one key.'
                    )
                only = children[0]["Value"]
                if only is None or only["Kind"] == NULL:
                    raise _Invalid(f'Field "{definition["Name"]}" must be non-null.')
        for child in children:
            if _for_name(definition["Fields"], child["Name"]) is None:
                raise _Invalid(
                    f'Field "{child["Name"]}" is not defined by type "{definition["Name"]}".'
                )

    def variable_in_allowed_position(self, value: _Node) -> None:
        kind, expected, variable = value["Kind"], value["ExpectedType"], value["VariableDefinition"]
        if (
            kind == VARIABLE
            and expected is not None
            and variable is not None
            and self.operation is not None
        ):
            non_null = expected["NonNull"]
            default = variable["DefaultValue"]
            if default is not None and default["Kind"] != NULL:
                non_null = False
            if value["ExpectedTypeHasDefault"]:
                non_null = False
            allowed = _Node(
                "Type", NamedType=expected["NamedType"], Elem=expected["Elem"], NonNull=non_null
            )
            if not _compatible(variable["Type"], allowed):
                raise _Invalid(
                    f'Variable "${value["Raw"]}" used where {_type_string(expected)} is wanted.'
                )
        definition = value["Definition"]
        if (
            kind == OBJECT
            and definition is not None
            and _for_name(definition["Directives"], "oneOf")
        ):
            for child in value["Children"]:
                inner = child["Value"]
                if (
                    inner is None
                    or inner["Kind"] != VARIABLE
                    or inner["VariableDefinition"] is None
                ):
                    continue
                if not inner["VariableDefinition"]["Type"]["NonNull"]:
                    raise _Invalid(
                        f'Variable "${inner["Raw"]}" must be non-null for a OneOf input.'
                    )


def _spreads_in(selections: list[_Node]) -> list[_Node]:
    """The fragment spreads anywhere in a selection set (not inside the fragments they name)."""
    spreads: list[_Node] = []
    pending = [selections]
    while pending:
        for selection in pending.pop():
            if selection.go == "FragmentSpread":
                spreads.append(selection)
            else:
                pending.append(selection["SelectionSet"])
    return spreads


# --------------------------------------------------------------------------- the builtins


def _query_argument(value: Any) -> _Node:
    if isinstance(value, str):
        return parse_query_document(value)
    if isinstance(value, dict):
        return _object_document(value, "QueryDocument")
    raise GraphQLBuiltinError(
        f"operand 1 must be one of {{string, object}} but got {_rego_type(value)}"
    )


def _schema_argument(value: Any, position: int = 2) -> _Node:
    if isinstance(value, str):
        return parse_schema_document(value)
    if isinstance(value, dict):
        return _object_document(value, "SchemaDocument")
    raise GraphQLBuiltinError(
        f"operand {position} must be one of {{string, object}} but got {_rego_type(value)}"
    )


def _string_argument(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLBuiltinError(f"operand 1 must be string but got {_rego_type(value)}")
    return value


def _rego_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "set" if isinstance(value, set | frozenset) else type(value).__name__


def _verified(query: Any, schema: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both ASTs when the query is valid against the schema (OPA's order: the query is read,
    then the schema, whose AST is made before it is validated; the query's AST is made before
    validation records anything on it)."""
    query_doc = _query_argument(query)
    schema_doc = _schema_argument(schema)
    schema_ast = _encode_document(schema_doc)
    validated = validate_schema(schema_doc)
    query_ast = _encode_document(query_doc)
    validate_query(validated, query_doc)
    return query_ast, schema_ast


def graphql_parse(query: Any, schema: Any) -> list[Any]:
    """graphql.parse(query, schema): [query AST, schema AST] when the query (a string or an
    AST object) is valid against the schema (likewise); an error otherwise."""
    query_ast, schema_ast = _verified(query, schema)
    return [query_ast, schema_ast]


def graphql_parse_and_verify(query: Any, schema: Any) -> list[Any]:
    """graphql.parse_and_verify(query, schema): [true, query AST, schema AST] when the query is
    valid against the schema, else [false, {}, {}] (never an error)."""
    try:
        query_ast, schema_ast = _verified(query, schema)
    except GraphQLBuiltinError:
        return [False, {}, {}]
    return [True, query_ast, schema_ast]


def graphql_parse_query(query: Any) -> dict[str, Any]:
    """graphql.parse_query(query): the AST of a query string (parsed, not validated)."""
    return _encode_document(parse_query_document(_string_argument(query)))


def graphql_parse_schema(schema: Any) -> dict[str, Any]:
    """graphql.parse_schema(schema): the AST of a schema string (parsed, not validated)."""
    return _encode_document(parse_schema_document(_string_argument(schema)))


def graphql_is_valid(query: Any, schema: Any) -> bool:
    """graphql.is_valid(query, schema): whether the query is valid against the schema (each a
    string or an AST object; anything else is false, not an error)."""
    try:
        validate_query(validate_schema(_schema_argument(schema)), _query_argument(query))
    except GraphQLBuiltinError:
        return False
    return True


def graphql_schema_is_valid(schema: Any) -> bool:
    """graphql.schema_is_valid(schema): whether the schema (a string or an AST object) parses
    and validates (anything else is false, not an error)."""
    try:
        validate_schema(_schema_argument(schema, 1))
    except GraphQLBuiltinError:
        return False
    return True


def _guarded(builtin: Callable[..., Any]) -> Callable[..., Any]:
    """The builtin as regorus calls it: what is not OPA's result is an error (undefined)."""

    def call(*args: Any) -> Any:
        try:
            return builtin(*args)
        except RecursionError:
            raise GraphQLBuiltinError(f"{builtin.__name__}: nested too deeply") from None

    call.__name__ = builtin.__name__
    call.__doc__ = builtin.__doc__
    return call


def extensions() -> Iterator[tuple[str, int, Callable[..., Any]]]:
    """The six builtins as regorus extensions: (path, arity, callable)."""
    yield "graphql.is_valid", 2, _guarded(graphql_is_valid)
    yield "graphql.parse", 2, _guarded(graphql_parse)
    yield "graphql.parse_and_verify", 2, _guarded(graphql_parse_and_verify)
    yield "graphql.parse_query", 1, _guarded(graphql_parse_query)
    yield "graphql.parse_schema", 1, _guarded(graphql_parse_schema)
    yield "graphql.schema_is_valid", 1, _guarded(graphql_schema_is_valid)
