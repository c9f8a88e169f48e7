"""OPA's `strings.render_template(template, vars)`: Go's text/template, written for sbomgate.

OPA parses `template` with Go's text/template (the main template is named "template"), decodes
`vars` from JSON with every number kept as a `json.Number` (a Go string type: it prints as its
text, is always true in `if`, equals the string "1" but cannot be compared with the integer 1,
and `printf "%d"` shows `%!d(json.Number=1)`), executes it, and replaces "<no value>" in the
output by "<undefined>". This module reproduces that from the documented behaviour (the package
documentation of text/template and fmt, and `opa eval` as a black box).

Supported: text and actions with `{{- -}}` trim markers, comments, fields and chains (`.a.b`,
`$x.a`, `(pipeline).a`, `$`), variables (`:=`, `=`, scoping), pipelines and parentheses,
if/else if/else, range over arrays, objects (sorted keys) and integers with `$i, $v`, else,
break and continue, with/else with/else, define/template/block, and the functions and, or,
not, len, index, slice, eq, ne, lt, le, gt, ge, print, printf, println, html, js, urlquery and
call. printf knows the verbs %v %T %t %d %b %o %O %x %X %c %q %U %e %E %f %F %g %G %s with
flags, widths, precisions, `*` and `[n]` argument indexes, and fmt's `%!` error notations.

Raises `TemplateError` (an `EvaluationError`: the call is then undefined, as in OPA's default
mode) for a template Go refuses to parse or fails to execute, for a non-string template, for
vars that are not an object or that OPA cannot decode (non-string keys, sets). Raises its
subclass `TemplateOutOfReach` where Go would render a string this module cannot reproduce
exactly: complex numbers, hexadecimal or binary float verbs, %p and %w, strings that are not
UTF-8, slices beyond an array's length (Go's capacity is unknown here), numbers whose JSON text
regorus does not keep (floats with an exponent or more than 15 significant digits), methods of
json.Number, and work beyond the bounds (steps, output size, nesting of data, actions and
template calls) that keep a hostile template from hanging the process.
"""

from __future__ import annotations

import contextlib
import math
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sbomgate.errors import EvaluationError

__all__ = ["TemplateError", "TemplateOutOfReach", "render_template"]


class TemplateError(EvaluationError):
    """The template cannot be parsed or executed (in OPA the call is undefined)."""


class TemplateOutOfReach(TemplateError):
    """Go would render something this module cannot reproduce exactly, or work beyond bounds."""


# Bounds on work: each keeps a hostile template (or data) from hanging the process.
MAX_STEPS = 1_000_000
MAX_OUTPUT = 1 << 20
MAX_NESTING = 100  # parentheses and control structures in the source, and nesting of data
MAX_CALL_DEPTH = 100  # {{template}} calls inside each other
MAX_WIDTH = 1_000_000  # fmt refuses larger widths and precisions

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_ACTION_SPACE = " \t\r\n"
# Go's unicode.IsSpace (used to decide whether a template body is empty).
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_FUNCTIONS = frozenset(
    {
        "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge",
        "print", "printf", "println", "html", "js", "urlquery", "call",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- values


class _Missing:
    """A key absent from a map: Go's zero value, printed "<no value>"."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class _NoArg:
    """No value passed down a pipeline (the first command of a pipeline)."""


_NO_ARG = _NoArg()


@dataclass(frozen=True)
class JsonNumber:
    """A number of the vars, Go's json.Number: a string type holding the number's text."""

    text: str


class Byte(int):
    """A Go uint8 (what `index` returns for a string)."""


def _type_name(value: Any) -> str:
    """The Go type name fmt's %T and error notations show."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Byte):
        return "uint8"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, JsonNumber):
        return "json.Number"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def _float_text(number: float) -> str:
    """The text OPA keeps for a float that regorus hands over (only where it is certain)."""
    if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    text = repr(number)
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    if "e" in text or "n" in text or len(digits) > 15:
        raise TemplateOutOfReach(f"the JSON text of the number {text} is not known")
    return text


def _decode(value: Any, depth: int = 0) -> Any:
    """The vars as OPA's JSON decoding gives them to Go (numbers as json.Number)."""
    if depth > MAX_NESTING:
        raise TemplateOutOfReach("vars are nested too deeply")
    if isinstance(value, str):
        _check_quotable(value)
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return JsonNumber(str(value))
    if isinstance(value, float):
        return JsonNumber(_float_text(value))
    if isinstance(value, (list, tuple)):
        return [_decode(item, depth + 1) for item in value]
    if isinstance(value, dict):
        decoded: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError("vars: an object key is not a string")
            _check_quotable(key)
            decoded[key] = _decode(item, depth + 1)
        return decoded
    raise TemplateError(f"vars: a {type(value).__name__} cannot be decoded as JSON")


def _check_quotable(text: str) -> None:
    """OPA hands the vars over through Go-quoted strings read as JSON: a character that Go
    quotes with an escape JSON lacks (\\a, \\v, \\x.., \\U........) makes the call fail."""
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch not in "\b\t\n\f\r") or code == 0x7F:
            raise TemplateError("vars: a string holds a control character")
        if code >= 0x10000 and not ch.isprintable():
            raise TemplateError("vars: a string holds a non-printable character")


def _truth(value: Any) -> bool:
    """Go template truth: the zero value of its type is false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, JsonNumber):
        return value.text != ""
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return len(value) > 0


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


# --------------------------------------------------------------------------- lexing


@dataclass
class _Tok:
    """One token of an action: its kind, source text, value and whether a space preceded it."""

    kind: str  # num str chr bool nil dot field var ident ( ) | , := =
    text: str
    value: Any = None
    spaced: bool = False


_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _unescape(body: str, quote: str) -> list[int]:
    """The code units (bytes from \\x and octal, code points otherwise) of a quoted literal."""
    units: list[int] = []
    tagged: list[int] = []  # -1 marks a raw byte that follows (kept apart from code points)
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            units.append(ord(ch))
            tagged.append(0)
            i += 1
            continue
        if i + 1 >= len(body):
            raise TemplateError("bad escape")
        esc = body[i + 1]
        i += 2
        if esc in _ESCAPES:
            units.append(_ESCAPES[esc])
            tagged.append(0)
        elif esc == quote:
            units.append(ord(esc))
            tagged.append(0)
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + size]
            if len(digits) != size or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise TemplateError("bad escape")
            code = int(digits, 16)
            i += size
            if esc != "x" and (code > 0x10FFFF or 0xD800 <= code <= 0xDFFF):
                raise TemplateError("bad escape")
            units.append(code)
            tagged.append(1 if esc == "x" else 0)
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                raise TemplateError("bad escape")
            code = int(digits, 8)
            if code > 255:
                raise TemplateError("bad escape")
            i += 2
            units.append(code)
            tagged.append(1)
        else:
            raise TemplateError("bad escape")
    return [u if t == 0 else -1 - u for u, t in zip(units, tagged, strict=True)]


def _string_value(body: str) -> str:
    """A Go interpreted string literal's value; raw bytes must form UTF-8."""
    out = bytearray()
    for unit in _unescape(body, '"'):
        if unit < 0:
            out.append(-1 - unit)
        else:
            out += chr(unit).encode("utf-8", "surrogatepass")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateOutOfReach("a string that is not UTF-8") from None


def _rune_value(body: str) -> int:
    units = _unescape(body, "'")
    if len(units) != 1:
        raise TemplateError("malformed character constant")
    unit = units[0]
    return -1 - unit if unit < 0 else unit


_DIGITS = {"b": "01", "o": "01234567", "x": "0123456789abcdefABCDEF", "d": "0123456789"}


def _digit_run(text: str, digits: str, lead_underscore: bool) -> bool:
    """Digits with single underscores between them (or after a base prefix)."""
    if not text:
        return False
    previous = "_" if lead_underscore else ""
    for index, ch in enumerate(text):
        if ch == "_":
            if previous == "_" and not (lead_underscore and index == 0):
                return False
            if previous == "" and not lead_underscore:
                return False
        elif ch not in digits:
            return False
        previous = ch
    return previous != "_"


def _int_literal(body: str) -> int | None:
    """The value of a Go integer literal (without sign), or None if it is not one."""
    low = body.lower()
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if low.startswith(prefix):
            rest = body[2:]
            if not _digit_run(rest, _DIGITS[prefix[1]], True) or rest.strip("_") == "":
                return None
            return int(rest.replace("_", ""), base)
    if len(body) > 1 and body[0] == "0":
        if not _digit_run(body[1:], _DIGITS["o"], True):
            return None
        return int(body[1:].replace("_", ""), 8)
    if not _digit_run(body, _DIGITS["d"], False):
        return None
    return int(body.replace("_", ""))


def _float_literal(body: str) -> float | None:
    """The value of a float as Go's strconv.ParseFloat reads it, or None."""
    low = body.lower()
    try:
        if low.startswith("0x"):
            if "p" not in low:
                return None
            mantissa, _, exponent = low[2:].partition("p")
            whole, _, frac = mantissa.partition(".")
            if not (whole or frac) or not _exp_ok(exponent):
                return None
            for part, lead in ((whole, True), (frac, False)):
                if part and not _digit_run(part, _DIGITS["x"], lead):
                    return None
            value = float.fromhex("0x" + mantissa.replace("_", "") + "p" + exponent)
        else:
            mantissa, mark, exponent = low.partition("e")
            whole, _, frac = mantissa.partition(".")
            if not (whole or frac) or (mark and not _exp_ok(exponent)):
                return None
            for part in (whole, frac):
                if part and not _digit_run(part, _DIGITS["d"], False):
                    return None
            value = float(low.replace("_", ""))
    except (ValueError, OverflowError):
        return None
    return value


def _exp_ok(exponent: str) -> bool:
    digits = exponent[1:] if exponent[:1] in "+-" else exponent
    return _digit_run(digits, _DIGITS["d"], False)


def _number_value(text: str) -> int | float:
    """A numeric constant of the template: Go's int or float64 (an error if neither fits)."""
    if text.endswith("i"):
        raise TemplateOutOfReach("complex constants are not supported")
    negative = text[0] == "-"
    body = text[1:] if text[0] in "+-" else text
    as_int = _int_literal(body)
    if as_int is not None:
        value = -as_int if negative else as_int
        if not _INT_MIN <= value <= _INT_MAX:
            raise TemplateError(f"{text} overflows int")
        return value
    as_float = _float_literal(body)
    if as_float is None or math.isinf(as_float):
        raise TemplateError(f"illegal number syntax: {text}")
    if not any(c in body.lower() for c in ".ep"):
        raise TemplateError(f"illegal number syntax: {text}")  # "08", or beyond uint64
    return -as_float if negative else as_float


def _scan_number(src: str, i: int) -> int:
    """The end of the number starting at i (a sign, digits, letters, dots, exponent signs)."""
    j = i + 1 if src[i] in "+-" else i
    hexadecimal = src[j : j + 2].lower() == "0x"
    while j < len(src):
        ch = src[j]
        exponent_sign = ch in "+-" and src[j - 1] in ("pP" if hexadecimal else "eE")
        if (ch.isascii() and (ch.isalnum() or ch in "._")) or exponent_sign:
            j += 1
        else:
            break
    return j


def _lex_action(src: str, i: int) -> tuple[list[_Tok], int, bool]:
    """The tokens of the action whose content starts at i, the position after its closing
    delimiter, and whether it trims the following text."""
    toks: list[_Tok] = []
    spaced = False
    n = len(src)
    while True:
        if i >= n:
            raise TemplateError("unclosed action")
        ch = src[i]
        if src.startswith("}}", i):
            return toks, i + 2, False
        if ch in _ACTION_SPACE:
            j = i
            while j < n and src[j] in _ACTION_SPACE:
                j += 1
            if src.startswith("-}}", j):
                return toks, j + 3, True
            spaced, i = True, j
            continue
        start = i
        if ch == '"':
            j = i + 1
            while j < n and src[j] != '"':
                if src[j] == "\n":
                    raise TemplateError("unterminated quoted string")
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise TemplateError("unterminated quoted string")
            toks.append(_Tok("str", src[i : j + 1], _string_value(src[i + 1 : j]), spaced))
            i = j + 1
        elif ch == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            toks.append(_Tok("str", src[i : j + 1], src[i + 1 : j], spaced))
            i = j + 1
        elif ch == "'":
            j = i + 1
            while j < n and src[j] != "'":
                if src[j] == "\n":
                    raise TemplateError("unterminated character constant")
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise TemplateError("unterminated character constant")
            toks.append(_Tok("chr", src[i : j + 1], _rune_value(src[i + 1 : j]), spaced))
            i = j + 1
        elif (ch.isascii() and ch.isdigit()) or ch in "+-" or (ch == "." and _digit_at(src, i + 1)):
            j = _scan_number(src, i)
            if j < n and src[j] in "+-" and not src[i:j].endswith("i"):
                k = _scan_number(src, j)
                if src[j:k].endswith("i"):
                    raise TemplateOutOfReach("complex constants are not supported")
            text = src[i:j]
            if (j < n and _is_alnum(src[j])) or text in "+-":
                raise TemplateError(f"bad number syntax: {src[i : j + 1]!r}")
            toks.append(_Tok("num", text, _number_value(text), spaced))
            i = j
        elif ch in "$.":
            j = i + 1
            while j < n and _is_alnum(src[j]):
                j += 1
            name = src[i:j]
            if ch == "$":
                toks.append(_Tok("var", name, name, spaced))
            elif j == i + 1:
                toks.append(_Tok("dot", ".", None, spaced))
            else:
                toks.append(_Tok("field", name, name[1:], spaced))
            i = _after_word(src, j)
        elif _is_alnum(ch):
            j = i
            while j < n and _is_alnum(src[j]):
                j += 1
            word = src[i:j]
            if word in ("true", "false"):
                toks.append(_Tok("bool", word, word == "true", spaced))
            elif word == "nil":
                toks.append(_Tok("nil", word, None, spaced))
            else:
                toks.append(_Tok("ident", word, word, spaced))
            i = _after_word(src, j)
        elif ch in "()|,":
            toks.append(_Tok(ch, ch, None, spaced))
            i += 1
        elif src.startswith(":=", i):
            toks.append(_Tok(":=", ":=", None, spaced))
            i += 2
        elif ch == "=":
            toks.append(_Tok("=", "=", None, spaced))
            i += 1
        else:
            raise TemplateError(f"unrecognized character in action: {ch!r}")
        if i == start:  # pragma: no cover - every branch advances
            raise TemplateError("lexer made no progress")
        spaced = False


def _digit_at(src: str, i: int) -> bool:
    return i < len(src) and src[i].isascii() and src[i].isdigit()


def _after_word(src: str, j: int) -> int:
    """Go wants a word to end at a space, a delimiter or punctuation."""
    if j < len(src) and not (src[j] in _ACTION_SPACE or src[j] in ".,|:)(" or src[j] == "}"):
        raise TemplateError(f"bad character {src[j]!r}")
    if j < len(src) and src[j] == "}" and not src.startswith("}}", j):
        raise TemplateError("bad character '}'")
    return j


_Item = str | list[_Tok]


def _lex(src: str) -> list[_Item]:
    """The template as texts (trimmed as markers ask) and actions (token lists)."""
    items: list[_Item] = []
    pos, trim_next, n = 0, False, len(src)
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_ACTION_SPACE)
        if start < 0:
            if text:
                items.append(text)
            return items
        i = start + 2
        if src.startswith("-", i) and i + 1 < n and src[i + 1] in _ACTION_SPACE:
            text = text.rstrip(_ACTION_SPACE)
            i += 2
        if text:
            items.append(text)
        if src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise TemplateError("unclosed comment")
            j = end + 2
            if src.startswith("}}", j):
                pos, trim_next = j + 2, False
            elif j < n and src[j] in _ACTION_SPACE and src.startswith("-}}", j + 1):
                pos, trim_next = j + 4, True
            else:
                raise TemplateError("comment ends before closing delimiter")
            continue
        toks, pos, trim_next = _lex_action(src, i)
        items.append(toks)


# --------------------------------------------------------------------------- syntax tree


@dataclass
class _Const:
    value: Any


@dataclass
class _Nil:
    pass


@dataclass
class _Dot:
    pass


@dataclass
class _Field:
    names: list[str]


@dataclass
class _Var:
    name: str
    names: list[str]


@dataclass
class _Func:
    name: str


@dataclass
class _Paren:
    pipe: _Pipe
    names: list[str]


_Operand = _Const | _Nil | _Dot | _Field | _Var | _Func | _Paren


@dataclass
class _Cmd:
    args: list[_Operand]


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[_Cmd]


@dataclass
class _Text:
    text: str


@dataclass
class _Print:
    pipe: _Pipe


@dataclass
class _Branch:
    kind: str  # "if" or "with"
    pipe: _Pipe
    body: list[_Node]
    alt: list[_Node] | None


@dataclass
class _Loop:
    pipe: _Pipe
    body: list[_Node]
    alt: list[_Node] | None


@dataclass
class _Invoke:
    name: str
    pipe: _Pipe | None


@dataclass
class _Jump:
    kind: str  # "break" or "continue"


_Node = _Text | _Print | _Branch | _Loop | _Invoke | _Jump


class _Cursor:
    """Reads the tokens of one action."""

    def __init__(self, toks: list[_Tok], start: int = 0) -> None:
        self.toks = toks
        self.i = start

    def peek(self, ahead: int = 0) -> _Tok | None:
        index = self.i + ahead
        return self.toks[index] if index < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise TemplateError("unexpected end of action")
        self.i += 1
        return tok

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise TemplateError(f"unexpected {tok.text!r} in action")


@dataclass
class _Parser:
    """Recursive descent over the lexed items; checks what Go checks while parsing."""

    items: list[_Item]
    pos: int = 0
    scope: list[str] = field(default_factory=lambda: ["$"])
    loops: int = 0
    nesting: int = 0
    trees: dict[str, list[_Node]] = field(default_factory=dict)

    def parse(self) -> dict[str, list[_Node]]:
        body, _ = self.block_list(top=True)
        self.add("template", body)
        return self.trees

    def add(self, name: str, body: list[_Node]) -> None:
        old = self.trees.get(name)
        if old is None or _empty(old):
            self.trees[name] = body
        elif not _empty(body):
            raise TemplateError(f"template: multiple definition of template {name!r}")

    def deeper(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise TemplateOutOfReach("the template is nested too deeply")

    def block_list(self, top: bool = False) -> tuple[list[_Node], _Cursor | None]:
        """Nodes up to {{end}} or {{else}} (returned as a cursor past the keyword)."""
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            item = self.items[self.pos]
            self.pos += 1
            if isinstance(item, str):
                nodes.append(_Text(item))
                continue
            first = item[0] if item else None
            if first is not None and first.kind == "ident" and first.text in ("end", "else"):
                if top:
                    raise TemplateError(f"unexpected {{{{{first.text}}}}}")
                return nodes, _Cursor(item)
            if first is not None and first.kind == "ident" and first.text == "define":
                if top is False or self.nesting:
                    raise TemplateError("{{define}} must be at the top level")
                self.define(_Cursor(item, 1))
                continue
            nodes.append(self.action(_Cursor(item)))
        if not top:
            raise TemplateError("unexpected EOF")
        return nodes, None

    def action(self, cur: _Cursor) -> _Node:
        first = cur.peek()
        if first is not None and first.kind == "ident" and first.text in _KEYWORDS:
            cur.take()
            word = first.text
            if word in ("if", "with", "range"):
                return self.control(word, cur)
            if word in ("break", "continue"):
                cur.done()
                if not self.loops:
                    raise TemplateError(f"{{{{{word}}}}} outside {{{{range}}}}")
                return _Jump(word)
            if word == "template":
                name = self.name(cur)
                pipe = None if cur.peek() is None else self.pipeline(cur, 0)
                cur.done()
                return _Invoke(name, pipe)
            if word == "block":
                name = self.name(cur)
                pipe = self.pipeline(cur, 0)
                cur.done()
                self.define_body(name)
                return _Invoke(name, pipe)
            raise TemplateError(f"unexpected {word!r}")
        pipe = self.pipeline(cur, 1)
        cur.done()
        return _Print(pipe)

    def name(self, cur: _Cursor) -> str:
        tok = cur.take()
        if tok.kind != "str":
            raise TemplateError("template name must be a string")
        return str(tok.value)

    def define(self, cur: _Cursor) -> None:
        name = self.name(cur)
        cur.done()
        self.define_body(name)

    def define_body(self, name: str) -> None:
        saved = self.scope, self.loops
        self.scope, self.loops = ["$"], 0
        self.deeper()
        body, stop = self.block_list()
        self.nesting -= 1
        self.scope, self.loops = saved
        assert stop is not None
        if stop.take().text != "end":
            raise TemplateError("unexpected {{else}} in define")
        stop.done()
        self.add(name, body)

    def control(self, word: str, cur: _Cursor) -> _Node:
        mark = len(self.scope)
        self.deeper()
        pipe = self.pipeline(cur, 2 if word == "range" else 1)
        cur.done()
        if word == "range":
            self.loops += 1
        body, stop = self.block_list()
        alt: list[_Node] | None = None
        assert stop is not None
        if stop.take().text == "else":
            following = stop.peek()
            if following is not None:
                if following.kind == "ident" and following.text == word and word != "range":
                    stop.take()
                    alt = [self.control(word, stop)]
                else:
                    raise TemplateError("expected end after else")
            else:
                alt, last = self.block_list()
                assert last is not None
                if last.take().text != "end":
                    raise TemplateError("expected end; found {{else}}")
                last.done()
        else:
            stop.done()
        del self.scope[mark:]
        self.nesting -= 1
        if word == "range":
            self.loops -= 1
            return _Loop(pipe, body, alt)
        return _Branch(word, pipe, body, alt)

    def pipeline(self, cur: _Cursor, max_decl: int) -> _Pipe:
        decl: list[str] = []
        assign = False
        first, second = cur.peek(), cur.peek(1)
        if first is not None and first.kind == "var" and second is not None:
            if second.kind in (":=", "="):
                decl = [first.text]
                assign = second.kind == "="
                cur.i += 2
            elif second.kind == ",":
                third, fourth = cur.peek(2), cur.peek(3)
                if third is None or third.kind != "var" or fourth is None:
                    raise TemplateError("bad declaration")
                if fourth.kind not in (":=", "="):
                    raise TemplateError("missing := in declaration")
                decl = [first.text, third.text]
                assign = fourth.kind == "="
                cur.i += 4
        if len(decl) > max_decl:
            raise TemplateError("too many declarations")
        if assign:
            for name in decl:
                if name not in self.scope:
                    raise TemplateError(f"undefined variable {name!r}")
        cmds: list[_Cmd] = []
        while True:
            args: list[_Operand] = []
            while (tok := cur.peek()) is not None and tok.kind not in ("|", ")"):
                args.append(self.operand(cur))
            if not args:
                if cmds and (tok is None or tok.kind == ")"):
                    break  # Go accepts a pipeline ending with "|"
                raise TemplateError("missing value for command")
            cmds.append(_Cmd(args))
            tok = cur.peek()
            if tok is not None and tok.kind == "|":
                cur.take()
                continue
            break
        for cmd in cmds[1:]:
            if isinstance(cmd.args[0], (_Const, _Nil, _Dot)):
                raise TemplateError("non executable command in pipeline stage")
        if not assign:
            self.scope.extend(decl)
        return _Pipe(decl, assign, cmds)

    def chain(self, cur: _Cursor) -> list[str]:
        names: list[str] = []
        while (tok := cur.peek()) is not None and not tok.spaced and tok.kind in ("field", "dot"):
            if tok.kind == "dot":
                raise TemplateError("unexpected . after term")
            names.append(str(cur.take().value))
        return names

    def operand(self, cur: _Cursor) -> _Operand:
        tok = cur.take()
        node: _Operand
        if tok.kind in ("num", "str", "chr", "bool"):
            node = _Const(tok.value)
        elif tok.kind == "nil":
            node = _Nil()
        elif tok.kind == "dot":
            node = _Dot()
        elif tok.kind == "field":
            return _Field([str(tok.value), *self.chain(cur)])
        elif tok.kind == "var":
            if tok.text not in self.scope:
                raise TemplateError(f"undefined variable {tok.text!r}")
            return _Var(tok.text, self.chain(cur))
        elif tok.kind == "ident":
            if tok.text not in _FUNCTIONS:
                raise TemplateError(f"function {tok.text!r} not defined")
            node = _Func(tok.text)
        elif tok.kind == "(":
            self.deeper()
            pipe = self.pipeline(cur, 1)
            close = cur.take()
            if close.kind != ")":
                raise TemplateError("unclosed left paren")
            self.nesting -= 1
            return _Paren(pipe, self.chain(cur))
        else:
            raise TemplateError(f"unexpected {tok.text!r} in operand")
        after = cur.peek()
        if after is not None and not after.spaced and after.kind in ("field", "dot"):
            raise TemplateError(f"unexpected . after term {tok.text!r}")
        return node


def _empty(nodes: list[_Node]) -> bool:
    """Go's notion of an empty template: nothing but white space."""
    return all(isinstance(n, _Text) and all(c in _GO_SPACE for c in n.text) for n in nodes)


# --------------------------------------------------------------------------- fmt


@dataclass
class _Spec:
    """The flags, width and precision of one printf verb."""

    sharp: bool = False
    zero: bool = False
    plus: bool = False
    minus: bool = False
    space: bool = False
    sharp_v: bool = False
    width: int | None = None
    prec: int | None = None


_PLAIN = _Spec()


def _pad(text: str, spec: _Spec, zeros: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    return ("0" if zeros and spec.zero else " ") * fill + text


def _go_quote(text: str, quote: str, ascii_only: bool) -> str:
    out = [quote]
    for ch in text:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and (not ascii_only or code < 0x80):
            out.append(ch)
        elif code in (7, 8, 12, 10, 13, 9, 11):
            out.append("\\" + "abfnrtv"[[7, 8, 12, 10, 13, 9, 11].index(code)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _can_backquote(text: str) -> bool:
    return all(
        ch != "`" and ch != "\ufeff" and (ch == "\t" or not (ord(ch) < 0x20 or ord(ch) == 0x7F))
        for ch in text
    )


def _fmt_string(text: str, verb: str, spec: _Spec) -> str | None:
    """A string through %v %s %q %x %X; None for another verb."""
    if spec.prec is not None and verb in "vsq":
        text = text[: spec.prec]
    if verb == "v" and spec.sharp_v:
        return _pad(_go_quote(text, '"', False), spec, zeros=True)
    if verb in "vs":
        return _pad(text, spec, zeros=True)
    if verb == "q":
        if spec.sharp and _can_backquote(text):
            return _pad("`" + text + "`", spec, zeros=True)
        return _pad(_go_quote(text, '"', spec.plus), spec, zeros=True)
    if verb in "xX":
        data = text.encode()
        if spec.prec is not None:
            data = data[: spec.prec]
        digits = "0123456789abcdef" if verb == "x" else "0123456789ABCDEF"
        prefix = "0x" if verb == "x" else "0X"
        parts = []
        for index, byte in enumerate(data):
            piece = digits[byte >> 4] + digits[byte & 15]
            if spec.space:
                piece = (prefix if spec.sharp else "") + piece
                if index:
                    piece = " " + piece
            parts.append(piece)
        out = "".join(parts)
        if spec.sharp and not spec.space and data:
            out = prefix + out
        return _pad(out, spec, zeros=True)
    return None


def _valid_rune(code: int) -> str:
    if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return "\ufffd"


def _fmt_int(value: int, unsigned: bool, verb: str, spec: _Spec) -> str | None:
    """An integer through fmt's integer verbs; None for another verb."""
    if verb == "c":
        return _pad(_valid_rune(value), spec, zeros=True)
    if verb == "q":
        return _pad(_go_quote(_valid_rune(value), "'", spec.plus), spec, zeros=True)
    if verb == "U":
        shown = value if value >= 0 else value + (1 << 64)
        digits = f"{shown:X}".rjust(spec.prec if spec.prec and spec.prec > 4 else 4, "0")
        out = "U+" + digits
        if spec.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
            out += " '" + chr(value) + "'"
        return _pad(out, spec)
    if verb == "v" and spec.sharp_v and unsigned:
        return _fmt_int(value, unsigned, "x", _Spec(sharp=True))
    bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
    if verb not in bases:
        return None
    base = bases[verb]
    negative = value < 0
    magnitude = -value if negative else value
    if spec.prec is not None:
        minimum = spec.prec
        if minimum == 0 and value == 0:
            return _pad("", spec)
    elif spec.zero and spec.width is not None and not spec.minus:
        minimum = spec.width - (1 if negative or spec.plus or spec.space else 0)
    else:
        minimum = 0
    if base == 10:
        digits = str(magnitude)
    elif base == 2:
        digits = format(magnitude, "b")
    elif base == 8:
        digits = format(magnitude, "o")
    else:
        digits = format(magnitude, "x" if verb == "x" else "X")
    digits = digits.rjust(minimum, "0")
    if spec.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and not digits.startswith("0"):
            digits = "0" + digits
        elif base == 16:
            digits = ("0x" if verb == "x" else "0X") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    return _pad(sign + digits, spec)


def _shortest_digits(number: float) -> tuple[str, int]:
    """The shortest digits identifying a positive float, and the decimal point's place."""
    _, digits, exponent = Decimal(repr(number)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exponent, int)
    return text, len(digits) + exponent


def _exp_suffix(exponent: int, upper: bool) -> str:
    return ("E" if upper else "e") + ("-" if exponent < 0 else "+") + f"{abs(exponent):02d}"


def _shortest_g(number: float, upper: bool) -> str:
    if number == 0:
        return "0"
    digits, point = _shortest_digits(number)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # fmt's %v: shortest digits, exponent from 1e+06
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return mantissa + _exp_suffix(exponent, upper)
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _sharp_g(text: str, want: int) -> str:
    """Go's # flag on %g: keep a decimal point and pad significant digits to `want`."""
    mantissa, mark, exponent = text.partition("e") if "e" in text else text.partition("E")
    significant = len(mantissa.replace(".", "").lstrip("0")) or 1
    if "." not in mantissa:
        mantissa += "."
    if significant < want:
        mantissa += "0" * (want - significant)
    return mantissa + mark + exponent


def _fmt_float(number: float, verb: str, spec: _Spec) -> str | None:
    """A float through %v %e %E %f %F %g %G; None for another verb."""
    if verb in "bxX":
        raise TemplateOutOfReach(f"%{verb} of a float is not supported")
    if verb not in "veEfFgG":
        return None
    negative = math.copysign(1.0, number) < 0
    magnitude = abs(number)
    upper = verb in "EG"
    prec = spec.prec
    if verb in "vgG":
        if prec is None:
            body = _shortest_g(magnitude, upper)
            if spec.sharp and verb != "v":
                body = _sharp_g(body, 6)
        else:
            body = ("%#.*g" if spec.sharp else "%.*g") % (prec, magnitude)
            body = body.upper() if upper else body
    elif verb in "eE":
        body = ("%#.*e" if spec.sharp else "%.*e") % (6 if prec is None else prec, magnitude)
        body = body.upper() if upper else body
    else:
        body = ("%#.*f" if spec.sharp else "%.*f") % (6 if prec is None else prec, magnitude)
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    if spec.zero and spec.width is not None and not spec.minus:
        return sign + body.rjust(spec.width - len(sign), "0")
    return _pad(sign + body, spec)


def _fmt_value(value: Any, verb: str, spec: _Spec, depth: int, top: bool) -> str:
    """One operand (or an element of one) as fmt prints it with `verb`."""
    if depth > MAX_NESTING:
        raise TemplateOutOfReach("a value is nested too deeply to print")
    if value is None or value is MISSING:
        if not top:
            return "interface {}(nil)" if spec.sharp_v else _pad("<nil>", spec)
        if verb in "Tv":
            return _pad("<nil>", spec)
        return f"%!{verb}(<nil>)"
    if verb == "T":
        return _pad(_type_name(value), spec)
    if verb == "p" and isinstance(value, (list, dict)):
        raise TemplateOutOfReach("%p prints an address")
    out: str | None
    if isinstance(value, bool):
        out = _pad("true" if value else "false", spec) if verb in "tv" else None
    elif isinstance(value, int):
        out = _fmt_int(value, isinstance(value, Byte), verb, spec)
    elif isinstance(value, float):
        out = _fmt_float(value, verb, spec)
    elif isinstance(value, str):
        out = _fmt_string(value, verb, spec)
    elif isinstance(value, JsonNumber):
        out = _fmt_string(value.text, verb, spec)
    elif isinstance(value, list):
        if spec.sharp_v:
            inner = ", ".join(_fmt_value(v, verb, spec, depth + 1, False) for v in value)
            return "[]interface {}{" + inner + "}"
        return "[" + " ".join(_fmt_value(v, verb, spec, depth + 1, False) for v in value) + "]"
    else:
        keys = sorted(value)
        if spec.sharp_v:
            inner = ", ".join(
                _go_quote(k, '"', False) + ":" + _fmt_value(value[k], verb, spec, depth + 1, False)
                for k in keys
            )
            return "map[string]interface {}{" + inner + "}"
        pairs = (
            _fmt_value(k, verb, spec, depth + 1, False)
            + ":"
            + _fmt_value(value[k], verb, spec, depth + 1, False)
            for k in keys
        )
        return "map[" + " ".join(pairs) + "]"
    if out is None:
        shown = _fmt_value(value, "v", spec, depth + 1, True)
        return f"%!{verb}({_type_name(value)}={shown})"
    return out


def _sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither is a string."""
    out: list[str] = []
    for index, arg in enumerate(args):
        stringy = isinstance(arg, (str, JsonNumber))
        if index and not stringy and not isinstance(args[index - 1], (str, JsonNumber)):
            out.append(" ")
        out.append(_fmt_value(arg, "v", _PLAIN, 0, True))
    return "".join(out)


def _sprintln(args: list[Any]) -> str:
    return " ".join(_fmt_value(arg, "v", _PLAIN, 0, True) for arg in args) + "\n"


def _read_int(fmt: str, i: int) -> tuple[int | None, int]:
    j = i
    while j < len(fmt) and fmt[j].isascii() and fmt[j].isdigit():
        j += 1
    if j == i:
        return None, i
    value = int(fmt[i:j])
    if value > MAX_WIDTH:
        return -1, j
    return value, j


@dataclass
class _Printf:
    """The state of one fmt.Sprintf."""

    fmt: str
    args: list[Any]
    argn: int = 0
    reordered: bool = False
    good: bool = True
    out: list[str] = field(default_factory=list)

    def index(self, i: int) -> tuple[int, bool]:
        """Reads an explicit `[n]` at i; returns the next position and whether one was read."""
        if i >= len(self.fmt) or self.fmt[i] != "[":
            return i, False
        self.reordered = True
        close = self.fmt.find("]", i + 1)
        if close < 0:
            self.good = False
            return len(self.fmt), True
        digits = self.fmt[i + 1 : close]
        if digits.isascii() and digits.isdigit() and 1 <= int(digits) <= len(self.args):
            self.argn = int(digits) - 1
        else:
            self.good = False
        return close + 1, True

    def star(self) -> int | None:
        """A `*` width or precision from the next operand (None: bad)."""
        if self.argn >= len(self.args):
            self.argn += 1
            return None
        value = self.args[self.argn]
        self.argn += 1
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if abs(value) > MAX_WIDTH:
            return None
        return value

    def run(self) -> str:
        fmt, n, i = self.fmt, len(self.fmt), 0
        while i < n:
            j = fmt.find("%", i)
            if j < 0:
                self.out.append(fmt[i:])
                break
            self.out.append(fmt[i:j])
            i = self.verb(j + 1)
        if not self.reordered and self.argn < len(self.args):
            extra = ", ".join(
                "<nil>" if a is None or a is MISSING else f"{_type_name(a)}={_sprint([a])}"
                for a in self.args[self.argn :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)

    def verb(self, i: int) -> int:
        fmt, n = self.fmt, len(self.fmt)
        spec = _Spec()
        while i < n and fmt[i] in "#0+- ":
            flag = fmt[i]
            if flag == "#":
                spec.sharp = True
            elif flag == "0":
                spec.zero = not spec.minus
            elif flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus, spec.zero = True, False
            else:
                spec.space = True
            i += 1
        self.good = True
        i, after_index = self.index(i)
        if i < n and fmt[i] == "*":
            i += 1
            width = self.star()
            if width is None:
                self.out.append("%!(BADWIDTH)")
            else:
                spec.width = abs(width)
                if width < 0:
                    spec.minus, spec.zero = True, False
            after_index = False
        else:
            width, i = _read_int(fmt, i)
            if width is not None:
                if after_index:
                    self.good = False
                spec.width = width if width >= 0 else None
                if width < 0:
                    self.out.append("%!(BADWIDTH)")
        if i < n and fmt[i] == ".":
            i += 1
            if after_index:
                self.good = False
            i, after_index = self.index(i)
            if i < n and fmt[i] == "*":
                i += 1
                prec = self.star()
                if prec is None:
                    self.out.append("%!(BADPREC)")
                elif prec >= 0:
                    spec.prec = prec
                after_index = False
            else:
                prec, i = _read_int(fmt, i)
                spec.prec = 0 if prec is None else prec
                if prec is not None and prec < 0:
                    spec.prec = None
                    self.out.append("%!(BADPREC)")
        if not after_index:
            i, after_index = self.index(i)
        if i >= n:
            self.out.append("%!(NOVERB)")
            return i
        verb = fmt[i]
        i += 1
        if verb == "%":
            self.out.append("%")
        elif not self.good:
            self.out.append(f"%!{verb}(BADINDEX)")
        elif self.argn >= len(self.args):
            self.out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "w":
                raise TemplateOutOfReach("%w belongs to fmt.Errorf")
            arg = self.args[self.argn]
            self.argn += 1
            if verb == "v":
                spec.sharp_v, spec.sharp = spec.sharp, False
                spec.plus = False
            self.out.append(_fmt_value(arg, verb, spec, 0, True))
        return i


# --------------------------------------------------------------------------- escapers


def _eval_args(args: list[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if a is None or a is MISSING else a for a in args])


def _html(text: str) -> str:
    table = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
    return "".join(table.get(ch, ch) for ch in text)


def _js(text: str) -> str:
    named = {"\\": "\\\\", "'": "\\'", '"': '\\"'}
    out = []
    for ch in text:
        code = ord(ch)
        if ch in named:
            out.append(named[ch])
        elif ch in "<>&=":
            out.append(f"\\u{code:04X}")
        elif code < 0x80:
            out.append(ch if code >= 0x20 else f"\\u{code:04X}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


def _urlquery(text: str) -> str:
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch.isascii() and (ch.isalnum() or ch in "-_.~"):
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


# --------------------------------------------------------------------------- execution


class _Break(Exception):
    """{{break}} leaving a range."""


class _Continue(Exception):
    """{{continue}} ending a range's iteration."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (str, JsonNumber)):
        return "string"
    if value is None or value is MISSING:
        return "nil"
    return "other"


def _basic(value: Any) -> Any:
    return value.text if isinstance(value, JsonNumber) else value


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "nil" or kb == "nil":
        return ka == kb
    if ka == "other" or kb == "other":
        raise TemplateError("non-comparable type")
    if ka != kb:
        raise TemplateError("incompatible types for comparison")
    return bool(_basic(a) == _basic(b))


def _less(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka in ("bool", "nil", "other"):
        raise TemplateError("invalid type for comparison")
    return bool(_basic(a) < _basic(b))


def _as_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"cannot index with type {_type_name(value)}")
    return value


def _index(item: Any, keys: list[Any]) -> Any:
    for key in keys:
        if isinstance(item, (str, JsonNumber)):
            data = (item.text if isinstance(item, JsonNumber) else item).encode()
            k = _as_index(key)
            if not 0 <= k < len(data):
                raise TemplateError(f"index out of range: {k}")
            item = Byte(data[k])
        elif isinstance(item, list):
            k = _as_index(key)
            if not 0 <= k < len(item):
                raise TemplateError(f"index out of range: {k}")
            item = item[k]
        elif isinstance(item, dict):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {_type_name(key)}; should be string")
            item = item.get(key, MISSING)
        else:
            raise TemplateError(f"can't index item of type {_type_name(item)}")
    return item


def _slice(item: Any, bounds: list[Any]) -> Any:
    if len(bounds) > 3:
        raise TemplateError("too many slice indexes")
    idx = [_as_index(b) for b in bounds]
    if any(k < 0 for k in idx):
        raise TemplateError("negative slice index")
    if isinstance(item, (str, JsonNumber)):
        if len(idx) == 3:
            raise TemplateError("cannot 3-index slice a string")
        data = (item.text if isinstance(item, JsonNumber) else item).encode()
        start = idx[0] if idx else 0
        stop = idx[1] if len(idx) > 1 else len(data)
        if not start <= stop <= len(data):
            raise TemplateError("slice index out of range")
        try:
            text = data[start:stop].decode()
        except UnicodeDecodeError:
            raise TemplateOutOfReach("slicing a string inside a character") from None
        return JsonNumber(text) if isinstance(item, JsonNumber) else text
    if isinstance(item, list):
        start = idx[0] if idx else 0
        stop = idx[1] if len(idx) > 1 else len(item)
        if start > stop or (len(idx) == 3 and stop > idx[2]):
            raise TemplateError("invalid slice index")
        if max([start, stop, *idx]) > len(item):
            raise TemplateOutOfReach("slicing beyond the array's length (its capacity)")
        return item[start:stop]
    raise TemplateError(f"can't slice item of type {_type_name(item)}")


_Vars = list[list[Any]]


@dataclass
class _Run:
    """The execution of the parsed templates."""

    trees: dict[str, list[_Node]]
    out: list[str] = field(default_factory=list)
    size: int = 0
    steps: int = 0
    calls: int = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateOutOfReach("the template does too much work")

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateOutOfReach("the output is too large")
        self.out.append(text)

    def walk(self, nodes: list[_Node], dot: Any, scope: _Vars) -> None:
        for node in nodes:
            self.tick()
            if isinstance(node, _Text):
                self.emit(node.text)
            elif isinstance(node, _Print):
                value = self.pipe(node.pipe, dot, scope)
                if not node.pipe.decl:
                    self.emit(_show(value))
            elif isinstance(node, _Branch):
                mark = len(scope)
                try:
                    value = self.pipe(node.pipe, dot, scope)
                    inner = value if node.kind == "with" else dot
                    if _truth(value):
                        self.walk(node.body, inner, scope)
                    elif node.alt is not None:
                        self.walk(node.alt, dot, scope)
                finally:
                    del scope[mark:]
            elif isinstance(node, _Loop):
                self.loop(node, dot, scope)
            elif isinstance(node, _Invoke):
                self.invoke(node, dot, scope)
            else:
                raise _Break() if node.kind == "break" else _Continue()

    def invoke(self, node: _Invoke, dot: Any, scope: _Vars) -> None:
        body = self.trees.get(node.name)
        if body is None:
            raise TemplateError(f"no such template {node.name!r}")
        value = None if node.pipe is None else self.pipe(node.pipe, dot, scope)
        self.calls += 1
        if self.calls > MAX_CALL_DEPTH:
            raise TemplateOutOfReach("templates call each other too deeply")
        try:
            self.walk(body, value, [["$", value]])
        finally:
            self.calls -= 1

    def loop(self, node: _Loop, dot: Any, scope: _Vars) -> None:
        mark = len(scope)
        try:
            value = self.pipe(node.pipe, dot, scope, declare=False)
            decl = node.pipe.decl
            for name in decl:  # Go binds every declared variable to the value first
                if node.pipe.assign:
                    _assign(scope, name, value)
                else:
                    scope.append([name, value])
            pairs: Any
            if isinstance(value, list):
                pairs = enumerate(value)
            elif isinstance(value, dict):
                pairs = ((k, value[k]) for k in sorted(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                if len(decl) > 1:
                    raise TemplateError("can't use two variables ranging over an integer")
                pairs = ((k, k) for k in range(value))
            elif value is None or value is MISSING:
                pairs = iter(())
            else:
                raise TemplateError(f"range can't iterate over {_show(value)}")
            ran = False
            for key, item in pairs:
                ran = True
                self.tick()
                inner = len(scope)
                bound = [item] if len(decl) == 1 else [key, item]
                for name, bound_value in zip(decl, bound, strict=False):
                    if node.pipe.assign:
                        _assign(scope, name, bound_value)
                    else:
                        scope.append([name, bound_value])
                try:
                    self.walk(node.body, item, scope)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del scope[inner:]
            if not ran and node.alt is not None:
                # as Go does: a {{continue}} there reaches the enclosing range
                with contextlib.suppress(_Break):
                    self.walk(node.alt, dot, scope)
        finally:
            del scope[mark:]

    def pipe(self, pipe: _Pipe, dot: Any, scope: _Vars, declare: bool = True) -> Any:
        value: Any = _NO_ARG
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, scope, value)
        if declare and pipe.decl:
            if pipe.assign:
                _assign(scope, pipe.decl[0], value)
            else:
                scope.append([pipe.decl[0], value])
        return value

    def command(self, cmd: _Cmd, dot: Any, scope: _Vars, final: Any) -> Any:
        self.tick()
        head, rest = cmd.args[0], cmd.args[1:]
        if isinstance(head, _Func):
            return self.call(head.name, rest, dot, scope, final)
        if rest or final is not _NO_ARG:
            if isinstance(head, (_Field, _Var, _Paren)) and head.names:
                receiver = self.operand(_trim(head), dot, scope)
                if _fields(receiver, head.names[:-1], True) is MISSING:
                    return MISSING  # Go stops at a missing value before looking at arguments
            raise TemplateError("can't give argument to non-function")
        if isinstance(head, _Nil):
            raise TemplateError("nil is not a command")
        return self.operand(head, dot, scope)

    def operand(self, node: _Operand, dot: Any, scope: _Vars) -> Any:
        if isinstance(node, _Const):
            return node.value
        if isinstance(node, _Nil):
            return None
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Field):
            return _fields(dot, node.names, False)
        if isinstance(node, _Var):
            return _fields(_lookup(scope, node.name), node.names, True)
        if isinstance(node, _Func):
            return self.call(node.name, [], dot, scope, _NO_ARG)
        return _fields(self.pipe(node.pipe, dot, scope), node.names, True)

    def call(self, name: str, nodes: list[_Operand], dot: Any, scope: _Vars, final: Any) -> Any:
        if name in ("and", "or"):
            count = len(nodes) + (final is not _NO_ARG)
            if count == 0:
                raise TemplateError(f"wrong number of args for {name}")
            value: Any = None
            for node in nodes:
                value = self.operand(node, dot, scope)
                if _truth(value) != (name == "and"):
                    return value
            return final if final is not _NO_ARG else value
        args = [self.operand(node, dot, scope) for node in nodes]
        if final is not _NO_ARG:
            args.append(final)
        return _builtin(name, args)


def _builtin(name: str, args: list[Any]) -> Any:
    """The functions other than and/or, on evaluated arguments."""
    if name in ("not", "len") and len(args) != 1:
        raise TemplateError(f"wrong number of args for {name}")
    if name == "not":
        return not _truth(args[0])
    if name == "len":
        item = args[0]
        if isinstance(item, str):
            return len(item.encode())
        if isinstance(item, JsonNumber):
            return len(item.text.encode())
        if isinstance(item, (list, dict)):
            return len(item)
        raise TemplateError(f"len of type {_type_name(item)}")
    if name in ("index", "slice"):
        if not args:
            raise TemplateError(f"wrong number of args for {name}")
        if args[0] is None or args[0] is MISSING:
            raise TemplateError(f"{name} of untyped nil")
        return _index(args[0], args[1:]) if name == "index" else _slice(args[0], args[1:])
    if name == "eq":
        if len(args) < 2:
            raise TemplateError("missing argument for comparison")
        return any(_equal(args[0], other) for other in args[1:])
    if name in ("ne", "lt", "le", "gt", "ge"):
        if len(args) != 2:
            raise TemplateError(f"wrong number of args for {name}")
        a, b = args
        if name == "ne":
            return not _equal(a, b)
        if name == "lt":
            return _less(a, b)
        if name == "le":
            return _less(a, b) or _equal(a, b)
        if name == "gt":
            return not (_less(a, b) or _equal(a, b))
        return not _less(a, b)
    if name == "print":
        return _sprint(args)
    if name == "println":
        return _sprintln(args)
    if name == "printf":
        if not args or not isinstance(args[0], str):
            raise TemplateError("printf: the format is not a string")
        return _Printf(args[0], args[1:]).run()
    if name == "html":
        return _html(_eval_args(args))
    if name == "js":
        return _js(_eval_args(args))
    if name == "urlquery":
        return _urlquery(_eval_args(args))
    raise TemplateError("call: the vars hold no functions")


def _lookup(scope: _Vars, name: str) -> Any:
    for entry in reversed(scope):
        if entry[0] == name:
            return entry[1]
    raise TemplateError(f"undefined variable {name!r}")


def _assign(scope: _Vars, name: str, value: Any) -> None:
    for entry in reversed(scope):
        if entry[0] == name:
            entry[1] = value
            return
    raise TemplateError(f"undefined variable {name!r}")


def _trim(node: _Field | _Var | _Paren) -> _Operand:
    """The operand without its last field (the receiver of that field)."""
    if isinstance(node, _Field):
        return _Field(node.names[:-1]) if len(node.names) > 1 else _Dot()
    if isinstance(node, _Var):
        return _Var(node.name, node.names[:-1])
    return _Paren(node.pipe, node.names[:-1])


def _fields(value: Any, names: list[str], nil_is_missing: bool) -> Any:
    """A chain of fields; a nil held by a variable or parentheses is a missing value."""
    if value is None and nil_is_missing and names:
        value = MISSING
    for name in names:
        if value is MISSING:
            continue
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        elif isinstance(value, JsonNumber) and name in ("String", "Int64", "Float64"):
            raise TemplateOutOfReach("methods of json.Number are not supported")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_type_name(value)}")
    return value


def _show(value: Any) -> str:
    """What an action prints."""
    if value is None or value is MISSING:
        return "<no value>"
    return _fmt_value(value, "v", _PLAIN, 0, True)


# --------------------------------------------------------------------------- entry point


def render_template(template: Any, variables: Any) -> str:
    """OPA's strings.render_template: `template` rendered with `variables` (an object).

    Raises TemplateError (an EvaluationError) where OPA's call is undefined, and
    TemplateOutOfReach where Go's output cannot be reproduced exactly or work is beyond bounds.
    """
    if not isinstance(template, str):
        raise TemplateError("strings.render_template: operand 1 must be a string")
    if not isinstance(variables, dict):
        raise TemplateError("strings.render_template: operand 2 must be an object")
    data = _decode(variables)
    trees = _Parser(_lex(template)).parse()
    run = _Run(trees)
    try:
        run.walk(trees["template"], data, [["$", data]])
    except RecursionError:
        raise TemplateOutOfReach("the template is nested too deeply") from None
    return "".join(run.out).replace("<no value>", "<undefined>")
