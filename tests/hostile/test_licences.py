"""Section 7: licences as people write them.

Each spelling is judged twice: under a deny-list of GPL/AGPL/SSPL (the policy's default mode)
and under an allow-list of permissive licences (policies/data.example.yaml). Names and common
spellings map to SPDX ids; a Unicode hyphen is a hyphen; a misuse of WITH or an unknown
licence is unknown (denied in allow-list mode); `OR NOASSERTION` never makes a denied licence
acceptable. The controls are allowed in both modes (or, for unknown licences, in deny-list
mode only). One case checks that concurrent parsing of licence expressions (two images at
once in `sbomgate verify`) never fails and never counts as anything but clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from hostile.content import (
    Lab,
    component,
    cyclonedx,
    facts_snapshot,
    spdx,
    spdx_package,
    write_json,
)
from hostile.corpus import Case, Outcome, Verdict, case_ids, check_unique, judge
from hostile.doors import cli_outcome, run_cli
from hostile.sbom_cases import eval_case
from support.oci_builder import push_image

DENY_LIST = {"license": {"deny": ["GPL-*", "AGPL-*", "SSPL-*"]}}
ALLOW_LIST = {"license": {"allow": ["MIT", "Apache-2.0", "BSD-*", "ISC"]}}
MODES: dict[str, dict[str, Any]] = {"deny-list": DENY_LIST, "allow-list": ALLOW_LIST}
PKG = "pkg:pypi/licensed-pkg@1.0"

# (id, how it is written, the text, deny-list verdict, allow-list verdict)
SPELLINGS: list[tuple[str, str, str, Verdict | None, Verdict | None]] = [
    ("gnu-gpl-v3-full-name", "name", "GNU General Public License v3.0", "denied", "denied"),
    ("gplv3", "name", "GPLv3", "denied", "denied"),
    ("gplv2", "name", "GPLv2", "denied", "denied"),
    ("agpl-v3", "name", "AGPL v3", "denied", "denied"),
    ("gnu-agpl-v3-full-name", "name", "GNU Affero General Public License v3.0", "denied", "denied"),
    ("sspl-full-name", "name", "Server Side Public License", "denied", "denied"),
    ("sspl-id-as-name", "name", "SSPL-1.0", "denied", "denied"),
    ("gpl-3.0-deprecated-id-as-name", "name", "GPL-3.0", "denied", "denied"),
    ("unicode-hyphen-u2010", "expression", "GPL\u20103.0-only", "denied", "denied"),
    ("unicode-non-breaking-hyphen-u2011", "expression", "GPL\u20113.0-only", "denied", "denied"),
    ("mit-with-gpl", "expression", "MIT WITH GPL-3.0-only", "denied", "denied"),
    ("gpl-or-noassertion", "expression", "GPL-3.0-only OR NOASSERTION", "denied", "denied"),
    ("noassertion-or-gpl", "expression", "NOASSERTION OR GPL-3.0-only", "denied", "denied"),
    ("agpl-or-noassertion", "expression", "AGPL-3.0-or-later OR NOASSERTION", "denied", "denied"),
    (
        "gpl-or-noassertion-and-mit",
        "expression",
        "(GPL-3.0-only OR NOASSERTION) AND MIT",
        "denied",
        "denied",
    ),
    (
        "gpl-with-classpath-exception",
        "expression",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "denied",
        "denied",
    ),
    ("apache-with-mit-misuse", "expression", "Apache-2.0 WITH MIT", None, "denied"),
    ("unknown-proprietary-name", "name", "Acme Proprietary License", "allowed", "denied"),
    ("noassertion", "expression", "NOASSERTION", "allowed", "denied"),
    ("no-licence-at-all", "none", "", None, "denied"),
    # controls
    ("mit", "expression", "MIT", "allowed", "allowed"),
    ("mit-license-name", "name", "MIT License", "allowed", "allowed"),
    ("apache-license-2-name", "name", "Apache License 2.0", "allowed", "allowed"),
    ("mit-or-gpl", "expression", "MIT OR GPL-3.0-only", "allowed", "allowed"),
]


def licence_case(name: str, how: str, text: str, mode: str, expect: Verdict) -> Case:
    kwargs = {"name": {"licence_name": text}, "expression": {"expression": text}}.get(how, {})
    return eval_case(
        f"{mode}-{name}",
        7,
        f"{text or 'no licence'} under a {mode}",
        expect,
        [component(PKG, **kwargs)],
        data=MODES[mode],
        policy="license" if expect == "denied" else None,
    )


def spdx_case(id: str, licence: str, mode: str, expect: Verdict) -> Case:
    document = spdx(spdx_package("licensed-pkg", "1.0", [PKG], licence=licence))
    return eval_case(
        f"{mode}-spdx-{id}",
        7,
        f"SPDX licenseConcluded {licence} under a {mode}",
        expect,
        document,
        data=MODES[mode],
        policy="license" if expect == "denied" else None,
    )


CASES = check_unique(
    [
        *(
            licence_case(name, how, text, mode, expect)
            for name, how, text, *verdicts in SPELLINGS
            for mode, expect in zip(MODES, verdicts, strict=True)
            if expect is not None
        ),
        spdx_case("gpl-or-noassertion", "GPL-3.0-only OR NOASSERTION", "deny-list", "denied"),
        spdx_case("gpl-or-noassertion", "GPL-3.0-only OR NOASSERTION", "allow-list", "denied"),
        spdx_case("licenseref-gplv3", "LicenseRef-GPLv3", "allow-list", "denied"),
        Case(
            id="s7-verify-concurrent-licence-parsing",
            section=7,
            description="two images with 300 licence expressions each, verified together, "
            "four times: never an error, always allowed",
            door="verify",
            expect="allowed",
        ),
    ]
)

# Expressions that are all acceptable (the SBOMs of the concurrency case).
PERMISSIVE = [
    "0BSD OR MIT",
    "Apache-2.0 AND BSD-3-Clause",
    "(MIT OR Apache-2.0) AND ISC",
    "BSD-2-Clause OR MIT",
    "Apache-2.0 WITH LLVM-exception",
    "MIT AND (BSD-3-Clause OR ISC)",
]


@pytest.fixture(scope="module")
def concurrent_images(lab: Lab) -> Iterator[tuple[list[str], Path]]:
    """Two signed images whose SBOMs are 300 components of mixed licence expressions."""
    refs = []
    purls = []
    for image in ("one", "two"):
        components = []
        for n in range(300):
            purl = f"pkg:pypi/licence-mix-{image}-{n}@1.{n}"
            purls.append(purl)
            components.append(component(purl, expression=PERMISSIVE[n % len(PERMISSIVE)]))
        repo = f"hostile/licences/{image}"
        pushed = push_image(lab.plain, repo, "v1", seed=f"hostile-{repo}").digest_ref
        lab.sign(lab.plain, pushed, cyclonedx(*components))
        refs.append(pushed)
    facts = write_json(lab.work / "licences-facts.json", facts_snapshot(purls))
    yield refs, facts


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_licences(
    case: Case, eval_outcomes: dict[str, Future[Outcome]], request: pytest.FixtureRequest
) -> None:
    if case.door == "eval":
        judge(case, eval_outcomes[case.id].result())
        return
    lab: Lab = request.getfixturevalue("lab")
    refs, facts = request.getfixturevalue("concurrent_images")
    trust = lab.trust("licences", images=["*/hostile/licences/**"])
    for _ in range(4):
        run = run_cli(lab.verify_args(refs, [trust], facts=facts))
        judge(case, cli_outcome(run))
        assert json.loads(run.stdout)["summary"]["errors"] == 0, run.stdout[-3000:]
