"""Verify what discovery found against the trust policies that cover the image.

For each attestation: check its signature (a key authority, or keyless via sigstore-python),
read its in-toto statement, and bind it: a subject digest must be the digest it is attached
to, or the index that contains that platform manifest. Then each covering policy's required
attestations must be met by verified ones: for an index, by one on the index or one on every
platform manifest. Every refusal names the image digest, the attestation and the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from sbomgate.attest.envelope import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    FormatError,
    Statement,
    complete_predicate,
    parse_bundle,
    parse_envelope,
    parse_statement,
)
from sbomgate.attest.keyless import KeylessVerifier
from sbomgate.attest.trust import (
    AttestationRequirement,
    Authority,
    TrustPolicy,
    is_provenance_predicate,
    is_sbom_predicate,
)
from sbomgate.errors import VerificationError
from sbomgate.problems import Problem
from sbomgate.registry.discovery import Content, DiscoveredImage, FoundAttestation


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationCheck:
    """The outcome for one attestation found on the image."""

    location: str
    layout: str
    attached_to: str
    predicate_type: str | None
    verified: bool  # signature (or allowed unsigned) and subject binding both hold
    signer: str | None
    error: str | None
    policy: str = ""
    issuer: str | None = None  # keyless: the OIDC issuer that vouched for the signer
    statement: Statement | None = field(default=None, compare=False, repr=False)
    raw_sbom: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A verified SBOM or provenance predicate and the digest it speaks for."""

    digest: str
    predicate_type: str
    # The statement's predicate as read (Statement.predicate_source: a dict, or a large
    # CycloneDX SBOM's jsonpieces.PartlyDecoded), or the raw SBOM bytes; `predicate` is its
    # value.
    predicate_source: Any
    location: str
    # The verified statement's JSON, when `predicate` is its `predicate` member as decoded
    # (Statement.payload).
    statement: bytes | None = field(default=None, compare=False, repr=False)
    # The raw JSON of the items of the predicate's large arrays (Statement.items).
    items: Mapping[int, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def predicate(self) -> Any:
        """The predicate's value (a deferred one decoded now, once; FormatError if it is not
        JSON)."""
        return complete_predicate(self.predicate_source)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageVerification:
    """An image's attestations checked against its covering policies: what passed and why it is
    refused."""

    image: str  # registry/repository@digest
    digest: str
    policies: tuple[str, ...]
    checks: tuple[AttestationCheck, ...]
    sboms: tuple[VerifiedDocument, ...]
    provenance: tuple[VerifiedDocument, ...]
    refusals: tuple[Problem, ...]  # each names the image (`image`)

    @property
    def ok(self) -> bool:
        """True when nothing refuses the image."""
        return not self.refusals


class AttestationVerifier:
    """Verifies discovered attestations against a set of trust policies."""

    def __init__(
        self, policies: Sequence[TrustPolicy], keyless: KeylessVerifier | None = None
    ) -> None:
        self.policies = tuple(policies)
        self.keyless = keyless or KeylessVerifier()

    def covering(self, image_name: str) -> list[TrustPolicy]:
        """The trust policies whose image globs match `image_name`."""
        return [p for p in self.policies if p.covers(image_name)]

    def verify(self, found: DiscoveredImage) -> ImageVerification:
        """Check every attestation of a discovered image and each covering policy's requirements."""
        pinned = found.pinned.pinned
        policies = self.covering(found.ref.name)
        if not policies:
            return ImageVerification(
                image=pinned,
                digest=found.digest,
                policies=(),
                checks=(),
                sboms=(),
                provenance=(),
                refusals=(
                    Problem(
                        image=pinned, message=f"no trust policy covers {found.ref.name}: refused"
                    ),
                ),
            )
        index_digest = found.digest if found.is_index else None
        platform_digests = {p.digest for p in found.platforms}
        refusals = [Problem(image=pinned, message=problem) for problem in found.problems]
        checks: list[AttestationCheck] = []
        sboms: list[VerifiedDocument] = []
        provenance: list[VerifiedDocument] = []
        # Each policy verifies with its own authorities: a key trusted by one policy must not
        # satisfy another policy that covers the same image.
        for policy in policies:
            policy_checks = [
                self._check(attestation, policy, found.digest, index_digest, platform_digests)
                for attestation in found.attestations
            ]
            checks.extend(policy_checks)
            refusals.extend(
                self._requirements(policy, found, policy_checks, pinned, sboms, provenance)
            )
        return ImageVerification(
            image=pinned,
            digest=found.digest,
            policies=tuple(p.name for p in policies),
            checks=tuple(checks),
            sboms=tuple(_unique(sboms)),
            provenance=tuple(_unique(provenance)),
            refusals=tuple(dict.fromkeys(refusals)),
        )

    # -- one attestation -----------------------------------------------------------

    def _check(
        self,
        found: FoundAttestation,
        policy: TrustPolicy,
        top_digest: str,
        index_digest: str | None,
        platform_digests: set[str],
    ) -> AttestationCheck:
        def refused(
            message: str, predicate_type: str | None = None, signer: str | None = None
        ) -> AttestationCheck:
            return AttestationCheck(
                location=found.location,
                layout=found.layout.value,
                attached_to=found.attached_to,
                predicate_type=predicate_type or found.predicate_type_hint,
                verified=False,
                signer=signer,
                error=message,
                policy=policy.name,
            )

        if found.attached_to not in platform_digests and found.attached_to != top_digest:
            return refused(f"attached to {found.attached_to}, which is not part of this image")
        allow_unsigned = policy.allow_unsigned
        signer: str
        issuer: str | None
        try:
            if found.content_type is Content.RAW_SBOM:
                if not allow_unsigned:
                    return refused("unsigned SBOM, and the trust policy does not allow unsigned")
                # Bound only by the registry's subject link: acceptable only when allowed.
                return AttestationCheck(
                    location=found.location,
                    layout=found.layout.value,
                    attached_to=found.attached_to,
                    predicate_type=found.predicate_type_hint,
                    verified=True,
                    signer="unsigned",
                    error=None,
                    policy=policy.name,
                    raw_sbom=found.data,
                )
            if found.content_type is Content.STATEMENT:
                if not allow_unsigned:
                    return refused(
                        "unsigned in-toto statement, and the trust policy does not allow unsigned"
                    )
                payload = found.data
                signer, issuer = "unsigned", None
            else:
                payload, signer, issuer = self._verify_signature(found, policy.authorities)
        except FormatError as exc:
            return refused(f"cannot be read: {exc}")
        except VerificationError as exc:
            return refused(str(exc))
        try:
            statement = parse_statement(payload)
        except FormatError as exc:
            return refused(f"signed, but its payload is not usable: {exc}", signer=signer)
        acceptable = {found.attached_to}
        if index_digest is not None and found.attached_to in platform_digests:
            acceptable.add(index_digest)
        if not any(statement.binds(d) for d in acceptable):
            named = ", ".join(statement.subject_digests()[:3]) or "none"
            return refused(
                f"its subject ({named}) is not {found.attached_to}: an attestation of another "
                "image (replayed), refused",
                statement.predicate_type,
                signer,
            )
        return AttestationCheck(
            location=found.location,
            layout=found.layout.value,
            attached_to=found.attached_to,
            predicate_type=statement.predicate_type,
            verified=True,
            signer=signer,
            error=None,
            policy=policy.name,
            issuer=issuer,
            statement=statement,
        )

    def _verify_signature(
        self, found: FoundAttestation, authorities: Sequence[Authority]
    ) -> tuple[bytes, str, str | None]:
        """The verified payload and who signed it, or VerificationError saying why not."""
        if found.content_type is Content.BUNDLE:
            bundle = parse_bundle(found.data)
            if bundle.certificate_der is None:
                return self._verify_with_keys(bundle.envelope, authorities)
            return self._verify_keyless(found.data, authorities)
        envelope = parse_envelope(found.data)
        certificate = found.annotations.get("dev.sigstore.cosign/certificate")
        keys_only = [a for a in authorities if not a.keyless]
        if certificate and not keys_only:
            raise VerificationError(
                "a keyless cosign attestation in the legacy .att layout: only key-based "
                "attestations are verified in that layout; attest with cosign v3's bundle "
                "format (--new-bundle-format) for keyless"
            )
        return self._verify_with_keys(envelope, authorities)

    def _verify_with_keys(
        self, envelope: Envelope, authorities: Sequence[Authority]
    ) -> tuple[bytes, str, str | None]:
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise VerificationError(
                f"DSSE payloadType is {envelope.payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE}"
            )
        if not envelope.signatures:
            raise VerificationError("the DSSE envelope has no signatures")
        keyed = [a for a in authorities if a.keys]
        if not keyed:
            raise VerificationError("signed with a key, but the trust policy has no key authority")
        signed = envelope.signed_bytes
        for authority in keyed:
            for key in authority.keys:
                for signature in envelope.signatures:
                    if key.verify(signature.sig, signed):
                        return envelope.payload, f"key {authority.name}", None
        names = ", ".join(a.name for a in keyed)
        raise VerificationError(
            f"signature does not verify with any trusted key ({names}): wrong key, or the "
            "payload was changed after signing"
        )

    def _verify_keyless(
        self, bundle_json: bytes, authorities: Sequence[Authority]
    ) -> tuple[bytes, str, str | None]:
        keyless = [a for a in authorities if a.keyless]
        if not keyless:
            raise VerificationError(
                "signed keyless (certificate), but the trust policy has no keyless authority"
            )
        errors = []
        for authority in keyless:
            try:
                payload_type, payload, signer = self.keyless.verify(
                    bundle_json, authority.identities, authority.trusted_root
                )
            except VerificationError as exc:
                errors.append(f"{authority.name}: {exc}")
                continue
            if payload_type != IN_TOTO_PAYLOAD_TYPE:
                raise VerificationError(f"DSSE payloadType is {payload_type!r}, not in-toto")
            return payload, f"keyless {signer.subject} via {authority.name}", signer.issuer
        raise VerificationError("; ".join(errors))

    # -- requirements --------------------------------------------------------------

    def _requirements(
        self,
        policy: TrustPolicy,
        found: DiscoveredImage,
        checks: Sequence[AttestationCheck],
        pinned: str,
        sboms: list[VerifiedDocument],
        provenance: list[VerifiedDocument],
    ) -> list[Problem]:
        refusals = []
        targets = [p.digest for p in found.platforms] if found.is_index else [found.digest]
        for requirement in policy.attestations:
            matching = [
                c for c in checks if c.predicate_type and requirement.wants(c.predicate_type)
            ]
            usable = []
            for check in matching:
                if not check.verified:
                    continue
                problem = _provenance_problem(requirement, check)
                if problem:
                    refusals.append(
                        Problem(
                            image=pinned,
                            message=f"attestation {check.location} "
                            f"({check.predicate_type}): {problem}",
                        )
                    )
                    continue
                usable.append(check)
            covered = {c.attached_to for c in usable}
            satisfied = found.digest in covered or (
                bool(targets) and all(t in covered for t in targets)
            )
            if satisfied or not requirement.required:
                continue
            missing = [t for t in targets if t not in covered] if found.is_index else []
            # What failed and might have been it: of the wanted type, or of no readable type.
            failed = [
                c
                for c in checks
                if not c.verified
                and (c.predicate_type is None or requirement.wants(c.predicate_type))
            ]
            detail = (
                "; ".join(f"{c.location}: {c.error}" for c in failed[:3])
                if failed
                else "none found"
            )
            where = f" (missing for {', '.join(missing[:4])})" if missing else ""
            refusals.append(
                Problem(
                    image=pinned,
                    message=f"no verified {requirement.name} attestation "
                    f"({', '.join(requirement.predicate_types)}) required by trust policy "
                    f"{policy.name}{where}: {detail}",
                )
            )
        # Every verified SBOM is evaluated and every verified provenance is reported, whether
        # or not a requirement asked for it (a verified document is a verified document).
        for check in checks:
            if not check.verified or not check.predicate_type:
                continue
            document = VerifiedDocument(
                digest=check.attached_to,
                predicate_type=check.predicate_type,
                predicate_source=(
                    check.raw_sbom if check.raw_sbom is not None else _predicate_source(check)
                ),
                location=check.location,
                statement=(
                    check.statement.payload
                    if check.raw_sbom is None and check.statement is not None
                    else None
                ),
                items=(
                    check.statement.items
                    if check.raw_sbom is None and check.statement is not None
                    else None
                ),
            )
            if is_sbom_predicate(check.predicate_type):
                sboms.append(document)
            elif is_provenance_predicate(check.predicate_type):
                provenance.append(document)
        return refusals


def _predicate(check: AttestationCheck) -> Any:
    return check.statement.predicate if check.statement is not None else None


def _predicate_source(check: AttestationCheck) -> Any:
    return check.statement.predicate_source if check.statement is not None else None


def _unique(documents: list[VerifiedDocument]) -> list[VerifiedDocument]:
    seen: dict[tuple[str, str], VerifiedDocument] = {}
    for document in documents:
        seen.setdefault((document.location, document.digest), document)
    return list(seen.values())


def _provenance_problem(requirement: AttestationRequirement, check: AttestationCheck) -> str:
    """Builder and source checks of SLSA provenance (v0.2 and v1 field layouts)."""
    if not (requirement.builder_ids or requirement.source_repositories):
        return ""
    try:
        predicate = _predicate(check)
    except FormatError as exc:  # a large CycloneDX predicate's components, read only now
        return str(exc)
    if not isinstance(predicate, Mapping):
        return "provenance predicate is not an object"
    if requirement.builder_ids:
        builder = _dig(predicate, "runDetails", "builder", "id") or _dig(predicate, "builder", "id")
        if builder not in requirement.builder_ids:
            return (
                f"built by {builder or 'an unnamed builder'}, not by "
                f"{', '.join(requirement.builder_ids)}"
            )
    if requirement.source_repositories:
        sources = _sources(predicate)
        if not any(
            fnmatchcase(source, pattern)
            for source in sources
            for pattern in requirement.source_repositories
        ):
            return (
                f"built from {', '.join(sources[:3]) or 'an unnamed source'}, not from "
                f"{', '.join(requirement.source_repositories)}"
            )
    return ""


def _dig(doc: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc if isinstance(doc, str) else None


def _sources(predicate: Mapping[str, Any]) -> list[str]:
    candidates = [
        _dig(predicate, "buildDefinition", "externalParameters", "workflow", "repository"),
        _dig(predicate, "buildDefinition", "externalParameters", "source", "uri"),
        _dig(predicate, "invocation", "configSource", "uri"),
    ]
    for key, path in (
        ("buildDefinition", "resolvedDependencies"),
        ("materials", None),
    ):
        items = predicate.get(key)
        if path is not None and isinstance(items, Mapping):
            items = items.get(path)
        if isinstance(items, list):
            candidates.extend(_dig(item, "uri") for item in items[:8])
    out = []
    for uri in candidates:
        if not uri:
            continue
        if uri.startswith("git+"):
            uri = uri[4:]
        out.append(uri.split("@", 1)[0])
    return list(dict.fromkeys(out))
