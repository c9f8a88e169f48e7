"""Version order per purl type and `vers` ranges, for the data lists (quarantine, blocklist).

Each type is ordered by its own rules through univers (PEP 440 for pypi via `packaging`,
SemVer for npm/cargo/hex, Maven's ComparableVersion, Debian, RPM, Alpine, Go, ...), and
`vers:` ranges are univers's `VersionRange` (the purl-spec VERSION-RANGE-SPEC algorithm).

Answers are three-valued: True, False, or None when the version cannot be placed in the
type's order (`latest`, `1.0-evil!`, no version at all). A deny rule treats None as a match.

PyPI local versions (`1.0.0+local`) are a local rebuild of the public release: as PEP 440's
`==1.0.0` does, an entry without a local label matches them.

Measured, and worked around here: univers's SemverVersion (python-semantic-version) treats
`3.3.6+build` as neither equal to, below nor above `3.3.6`, so `3.3.6+build` falls outside
`vers:npm/>=3.3.6|<4.0.0`. SemVer (and node-semver) ignore build metadata for precedence, so it
is dropped before comparing. It also coerces what is not SemVer (`1.0-evil!` becomes
`1.0.0-evil-`); npm, Cargo, Hex and Pub versions must be SemVer, so anything else is refused
here (cannot be compared) rather than guessed at.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from univers.version_range import RANGE_CLASS_BY_SCHEMES, VersionRange
from univers.versions import AllVersion, SemverVersion

from sbomgate.errors import InputError
from sbomgate.identity import SEMVER_TYPES, canonical_version

__all__ = [
    "ALL_VERSIONS",
    "VersRangeError",
    "in_range",
    "parse_vers",
    "same_version",
    "version_problem",
]

ALL_VERSIONS = "*"
# SemVer 2.0.0 (semver.org's grammar), for the types whose registries require it.
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
# purl types whose versions univers orders under another scheme name.
_SCHEMES = {"alpine": "apk", "go": "golang", "rubygems": "gem"}


def _scheme(ptype: str) -> str:
    return _SCHEMES.get(ptype, ptype)


def _version_class(ptype: str) -> type[Any] | None:
    range_class: Any = RANGE_CLASS_BY_SCHEMES.get(_scheme(ptype))
    if range_class is None or range_class.version_class is AllVersion:
        return None
    cls: type[Any] = range_class.version_class
    return cls


def _clean(cls: type[Any], version: str) -> str:
    if issubclass(cls, SemverVersion):
        return version.split("+", 1)[0]
    return version


@lru_cache(maxsize=65536)
def _parsed(ptype: str, version: str) -> Any:
    """The univers version object, or None when the type's order cannot place it."""
    cls = _version_class(ptype)
    if cls is None:
        return None
    text = canonical_version(ptype, version) or version
    if ptype in SEMVER_TYPES and not _SEMVER.fullmatch(text):
        return None
    try:
        return cls(_clean(cls, text))
    except Exception:  # univers raises InvalidVersion, ValueError, TypeError, ... by scheme
        return None


def version_problem(ptype: str, version: str | None) -> str | None:
    """Why `version` cannot be compared in `ptype`'s order, or None when it can."""
    if version is None:
        return "the package has no version"
    if _version_class(ptype) is None:
        return f"no version order is known for {ptype} packages"
    if _parsed(ptype, version) is None:
        return f"{version!r} is not a valid {ptype} version"
    return None


def same_version(ptype: str, have: str | None, want: str) -> bool | None:
    """Is `have` the version `want` names? None when `have` cannot be compared. A `want` the
    type's order cannot parse is equal only to itself (the caller compared spellings first)."""
    if have is None:
        return None
    if _version_class(ptype) is None:
        return False  # no order known: spellings are all there is to compare
    mine = _parsed(ptype, have)
    if mine is None:
        return None
    theirs = _parsed(ptype, want)
    if theirs is None:
        return False
    if ptype == "pypi" and "+" not in want and "+" in have:
        return same_version(ptype, have.split("+", 1)[0], want)
    return bool(mine == theirs)


class VersRangeError(InputError, ValueError):
    """A `vers` range that does not parse, or whose scheme is not the package's. Also a
    ValueError, which `parse_vers` raised before: callers that catch that still catch it."""


def parse_vers(ptype: str, vers: str) -> VersionRange:
    """A `vers:<scheme>/<constraints>` range for packages of `ptype`; VersRangeError (one
    line) when it does not parse, or its scheme is not the package's."""
    text = "".join(vers.split())
    scheme = text.removeprefix("vers:").split("/", 1)[0]
    if not text.startswith("vers:") or "/" not in text:
        raise VersRangeError(f"{vers!r} is not a vers range (vers:<scheme>/<constraints>)")
    if scheme not in (_scheme(ptype), "all"):
        raise VersRangeError(f"{vers!r} is a {scheme} range, but the package is a {ptype} package")
    if text.endswith("/*"):
        text = "vers:all/*"
    try:
        parsed: VersionRange = VersionRange.from_string(text)  # type: ignore[no-untyped-call]
        return parsed
    except Exception as exc:  # univers raises several types for malformed ranges
        raise VersRangeError(f"{vers!r} does not parse: {exc}") from None


def in_range(ptype: str, version: str | None, vers: VersionRange) -> bool | None:
    """Is `version` in the range? None when it cannot be compared."""
    if vers.version_class is AllVersion:
        return True
    if version is None:
        return None
    parsed = _parsed(ptype, version)
    wanted: Any = vers.version_class
    if parsed is None or not isinstance(parsed, wanted):
        return None
    if parsed in vers:
        return True
    if ptype == "pypi" and "+" in version:
        return in_range(ptype, version.split("+", 1)[0], vers)
    return False
