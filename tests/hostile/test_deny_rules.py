"""Section 6: deny rules never fail open.

A quarantine range or an OSV range is compared in the ecosystem's own version order (PEP 440
for PyPI, node-semver for npm): `2!1.0` has an epoch, `1.0.0+local` a local label, npm
`3.3.6+build` build metadata, and each has a place in that order. A version that has none
(`latest`, `1.0-evil!`, `^3.3.6`) or no version at all is a match for a deny rule, with a
message saying it could not be compared, never a silent miss. The controls (allowed) show the
comparison is the ecosystem's, not "anything odd is denied".
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from hostile.content import CRITICAL_VECTOR, component, osv_record
from hostile.corpus import SAYS, Case, Outcome, Verdict, case_ids, check_unique, judge
from hostile.sbom_cases import eval_case, one, quarantine

Says = tuple[str, ...]
INCOMPARABLE: Says = (SAYS["incomparable"],)
PYPI_RANGE = quarantine("pkg:pypi/evil-pkg", "vers:pypi/>=1.0|<2.0")
PYPI_OPEN = quarantine("pkg:pypi/evil-pkg", "vers:pypi/>=1.0")
NPM_RANGE = quarantine("pkg:npm/evil-npm", "vers:npm/>=3.3.6|<4.0.0")
MAL_ALL = [osv_record("MAL-2026-6001", "PyPI", "evil-osv", introduced="0")]
MAL_RANGE = [osv_record("MAL-2026-6002", "PyPI", "evil-osv", introduced="1.0", fixed="2.0")]
MAL_LISTED = [osv_record("MAL-2026-6003", "PyPI", "evil-osv", versions=["1.0"])]
MAL_NPM = [osv_record("MAL-2026-6004", "npm", "evil-npm", introduced="3.3.6", fixed="4.0.0")]
VULN = [
    osv_record(
        "GHSA-hstl-6666-0001",
        "PyPI",
        "vuln-pkg",
        introduced="0",
        fixed="2.0",
        vector=CRITICAL_VECTOR,
    )
]


Sbom = list[dict[str, Any]]


def no_version(purl: str) -> Sbom:
    return [component(purl, no_version=True)]


def q(
    id: str, description: str, expect: Verdict, entry: dict[str, Any], sbom: Sbom, says: Says = ()
) -> Case:
    """A quarantine entry against one component."""
    policy = "quarantine" if expect == "denied" else None
    return eval_case(id, 6, description, expect, sbom, data=entry, policy=policy, says=says)


def osv(
    id: str,
    description: str,
    expect: Verdict,
    records: list[dict[str, Any]],
    sbom: Sbom,
    says: Says = (),
) -> Case:
    """OSV records (an --osv directory) against one component: malware or vulnerability."""
    policy = None
    if expect == "denied":
        policy = "malware" if records[0]["id"].startswith("MAL-") else "vulnerability"
    return eval_case(id, 6, description, expect, sbom, osv=records, policy=policy, says=says)


CASES = check_unique(
    [
        # -- quarantine ranges
        q(
            "quarantine-epoch-in-open-range",
            "2!1.0 is above 1.0 (PEP 440 epoch)",
            "denied",
            PYPI_OPEN,
            one("pkg:pypi/evil-pkg@2%211.0"),
        ),
        q(
            "quarantine-epoch-above-interval",
            "2!1.0 is above <2.0: outside the range (control)",
            "allowed",
            PYPI_RANGE,
            one("pkg:pypi/evil-pkg@2%211.0"),
        ),
        q(
            "quarantine-local-version-in-range",
            "1.0.0+local is in >=1.0|<2.0",
            "denied",
            PYPI_RANGE,
            one("pkg:pypi/evil-pkg@1.0.0%2Blocal"),
        ),
        q(
            "quarantine-npm-build-metadata-in-range",
            "3.3.6+build is 3.3.6 (semver)",
            "denied",
            NPM_RANGE,
            one("pkg:npm/evil-npm@3.3.6%2Bbuild"),
        ),
        q(
            "quarantine-npm-prerelease-in-range",
            "4.0.0-rc.1 is below 4.0.0 (semver)",
            "denied",
            NPM_RANGE,
            one("pkg:npm/evil-npm@4.0.0-rc.1"),
        ),
        q(
            "quarantine-pypi-latest",
            "latest cannot be placed in the range",
            "denied",
            PYPI_RANGE,
            one("pkg:pypi/evil-pkg@latest"),
            INCOMPARABLE,
        ),
        q(
            "quarantine-pypi-garbage-version",
            "1.0-evil! is no PEP 440 version",
            "denied",
            quarantine("pkg:pypi/evil-pkg", "vers:pypi/<2.0"),
            one("pkg:pypi/evil-pkg@1.0-evil%21"),
            INCOMPARABLE,
        ),
        q(
            "quarantine-npm-latest",
            "latest is no semver version",
            "denied",
            NPM_RANGE,
            one("pkg:npm/evil-npm@latest"),
            INCOMPARABLE,
        ),
        q(
            "quarantine-npm-caret-range-as-version",
            "^3.3.6 is a range, not a version",
            "denied",
            NPM_RANGE,
            one("pkg:npm/evil-npm@%5E3.3.6"),
            INCOMPARABLE,
        ),
        q(
            "quarantine-range-missing-version",
            "no version against a range",
            "denied",
            PYPI_OPEN,
            no_version("pkg:pypi/evil-pkg"),
        ),
        q(
            "quarantine-exact-missing-version",
            "no version against an exact entry",
            "denied",
            quarantine("pkg:pypi/evil-pkg@1.0"),
            no_version("pkg:pypi/evil-pkg"),
        ),
        q(
            "quarantine-exact-epoch-spelling",
            "2!1.0.0 is the quarantined 2!1.0",
            "denied",
            quarantine("pkg:pypi/evil-pkg@2!1.0"),
            one("pkg:pypi/evil-pkg@2%211.0.0"),
        ),
        q(
            "quarantine-exact-local-build-of-quarantined",
            "1.0.0+local is a build of the quarantined 1.0.0",
            "denied",
            quarantine("pkg:pypi/evil-pkg@1.0.0"),
            one("pkg:pypi/evil-pkg@1.0.0%2Blocal"),
        ),
        q(
            "quarantine-range-plain-hit",
            "1.5 is in >=1.0|<2.0 (control)",
            "denied",
            PYPI_RANGE,
            one("pkg:pypi/evil-pkg@1.5"),
        ),
        q(
            "quarantine-range-plain-miss",
            "2.0.1 is not (control)",
            "allowed",
            PYPI_RANGE,
            one("pkg:pypi/evil-pkg@2.0.1"),
        ),
        # -- OSV malware: every version (introduced 0, never fixed)
        osv(
            "malware-all-versions-missing-version",
            "no version against an all-versions MAL- record",
            "denied",
            MAL_ALL,
            no_version("pkg:pypi/evil-osv"),
        ),
        osv(
            "malware-all-versions-latest",
            "latest against an all-versions MAL- record",
            "denied",
            MAL_ALL,
            one("pkg:pypi/evil-osv@latest"),
        ),
        osv(
            "malware-all-versions-garbage-version",
            "1.0-evil! against an all-versions MAL- record",
            "denied",
            MAL_ALL,
            one("pkg:pypi/evil-osv@1.0-evil%21"),
        ),
        osv(
            "malware-all-versions-epoch",
            "2!1.0 against an all-versions MAL- record",
            "denied",
            MAL_ALL,
            one("pkg:pypi/evil-osv@2%211.0"),
        ),
        # -- OSV malware: a range
        osv(
            "malware-range-local-version",
            "1.0.0+local is in [1.0, 2.0)",
            "denied",
            MAL_RANGE,
            one("pkg:pypi/evil-osv@1.0.0%2Blocal"),
        ),
        osv(
            "malware-range-latest",
            "latest cannot be placed in [1.0, 2.0)",
            "denied",
            MAL_RANGE,
            one("pkg:pypi/evil-osv@latest"),
            INCOMPARABLE,
        ),
        osv(
            "malware-range-garbage-version",
            "1.0-evil! cannot be placed in [1.0, 2.0)",
            "denied",
            MAL_RANGE,
            one("pkg:pypi/evil-osv@1.0-evil%21"),
            INCOMPARABLE,
        ),
        osv(
            "malware-range-missing-version",
            "no version against a MAL- range",
            "denied",
            MAL_RANGE,
            no_version("pkg:pypi/evil-osv"),
        ),
        osv(
            "malware-range-epoch-above-fix",
            "2!1.0 is above the fix 2.0 (control)",
            "allowed",
            MAL_RANGE,
            one("pkg:pypi/evil-osv@2%211.0"),
        ),
        osv(
            "malware-range-fixed",
            "2.0.1 is fixed (control)",
            "allowed",
            MAL_RANGE,
            one("pkg:pypi/evil-osv@2.0.1"),
        ),
        osv(
            "malware-listed-missing-version",
            "no version against a MAL- versions list",
            "denied",
            MAL_LISTED,
            no_version("pkg:pypi/evil-osv"),
        ),
        osv(
            "malware-npm-build-metadata",
            "3.3.6+build is in [3.3.6, 4.0.0)",
            "denied",
            MAL_NPM,
            one("pkg:npm/evil-npm@3.3.6%2Bbuild"),
        ),
        osv(
            "malware-npm-latest",
            "latest against an npm MAL- range",
            "denied",
            MAL_NPM,
            one("pkg:npm/evil-npm@latest"),
            INCOMPARABLE,
        ),
        osv(
            "malware-npm-missing-version",
            "no version against an npm MAL- range",
            "denied",
            MAL_NPM,
            no_version("pkg:npm/evil-npm"),
        ),
        # -- OSV vulnerability (CVSS 9.8, fixed in 2.0)
        osv(
            "vulnerability-latest",
            "latest against a critical advisory with a fix",
            "denied",
            VULN,
            one("pkg:pypi/vuln-pkg@latest"),
            INCOMPARABLE,
        ),
        osv(
            "vulnerability-garbage-version",
            "1.0-evil! against a critical advisory",
            "denied",
            VULN,
            one("pkg:pypi/vuln-pkg@1.0-evil%21"),
            INCOMPARABLE,
        ),
        osv(
            "vulnerability-local-version",
            "1.5+local is below the fix",
            "denied",
            VULN,
            one("pkg:pypi/vuln-pkg@1.5%2Blocal"),
        ),
        osv(
            "vulnerability-fixed",
            "2.0 is fixed (control)",
            "allowed",
            VULN,
            one("pkg:pypi/vuln-pkg@2.0"),
        ),
    ]
)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_deny_rules(case: Case, eval_outcomes: dict[str, Future[Outcome]]) -> None:
    judge(case, eval_outcomes[case.id].result())
