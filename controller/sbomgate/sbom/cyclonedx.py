"""CycloneDX 1.2-1.7 in its JSON shape (parsed JSON, or XML converted by cyclonedx_xml) ->
subject and flattened components. This is the admission hot path: keep it lean."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import orjson

from sbomgate._internal import digests
from sbomgate._internal.jsonpieces import RawArray
from sbomgate.sbom._common import (
    Invalid,
    Limits,
    component_from_parts,
    describe,
    purl_or_error,
    read_hashes,
    shown,
)
from sbomgate.sbom.licenses import (
    UNKNOWN_LICENSES,
    Entry,
    LicenseLibraryError,
    LicenseSyntaxError,
    combine_and,
    normalise_expression,
)
from sbomgate.sbom.model import Component
from sbomgate.sbom.purl import parse_purl

__all__ = [
    "PEDIGREE_LISTS",
    "SUPPORTED_VERSIONS",
    "add_declared",
    "declared_pair",
    "read_cyclonedx",
    "read_licenses",
]

SUPPORTED_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
_LICENSE_KEYS: tuple[Literal["id", "name"], ...] = ("id", "name")
# A component's pedigree lists other components it was derived from (ancestors), that were
# derived from it (descendants) or that are variants of it: each is a package too, and is judged.
PEDIGREE_LISTS = ("ancestors", "descendants", "variants")


def check_spec_version(spec: Any) -> str:
    """The specVersion when it is one we read; Invalid otherwise."""
    if spec is None:
        raise Invalid("CycloneDX document has no specVersion")
    if not isinstance(spec, str):
        raise Invalid(f"specVersion: expected a string, got {describe(spec)}")
    if spec not in SUPPORTED_VERSIONS:
        raise Invalid(f"CycloneDX specVersion {shown(spec)} is not supported (1.2–1.7 are)")  # noqa: RUF001
    return spec


# The `name` and `group` components state beside their purls, by canonical purl, in document
# order (`identity.declared_fields` computes the same from a document).
Declared = dict[str, tuple[tuple[str | None, str | None], ...]]


# The raw JSON of the items of a document's large arrays, by the id of the list each array was
# decoded into (what `jsonpieces.loads` records; the decoded document keeps those lists alive).
RawItems = Mapping[int, Sequence[Any]]


def read_cyclonedx(
    doc: dict[str, Any], limits: Limits, items: RawItems | None = None
) -> tuple[str, Component | None, tuple[Component, ...], Declared]:
    """Return (specVersion, subject, flattened components, declared names) of a CycloneDX
    JSON-shaped dict. The declared names are gathered from the subject and the components
    nested in it and in `components`, not from pedigrees, as `identity.declared_fields` reads
    a document. `items`: the raw JSON of the `components` items, which keys them in the memo."""
    spec = check_spec_version(doc.get("specVersion"))
    out: list[Component] = []
    declared: Declared = {}
    subject: Component | None = None
    metadata = doc.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise Invalid(f"metadata: expected an object, got {describe(metadata)}")
        main = metadata.get("component")
        if main is not None:
            subject = _component(main, "metadata.component")
            add_declared(declared, declared_pair(main))
            # Sub-components of the subject (and its pedigree) are packages of the image too.
            _children(main, "metadata.component", 2, limits, out, declared)
    components = doc.get("components")
    if type(components) is RawArray:  # a large statement's, not decoded yet
        limits.add(len(components.raws))
        if components.raws:
            _walk_runs(components, "components", 1, limits, out, declared, components.raws)
    elif components is not None:
        raws = items.get(id(components)) if items else None
        if raws is not None and len(raws) != len(components):
            raws = None  # not the list they were read into
        _walk(components, "components", 1, limits, out, declared, raws)
    return spec, subject, tuple(out), declared


def _walk(
    items: Any,
    path: str,
    depth: int,
    limits: Limits,
    out: list[Component],
    declared: Declared | None,
    raws: Sequence[Any] | None = None,
) -> None:
    """Depth-first, document order: a component, its nested components, then its pedigree's
    (whose names are not gathered: `declared` is None there). `raws`: each item's JSON."""
    if type(items) is not list:
        raise Invalid(f"{path}: expected an array, got {describe(items)}")
    if depth > limits.max_depth:
        raise Invalid(f"{path}: components nested deeper than {limits.max_depth} levels")
    limits.add(len(items))
    if raws and declared is not None:
        _walk_runs(items, path, depth, limits, out, declared, raws)
        return
    for i, item in enumerate(items):
        _walk_item(item, path, i, depth, limits, out, declared, raws[i] if raws else None)


def _walk_item(
    item: Any,
    path: str,
    index: int,
    depth: int,
    limits: Limits,
    out: list[Component],
    declared: Declared | None,
    raw: Any,
) -> None:
    """One item of a components list, and the components it holds."""
    component, pair, names = _remembered_component(item, path, index, raw)
    out.append(component)
    if declared is not None:
        add_declared(declared, pair, names)
    # (Most have neither: their path is not written out for nothing.)
    if type(item) is dict and ("components" in item or "pedigree" in item):
        _children(item, f"{path}[{index}]", depth + 1, limits, out, declared)


def _walk_runs(
    items: list[Any] | RawArray,
    path: str,
    depth: int,
    limits: Limits,
    out: list[Component],
    declared: Declared,
    raws: Sequence[Any],
) -> None:
    """`_walk` of a list whose items' JSON is known, a run of items at a time: a run whose JSON
    was read before is taken from RUN_MEMO whole (its components, nested ones included, their
    declared names and how many were nested) rather than item by item. A run ends after an
    item whose JSON's length is a multiple of _RUN_END (or after _RUN_MAX items), so runs are
    cut by what the items say, not by where they are: a new build's bumped package changes its
    own run, and the runs after it are still those of the build before. `items` a RawArray
    (`raws`' own): the items of the runs not known are decoded here, and only those."""
    # The limit on nesting is in the key: what was read within one limit is known again only
    # within the same.
    prefix = b"%d\0" % limits.max_depth
    start = 0
    for end in _run_ends(raws):
        # No item's JSON holds a NUL byte (JSON escapes control characters in strings), so the
        # joined text names the items one by one.
        # SHA-256: with the processor's SHA instructions (x86 since 2017-2019, ARMv8) twice as
        # fast as BLAKE2b, which hashlib computes in software (1.2 against 2.2 ms a 1.8 MB
        # statement here); a new build hashes every item's JSON. With the GIL held (digests).
        key = digests.sha256(prefix + b"\0".join(raws[start:end]))
        run = RUN_MEMO.get(key)
        if run is None:
            first, counted = len(out), limits.count
            # The run's declared names apart, then added in their order: the same names in
            # the same order as when added one by one.
            names: Declared = {}
            if isinstance(items, RawArray):
                run_items, offset = _decoded(items, path, start, end), start
            else:
                run_items, offset = items, 0
            for i in range(start, end):
                _walk_item(run_items[i - offset], path, i, depth, limits, out, names, raws[i])
            run = _Run(components=tuple(out[first:]), declared=names, nested=limits.count - counted)
            RUN_MEMO.put(key, run)
        else:
            out += run.components
            limits.add(run.nested)
        if declared.keys().isdisjoint(run.declared):  # as a rule: the run's are new purls
            declared.update(run.declared)
        else:
            for canonical, pairs in run.declared.items():
                for pair in pairs:
                    add_declared(declared, (canonical, pair))
        start = end


def _decoded(array: RawArray, path: str, start: int, end: int) -> list[Any]:
    """Items [start, end) of an array not decoded yet; Invalid naming the first that is not
    JSON (the statement's own checks left them to the reader)."""
    try:
        return array.decode(start, end)
    except orjson.JSONDecodeError:
        for index in range(start, end):
            try:
                array.decode(index, index + 1)
            except orjson.JSONDecodeError as exc:
                raise Invalid(f"{path}[{index}]: not JSON ({exc.msg})") from None
        raise  # (each item alone is JSON, so the batch is too: not reached)


def _run_ends(raws: Sequence[Any]) -> list[int]:
    """Where the runs of _walk_runs end: after each item whose JSON's length is a multiple of
    _RUN_END, after every _RUN_MAX items without one, and at the end."""
    ends = [i for i, size in enumerate(map(len, raws), 1) if size % _RUN_END == 0]
    if raws and (not ends or ends[-1] != len(raws)):
        ends.append(len(raws))
    cut: list[int] = []
    start = 0
    for end in ends:
        while end - start > _RUN_MAX:
            start += _RUN_MAX
            cut.append(start)
        cut.append(end)
        start = end
    return cut


_Pair = tuple[str, tuple[str | None, str | None]]


def declared_pair(obj: Any) -> _Pair | None:
    """(canonical purl, (name, group)) of a component object with a purl that parses."""
    # A parsed document holds dicts: the ABC check (slow) only for anything else.
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return None
    purl = obj.get("purl")
    if not isinstance(purl, str) or not purl:
        return None
    try:
        canonical = parse_purl(purl).canonical
    except ValueError:
        return None
    name, group = obj.get("name"), obj.get("group")
    return canonical, (
        name if isinstance(name, str) else None,
        group if isinstance(group, str) else None,
    )


def add_declared(
    declared: Declared,
    pair: _Pair | None,
    alone: tuple[tuple[str | None, str | None]] | None = None,
) -> None:
    """Add a component's declared names to those of its canonical purl, once each. `alone`:
    `(names,)` as made with the component's read (`_Read`), kept when the purl has no others."""
    if pair is None:
        return
    canonical, names = pair
    seen = declared.get(canonical)
    if seen is None:
        declared[canonical] = alone if alone is not None else (names,)
    elif names not in seen:
        declared[canonical] = (*seen, names)


_Value = TypeVar("_Value")


class _Memo(Generic[_Value]):
    """Values by a digest of the JSON they were read from, the least recently used dropped
    beyond `size`, each value weighing what `weigh` says. Thread-safe. (No object per entry
    beside the value: a cold image adds thousands of entries, and every object that lives on
    is one the cyclic GC scans.)"""

    def __init__(self, size: int, weigh: Callable[[_Value], int] | None = None) -> None:
        self._size = size
        self._weigh = weigh
        self._weight = 0
        self._items: OrderedDict[bytes, _Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _Value | None:
        # Without the lock: each OrderedDict call is atomic under the GIL, and an entry that
        # `put` evicts meanwhile is simply not moved.
        found = self._items.get(key)
        if found is not None:
            try:  # noqa: SIM105 (suppress() costs a context manager per call)
                self._items.move_to_end(key)
            except KeyError:
                pass
        return found

    def put(self, key: bytes, value: _Value) -> None:
        weigh = self._weigh
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= 1 if weigh is None else weigh(old)
            self._items[key] = value
            self._weight += 1 if weigh is None else weigh(value)
            while self._weight > self._size and self._items:
                evicted = self._items.popitem(last=False)[1]
                self._weight -= 1 if weigh is None else weigh(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._weight = 0


# A component as read: the Component, its declared pair, and that pair's names alone as
# `Declared` holds them when a purl has only those (made once, with the read: a value of
# Sbom.declared for every image that lists it, not a new tuple in each, which the cyclic GC
# would have to scan once each).
_Read = tuple[Component, _Pair | None, tuple[tuple[str | None, str | None]] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """What a run of a components list's items read to (see _walk_runs)."""

    components: tuple[Component, ...]  # in document order, nested ones included
    # The names they declare, by canonical purl, in the order first declared (never changed:
    # the values are tuples, and add_declared replaces them).
    declared: Declared
    nested: int  # how many of the components are nested (the limit counts them)


# Components by their JSON: a new build's SBOM lists the packages of the build before, object
# for object, and hashing one's JSON costs about a tenth of reading it. About ten
# 5,000-component images: a new build is read from the memo only if its components are still
# there after the images admitted since the build before (bench_webhook --cold admits seven
# others first: with three images' worth, 16,384, a new build took 134-140 ms, not 110).
# About 2 KB an entry (the Component, its strings, its key): some 100 MB when full.
COMPONENT_MEMO: _Memo[_Read] = _Memo(49_152)
# Runs of components by their items' JSON (see _walk_runs), weighed by their components: as many
# as COMPONENT_MEMO, mostly the same objects (a run's entry itself is a few hundred bytes), so
# at worst, once the two hold different images, twice its memory.
RUN_MEMO: _Memo[_Run] = _Memo(49_152, lambda run: len(run.components))


def clear_memos() -> None:
    """Forget every component and run read (tests read documents afresh this way)."""
    COMPONENT_MEMO.clear()
    RUN_MEMO.clear()


# A run ends after an item whose JSON's length is a multiple of this: about 8 items a run, of
# which a new build that bumps 2 % of its packages changes 15 %.
_RUN_END = 8
# ... or after this many items (JSON whose items' lengths never end a run: say, all the same).
_RUN_MAX = 32


def _remembered_component(obj: Any, path: str, index: int, raw: Any = None) -> _Read:
    """`_component` and `_declared_pair`, remembered by the object's serialisation: its JSON as
    written (`raw`, when the decoder kept it), else as orjson writes it out (1.5 µs a
    component). Either text decodes to this object, so one memo serves both. Only what
    was read is kept: a component in error is read again, so its message names where it is in
    this document. The object's nested components are in its key too (harmless: they are rare,
    and read apart)."""
    if type(obj) is not dict:
        return _component(obj, path, index), None, None
    try:
        # 256 bits: the SBOM's writer chooses these objects; two of them (one read first, one
        # later) must not be made to collide.
        text = raw if raw is not None else orjson.dumps(obj)
        key = digests.sha256(text)
    except orjson.JSONEncodeError:  # nested past orjson's depth: checked elsewhere
        return _read(obj, path, index)
    found = COMPONENT_MEMO.get(key)
    if found is None:
        found = _read(obj, path, index)
        COMPONENT_MEMO.put(key, found)
    return found


def _read(obj: dict[str, Any], path: str, index: int) -> _Read:
    component, pair = _component(obj, path, index), declared_pair(obj)
    return component, pair, None if pair is None else (pair[1],)


def _children(
    item: dict[str, Any],
    path: str,
    depth: int,
    limits: Limits,
    out: list[Component],
    declared: Declared | None,
) -> None:
    """The components under one component: `components[]`, and its pedigree's lists."""
    nested = item.get("components")
    if nested is not None:
        _walk(nested, f"{path}.components", depth, limits, out, declared)
    pedigree = item.get("pedigree")
    if pedigree is None:
        return
    if type(pedigree) is not dict:
        raise Invalid(f"{path}.pedigree: expected an object, got {describe(pedigree)}")
    for key in PEDIGREE_LISTS:
        related = pedigree.get(key)
        if related is not None:
            _walk(related, f"{path}.pedigree.{key}", depth, limits, out, None)


def _component(obj: Any, path: str, index: int | None = None) -> Component:
    if type(obj) is not dict:
        raise Invalid(f"{_at(path, index)}: expected an object, got {describe(obj)}")
    get = obj.get
    name = get("name")
    if name is not None and type(name) is not str:
        raise Invalid(f"{_at(path, index)}.name: expected a string, got {describe(name)}")
    version = get("version")
    if version is not None and type(version) is not str:
        raise Invalid(f"{_at(path, index)}.version: expected a string, got {describe(version)}")
    purl = get("purl")
    parsed = None
    if purl is not None:
        if type(purl) is not str:
            raise Invalid(f"{_at(path, index)}.purl: expected a string, got {describe(purl)}")
        if purl:
            parsed = purl_or_error(purl, f"{_at(path, index)}.purl")
    if parsed is None and not name:
        raise Invalid(f"{_at(path, index)}: component has neither a name nor a purl")
    bom_ref = get("bom-ref")
    if bom_ref is not None and type(bom_ref) is not str:
        raise Invalid(f"{_at(path, index)}.bom-ref: expected a string, got {describe(bom_ref)}")
    kind = get("type")
    if kind is not None and type(kind) is not str:
        raise Invalid(f"{_at(path, index)}.type: expected a string, got {describe(kind)}")

    license_: str | None = None
    raw_license: str | None = None
    license_error: str | None = None
    licenses = get("licenses")
    if licenses:
        license_, raw_license, license_error = _licenses(licenses, path, index)

    raw_hashes = get("hashes")
    hashes = (
        read_hashes(raw_hashes, f"{_at(path, index)}.hashes", "alg", "content")
        if raw_hashes is not None
        else {}
    )

    return component_from_parts(
        parsed,
        name=name,
        version=version,
        license_=license_,
        raw_license=raw_license,
        license_error=license_error,
        hashes=hashes,
        bom_ref=bom_ref,
        type_=kind,
        locations=_locations(obj) if parsed is None else (),
    )


def _locations(obj: dict[str, Any]) -> tuple[str, ...]:
    """Where the tool says it found the component: `evidence.occurrences[].location` (CycloneDX
    1.5+) and syft's `syft:location:N:path` properties. Entries of another shape are left out:
    fewer locations only ever keep a component judged."""
    found: list[str] = []
    evidence = obj.get("evidence")
    occurrences = evidence.get("occurrences") if type(evidence) is dict else None
    if type(occurrences) is list:
        found += [
            o["location"] for o in occurrences if type(o) is dict and type(o.get("location")) is str
        ]
    properties = obj.get("properties")
    if type(properties) is list:
        for prop in properties:
            if type(prop) is not dict:
                continue
            key, value = prop.get("name"), prop.get("value")
            if type(key) is str and type(value) is str and _SYFT_LOCATION.fullmatch(key):
                found.append(value)
    return tuple(found)


_SYFT_LOCATION = re.compile(r"syft:location:\d+:path")


def _at(path: str, index: int | None) -> str:
    return path if index is None else f"{path}[{index}]"


def _licenses(
    licenses: Any, path: str, index: int | None
) -> tuple[str | None, str | None, str | None]:
    """CycloneDX `licenses[]` -> (SPDX expression or None, raw text, license error or None)."""
    if type(licenses) is not list:
        raise Invalid(f"{_at(path, index)}.licenses: expected an array, got {describe(licenses)}")
    entries: list[Entry] = []
    raws: list[str] = []
    for j, entry in enumerate(licenses):
        if type(entry) is not dict:
            raise Invalid(f"{_entry(path, index, j)}: expected an object, got {describe(entry)}")
        expression = entry.get("expression")
        if expression is not None:
            if type(expression) is not str:
                raise Invalid(
                    f"{_entry(path, index, j)}.expression: expected a string, "
                    f"got {describe(expression)}"
                )
            text = expression.strip()
            raws.append(text)
            if text not in UNKNOWN_LICENSES:
                _check_syntax(text, path, index, j)
                entries.append(("expression", text))
            continue
        lic = entry.get("license")
        if lic is None:
            continue
        if type(lic) is not dict:
            raise Invalid(
                f"{_entry(path, index, j)}.license: expected an object, got {describe(lic)}"
            )
        for key in _LICENSE_KEYS:  # an id when there is one, else the name
            value = lic.get(key)
            if value is None:
                continue
            if type(value) is not str:
                raise Invalid(
                    f"{_entry(path, index, j)}.license.{key}: expected a string, "
                    f"got {describe(value)}"
                )
            text = value.strip()
            raws.append(text)
            if text not in UNKNOWN_LICENSES:
                entries.append((key, text))
            break
    raw = " AND ".join(raws) if raws else None
    try:
        return combine_and(tuple(entries)), raw, None
    except LicenseLibraryError as exc:
        return None, raw, str(exc)


def read_licenses(licenses: Any, path: str) -> tuple[str | None, str | None, str | None]:
    """A CycloneDX `licenses` array at `path` -> (SPDX expression or None, raw text, license
    error or None), as a component's own are read."""
    return _licenses(licenses, path, None)


def _entry(path: str, index: int | None, j: int) -> str:
    return f"{_at(path, index)}.licenses[{j}]"


def _check_syntax(text: str, path: str, index: int | None, j: int) -> None:
    """An expression entry that is not an expression is the document's error, said where."""
    try:
        normalise_expression(text)
    except LicenseSyntaxError as exc:
        raise Invalid(
            f"{_entry(path, index, j)}.expression: invalid SPDX license expression {text!r}: {exc}"
        ) from None
    except LicenseLibraryError:
        pass  # not the document's syntax: reported for the component (license_error)
