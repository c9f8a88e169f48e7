"""When an operation must have finished: one type for the admission review, the image check,
every registry and trusted-source request under it, and the messages that name the limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
"""Seconds on a monotonic scale (`time.monotonic`; a test passes its own)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadline:
    """`expires` and `started` are readings of `clock`."""

    expires: float
    started: float = field(default_factory=time.monotonic)
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Clock = time.monotonic) -> Deadline:
        """A deadline `seconds` from now."""
        now = clock()
        return cls(expires=now + seconds, started=now, clock=clock)

    def remaining(self) -> float:
        """Seconds left; zero or less once it has passed."""
        return self.expires - self.clock()

    def elapsed(self) -> float:
        """Seconds since it started."""
        return self.clock() - self.started

    def limit(self) -> float:
        """The whole time allowed, in seconds (for messages)."""
        return self.expires - self.started

    def exhausted(self) -> Deadline:
        """This deadline run out now: the same start (so messages say how long was waited),
        no time left (a review that could not start in time is answered at once)."""
        return Deadline(expires=self.clock(), started=self.started, clock=self.clock)
