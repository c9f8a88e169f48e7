"""`--format json`: the verdict as one JSON document (the shape the README documents)."""

from __future__ import annotations

from typing import Any

import orjson

from sbomgate.output.interface import Report
from sbomgate.verdict import (
    AttestationReport,
    EvaluationFailure,
    Finding,
    ImageReport,
    Verdict,
)


class JsonFormat:
    """`{"allowed", "summary", "subject", "violations", ..., "images"}`, indented."""

    name = "json"

    def render(self, report: Report) -> str:
        """The verdict as one indented JSON document."""
        return orjson.dumps(document(report.verdict), option=orjson.OPT_INDENT_2).decode() + "\n"


def document(verdict: Verdict) -> dict[str, Any]:
    """The verdict as JSON-ready data."""
    subject = verdict.subject
    return {
        "allowed": verdict.allowed,
        "summary": {
            "components": verdict.components,
            "violations": len(verdict.violations),
            "warnings": len(verdict.warnings),
            "errors": len(verdict.errors),
            **({"images": len(verdict.images)} if verdict.images else {}),
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
        "violations": [finding(f) for f in verdict.violations],
        "warnings": [finding(f) for f in verdict.warnings],
        "audits": [finding(f) for f in verdict.audits],
        "exemptions": [finding(f) for f in verdict.exemptions],
        "errors": [failure(e) for e in verdict.errors],
        **({"images": [image(i) for i in verdict.images]} if verdict.images else {}),
    }


def finding(f: Finding) -> dict[str, Any]:
    """A finding; `image` only when images were judged."""
    out: dict[str, Any] = {"image": f.image} if f.image else {}
    return out | {
        "purl": f.purl,
        "name": f.name,
        "version": f.version,
        "policy": f.policy,
        "action": f.action.value,
        "reasons": list(f.reasons),
    }


def failure(e: EvaluationFailure) -> dict[str, Any]:
    """A policy that failed to evaluate; `fault` only when it is one."""
    out: dict[str, Any] = {"image": e.image} if e.image else {}
    return (
        out
        | {"purl": e.purl, "name": e.name, "policy": e.policy, "message": e.message}
        | ({"fault": True} if e.fault else {})
    )


def attestation(a: AttestationReport) -> dict[str, Any]:
    """An attestation found on an image, and what verification made of it."""
    return {
        "predicateType": a.predicate_type,
        "verified": a.verified,
        "signer": a.signer,
        "error": a.error,
        "location": a.location,
        **a.details,
    }


def image(i: ImageReport) -> dict[str, Any]:
    """An image judged; `error` is `errors` in one line (None when it passed)."""
    return {
        "ref": i.ref,
        "digest": i.digest,
        "attestations": [attestation(a) for a in i.attestations],
        "error": "; ".join(i.errors) or None,
        "errors": list(i.errors),
        "fault": i.fault,
        "components": i.components,
    }
