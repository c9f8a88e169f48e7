"""The one result type, and its renderings (JSON, terminal table, SARIF)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sbomgate import __version__
from sbomgate.sbom.model import Component


@dataclass(frozen=True, slots=True)
class Finding:
    """A policy matched a package."""

    purl: str | None
    name: str | None
    version: str | None
    policy: str
    title: str
    action: str
    reasons: tuple[str, ...]
    subject: bool = False  # the image/SBOM-level evaluation, not one component
    image: str | None = None  # registry/repository@digest, when judging images

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image} if self.image else {}
        return out | {
            "purl": self.purl,
            "name": self.name,
            "version": self.version,
            "policy": self.policy,
            "action": self.action,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class EvaluationFailure:
    """A policy failed on a package, or (`fault`) what a policy needs of it could not be
    found out (a trusted repository could not be asked): reported, and the verdict denies
    (fail closed)."""

    purl: str | None
    name: str | None
    policy: str
    message: str
    image: str | None = None
    fault: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image} if self.image else {}
        return (
            out
            | {
                "purl": self.purl,
                "name": self.name,
                "policy": self.policy,
                "message": self.message,
            }
            | ({"fault": True} if self.fault else {})
        )


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """One attestation found on an image, and what verification made of it."""

    predicate_type: str | None
    verified: bool
    signer: str | None
    error: str | None
    location: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "predicateType": self.predicate_type,
            "verified": self.verified,
            "signer": self.signer,
            "error": self.error,
            "location": self.location,
            **self.details,
        }


@dataclass(frozen=True, slots=True)
class ImageReport:
    """An image judged: the digest it resolved to, its attestations, and why it failed.

    `fault` marks infrastructure problems (registry unreachable, timeouts): reported as such,
    never as a policy failure, and still a denial (fail closed).
    """

    ref: str
    digest: str | None
    attestations: tuple[AttestationReport, ...] = ()
    errors: tuple[str, ...] = ()
    fault: bool = False
    components: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "attestations": [a.to_json() for a in self.attestations],
            "error": "; ".join(self.errors) or None,
            "errors": list(self.errors),
            "fault": self.fault,
            "components": self.components,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    components: int
    subject: Component | None
    violations: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    audits: tuple[Finding, ...] = ()
    exemptions: tuple[Finding, ...] = ()
    errors: tuple[EvaluationFailure, ...] = ()
    source: str | None = None
    images: tuple[ImageReport, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.violations and not self.errors and all(i.ok for i in self.images)

    def to_json(self) -> dict[str, Any]:
        subject = self.subject
        return {
            "allowed": self.allowed,
            "summary": {
                "components": self.components,
                "violations": len(self.violations),
                "warnings": len(self.warnings),
                "errors": len(self.errors),
                **({"images": len(self.images)} if self.images else {}),
            },
            "subject": (
                {
                    "name": subject.name,
                    "version": subject.version,
                    "purl": subject.purl,
                    "format": subject.format,
                }
                if subject
                else None
            ),
            "violations": [f.to_json() for f in self.violations],
            "warnings": [f.to_json() for f in self.warnings],
            "audits": [f.to_json() for f in self.audits],
            "exemptions": [f.to_json() for f in self.exemptions],
            "errors": [e.to_json() for e in self.errors],
            **({"images": [i.to_json() for i in self.images]} if self.images else {}),
        }


def merge_verdicts(verdicts: Sequence[Verdict], images: Sequence[ImageReport]) -> Verdict:
    """One verdict over several images (findings already carry their image)."""
    return Verdict(
        components=sum(v.components for v in verdicts),
        subject=None,
        violations=tuple(f for v in verdicts for f in v.violations),
        warnings=tuple(f for v in verdicts for f in v.warnings),
        audits=tuple(f for v in verdicts for f in v.audits),
        exemptions=tuple(f for v in verdicts for f in v.exemptions),
        errors=tuple(e for v in verdicts for e in v.errors),
        images=tuple(images),
    )


def _label(f: Finding | EvaluationFailure) -> str:
    if f.purl:
        return f.purl
    version = getattr(f, "version", None)
    return f"{f.name}@{version}" if version else str(f.name)


def render_table(verdict: Verdict, source: str) -> Any:
    """A rich renderable: what a person reads in a terminal."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for image in verdict.images:
        status = (
            Text("ok", style="green")
            if image.ok
            else Text("fault" if image.fault else "refused", style="red")
        )
        parts.append(Text.assemble(status, f"  {image.ref} -> {image.digest or '?'}"))
        for a in image.attestations:
            mark = "verified" if a.verified else "rejected"
            detail = f" by {a.signer}" if a.verified and a.signer else f": {a.error}"
            parts.append(Text(f"    {mark} {a.predicate_type or '?'} ({a.location}){detail}"))
        for error in image.errors:
            parts.append(Text(f"    {error}", style="red"))
    several = len(verdict.images) > 1

    def where(f: Finding | EvaluationFailure) -> str:
        # With several images, say which one each package is in.
        return f"{_label(f)}\nin {f.image}" if several and f.image else _label(f)

    rows: list[tuple[str, str, str, str]] = []
    for f in verdict.violations + verdict.warnings + verdict.audits:
        rows.append((f.action, where(f), f.policy, "\n".join(f.reasons) or f.title))
    for e in verdict.errors:
        rows.append(("Error", where(e), e.policy, e.message))
    if rows:
        table = Table(show_lines=False, expand=False)
        table.add_column("action", no_wrap=True)
        table.add_column("package", overflow="fold")
        table.add_column("policy", no_wrap=True)
        table.add_column("reason", overflow="fold")
        styles = {"Deny": "red", "Quarantine": "red", "Error": "red", "Warn": "yellow"}
        for action, label, policy, reason in rows:
            table.add_row(Text(action, style=styles.get(action, "cyan")), label, policy, reason)
        parts.append(table)
    decision = (
        Text("ALLOWED", style="bold green") if verdict.allowed else Text("DENIED", style="bold red")
    )
    summary = Text.assemble(
        decision,
        f"  {source}: {verdict.components} components, {len(verdict.violations)} violations, "
        f"{len(verdict.warnings)} warnings, {len(verdict.errors)} errors"
        + (
            f", {sum(not i.ok for i in verdict.images)} of {len(verdict.images)} images refused"
            if verdict.images
            else ""
        ),
    )
    parts.append(summary)
    return Group(*parts)


_SARIF_LEVEL = {"Deny": "error", "Quarantine": "error", "Warn": "warning", "Audit": "note"}


def to_sarif(
    verdict: Verdict, source: str, policies: Sequence[tuple[str, str, str]]
) -> dict[str, Any]:
    """SARIF 2.1.0 for code-scanning UIs: one rule per policy, one result per finding.

    `policies` is (name, title, description) for every policy that ran.
    """
    rules = [
        {
            "id": name,
            "name": name,
            "shortDescription": {"text": title},
            "fullDescription": {"text": description or title},
        }
        for name, title, description in policies
    ]
    if verdict.errors:
        rules.append(
            {
                "id": "sbomgate/evaluation-error",
                "name": "evaluation-error",
                "shortDescription": {"text": "A policy failed to evaluate (fail closed)"},
            }
        )
    location = [{"physicalLocation": {"artifactLocation": {"uri": source}}}]
    results: list[dict[str, Any]] = []
    for f in verdict.violations + verdict.warnings + verdict.audits:
        reasons = "; ".join(f.reasons) or f.title
        results.append(
            {
                "ruleId": f.policy,
                "level": _SARIF_LEVEL.get(f.action, "note"),
                "message": {"text": f"{_label(f)}: {reasons}"},
                "locations": location,
                "properties": {"purl": f.purl, "action": f.action},
            }
        )
    if any(not i.ok for i in verdict.images):
        rules.append(
            {
                "id": "sbomgate/image-verification",
                "name": "image-verification",
                "shortDescription": {"text": "The image's attestations could not be verified"},
            }
        )
    for image in verdict.images:
        for error in image.errors:
            results.append(
                {
                    "ruleId": "sbomgate/image-verification",
                    "level": "error",
                    "message": {"text": error},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": image.ref}}}],
                    "properties": {"digest": image.digest, "fault": image.fault},
                }
            )
    for e in verdict.errors:
        results.append(
            {
                "ruleId": "sbomgate/evaluation-error",
                "level": "error",
                "message": {"text": f"{_label(e)}: policy {e.policy} failed: {e.message}"},
                "locations": location,
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sbomgate",
                        "version": __version__,
                        "informationUri": "https://sbomgate.dev",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
