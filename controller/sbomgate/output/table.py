"""`--format table`: what a person reads in a terminal (rich; coloured on a terminal)."""

from __future__ import annotations

from typing import Any

from sbomgate.actions import Action
from sbomgate.output.interface import Report, package_label
from sbomgate.verdict import EvaluationFailure, Finding, Verdict

_ERROR = "Error"  # the action column of a policy that failed to evaluate
_STYLES = {Action.DENY: "red", Action.QUARANTINE: "red", _ERROR: "red", Action.WARN: "yellow"}


class TableFormat:
    """Each image and its attestations, a table of findings, and a one-line decision."""

    name = "table"

    def render(self, report: Report) -> str:
        """The verdict as rich tables, coloured only on a terminal."""
        # rich is imported here: only the CLI's table needs it, not the webhook or operator.
        from rich.console import Console

        # Capturing keeps what printing would write (colour only on a terminal).
        console = Console(highlight=False, soft_wrap=True)
        with console.capture() as captured:
            console.print(renderable(report.verdict, report.source))
        return captured.get()


def renderable(verdict: Verdict, source: str) -> Any:
    """A rich renderable of the verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for image in verdict.images:
        status = (
            Text("ok", style="green")
            if image.ok
            else Text("fault" if image.fault else "refused", style="red")
        )
        parts.append(Text.assemble(status, f"  {image.ref} -> {image.digest or '?'}"))
        for a in image.attestations:
            mark = "verified" if a.verified else "rejected"
            detail = f" by {a.signer}" if a.verified and a.signer else f": {a.error}"
            parts.append(Text(f"    {mark} {a.predicate_type or '?'} ({a.location}){detail}"))
        for error in image.errors:
            parts.append(Text(f"    {error}", style="red"))
    several = len(verdict.images) > 1

    def where(f: Finding | EvaluationFailure) -> str:
        # With several images, say which one each package is in.
        label = package_label(f)
        return f"{label}\nin {f.image}" if several and f.image else label

    rows: list[tuple[str, str, str, str]] = []
    for f in verdict.violations + verdict.warnings + verdict.audits:
        rows.append((f.action.value, where(f), f.policy, "\n".join(f.reasons) or f.title))
    for e in verdict.errors:
        rows.append((_ERROR, where(e), e.policy, e.message))
    if rows:
        table = Table(show_lines=False, expand=False)
        table.add_column("action", no_wrap=True)
        table.add_column("package", overflow="fold")
        table.add_column("policy", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for action, label, policy, reason in rows:
            table.add_row(Text(action, style=_STYLES.get(action, "cyan")), label, policy, reason)
        parts.append(table)
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
