"""The entry points: bytes (or a file) -> Sbom, with the format detected from the content.

Every problem with the input is reported as SbomError(source, one-line message); nothing else
escapes for any input bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from sbomgate._internal import jsonpieces
from sbomgate._internal.gcpause import gc_paused
from sbomgate.errors import SbomError
from sbomgate.sbom import cyclonedx_xml
from sbomgate.sbom._common import Invalid, Limits
from sbomgate.sbom.containment import split_contained
from sbomgate.sbom.cyclonedx import RawItems, read_cyclonedx
from sbomgate.sbom.model import (
    OS_PURL_TYPES,
    Component,
    JsonDocument,
    OperatingSystem,
    Sbom,
    SbomFormat,
    is_package,
)
from sbomgate.sbom.spdx import read_spdx
from sbomgate.sbom.spdx3 import is_spdx3, read_spdx3
from sbomgate.sbom.spdx_stream import STREAM_FROM_BYTES, is_spdx_json_head, stream_spdx
from sbomgate.sbom.spdx_tagvalue import is_tag_value, tag_value_to_spdx_json

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_DEPTH",
    "MAX_DOCUMENT_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_NESTED_VALUES",
    "MAX_PARSED_BYTES",
    "MAX_SBOM_BYTES",
    "load_sbom_file",
    "parse_sbom",
    "parse_sbom_decoded",
    "parse_sbom_document",
    "parse_sbom_in_statement",
]

MiB = 1024 * 1024
MAX_SBOM_BYTES = 128 * MiB
"""Largest SBOM document accepted, in bytes: syft's default SPDX JSON of a Debian image is about
70 MB (mostly files[], streamed past: sbom/spdx_stream.py)."""
MAX_PARSED_BYTES = 64 * MiB
"""Largest SBOM parsed whole (every format but large SPDX JSON): parsing takes about 7 bytes of
memory per byte."""
MAX_COMPONENT_DEPTH = 32
"""Deepest nesting of CycloneDX `components[].components[]` accepted."""
MAX_COMPONENTS = 200_000
"""Most components (all nesting levels together) accepted in one SBOM."""
MAX_JSON_DEPTH = 1024
"""orjson's own nesting limit for any JSON; not configurable."""
MAX_NESTED_VALUES = 2_000_000
"""Most objects and arrays (JSON), or elements (XML), in one SBOM, counted on the bytes before
parsing: 64 MiB of `[[],[],...]` would parse to 21 million lists, 2 GB. Real SBOMs hold about
8 per component (200,000 components: 1.6 million)."""
MAX_DOCUMENT_DEPTH = 100
"""Deepest nesting accepted anywhere in an SBOM. The whole document goes to the policies as
`input.v0.sbom`, and the Rego engine refuses input nested deeper than about 125 levels (a
runtime error for every policy); 32 levels of nested components take 66."""

_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _limit(n: int) -> str:
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def _too_big(size: int, max_size: int) -> str:
    return f"SBOM is {_size(size)}, over the {_limit(max_size)} limit"


def parse_sbom(
    data: bytes,
    *,
    source: str,
    max_size: int = MAX_SBOM_BYTES,
    max_depth: int = MAX_COMPONENT_DEPTH,
    max_components: int = MAX_COMPONENTS,
) -> Sbom:
    """Parse a CycloneDX 1.2-1.7 (JSON or XML), SPDX 2.2/2.3 (JSON or tag-value) or SPDX 3.0
    (JSON-LD) document.

    `source` names the document in error messages (a path, `image@sha256:...`, ...).
    Raises SbomError for anything that is not a readable, supported SBOM within the limits.
    """
    try:
        with gc_paused():
            return _parse(data, source, max_size, max_depth, max_components)
    except Invalid as exc:
        raise SbomError(source, exc.message) from None


def load_sbom_file(
    path: str | os.PathLike[str],
    *,
    max_size: int = MAX_SBOM_BYTES,
    max_depth: int = MAX_COMPONENT_DEPTH,
    max_components: int = MAX_COMPONENTS,
) -> Sbom:
    """Read and parse an SBOM file, reading at most `max_size` bytes of it."""
    source = os.fspath(path)
    try:
        with Path(path).open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_size:
                raise SbomError(source, _too_big(size, max_size))
            data = f.read(max_size + 1)  # a pipe or a growing file may exceed st_size
    except OSError as exc:
        raise SbomError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_size:
        raise SbomError(source, f"SBOM is over the {_limit(max_size)} limit")
    return parse_sbom(
        data,
        source=source,
        max_size=max_size,
        max_depth=max_depth,
        max_components=max_components,
    )


def _parse(data: bytes, source: str, max_size: int, max_depth: int, max_components: int) -> Sbom:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_sbom() needs bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise Invalid(_too_big(len(data), max_size))
    view = memoryview(data)
    if view[:3] == _UTF8_BOM:
        view = view[3:]
    head = bytes(view[:4])
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or head in (b"\x00\x00\xfe\xff",):
        raise Invalid("SBOM is UTF-16 or UTF-32 encoded; only UTF-8 is supported")
    first = _first_byte(view)
    if first is None:
        raise Invalid("SBOM is empty")
    limits = Limits(max_depth, max_components)
    raw = data if isinstance(data, bytes | bytearray) else bytes(data)
    if (
        first == ord("{")
        and len(view) >= STREAM_FROM_BYTES
        and is_spdx_json_head(bytes(view[:65536]))
    ):
        # Mostly files[] and relationships, which are not judged: only the packages are built,
        # so neither the size nor the count of values bounds what this costs.
        streamed = stream_spdx(view, limits)
        _check_depth(raw, streamed)
        return _from_document(streamed, source, limits)
    tag_value = is_tag_value(bytes(view[:256]))
    if len(view) > MAX_PARSED_BYTES and not tag_value:
        raise Invalid(
            f"SBOM is {_size(len(view))}, over the {_limit(MAX_PARSED_BYTES)} limit for "
            "documents parsed whole (only SPDX JSON and tag-value are read past it)"
        )
    values = raw.count(b"<") - raw.count(b"</") if first == ord("<") else _values(raw)
    if values > MAX_NESTED_VALUES and not tag_value:
        what = "elements" if first == ord("<") else "objects and arrays"
        raise Invalid(f"SBOM holds over {MAX_NESTED_VALUES} {what}: refused unread")
    if first == ord("<"):
        document = cyclonedx_xml.xml_to_cyclonedx(view, max_depth)
        spec, subject, components, declared = read_cyclonedx(document, limits)
        return _sbom(source, "cyclonedx", spec, subject, components, document, declared)
    if tag_value:
        try:
            text = bytes(view).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(_utf8_error(view)) from None
        spec, subject, components, converted = read_spdx(tag_value_to_spdx_json(text), limits)
        return _sbom(source, "spdx", spec, subject, components, converted)
    if first not in b"{[":
        raise Invalid(_not_json_or_xml(view))
    doc = _load_json(view)
    _check_depth(raw, doc)
    return _from_document(doc, source, limits)


def parse_sbom_document(
    doc: Any,
    *,
    source: str,
    max_depth: int = MAX_COMPONENT_DEPTH,
    max_components: int = MAX_COMPONENTS,
) -> Sbom:
    """An SBOM from an already-decoded JSON document (an attestation's predicate)."""
    try:
        with gc_paused():
            try:
                raw = orjson.dumps(doc)
            except TypeError:  # orjson writes at most 254 levels
                raise Invalid(_too_deep()) from None
            if _values(raw) > MAX_NESTED_VALUES:
                raise Invalid(f"SBOM holds over {MAX_NESTED_VALUES} objects and arrays")
            _check_depth(raw, doc)
            return _from_document(doc, source, Limits(max_depth, max_components))
    except Invalid as exc:
        raise SbomError(source, exc.message) from None


def parse_sbom_decoded(doc: Any, raw: bytes, *, source: str) -> Sbom:
    """`parse_sbom(raw)` where `raw` is `orjson.dumps(doc)`, without decoding it again: an
    attestation's predicate was decoded with its statement, and a second decoding was a tenth
    of a new build's admission. The same checks, the same result; a document `parse_sbom`
    reads another way (SPDX JSON past the size it streams from, anything over a limit) is
    read from the bytes."""
    if type(doc) is not dict or len(raw) >= STREAM_FROM_BYTES or len(raw) > MAX_SBOM_BYTES:
        return parse_sbom(raw, source=source)
    return _read_decoded(doc, raw, source)


def _read_decoded(
    doc: dict[str, Any],
    raw: bytes,
    source: str,
    items: RawItems | None = None,
    *,
    shallow: bool = False,
) -> Sbom:
    """A decoded document read within the limits, counted and measured on `raw`: its own
    JSON, or JSON that holds it one level down (a statement: see parse_sbom_in_statement).
    `shallow`: `raw` is known to nest no deeper than the limit."""
    try:
        with gc_paused():
            if _values(raw) > MAX_NESTED_VALUES:
                raise Invalid(
                    f"SBOM holds over {MAX_NESTED_VALUES} objects and arrays: refused unread"
                )
            if not shallow:
                _check_depth(raw, doc)
            limits = Limits(MAX_COMPONENT_DEPTH, MAX_COMPONENTS)
            return _from_document(doc, source, limits, items)
    except Invalid as exc:
        raise SbomError(source, exc.message) from None


def _from_document(doc: Any, source: str, limits: Limits, items: RawItems | None = None) -> Sbom:
    if type(doc) is not dict:
        raise Invalid("not a CycloneDX or SPDX document (a JSON document that is not an object)")
    if doc.get("bomFormat") == "CycloneDX":
        spec, subject, components, declared = read_cyclonedx(doc, limits, items)
        return _sbom(source, "cyclonedx", spec, subject, components, doc, declared)
    if "spdxVersion" in doc:
        spec, subject, components, converted = read_spdx(doc, limits)
        return _sbom(source, "spdx", spec, subject, components, converted)
    if is_spdx3(doc):
        spec, subject, components, converted = read_spdx3(doc, limits)
        return _sbom(source, "spdx", spec, subject, components, converted)
    raise Invalid(_not_a_document(doc))


def _sbom(
    source: str,
    format_: SbomFormat,
    spec: str,
    subject: Component | None,
    listed: tuple[Component, ...],
    document: Any,
    declared: Mapping[str, tuple[tuple[str | None, str | None], ...]] | None = None,
) -> Sbom:
    """The Sbom, its packages apart from what it lists that is not one (files, data, the
    operating system: policies still see them in `input.v0.sbom`)."""
    kept: list[Component] = []
    apart: list[Component] = []
    for component in listed:
        (kept if is_package(component) else apart).append(component)
    judged, contained = split_contained(tuple(kept))
    others = (*apart, *contained)
    system = _operating_system(tuple(apart), subject)
    packages = judged if system is None else tuple(_with_distro(c, system) for c in judged)
    return Sbom(
        source=source,
        format=format_,
        spec_version=spec,
        subject=subject,
        components=packages,
        document=document,
        others=others,
        operating_system=system,
        declared=declared,
    )


def _with_distro(component: Component, system: OperatingSystem) -> Component:
    """An OS package whose purl names no `distro` belongs to the distribution the SBOM names:
    its trust check asks that release (its purl is left as written)."""
    if component.purl_type not in OS_PURL_TYPES or "distro" in component.qualifiers:
        return component
    return replace(component, qualifiers={**component.qualifiers, "distro": system.distro})


def _operating_system(
    others: tuple[Component, ...], subject: Component | None
) -> OperatingSystem | None:
    """The first `operating-system` entry (syft and trivy list one for an image or a root
    filesystem; the subject is one when the SBOM describes the distribution itself)."""
    for component in (*others, *((subject,) if subject is not None else ())):
        if component.type == "operating-system" and component.name:
            return OperatingSystem(name=component.name.lower(), version=component.version or None)
    return None


def parse_sbom_in_statement(
    predicate: dict[str, Any] | jsonpieces.PartlyDecoded,
    payload: bytes,
    *,
    source: str,
    items: RawItems | None = None,
) -> Sbom:
    """`parse_sbom_decoded` of an attestation's predicate, decoded from the in-toto statement
    whose JSON is `payload` (the verified bytes), without writing the predicate out again: its
    checks count and measure the statement's brackets, a superset of the predicate's one
    level shallower (a statement shallow enough has a predicate shallow enough; past that the
    predicate is measured itself), and the document is the predicate kept as the statement
    (`JsonDocument.in_statement`). Writing a 5,000-component predicate out took a twentieth of
    a new build's admission, holding the GIL throughout. `items`: the raw JSON of the items of
    the predicate's large arrays, by the id of the decoded list (Statement.items), by which
    components are known again rather than by their JSON written out.

    A PartlyDecoded predicate (a large CycloneDX statement's, its `components` still their
    items' JSON) is read as it is when that is the SBOM its value gives: its components known
    again by their JSON are never decoded (a new build's are nearly all known), the others are
    decoded, and checked, as they are read. Otherwise it is decoded whole first."""
    if isinstance(predicate, jsonpieces.PartlyDecoded):
        if (
            len(payload) < STREAM_FROM_BYTES
            and predicate.key == "components"
            and predicate.members.get("bomFormat") == "CycloneDX"
            and _within_depth_limit(payload)
        ):
            sbom = _read_decoded(predicate.members, payload, source, items, shallow=True)
            # The document read is the predicate, which policies see as the statement holds it.
            assert sbom.document is predicate.members
            return replace(sbom, document=JsonDocument.in_statement(payload))
        try:
            predicate = predicate.complete()
        except orjson.JSONDecodeError as exc:
            raise SbomError(
                source, f"the in-toto statement is not JSON ({exc.msg} at line {exc.lineno})"
            ) from None
    if len(payload) >= STREAM_FROM_BYTES:
        # Perhaps read another way by parse_sbom (SPDX JSON streamed, or over a size limit):
        # from the predicate's own text.
        try:
            raw = orjson.dumps(predicate)
        except TypeError:  # orjson writes at most 254 levels
            raise SbomError(source, _too_deep()) from None
        return parse_sbom_decoded(predicate, raw, source=source)
    sbom = _read_decoded(predicate, payload, source, items)
    if sbom.document is predicate:
        return replace(sbom, document=JsonDocument.in_statement(payload))
    return sbom


def _values(raw: bytes | bytearray) -> int:
    """Objects and arrays in JSON bytes, at most (brackets inside strings count too); no more
    than the bytes, so for bytes within a limit their count is not needed to keep to it."""
    if len(raw) <= MAX_NESTED_VALUES:
        return len(raw)
    return raw.count(b"{") + raw.count(b"[")


def _check_depth(raw: bytes | bytearray, doc: Any) -> None:
    """Invalid when the (valid JSON) document nests deeper than MAX_DOCUMENT_DEPTH.

    Measured on its JSON (exact, about 1 ms per MiB); when that is deeper, the document
    decoded is measured, which is less than its JSON only where the document is part of it
    (SPDX JSON streamed past its files)."""
    if _within_depth_limit(raw):
        return
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DOCUMENT_DEPTH:
            raise Invalid(_too_deep())
        if type(value) is dict:
            stack.extend((v, depth + 1) for v in value.values())
        elif type(value) is list:
            stack.extend((v, depth + 1) for v in value)


def _within_depth_limit(raw: bytes | bytearray) -> bool:
    """Whether JSON `raw` nests no deeper than MAX_DOCUMENT_DEPTH (exact for valid JSON)."""
    return jsonpieces.nesting_within(raw, MAX_DOCUMENT_DEPTH)


def _too_deep() -> str:
    return (
        f"nested deeper than {MAX_DOCUMENT_DEPTH} levels: the policies could not read it "
        "(SBOMs need far fewer)"
    )


def _first_byte(view: memoryview) -> int | None:
    """The first non-whitespace byte, or None for an all-whitespace document."""
    for start in range(0, len(view), 65536):
        chunk = view[start : start + 65536].tobytes().lstrip(_WHITESPACE)
        if chunk:
            return chunk[0]
    return None


def _load_json(view: memoryview) -> Any:
    try:
        return orjson.loads(view)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg:
            raise Invalid(_utf8_error(view)) from None
        if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
            raise Invalid(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"nested deeper than {MAX_JSON_DEPTH} levels"
            ) from None
        raise Invalid(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _utf8_error(view: memoryview) -> str:
    raw = view.tobytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return (
            f"not valid UTF-8 at line {line}, column {column} (byte {exc.start}): "
            "SBOMs must be UTF-8"
        )
    # orjson also refuses lone surrogates written as \ud800 escapes.
    return "invalid JSON: a string holds an unpaired UTF-16 surrogate escape"


def _not_json_or_xml(view: memoryview) -> str:
    head = view[:8192].tobytes()
    if b"SPDXVersion:" in head:
        return "SPDX tag-value must start with its SPDXVersion line"
    return "not a CycloneDX or SPDX document (neither JSON nor XML)"


def _not_a_document(doc: dict[str, Any]) -> str:
    if "spdx.org" in str(doc.get("@context")):
        return "not an SPDX 3 JSON-LD document sbomgate reads (its @context is not SPDX 3's)"
    if "predicateType" in doc and "predicate" in doc:
        return (
            "not a CycloneDX or SPDX document: this is an in-toto statement; "
            "its predicate holds the SBOM"
        )
    if "payloadType" in doc and "payload" in doc:
        return "not a CycloneDX or SPDX document: this is a DSSE envelope"
    if "bomFormat" in doc:
        return f"not a CycloneDX or SPDX document (bomFormat is {doc['bomFormat']!r})"
    return "not a CycloneDX or SPDX document"
