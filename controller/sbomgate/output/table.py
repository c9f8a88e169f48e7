"""`--format table`: what a person reads in a terminal (rich; coloured on a terminal)."""

from __future__ import annotations

import re
from typing import Any

from sbomgate.actions import Action
from sbomgate.output.interface import Report, package_label
from sbomgate.verdict import EvaluationFailure, Finding, ImageReport, Verdict

_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*\n?)$")
_ERROR = "Error"  # the action column of a policy that failed to evaluate
_STYLES = {Action.DENY: "red", Action.QUARANTINE: "red", _ERROR: "red", Action.WARN: "yellow"}


class TableFormat:
    """Each image and its attestations, a table of findings, and a one-line decision."""

    name = "table"

    def render(self, report: Report) -> str:
        """The verdict as text, coloured only on a terminal, as wide as the terminal."""
        return to_text(report.verdict, report.source)


def to_text(verdict: Verdict, source: str, *, width: int | None = None) -> str:
    """The verdict as text `width` columns wide (the terminal's, else 80)."""
    # rich is imported here: only the CLI's table needs it, not the webhook or operator.
    from rich.console import Console

    # Capturing keeps what printing would write (colour only on a terminal).
    console = Console(highlight=False, width=width)
    with console.capture() as captured:
        console.print(renderable(verdict, source), crop=False)
    # rich pads each line to the widest of its group; trailing spaces are noise to copy.
    return "".join(_TRAILING.sub(r"\1", line) for line in captured.get().splitlines(True))


def renderable(verdict: Verdict, source: str) -> Any:
    """A rich renderable of the verdict: each image once, with its attestations and the
    findings in it; each finding a line `Action  package  [policy]` and its reason below, wrapped
    at words (readable at 80 columns), the package not said again inside the reason."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = []
    findings: list[Finding | EvaluationFailure] = [
        *verdict.violations,
        *verdict.warnings,
        *verdict.audits,
        *verdict.errors,
    ]
    shown: set[int] = set()
    refusing = {id(f) for f in (*verdict.violations, *verdict.errors)}
    for image in verdict.images:
        mine = [f for f in findings if _in_image(f, image.digest)]
        shown.update(id(f) for f in mine)
        status = _image_status(image, any(id(f) in refusing for f in mine))
        parts.append(_whole(Text.assemble(status, f"  {image.ref} -> {image.digest or '?'}")))
        for a in image.attestations:
            mark = "verified" if a.verified else "rejected"
            detail = f" by {a.signer}" if a.verified and a.signer else f": {a.error}"
            parts.append(
                _whole(Text(f"    {mark} {a.predicate_type or '?'} ({a.location}){detail}"))
            )
        for error in image.errors:
            parts.append(Text(f"    {error}", style="red"))
        parts.extend(_finding(f, indent=4) for f in mine)
    parts.extend(_finding(f, indent=0) for f in findings if id(f) not in shown)
    decision = (
        Text("ALLOWED", style="bold green") if verdict.allowed else Text("DENIED", style="bold red")
    )
    summary = Text.assemble(
        decision,
        f"  {source}: {verdict.components} components, {len(verdict.violations)} violations, "
        f"{len(verdict.warnings)} warnings, {len(verdict.errors)} errors"
        + (
            f", {sum(not i.ok for i in verdict.images)} of {len(verdict.images)} images refused"
            if verdict.images
            else ""
        ),
    )
    parts.append(summary)
    return Group(*parts)


def _whole(text: Any) -> Any:
    """A line kept whole however wide (a reference and its digest are copied from it): the
    terminal wraps it, rich does not break it."""
    text.no_wrap = True
    text.overflow = "ignore"
    return text


def _in_image(f: Finding | EvaluationFailure, digest: str | None) -> bool:
    return bool(digest and f.image and f.image.endswith(f"@{digest}"))


def _image_status(image: ImageReport, refused: bool) -> Any:
    """`allowed` only when nothing stands against the image (no violation, Deny or
    Quarantine, and no failed policy in it): never a green word beside a refusal."""
    from rich.text import Text

    if not image.ok:
        return Text("fault" if image.fault else "refused", style="red")
    return Text("denied", style="red") if refused else Text("allowed", style="green")


def _finding(f: Finding | EvaluationFailure, *, indent: int) -> Any:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    label = package_label(f)
    if isinstance(f, EvaluationFailure):
        action, reasons = _ERROR, [f.message]
    else:
        action, reasons = f.action.value, list(f.reasons) or [f.title]
    head = Text.assemble(
        (f"{action:<10}", _STYLES.get(action, "cyan")), label, (f"  [{f.policy}]", "dim")
    )
    body = Text("\n".join(_without_package(r, label) for r in reasons), overflow="fold")
    return Padding(
        Group(head, Padding(body, (0, 0, 0, 10), expand=False)), (0, 0, 0, indent), expand=False
    )


def _without_package(reason: str, label: str) -> str:
    """The reason without the package it opens with (`pkg:pypi/x@1: was published ...`): the
    line above names it."""
    if reason.startswith(label):
        rest = reason[len(label) :]
        if rest.startswith(": "):
            return rest[2:]
        if rest.startswith(" "):
            return rest[1:]
    return reason
