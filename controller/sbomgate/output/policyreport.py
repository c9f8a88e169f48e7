"""PolicyReport (`wgpolicyk8s.io/v1alpha2`): what the background audit writes, one per
namespace, for Kyverno/Policy Reporter UIs. A report's results speak of one image
(`Report.source`) in one workload (`Report.resource`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sbomgate.output.interface import Report

GROUP, VERSION = "wgpolicyk8s.io", "v1alpha2"
NAME = "sbomgate"  # of the one PolicyReport per namespace
MAX_RESULTS = 1000  # kept in a report (problems first); its summary counts them all
_ORDER = {"error": 0, "fail": 1, "warn": 2, "pass": 3}


class PolicyReportFormat:
    """A PolicyReport of one image, in the namespace of `Report.resource`."""

    name = "policyreport"

    def render(self, report: Report) -> str:
        """The report as a PolicyReport manifest in JSON."""
        namespace = str((report.resource or {}).get("namespace") or "")
        body = policy_report(namespace=namespace, results=results(report))
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"


def results(report: Report) -> list[dict[str, Any]]:
    """The results for one image: its verification errors, its findings (violations "fail"
    where they refuse, else "warn"), failed evaluations; "pass" when there is nothing."""
    ref, verdict = report.source, report.verdict
    resource = report.resource
    # The digest of the image judged (one image: see the module docstring).
    digest = verdict.images[0].digest if len(verdict.images) == 1 else None
    out = [
        _result(
            ref,
            resource,
            "sbomgate",
            "verification",
            "error" if image.fault else "fail",
            error,
            digest=image.digest,
        )
        for image in verdict.images
        for error in image.errors
    ]
    graded = [(f, "fail" if report.enforced(f) else "warn") for f in verdict.violations] + [
        (f, "warn") for f in verdict.warnings
    ]
    for finding, grade in graded:
        out.append(
            _result(
                ref,
                resource,
                finding.policy,
                "match",
                grade,
                "; ".join(finding.reasons) or finding.title,
                purl=finding.purl,
                digest=digest,
            )
        )
    for failure in verdict.errors:
        out.append(
            _result(
                ref,
                resource,
                failure.policy,
                "evaluate",
                "error",
                failure.message,
                purl=failure.purl,
                digest=digest,
            )
        )
    if not out:
        message = f"{ref}: verified, no policy matched"
        out.append(_result(ref, resource, "sbomgate", "images", "pass", message, digest=digest))
    return out


def unfinished(*, source: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The result for an image whose check did not finish in time."""
    message = f"checking {source} did not finish"
    return _result(source, resource, "sbomgate", "verification", "error", message)


def _result(
    ref: str,
    resource: Mapping[str, Any] | None,
    policy: str,
    rule: str,
    grade: str,
    message: str,
    **properties: str | None,
) -> dict[str, Any]:
    return {
        "source": "sbomgate",
        "policy": policy,
        "rule": rule,
        "result": grade,
        "scored": True,
        "resources": [dict(resource)] if resource is not None else [],
        "message": message[:1000],
        "properties": {k: v for k, v in {"image": ref, **properties}.items() if v},
    }


def policy_report(
    *,
    namespace: str,
    results: Sequence[Mapping[str, Any]],
    stamp: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The PolicyReport of a namespace: at most MAX_RESULTS results, problems first, each
    stamped with `stamp` (seconds, nanos) when given; the summary counts every result."""
    summary = Counter(r["result"] for r in results)
    kept = sorted(results, key=lambda r: _ORDER[r["result"]])[:MAX_RESULTS]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PolicyReport",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "sbomgate"},
        },
        "summary": {k: summary.get(k, 0) for k in ("pass", "fail", "warn", "error", "skip")},
        "results": [dict(r) if stamp is None else {**r, "timestamp": dict(stamp)} for r in kept],
    }
