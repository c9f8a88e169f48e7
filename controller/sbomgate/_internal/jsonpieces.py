"""Large JSON documents decoded a piece at a time, so that no one call holds the GIL for long.

orjson decodes a 5,000-component in-toto statement (1.8 MB) in one call of 7-13 ms, and no other
thread of the webhook runs meanwhile: a warm review that arrives then waits it out, and with a
few new builds a second, the warm reviews' p99 passes 20 ms while the process uses 0.4 of a
core (bench_soak.py). Here msgspec first reads the document's outer structure only, leaving
each member as raw bytes (`msgspec.Raw`, 1-2 ms for the whole statement); members over
PIECE_BYTES are read the same way, the rest decoded by orjson one by one, and the interpreter
hands the GIL over between them.

The result is orjson's, value and error alike: every value is decoded by orjson (but for the
top object's strings, booleans and nulls, which msgspec reads as orjson does); where msgspec
refuses anything (malformed JSON, nesting past its limit), orjson decodes the whole document
as before, with its own message, and that includes nesting past orjson's 1,024 levels (in
pieces, orjson's limit would count from each piece's top: see _ORJSON_DEPTH).
Duplicate keys keep the first position and the last value in both. One difference remains: a
value that a later duplicate key replaces is checked by msgspec alone, which does not refuse
invalid UTF-8 or an infinite number in it, where orjson refuses the whole document.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import orjson

__all__ = ["PIECE_BYTES", "ArrayItems", "loads"]

# Members up to this size are decoded in one orjson call (about 0.5 ms at the most).
PIECE_BYTES = 64 * 1024
# orjson refuses documents nested deeper. msgspec refuses nesting past the interpreter's
# recursion limit (less the stack in use) while it reads the outer structure, so at a limit of
# at most this, what it accepts is within orjson's limit, counted from the document's top.
_ORJSON_DEPTH = 1024
# With a higher limit (Hypothesis raises it, for one), a document is decoded in pieces only if
# its brackets show that it nests no deeper than this.
_MAX_DEPTH = 512
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_WHITESPACE = b" \t\r\n"
# Decoders are shared by the check threads: msgspec's are thread-safe (since 0.16).
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
# An object's members and their members in one reading (a statement and its predicate, a
# bundle and its envelope): one pass over the bytes less. It takes strings, booleans and nulls
# as they are at the top (msgspec decodes them as orjson does); anything else there, a number
# say, fails its type, and the object is read one level at a time.
_TWO_LEVELS = msgspec.json.Decoder(
    dict[str, dict[str, msgspec.Raw] | list[msgspec.Raw] | str | bool | None]
)


# The raw JSON of each item of the arrays decoded in batches, by the id of the decoded list
# (which the decoded document holds, so the id names no other object while it is kept).
ArrayItems = dict[int, list[msgspec.Raw]]


def loads(data: bytes, items: ArrayItems | None = None) -> Any:
    """`orjson.loads(data)`: the same value, or the same orjson.JSONDecodeError. With `items`,
    the raw JSON of the items of each array decoded in batches is added to it (nothing when
    the document was decoded whole): what a reader that keys items by their JSON can use
    rather than writing each item out again."""
    if len(data) <= PIECE_BYTES:
        return orjson.loads(data)
    if sys.getrecursionlimit() > _ORJSON_DEPTH and not _shallow(data):
        return orjson.loads(data)
    try:
        try:
            members = _TWO_LEVELS.decode(data)
        except msgspec.ValidationError:  # valid JSON of another shape
            return _decode(memoryview(data), items)
        return {key: _member(value, items) for key, value in members.items()}
    except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError):
        return orjson.loads(data)  # orjson's error (or, were they ever to differ, its value)


def _shallow(data: bytes) -> bool:
    """Whether the brackets nest no deeper than _MAX_DEPTH (those in strings count too, so
    this may say no of a document that is shallow enough: it is then decoded whole). Each pass
    strips the innermost pairs, one or two levels."""
    brackets = data.translate(None, _NOT_BRACKETS)
    for _ in range(_MAX_DEPTH // 2):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return not brackets


def _member(
    value: dict[str, msgspec.Raw] | list[msgspec.Raw] | str | bool | None,
    items: ArrayItems | None,
) -> Any:
    """A member of the top object as _TWO_LEVELS gives it."""
    if type(value) is dict:
        return {key: _decode(memoryview(raw), items) for key, raw in value.items()}
    if type(value) is list:
        return _array(value, items)
    return value


def _decode(raw: memoryview, items: ArrayItems | None) -> Any:
    """One member: decoded by orjson when small or a scalar, else as its parts."""
    if len(raw) <= PIECE_BYTES:
        return orjson.loads(raw)
    first = bytes(raw[:64]).lstrip(_WHITESPACE)[:1]
    if first == b"{":
        members = _OBJECT.decode(raw)
        return {key: _decode(memoryview(value), items) for key, value in members.items()}
    if first == b"[":
        return _array(_ARRAY.decode(raw), items)
    return orjson.loads(raw)  # a long string or number


def _array(raws: list[msgspec.Raw], items: ArrayItems | None) -> list[Any]:
    """An array's items, decoded a batch at a time, as the array of exactly those items: one
    orjson call per PIECE_BYTES or so (one per item doubled the time of decoding a statement).
    A batch is a number of items, from their average size: an item far larger than the rest
    is decoded with its batch."""
    if not raws:
        return []
    total = sum(map(len, raws))
    per = max(1, PIECE_BYTES * len(raws) // max(total, 1))
    out: list[Any] = []
    for start in range(0, len(raws), per):
        out += orjson.loads(b"[" + b",".join(raws[start : start + per]) + b"]")
    if items is not None:
        items[id(out)] = raws
    return out
