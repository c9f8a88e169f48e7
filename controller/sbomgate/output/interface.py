"""The seam between a verdict and the ways of writing it out: the `Format` protocol and the
`Report` every format renders. One module per format implements it; `sbomgate.output` lists
them by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sbomgate.verdict import EvaluationFailure, Finding, Verdict


def _every_violation_refuses(_: Finding) -> bool:
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyInfo:
    """A policy that ran, as SARIF lists it among its rules."""

    name: str
    title: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A verdict and what it was reached on: everything a format may need.

    Each format reads the fields it needs; the others keep their defaults.
    """

    verdict: Verdict
    # What was judged: the SBOM file, or the image reference (a PolicyReport speaks of one).
    source: str
    # Every policy that ran (SARIF's rules).
    policies: tuple[PolicyInfo, ...] = ()
    # The Kubernetes object the image runs in (a PolicyReport result's `resources`).
    resource: Mapping[str, Any] | None = None
    # Whether a violation refuses (a PolicyReport "fail") or only warns: its policy's
    # admission mode. Outside a cluster every violation refuses.
    enforced: Callable[[Finding], bool] = _every_violation_refuses


@runtime_checkable  # lets a test check that every registered format implements it
class Format(Protocol):
    """One way of writing a report out."""

    @property
    def name(self) -> str:
        """The name it is chosen by (`--format NAME`)."""
        ...

    def render(self, report: Report) -> str:
        """The whole output, ending in a newline."""
        ...


def package_label(f: Finding | EvaluationFailure) -> str:
    """How a finding names its package: the purl, else name@version."""
    if f.purl:
        return f.purl
    version = getattr(f, "version", None)
    return f"{f.name}@{version}" if version else str(f.name)
