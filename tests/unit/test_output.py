"""The output formats behind one interface: each registered by name, the JSON shape unchanged."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import replace
from typing import Any

import pytest

import sbomgate
from sbomgate.actions import Action
from sbomgate.cli import OutputFormat
from sbomgate.errors import InputError
from sbomgate.output import FORMATS, Format, PolicyInfo, Report, get_format, policyreport, render
from sbomgate.output import json as json_output
from sbomgate.problems import Problem, ProblemKind
from sbomgate.sbom import Component
from sbomgate.verdict import AttestationReport, EvaluationFailure, Finding, ImageReport, Verdict

IMAGE = "ghcr.io/acme/web@sha256:" + "a" * 64


def finding(action: Action, name: str, **changes: Any) -> Finding:
    return replace(
        Finding(
            purl=f"pkg:pypi/{name}@1.0",
            name=name,
            version="1.0",
            policy=f"{action.value.lower()}-policy",
            title=f"{action.value} title",
            action=action,
            reasons=(f"{name} is bad",),
        ),
        **changes,
    )


def verdict(*, images: tuple[ImageReport, ...] = ()) -> Verdict:
    return Verdict(
        components=4,
        subject=Component(name="app", version="2.0", purl="pkg:oci/app@2.0", format="cyclonedx"),
        violations=(finding(Action.DENY, "evil", image=IMAGE), finding(Action.QUARANTINE, "q")),
        warnings=(finding(Action.WARN, "meh", purl=None),),
        audits=(finding(Action.AUDIT, "seen"),),
        exemptions=(finding(Action.ALLOW, "fine", subject=True),),
        errors=(EvaluationFailure("pkg:npm/x@1", "x", "broken", "boom", fault=True),),
        images=images,
    )


def image(**changes: Any) -> ImageReport:
    return replace(
        ImageReport(
            ref="ghcr.io/acme/web:1",
            digest="sha256:" + "a" * 64,
            attestations=(
                AttestationReport(
                    "https://cyclonedx.org/bom", True, "builder", None, "referrers", {"k": "v"}
                ),
            ),
            components=4,
        ),
        **changes,
    )


def test_every_format_is_registered_under_its_name() -> None:
    assert set(FORMATS) == {"table", "json", "sarif", "policyreport"}
    for name, output in FORMATS.items():
        assert isinstance(output, Format)
        assert output.name == name
        assert get_format(name) is output
        text = output.render(Report(verdict=verdict(), source="app.cdx.json"))
        assert text.endswith("\n")
    # Every choice of `--format` has a format behind it.
    assert {f.value for f in OutputFormat} <= set(FORMATS)


def test_an_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown output format 'yaml'"):
        get_format("yaml")


def test_json_shape_is_unchanged() -> None:
    rendered = render("json", Report(verdict=verdict(images=(image(),)), source="x"))
    document = json.loads(rendered)
    assert rendered.startswith('{\n  "allowed": false,\n  "summary": {\n')
    assert document == {
        "allowed": False,
        "summary": {"components": 4, "violations": 2, "warnings": 1, "errors": 1, "images": 1},
        "subject": {
            "name": "app",
            "version": "2.0",
            "purl": "pkg:oci/app@2.0",
            "format": "cyclonedx",
        },
        "violations": [
            {
                "image": IMAGE,
                "purl": "pkg:pypi/evil@1.0",
                "name": "evil",
                "version": "1.0",
                "policy": "deny-policy",
                "action": "Deny",
                "reasons": ["evil is bad"],
            },
            {
                "purl": "pkg:pypi/q@1.0",
                "name": "q",
                "version": "1.0",
                "policy": "quarantine-policy",
                "action": "Quarantine",
                "reasons": ["q is bad"],
            },
        ],
        "warnings": [
            {
                "purl": None,
                "name": "meh",
                "version": "1.0",
                "policy": "warn-policy",
                "action": "Warn",
                "reasons": ["meh is bad"],
            }
        ],
        "audits": [
            {
                "purl": "pkg:pypi/seen@1.0",
                "name": "seen",
                "version": "1.0",
                "policy": "audit-policy",
                "action": "Audit",
                "reasons": ["seen is bad"],
            }
        ],
        "exemptions": [
            {
                "purl": "pkg:pypi/fine@1.0",
                "name": "fine",
                "version": "1.0",
                "policy": "allow-policy",
                "action": "Allow",
                "reasons": ["fine is bad"],
            }
        ],
        "errors": [
            {
                "purl": "pkg:npm/x@1",
                "name": "x",
                "policy": "broken",
                "message": "boom",
                "fault": True,
            }
        ],
        "images": [
            {
                "ref": "ghcr.io/acme/web:1",
                "digest": "sha256:" + "a" * 64,
                "attestations": [
                    {
                        "predicateType": "https://cyclonedx.org/bom",
                        "verified": True,
                        "signer": "builder",
                        "error": None,
                        "location": "referrers",
                        "k": "v",
                    }
                ],
                "error": None,
                "errors": [],
                "fault": False,
                "components": 4,
            }
        ],
    }
    # The action is the enum's value, a plain string, as before it was an enum.
    action = json_output.document(verdict())["violations"][0]["action"]
    assert type(action) is str and action == "Deny"


def test_json_leaves_out_images_when_none_were_judged() -> None:
    document = json_output.document(Verdict(components=0, subject=None))
    assert "images" not in document and "images" not in document["summary"]
    assert document["allowed"] is True and document["subject"] is None


def test_sarif_levels_follow_the_action() -> None:
    policies = (PolicyInfo(name="deny-policy", title="Deny title", description=""),)
    report = Report(
        verdict=verdict(images=(image(problems=(Problem("refused"),)),)), source="app.cdx.json"
    )
    sarif = json.loads(render("sarif", replace(report, policies=policies)))
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["version"] == sbomgate.__version__
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["deny-policy", "sbomgate/evaluation-error", "sbomgate/image-verification"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {
        "deny-policy": "error",
        "quarantine-policy": "error",
        "warn-policy": "warning",
        "audit-policy": "note",
        "sbomgate/image-verification": "error",
        "sbomgate/evaluation-error": "error",
    }
    assert run["results"][0]["properties"] == {"purl": "pkg:pypi/evil@1.0", "action": "Deny"}


def test_table_names_each_action_and_the_decision() -> None:
    text = render("table", Report(verdict=verdict(), source="app.cdx.json"))
    for word in ("Deny", "Quarantine", "Warn", "Audit", "Error", "meh@1.0"):
        assert word in text
    assert "DENIED  app.cdx.json: 4 components, 2 violations, 1 warnings, 1 errors" in text


def _plain_table(report: Report, width: int = 80) -> str:
    from sbomgate.output.table import to_text

    return to_text(report.verdict, report.source, width=width)


LONG = (
    "pkg:pypi/huggingface-cli@0.1.0: the project was first released 2 days ago "
    "(2026-11-30T11:45:31Z) and came through pypi-proxy, which is not marked hosting: hosted, "
    "so may pass a public registry's new names through: a project this young may be a slopsquat"
)


def test_table_at_80_columns_is_one_readable_block_per_finding() -> None:
    young = finding(
        Action.DENY,
        "huggingface-cli",
        purl="pkg:pypi/huggingface-cli@0.1.0",
        version="0.1.0",
        policy="package-age-proxied",
        reasons=(LONG,),
    )
    text = _plain_table(
        Report(verdict=Verdict(components=1, subject=None, violations=(young,)), source="s")
    )
    lines = text.splitlines()
    assert lines[0] == "Deny      pkg:pypi/huggingface-cli@0.1.0  [package-age-proxied]"
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    body = " ".join(line.strip() for line in lines[1:-1])
    # The reason whole, wrapped at words only, without the package it opened with.
    assert body == LONG.removeprefix("pkg:pypi/huggingface-cli@0.1.0: ")
    assert text.count("pkg:pypi/huggingface-cli@0.1.0") == 1


def test_verify_table_names_each_image_once_and_never_ok_beside_denied() -> None:
    other = "ghcr.io/acme/api@sha256:" + "b" * 64
    both = replace(
        verdict(images=(image(), image(ref="ghcr.io/acme/api:2", digest="sha256:" + "b" * 64))),
        violations=(
            finding(Action.DENY, "evil", image=IMAGE),
            finding(Action.DENY, "worse", image=IMAGE),
        ),
        warnings=(finding(Action.WARN, "meh", image=other),),
        audits=(),
        errors=(),
    )
    text = _plain_table(Report(verdict=both, source="two images"))
    assert text.count("ghcr.io/acme/web:1") == 1 and IMAGE not in text
    assert "denied  ghcr.io/acme/web:1 -> sha256:" + "a" * 64 + "\n" in text  # whole, to copy
    assert "allowed  ghcr.io/acme/api:2" in text  # only a warning there
    assert " ok " not in text and not text.startswith("ok")
    web, api = text.index("ghcr.io/acme/web:1"), text.index("ghcr.io/acme/api:2")
    assert web < text.index("pkg:pypi/evil@1.0") < text.index("pkg:pypi/worse@1.0") < api
    assert "DENIED  two images" in text
    # A quarantine refuses too: never "allowed" beside it.
    quarantined = replace(both, violations=(finding(Action.QUARANTINE, "q", image=IMAGE),))
    assert "denied  ghcr.io/acme/web:1" in _plain_table(Report(verdict=quarantined, source="q"))


def test_policy_report_results_of_one_image() -> None:
    resource = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"}
    report = Report(
        verdict=verdict(images=(image(),)),
        source="ghcr.io/acme/web:1",
        resource=resource,
        enforced=lambda f: f.policy != "quarantine-policy",
    )
    results = policyreport.results(report)
    assert [(r["policy"], r["rule"], r["result"]) for r in results] == [
        ("deny-policy", "match", "fail"),
        ("quarantine-policy", "match", "warn"),  # its policy only warns
        ("warn-policy", "match", "warn"),
        ("broken", "evaluate", "error"),
    ]
    assert results[0]["resources"] == [resource]
    assert results[0]["properties"] == {
        "image": "ghcr.io/acme/web:1",
        "purl": "pkg:pypi/evil@1.0",
        "digest": "sha256:" + "a" * 64,
    }
    refused = replace(
        report,
        verdict=Verdict(
            components=0,
            subject=None,
            images=(
                image(
                    problems=(Problem("no", kind=ProblemKind.FAULT), Problem("nay", image="web"))
                ),
            ),
        ),
    )
    assert [(r["result"], r["message"]) for r in policyreport.results(refused)] == [
        ("error", "no"),
        ("error", "image web: nay"),
    ]
    clean = replace(report, verdict=Verdict(components=1, subject=None, images=(image(),)))
    (passed,) = policyreport.results(clean)
    assert (passed["result"], passed["message"]) == (
        "pass",
        "ghcr.io/acme/web:1: verified, no policy matched",
    )
    unfinished = policyreport.unfinished(source="ghcr.io/acme/web:1", resource=resource)
    assert (unfinished["result"], unfinished["message"]) == (
        "error",
        "checking ghcr.io/acme/web:1 did not finish",
    )


def test_policy_report_keeps_problems_first_and_counts_everything() -> None:
    results = [{"result": grade} for grade in ["pass"] * 1500 + ["warn", "fail", "error"]]
    body = policyreport.policy_report(
        namespace="shop", results=results, stamp={"seconds": 1, "nanos": 0}
    )
    assert body["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and body["kind"] == "PolicyReport"
    assert body["metadata"]["name"] == "sbomgate" and body["metadata"]["namespace"] == "shop"
    assert body["summary"] == {"pass": 1500, "fail": 1, "warn": 1, "error": 1, "skip": 0}
    assert len(body["results"]) == policyreport.MAX_RESULTS
    assert [r["result"] for r in body["results"][:4]] == ["error", "fail", "warn", "pass"]
    assert body["results"][0]["timestamp"] == {"seconds": 1, "nanos": 0}
    assert "timestamp" not in results[0]  # the caller's results are left as they were


def test_findings_carry_the_action_enum_built_by_keyword() -> None:
    from sbomgate.policy import Action as FromPolicy
    from sbomgate.policy.loader import Action as FromLoader

    assert FromPolicy is Action and FromLoader is Action
    with pytest.raises(TypeError):
        Finding(None, "n", "1", "p", "t", Action.DENY, ())  # type: ignore[misc]


def test_version_comes_from_the_installed_distribution() -> None:
    assert sbomgate.__version__ == importlib.metadata.version("sbomgate")
