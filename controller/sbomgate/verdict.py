"""The one result type: what was judged and what the policies said of it.

Data only: its renderings (table, JSON, SARIF, PolicyReport) live in `sbomgate.output`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sbomgate.actions import Action
from sbomgate.problems import Problem
from sbomgate.sbom.model import Component


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A policy matched a package."""

    purl: str | None
    name: str | None
    version: str | None
    policy: str
    title: str
    action: Action
    reasons: tuple[str, ...]
    subject: bool = False  # the image/SBOM-level evaluation, not one component
    image: str | None = None  # registry/repository@digest, when judging images


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


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """One attestation found on an image, and what verification made of it."""

    predicate_type: str | None
    verified: bool
    signer: str | None
    error: str | None
    location: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReport:
    """An image judged: the digest it resolved to, its attestations, and why it failed.

    `problems` say why, as data (sbomgate/problems.py); `errors` is their one-line texts.
    `fault` marks infrastructure problems (registry unreachable, timeouts): reported as such,
    never as a policy failure, and still a denial (fail closed).
    """

    ref: str
    digest: str | None
    attestations: tuple[AttestationReport, ...] = ()
    problems: tuple[Problem, ...] = ()
    components: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing stopped the image (no problems)."""
        return not self.problems

    @property
    def errors(self) -> tuple[str, ...]:
        """The problems as the one-line texts people read."""
        return tuple(str(p) for p in self.problems)

    @property
    def fault(self) -> bool:
        """True when a problem is an infrastructure fault."""
        return any(p.fault for p in self.problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the policies said of an SBOM (or, with `images`, of the images judged)."""

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
        """True without violations, evaluation failures or a failed image."""
        return not self.violations and not self.errors and all(i.ok for i in self.images)


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
