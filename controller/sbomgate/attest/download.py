"""The SBOM in what `cosign download attestation` prints, for `sbomgate eval`.

cosign prints one JSON document per line, one per attestation of the image: a DSSE envelope
(`payloadType`, `payload`, `signatures`: the legacy `.att` layout) or a Sigstore bundle
(`mediaType`, `verificationMaterial`, `dsseEnvelope`: cosign v3's layout); an in-toto
statement per line (what `cosign verify-attestation` prints once decoded) is read too. The SBOM
is the predicate of the one statement whose predicate type is CycloneDX or SPDX.

Nothing here verifies a signature: `eval` judges the document it is given, and `verify` is the
command that finds, verifies and judges an image's attestations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sbomgate.attest.envelope import FormatError, parse_envelope, parse_statement
from sbomgate.errors import InputError

__all__ = ["AttestedSbom", "is_attestation_download", "sbom_from_download"]

SBOM_PREDICATE_TYPES = ("https://cyclonedx.org/bom", "https://spdx.dev/Document")
_MARKERS = (b'"payloadType"', b'"dsseEnvelope"', b'"https://in-toto.io/Statement')


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestedSbom:
    """The SBOM document an attestation carried, and its predicate type."""

    predicate_type: str
    document: bytes


def is_attestation_download(data: bytes) -> bool:
    """Whether `data` reads as cosign's attestation lines rather than as an SBOM: its first line
    is a JSON object naming a DSSE envelope, a Sigstore bundle's envelope or an in-toto
    statement (an SBOM never starts that way)."""
    first = data.lstrip()[:1]
    line = data.lstrip().split(b"\n", 1)[0][:65536]
    return first == b"{" and any(marker in line for marker in _MARKERS)


def sbom_from_download(data: bytes, source: str) -> AttestedSbom:
    """The one SBOM among the attestations; InputError naming `source` when there is none, or
    more than one (cosign's `--predicate-type` chooses), or a line cannot be read."""
    found: list[AttestedSbom] = []
    others: list[str] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            predicate_type, predicate = _statement_of(line)
        except FormatError as exc:
            raise InputError(f"{source}: line {number}: {exc}") from None
        if predicate_type.startswith(SBOM_PREDICATE_TYPES):
            found.append(AttestedSbom(predicate_type=predicate_type, document=_document(predicate)))
        else:
            others.append(predicate_type)
    if len(found) == 1:
        return found[0]
    if not found:
        listed = ", ".join(sorted(set(others))) or "none"
        raise InputError(
            f"{source}: no SBOM attestation among its lines (predicate types: {listed})"
        )
    types = ", ".join(a.predicate_type for a in found)
    raise InputError(
        f"{source}: {len(found)} SBOM attestations ({types}): keep one, with "
        "`cosign download attestation --predicate-type cyclonedx` (or spdxjson)"
    )


def _statement_of(line: bytes) -> tuple[str, Any]:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise FormatError("not a JSON object")
    if isinstance(doc.get("dsseEnvelope"), dict):  # a Sigstore bundle
        doc = doc["dsseEnvelope"]
    payload = parse_envelope(doc).payload if "payloadType" in doc else orjson.dumps(doc)
    statement = parse_statement(payload)
    return statement.predicate_type, statement.predicate


def _document(predicate: Any) -> bytes:
    """The predicate as SBOM bytes: `cosign attest --type spdx` embeds the file as a string."""
    if isinstance(predicate, str):
        return predicate.encode()
    return orjson.dumps(predicate)
