"""Cases that are registry content, judged by `sbomgate verify` or by `sbomgate serve`'s
`/validate` (sections 1 to 4 and 8).

`build` of such a case:
    refs    the image references reviewed, with {placeholders} for what the section's module
            made (digests are only known once content is pushed)
    step    (some sections) which step of a scripted sequence this case's verdict is
Every reference given to /validate names a digest unless the case is about tags (section 4):
`imageReferences: Pin` (the default) refuses a tag that reaches /validate unpinned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hostile.content import Lab
from hostile.corpus import Case, Door, Outcome, Verdict
from hostile.doors import cli_outcome, run_cli


def registry_case(
    section: int,
    id: str,
    door: Door,
    description: str,
    expect: Verdict,
    refs: str | Sequence[str],
    *,
    says: tuple[str, ...] = (),
    policy: str | None = None,
    subject: str | None = None,
    **build: Any,
) -> Case:
    return Case(
        id=f"s{section}-{door}-{id}",
        section=section,
        description=description,
        door=door,
        expect=expect,
        says=says,
        policy=policy,
        subject=subject,
        build={"refs": [refs] if isinstance(refs, str) else list(refs), **build},
    )


def both(
    section: int,
    id: str,
    description: str,
    expect: Verdict,
    refs: str | Sequence[str],
    **kwargs: Any,
) -> list[Case]:
    """The same content through `sbomgate verify` and through the webhook."""
    return [
        registry_case(section, id, door, description, expect, refs, **kwargs)
        for door in ("verify", "validate")
    ]


def refs_of(case: Case, values: Mapping[str, str]) -> list[str]:
    return [ref.format_map(values) for ref in case.build["refs"]]


def run_verify(
    lab: Lab,
    case: Case,
    values: Mapping[str, str],
    trust: Sequence[Path],
    *,
    insecure: Sequence[str] = (),
    data: Path | None = None,
) -> Outcome:
    refs = refs_of(case, values)
    subject = case.subject.format_map(values) if case.subject else None
    run = run_cli(lab.verify_args(refs, trust, insecure=insecure, data=data))
    outcome = cli_outcome(run, subject=subject)
    if case.build.get("rss"):
        outcome.figures["peak RSS of the command (MB)"] = round(run.max_rss_kb / 1024, 1)
    return outcome
