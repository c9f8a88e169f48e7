"""The entry points: bytes (or a file) -> Sbom, with the format detected from the content.

Every problem with the input is reported as SbomError(source, one-line message); nothing else
escapes for any input bytes.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from sbomgate.errors import SbomError
from sbomgate.sbom import cyclonedx_xml
from sbomgate.sbom._common import Invalid, Limits
from sbomgate.sbom.cyclonedx import read_cyclonedx
from sbomgate.sbom.model import Sbom
from sbomgate.sbom.spdx import read_spdx

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_SBOM_BYTES",
    "load_sbom_file",
    "parse_sbom",
    "parse_sbom_document",
]

MiB = 1024 * 1024
MAX_SBOM_BYTES = 64 * MiB
"""Largest SBOM document accepted, in bytes."""
MAX_COMPONENT_DEPTH = 32
"""Deepest nesting of CycloneDX `components[].components[]` accepted."""
MAX_COMPONENTS = 200_000
"""Most components (all nesting levels together) accepted in one SBOM."""
MAX_JSON_DEPTH = 1024
"""orjson's own nesting limit for any JSON; not configurable."""

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
    """Parse a CycloneDX 1.2-1.6 (JSON or XML) or SPDX 2.2/2.3 (JSON) document.

    `source` names the document in error messages (a path, `image@sha256:...`, ...).
    Raises SbomError for anything that is not a readable, supported SBOM within the limits.
    """
    try:
        with _gc_paused():
            return _parse(data, source, max_size, max_depth, max_components)
    except Invalid as exc:
        raise SbomError(source, exc.message) from None


# Parsing allocates hundreds of thousands of container objects (orjson's dicts, the
# Components) and none of them form cycles, yet each allocation burst makes the cyclic GC
# re-scan everything alive: measured here, GC was 35-40% of the parse time of a 5,000- and a
# 20,000-component SBOM. So the collector is paused while a parse runs (reference counting
# still frees everything as usual). The counter makes this correct when several threads
# parse at once: the collector is re-enabled by the last one out, and only if it was on.
_gc_lock = threading.Lock()
_gc_active = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    global _gc_active, _gc_was_enabled
    with _gc_lock:
        if _gc_active == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_active += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_active -= 1
            if _gc_active == 0 and _gc_was_enabled:
                gc.enable()


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
    if first == ord("<"):
        document = cyclonedx_xml.xml_to_cyclonedx(view, max_depth)
        spec, subject, components = read_cyclonedx(document, limits)
        return Sbom(source, "cyclonedx", spec, subject, components, document)
    if first not in b"{[":
        raise Invalid(_not_json_or_xml(view))
    return _from_document(_load_json(view), source, limits)


def parse_sbom_document(
    doc: Any,
    *,
    source: str,
    max_depth: int = MAX_COMPONENT_DEPTH,
    max_components: int = MAX_COMPONENTS,
) -> Sbom:
    """An SBOM from an already-decoded JSON document (an attestation's predicate)."""
    try:
        with _gc_paused():
            return _from_document(doc, source, Limits(max_depth, max_components))
    except Invalid as exc:
        raise SbomError(source, exc.message) from None


def _from_document(doc: Any, source: str, limits: Limits) -> Sbom:
    if type(doc) is not dict:
        raise Invalid("not a CycloneDX or SPDX document (a JSON document that is not an object)")
    if doc.get("bomFormat") == "CycloneDX":
        spec, subject, components = read_cyclonedx(doc, limits)
        return Sbom(source, "cyclonedx", spec, subject, components, doc)
    if "spdxVersion" in doc:
        spec, subject, components, converted = read_spdx(doc, limits)
        return Sbom(source, "spdx", spec, subject, components, converted)
    raise Invalid(_not_a_document(doc))


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
        return "SPDX tag-value is not supported; convert it to SPDX JSON"
    return "not a CycloneDX or SPDX document (neither JSON nor XML)"


def _not_a_document(doc: dict[str, Any]) -> str:
    context = doc.get("@context")
    if "spdx.org" in str(context):
        return "SPDX 3 JSON-LD is not supported (SPDX 2.2 and 2.3 JSON are)"
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
