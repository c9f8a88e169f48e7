"""A lenient version comparator that stands in for Rego's `semver.compare`.

OPA's `semver.compare` accepts strict SemVer 2.0 only, so on real ecosystem versions
(`0.15`, `2.31.0.post1`, `1.0.0rc1`) it errors and the expression is undefined. Cloudsmith's
engine compares such versions sensibly; policies written for it (`semver.compare(v, "0.16.0")
== -1`) rely on that. The order used here:

1. both versions are SemVer after padding missing minor/patch (`0.15` -> `0.15.0`,
   `v1.2-rc.1` -> `1.2.0-rc.1`): SemVer 2.0 precedence (build metadata ignored);
2. otherwise both are PEP 440 versions (`packaging`): PEP 440 order, which also covers the
   usual npm/Maven-ish forms such as `1.0.0-beta.2`, `1.0.0.RC1`;
3. otherwise they cannot be compared: `IncomparableVersions` is raised, which the engine turns
   into "undefined" for the calling expression, as OPA does for a builtin error.
"""

from __future__ import annotations

import re
from functools import lru_cache

from packaging.version import InvalidVersion, Version

from sbomgate.errors import SbomgateError

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


class IncomparableVersions(SbomgateError):
    """Neither SemVer (padded) nor PEP 440 can order these two strings (the Rego expression
    that asked is undefined, as a failing builtin is in OPA: not the user's mistake)."""


_SemverKey = tuple[int, int, int, tuple[tuple[int, int | str], ...] | None]


@lru_cache(maxsize=65536)
def _semver_key(version: str) -> _SemverKey | None:
    m = _SEMVER.match(version)
    if m is None:
        return None
    major, minor, patch, pre = m.group(1), m.group(2), m.group(3), m.group(4)
    if pre is None:
        return (int(major), int(minor or 0), int(patch or 0), None)
    # Numeric identifiers sort before alphanumeric ones (SemVer 2.0, rule 11.4.3).
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor or 0), int(patch or 0), ids)


@lru_cache(maxsize=65536)
def _pep440(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def _cmp_semver(a: _SemverKey, b: _SemverKey) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pa, pb = a[3], b[3]
    if pa == pb:
        return 0
    if pa is None:  # a release ranks above any of its pre-releases
        return 1
    if pb is None:
        return -1
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            if x[0] != y[0]:
                return -1 if x[0] < y[0] else 1
            return -1 if x[1] < y[1] else 1  # type: ignore[operator]
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b`; IncomparableVersions otherwise."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise IncomparableVersions(f"semver.compare needs two strings, got {a!r} and {b!r}")
    sa, sb = _semver_key(a.strip()), _semver_key(b.strip())
    if sa is not None and sb is not None:
        return _cmp_semver(sa, sb)
    va, vb = _pep440(a.strip()), _pep440(b.strip())
    if va is not None and vb is not None:
        return (va > vb) - (va < vb)
    raise IncomparableVersions(f"cannot compare versions {a!r} and {b!r}")
