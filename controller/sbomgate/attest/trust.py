"""Trust policies: which images need which attestations, signed by whom.

The YAML file has the shape the TrustPolicy custom resource will have:

    apiVersion: sbomgate.dev/v1alpha1
    kind: TrustPolicy
    metadata: {name: default}
    spec:
      images: ["registry.example/**"]
      authorities:
        - {name: ci-key, key: {data: "-----BEGIN PUBLIC KEY-----…"}}     # or key: {file: …}
        - name: ci-keyless
          keyless:
            identities: [{issuer: …, subjectRegExp: …}]
            trustedRoot: {file: trusted_root.json}                      # default: production
      attestations:
        - {name: sbom, predicateTypes: [https://cyclonedx.org/bom, https://spdx.dev/Document]}
        - {name: provenance, predicateTypes: [https://slsa.dev/provenance/v1], required: false,
           builderIds: […], sourceRepositories: […]}
      allowUnsigned: false

Every policy whose `images` match an image applies, and each must be satisfied (as in
sigstore policy-controller); an image no policy covers is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from sbomgate._internal.globs import glob_to_regex as glob_to_regex
from sbomgate.attest.keys import KeyMaterialError, PublicKey, load_public_key
from sbomgate.errors import TrustPolicyError

API_VERSION = "sbomgate.dev/v1alpha1"
KIND = "TrustPolicy"
MAX_POLICY_BYTES = 1 << 20
MAX_TRUSTED_ROOT_BYTES = 16 << 20  # read for the fingerprint; sigstore reads the file itself

# cosign's --type shorthands, so users can write what they typed when attesting.
PREDICATE_ALIASES = {
    "cyclonedx": "https://cyclonedx.org/bom",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
SBOM_PREDICATES = ("https://cyclonedx.org/bom", "https://spdx.dev/Document")
PROVENANCE_PREDICATES = ("https://slsa.dev/provenance/",)


def predicate_matches(wanted: str, actual: str) -> bool:
    """Exact, or `wanted` followed by a version path (`…/bom` matches `…/bom/v1.6`)."""
    return actual == wanted or actual.startswith(wanted.rstrip("/") + "/")


def is_sbom_predicate(predicate_type: str) -> bool:
    """True for CycloneDX and SPDX predicate types (any version)."""
    return any(predicate_matches(p, predicate_type) for p in SBOM_PREDICATES)


def is_provenance_predicate(predicate_type: str) -> bool:
    """True for SLSA provenance predicate types."""
    return predicate_type.startswith(PROVENANCE_PREDICATES)


@dataclass(frozen=True, slots=True)
class KeylessIdentity:
    """A keyless signer a trust policy accepts: issuer and subject, each exact or a regular
    expression."""

    issuer: str | None
    issuer_regexp: str | None
    subject: str | None
    subject_regexp: str | None

    def accepts(self, issuer: str | None, subject: str | None) -> bool:
        """True when a certificate's issuer and subject both match."""
        if issuer is None or subject is None:
            return False
        if self.issuer is not None and issuer != self.issuer:
            return False
        if self.issuer_regexp is not None and not re.search(self.issuer_regexp, issuer):
            return False
        if self.subject is not None and subject != self.subject:
            return False
        return self.subject_regexp is None or re.search(self.subject_regexp, subject) is not None

    def describe(self) -> str:
        """`subject from issuer`, a regular expression between slashes."""
        issuer = self.issuer or f"/{self.issuer_regexp}/"
        subject = self.subject or f"/{self.subject_regexp}/"
        return f"{subject} from {issuer}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Authority:
    """Who may sign an attestation: public keys, or keyless identities with their trusted root."""

    name: str
    keys: tuple[PublicKey, ...] = ()
    identities: tuple[KeylessIdentity, ...] = ()
    trusted_root: str | None = None  # TrustedRoot JSON file; None = Sigstore production
    # SHA-256 of the key material (PEM) or of the trusted root file as read: what a file name
    # or a parsed key object does not show, for the policy's fingerprint.
    material: str = ""

    @property
    def keyless(self) -> bool:
        """True when it accepts keyless (Fulcio) identities rather than keys."""
        return bool(self.identities)


@dataclass(frozen=True, slots=True)
class AttestationRequirement:
    """An attestation a trust policy asks for: its predicate types and, for provenance, builders and
    sources."""

    name: str
    predicate_types: tuple[str, ...]
    required: bool = True
    builder_ids: tuple[str, ...] = ()
    source_repositories: tuple[str, ...] = ()

    def wants(self, predicate_type: str) -> bool:
        """True when an attestation of `predicate_type` can meet this requirement."""
        return any(predicate_matches(p, predicate_type) for p in self.predicate_types)


@dataclass(frozen=True)
class TrustPolicy:
    """A TrustPolicy document: the images it covers, its authorities and the attestations it
    requires."""

    name: str
    images: tuple[str, ...]
    authorities: tuple[Authority, ...]
    attestations: tuple[AttestationRequirement, ...]
    allow_unsigned: bool = False
    source: str = ""

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(glob_to_regex(p) for p in self.images)

    def covers(self, image_name: str) -> bool:
        """`image_name` is `registry/repository` (normalised: docker.io/library/nginx)."""
        return any(p.fullmatch(image_name) for p in self._patterns)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever anything that decides what this policy accepts changes (the
        image-check cache keys on it: see sbomgate/cache_keys.py)."""
        described = repr(
            (
                self.name,
                self.images,
                self.allow_unsigned,
                tuple(
                    (a.name, a.material, a.identities, a.trusted_root is not None)
                    for a in self.authorities
                ),
                self.attestations,
            )
        )
        return hashlib.sha256(described.encode()).hexdigest()


class _Reader:
    """Walks one document, naming the field path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> TrustPolicyError:
        return TrustPolicyError(f"{self.source}: {where}: {message}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping")
        return value

    def strings(self, value: Any, where: str, *, required: bool = False) -> tuple[str, ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, "must be a list of non-empty strings")
        if required and not value:
            raise self.fail(where, "must not be empty")
        return tuple(value)

    def string(self, value: Any, where: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise self.fail(where, "is required")
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(where, "must be a non-empty string")
        return value

    def boolean(self, value: Any, where: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(where, "must be true or false")
        return value

    def unknown_keys(self, doc: Mapping[str, Any], known: Iterable[str], where: str) -> None:
        extra = sorted(set(doc) - set(known))
        if extra:
            raise self.fail(where, f"unknown field {extra[0]!r} (known: {', '.join(known)})")


def parse_trust_policy(doc: Any, source: str, base_dir: Path | None = None) -> TrustPolicy:
    """A TrustPolicy from a parsed document; TrustPolicyError naming `source` and the field
    otherwise."""
    r = _Reader(source)
    doc = r.mapping(doc, "document")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise r.fail("document", f"expected apiVersion {API_VERSION} and kind {KIND}")
    meta = r.mapping(doc.get("metadata") or {}, "metadata")
    name = r.string(meta.get("name"), "metadata.name", required=True)
    assert name is not None
    r = _Reader(f"{source} (TrustPolicy {name})")
    spec = r.mapping(doc.get("spec"), "spec")
    r.unknown_keys(spec, ("images", "authorities", "attestations", "allowUnsigned"), "spec")
    images = r.strings(spec.get("images"), "spec.images", required=True)
    allow_unsigned = r.boolean(spec.get("allowUnsigned"), "spec.allowUnsigned", False)
    raw_authorities = spec.get("authorities")
    if raw_authorities is None:
        raw_authorities = []
    if not isinstance(raw_authorities, list):
        raise r.fail("spec.authorities", "must be a list")
    if not raw_authorities and not allow_unsigned:
        raise r.fail("spec.authorities", "is empty: nothing could ever verify")
    authorities = tuple(
        _authority(r, item, f"spec.authorities[{i}]", base_dir)
        for i, item in enumerate(raw_authorities)
    )
    names = [a.name for a in authorities]
    if len(set(names)) != len(names):
        raise r.fail("spec.authorities", "names must be unique")
    raw_attestations = spec.get("attestations")
    if raw_attestations is None:
        raw_attestations = [{"name": "sbom", "predicateTypes": list(SBOM_PREDICATES)}]
    if not isinstance(raw_attestations, list):
        raise r.fail("spec.attestations", "must be a list")
    attestations = tuple(
        _requirement(r, item, f"spec.attestations[{i}]") for i, item in enumerate(raw_attestations)
    )
    return TrustPolicy(
        name=name,
        images=images,
        authorities=authorities,
        attestations=attestations,
        allow_unsigned=allow_unsigned,
        source=source,
    )


def _authority(r: _Reader, value: Any, where: str, base_dir: Path | None) -> Authority:
    doc = r.mapping(value, where)
    r.unknown_keys(doc, ("name", "key", "keyless"), where)
    name = r.string(doc.get("name"), f"{where}.name", required=True)
    assert name is not None
    if ("key" in doc) == ("keyless" in doc):
        raise r.fail(where, "needs exactly one of 'key' or 'keyless'")
    if "key" in doc:
        key = r.mapping(doc["key"], f"{where}.key")
        r.unknown_keys(key, ("data", "file"), f"{where}.key")
        pem = _data_or_file(r, key, f"{where}.key", base_dir)
        keys = []
        for block in _pem_blocks(pem):
            try:
                keys.append(load_public_key(block))
            except KeyMaterialError as exc:
                raise r.fail(f"{where}.key", str(exc)) from None
        if not keys:
            raise r.fail(f"{where}.key", "no PEM public key found")
        return Authority(name=name, keys=tuple(keys), material=hashlib.sha256(pem).hexdigest())
    keyless = r.mapping(doc["keyless"], f"{where}.keyless")
    r.unknown_keys(keyless, ("identities", "trustedRoot"), f"{where}.keyless")
    raw_identities = keyless.get("identities")
    if not isinstance(raw_identities, list) or not raw_identities:
        raise r.fail(f"{where}.keyless.identities", "must be a non-empty list")
    identities = tuple(
        _identity(r, item, f"{where}.keyless.identities[{i}]")
        for i, item in enumerate(raw_identities)
    )
    trusted_root = None
    if keyless.get("trustedRoot") is not None:
        root = r.mapping(keyless["trustedRoot"], f"{where}.keyless.trustedRoot")
        r.unknown_keys(root, ("file",), f"{where}.keyless.trustedRoot")
        if "file" not in root:
            raise r.fail(f"{where}.keyless.trustedRoot", "needs 'file'")
        file = r.string(root["file"], f"{where}.keyless.trustedRoot.file", required=True)
        path = Path(str(file))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise r.fail(f"{where}.keyless.trustedRoot.file", f"{path} does not exist")
        trusted_root = str(path)
        try:
            with path.open("rb") as f:
                material = hashlib.sha256(f.read(MAX_TRUSTED_ROOT_BYTES)).hexdigest()
        except OSError as exc:
            raise r.fail(
                f"{where}.keyless.trustedRoot.file", f"cannot read {path}: {exc.strerror or exc}"
            ) from None
    else:
        material = "sigstore-production"
    return Authority(name=name, identities=identities, trusted_root=trusted_root, material=material)


def _identity(r: _Reader, value: Any, where: str) -> KeylessIdentity:
    doc = r.mapping(value, where)
    r.unknown_keys(doc, ("issuer", "issuerRegExp", "subject", "subjectRegExp"), where)
    identity = KeylessIdentity(
        issuer=r.string(doc.get("issuer"), f"{where}.issuer"),
        issuer_regexp=r.string(doc.get("issuerRegExp"), f"{where}.issuerRegExp"),
        subject=r.string(doc.get("subject"), f"{where}.subject"),
        subject_regexp=r.string(doc.get("subjectRegExp"), f"{where}.subjectRegExp"),
    )
    # Closed by default: an identity must pin both who signed and who vouched for them.
    if identity.issuer is None and identity.issuer_regexp is None:
        raise r.fail(where, "needs issuer or issuerRegExp")
    if identity.subject is None and identity.subject_regexp is None:
        raise r.fail(where, "needs subject or subjectRegExp")
    for key in ("issuerRegExp", "subjectRegExp"):
        if doc.get(key) is not None:
            try:
                re.compile(doc[key])
            except re.error as exc:
                raise r.fail(f"{where}.{key}", f"invalid regular expression: {exc}") from None
    return identity


def _requirement(r: _Reader, value: Any, where: str) -> AttestationRequirement:
    doc = r.mapping(value, where)
    r.unknown_keys(
        doc,
        ("name", "predicateTypes", "required", "builderIds", "sourceRepositories"),
        where,
    )
    name = r.string(doc.get("name"), f"{where}.name", required=True)
    assert name is not None
    types = r.strings(doc.get("predicateTypes"), f"{where}.predicateTypes", required=True)
    return AttestationRequirement(
        name=name,
        predicate_types=tuple(PREDICATE_ALIASES.get(t, t) for t in types),
        required=r.boolean(doc.get("required"), f"{where}.required", True),
        builder_ids=r.strings(doc.get("builderIds"), f"{where}.builderIds"),
        source_repositories=r.strings(doc.get("sourceRepositories"), f"{where}.sourceRepositories"),
    )


def _data_or_file(r: _Reader, doc: Mapping[str, Any], where: str, base_dir: Path | None) -> bytes:
    if ("data" in doc) == ("file" in doc):
        raise r.fail(where, "needs exactly one of 'data' or 'file'")
    if "data" in doc:
        data = r.string(doc["data"], f"{where}.data", required=True)
        assert data is not None
        return data.encode()
    file = r.string(doc["file"], f"{where}.file", required=True)
    path = Path(str(file))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        # A device or a FIFO (/dev/zero, /dev/stdin) would be read forever or block: a key is
        # a regular file, and only its first MiB is read.
        if path.exists() and not path.is_file():
            raise r.fail(f"{where}.file", f"cannot read {path}: not a regular file")
        with path.open("rb") as f:
            return f.read(MAX_POLICY_BYTES)
    except OSError as exc:
        raise r.fail(f"{where}.file", f"cannot read {path}: {exc.strerror or exc}") from None


def _pem_blocks(pem: bytes) -> list[bytes]:
    return [
        m.group(0)
        for m in re.finditer(rb"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", pem, re.DOTALL)
    ]


def load_trust_policies(paths: Sequence[Path]) -> list[TrustPolicy]:
    """Every TrustPolicy document in the given files (YAML, `---`-separated) or directories."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    policies: list[TrustPolicy] = []
    for file in files:
        try:
            if file.stat().st_size > MAX_POLICY_BYTES:
                raise TrustPolicyError(f"{file}: trust policy file is over 1 MiB")
            text = file.read_bytes()
        except OSError as exc:
            raise TrustPolicyError(
                f"{file}: cannot read trust policy: {exc.strerror or exc}"
            ) from None
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise TrustPolicyError(f"{file}: invalid YAML{where}") from None
        for position, doc in enumerate(documents):
            source = f"{file}" if len(documents) == 1 else f"{file} (document {position + 1})"
            policies.append(parse_trust_policy(doc, source, file.parent))
    if not policies:
        raise TrustPolicyError(
            f"no TrustPolicy found in {', '.join(map(str, paths))}: without one nothing "
            "can be admitted"
        )
    seen: dict[str, TrustPolicy] = {}
    for policy in policies:
        first = seen.setdefault(policy.name, policy)
        if first is not policy:
            raise TrustPolicyError(
                f"{policy.source}: metadata.name: TrustPolicy {policy.name!r} is defined more "
                f"than once (first in {first.source})"
            )
    return policies
