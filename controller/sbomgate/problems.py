"""Why an image was not admitted, as data: which image, what kind of problem, what happened.

Reports carry problems, not sentences: the admission answer puts the containers' paths after
the image, the audit grades faults apart from refusals, and neither takes text apart to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemKind(StrEnum):
    """Every kind denies (fail closed); they differ in how they are reported."""

    REFUSAL = "refusal"  # the image failed a check, or its own registry content did
    FAULT = "fault"  # infrastructure: the registry could not be asked (never a policy failure)
    INTERNAL = "internal"  # sbomgate itself failed (a bug)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of one image.

    `image` is the reference the message is about (as written, or pinned to its digest once
    resolved), or None when there is none to name (a reference that does not parse: the
    message quotes it). str() is the one-line text users read: `image {image}: {message}`.
    """

    message: str
    image: str | None = None
    kind: ProblemKind = ProblemKind.REFUSAL

    def __str__(self) -> str:
        return f"image {self.image}: {self.message}" if self.image is not None else self.message

    @property
    def fault(self) -> bool:
        """True when the problem is an infrastructure fault, not the image's failure."""
        return self.kind is ProblemKind.FAULT
