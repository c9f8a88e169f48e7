"""The shape of a hostile case, how its outcome is judged, and every text the corpus relies on.

A case is one small declarative entry: which section of issue 12 it belongs to, what it is, how
its content is built (`build`, read by the module of its section), which front door it goes
through, and the verdict the issue demands:

* ``allowed``: `sbomgate eval`/`verify` exit 0, or the AdmissionReview says allowed;
* ``denied``: exit 1 (or allowed: false) and no line of the answer is a fault;
* ``fault``: exit 3, or 1 (or allowed: false), and some image or package is reported as a
  fault ("... cannot verify": the registry or a trusted repository could not be asked).

`says` are substrings the answer must contain; they may name values made while building
(``{unsigned}``: a digest), filled in when the case is judged. Texts that depend on fixes
still being written are in SAYS and the settings below, in this one place, so they can be
adjusted without touching the cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

Door = Literal["eval", "verify", "validate", "mutate"]
Verdict = Literal["allowed", "denied", "fault"]

SECTIONS = {
    1: "index entries: everything runnable is judged",
    2: "caches: a verdict is reused only for exactly what it judged",
    3: "amplification and attacker-made faults",
    4: "pinning: what is admitted is what was verified",
    5: "identity: one canonical package identity everywhere",
    6: "deny rules never fail open",
    7: "licences as people write them",
    8: "smaller ones",
}

# Message texts asserted on. Where a fix decides the wording, the substring is kept short and
# robust (a purl, a digest, a policy name, a key phrase) and lives here.
SAYS = {
    # section 6: a version a deny rule cannot place must say so (the words)
    "incomparable": "could not be compared",
    # section 3: an image no trust policy covers (attest/verifier.py today)
    "uncovered": "no trust policy covers",
    # section 4: a tag reference refused (RefuseTags), or reaching /validate unpinned (Pin)
    "tag": "tag",
    # section 8: an SBOM that lists nothing
    "empty": "lists nothing",
    # any fault line (README: "... unreachable ...: cannot verify")
    "fault": "cannot verify",
}

# `sbomgate serve` settings for the two pinning modes (config.py: imageReferences).
PIN_SETTINGS: Mapping[str, Any] = {"imageReferences": "Pin"}
REFUSE_TAGS_SETTINGS: Mapping[str, Any] = {"imageReferences": "RefuseTags"}

# Generous bounds that express requirements, not timings of this machine.
WEBHOOK_TIMEOUT = 10.0  # the chart's timeoutSeconds: every answer must come before it
HEALTHZ_BOUND = 1.0  # /healthz must never wait behind reviews
RSS_GROWTH_BOUND_MB = 300  # one review's attestations must not grow the server by more
REFERRERS_PAGE_BOUND = 256  # "bounded in pages": far below the 1,000-referrer cap


@dataclass(frozen=True)
class Case:
    id: str
    section: int
    description: str
    door: Door
    expect: Verdict
    says: tuple[str, ...] = ()
    policy: str | None = None  # the policy a denial must come from ("[policy NAME]")
    build: Mapping[str, Any] = field(default_factory=dict)
    subject: str | None = None  # the image whose verdict counts, when a run names several

    def __str__(self) -> str:  # pytest shows this for a failing parameter
        return self.id


@dataclass
class Outcome:
    verdict: str  # allowed | denied | fault | error (the command failed to run)
    text: str  # what the answer said, searched for `says`
    detail: str = ""  # everything, shown when the case fails
    figures: dict[str, float] = field(default_factory=dict)


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.id for c in cases]


def check_unique(cases: Iterable[Case]) -> list[Case]:
    cases = list(cases)
    seen: set[str] = set()
    for case in cases:
        assert case.id not in seen, f"two cases are called {case.id}"
        assert case.section in SECTIONS, case.id
        seen.add(case.id)
    return cases


def judge(case: Case, outcome: Outcome, values: Mapping[str, str] | None = None) -> None:
    """Fail the test unless the outcome is the verdict the case expects, with its texts."""
    problems = []
    if outcome.verdict != case.expect:
        problems.append(f"got {outcome.verdict}, expected {case.expect}")
    if case.policy and case.expect != "allowed" and f"[policy {case.policy}]" not in outcome.text:
        problems.append(f"no finding of policy {case.policy}")
    for text in case.says:
        wanted = text.format_map(dict(values or {}))
        if wanted not in outcome.text:
            problems.append(f"the answer does not say {wanted!r}")
    # Shown with `pytest -s` (and for failures): what was said, and what was measured.
    lines = [line for line in outcome.text.splitlines() if line.strip()]
    said = next((line for line in lines if not line.startswith("sbomgate refused")), "")
    print(f"{case.id}: {outcome.verdict}: {said[:400]}")
    for name, value in outcome.figures.items():
        print(f"{case.id}: {name} = {value:g}")
    if problems:
        pytest.fail(
            f"{case.id} (section {case.section}: {case.description}): {'; '.join(problems)}\n"
            f"--- sbomgate said:\n{(outcome.detail or outcome.text)[-6000:]}",
            pytrace=False,
        )
