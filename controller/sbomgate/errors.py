"""The exception hierarchy. Every message is one line that says what is wrong and where.

Everything sbomgate raises derives from `SbomgateError`. `InputError` and its subclasses are
the user's mistake (a file, a flag, a request that cannot be used): the CLI prints them as
they are and exits 2, never as an "internal error". The others are what sbomgate could not
find out (`RemoteError`: a registry or trusted repository), what an image failed
(`VerificationError`), or a policy's failure (`EvaluationError`).
"""

from __future__ import annotations

from typing import ClassVar


class SbomgateError(Exception):
    """Base class of every error sbomgate reports to a person."""


class InputError(SbomgateError):
    """Something the user gave us (a file, a flag, a data document) cannot be used."""


class SbomError(InputError):
    """An SBOM document cannot be read.

    `source` names the file (or blob) and `message` says what is wrong; str() joins them into
    the one-line error the CLI prints.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class PolicyLoadError(InputError):
    """A policy cannot be loaded: parse error, missing builtin, bad metadata (the policy's
    author's to fix)."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.message = message


class EvaluationError(SbomgateError):
    """A policy failed while evaluating one input (reported per package; the verdict denies)."""


class RemoteError(SbomgateError):
    """A remote service (a registry, its token service, a trusted repository) could not tell
    us what we need. `host` is who was asked and `message` what happened, kept apart so that
    a caller naming the service its own way need not take the text apart; str() is
    `{prefix}{host}: {message}`."""

    prefix: ClassVar[str] = ""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{self.prefix}{host}: {message}")
        self.host = host
        self.message = message


class RegistryError(RemoteError):
    """The registry could not tell us what we need: unreachable, refused, malformed, too big.

    An infrastructure fault, never reported as a policy failure; admission still fails closed.
    """

    prefix = "registry "


class RegistryNotAllowedError(RegistryError):
    """The image's registry (or a redirect or token realm) is not allowed; nothing was sent."""


class RegistryUnavailableError(RegistryError):
    """Connecting, a timeout, a 5xx or 429: the registry could not answer in time."""


class ManifestNotFoundError(RegistryError):
    """The registry answered that the tag or digest does not exist."""


class TrustPolicyError(InputError):
    """A trust policy document cannot be used (what is wrong, and where in the file)."""


class VerificationError(SbomgateError):
    """An attestation failed a check (signature, identity, subject digest, predicate type)."""


class ColdPathError(SbomgateError):
    """The process that checks images and evaluates policies for `serve` (its cold path,
    serving/coldpath.py) failed to answer: it stopped, or was never given what it needs."""
