"""Byte budgets for attestation bodies: per image, and for the whole process.

Attestation bodies are downloaded before anything about them is known (a signature can only be
checked on the bytes), and whoever can push to an allowed registry decides their size and how
many there are. Two budgets bound what they can make sbomgate hold:

- per image (`RegistryLimits.max_attestation_bytes`): the image's own content; going over it is
  the image's failure (a refusal), never a fault;
- per process (`RegistryLimits.max_bytes_in_flight`): every check in progress together. A check
  that would go over it waits for others to finish, until its deadline; then it is refused,
  naming the budget (not a registry fault: `faults: Allow` must not admit an image because
  other images were big), and the refusal is not cached (it says nothing about the image).
"""

from __future__ import annotations

import threading
from types import TracebackType

from sbomgate.errors import RegistryError

MiB = 1024 * 1024


class BodyBudgetBusyError(RegistryError):
    """The process's budget for attestation bodies in flight stayed full until the deadline."""


class ProcessBodyBudget:
    """Bytes of attestation bodies held by all checks in progress; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._ready = threading.Condition()

    @property
    def held(self) -> int:
        """The bytes reserved now."""
        return self._held

    def acquire(self, size: int, timeout: float) -> bool:
        """Reserve `size` bytes, waiting up to `timeout` seconds for room; False when there was
        none in time. A reservation larger than the whole budget never fits."""
        if size > self.limit:
            return False
        with self._ready:
            if not self._ready.wait_for(lambda: self._held + size <= self.limit, timeout):
                return False
            self._held += size
            return True

    def release(self, size: int) -> None:
        """Give back `size` reserved bytes and wake the checks waiting for room."""
        with self._ready:
            self._held -= size
            self._ready.notify_all()


class ImageBodies:
    """The attestation bodies one image check holds: counted against the image's own budget and
    reserved from the process's; released all at once when the check is over (`with`)."""

    def __init__(self, process: ProcessBodyBudget, limit: int, *, image: str, registry: str):
        self.process = process
        self.limit = limit
        self.image = image
        self.registry = registry
        self.held = 0

    def reserve(self, size: int, what: str, timeout: float) -> None:
        """Room for `size` more bytes, or RegistryError (the image's failure) when the image's
        budget is used up, or BodyBudgetBusyError when the process's stayed full."""
        if self.held + size > self.limit:
            raise RegistryError(
                self.registry,
                f"{what} of {self.image} would bring its attestations to "
                f"{_mib(self.held + size)}, over the {_mib(self.limit)} sbomgate reads per image",
            )
        if not self.process.acquire(size, max(timeout, 0.0)):
            raise BodyBudgetBusyError(
                self.registry,
                f"{what} of {self.image} ({_mib(size)}) did not fit in the "
                f"{_mib(self.process.limit)} of attestations sbomgate holds at once (other "
                "checks in progress hold it): not checked, retry shortly",
            )
        self.held += size

    def close(self) -> None:
        """Release what this check holds from the process budget."""
        if self.held:
            self.process.release(self.held)
            self.held = 0

    def __enter__(self) -> ImageBodies:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB"
