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

`loads(..., defer=)` may leave one large array undecoded (a RawArray in a PartlyDecoded object):
a CycloneDX statement's components, which the SBOM reader mostly knows by their JSON (a new
build's), and decodes, with orjson, only where it does not. Its items' structure is msgspec's
reading; their strings and numbers are checked by whoever decodes them.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

__all__ = ["PIECE_BYTES", "ArrayItems", "PartlyDecoded", "RawArray", "loads", "nesting_within"]

# Members up to this size are decoded in one orjson call (about 0.5 ms at the most).
PIECE_BYTES = 64 * 1024
# orjson refuses documents nested deeper. msgspec refuses nesting past the interpreter's
# recursion limit (less the stack in use) while it reads the outer structure, so at a limit of
# at most this, what it accepts is within orjson's limit, counted from the document's top.
_ORJSON_DEPTH = 1024
# With a higher limit (Hypothesis raises it, for one), a document is decoded in pieces only if
# its brackets show that it nests no deeper than this.
_MAX_DEPTH = 512
# What nesting_within keeps of JSON (brackets and quotes), objects' brackets made arrays'.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
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


class RawArray:
    """A large array `loads(..., defer=)` left undecoded: its items' raw JSON, whose structure
    msgspec has read (brackets, quotes, commas) but whose strings and numbers orjson has not
    yet checked (UTF-8, a number's range): `decode` does, and a reader that knows an item's
    JSON as text it decoded before may take that instead."""

    __slots__ = ("raws",)

    def __init__(self, raws: list[msgspec.Raw]) -> None:
        self.raws = raws

    def decode(self, start: int = 0, end: int | None = None) -> list[Any]:
        """Items [start, end) as orjson decodes them; orjson.JSONDecodeError if one is not
        valid JSON (its position is within the batch, not the document)."""
        return _batches(self.raws[start:end])


_UNDECODED = object()


@dataclass(slots=True, eq=False)
class PartlyDecoded:
    """An object `loads(..., defer=)` decoded but for one large array member (a RawArray):
    `complete()` is the object as `orjson.loads` gives it, decoded once when first asked."""

    members: dict[str, Any]  # the object's members, in order, the deferred one a RawArray
    document: bytes  # what it was read from: orjson's own error, if an item is not JSON
    path: str  # the member of the document's top object that is this object
    key: str  # its member that is the RawArray
    items: ArrayItems | None  # where `complete()` records the array's raw items
    _value: Any = _UNDECODED
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def array(self) -> RawArray:
        """The member left undecoded."""
        deferred = self.members[self.key]
        assert type(deferred) is RawArray
        return deferred

    def complete(self) -> dict[str, Any]:
        """The object decoded whole: `orjson.loads(document)[path]`, or orjson's error for the
        whole document."""
        with self._lock:
            if self._value is _UNDECODED:
                array = self.array
                try:
                    decoded = array.decode()
                except orjson.JSONDecodeError:
                    # orjson's own error, its position in the document (or, were they ever to
                    # differ, its value).
                    self._value = orjson.loads(self.document)[self.path]
                    return self._value  # type: ignore[no-any-return]
                if self.items is not None:
                    self.items[id(decoded)] = array.raws
                self._value = {
                    key: decoded if value is array else value for key, value in self.members.items()
                }
            return self._value  # type: ignore[no-any-return]


def loads(
    data: bytes, items: ArrayItems | None = None, defer: tuple[str, str] | None = None
) -> Any:
    """`orjson.loads(data)`: the same value, or the same orjson.JSONDecodeError. With `items`,
    the raw JSON of the items of each array decoded in batches is added to it (nothing when
    the document was decoded whole): what a reader that keys items by their JSON can use
    rather than writing each item out again.

    `defer` = (member, key): when the document is decoded in pieces and its top object's
    `member` is an object whose `key` is an array over PIECE_BYTES, that member is a
    PartlyDecoded whose `key` is a RawArray (a reader that knows most items may decode only the
    others; `complete()` is what orjson gives). Everything else is decoded, and checked, now."""
    if len(data) <= PIECE_BYTES:
        return orjson.loads(data)
    if sys.getrecursionlimit() > _ORJSON_DEPTH and not _shallow(data):
        return orjson.loads(data)
    try:
        try:
            members = _TWO_LEVELS.decode(data)
        except msgspec.ValidationError:  # valid JSON of another shape
            return _decode(memoryview(data), items)
        decoded: dict[str, Any] = {}
        for name, value in members.items():
            if defer is not None and name == defer[0] and type(value) is dict and defer[1] in value:
                decoded[name] = _deferring(data, name, value, defer[1], items)
            else:
                decoded[name] = _member(value, items)
        return decoded
    except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError):
        return orjson.loads(data)  # orjson's error (or, were they ever to differ, its value)


def _deferring(
    data: bytes,
    member: str,
    value: dict[str, msgspec.Raw],
    key: str,
    items: ArrayItems | None,
) -> Any:
    """A member of the top object with its `key` left a RawArray when that is a large array
    (a PartlyDecoded), else decoded as _member decodes it."""
    raw = memoryview(value[key])
    if len(raw) <= PIECE_BYTES or bytes(raw[:64]).lstrip(_WHITESPACE)[:1] != b"[":
        return _member(value, items)
    members = {
        name: RawArray(_ARRAY.decode(raw)) if name == key else _decode(memoryview(text), items)
        for name, text in value.items()
    }
    return PartlyDecoded(members=members, document=data, path=member, key=key, items=items)


def _shallow(data: bytes) -> bool:
    """Whether the document nests no deeper than _MAX_DEPTH (if not, it is decoded whole)."""
    return nesting_within(data, _MAX_DEPTH)


def nesting_within(data: bytes | bytearray, levels: int) -> bool:
    """Whether JSON nests no deeper than `levels` (a scalar is 0 levels, `[]` one), exactly
    for valid JSON, on its bytes alone: about 1 ms a MiB, 3 ms for syft's 1.5 MB SBOM of
    Debian, against 35 ms to walk it decoded.

    Escapes go first (a backslash and the character it escapes), then all but brackets and
    quotes; what is left between a pair of quotes is a string's brackets, and goes too. Each
    pass then strips every innermost pair, exactly one level. (Counting brackets in strings
    too was unsure both ways: syft lists `/usr/bin/[`, and `"]]]"` in a deep document hides
    levels from the count.)"""
    if b"\\" in data:
        data = _unescaped(data)
    structure = data.translate(_ONE_BRACKET, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:  # strings that hold brackets: keep what is between them
        structure = b"".join(structure.split(b'"')[::2])
    for _ in range(levels):
        if not structure:
            return True
        structure = structure.replace(b"[]", b"")
    return not structure


def _unescaped(data: bytes | bytearray) -> bytes:
    """JSON without its escapes: each backslash and the character after it removed (only an
    escaped quote or backslash matters to the structure; the others are letters)."""
    if data.count(b"\\") <= len(data) >> 8:
        return _ESCAPE.sub(b"", data)
    # Many escapes (a regular expression's match each costs far more than a byte): escaped
    # backslashes first (a run of backslashes pairs up from its left), then escaped quotes.
    return bytes(data).replace(b"\\\\", b"").replace(b'\\"', b"")


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
    out = _batches(raws)
    if items is not None and out:
        items[id(out)] = raws
    return out


def _batches(raws: list[msgspec.Raw]) -> list[Any]:
    """The items decoded by orjson some PIECE_BYTES at a time, as one list."""
    if not raws:
        return []
    total = sum(map(len, raws))
    per = max(1, PIECE_BYTES * len(raws) // max(total, 1))
    out: list[Any] = []
    for start in range(0, len(raws), per):
        out += orjson.loads(b"[" + b",".join(raws[start : start + per]) + b"]")
    return out
