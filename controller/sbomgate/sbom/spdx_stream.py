"""Large SPDX 2 JSON documents read as a stream: only what spdx.py uses is built.

syft's default SPDX of a Debian image is about 70 MB, nearly all of it `files[]` and the
relationships between packages and files, none of which sbomgate judges. Parsed whole (orjson)
such a document takes about 7 bytes of memory per byte of JSON; streamed (ijson over yajl), the
packages, the top-level scalars, `creationInfo`, `documentDescribes` and the DESCRIBES
relationships are built and the rest is read past, in about 14 MB whatever the size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import ijson
from ijson.common import ObjectBuilder

from sbomgate.sbom._common import Invalid, Limits

__all__ = [
    "STREAM_FROM_BYTES",
    "SpdxStreamReader",
    "is_spdx_json_head",
    "json_error",
    "stream_spdx",
]

STREAM_FROM_BYTES = 16 * 1024 * 1024
"""SPDX JSON documents from this size on are streamed; smaller ones are parsed whole (faster)."""

# The top-level members spdx.py reads, besides `packages` and `relationships`.
_TOP = frozenset(
    {"spdxVersion", "SPDXID", "name", "documentNamespace", "creationInfo", "documentDescribes"}
)
_DESCRIBING = frozenset({"DESCRIBES", "DESCRIBED_BY"})
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})
_SCALARS = frozenset({"null", "boolean", "integer", "double", "number", "string"})


def is_spdx_json_head(head: bytes) -> bool:
    """Whether a JSON document's first bytes name it SPDX 2 (syft and trivy write the version
    first); a document whose head says neither SPDX nor CycloneDX is parsed whole."""
    return b'"spdxVersion"' in head and b'"bomFormat"' not in head


def stream_spdx(data: bytes | bytearray | memoryview, limits: Limits) -> dict[str, Any]:
    """The SPDX JSON-shaped dict spdx.py reads, built from a stream of `data`; Invalid when
    the JSON is broken or is not an object, or when it lists more packages than `limits`
    allow (counted as they are read: packages are what the stream builds)."""
    reader = SpdxStreamReader(limits.max_components)
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(data), use_float=True):
            reader.feed(prefix, event, value)
    except ijson.JSONError as exc:
        raise Invalid(f"invalid JSON: {json_error(exc)}") from None
    return reader.document()


class SpdxStreamReader:
    """Builds what spdx.py reads of an SPDX document from ijson's `(prefix, event, value)`
    events, prefixes relative to the document (`""` is the document itself): also what an
    in-toto statement's `predicate` holds (sbomgate.attest.envelope strips `predicate.`)."""

    def __init__(self, max_components: int) -> None:
        # Packages are counted as they are read (depth is not: packages are flat in SPDX).
        self._counted = Limits(0, max_components)
        self._doc: dict[str, Any] = {}
        self._packages: list[Any] = []
        self._describing: list[Any] = []
        self._keep_describing = _keep_describing(self._describing)
        self._builder: ObjectBuilder | None = None
        self._depth = 0
        self._done: Callable[[Any], None] = self._packages.append

    def feed(self, prefix: str, event: str, value: Any) -> None:
        """One event; Invalid when the document is not an object or lists too many packages."""
        if self._builder is not None:  # inside a value being built
            self._builder.event(event, value)
            if event in _OPEN:
                self._depth += 1
            elif event in _CLOSE:
                self._depth -= 1
            if self._depth == 0:
                self._done(self._builder.value)
                self._builder = None
            return
        if prefix == "":
            if event in ("start_map", "end_map", "map_key"):
                return
            raise Invalid(_NOT_AN_OBJECT)
        if event not in _OPEN:
            if event in _SCALARS and (prefix in _TOP or prefix == "packages"):
                self._doc[prefix] = value  # a scalar (spdx.py says what it thinks of it)
            return
        if prefix == "packages.item":
            self._counted.add()
            self._done = self._packages.append
        elif prefix == "relationships.item":
            self._done = self._keep_describing
        elif prefix == "packages" and event == "start_array":
            self._doc["packages"] = self._packages
            return
        elif prefix in _TOP or prefix == "packages":
            self._done = _setter(self._doc, prefix)
        else:
            return  # files[], the relationships array itself, anything else: read past
        self._builder = ObjectBuilder()
        self._builder.event(event, value)
        self._depth = 1

    def document(self) -> dict[str, Any]:
        """What was read: the top-level members spdx.py reads, the packages, and the
        DESCRIBES relationships."""
        return {**self._doc, "relationships": self._describing}


def json_error(exc: Exception) -> str:
    """yajl's message without the excerpt it draws under it (errors are one line)."""
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    """yajl's message without the excerpt it draws under it (errors are one line)."""
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else "cannot be parsed"


_NOT_AN_OBJECT = "not a CycloneDX or SPDX document (a JSON document that is not an object)"


def _keep_describing(out: list[Any]) -> Callable[[Any], None]:
    def keep(relationship: Any) -> None:
        if type(relationship) is dict and relationship.get("relationshipType") in _DESCRIBING:
            out.append(relationship)

    return keep


def _setter(doc: dict[str, Any], key: str) -> Callable[[Any], None]:
    def set_(value: Any) -> None:
        doc[key] = value

    return set_
