"""DSSE envelopes, in-toto statements and Sigstore bundles: parsing only, no trust."""

from __future__ import annotations

import binascii
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ijson
import orjson
import pybase64
from ijson.common import ObjectBuilder

from sbomgate._internal import jsonpieces
from sbomgate._internal.gcpause import gc_paused
from sbomgate.attest.trust import predicate_matches
from sbomgate.errors import InputError, VerificationError
from sbomgate.sbom import MAX_COMPONENTS
from sbomgate.sbom.spdx_stream import STREAM_FROM_BYTES, SpdxStreamReader, json_error

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset(
    {
        "https://in-toto.io/Statement/v0.1",
        "https://in-toto.io/Statement/v1",
        "https://in-toto.io/Statement/v1.0",
    }
)
MAX_SIGNATURES = 16
# Base64 only shrinks (4 characters -> 3 bytes), and what is decoded here is already capped
# (blobs at 128 MiB, manifests at 4 MiB); this bound keeps that true for any other caller.
MAX_BASE64_CHARS = 128 << 20
# The predicate types whose large statements are streamed (sbom/spdx_stream.py).
SPDX_PREDICATE_TYPES = frozenset({"https://spdx.dev/Document"})
# Objects and arrays a document may hold, checked on the bytes before parsing: an envelope or a
# bundle is parsed before its signature is checked, and 64 MiB of `[[],[],...]` (anyone can
# push that next to an image) parse to 21 million lists, 2 GB. Envelopes and bundles hold a
# few dozen (base64 has no brackets); a statement carries an SBOM (see sbom.parse).
MAX_ENVELOPE_VALUES = 10_000
MAX_STATEMENT_VALUES = 2_000_000
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class FormatError(VerificationError):
    """The document is not a usable envelope, statement or bundle; the message says why.

    The attestation's fault (the image is refused), not the user's."""


def b64decode(value: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (both appear in the wild)."""
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a base64 string")
    if len(value) > MAX_BASE64_CHARS:
        raise FormatError(f"{what} is {len(value)} characters, over the {MAX_BASE64_CHARS} limit")
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        # URL-safe alphabet; translated, then validated (urlsafe_b64decode drops junk silently).
        padded = padded.translate(_URLSAFE_TO_STANDARD)
    try:
        # pybase64 (SIMD): a 5,000-component statement's 4 MB in 0.35 ms, 7.5 ms in binascii.
        return pybase64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not valid base64") from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    """One DSSE signature: the key id it names (may be empty) and the signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope: the payload, its type, and its signatures (unchecked)."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @property
    def signed_bytes(self) -> bytes:
        """What the signatures sign: DSSE's pre-authentication encoding of type and payload."""
        return pae(self.payload_type, self.payload)


def _load_object(
    data: bytes | Mapping[str, Any],
    what: str,
    max_values: int = MAX_ENVELOPE_VALUES,
    items: jsonpieces.ArrayItems | None = None,
    defer: tuple[str, str] | None = None,
) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    # Brackets in strings count too: an upper bound. No more than the bytes, which need not be
    # counted when there are too few of them to pass the limit (a 5,000-component statement:
    # 1.2 ms of a new build's admission).
    if len(data) > max_values and data.count(b"{") + data.count(b"[") > max_values:
        raise FormatError(f"{what} holds over {max_values} objects and arrays: refused unread")
    try:
        with gc_paused():  # a statement holds a whole SBOM: see _internal/gcpause.py
            # orjson's value, in pieces: see the module
            doc = jsonpieces.loads(data, items, defer)
    except orjson.JSONDecodeError as exc:
        raise _not_json(what, exc) from None
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a JSON object")
    return doc


def _not_json(what: str, exc: orjson.JSONDecodeError) -> FormatError:
    if "depth limit" in exc.msg:
        return FormatError(f"{what} is nested deeper than 1024 levels")
    return FormatError(f"{what} is not JSON ({exc.msg} at line {exc.lineno})")


def parse_envelope(data: bytes | Mapping[str, Any]) -> Envelope:
    """A DSSE envelope from JSON bytes or a parsed document; FormatError when malformed."""
    doc = _load_object(data, "DSSE envelope")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise FormatError("DSSE envelope has no payloadType")
    payload = b64decode(doc.get("payload"), "DSSE payload")
    raw_signatures = doc.get("signatures")
    if not isinstance(raw_signatures, list):
        raise FormatError("DSSE envelope has no signatures list")
    if len(raw_signatures) > MAX_SIGNATURES:
        raise FormatError(f"DSSE envelope has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for i, item in enumerate(raw_signatures):
        if not isinstance(item, dict):
            raise FormatError(f"DSSE signatures[{i}] is not an object")
        keyid = item.get("keyid") or ""
        signatures.append(
            Signature(str(keyid), b64decode(item.get("sig"), f"DSSE signatures[{i}].sig"))
        )
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


@dataclass(frozen=True, slots=True)
class Subject:
    """An in-toto subject: a name and its digests by algorithm."""

    name: str
    digests: Mapping[str, str]

    def matches(self, digest: str) -> bool:
        """True when `digest` (`algorithm:hex`) is one of the subject's digests."""
        algorithm, _, value = digest.partition(":")
        if not algorithm or not value:
            return False  # never let "sha256:" or "" match a subject that lacks the algorithm
        found = self.digests.get(algorithm)
        return found is not None and found.lower() == value.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """An in-toto statement: what it speaks of (subjects) and what it says (predicate)."""

    statement_type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    # The predicate as read: its value, or (a large CycloneDX SBOM) a jsonpieces.PartlyDecoded
    # whose `components` are their items' raw JSON, for a reader that knows most of them
    # (sbom.parse_sbom_in_statement). `predicate` is the value either way.
    predicate_source: Any
    # The JSON the statement was read from, when `predicate` is its `predicate` member as
    # decoded (not streamed, not unwrapped): what an SBOM's checks and cache can keep instead
    # of writing the predicate out again.
    payload: bytes | None = field(default=None, compare=False, repr=False)
    # The raw JSON of the items of the statement's large arrays (jsonpieces.ArrayItems): an SBOM
    # reader keys its components by it rather than writing each one out again.
    items: Mapping[int, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def predicate(self) -> Any:
        """The predicate's value (a deferred one decoded now, once; FormatError if it is not
        JSON)."""
        return complete_predicate(self.predicate_source)

    def binds(self, digest: str) -> bool:
        """True when one of the subjects has `digest`."""
        return any(subject.matches(digest) for subject in self.subjects)

    def subject_digests(self) -> list[str]:
        """Every subject digest as `algorithm:hex`."""
        return [
            f"{algorithm}:{value}"
            for subject in self.subjects
            for algorithm, value in subject.digests.items()
        ]


def parse_statement(payload: bytes) -> Statement:
    """An in-toto statement from a payload; FormatError when malformed.

    A large statement whose predicate is SPDX JSON (syft's default SPDX of a Debian image is
    about 70 MB, nearly all `files[]`) is streamed: only what sbomgate reads of the SPDX
    document is built, in bounded memory, as `sbom.parse` does for such a file."""
    streamed = _stream_statement(payload) if len(payload) >= STREAM_FROM_BYTES else None
    items: jsonpieces.ArrayItems = {}
    doc = streamed or _load_object(
        payload, "in-toto statement", MAX_STATEMENT_VALUES, items, _DEFERRED
    )
    statement_type = doc.get("_type")
    if not isinstance(statement_type, str) or statement_type not in STATEMENT_TYPES:
        raise FormatError(f"not an in-toto statement (_type {str(statement_type)[:80]!r})")
    raw_subjects = doc.get("subject")
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise FormatError("in-toto statement has no subject")
    subjects = []
    for i, item in enumerate(raw_subjects[:1000]):
        digests = item.get("digest") if isinstance(item, dict) else None
        if not isinstance(digests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in digests.items()
        ):
            raise FormatError(f"in-toto statement subject[{i}] has no digest map")
        name = item.get("name")
        subjects.append(Subject(name if isinstance(name, str) else "", digests))
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise FormatError("in-toto statement has no predicateType")
    predicate = doc.get("predicate")
    if type(predicate) is jsonpieces.PartlyDecoded and not predicate_matches(
        CYCLONEDX_PREDICATE_TYPE, predicate_type
    ):
        # Only an SBOM reader knows components again: any other predicate is decoded whole.
        predicate = complete_predicate(predicate)
    member = predicate
    # cosign 1.x wrapped custom predicates as {"Data": "<text>", "Timestamp": ...}.
    if isinstance(predicate, dict) and set(predicate) <= {"Data", "Timestamp"}:
        data = predicate.get("Data")
        if isinstance(data, str):
            try:
                predicate = orjson.loads(data)
            except orjson.JSONDecodeError:
                predicate = data
        elif isinstance(data, dict):
            predicate = data
    return Statement(
        statement_type=statement_type,
        subjects=tuple(subjects),
        predicate_type=predicate_type,
        predicate_source=predicate,
        payload=payload if streamed is None and predicate is member else None,
        # (A PartlyDecoded predicate's components are recorded there when it is completed.)
        items=items if streamed is None and predicate is member else None,
    )


# A large CycloneDX statement's components are left as their items' JSON (see Statement).
CYCLONEDX_PREDICATE_TYPE = "https://cyclonedx.org/bom"
_DEFERRED = ("predicate", "components")


def complete_predicate(predicate: Any) -> Any:
    """A predicate as read (Statement.predicate_source) as its value: a PartlyDecoded one
    decoded whole; FormatError, as for a statement that is not JSON, if it is not."""
    if type(predicate) is not jsonpieces.PartlyDecoded:
        return predicate
    try:
        with gc_paused():
            return predicate.complete()
    except orjson.JSONDecodeError as exc:
        raise _not_json("in-toto statement", exc) from None


def _stream_statement(payload: bytes) -> dict[str, Any] | None:
    """The statement with its SPDX predicate read as a stream, or None when its predicate
    type is not SPDX or is not known before the predicate begins (cosign writes `_type`,
    `predicateType` and `subject` first): then it is parsed whole, within its limits."""
    doc: dict[str, Any] = {}
    spdx: SpdxStreamReader | None = None
    builder: ObjectBuilder | None = None
    depth = 0
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(payload), use_float=True):
            if spdx is not None:
                if prefix == "predicate" and event == "end_map":
                    doc["predicate"] = spdx.document()
                    spdx = None
                else:
                    spdx.feed(prefix.removeprefix("predicate").removeprefix("."), event, value)
                continue
            if builder is not None:
                builder.event(event, value)
                depth += 1 if event in ("start_map", "start_array") else 0
                depth -= 1 if event in ("end_map", "end_array") else 0
                if depth == 0:
                    doc["subject"] = builder.value
                    builder = None
                continue
            if prefix == "":
                if event not in ("start_map", "end_map", "map_key"):
                    raise FormatError("in-toto statement is not a JSON object")
            elif prefix in ("_type", "predicateType") and isinstance(value, str):
                doc[prefix] = value
            elif prefix == "subject" and event == "start_array":
                builder, depth = ObjectBuilder(), 1
                builder.event(event, value)
            elif prefix == "predicate" and event == "start_map":
                if doc.get("predicateType") not in SPDX_PREDICATE_TYPES:
                    return None
                spdx = SpdxStreamReader(MAX_COMPONENTS)
            elif prefix == "predicate" and event not in ("start_array", "map_key"):
                doc["predicate"] = value  # a document embedded as text (`cosign --type spdx`)
            elif prefix == "predicate":
                return None  # a list: read whole
    except ijson.JSONError as exc:
        raise FormatError(f"in-toto statement is not JSON ({json_error(exc)})") from None
    except InputError as exc:  # the SPDX predicate's own: not an object, too many packages
        raise FormatError(f"in-toto statement's SPDX predicate: {exc}") from None
    return doc


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """The parts of a Sigstore bundle we route on; keyless bundles go whole to sigstore-python."""

    media_type: str
    envelope: Envelope
    certificate_der: bytes | None  # leaf certificate (keyless)
    public_key_hint: str | None  # key-based bundles name their key instead
    raw: bytes


def parse_bundle(data: bytes) -> Bundle:
    """A Sigstore bundle carrying a DSSE envelope; FormatError otherwise."""
    doc = _load_object(data, "Sigstore bundle")
    media_type = doc.get("mediaType")
    if not isinstance(media_type, str) or not media_type.startswith(
        "application/vnd.dev.sigstore.bundle"
    ):
        raise FormatError("not a Sigstore bundle (no Sigstore bundle mediaType)")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise FormatError("Sigstore bundle has no verificationMaterial")
    raw_envelope = doc.get("dsseEnvelope")
    if not isinstance(raw_envelope, dict):
        raise FormatError(
            "Sigstore bundle has no dsseEnvelope (a message signature is not an attestation)"
        )
    certificate = None
    cert = material.get("certificate")
    chain = material.get("x509CertificateChain")
    if isinstance(cert, dict):
        certificate = b64decode(cert.get("rawBytes"), "bundle certificate")
    elif (
        isinstance(chain, dict)
        and isinstance(chain.get("certificates"), list)
        and chain["certificates"]
    ):
        leaf = chain["certificates"][0]
        if not isinstance(leaf, dict):
            raise FormatError("Sigstore bundle certificate chain entry is not an object")
        certificate = b64decode(leaf.get("rawBytes"), "bundle certificate")
    hint = None
    public_key = material.get("publicKey")
    if isinstance(public_key, dict):
        hint = str(public_key.get("hint") or "")
    if certificate is None and hint is None:
        raise FormatError("Sigstore bundle has neither a certificate nor a public key")
    return Bundle(
        media_type=media_type,
        envelope=parse_envelope(raw_envelope),
        certificate_der=certificate,
        public_key_hint=hint,
        raw=data,
    )
