"""OPA's `regex.globs_match(a, b)`: whether some non-empty string matches both of two
glob-regexes.

The patterns are the syntax OPA's builtin reads (yashtewari/glob-intersection): each is rooted at
both ends; `.` is any character; `[...]` a class of characters and `x-y` ranges in it; `*` and
`+` repeat the token before them; `\\` makes the next character literal, inside a class too.
Anything else is itself. A syntax error is an error (the call is undefined, as OPA's builtin
errors are by default) with the message OPA gives.

The answer is computed exactly: each pattern is a small automaton (a state before each token,
a loop on a `*` or `+` token), and the two are walked in step over every pair of states, a
character moving both when some character fits both tokens. Work is bounded by the product of
the two patterns' lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbomgate.errors import EvaluationError

# A token's characters: None is any character (`.`); otherwise the set a class or a literal
# allows.
_Chars = frozenset[str] | None


class GlobSyntaxError(EvaluationError):
    """A glob-regex OPA's builtin refuses; the message is OPA's (the call is undefined)."""


@dataclass(frozen=True, slots=True)
class _Token:
    chars: _Chars
    repeat: str  # "" once, "*" zero or more, "+" one or more


def _invalid(pattern: str, pos: int, message: str) -> GlobSyntaxError:
    return GlobSyntaxError(f"input:{pattern}, pos:{pos}, {message}: the input provided is invalid")


def _read(pattern: str, i: int) -> tuple[str, bool, int]:
    """The character at i, whether a backslash escaped it, and the index after it."""
    if pattern[i] != "\\":
        return pattern[i], False, i + 1
    if i + 1 == len(pattern):
        raise _invalid(pattern, i, "input ends with a \\ (escape) character")
    return pattern[i + 1], True, i + 2


def _read_class(pattern: str, i: int) -> tuple[frozenset[str], int]:
    """The characters of a class whose `[` ends before i, and the index after its `]`."""
    chars: set[str] = set()
    last: str | None = None  # the character a `-` may start a range from
    while i < len(pattern):
        ch, escaped, i = _read(pattern, i)
        if escaped:
            chars.add(ch)
            last = ch
        elif ch == "]":
            return frozenset(chars), i
        elif ch == "-":
            if last is None:
                raise _invalid(
                    pattern, i, "range character '-' must be preceded by a Unicode character"
                )
            if i >= len(pattern) - 1:
                raise _invalid(
                    pattern, i, "range character '-' must be followed by a Unicode character"
                )
            end, escaped, i = _read(pattern, i)
            if not escaped and end in "]-":
                raise _invalid(
                    pattern, i, "range character '-' cannot be followed by a special symbol"
                )
            if end < last:
                raise _invalid(
                    pattern, i, f"range is out of order: '{end}' comes before '{last}' in Unicode"
                )
            chars.update(chr(c) for c in range(ord(last), ord(end) + 1))
            last = None
        else:
            chars.add(ch)
            last = ch
    raise _invalid(pattern, i, "found [ without matching ]")


def _tokens(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        ch, escaped, i = _read(pattern, i)
        chars: _Chars
        if escaped:
            chars = frozenset(ch)
        elif ch == ".":
            chars = None
        elif ch == "[":
            chars, i = _read_class(pattern, i)
        elif ch == "]":
            raise _invalid(pattern, i, "set-close ']' with no preceding '['")
        elif ch in "*+":
            raise _invalid(pattern, i, f"flag '{ch}' must be preceded by a non-flag")
        else:
            chars = frozenset(ch)
        repeat = ""
        if i < len(pattern) and pattern[i] in "*+":
            repeat, i = pattern[i], i + 1
        tokens.append(_Token(chars, repeat))
    return tokens


def _meet(a: _Chars, b: _Chars) -> bool:
    """Whether some character fits both."""
    if a is None:
        return b is None or bool(b)
    if b is None:
        return bool(a)
    return not a.isdisjoint(b)


def _skippable(tokens: list[_Token], state: int) -> list[int]:
    """The states reached from `state` without reading a character (past `*` tokens)."""
    states = [state]
    while state < len(tokens) and tokens[state].repeat == "*":
        state += 1
        states.append(state)
    return states


def globs_match(a: str, b: str) -> bool:
    """Whether some non-empty string matches both glob-regexes; GlobSyntaxError on a
    malformed one."""
    left, right = _tokens(a), _tokens(b)
    end = (len(left), len(right))
    # The pairs of states both automata may be in after reading one character or more.
    todo = [
        pair
        for i in _skippable(left, 0)
        for j in _skippable(right, 0)
        for pair in _read_both(left, i, right, j)
    ]
    seen = set(todo)
    while todo:
        i, j = todo.pop()
        if (i, j) == end:
            return True
        for pair in _read_both(left, i, right, j):
            if pair not in seen:
                seen.add(pair)
                todo.append(pair)
    return False


def _read_both(left: list[_Token], i: int, right: list[_Token], j: int) -> list[tuple[int, int]]:
    """The pairs of states after one character that both tokens i and j read, if any."""
    if i == len(left) or j == len(right) or not _meet(left[i].chars, right[j].chars):
        return []
    return [(x, y) for x in _read_one(left, i) for y in _read_one(right, j)]


def _read_one(tokens: list[_Token], state: int) -> list[int]:
    """The states after token `state` reads a character: a repeating token may read more or
    be done; then whatever may be empty after it is skipped."""
    after = _skippable(tokens, state + 1)
    return [state, *after] if tokens[state].repeat else after
