"""A hostile JSON document that hides nesting levels from a count of brackets: a string of
closing brackets deep in it, then more levels, then a string reopening what the first closed.
A measure that counted brackets inside strings read 123 levels as 95."""

from __future__ import annotations

from typing import Any

import orjson

# The markers `hide_levels` replaces.
_CLOSE, _OPEN = "CLOSE", "OPEN"
HIDDEN = 28  # levels the strings hide


def _chain(levels: int, inner: Any) -> Any:
    for level in range(levels):
        inner = {"a": inner} if level % 2 else [inner]
    return inner


# 30 levels, the string closing them, 90 more, the string reopening them: 123 levels in all.
HIDDEN_LEVELS_VALUE: Any = _chain(30, [_CLOSE, _chain(90, 1), _OPEN])


def hide_levels(text: bytes) -> bytes:
    """`text` (compact JSON holding HIDDEN_LEVELS_VALUE once) with its markers replaced by the
    strings that close, then reopen, the HIDDEN innermost levels open at the first marker."""
    opened: list[str] = []
    for char in text[: text.index(orjson.dumps(_CLOSE))].decode():
        if char in "[{":
            opened.append(char)
        elif char in "]}":
            opened.pop()
    hidden = opened[-HIDDEN:]
    close = "".join("]" if c == "[" else "}" for c in reversed(hidden))
    text = text.replace(orjson.dumps(_CLOSE), orjson.dumps(close))
    return text.replace(orjson.dumps(_OPEN), orjson.dumps("".join(hidden)))
