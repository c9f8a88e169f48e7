"""`--format sarif`: SARIF 2.1.0 for code-scanning UIs, one rule per policy, one result per
finding."""

from __future__ import annotations

from typing import Any

import orjson

from sbomgate import __version__
from sbomgate.actions import Action
from sbomgate.output.interface import Report, package_label

_LEVEL = {
    Action.DENY: "error",
    Action.QUARANTINE: "error",
    Action.WARN: "warning",
    Action.AUDIT: "note",
}


class SarifFormat:
    """A SARIF log with one run; its rules are the policies that ran (`Report.policies`)."""

    name = "sarif"

    def render(self, report: Report) -> str:
        """The report as one SARIF 2.1.0 log."""
        return orjson.dumps(document(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def document(report: Report) -> dict[str, Any]:
    """The SARIF log as JSON-ready data."""
    verdict, source = report.verdict, report.source
    rules = [
        {
            "id": p.name,
            "name": p.name,
            "shortDescription": {"text": p.title},
            "fullDescription": {"text": p.description or p.title},
        }
        for p in report.policies
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
                "level": _LEVEL.get(f.action, "note"),
                "message": {"text": f"{package_label(f)}: {reasons}"},
                "locations": location,
                "properties": {"purl": f.purl, "action": f.action.value},
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
                "message": {"text": f"{package_label(e)}: policy {e.policy} failed: {e.message}"},
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
